/**
 * Streaming summary statistics and histograms of tensor values. Statistics take one pass over the values in chunks
 * (moments use a shift by the first finite value, so the variance does not cancel catastrophically when the mean is
 * large); the histogram takes a second pass once the range is known. NaN and ±Inf are counted, never binned.
 *
 * Values may come weighted (each value of a chunk counted `weight` times): an expanded view or a sparse tensor
 * describes its values that way (`TensorEntry.summary`), so their statistics cost their stored bytes, never their
 * logical element count. A tensor with no finite values has no statistics: its moments are null, its histogram empty.
 */
import type { HistogramDto, TensorStatsDto } from '../../protocol/inspect';
import type { ValueChunk } from './dtype';
import { simdStats } from './simdStats';
import type { TensorEntry, ValueStreamOptions, WeightedChunk } from './tensor';

/** Partial sums of one chunk, shifted by `shift` (see `StatsAccumulator`). */
interface ChunkMoments {
  count: number;
  sum: number;
  sumSquares: number;
  min: number;
  max: number;
  zeros: number;
  nonFinite: number;
}

// The two routines below are the same loop for Float32Array and Float64Array. They are kept apart so that each call
// site sees one array type: V8 then compiles monomorphic element loads, about twice as fast as a shared loop.

function momentsF32(chunk: Float32Array, start: number, shift: number, m: ChunkMoments): void {
  let count = 0,
    sum = 0,
    sumSquares = 0,
    zeros = 0,
    nonFinite = 0;
  let min = m.min,
    max = m.max;
  for (let i = start, n = chunk.length; i < n; i++) {
    const v = chunk[i] as number;
    if (v - v !== 0) {
      nonFinite++;
      continue;
    }
    const d = v - shift;
    sum += d;
    sumSquares += d * d;
    if (v < min) min = v;
    if (v > max) max = v;
    if (v === 0) zeros++;
    count++;
  }
  m.count += count;
  m.sum += sum;
  m.sumSquares += sumSquares;
  m.min = min;
  m.max = max;
  m.zeros += zeros;
  m.nonFinite += nonFinite;
}

function momentsF64(chunk: Float64Array, start: number, shift: number, m: ChunkMoments): void {
  let count = 0,
    sum = 0,
    sumSquares = 0,
    zeros = 0,
    nonFinite = 0;
  let min = m.min,
    max = m.max;
  for (let i = start, n = chunk.length; i < n; i++) {
    const v = chunk[i] as number;
    if (v - v !== 0) {
      nonFinite++;
      continue;
    }
    const d = v - shift;
    sum += d;
    sumSquares += d * d;
    if (v < min) min = v;
    if (v > max) max = v;
    if (v === 0) zeros++;
    count++;
  }
  m.count += count;
  m.sum += sum;
  m.sumSquares += sumSquares;
  m.min = min;
  m.max = max;
  m.zeros += zeros;
  m.nonFinite += nonFinite;
}

/** Adds `chunk[start..]` to `m` with the fastest routine for its type. */
function addMoments(chunk: ValueChunk, start: number, shift: number, m: ChunkMoments): void {
  if (chunk instanceof Float32Array) {
    // WebAssembly SIMD when available (same results up to float64 summation order), else the JS routine.
    if (simdStats()?.moments(chunk, start, shift, m) !== true) momentsF32(chunk, start, shift, m);
  } else momentsF64(chunk, start, shift, m);
}

/**
 * Accumulates statistics over value chunks. Use `add` per chunk, then `result`. Moments are summed in float64
 * relative to the first finite value (the shift), so the variance keeps its digits when the mean is large.
 */
export class StatsAccumulator {
  private shift = NaN;
  private readonly m: ChunkMoments = {
    count: 0,
    sum: 0,
    sumSquares: 0,
    min: Infinity,
    max: -Infinity,
    zeros: 0,
    nonFinite: 0,
  };

