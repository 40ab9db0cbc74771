/**
 * The predictor's forward pass on the native engine (onnxruntime-node), for predicting many grid rows at once:
 * decoding an artifact (decompress, evaluation with an artifact's weights) and the reconstruction a compression
 * reports at its end. One ONNX graph, y = Gemm(Relu(…Gemm(x, w₀, b₀)…), w_L, b_L), with the predictor's weights as
 * initializers and the row count symbolic; the device follows the backend choice (nativeDevice.ts). It gives the
 * values of `Predictor.predict` on TensorFlow.js up to float rounding. Where the native engine does not load, the
 * caller falls back to TensorFlow.js with the reason this module returns.
 */
import type { BackendName } from '../../protocol/vocabulary';
import { floatTensorProto, modelProto, nodeEmitter, valueInfoProto } from '../backend/onnxGraph';
import { firstLine, loadOnnxRuntime, type OrtModuleLike, type OrtSessionLike } from '../backend/onnxRuntime';
import {
  chooseNativeDevice,
  nativeDevicesFor,
  nativeEngineLabel,
  nativeSessionOptions,
  openOnDevice,
  type NativeDevice,
} from '../backend/nativeDevice';
import { ensureBackend } from '../backend/tfjsBackend';
import {
  assembleLayers,
  checkKernelMap,
  predictGridAsync,
  predictGridWith,
  type GridPredictionOptions,
  type KernelMap,
} from './kernelMap';
import { defaultOrtThreads } from './ortStep';
import { layerShapes, Predictor, type PredictorWeights } from './predictor';

/**
 * The ONNX model of the predictor's forward pass with `weights` as initializers: input `x` [rows, inputs], output
 * `y` [rows, outputs], `rows` symbolic; hidden layers are Gemm then Relu, the last Gemm is linear.
 */
export function buildForwardModel(weights: PredictorWeights): Uint8Array {
  const nodes: Uint8Array[] = [];
  const node = nodeEmitter(nodes);
  const shapes = layerShapes(weights.spec);
  const inits: Uint8Array[] = [];
  let a = 'x';
  shapes.forEach(([fanIn, fanOut], i) => {
    const layer = weights.layers[i];
    if (layer === undefined || layer.weight.length !== fanIn * fanOut || layer.bias.length !== fanOut)
      throw new RangeError(`predictor layer ${i} does not hold [${fanIn}, ${fanOut}] weights and ${fanOut} biases`);
    inits.push(
      floatTensorProto(`w${i}`, [fanIn, fanOut], layer.weight),
      floatTensorProto(`b${i}`, [fanOut], layer.bias),
    );
    const last = i === shapes.length - 1;
    node('Gemm', [a, `w${i}`, `b${i}`], [last ? 'y' : `z${i}`]);
    if (!last) {
      node('Relu', [`z${i}`], [`h${i}`]);
      a = `h${i}`;
    }
  });
  return modelProto(
    'nern_predictor_forward',
    nodes,
    inits,
    [valueInfoProto('x', ['rows', weights.spec.inputs])],
    [valueInfoProto('y', ['rows', weights.spec.outputs])],
  );
}

/** An open native forward pass of one predictor. Call `release()` when done. */
export interface NativeForward {
  /** The engine, as reports show it, e.g. `onnxruntime (native, 2 threads)`. */
  readonly label: string;
  /** Why a GPU that the backend choice tried is not used; absent when the first device tried runs it. */
  readonly reason?: string;
  readonly device: NativeDevice;
  /** Predictions [rows, outputs] (row-major) for row-major encodings [rows, inputs]; rows = length / inputs. */
  predict(encodings: Float32Array): Promise<Float32Array>;
  release(): Promise<void>;
}

/** Result of trying to open the native forward pass. */
export type NativeForwardOpen = { ok: true; forward: NativeForward } | { ok: false; reason: string };

/**
 * Opens the forward pass of `weights` on the native engine under `backend`; never throws. Fails
 * with a one-line reason when `backend` names a TensorFlow.js backend, onnxruntime-node does not load, or no device
 * takes the graph. `threads` (default `defaultOrtThreads()`) are the CPU provider's intra-op threads.
 */
