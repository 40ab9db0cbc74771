/**
 * Model runners: the forward pass of a runnable model on batches, with the weights under test bound by name, on the
 * engine `backend/modelEngine.ts` chooses. The onnxruntime runner runs the ONNX file itself: one session on the
 * model's own weights, and one per set of weights under test, whose graph is the file re-emitted with those
 * initializers replaced (`graph/onnxRebind.ts`), fed typed arrays. A TF.js LayersModel runs there as its graph
 * lowered to ONNX (`graph/onnxLowering.ts`), the weights under test written as its initializers. The TensorFlow.js runner runs the graph IR with
 * the functional executor (`forwardBatch`). Both feed a model whose input is not 4-D its declared shape, run a model
 * that fixes its batch size (BlazeFace: 1) that many samples at a time, and return the outputs flattened per sample,
 * in the same order.
 */
import * as tf from '@tensorflow/tfjs-core';
import { basename, dirname } from 'node:path';
import type { BackendName, ModelEngineName } from '../../protocol/vocabulary';
import { chooseModelEngine, defaultEvalThreads, engineLabel } from '../backend/modelEngine';
import {
  chooseNativeDevice,
  CPU_DEVICE,
  nativeEngineLabel,
  openOnDevice,
  nativeDevicesFor,
  nativeSessionOptions,
  type NativeDeviceChoice,
} from '../backend/nativeDevice';
import {
  firstLine,
  type OrtModuleLike,
  type OrtModuleLoader,
  type OrtSessionLike,
  type OrtTensorLike,
} from '../backend/onnxRuntime';
import type { InputBatch } from '../data/batches';
import { weightTensors } from '../graph/execute';
import { describeRefusal, lowerGraph } from '../graph/onnxLowering';
import { rewriteOnnxWeights } from '../graph/onnxRebind';
import { FileByteSource } from '../io/byteSource';
import { BadInputError, throwIfAborted } from '../io/errors';
import { forwardBatch } from './forward';
import { imageInput } from './preprocessing';
import type { ExecutableModel } from './executableModel';
import { ownValue, setOwn } from '../io/text';

/** A weight's values: host float32 (row-major, the graph's shape) or a tfjs tensor (the caller keeps ownership). */
export type WeightValue = Float32Array | tf.Tensor;

/** The outputs of one batch: concatenated per sample ([n, perSample]), and each output's shape (batch first). */
export interface ForwardOutput {
  readonly values: Float32Array;
  readonly perSample: number;
  readonly shapes: number[][];
}

/** A set of weights made ready for repeated forward passes; release it with `dispose`. */
export interface PreparedWeights {
  dispose(): Promise<void>;
}

/** Runs one model's forward pass on the engine chosen for it. */
export interface ModelRunner {
  readonly engine: ModelEngineName;
  /** The engine as progress and reports name it, e.g. `onnxruntime (native, 2 threads)`, `tfjs (wasm)`. */
  readonly label: string;
  /**
   * Why the model runs on TensorFlow.js, or on onnxruntime's CPU when a GPU was asked for or tried (no GPU passed its
   * self-check); absent when it runs where asked.
   */
  readonly reason?: string;
  /**
   * Makes the model's weights with `overrides` substituted by name ready to run (an empty map: the model's own).
   * Names must be initializers of the graph, values of their shapes. Tensors are read, never disposed.
   */
  prepare(overrides: ReadonlyMap<string, WeightValue>): Promise<PreparedWeights>;
  /** The outputs of `weights` (from this runner's `prepare`) on `batch`. */
  forward(weights: PreparedWeights, batch: InputBatch): Promise<ForwardOutput>;
  /** Releases the runner's sessions and tensors (prepared weight sets are released by their own `dispose`). */
  dispose(): Promise<void>;
}

/** Options of `openModelRunner`. */
export interface RunnerOptions {
  /**
   * The user's backend preference: a native one (`auto`, `cpu-native`, `cuda`, `webgpu`) lets an ONNX model run on
   * onnxruntime, on the device `chooseNativeDevice` picks.
   */
  readonly backend: BackendName;
  /** The model's own weights as tensors, when the caller already holds them (the tfjs runner then reuses them). */
  readonly tensors?: Readonly<Record<string, tf.Tensor>>;
  /** Loads onnxruntime-node (default: `loadOnnxRuntime`'s). */
  readonly load?: OrtModuleLoader;
  /** Intra-op threads of the onnxruntime sessions (default: every core). */
  readonly threads?: number;
  readonly signal?: AbortSignal;
}