  /** Adds every value of `chunk`, each counted `weight` times (a whole number ≥ 1; default 1). */
  add(chunk: ValueChunk, weight = 1): void {
    let start = 0;
    if (Number.isNaN(this.shift)) {
      // Find the first finite value to use as the shift; non-finite values before it are counted here.
      while (start < chunk.length) {
        const v = chunk[start] as number;
        if (v - v === 0) {
          this.shift = v;
          break;
        }
        this.m.nonFinite += weight;
        start++;
      }
      if (Number.isNaN(this.shift)) return;
    }
    if (weight === 1) {
      addMoments(chunk, start, this.shift, this.m);
      return;
    }
    const m = this.m;
    const part: ChunkMoments = { count: 0, sum: 0, sumSquares: 0, min: m.min, max: m.max, zeros: 0, nonFinite: 0 };
    addMoments(chunk, start, this.shift, part);
    m.count += part.count * weight;
    m.sum += part.sum * weight;
    m.sumSquares += part.sumSquares * weight;
    m.zeros += part.zeros * weight;
    m.nonFinite += part.nonFinite * weight;
    m.min = part.min;
    m.max = part.max;
  }

  /** Number of finite values seen. */
  get finiteCount(): number {
    return this.m.count;
  }

  /** The statistics so far. With no finite values (an empty tensor, or only NaN/±Inf) there are none: null moments. */
  result(): TensorStatsDto {
    const m = this.m;
    if (m.count === 0) {
      return {
        count: 0,
        mean: null,
        std: null,
        min: null,
        max: null,
        absMax: null,
        l2: null,
        zeros: m.zeros,
        nonFinite: m.nonFinite,
      };
    }
    const n = m.count;
    const meanShifted = m.sum / n;
    const variance = Math.max(0, m.sumSquares / n - meanShifted * meanShifted);
    // Σx² = Σ(d + K)² = Σd² + 2KΣd + nK²
    const sumSquares = m.sumSquares + 2 * this.shift * m.sum + n * this.shift * this.shift;
    return {
      count: n,
      mean: this.shift + meanShifted,
      std: Math.sqrt(variance),
      min: m.min,
      max: m.max,
      absMax: Math.max(Math.abs(m.min), Math.abs(m.max)),
      l2: Math.sqrt(Math.max(0, sumSquares)),
      zeros: m.zeros,
      nonFinite: m.nonFinite,
    };
  }
}

/**
 * Accumulates a fixed-range histogram of `bins` equal-width bins over `[lo, hi]` (the last bin includes `hi`), with
 * the same edges and bin assignment as `numpy.histogram(values, bins, range=(lo, hi))`: edges are
 * `lo + i * (hi - lo) / bins`, and a value's bin is corrected against those edges so rounding never moves a value
 * across one. When `lo === hi`, the range becomes `[lo - 0.5, lo + 0.5]` as NumPy does.
 */
export class HistogramAccumulator {
  private readonly counts: Float64Array;
  private readonly edges: Float64Array;
  private readonly lo: number;
  private readonly hi: number;
  private readonly scale: number;

  constructor(
    lo: number,
    hi: number,
    readonly bins: number,
  ) {
    if (!Number.isInteger(bins) || bins < 1)
      throw new RangeError(`histogram needs a positive whole number of bins, got ${bins}`);
    if (!(hi > lo)) {
      lo = lo - 0.5;
      hi = hi + 0.5;
    }
    this.lo = lo;
    this.hi = hi;
    this.scale = bins / (hi - lo);
    const step = (hi - lo) / bins;
    this.edges = new Float64Array(bins + 1);
    for (let i = 0; i < bins; i++) this.edges[i] = i * step + lo;
    this.edges[bins] = hi;
    this.counts = new Float64Array(bins);
  }

  /**
   * Bins every finite value of `chunk` that lies in `[lo, hi]`, each counted `weight` times (a whole number ≥ 1);
   * values outside the range are not counted.
   */
  add(chunk: ValueChunk, weight = 1): void {
    const counts = weight === 1 ? this.counts : new Float64Array(this.counts.length);
    if (chunk instanceof Float32Array) {
      // WebAssembly SIMD when available (identical counts), else the JS routine.
      if (simdStats()?.histogram(chunk, this.lo, this.hi, this.scale, this.edges, counts) !== true) {
        binF32(chunk, this.lo, this.hi, this.scale, this.edges, counts);
      }
    } else binF64(chunk, this.lo, this.hi, this.scale, this.edges, counts);
    if (counts !== this.counts)
      for (let i = 0; i < counts.length; i++)
        this.counts[i] = (this.counts[i] as number) + (counts[i] as number) * weight;
  }