export async function openNativeForward(
  weights: PredictorWeights,
  backend: BackendName,
  threads = defaultOrtThreads(),
): Promise<NativeForwardOpen> {
  const loaded = loadOnnxRuntime();
  if (!loaded.ok) return { ok: false, reason: loaded.reason };
  const device = await chooseNativeDevice(loaded.ort, backend);
  if (device === null) return { ok: false, reason: `the ${backend} backend is a TensorFlow.js backend` };
  try {
    const model = buildForwardModel(weights);
    const { value: session, on } = await openOnDevice(device, 'run the predictor', (chosen) =>
      loaded.ort.InferenceSession.create(model, nativeSessionOptions(chosen.device, threads)),
    );
    return { ok: true, forward: forwardOn(loaded.ort, session, weights, on.device, threads, on.reason) };
  } catch (e) {
    return { ok: false, reason: `onnxruntime could not run the predictor (${firstLine(e)})` };
  }
}

function forwardOn(
  ort: OrtModuleLike,
  session: OrtSessionLike,
  weights: PredictorWeights,
  device: NativeDevice,
  threads: number,
  reason: string | undefined,
): NativeForward {
  const { inputs, outputs } = weights.spec;
  return {
    label: nativeEngineLabel(device, threads),
    device,
    ...(reason !== undefined ? { reason } : {}),
    async predict(encodings) {
      const rows = encodings.length / inputs;
      if (!Number.isInteger(rows)) throw new RangeError(`${encodings.length} values are not rows of ${inputs} inputs`);
      if (rows === 0) return new Float32Array(0);
      const result = await session.run({ x: new ort.Tensor('float32', encodings, [rows, inputs]) });
      const y = result.y?.data;
      if (!(y instanceof Float32Array) || y.length !== rows * outputs)
        throw new Error(`onnxruntime returned no [${rows}, ${outputs}] predictions`);
      return y;
    },
    release: () => session.release(),
  };
}

/** The engine a whole-grid prediction ran on, as reports show it, and why it is not a faster one. */
export interface GridEngine {
  /** e.g. `onnxruntime (native, 2 threads)`, `onnxruntime (native, CUDA)`, `tfjs (wasm)`. */
  readonly label: string;
  /** Why the native engine (or the first device tried) is not used; absent when it is. */
  readonly reason?: string;
}

/** Options of the whole-grid predictions on the best engine. */
export interface EngineGridOptions extends GridPredictionOptions {
  /** Told which engine predicts the rows, once it is open and before the first row. */
  onEngine?: (engine: GridEngine) => void;
  /** Intra-op threads of the native CPU provider (default `defaultOrtThreads()`). */
  threads?: number;
}

/**
 * Every grid row of `layout` predicted by the predictor `weights` ([rows, 9], unscaled; see `predictGridWith`), on
 * the native engine where `backend` allows it and onnxruntime-node loads, else on TensorFlow.js (`ensureBackend`
 * of `backend`). Both give the same values up to float rounding. Resolves to the predictions and the engine.
 */
export async function predictGridOnBestEngine(
  weights: PredictorWeights,
  layout: KernelMap,
  backend: BackendName,
  options: EngineGridOptions = {},
): Promise<{ predictions: Float32Array; engine: GridEngine }> {
  const { onEngine, threads, ...grid } = options;
  // A TensorFlow.js backend asked for by name is the user's choice, not a fallback: no reason.
  const native: NativeForwardOpen =
    nativeDevicesFor(backend) === null ? { ok: false, reason: '' } : await openNativeForward(weights, backend, threads);
  if (native.ok) {
    const { forward } = native;
    try {
      const engine: GridEngine = {
        label: forward.label,
        ...(forward.reason !== undefined ? { reason: forward.reason } : {}),
      };
      onEngine?.(engine);
      const predictions = await predictGridWith(weights.spec, layout, (x) => forward.predict(x), grid);
      return { predictions, engine };
    } finally {
      await forward.release();
    }
  }
  const tfjs = await ensureBackend(backend);
  const predictor = Predictor.fromWeights(weights);
  try {
    const engine: GridEngine = {
      label: `tfjs (${tfjs.name})`,
      ...(native.reason !== '' ? { reason: native.reason } : {}),
    };
    onEngine?.(engine);
    const predictions = await predictGridAsync(predictor, layout, grid);
    return { predictions, engine };
  } finally {
    predictor.dispose();
  }
}

/**
 * Decodes: every represented layer regenerated from predictor `weights` and `layout`, in the [C_out, C_in, k, k]
 * kernel layout (one Float32Array per layout layer; `assembleLayers` of `predictGridOnBestEngine`), with the engine.
 */
export async function decodeLayers(
  weights: PredictorWeights,
  layout: KernelMap,
  backend: BackendName,
  options: EngineGridOptions = {},
): Promise<{ layers: Float32Array[]; engine: GridEngine }> {
  checkKernelMap(layout);
  const { predictions, engine } = await predictGridOnBestEngine(weights, layout, backend, options);
  return { layers: assembleLayers(predictions, layout), engine };
}
