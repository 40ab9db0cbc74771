/**
 * Plain data for running models: what evaluation measures (accuracy, agreement, output fidelity), the options of the
 * distillation phase (Choi et al.'s phase 2) with their defaults, its streamed progress, and its final report (also
 * what `weight-lens eval --json` / `weight-lens distill --json` print). No tensors cross here.
 */
import type { ArtifactErrors, ArtifactStop } from './artifact';
import type { BackendName, ModelEngineName, PredictorDtype, PreprocessSource } from './vocabulary';

/**
 * The order in which preprocessing steps apply, whatever order they were given in: scale, normalise (mean/std), pad,
 * centre crop, resize, then the model's memory layout.
 */
export const PREPROCESS_ORDER = ['scale', 'normalise', 'pad', 'crop', 'resize', 'layout'] as const;

/**
 * The preprocessing as one line a user reads, in the order it applies, e.g.
 * "scale 0.00392 → mean 0.286 std 0.353 → pad 2 → NCHW" ("none (raw values) → NHWC" when nothing is set).
 */
export function describePreprocess(p: PreprocessDto): string {
  const num = (x: number): string => String(Number(x.toPrecision(3)));
  const list = (xs: readonly number[]): string => xs.map(num).join(',');
  const steps: string[] = [];
  if (p.scale !== undefined) steps.push(`scale ${num(p.scale)}`);
  if (p.mean !== undefined || p.std !== undefined)
    steps.push([p.mean ? `mean ${list(p.mean)}` : '', p.std ? `std ${list(p.std)}` : ''].filter(Boolean).join(' '));
  if (p.pad !== undefined && p.pad.some((v) => v !== 0))
    steps.push(`pad ${p.pad.every((v) => v === p.pad?.[0]) ? num(p.pad[0] ?? 0) : list(p.pad)}`);
  if (p.crop !== undefined) steps.push(`crop ${p.crop[0]}x${p.crop[1]}`);
  if (p.resize !== undefined) steps.push(`resize ${p.resize[0]}x${p.resize[1]}`);
  if (steps.length === 0) steps.push('none (raw values)');
  return [...steps, p.layout ?? 'NHWC'].join(' → ');
}

/**
 * A warning when a classifier's original accuracy is near chance (below 1.5 / classes): the data is almost always
 * preprocessed wrongly (raw 0–255 pixels, a wrong mean/std or layout), so every comparison with it means little.
 * Undefined when the accuracy is plausible or unknown. `accuracy` in [0, 1].
 */
export function chanceWarning(
  accuracy: number | undefined,
  classes: number,
  preprocess: PreprocessDto,
  what = 'The original model',
): string | undefined {
  if (accuracy === undefined || classes < 2 || accuracy >= 1.5 / classes) return undefined;
  return (
    `${what} scores ${(100 * accuracy).toFixed(1)} % on this data, near chance (${(100 / classes).toFixed(1)} % for ${classes} classes): ` +
    `the preprocessing (${describePreprocess(preprocess)}) is probably not what the model was trained with; set its scale, mean, std or layout.`
  );
}

/** Preprocessing a user sets per model (CLI flags, sidecar, or the extension's remembered choice). */
export interface PreprocessDto {
  /** Multiplier applied to raw values (0..255 for 8-bit images), e.g. 1/255. */
  scale?: number;
  /** Per-channel (or single) mean subtracted after scaling. */
  mean?: number[];
  /** Per-channel (or single) standard deviation, positive. */
  std?: number[];
  /** Zero padding in pixels (after normalisation): one value for all sides or [top, bottom, left, right]. */
  pad?: number[];
  /** Centre crop [height, width], after padding. */
  crop?: [number, number];
  /** Bilinear resize target [height, width], last; only when asked for, or chosen by default for a model whose fixed input size differs from the data's. */
  resize?: [number, number];
  /** Layout the model takes; default: NCHW for ONNX models whose input has the data's channels second, else NHWC. */
  layout?: 'NCHW' | 'NHWC';
}

export type { PreprocessSource } from './vocabulary';

/** Metrics of one set of weights against the original model (and the labels, when the data has them). */
export interface EvalMetricsDto {
  /** Samples evaluated. */
  n: number;
  /** Top-1 accuracy against the labels in [0, 1]; absent without labels or for non-classifiers. */
  accuracy?: number;
  /** Fraction of samples whose top-1 class equals the original model's, in [0, 1] (1 for non-classifiers). */
  agreement: number;
  /** Output PSNR in dB against the original model's outputs, peak = their value range; absent for classifiers. */
  psnr?: number;
  /** ‖y − y_orig‖₂ / ‖y_orig‖₂ over all outputs (0 = identical). */
  relativeError: number;
}