  /** The histogram: `bins + 1` edges and `bins` counts. */
  result(): HistogramDto {
    return { edges: Array.from(this.edges), counts: Array.from(this.counts) };
  }
}

// Histogram routines, one per array type for the same reason as the moment routines. `b` is int32-safe because
// v ∈ [lo, hi] gives 0 ≤ (v - lo) * scale ≤ bins; the edge tests then match NumPy's bin assignment exactly.

function binF32(
  chunk: Float32Array,
  lo: number,
  hi: number,
  scale: number,
  edges: Float64Array,
  counts: Float64Array,
): void {
  const last = counts.length - 1;
  for (let i = 0, n = chunk.length; i < n; i++) {
    const v = chunk[i] as number;
    if (!(v >= lo && v <= hi)) continue;
    let b = ((v - lo) * scale) | 0;
    if (b > last) b = last;
    if (v < (edges[b] as number)) b--;
    else if (b !== last && v >= (edges[b + 1] as number)) b++;
    counts[b] = (counts[b] as number) + 1;
  }
}

function binF64(
  chunk: Float64Array,
  lo: number,
  hi: number,
  scale: number,
  edges: Float64Array,
  counts: Float64Array,
): void {
  const last = counts.length - 1;
  for (let i = 0, n = chunk.length; i < n; i++) {
    const v = chunk[i] as number;
    if (!(v >= lo && v <= hi)) continue;
    let b = ((v - lo) * scale) | 0;
    if (b > last) b = last;
    if (v < (edges[b] as number)) b--;
    else if (b !== last && v >= (edges[b + 1] as number)) b++;
    counts[b] = (counts[b] as number) + 1;
  }
}

/**
 * Statistics read values in chunks of this many elements: 2 Mi elements = 8 MB of float32, which keeps each
 * statistics thread's working set small (two threads inspect a 2 GB file under 300 MB peak RSS) while chunks stay
 * large enough that per-read overhead is negligible. A tensor that fits in one chunk is kept in memory for the
 * second (histogram) pass, so it is read from disk once.
 */
const STATISTICS_CHUNK_ELEMENTS = 2 * 1024 * 1024;

async function* unweighted(values: AsyncIterable<ValueChunk>): AsyncIterable<WeightedChunk> {
  for await (const chunk of values) yield { values: chunk, weight: 1 };
}

/** The values statistics read: the tensor's weighted summary when it has one (cost: stored bytes), else its values. */
function statisticsPass(entry: TensorEntry, options: ValueStreamOptions): AsyncIterable<WeightedChunk> {
  return entry.summary !== undefined ? entry.summary(options) : unweighted(entry.values(options));
}

/** A histogram with no bins: what a tensor without finite values has. */
const NO_HISTOGRAM: HistogramDto = { edges: [], counts: [] };

/**
 * Computes statistics (pass 1) and a `bins`-bin histogram over [min, max] (pass 2) of one tensor, streaming its
 * values in bounded chunks; a tensor that fits in one chunk is read once. The cost is the tensor's stored bytes: an
 * expanded view or a sparse tensor is summarised through `TensorEntry.summary`. A tensor without finite values gets
 * null moments and an empty histogram.
 */
export async function tensorStatistics(
  entry: TensorEntry,
  bins: number,
  signal?: AbortSignal,
): Promise<{ stats: TensorStatsDto; histogram: HistogramDto }> {
  const stats = new StatsAccumulator();
  let only: WeightedChunk | undefined;
  let chunks = 0;
  const options: ValueStreamOptions = { maxElements: STATISTICS_CHUNK_ELEMENTS, ...(signal ? { signal } : {}) };
  for await (const chunk of statisticsPass(entry, options)) {
    stats.add(chunk.values, chunk.weight);
    chunks++;
    only = chunks === 1 ? chunk : undefined;
  }
  const result = stats.result();
  if (result.count === 0 || result.min === null || result.max === null)
    return { stats: result, histogram: NO_HISTOGRAM };
  const histogram = new HistogramAccumulator(result.min, result.max, bins);
  if (only) histogram.add(only.values, only.weight);
  else for await (const chunk of statisticsPass(entry, options)) histogram.add(chunk.values, chunk.weight);
  return { stats: result, histogram: histogram.result() };
}
