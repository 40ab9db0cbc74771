/**
 * The reconstruction phase of NeRN: trains a predictor so that, from each kernel's (permuted) coordinate encoding, it
 * regenerates the model's 3×3 (and 1×1) convolution kernels. Input is plain data, output is plain data (predictor
 * weights, the layout needed to decode, and the reconstructed layers), progress goes through callbacks, and an
 * AbortSignal is honoured between steps. Optionally the last steps are quantisation-aware (`quantization`): the
 * forward pass sees the int8/int4 predictor the artifact will store, the optimiser updates the float weights
 * (straight-through). Needs an initialised tfjs backend (see src/core/backend/tfjsBackend.ts).
 */
import { DEFAULT_COMPRESS_OPTIONS } from '../../protocol/defaults';
import type { BackendName, PredictorDtype } from '../../protocol/vocabulary';
import { chooseNativeDevice, CPU_DEVICE, nativeEngineLabel, openOnDevice } from '../backend/nativeDevice';
import { firstLine } from '../backend/onnxRuntime';
import * as tf from '@tensorflow/tfjs-core';
import { BadInputError, CancelledError } from '../io/errors';
import type { QuantBits } from '../tensors/quantize';
import { encodeGrid, encodeRows, encodingWidth, FAST_ENCODING, type EncodingSpec, type GridShape } from './encoding';
import {
  assembleLayers,
  buildKernelMap,
  gridShapes,
  gridTargets,
  KERNEL_OUTPUTS,
  layerErrors,
  layerPermutation,
  predictGridAsync,
  validateLayers,
  type GridTargets,
  type KernelLayer,
  type LayerError,
  type KernelMap,
  type OutputScaleMode,
} from './kernelMap';
import { adamConfig, nernRangerConfig, NernOptimizer, type OptimizerConfig } from './optimizer';
import type { PermutationKind } from './permutation';
import { loadOnnxRuntime, OrtTrainer, ortUnsupportedReason } from './ortStep';
import {
  nernPredictorSpec,
  Predictor,
  predictorParameterCount,
  predictorQuantBits,
  quantizedPredictorWeights,
  rmseLoss,
  type PredictorWeights,
} from './predictor';
import { Rng } from './rng';
import { predictGridOnBestEngine } from './nativeForward';

/** Predictor dtypes that store integer codes, the ones quantisation-aware training is for. */
export type QuantizedPredictorDtype = 'int8' | 'int4';

/**
 * Quantisation-aware training of a run: steps `fromStep` … `steps − 1` (0-based; `steps − fromStep` of them) run on
 * the predictor fake-quantised to `dtype` (tensors/quantize.ts, one scale per output unit), with straight-through
 * gradients to the float weights. `fromStep = steps` trains in float only, and still evaluates as below.
 */
export interface TrainQuantization {
  dtype: QuantizedPredictorDtype;
  /** First quantisation-aware step, in [0, steps]. */
  fromStep: number;
}

/** Options of a reconstruction run. Every field has a default (see `DEFAULT_TRAIN_OPTIONS`). */
export interface TrainOptions {
  /** Predictor hidden width h (parameters 3h² + 253h + 9). */
  hidden: number;
  /** Optimisation steps. */
  steps: number;
  /** Kernels per step (NeRN: 4,096). Capped at the number of kernels. */
  batchSize: number;
  /** 'adam' (default, measured to learn much faster here) or 'ranger' (NeRN's RAdam + Lookahead). */
  optimizer: 'adam' | 'ranger';
  /** Peak learning rate; undefined = the optimizer's default (adam: DEFAULT_ADAM_LR = 1e-2, ranger: NeRN's 5e-3). */
  lr?: number;
  /** Learning-rate schedule shape; the cosine runs over `steps`. */
  schedule: 'cosine' | 'constant';
  /** Linear warm-up steps. */
  warmupSteps: number;
  /** Floor of the cosine. */
  minLr: number;
  /** Field-by-field overrides of the optimiser configuration (β, eps, weight decay, lookahead…). */
  optimizerOverrides?: Partial<OptimizerConfig>;
  /** Seed of initialisation and batch sampling. Same seed + same backend → same result. */
  seed: number;
  /** Smoothness permutation (NeRN's best: crossfilter). */
  permutation: PermutationKind;
  /** Per-layer output scaling ('layer': outputs are multiplied by the layer's weight RMS). */
  outputScale: OutputScaleMode;
  /** Probability that a step's batch is uniform without replacement (else ∝ kernel L2 norm, with replacement). */
  uniformFraction: number;
  /** Steps between progress callbacks. */
  progressEvery: number;
  /** Steps between per-layer evaluations (all kernels predicted); 0 = only at the end. */
  evalEvery: number;
  /** Detect collapse (constant output, non-finite loss), roll back to the last healthy weights and cut the learning rate 4×. */
  collapseGuard: boolean;
  /** Steps between collapse checks; each healthy check also snapshots the weights to roll back to. */
  guardEvery: number;
  /** Positional encoding (default FAST_ENCODING: NeRN's 240-input layout with rising frequencies; NERN_ENCODING is the paper's). */
  encoding: EncodingSpec;
  /** Largest pre-computed encoding tensor in bytes; bigger grids are encoded per batch on the CPU. */
  maxEncodingBytes: number;
  /**
   * Which engine runs the training step: 'tfjs' (the active tfjs backend), 'onnxruntime' (the optional native
   * `onnxruntime-node` package: one ONNX graph per Adam step) or 'auto' (onnxruntime when installed and the optimiser
   * is supported, else tfjs). A missing or failing onnxruntime never fails the run: it falls back to tfjs with a reason.
   * Evaluation, the collapse guard and the returned weights are the same code on both.
   */
  engine: 'tfjs' | 'onnxruntime' | 'auto';
  /** Intra-op threads of the onnxruntime engine; 0 = default (the machine's parallelism, at most 4). */
  engineThreads: number;
  /**
   * The backend preference that picks the onnxruntime engine's device (`nativeDevicesFor`): `auto` takes a GPU that
   * passes its self-check, else the CPU; `cpu-native` the CPU; `cuda`/`webgpu` that GPU, else the CPU. Default `auto`.
   */
  nativeBackend: BackendName;
  /**
   * The predictor will be stored quantised: train its last steps for it (see `TrainQuantization`). Evaluations from
   * `fromStep` on, the final evaluation and the returned reconstruction are then those of the quantised predictor
   * (dequantizeMatrix(quantizeMatrix(W))), i.e. of what the artifact regenerates; `TrainResult.predictor` stays the
   * float weights, which quantise to exactly the forward pass the quantisation-aware steps saw.
   */
  quantization?: TrainQuantization;
}