class TfjsWeights implements PreparedWeights {
  constructor(
    readonly tensors: Readonly<Record<string, tf.Tensor>>,
    private readonly owned: readonly tf.Tensor[],
  ) {}

  dispose(): Promise<void> {
    tf.dispose([...this.owned]);
    return Promise.resolve();
  }
}

class TfjsRunner implements ModelRunner {
  readonly engine = 'tfjs' as const;
  readonly label: string;
  private readonly base: Readonly<Record<string, tf.Tensor>>;
  private readonly ownsBase: boolean;

  constructor(
    private readonly model: ExecutableModel,
    readonly reason: string,
    tensors: Readonly<Record<string, tf.Tensor>> | undefined,
  ) {
    this.label = engineLabel('tfjs', tf.getBackend());
    this.base = tensors ?? weightTensors(model.graph, model.weights);
    this.ownsBase = tensors === undefined;
  }

  prepare(overrides: ReadonlyMap<string, WeightValue>): Promise<PreparedWeights> {
    const tensors: Record<string, tf.Tensor> = { ...this.base };
    const owned: tf.Tensor[] = [];
    for (const [name, value] of overrides) {
      const info = this.model.graph.initializers.get(name);
      if (info === undefined) throw new BadInputError(`The model has no weight named ${JSON.stringify(name)}.`);
      if (value instanceof Float32Array) {
        const t = tf.tensor(value, info.shape.slice(), 'float32');
        owned.push(t);
        setOwn(tensors, name, t);
      } else setOwn(tensors, name, value);
    }
    return Promise.resolve(new TfjsWeights(tensors, owned));
  }

  forward(weights: PreparedWeights, batch: InputBatch): Promise<ForwardOutput> {
    if (!(weights instanceof TfjsWeights)) throw new TypeError('weights were prepared by another runner');
    const input = imageInput(this.model.graph);
    const run = (sub: InputBatch): ForwardOutput =>
      forwardBatch(this.model.graph, weights.tensors, {
        data: sub.data,
        shape: feedDims(input.shape, sub, sub.shape[0]),
      });
    return inChunks(this.model, batch, (sub) => Promise.resolve(run(sub)));
  }

  dispose(): Promise<void> {
    if (this.ownsBase) tf.dispose(Object.values(this.base));
    return Promise.resolve();
  }
}

class OrtWeights implements PreparedWeights {
  constructor(
    readonly session: OrtSessionLike,
    private readonly owned: boolean,
  ) {}

  async dispose(): Promise<void> {
    if (this.owned) await this.session.release();
  }
}

/** Any numeric typed array onnxruntime returns, as float32 (int64 through Number: exact below 2^53). */
function toFloat32(data: unknown, name: string): Float32Array {
  if (data instanceof Float32Array) return data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Float32Array.from(data, (v) => Number(v));
  if (ArrayBuffer.isView(data) && !(data instanceof DataView))
    return Float32Array.from(data as unknown as ArrayLike<number>);
  throw new BadInputError(`The model's output ${JSON.stringify(name)} is not numeric.`);
}

/** The dims to feed `rows` samples of `batch` to an input declared as `declared` (batch first). */
function feedDims(declared: readonly (number | null)[], batch: InputBatch, rows: number): number[] {
  const perSample = batch.shape.slice(1).reduce((a, b) => a * b, 1);
  const rest = declared.slice(1);
  // A model whose input is not 4-D (a [N, 25, 96] feature window) takes the same values in its declared shape.
  if (declared.length > 0 && declared.length !== 4 && rest.every((d): d is number => d !== null)) {
    if (rest.reduce((a, b) => a * b, 1) === perSample) return [rows, ...rest];
  }
  return [rows, ...batch.shape.slice(1)];
}

