/**
 * Which engine runs a model's forward passes (evaluation, distillation's held-out evaluations): onnxruntime-node's
 * native CPU engine when the backend preference is `auto` and the package loads, for ONNX models and for TF.js
 * LayersModels that lower to ONNX (`graph/onnxLowering.ts`), else TensorFlow.js on the backend `tfjsBackend.ts` chose. Every choice of TensorFlow.js comes with the sentence that says why, for the
 * progress and the report. This and `tfjsBackend.ts` are the only places an engine is chosen.
 */
import { availableParallelism } from 'node:os';
import type { BackendName, ModelEngineName } from '../../protocol/vocabulary';
import { nativeDevicesFor } from './nativeDevice';
import { loadOnnxRuntime, type OrtModuleLike, type OrtModuleLoader } from './onnxRuntime';

/** The engine chosen for a model, with onnxruntime's module or the reason it is not used. */
export type ModelEngineChoice =
  | { readonly engine: Extract<ModelEngineName, 'onnxruntime'>; readonly ort: OrtModuleLike }
  | { readonly engine: Extract<ModelEngineName, 'tfjs'>; readonly reason: string };

/** What `chooseModelEngine` needs to know about the model. */
export type ModelFormat = 'onnx' | 'tfjs';

/**
 * Chooses the forward engine for a model of `format` under the backend preference `backend`: onnxruntime under a
 * native preference (`auto`, `cpu-native`, `cuda`, `webgpu`; its device is chosen when the runner opens,
 * `chooseNativeDevice`) when `onnxruntime-node` loads (through `load`, default: beside the bundle, then Node's
 * resolution), for an ONNX model or a TF.js LayersModel that has an ONNX form; TensorFlow.js otherwise, with the
 * reason. `noOnnxForm` is, for a TF.js LayersModel without one, the refusal of its lowering ("layer X (op Y): …").
 * Never throws.
 */
export function chooseModelEngine(
  backend: BackendName,
  format: ModelFormat,
  load?: OrtModuleLoader,
  noOnnxForm?: string,
): ModelEngineChoice {
  if (nativeDevicesFor(backend) === null) {
    return {
      engine: 'tfjs',
      reason: `the ${backend} backend was asked for (the native engine runs under auto, cpu-native, cuda and webgpu)`,
    };
  }
  if (format === 'tfjs' && noOnnxForm !== undefined) {
    return { engine: 'tfjs', reason: `the TF.js LayersModel has no ONNX form yet: ${noOnnxForm}` };
  }
  const loaded = loadOnnxRuntime(load);
  if (!loaded.ok) return { engine: 'tfjs', reason: `the native engine is unavailable: ${loaded.reason}` };
  return { engine: 'onnxruntime', ort: loaded.ort };
}

/** Intra-op threads of an evaluation session: every core the machine offers (convolutions scale with them). */
export function defaultEvalThreads(): number {
  return Math.max(1, availableParallelism());
}

/** The engine's name as progress and reports show it: `onnxruntime (native, N threads)` or `tfjs (<backend>)`. */
export function engineLabel(engine: ModelEngineName, detail: string): string {
  return `${engine} (${detail})`;
}