/**
 * Defaults, chosen by measurement on a Fashion-MNIST ResNet-20 (29,712 kernels, h = 160, batch 4,096; RMSE as a
 * fraction of the weight RMS after 1,000 steps, PyTorch reference, same as this engine within ±0.02):
 * NeRN's settings (Ranger lr 5e-3, base-0.76 encoding) 0.995; Adam 1e-3 with the same encoding 0.98–0.99;
 * Adam 1e-3 + rising encoding (FAST_ENCODING) 0.65; + lr 1e-2 with 100 warm-up steps 0.33; + per-layer output scale
 * 0.32 (lr 3e-3: 0.47; 2e-2: 0.38; 3e-2: 0.44; Ranger 5e-3 with the rising encoding: 0.67).
 */
export const DEFAULT_TRAIN_OPTIONS: Readonly<TrainOptions> = Object.freeze({
  hidden: 160,
  steps: DEFAULT_COMPRESS_OPTIONS.steps,
  batchSize: 4096,
  optimizer: 'adam',
  lr: undefined,
  schedule: 'cosine',
  warmupSteps: 100,
  minLr: 0,
  seed: 0,
  permutation: 'crossfilter',
  outputScale: 'layer',
  uniformFraction: 0.8,
  progressEvery: 10,
  evalEvery: 0,
  collapseGuard: true,
  guardEvery: 100,
  encoding: FAST_ENCODING,
  maxEncodingBytes: 256 * 1024 * 1024,
  engine: 'tfjs',
  engineThreads: 0,
  nativeBackend: 'auto',
});

/** Default peak learning rate of Adam here (Ranger keeps NeRN's 5e-3). */
export const DEFAULT_ADAM_LR = 1e-2;

/** Progress of a run, reported every `progressEvery` steps. */
export interface TrainProgress {
  /** Steps completed. */
  step: number;
  /** Mean batch RMSE (weight units) over the steps since the last report. */
  loss: number;
  /** Learning rate of the last step. */
  lr: number;
  /** Steps per second over the steps since the last report. */
  stepsPerSecond: number;
}

/** A per-layer evaluation (all kernels predicted). */
export interface TrainEvaluation {
  step: number;
  /** RMSE over all represented weights. */
  rmse: number;
  /** RMS of all represented weights (the RMSE of predicting zeros). */
  weightRms: number;
  layers: LayerError[];
  /**
   * The reconstructed layers at this step, in their original layout (un-permuted, output scales applied), assembled
   * on demand from the predictions the evaluation already made. Valid only during the `onEvaluation` call.
   */
  reconstruction(): Float32Array[];
}

/** The engine that runs the training steps of a run. */
export interface TrainEngineInfo {
  /** 'onnxruntime (native, N threads)' or 'tfjs (<backend>)'. */
  name: string;
  /** Why the engine asked for (onnxruntime or auto) is not the one used; absent when it is. */
  fallbackReason?: string;
}