/**
 * Runs `batch` through `run` in sub-batches of the model's declared batch size when its input fixes one (BlazeFace
 * takes exactly 1), else whole; a last sub-batch that falls short is padded with zeros and its padding rows dropped.
 * The outputs are joined in sample order, with the whole batch's shapes.
 */
async function inChunks(
  model: ExecutableModel,
  batch: InputBatch,
  run: (sub: InputBatch) => Promise<ForwardOutput>,
): Promise<ForwardOutput> {
  const n = batch.shape[0];
  const fixed = imageInput(model.graph).shape[0];
  if (typeof fixed !== 'number' || fixed <= 0 || fixed === n) return run(batch);
  const perInput = batch.data.length / n;
  const shape: InputBatch['shape'] = [fixed, batch.shape[1], batch.shape[2], batch.shape[3]];
  let values: Float32Array | undefined;
  let first: ForwardOutput | undefined;
  for (let start = 0; start < n; start += fixed) {
    const rows = Math.min(fixed, n - start);
    let data = batch.data.subarray(start * perInput, (start + rows) * perInput);
    if (rows < fixed) {
      const padded = new Float32Array(fixed * perInput);
      padded.set(data);
      data = padded;
    }
    const part = await run({ data, shape });
    first ??= part;
    values ??= new Float32Array(n * part.perSample);
    values.set(part.values.subarray(0, rows * part.perSample), start * part.perSample);
  }
  if (first === undefined || values === undefined) return run(batch);
  return { values, perSample: first.perSample, shapes: first.shapes.map((s) => [n, ...s.slice(1)]) };
}

/** The ONNX form of a TF.js LayersModel with `overrides` as its weights (the model's own elsewhere). */
function loweredBytes(model: ExecutableModel, overrides: ReadonlyMap<string, Float32Array>): Uint8Array {
  const values = new Map(model.weights);
  for (const [name, v] of overrides) values.set(name, v);
  const lowered = lowerGraph(model.graph, values, { name: basename(dirname(model.path)) });
  if (!lowered.ok) throw new BadInputError(`The model has no ONNX form: ${describeRefusal(lowered.refusal)}.`);
  return lowered.value.bytes;
}

class OrtRunner implements ModelRunner {
  readonly engine = 'onnxruntime' as const;
  readonly label: string;
  readonly reason?: string;
  private readonly baseWeights: OrtWeights;

  private constructor(
    private readonly ort: OrtModuleLike,
    private readonly model: ExecutableModel,
    private readonly options: Record<string, unknown>,
    base: OrtSessionLike,
    threads: number,
    device: NativeDeviceChoice,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.label = nativeEngineLabel(device.device, threads);
    if (device.reason !== undefined) this.reason = device.reason;
    this.baseWeights = new OrtWeights(base, false);
  }

  /**
   * A session on the model file as it is (an ONNX model) or on `lowered`, the ONNX form of a TF.js LayersModel;
   * throws (onnxruntime's message) when onnxruntime refuses it.
   */
  static async open(
    ort: OrtModuleLike,
    model: ExecutableModel,
    threads: number,
    device: NativeDeviceChoice,
    lowered: Uint8Array | undefined,
    signal?: AbortSignal,
  ): Promise<OrtRunner> {
    // External data of a rewritten model (given as bytes) is found beside the model file.
    const options = nativeSessionOptions(device.device, threads, {
      model_external_initializers_file_folder_path: dirname(model.path),
    });
    // onnxruntime reads an ONNX file itself (and its external data beside it); a lowered LayersModel comes as bytes.
    const session = await ort.InferenceSession.create(lowered ?? model.path, options);
    throwIfAborted(signal);
    return new OrtRunner(ort, model, options, session, threads, device, signal);
  }

