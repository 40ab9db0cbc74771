/**
 * The size budget of a compression: which tensors the predictor represents and which are stored verbatim (with the
 * reason), and the predictor width a budget resolves to, with the artifact's size in bytes at the stored predictor
 * dtype (artifactSize.ts). Pure arithmetic over tensor headers: no values are read here.
 */
import type { BudgetDto, BudgetPlanDto, RepresentPolicy } from '../../protocol/compress';
import { DEFAULT_POINTWISE } from '../../protocol/defaults';
import { BadInputError, formatBytes } from '../io/errors';
import { encodingWidth, FAST_ENCODING, type EncodingSpec } from './encoding';
import { nernPredictorSpec, predictorParameterCount } from './predictor';
import { isPointwise, tileFor, type ConvLayout, type TileSpec } from './tiling';
import { artifactBytesFor, type ArtifactStorageChoice } from './artifactSize';

/** Tensors with fewer parameters than this are always stored verbatim: a predictor cannot beat a few kB. */
export const MIN_REPRESENTED_PARAMS = 1024;
/** Smallest and largest predictor width a budget may resolve to. */
export const MIN_HIDDEN = 4;
export const MAX_HIDDEN = 4096;
/** Float dtypes whose tensors can be represented (reconstructed values are converted back to them). */
export const REPRESENTABLE_DTYPES: readonly string[] = ['F32', 'F16', 'BF16', 'F64'];
/** Predictor outputs per kernel. */
const OUTPUTS = 9;
/** Predictor depth (NeRN: 4 ReLU layers). */
const DEPTH = 4;

/** The header facts classification needs (a `TensorEntry` has them all). */
export interface TensorHeader {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly params: number;
  readonly notDecodedReason?: string;
}

/** Whether a tensor is represented (and how it is tiled) or stored verbatim (and why). */
export type TensorClass = { represented: true; tile: TileSpec } | { represented: false; reason: string };

const NORM_NAME = /(^|[._/])(bn\d*|batch_?norm\w*|layer_?norm\w*|ln(_\w+|\d*)|norm\w*|running_(mean|var))([._/]|$)/i;
const EMBED_NAME = /(^|[._/])(embed\w*|wte|wpe|tok_embeddings|word_embeddings|position_embeddings)([._/]|$)/i;

/**
 * Classifies one tensor under `policy`. Represented: float tensors (F32/F16/BF16/F64) of ≥ 1,024 parameters that are
 * 3×3 / 1×1 convolutions (when `policy.conv`; a 1×1 one tiled as blocks unless `policy.pointwise` is 'centre') or, when `policy.dense`, any other tensor of rank 2–4 (dense matrices,
 * other kernel sizes, 1-D convolutions), tiled into 3×3 blocks. Everything else is verbatim with a one-phrase reason:
 * vectors (biases, normalisation), embeddings (looked-up rows, not smooth in their coordinates), normalisation layers,
 * integer or undecodable tensors, tiny tensors. `layout` is the checkpoint's convolution layout ('hwio' for
 * TensorFlow.js / Keras kernels [kh, kw, C_in, C_out], 'oihw' otherwise).
 */
