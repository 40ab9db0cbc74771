/**
 * Spectral diagnostics of one weight tensor, with WeightWatcher's definitions (CalculatedContent/WeightWatcher,
 * `weightwatcher.py`: `conv2D_Wmats`, `combined_eigenvalues`, `apply_normalize_Wmats`, `apply_norm_metrics`,
 * `mp_fit`): a 2-D matrix is one N × M matrix (N ≥ M); a 4-D convolution is its kh·kw slices of Cout × Cin, each
 * scaled by √½ (WeightWatcher's default conv2d_norm), whose eigenvalues of WᵀW are pooled into one empirical spectral
 * density. On that ESD: the power-law α and its x_min (powerLaw.ts), α-weighted = α · log10 λmax, the stable rank
 * Σλ / λmax, log10 λmax, log10 Σλ and the Marchenko–Pastur soft rank.
 */
import { alphaWarning, type LayerSpectrumDto, type LogHistogramDto, type SpectrumMethod } from '../../protocol/spectra';
import { CheckpointFormatError, throwIfAborted } from '../io/errors';
import type { ConvLayout } from '../nern/tiling';
import type { NativeSingularValues } from './nativeLinalg';
import { RANDOMIZED_POWER_ITERATIONS, singularValues, topSingularValues, type Tick } from './linalg';
import { fitMarchenkoPastur, fitPowerLaw } from './powerLaw';

/** Fewest eigenvalues a layer needs to be analysed (WeightWatcher's min_evals). */
export const MIN_EVALS = 10;
/** Largest side N a matrix may have (WeightWatcher's max_N): larger ones (vocabulary embeddings) are skipped. */
export const MAX_N = 50_000;
/** Eigenvalue scale of a convolution slice: WeightWatcher's conv2d_norm multiplies each slice by √(1/2). */
export const CONV_EVAL_SCALE = 0.5;

/** Resolves on the next turn of the event loop. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    setImmediate(resolve);
  });
}

/** How a tensor is cut into matrices: `slices` matrices of `rows × cols`, pooled. */
export interface MatrixPlan {
  kind: 'dense' | 'conv';
  rows: number;
  cols: number;
  slices: number;
  /** Copies slice `s` of `values` into `out` (row-major `rows × cols`). */
  slice(values: Float32Array, s: number, out: Float32Array): void;
}

/**
 * The matrices a tensor of `shape` is analysed as, or the one-sentence reason it is not: 2-D tensors are one
 * matrix; 4-D tensors are convolutions whose kernel positions give kh·kw matrices (Cout × Cin from an `oihw` kernel,
 * Cin × Cout from an `hwio` one: the same singular values). Other ranks are not analysed, as in WeightWatcher.
 */
export function matrixPlan(shape: readonly number[], layout: ConvLayout): MatrixPlan | string {
  if (shape.length === 2) {
    const [rows, cols] = shape as [number, number];
    return {
      kind: 'dense',
      rows,
      cols,
      slices: 1,
      slice: (values, _s, out) => {
        out.set(values.subarray(0, rows * cols));
      },
    };
  }
  if (shape.length !== 4)
    return `a ${shape.length}-D tensor: only 2-D matrices and 4-D convolutions have a spectrum here`;
  if (layout === 'hwio') {
    const [kh, kw, cin, cout] = shape as [number, number, number, number];
    return {
      kind: 'conv',
      rows: cin,
      cols: cout,
      slices: kh * kw,
      slice: (values, s, out) => {
        out.set(values.subarray(s * cin * cout, (s + 1) * cin * cout));
      },
    };
  }
  const [cout, cin, kh, kw] = shape as [number, number, number, number];
  const k = kh * kw;
  return {
    kind: 'conv',
    rows: cout,
    cols: cin,
    slices: k,
    slice: (values, s, out) => {
      for (let o = 0; o < cout; o++)
        for (let c = 0; c < cin; c++) out[o * cin + c] = values[(o * cin + c) * k + s] ?? 0;
    },
  };
}

/** Why a planned tensor is still not analysed (too few eigenvalues, too large a side), or undefined. */
export function planProblem(plan: MatrixPlan): string | undefined {
  const n = Math.max(plan.rows, plan.cols);
  const m = Math.min(plan.rows, plan.cols);
  if (m * plan.slices < MIN_EVALS) return `${m * plan.slices} eigenvalues, fewer than the ${MIN_EVALS} a fit needs`;
  if (n > MAX_N) return `a side of ${n}, over the ${MAX_N} analysed (a vocabulary-sized matrix)`;
  return undefined;
}

/** Options of `layerSpectrum`. */
export interface LayerSpectrumOptions {
  /** Exact decomposition up to this smaller side; above it the top `maxRank` values by randomized SVD. 0: exact. */
  maxRank: number;
  /** Log bins of the ESD histogram. */
  bins: number;
  /** Keep the singular values in the result. */
  includeValues?: boolean;
  signal?: AbortSignal;
  /** Fraction (0..1) of this layer's work done, called often (every outer iteration of the decomposition). */
  onFraction?: (fraction: number) => void;
  /** The native route for exact decompositions of matrices with a side of at least its `minSide` (nativeLinalg.ts). */
  native?: NativeSingularValues;
}

/**
 * The spectrum and metrics of the tensor `name` of `shape` with row-major `values`, cut by `matrixPlan`. Throws a
 * `CheckpointFormatError` for values that are not finite (a spectrum of NaN means nothing), a plain Error if the
 * tensor cannot be analysed (call `matrixPlan` and `planProblem` first), `CancelledError` when `signal` aborts. It
 * yields to the event loop between slices (and between iterations of a randomized SVD), so an abort that arrives as
 * a message is seen within one slice's decomposition.
 */