/** Callbacks and cancellation of a run. */
export interface TrainHooks {
  /** Called once, before the first step, with the engine chosen. */
  onEngine?: (engine: TrainEngineInfo) => void;
  onProgress?: (progress: TrainProgress) => void;
  onEvaluation?: (evaluation: TrainEvaluation) => void;
  /**
   * While every grid row is predicted (the evaluations and the final reconstruction): rows done of the total, after
   * each batch of 8,192. For a large model this is minutes with no step in between.
   */
  onReconstruction?: (done: number, total: number) => void;
  /** Aborting it stops the run between steps (and between batches of a whole-grid prediction); the promise then rejects with CancelledError. */
  signal?: AbortSignal;
  /**
   * Aborting it ends the run early but keeps it (Stop and Save): the loop stops after the step under way (at least one
   * step runs), and the result is that of the steps done, with `stoppedAt` set.
   */
  stop?: AbortSignal;
}

/** Result of a run: everything needed to decode, plus the reconstruction and its error. */
export interface TrainResult {
  predictor: PredictorWeights;
  kernelMap: KernelMap;
  /** Reconstructed weights per layer, in the original [C_out, C_in, k, k] layout (un-permuted, scaled). */
  reconstruction: Float32Array[];
  /** Final evaluation. */
  evaluation: TrainEvaluation;
  /** Predictor parameters. */
  predictorParameters: number;
  /** Represented weights (Σ kernels × 9 or 1). */
  representedWeights: number;
  /** Steps done: the options' steps, or fewer when stopped early. */
  steps: number;
  /** The step after which `hooks.stop` ended the run (below the options' steps); absent when it ran to the end. */
  stoppedAt?: number;
  /** Wall-clock seconds of the optimisation loop (excluding permutation and final evaluation). */
  trainSeconds: number;
  /** Seconds spent computing permutations. */
  permutationSeconds: number;
  /** Effective options. */
  options: TrainOptions;
  /** What the collapse guard did, one line per event. */
  guardEvents: string[];
  /** The engine that ran the steps. */
  engine: TrainEngineInfo;
}

/** Fills defaults. */
export function resolveTrainOptions(options: Partial<TrainOptions> = {}): TrainOptions {
  const o: TrainOptions = { ...DEFAULT_TRAIN_OPTIONS, ...stripUndefined(options) };
  const positiveInt = (key: 'hidden' | 'steps' | 'batchSize' | 'progressEvery' | 'guardEvery'): void => {
    if (!Number.isInteger(o[key]) || o[key] < 1)
      throw new RangeError(`${key} must be a positive integer, got ${String(o[key])}`);
  };
  positiveInt('hidden');
  positiveInt('steps');
  positiveInt('batchSize');
  positiveInt('progressEvery');
  positiveInt('guardEvery');
  if (!Number.isInteger(o.evalEvery) || o.evalEvery < 0)
    throw new RangeError(`evalEvery must be ≥ 0, got ${o.evalEvery}`);
  if (!(o.uniformFraction >= 0 && o.uniformFraction <= 1)) throw new RangeError(`uniformFraction must be in [0, 1]`);
  if (!['tfjs', 'onnxruntime', 'auto'].includes(o.engine))
    throw new RangeError(`engine must be tfjs, onnxruntime or auto, got ${o.engine as string}`);
  if (!Number.isInteger(o.engineThreads) || o.engineThreads < 0)
    throw new RangeError(`engineThreads must be an integer ≥ 0, got ${o.engineThreads}`);
  if (o.quantization !== undefined) {
    const { dtype, fromStep } = o.quantization;
    if (!(['int8', 'int4'] as const satisfies readonly QuantizedPredictorDtype[]).includes(dtype))
      throw new RangeError(`quantization.dtype must be int8 or int4, got ${dtype as string}`);
    if (!Number.isInteger(fromStep) || fromStep < 0 || fromStep > o.steps)
      throw new RangeError(`quantization.fromStep must be a whole number from 0 to ${o.steps}, got ${fromStep}`);
  }
  return o;
}

/**
 * The `quantization` of a compression's reconstruction run of `steps` steps, from the user's options: none for a
 * float predictor dtype (f32, f16, or none given); else the last `qatSteps` steps (default 0: quantised after
 * training, evaluated as stored). A `BadInputError` naming the option for `qatSteps` out of [0, steps], or given
 * without an int8/int4 predictor dtype.
 */