  async prepare(overrides: ReadonlyMap<string, WeightValue>): Promise<PreparedWeights> {
    if (overrides.size === 0) return this.baseWeights;
    const values = new Map<string, Float32Array>();
    for (const [name, value] of overrides) {
      if (!this.model.graph.initializers.has(name))
        throw new BadInputError(`The model has no weight named ${JSON.stringify(name)}.`);
      values.set(name, value instanceof Float32Array ? value : (value.dataSync() as Float32Array));
    }
    if (this.model.format === 'tfjs')
      return new OrtWeights(
        await this.ort.InferenceSession.create(loweredBytes(this.model, values), this.options),
        true,
      );
    const source = await FileByteSource.open(this.model.path);
    let bytes: Uint8Array;
    try {
      bytes = (await rewriteOnnxWeights(source, this.model.graph, { values }, this.signal)).bytes;
    } finally {
      await source.close();
    }
    return new OrtWeights(await this.ort.InferenceSession.create(bytes, this.options), true);
  }

  forward(weights: PreparedWeights, batch: InputBatch): Promise<ForwardOutput> {
    if (!(weights instanceof OrtWeights)) throw new TypeError('weights were prepared by another runner');
    return inChunks(this.model, batch, (sub) => this.run(weights.session, sub));
  }

  private async run(session: OrtSessionLike, batch: InputBatch): Promise<ForwardOutput> {
    const input = imageInput(this.model.graph);
    const n = batch.shape[0];
    const x = new this.ort.Tensor('float32', batch.data, feedDims(input.shape, batch, n));
    const result: Record<string, OrtTensorLike> = await session.run({ [input.name]: x });
    const flat = this.model.graph.outputs.map((name) => {
      const t = ownValue(result, name);
      if (t === undefined) throw new BadInputError(`The model's output ${JSON.stringify(name)} was not computed.`);
      if (t.dims[0] !== n)
        throw new BadInputError(
          `The model's output ${JSON.stringify(name)} has ${t.dims[0] ?? 0} rows for a batch of ${n}; only batch-first outputs can be compared.`,
        );
      return { data: toFloat32(t.data, name), dims: t.dims };
    });
    const shapes = flat.map((f) => [...f.dims]);
    if (flat.length === 1 && flat[0] !== undefined)
      return { values: flat[0].data, perSample: flat[0].data.length / n, shapes };
    // Rows are samples: each sample's outputs side by side, as forwardBatch concatenates them.
    const perSample = flat.reduce((s, f) => s + f.data.length / n, 0);
    const values = new Float32Array(n * perSample);
    for (let s = 0; s < n; s++) {
      let at = s * perSample;
      for (const f of flat) {
        const size = f.data.length / n;
        values.set(f.data.subarray(s * size, (s + 1) * size), at);
        at += size;
      }
    }
    return { values, perSample, shapes };
  }

  async dispose(): Promise<void> {
    await this.baseWeights.session.release();
  }
}

/**
 * Opens the runner for `model`: onnxruntime when `chooseModelEngine` picks it (for a TF.js LayersModel, when its
 * graph lowers to ONNX) and onnxruntime accepts the model, else TensorFlow.js (on the backend already initialised),
 * with the reason. Never fails for a missing or refusing native engine; throws only what the model itself causes
 * (unreadable file) or `AbortError`.
 */
export async function openModelRunner(model: ExecutableModel, options: RunnerOptions): Promise<ModelRunner> {
  let lowered: Uint8Array | undefined;
  let noOnnxForm: string | undefined;
  if (model.format === 'tfjs' && nativeDevicesFor(options.backend) !== null) {
    const result = lowerGraph(model.graph, model.weights, { name: basename(dirname(model.path)) });
    if (result.ok) lowered = result.value.bytes;
    else noOnnxForm = describeRefusal(result.refusal);
  }
  const choice = chooseModelEngine(options.backend, model.format, options.load, noOnnxForm);
  if (choice.engine === 'tfjs') return new TfjsRunner(model, choice.reason, options.tensors);
  const threads = Math.max(1, Math.floor(options.threads ?? defaultEvalThreads()));
  const device = (await chooseNativeDevice(choice.ort, options.backend)) ?? CPU_DEVICE;
  try {
    const opened = await openOnDevice(device, 'load the model', (on) =>
      OrtRunner.open(choice.ort, model, threads, on, lowered, options.signal),
    );
    return opened.value;
  } catch (e) {
    throwIfAborted(options.signal);
    return new TfjsRunner(model, `onnxruntime could not load the model (${firstLine(e)})`, options.tensors);
  }
}