export async function layerSpectrum(
  name: string,
  shape: readonly number[],
  values: Float32Array,
  layout: ConvLayout,
  options: LayerSpectrumOptions,
): Promise<LayerSpectrumDto> {
  const plan = matrixPlan(shape, layout);
  if (typeof plan === 'string') throw new Error(`${name}: ${plan}`);
  let frobenius2 = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (!Number.isFinite(v))
      throw new CheckpointFormatError(`tensor ${JSON.stringify(name)} holds NaN or infinite values at index ${i}.`);
    frobenius2 += v * v;
  }
  const n = Math.max(plan.rows, plan.cols);
  const m = Math.min(plan.rows, plan.cols);
  const randomized = options.maxRank > 0 && m > options.maxRank;
  const method: SpectrumMethod = randomized
    ? { kind: 'randomized', rank: options.maxRank, powerIterations: RANDOMIZED_POWER_ITERATIONS }
    : { kind: 'exact' };
  const perSlice = randomized ? options.maxRank : m;
  const sv = new Float64Array(perSlice * plan.slices);
  const buffer = new Float32Array(plan.rows * plan.cols);
  for (let s = 0; s < plan.slices; s++) {
    // Between slices the event loop runs, so that a cancellation (a message to the worker) can arrive.
    await yieldToEventLoop();
    throwIfAborted(options.signal);
    plan.slice(values, s, buffer);
    const tick: Tick = (f) => {
      throwIfAborted(options.signal);
      options.onFraction?.((s + f) / plan.slices);
    };
    const part = randomized
      ? await topSingularValues(buffer, plan.rows, plan.cols, options.maxRank, s, tick, yieldToEventLoop)
      : options.native && Math.min(plan.rows, plan.cols) >= options.native.minSide
        ? await options.native.singularValues(buffer, plan.rows, plan.cols, tick)
        : singularValues(buffer, plan.rows, plan.cols, tick);
    sv.set(part, s * perSlice);
  }
  sv.sort();
  const scale = plan.kind === 'conv' ? CONV_EVAL_SCALE : 1;
  const evals = sv.map((x) => x * x * scale);
  const lambdaMax = evals.length > 0 ? (evals[evals.length - 1] as number) : 0;
  // The Frobenius norm is exact even when only the top of the spectrum is computed.
  let sumEvals = 0;
  if (randomized) sumEvals = frobenius2 * scale;
  else for (const x of evals) sumEvals += x;
  const fit =
    lambdaMax > 0
      ? fitPowerLaw(evals, {
          check: () => {
            throwIfAborted(options.signal);
          },
        })
      : undefined;
  const mp = randomized || lambdaMax === 0 ? undefined : fitMarchenkoPastur(evals, n / m);
  const alpha = fit?.alpha ?? null;
  const logSpectralNorm = Math.log10(lambdaMax);
  const warning = alphaWarning(alpha);
  options.onFraction?.(1);
  return {
    name,
    shape: [...shape],
    kind: plan.kind,
    n,
    m,
    slices: plan.slices,
    method,
    evalScale: scale,
    evalCount: evals.length,
    sigmaMax: sv.length > 0 ? (sv[sv.length - 1] as number) : 0,
    alpha,
    xmin: fit?.xmin ?? null,
    ks: fit?.ks ?? null,
    tail: fit?.tail ?? null,
    alphaWeighted: alpha === null ? null : alpha * logSpectralNorm,
    stableRank: lambdaMax > 0 ? sumEvals / lambdaMax : 0,
    logSpectralNorm,
    logNorm: Math.log10(sumEvals),
    mpSoftRank: mp?.softRank ?? null,
    ...(warning !== undefined ? { warning } : {}),
    esd: logHistogram(evals, fit ? fit.xmin / 100 : (0.4 * lambdaMax) / 100, options.bins),
    ...(options.includeValues ? { singularValues: Array.from(sv) } : {}),
  };
}

/**
 * Density histogram of the values above `floor` on `bins` log-spaced bins from the smallest to the largest of them
 * (WeightWatcher's `plot_loghist`). Empty when no value is above `floor`; one bin around a single distinct value.
 */
export function logHistogram(values: ArrayLike<number>, floor: number, bins: number): LogHistogramDto {
  const kept: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v > floor && v > 0) kept.push(v);
  }
  if (kept.length === 0 || bins < 1) return { edges: [], density: [] };
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of kept) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (lo === hi) return { edges: [lo * 0.99, hi * 1.01], density: [1 / (hi * 0.02)] };
  const l0 = Math.log10(lo);
  const l1 = Math.log10(hi);
  const edges = Array.from({ length: bins + 1 }, (_, i) => 10 ** (l0 + ((l1 - l0) * i) / bins));
  edges[0] = lo;
  edges[bins] = hi;
  const counts = new Array<number>(bins).fill(0);
  for (const v of kept) {
    let b = Math.floor(((Math.log10(v) - l0) / (l1 - l0)) * bins);
    b = Math.max(0, Math.min(bins - 1, b));
    // Correct the rounding of the logarithm against the edges themselves.
    if (b > 0 && v < (edges[b] as number)) b--;
    else if (b < bins - 1 && v >= (edges[b + 1] as number)) b++;
    counts[b] = (counts[b] as number) + 1;
  }
  const density = counts.map((c, i) => c / (kept.length * ((edges[i + 1] as number) - (edges[i] as number))));
  return { edges, density };
}