/** What `evaluate` reports. `candidate` is the model on the given weights (the original when none are given). */
export interface EvalReportDto {
  model: string;
  data: string;
  /** The weights evaluated (checkpoint or artifact); absent = the model's own. */
  weights?: string;
  /** Whether the model is treated as a classifier (outputs [N, K], K ≥ 2). */
  classifier: boolean;
  /** Top-1 accuracy of the original model, when labels exist. */
  originalAccuracy?: number;
  candidate: EvalMetricsDto;
  /** Number of classes (classifiers). */
  classes?: number;
  /** Class names, when the dataset names them. */
  classNames?: string[];
  /**
   * confusion[i][j]: samples the original model put in class i and the candidate in class j (classifiers only); the
   * off-diagonal entries are the differences compression made.
   */
  confusion?: number[][];
  /** Output names of the model's graph. */
  outputs: string[];
  preprocess: PreprocessDto;
  preprocessSource: PreprocessSource;
  /** Things the user should look at (e.g. an original model that scores near chance: wrong preprocessing). */
  warnings?: string[];
  /** Weight tensors (by name, not elements) bound from the weights file, and those that kept the model's values. */
  boundWeights?: number;
  unmatchedWeights?: number;
  /** What ran the forward passes: the tfjs backend (`wasm`…), or `onnxruntime (native, N threads)`. */
  backend: string;
  /** The engine that ran the forward passes: onnxruntime-node's native engine, or TensorFlow.js. */
  engine: ModelEngineName;
  /** Why the model ran on TensorFlow.js rather than onnxruntime (absent when onnxruntime ran it). */
  engineReason?: string;
  durationMs: number;
}

/** Options of `weight-lens eval` and the Evaluate action. */
export interface EvalOptionsDto {
  /** Weights to evaluate (checkpoint or artifact); default: the model's own. */
  weights?: string;
  preprocess?: PreprocessDto;
  /** Evaluate at most this many samples (the first ones); default all. */
  limit?: number;
  /** Samples per forward pass; default 64. */
  batchSize?: number;
  backend?: BackendName;
}

/** Options of the distillation phase. Defaults: `DEFAULT_DISTILL_OPTIONS` in src/core/jobs/distill.ts. */
export interface DistillOptionsDto {
  /** Optimisation steps. */
  steps: number;
  /** Training images per step. */
  batchSize: number;
  /** Peak Adam learning rate (cosine decay to 1 % after a 5 % warm-up). */
  lr: number;
  /** Softmax temperature of the KL term (scaled by T² as usual). */
  temperature: number;
  /** Weight of KL(teacher ‖ student) on the logits. */
  klWeight: number;
  /** Weight of the normalised feature-map term (block pre-activations; 0 = off). */
  featureWeight: number;
  /** Weight of the reconstruction term (MSE to the original weights, relative to their mean square; 0 = off). */
  reconstructionWeight: number;
  /** Random horizontal flips and padded random crops of the training images. */
  augment: boolean;
  /** Held-out samples (the last ones of the data, or the separate eval data) used for the metric during training. */
  evalSamples: number;
  /** Steps between held-out evaluations (0 = only before and after). */
  evalEvery: number;
  seed: number;
  backend: BackendName;
  /** A different (e.g. higher-capacity) teacher model on the same task; default: the model on its own weights. */
  teacher?: string;
  /** Separate held-out data; default: the last `evalSamples` of the training data, which are then not trained on. */
  evalData?: string;
  preprocess?: PreprocessDto;
  /** Output artifact; default `<artifact stem>.distilled.nern.safetensors`. */
  out?: string;
  /**
   * How the distilled predictor's weights will be stored; default: the dtype the artifact records
   * (`predictorDtype` in its metadata), else f32. With int8 or int4 the held-out metrics are those of the quantised
   * predictor.
   */
  predictorDtype?: PredictorDtype;
  /**
   * Quantisation-aware distillation: train on the predictor fake-quantised to an int8/int4 `predictorDtype`
   * (straight-through gradients to the float weights). Default true; false distils in float and quantises afterwards
   * (for measuring what it buys). No effect for f32 and f16.
   */
  qat?: boolean;
}