export function classifyTensor(t: TensorHeader, policy: RepresentPolicy, layout: ConvLayout = 'oihw'): TensorClass {
  if (t.notDecodedReason !== undefined) return { represented: false, reason: `not decodable (${t.notDecodedReason})` };
  if (!REPRESENTABLE_DTYPES.includes(t.dtype))
    return { represented: false, reason: `${t.dtype} values are kept exact` };
  if (t.shape.length < 2)
    return { represented: false, reason: t.shape.length === 0 ? 'scalar' : 'vector (bias or normalisation)' };
  if (t.params < MIN_REPRESENTED_PARAMS)
    return { represented: false, reason: `tiny (< ${MIN_REPRESENTED_PARAMS.toLocaleString('en-US')} parameters)` };
  if (NORM_NAME.test(t.name)) return { represented: false, reason: 'normalisation parameters' };
  if (EMBED_NAME.test(t.name))
    return { represented: false, reason: 'embedding table (rows are looked up, not smooth)' };
  if (t.shape.length > 4) return { represented: false, reason: `rank ${t.shape.length} tensor` };
  const tile = tileFor(t.shape, layout, policy.pointwise ?? DEFAULT_POINTWISE);
  if (tile === undefined) return { represented: false, reason: 'empty tensor' };
  if (tile.kind === 'conv' || isPointwise(t.shape, layout))
    return policy.conv ? { represented: true, tile } : { represented: false, reason: 'convolutions not selected' };
  if (policy.dense) return { represented: true, tile };
  const [kh, kw] = layout === 'hwio' ? [t.shape[0], t.shape[1]] : [t.shape[2], t.shape[3]];
  const what =
    t.shape.length === 2
      ? 'dense matrix'
      : t.shape.length === 4
        ? `${kh ?? '?'}×${kw ?? '?'} kernel (not 3×3 or 1×1)`
        : `rank-${t.shape.length} weight`;
  return { represented: false, reason: `${what}; enable dense tiling to represent it` };
}

/** Predictor parameters at width `hidden` for an encoding of `width` inputs: 3h² + (width + 13)h + 9 (240 → 253h). */
export function predictorParamsFor(hidden: number, width = encodingWidth(FAST_ENCODING)): number {
  return predictorParameterCount(nernPredictorSpec(hidden, width, OUTPUTS));
}

/**
 * The largest width h with `predictorParamsFor(h, width) ≤ target`: the positive root of 3h² + (width+13)h + 9 − target
 * = 0, floored, then corrected by ±1 against the exact count (floating-point safety). 0 when even h = 1 is too big.
 */
export function widthForParams(target: number, width = encodingWidth(FAST_ENCODING)): number {
  if (!(target >= predictorParamsFor(1, width))) return 0;
  const b = width + 1 + (DEPTH - 1) + OUTPUTS; // = width + 13 for depth 4 and 9 outputs
  const a = DEPTH - 1;
  const c = OUTPUTS - target;
  let h = Math.floor((-b + Math.sqrt(b * b - 4 * a * c)) / (2 * a));
  while (h > 1 && predictorParamsFor(h, width) > target) h--;
  while (predictorParamsFor(h + 1, width) <= target) h++;
  return h;
}

/** One planned tensor: its header, and how it is stored. */
export type PlannedTensor = TensorHeader & TensorClass & { readonly index: number };