export function compressQuantization(
  options: { predictorDtype?: PredictorDtype; qatSteps?: number },
  steps: number,
): TrainQuantization | undefined {
  const qatSteps = options.qatSteps ?? 0;
  if (!Number.isInteger(qatSteps) || qatSteps < 0 || qatSteps > steps)
    throw new BadInputError(
      `The number of quantisation-aware steps must be a whole number from 0 to the ${steps} training steps, not ${qatSteps}.`,
      { option: 'qatSteps' },
    );
  const dtype = options.predictorDtype ?? 'f32';
  if (predictorQuantBits(dtype) === undefined) {
    if (qatSteps > 0)
      throw new BadInputError(
        `Quantisation-aware steps train for an int8 or int4 predictor; the predictor dtype is ${dtype}.`,
        { option: 'qatSteps' },
      );
    return undefined;
  }
  return { dtype: dtype === 'int4' ? 'int4' : 'int8', fromStep: steps - qatSteps };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The optimiser configuration a run with `o` uses. */
export function optimizerConfigFor(o: TrainOptions): OptimizerConfig {
  const base = o.optimizer === 'ranger' ? nernRangerConfig(o.steps) : adamConfig(o.steps, DEFAULT_ADAM_LR);
  const config: OptimizerConfig = {
    ...base,
    ...(o.optimizerOverrides ?? {}),
    // Warm-up is capped at a fifth of the run so short runs still get their cosine.
    schedule: {
      kind: o.schedule,
      totalSteps: o.steps,
      minLr: o.minLr,
      warmupSteps: Math.min(o.warmupSteps, Math.floor(o.steps / 5)),
    },
  };
  if (o.lr !== undefined) config.lr = o.lr;
  return config;
}

/**
 * Draws each step's kernel indices: with probability `uniformFraction` a uniform draw without replacement (a partial
 * Fisher–Yates shuffle of a persistent index array), otherwise a draw with replacement proportional to each kernel's
 * L2 norm (binary search in the cumulative norms). Seeded, so the sequence is reproducible.
 */
export class BatchSampler {
  private readonly pool: Int32Array;
  private readonly cdf: Float64Array;
  private readonly total: number;

  constructor(
    norms: Float32Array,
    private readonly rng: Rng,
    private readonly uniformFraction: number,
  ) {
    const n = norms.length;
    this.pool = new Int32Array(n);
    for (let i = 0; i < n; i++) this.pool[i] = i;
    this.cdf = new Float64Array(n);
    let s = 0;
    for (let i = 0; i < n; i++) {
      s += norms[i] ?? 0;
      this.cdf[i] = s;
    }
    this.total = s;
  }

  /** Fills `out` (length ≤ number of kernels) with the next batch's indices. */
  next(out: Int32Array): void {
    const n = this.pool.length;
    const b = out.length;
    if (this.rng.next() < this.uniformFraction || !(this.total > 0)) {
      for (let i = 0; i < b; i++) {
        const j = i + this.rng.int(n - i);
        const tmp = this.pool[i] ?? 0;
        const pj = this.pool[j] ?? 0;
        this.pool[i] = pj;
        this.pool[j] = tmp;
        out[i] = pj;
      }
    } else {
      for (let i = 0; i < b; i++) {
        const u = this.rng.next() * this.total;
        let lo = 0;
        let hi = n - 1;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if ((this.cdf[mid] ?? 0) > u) hi = mid;
          else lo = mid + 1;
        }
        out[i] = lo;
      }
    }
  }
}

/** Data that lives for the whole run: tensors for the tfjs engine, host arrays (in `grid`) for onnxruntime. */
interface RunTensors {
  /** [rows, width] encodings as a tensor (tfjs engine, precomputed), else null. */
  encodings: tf.Tensor2D | null;
  /** [rows, width] encodings on the host (onnxruntime engine, precomputed), else null. */
  hostEncodings: Float32Array | null;
  targets: tf.Tensor2D | null;
  scales: tf.Tensor2D | null;
  mask: tf.Tensor2D | null;
}

/**
 * What the training loop needs from an engine. The tfjs `Predictor` stays the one place predictions are made
 * (collapse probe, evaluations, final weights): `sync()` makes its variables hold the engine's current weights.
 */
interface StepEngine {
  readonly info: TrainEngineInfo;
  /**
   * One optimisation step on rows `idx` (`batchEnc`: their encodings when not precomputed); resolves to the batch RMSE.
   * `quantBits`: a quantisation-aware step (fake-quantised forward, straight-through gradient).
   */
  step(idx: Int32Array, batchEnc: Float32Array | null, represented: number, quantBits?: QuantBits): Promise<number>;
  /** Makes the predictor's variables hold the current weights. */
  sync(): void;
  /** Remembers the current weights as the healthy state to roll back to. */
  snapshot(): void;
  /** Restores the last snapshot and resets the optimiser's moments (the schedule position is kept). */
  rollback(): void;
  lrScale: number;
  readonly lr: number;
  readonly nextLr: number;
  flushDenormals(): void;
  dispose(): Promise<void>;
}