/** One distillation step's losses. */
export interface DistillProgressDto {
  step: number;
  steps: number;
  /** Total loss and its parts (unweighted). */
  loss: number;
  kl: number;
  feature: number;
  reconstruction: number;
  lr: number;
  /** Steps per second so far. */
  stepsPerSecond: number;
  /** The engine running the steps: the native training graph (onnxruntime) or TensorFlow.js. */
  engine?: ModelEngineName;
  /**
   * What runs the steps, as the user reads it: `onnxruntime (native, 2 threads)` on the CPU provider,
   * `onnxruntime (native, CUDA)` or `onnxruntime (native, WebGPU)` on a GPU, `tfjs (wasm)` on TensorFlow.js.
   */
  engineLabel?: string;
  /**
   * Why the engine or device asked for is not the one running: why the steps run on TensorFlow.js rather than
   * natively, or why a GPU that was tried is not used (the steps then run on onnxruntime's CPU provider).
   */
  engineReason?: string;
}

/** A held-out evaluation during distillation. */
export interface DistillEvalDto {
  step: number;
  metrics: EvalMetricsDto;
}

/** Per-layer drift of the represented weights from the phase-1 reconstruction: RMS change / RMS of the layer. */
export interface LayerDriftDto {
  name: string;
  drift: number;
}

/** What `distill` reports. */
export interface DistillReportDto {
  artifact: string;
  model: string;
  data: string;
  teacher: string;
  out: string;
  options: DistillOptionsDto;
  /** Held-out metrics of the phase-1 reconstruction, the best during training, and the final predictor. */
  before: EvalMetricsDto;
  best: DistillEvalDto;
  after: EvalMetricsDto;
  /** Teacher's held-out accuracy, when labels exist. */
  teacherAccuracy?: number;
  drift: LayerDriftDto[];
  /** Represented layers the graph uses (bound by name) and how many it does not. */
  boundLayers: number;
  unboundLayers: number;
  lossCurve: [number, number][];
  /** The preprocessing applied to the training and held-out images, and where it came from. */
  preprocess: PreprocessDto;
  preprocessSource: PreprocessSource;
  /** Things the user should look at (e.g. a teacher that scores near chance: wrong preprocessing). */
  warnings?: string[];
  /** The tfjs backend of the job (it trains the predictor when `engine` is tfjs). */
  backend: string;
  /** The engine that ran the distillation steps: the native training graph (onnxruntime) or TensorFlow.js. */
  engine?: ModelEngineName;
  /** What ran the steps, as the user reads it (`DistillProgressDto.engineLabel`). */
  engineLabel?: string;
  /**
   * Why the engine or device asked for is not the one that ran the steps: TensorFlow.js rather than onnxruntime, or
   * onnxruntime's CPU provider rather than a GPU that was tried (absent when the first choice ran them).
   */
  engineReason?: string;
  /** The predictor dtype the metrics are for (resolved: option, else the artifact's, else f32). */
  predictorDtype?: PredictorDtype;
  /** Whether training was quantisation-aware (an int8/int4 `predictorDtype` and `qat` not false). */
  qat?: boolean;
  /** The engine of the held-out evaluations; always set by `distill`. */
  evalEngine?: ModelEngineName;
  /** Why the held-out evaluations ran on TensorFlow.js rather than onnxruntime (absent when onnxruntime ran them). */
  evalEngineReason?: string;
  durationMs: number;
  /** Present when distillation was stopped and saved early (Stop and Save): the new artifact holds that predictor. */
  stoppedEarly?: ArtifactStop;
  /** The distilled predictor's reconstruction error against the original weights (the layers the model uses). */
  reconstruction?: ArtifactErrors;
}

/**
 * Where an evaluation's weights came from, in tensors (each count is of named weight tensors, not of elements):
 * `97 weight tensors came from r.nern.safetensors, 3 kept the model's values`; `` without a weights file.
 */
export function boundTensorsText(r: Pick<EvalReportDto, 'boundWeights' | 'unmatchedWeights'>, from: string): string {
  if (r.boundWeights === undefined) return '';
  const n = (x: number, one: string, many: string): string => `${x.toLocaleString('en-US')} ${x === 1 ? one : many}`;
  const kept = r.unmatchedWeights ? `, ${n(r.unmatchedWeights, 'kept', 'kept')} the model's values` : '';
  return `${n(r.boundWeights, 'weight tensor', 'weight tensors')} came from ${from}${kept}`;
}
