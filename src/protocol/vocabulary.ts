/**
 * The project's closed sets of names, each written once as an `as const` list with its type derived from it: every
 * layer (core, worker, CLI, extension, webviews) imports them from here, so a name added here is offered everywhere
 * and a name typed elsewhere is a type error. Imports nothing.
 */

/** True when `value` is one of `names` (a type guard for the lists below; never throws). */
export function isOneOf<const T extends string>(names: readonly T[], value: unknown): value is T {
  return typeof value === 'string' && (names as readonly string[]).includes(value);
}

/**
 * Engines a user can ask for (`weightLens.backend`, `--backend`). `auto` runs native work (reconstruction steps,
 * evaluation of ONNX graphs, spectra) on onnxruntime-node, on a GPU execution provider when one is present and passes
 * its self-check (CUDA, then WebGPU), else on its CPU provider, and the rest on the fastest TensorFlow.js backend that
 * loads. `cpu-native` is onnxruntime on the CPU; `cuda` and `webgpu` ask for that GPU (falling back to the CPU with
 * the reason; `webgpu` also puts TensorFlow.js work on tfjs-backend-webgpu). `wasm` (TensorFlow.js on WebAssembly, the
 * universal fallback), `tensorflow` (tfjs-node, optionally its GPU build) and `cpu` (tfjs's plain JavaScript backend)
 * run everything on TensorFlow.js.
 */
export const BACKEND_NAMES = ['auto', 'cpu-native', 'cuda', 'webgpu', 'wasm', 'tensorflow', 'cpu'] as const;
/** One of `BACKEND_NAMES`. */
export type BackendName = (typeof BACKEND_NAMES)[number];

/**
 * Engines that run a model's forward passes (evaluation): `onnxruntime` is onnxruntime-node's native engine (ONNX
 * models, `auto` backend, where the package loads); `tfjs` is TensorFlow.js on the chosen backend.
 */
export const MODEL_ENGINE_NAMES = ['onnxruntime', 'tfjs'] as const;
/** One of `MODEL_ENGINE_NAMES`. */
export type ModelEngineName = (typeof MODEL_ENGINE_NAMES)[number];

/** Kernel permutations that smooth the coordinate → kernel map (NeRN), in the order offered: the first is NeRN's best. */
export const PERMUTATION_KINDS = ['crossfilter', 'infilter', 'none'] as const;
/** One of `PERMUTATION_KINDS`. */
export type PermutationKind = (typeof PERMUTATION_KINDS)[number];

/**
 * How a 1×1 convolution maps onto the predictor's 3×3 outputs. `blocks` (Weight Lens' default): its C_out × C_in
 * matrix is cut into 3×3 blocks, so one grid row regenerates nine weights and the layer has about nine times fewer
 * rows. `centre` (NeRN): each scalar kernel is the centre of a predicted 3×3, one grid row per weight.
 */
export const POINTWISE_LAYOUTS = ['blocks', 'centre'] as const;
/** One of `POINTWISE_LAYOUTS`. */
export type PointwiseLayout = (typeof POINTWISE_LAYOUTS)[number];

/**
 * Compression methods. `nern` (default): a predictor network regenerates the weights (NeRN). The others are the
 * baselines a user would reach for instead, written as artifacts that decompress, evaluate and inspect the same way:
 * `int8` / `int4` per-output-channel symmetric round-to-nearest, `lowrank` truncated SVD per matrix, `prune` global
 * magnitude pruning.
 */
export const COMPRESS_METHODS = ['nern', 'int8', 'int4', 'lowrank', 'prune'] as const;
/** One of `COMPRESS_METHODS`. */
export type CompressMethod = (typeof COMPRESS_METHODS)[number];

/** What each method does, in a few words (quick picks, and the panels of a baseline artifact). */
export const COMPRESS_METHOD_DETAIL: Readonly<Record<CompressMethod, string>> = {
  nern: 'a predictor network regenerates the weights (trained; the slowest)',
  int8: 'per-output-channel round-to-nearest, 8 bits (no training)',
  int4: 'per-output-channel round-to-nearest, 4 bits packed (no training)',
  lowrank: 'truncated SVD per matrix, rank chosen per layer for the size',
  prune: 'global magnitude pruning to the size, indices counted',
};

/**
 * How a NeRN predictor's weights are stored: float32, float16, or int8 / int4 codes with one float32 scale per output
 * unit (src/core/tensors/quantize.ts). Biases stay float32.
 */
export const PREDICTOR_DTYPES = ['f32', 'f16', 'int8', 'int4'] as const;
/** One of `PREDICTOR_DTYPES`. */
export type PredictorDtype = (typeof PREDICTOR_DTYPES)[number];

/**
 * How a NeRN artifact stores the float tensors it keeps verbatim (not represented): `f32` in their own dtype
 * (byte-exact; F32 for dtypes safetensors cannot name), `f16` as float16 (F32/F64 tensors), or `int8` as symmetric
 * codes with one float32 scale per row along the first axis, one per tensor for vectors and scalars
 * (src/core/tensors/quantize.ts's rule). Integer and boolean tensors always stay exact.
 */
export const VERBATIM_DTYPES = ['f32', 'f16', 'int8'] as const;
/** One of `VERBATIM_DTYPES`. */
export type VerbatimDtype = (typeof VERBATIM_DTYPES)[number];

/**
 * Training recipes. `weight-lens` (default): the project's measured defaults (rising-frequency encoding, Adam 1e-2
 * with warm-up, per-layer output scale, collapse guard), which learn far faster. `nern`: NeRN exactly as NERN.md
 * specifies (encoding base 0.76 over 40 levels, Ranger lr 5e-3 β=(0.5, 0.999) eps 1e-5 weight decay 1e-3, cosine
 * decay to 1e-6, no output scale, no guard), the reference to compare against.
 */
export const RECIPE_NAMES = ['weight-lens', 'nern'] as const;
/** One of `RECIPE_NAMES`. */
export type RecipeName = (typeof RECIPE_NAMES)[number];

/** Coarse layer kinds a tensor is sorted into by its name and shape (totals, the represent policy). */
export const LAYER_KINDS = ['conv', 'dense', 'norm', 'embedding', 'bias', 'other'] as const;
/** One of `LAYER_KINDS`. */
export type LayerKind = (typeof LAYER_KINDS)[number];

/**
 * Why an engine request failed: `badInput` = the user's file or options are wrong (the message is for the user),
 * `cancelled` = the user stopped it, `workerCrashed` = the engine thread died, `internal` = a defect.
 */
export const FAILURE_REASONS = ['cancelled', 'badInput', 'workerCrashed', 'internal'] as const;
/** One of `FAILURE_REASONS`. */
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** Where the preprocessing of an evaluation came from: the user's options, the model's sidecar, or the defaults. */
export const PREPROCESS_SOURCES = ['options', 'sidecar', 'default'] as const;
/** One of `PREPROCESS_SOURCES`. */
export type PreprocessSource = (typeof PREPROCESS_SOURCES)[number];