/** The tfjs step: `variableGrads` through the customGrad layers, then `NernOptimizer`. */
function tfjsEngine(
  predictor: Predictor,
  optimizer: NernOptimizer,
  t: RunTensors,
  batch: number,
  width: number,
  fallbackReason?: string,
): StepEngine {
  const names = predictor.variables.map((v) => v.name);
  let snapshot: tf.Tensor[] | null = null;
  const dropSnapshot = (): void => {
    snapshot?.forEach((s) => {
      s.dispose();
    });
    snapshot = null;
  };
  return {
    info: { name: `tfjs (${tf.getBackend()})`, ...(fallbackReason !== undefined ? { fallbackReason } : {}) },
    async step(idx, batchEnc, represented, quantBits) {
      const lossTensor = tf.tidy(() => {
        const ids = tf.tensor1d(idx, 'int32');
        const x = t.encodings
          ? tf.gather(t.encodings, ids)
          : tf.tensor2d(batchEnc ?? new Float32Array(0), [batch, width]);
        const target = tf.gather(t.targets as tf.Tensor2D, ids);
        const scale = tf.gather(t.scales as tf.Tensor2D, ids);
        const mask = t.mask ? tf.gather(t.mask, ids) : null;
        const { value, grads } = tf.variableGrads(() => {
          return rmseLoss(predictor.apply(x, quantBits), target, scale, mask, represented);
        }, predictor.variables);
        optimizer.step(names.map((n) => grads[n] as tf.Tensor));
        return value;
      });
      const loss = (await lossTensor.data())[0] ?? Number.NaN;
      lossTensor.dispose();
      return loss;
    },
    sync() {
      // The variables are the weights.
    },
    snapshot() {
      dropSnapshot();
      snapshot = predictor.variables.map((v) => tf.keep(v.clone()));
    },
    rollback() {
      if (snapshot) restore(predictor, snapshot);
      optimizer.reset();
    },
    get lrScale() {
      return optimizer.lrScale;
    },
    set lrScale(value: number) {
      optimizer.lrScale = value;
    },
    get lr() {
      return optimizer.lr;
    },
    get nextLr() {
      return optimizer.nextLr;
    },
    flushDenormals() {
      optimizer.flushDenormals();
    },
    dispose() {
      dropSnapshot();
      optimizer.dispose();
      return Promise.resolve();
    },
  };
}

/** The onnxruntime step: gathers the batch on the host and runs the one-graph Adam step of `OrtTrainer`. */
function ortEngine(
  trainer: OrtTrainer,
  predictor: Predictor,
  grid: GridTargets,
  hostEncodings: Float32Array | null,
  batch: number,
  width: number,
  deviceReason: string | undefined,
): StepEngine {
  const x = hostEncodings ? new Float32Array(batch * width) : null;
  const targets = new Float32Array(batch * KERNEL_OUTPUTS);
  const scales = new Float32Array(batch);
  const mask = grid.mask ? new Float32Array(batch * KERNEL_OUTPUTS) : null;
  let snapshot: Float32Array[] | null = null;
  return {
    info: {
      name: nativeEngineLabel(trainer.device, trainer.threads),
      ...(deviceReason !== undefined ? { fallbackReason: deviceReason } : {}),
    },
    step(idx, batchEnc, represented, quantBits) {
      for (let i = 0; i < idx.length; i++) {
        const r = idx[i] ?? 0;
        if (x && hostEncodings) x.set(hostEncodings.subarray(r * width, (r + 1) * width), i * width);
        targets.set(grid.targets.subarray(r * KERNEL_OUTPUTS, (r + 1) * KERNEL_OUTPUTS), i * KERNEL_OUTPUTS);
        scales[i] = grid.rowScale[r] ?? 1;
        if (mask && grid.mask)
          mask.set(grid.mask.subarray(r * KERNEL_OUTPUTS, (r + 1) * KERNEL_OUTPUTS), i * KERNEL_OUTPUTS);
      }
      return trainer.step(
        { x: x ?? batchEnc ?? new Float32Array(0), t: targets, s: scales, mask, count: represented },
        quantBits !== undefined,
      );
    },
    sync() {
      const w = trainer.weights();
      predictor.variables.forEach((v, i) => {
        const layer = w.layers[i >> 1];
        if (!layer) return;
        const data = i % 2 === 0 ? layer.weight : layer.bias;
        tf.tidy(() => {
          v.assign(tf.tensor(data, v.shape));
        });
      });
    },
    snapshot() {
      snapshot = trainer.snapshot();
    },
    rollback() {
      if (snapshot) trainer.restore(snapshot);
      trainer.reset();
    },
    get lrScale() {
      return trainer.lrScale;
    },
    set lrScale(value: number) {
      trainer.lrScale = value;
    },
    get lr() {
      return trainer.lr;
    },
    get nextLr() {
      return trainer.nextLr;
    },
    flushDenormals() {
      trainer.flushDenormals();
    },
    dispose() {
      return trainer.dispose();
    },
  };
}

/**
 * Tries to start the onnxruntime engine on the device `nativeBackend` picks; resolves to the trainer (with the reason
 * a GPU that was tried is not used, if any), or to the reason it cannot run at all. A GPU that passed the device
 * self-check but refuses the training graph falls back to the CPU, and the reason says so.
 */