/** The largest width h in 1…MAX_HIDDEN with `bytesAt(h) ≤ target` (bytesAt grows with h); 0 when none fits. */
export function widthForBytes(target: number, bytesAt: (hidden: number) => number): number {
  if (!(bytesAt(1) <= target)) return 0;
  let lo = 1;
  let hi = MAX_HIDDEN + 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (bytesAt(mid) <= target) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Resolves `budget` to a predictor width: `hidden` directly; a fraction of the represented weights; or an artifact
 * size in bytes: the widest predictor whose whole artifact, `bytesAt(h)` (predictor at its stored dtype, packed
 * permutations, verbatim tensors, metadata), fits. `fixedBytes` is what the artifact takes besides the predictor,
 * named in the message when even the narrowest does not fit. Throws BadInputError (a message for the user) when the
 * budget cannot be met with at least `MIN_HIDDEN`, or there is nothing to represent.
 */
export function resolveHidden(
  budget: BudgetDto,
  representedParams: number,
  fixedBytes: number,
  width = encodingWidth(FAST_ENCODING),
  bytesAt: (hidden: number) => number = (h) => fixedBytes + 4 * predictorParamsFor(h, width),
): number {
  let h: number;
  let want: string;
  if (budget.kind === 'hidden') {
    h = budget.hidden;
    want = `width ${budget.hidden}`;
  } else if (budget.kind === 'fraction') {
    h = widthForParams(Math.floor(budget.fraction * representedParams), width);
    want = `${(budget.fraction * 100).toFixed(1)} % of the ${representedParams.toLocaleString('en-US')} represented weights`;
  } else {
    h = widthForBytes(budget.bytes, bytesAt);
    want = `an artifact of ${formatBytes(budget.bytes)} (the verbatim tensors and layout alone take ${formatBytes(fixedBytes)})`;
  }
  if (!Number.isInteger(h) || h < MIN_HIDDEN) {
    throw new BadInputError(
      `The budget (${want}) leaves room for a predictor of width ${h}, below the minimum of ${MIN_HIDDEN}: choose a larger size.`,
    );
  }
  if (h > MAX_HIDDEN) {
    if (budget.kind === 'hidden')
      throw new BadInputError(`A predictor width of ${h} exceeds the maximum of ${MAX_HIDDEN}.`);
    h = MAX_HIDDEN;
  }
  return h;
}

/**
 * Plans a compression over `tensors` (in checkpoint order): classification, width, and the artifact's bytes by
 * component at `storage` (predictor dtype, permutation kind, lean, run length). `layout` is the checkpoint's
 * convolution layout (`convLayoutFor(checkpoint.format)`).
 */
export function planBudget(
  tensors: readonly TensorHeader[],
  budget: BudgetDto,
  policy: RepresentPolicy,
  sourceBytes: number,
  encoding: EncodingSpec = FAST_ENCODING,
  layout: ConvLayout = 'oihw',
  storage: ArtifactStorageChoice = {},
): { plan: BudgetPlanDto; tensors: PlannedTensor[] } {
  const planned: PlannedTensor[] = tensors.map((t, index) => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    params: t.params,
    ...(t.notDecodedReason !== undefined ? { notDecodedReason: t.notDecodedReason } : {}),
    index,
    ...classifyTensor(t, policy, layout),
  }));
  const representedParams = planned.reduce((n, t) => n + (t.represented ? t.params : 0), 0);
  if (representedParams === 0) {
    throw new BadInputError(
      policy.dense
        ? 'This checkpoint has no float tensor of rank 2–4 with at least 1,024 parameters to represent.'
        : 'This checkpoint has no 3×3 or 1×1 convolution with at least 1,024 parameters to represent; enable dense tiling to represent matrices.',
    );
  }
  const width = encodingWidth(encoding);
  const bytesAt = (h: number): number => artifactBytesFor(planned, h, width, storage, encoding).total;
  const atOne = artifactBytesFor(planned, 1, width, storage, encoding);
  const hidden = resolveHidden(budget, representedParams, atOne.total - atOne.predictor, width, bytesAt);
  const predictorParams = predictorParamsFor(hidden, width);
  const bytes = artifactBytesFor(planned, hidden, width, storage, encoding);
  const plan: BudgetPlanDto = {
    hidden,
    predictorParams,
    representedParams,
    verbatimParams: planned.reduce((n, t) => n + (t.represented ? 0 : t.params), 0),
    fractionOfRepresented: predictorParams / representedParams,
    artifactBytes: bytes.total,
    sourceBytes,
    bytes,
    ...(storage.predictorDtype !== undefined && storage.predictorDtype !== 'f32'
      ? { predictorDtype: storage.predictorDtype }
      : {}),
    ...(storage.verbatimDtype !== undefined && storage.verbatimDtype !== 'f32'
      ? { verbatimDtype: storage.verbatimDtype }
      : {}),
    represented: planned
      .filter((t) => t.represented)
      .map((t) => ({ name: t.name, shape: [...t.shape], params: t.params })),
    verbatim: planned.flatMap((t) =>
      t.represented ? [] : [{ name: t.name, shape: [...t.shape], params: t.params, reason: t.reason }],
    ),
  };
  return { plan, tensors: planned };
}
