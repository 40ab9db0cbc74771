/**
 * The histogram of Δ = B − A of one pair of tensors of two checkpoints (the Compare panel's "histogram of Δ on
 * demand"): two streamed passes over both tensors at once, one chunk of each in memory — the first finds the range
 * of the finite differences, the second bins them with the Inspector's `HistogramAccumulator`, whose edges and bin
 * assignment are NumPy's. Shared by the worker and any caller that has two paths.
 */
import { DELTA_HISTOGRAM_BINS, type DeltaHistogramDto } from '../../protocol/compare';
import { BadInputError } from '../io/errors';
import { HistogramAccumulator } from '../tensors/stats';
import type { TensorEntry } from '../tensors/tensor';
import { DIFF_CHUNK_ELEMENTS, forEachChunkPair, withDiffSide } from './diff';

/** Which pair to histogram, and how finely. */
export interface DeltaHistogramRequest {
  /** Path of checkpoint A and the tensor's name there (as the file spells it). */
  readonly a: string;
  readonly tensorA: string;
  /** Path of checkpoint B and the tensor's name there. */
  readonly b: string;
  readonly tensorB: string;
  /** Equal-width bins, 1 to 1024. */
  readonly bins: number;
}

/**
 * Streams the finite differences B − A of `a` and `b` (equal element counts) in float64 chunks of at most
 * `DIFF_CHUNK_ELEMENTS`, calling `onDelta` with each chunk (a reused buffer: valid only during the call) and
 * resolving to the number of positions left out because A or B is NaN or ±Inf there.
 */
async function streamDeltas(
  a: TensorEntry,
  b: TensorEntry,
  signal: AbortSignal | undefined,
  onDelta: (delta: Float64Array) => void,
): Promise<number> {
  const buffer = new Float64Array(Math.min(DIFF_CHUNK_ELEMENTS, Math.max(1, a.params)));
  let nonFinite = 0;
  await forEachChunkPair(a, b, signal, (xa, xb) => {
    let n = 0;
    for (let i = 0; i < xa.length; i++) {
      const u = xa[i] as number;
      const v = xb[i] as number;
      if (!Number.isFinite(u) || !Number.isFinite(v)) {
        nonFinite++;
        continue;
      }
      buffer[n++] = v - u;
    }
    onDelta(buffer.subarray(0, n));
  });
  return nonFinite;
}

function tensorNamed(tensors: readonly TensorEntry[], name: string, path: string): TensorEntry {
  const found = tensors.find((t) => t.name === name);
  if (found === undefined) throw new BadInputError(`${path} has no tensor ${JSON.stringify(name)}.`);
  if (found.notDecodedReason !== undefined)
    throw new BadInputError(
      `The values of ${JSON.stringify(name)} in ${path} cannot be decoded (${found.notDecodedReason}).`,
    );
  return found;
}

/**
 * The histogram of Δ = B − A over the finite positions of tensor `tensorA` of checkpoint `a` and tensor `tensorB`
 * of checkpoint `b`, which must have the same shape, in `bins` equal-width bins over (min Δ, max Δ) — the edges and
 * counts of `numpy.histogram(Δ, bins)`; when every Δ is equal, NumPy's range (Δ − 0.5, Δ + 0.5). Memory stays
 * bounded (one chunk of each side and one of Δ) whatever the tensors' sizes. Throws a BadInputError for an unknown
 * tensor, unequal shapes, undecodable values or a bin count out of range; a compression artifact as either side is
 * its reconstruction (decoded once per pass); a CancelledError when `signal` aborts.
 */
export async function deltaHistogram(request: DeltaHistogramRequest, signal?: AbortSignal): Promise<DeltaHistogramDto> {
  const { bins } = request;
  if (!Number.isSafeInteger(bins) || bins < DELTA_HISTOGRAM_BINS.min || bins > DELTA_HISTOGRAM_BINS.max)
    throw new BadInputError(
      `A Δ histogram needs ${DELTA_HISTOGRAM_BINS.min}–${DELTA_HISTOGRAM_BINS.max} bins, got ${bins}.`,
      { option: 'bins' },
    );
  // A compression artifact's side is its reconstruction, each represented tensor decoded when read (diff.ts).
  return withDiffSide(request.a, signal, (ca) =>
    withDiffSide(request.b, signal, async (cb) => {
      const ta = tensorNamed(ca.tensors, request.tensorA, request.a);
      const tb = tensorNamed(cb.tensors, request.tensorB, request.b);
      if (ta.shape.length !== tb.shape.length || ta.shape.some((d, i) => d !== tb.shape[i]))
        throw new BadInputError(
          `${JSON.stringify(ta.name)} has shape [${ta.shape.join(', ')}] in A but ${JSON.stringify(tb.name)} has [${tb.shape.join(', ')}] in B; Δ needs equal shapes.`,
        );
      let min = Infinity;
      let max = -Infinity;
      const nonFinite = await streamDeltas(ta, tb, signal, (delta) => {
        for (let i = 0; i < delta.length; i++) {
          const d = delta[i] as number;
          if (d < min) min = d;
          if (d > max) max = d;
        }
      });
      const base = { a: ta.name, b: tb.name, count: ta.params, nonFinite };
      if (!(max >= min)) return { ...base, min: null, max: null, histogram: { edges: [], counts: [] } };
      const accumulator = new HistogramAccumulator(min, max, bins);
      await streamDeltas(ta, tb, signal, (delta) => {
        accumulator.add(delta);
      });
      return { ...base, min, max, histogram: accumulator.result() };
    }),
  );
}