async function tryOrtTrainer(
  predictor: Predictor,
  config: OptimizerConfig,
  masked: boolean,
  threads: number,
  quantBits: QuantBits | undefined,
  nativeBackend: BackendName,
): Promise<{ ok: true; trainer: OrtTrainer; deviceReason?: string } | { ok: false; reason: string }> {
  const unsupported = ortUnsupportedReason(config);
  if (unsupported !== null) return { ok: false, reason: unsupported };
  const loaded = loadOnnxRuntime();
  if (!loaded.ok) return { ok: false, reason: loaded.reason };
  const device = (await chooseNativeDevice(loaded.ort, nativeBackend)) ?? CPU_DEVICE;
  try {
    const { value: trainer, on } = await openOnDevice(device, 'build the training step', (chosen) =>
      OrtTrainer.create(loaded.ort, predictor.weights(), config, {
        masked,
        device: chosen.device,
        ...(threads > 0 ? { threads } : {}),
        ...(quantBits !== undefined ? { quantBits } : {}),
      }),
    );
    return { ok: true, trainer, ...(on.reason !== undefined ? { deviceReason: on.reason } : {}) };
  } catch (e) {
    return { ok: false, reason: `onnxruntime could not build the training step (${firstLine(e)})` };
  }
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const GUARD_MAX_ROLLBACKS = 4;
/** Learning-rate factor applied at each rollback. */
const GUARD_LR_FACTOR = 0.25;
/**
 * The output has collapsed when its spread (std over the probe rows) falls below this fraction of the untrained
 * predictor's spread: dead ReLUs make the output constant (spread → 0), while a healthy run's spread grows.
 */
const COLLAPSE_FRACTION = 0.01;
const FLUSH_EVERY = 500;
const PROBE_ROWS = 2048;

/**
 * Trains a predictor to reconstruct `layers` (3×3 and 1×1 convolutions as plain data). Coordinates are
 * (l/L, f/C_out, c/C_in) after the permutation; encodings are computed once (or per batch for huge grids); each step
 * draws `batchSize` kernels, gathers their encodings and targets, and minimises the RMSE of the scaled predictor output.
 * The step runs on the engine `options.engine` selects (tfjs, or the optional native onnxruntime); sampling, schedule,
 * collapse guard and evaluation are shared. Rejects with CancelledError if `hooks.signal` aborts (checked between
 * steps; the loop yields to the event loop every step so an abort is seen within one step). Leaks no tensors,
 * including on error or cancel.
 */
export async function trainReconstruction(
  layers: readonly KernelLayer[],
  options: Partial<TrainOptions> = {},
  hooks: TrainHooks = {},
): Promise<TrainResult> {
  const o = resolveTrainOptions(options);
  const { signal } = hooks;
  if (signal?.aborted) throw new CancelledError();
  validateLayers(layers);
  const permStart = performance.now();
  const permutations: Int32Array[] = [];
  for (const layer of layers) {
    // One layer at a time, yielding in between, so a cancel is seen during long permutation searches too.
    await yieldToEventLoop();
    if (signal?.aborted) throw new CancelledError();
    permutations.push(layerPermutation(layer, o.permutation));
  }
  const layout = buildKernelMap(layers, o.permutation, o.outputScale, o.encoding, permutations);
  const permutationSeconds = (performance.now() - permStart) / 1000;
  const grid = gridTargets(layers, layout);
  const width = encodingWidth(o.encoding);
  const shapes = gridShapes(layout);
  const batch = Math.min(o.batchSize, grid.rows);
  const rng = new Rng(o.seed);
  const initSeed = rng.nextUint32();
  const sampler = new BatchSampler(grid.norms, rng.fork(), o.uniformFraction);
  const probeRng = rng.fork();
  const spec = nernPredictorSpec(o.hidden, width, KERNEL_OUTPUTS);
  const predictor = Predictor.create(spec, initSeed);
  const optConfig = optimizerConfigFor(o);
  const precompute = grid.rows * width * 4 <= o.maxEncodingBytes;
  const quantBits = o.quantization ? predictorQuantBits(o.quantization.dtype) : undefined;
  const qatFrom = o.quantization?.fromStep ?? o.steps;
  let engine: StepEngine | undefined;
  const t: RunTensors = { encodings: null, hostEncodings: null, targets: null, scales: null, mask: null };
  let usesOrt = false;
  try {
    let fallbackReason: string | undefined;
    if (o.engine !== 'tfjs') {
      const ort = await tryOrtTrainer(
        predictor,
        optConfig,
        grid.mask !== null,
        o.engineThreads,
        qatFrom < o.steps ? quantBits : undefined,
        o.nativeBackend,
      );
      if (ort.ok) {
        usesOrt = true;
        t.hostEncodings = precompute ? encodeGrid(shapes, o.encoding) : null;
        engine = ortEngine(ort.trainer, predictor, grid, t.hostEncodings, batch, width, ort.deviceReason);
      } else {
        fallbackReason = `onnxruntime engine unavailable: ${ort.reason}`;
      }
    }
    if (!engine) {
      // Each of these is one tensor made straight from host data: no temporaries to tidy.
      t.encodings = precompute ? tf.tensor2d(encodeGrid(shapes, o.encoding), [grid.rows, width]) : null;
      t.targets = tf.tensor2d(grid.targets, [grid.rows, KERNEL_OUTPUTS]);
      t.scales = tf.tensor2d(grid.rowScale, [grid.rows, 1]);
      t.mask = grid.mask ? tf.tensor2d(grid.mask, [grid.rows, KERNEL_OUTPUTS]) : null;
      engine = tfjsEngine(
        predictor,
        new NernOptimizer(predictor.variables, optConfig),
        t,
        batch,
        width,
        fallbackReason,
      );
    }
    const run = engine;
    hooks.onEngine?.(run.info);
    const nativeGrid = usesOrt ? { backend: o.nativeBackend, threads: o.engineThreads } : undefined;
    const guardEvents: string[] = [];
    const idx = new Int32Array(batch);
    const batchEnc = precompute ? null : new Float32Array(batch * width);
    const probe = probeRows(grid, shapes, o.encoding, Math.min(PROBE_ROWS, grid.rows), probeRng);
    const targetSpread = spread(probe.targets);
    const outputSpread = (): number => {
      run.sync();
      return spread(predictor.predict(probe.encodings)) / targetSpread;
    };
    const initialSpread = outputSpread();
    // The untrained predictor is the first healthy snapshot.
    if (o.collapseGuard) run.snapshot();
    let windowLoss = 0;
    let windowSteps = 0;
    let windowStart = performance.now();
    let rollbacks = 0;
    let snapshotStep = 0;
    const loopStart = performance.now();
    const reconstructing = {
      ...(signal ? { signal } : {}),
      ...(hooks.onReconstruction ? { onRows: hooks.onReconstruction } : {}),
    };
    const evaluate = async (step: number): Promise<TrainEvaluation> => {
      run.sync();
      const predictions = await predictAll(
        predictor,
        t,
        layout,
        step >= qatFrom ? quantBits : undefined,
        reconstructing,
        nativeGrid,
      );
      const e = layerErrors(predictions, grid, layout);
      return {
        step,
        rmse: e.rmse,
        weightRms: e.weightRms,
        layers: e.layers,
        reconstruction: () => assembleLayers(predictions, layout),
      };
    };
    let stepsDone = o.steps;
    for (let step = 0; step < o.steps; step++) {
      await yieldToEventLoop();
      if (signal?.aborted) throw new CancelledError();
      if (step > 0 && hooks.stop?.aborted === true) {
        stepsDone = step;
        break;
      }
      sampler.next(idx);
      if (batchEnc) encodeRows(shapes, idx, batchEnc, o.encoding);
      const represented = countRepresented(grid, idx);
      const loss = await run.step(idx, batchEnc, represented, step >= qatFrom ? quantBits : undefined);
      windowLoss += loss;
      windowSteps++;
      const done = step + 1;

      if (o.collapseGuard && (!Number.isFinite(loss) || done % o.guardEvery === 0)) {
        const ratio = Number.isFinite(loss) ? outputSpread() : 0;
        if (!Number.isFinite(loss) || !(ratio >= COLLAPSE_FRACTION * initialSpread)) {
          if (rollbacks < GUARD_MAX_ROLLBACKS) {
            rollbacks++;
            run.rollback();
            run.lrScale *= GUARD_LR_FACTOR;
            guardEvents.push(
              `step ${done}: ${Number.isFinite(loss) ? `output collapsed (spread ${ratio.toExponential(2)} of the weights', ${initialSpread.toExponential(2)} at the start)` : 'loss is not finite'}; rolled back to step ${snapshotStep} and cut the learning rate to ${run.nextLr.toExponential(2)}`,
            );
          } else if (guardEvents.length === 0 || !(guardEvents.at(-1) ?? '').startsWith('giving up')) {
            guardEvents.push(`giving up at step ${done}: the output collapsed again after ${rollbacks} rollbacks`);
          }
        } else {
          run.snapshot();
          snapshotStep = done;
        }
      }
      if (done % FLUSH_EVERY === 0) run.flushDenormals();

      if (hooks.onProgress && (done % o.progressEvery === 0 || done === o.steps || hooks.stop?.aborted === true)) {
        const now = performance.now();
        hooks.onProgress({
          step: done,
          loss: windowLoss / windowSteps,
          lr: run.lr,
          stepsPerSecond: (windowSteps * 1000) / Math.max(1e-3, now - windowStart),
        });
        windowLoss = 0;
        windowSteps = 0;
        windowStart = performance.now();
      }
      if (o.evalEvery > 0 && done % o.evalEvery === 0 && done < o.steps) hooks.onEvaluation?.(await evaluate(done));
    }
    const trainSeconds = (performance.now() - loopStart) / 1000;
    run.sync();
    const predictions = await predictAll(predictor, t, layout, quantBits, reconstructing, nativeGrid);
    const e = layerErrors(predictions, grid, layout);
    const reconstruction = assembleLayers(predictions, layout);
    const evaluation: TrainEvaluation = {
      step: stepsDone,
      rmse: e.rmse,
      weightRms: e.weightRms,
      layers: e.layers,
      reconstruction: () => reconstruction,
    };
    hooks.onEvaluation?.(evaluation);
    return {
      predictor: predictor.weights(),
      kernelMap: layout,
      reconstruction,
      evaluation,
      predictorParameters: predictorParameterCount(spec),
      representedWeights: e.layers.reduce((n, l) => n + l.weights, 0),
      steps: stepsDone,
      ...(stepsDone < o.steps ? { stoppedAt: stepsDone } : {}),
      trainSeconds,
      permutationSeconds,
      options: o,
      guardEvents,
      engine: run.info,
    };
  } finally {
    await engine?.dispose();
    predictor.dispose();
    t.encodings?.dispose();
    t.targets?.dispose();
    t.scales?.dispose();
    t.mask?.dispose();
  }
}

/** Represented weights among the rows of a batch (the RMSE denominator). */
function countRepresented(grid: GridTargets, idx: Int32Array): number {
  if (!grid.mask) return idx.length * KERNEL_OUTPUTS;
  let n = 0;
  for (const r of idx) n += grid.rowWeights[r] ?? 0;
  return n;
}

/**
 * Unscaled predictions for every grid row, in grid order; with `quantBits`, those of the predictor quantised by
 * tensors/quantize.ts (dequantizeMatrix(quantizeMatrix(W)) per layer), i.e. what an int8/int4 artifact regenerates.
 * Lets the event loop in between batches, so that a cancel is seen (CancelledError) and `onRows` reports.
 */
async function predictAll(
  predictor: Predictor,
  t: RunTensors,
  layout: KernelMap,
  quantBits: QuantBits | undefined,
  progress: { signal?: AbortSignal; onRows?: (done: number, total: number) => void },
  native?: { backend: BackendName; threads: number },
): Promise<Float32Array> {
  if (native !== undefined) {
    // The run trains natively: its forward pass over every row runs there too (the same values up to rounding).
    const weights = predictor.weights();
    const used = quantBits !== undefined ? quantizedPredictorWeights(weights, quantBits) : weights;
    const options = { ...progress, ...(native.threads > 0 ? { threads: native.threads } : {}) };
    return (await predictGridOnBestEngine(used, layout, native.backend, options)).predictions;
  }
  if (quantBits !== undefined) {
    const quantized = Predictor.fromWeights(quantizedPredictorWeights(predictor.weights(), quantBits));
    try {
      return await predictAll(quantized, t, layout, undefined, progress);
    } finally {
      quantized.dispose();
    }
  }
  const encodings = t.encodings ?? t.hostEncodings;
  if (encodings) {
    const total = encodings instanceof Float32Array ? encodings.length / predictor.spec.inputs : encodings.shape[0];
    return predictor.predictAsync(encodings, {
      ...(progress.signal ? { signal: progress.signal } : {}),
      onRows: (done) => progress.onRows?.(done, total),
    });
  }
  return predictGridAsync(predictor, layout, progress);
}

/** A fixed random subset of rows used by the collapse guard, with its (scaled-space) targets. */
function probeRows(
  grid: GridTargets,
  shapes: GridShape[],
  spec: EncodingSpec,
  count: number,
  rng: Rng,
): { targets: Float32Array; encodings: Float32Array } {
  const rows = new Int32Array(count);
  const pool = new Int32Array(grid.rows);
  for (let i = 0; i < grid.rows; i++) pool[i] = i;
  for (let i = 0; i < count; i++) {
    const j = i + rng.int(grid.rows - i);
    const tmp = pool[i] ?? 0;
    pool[i] = pool[j] ?? 0;
    pool[j] = tmp;
    rows[i] = pool[i] ?? 0;
  }
  const targets = new Float32Array(count * KERNEL_OUTPUTS);
  rows.forEach((r, i) => {
    const s = grid.rowScale[r] ?? 1;
    for (let j = 0; j < KERNEL_OUTPUTS; j++)
      targets[i * KERNEL_OUTPUTS + j] = (grid.targets[r * KERNEL_OUTPUTS + j] ?? 0) / s;
  });
  return { targets, encodings: encodeRows(shapes, rows, new Float32Array(count * encodingWidth(spec)), spec) };
}

/** Mean over output columns of the standard deviation across rows ([rows, 9] row-major). */
function spread(values: Float32Array): number {
  const rows = values.length / KERNEL_OUTPUTS;
  let total = 0;
  for (let j = 0; j < KERNEL_OUTPUTS; j++) {
    let s = 0;
    let ss = 0;
    for (let r = 0; r < rows; r++) {
      const x = values[r * KERNEL_OUTPUTS + j] ?? 0;
      s += x;
      ss += x * x;
    }
    const mean = s / rows;
    total += Math.sqrt(Math.max(0, ss / rows - mean * mean));
  }
  return total / KERNEL_OUTPUTS;
}

function restore(predictor: Predictor, snapshot: tf.Tensor[]): void {
  predictor.variables.forEach((v, i) => {
    const s = snapshot[i];
    if (s) v.assign(s);
  });
}
