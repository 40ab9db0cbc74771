/**
 * Streaming summary statistics and histograms of tensor values. Statistics take one pass over the values in chunks
 * (moments use a shift by the first finite value, so the variance does not cancel catastrophically when the mean is
 * large); the histogram takes a second pass once the range is known. NaN and ±Inf are counted, never binned.
 */
import type { HistogramDto, TensorStatsDto } from '../../protocol/inspect';
import type { ValueChunk } from './dtype';

/** Accumulates statistics over value chunks. Use `add` per chunk, then `result`. */
export class StatsAccumulator {
  private count = 0;
  private shift = NaN;
  private sum = 0;
  private sumSquares = 0;
  private min = Infinity;
  private max = -Infinity;
  private zeros = 0;
  private nonFinite = 0;

  /** Adds every value of `chunk`. */
  add(chunk: ValueChunk): void {
    let shift = this.shift;
    let start = 0;
    const n = chunk.length;
    if (Number.isNaN(shift)) {
      // Find the first finite value to use as the shift.
      while (start < n) {
        const v = chunk[start] as number;
        if (v - v === 0) {
          shift = v;
          this.shift = v;
          break;
        }
        this.nonFinite++;
        start++;
      }
    }
    let count = 0;
    let sum = 0;
    let sumSquares = 0;
    let min = this.min;
    let max = this.max;
    let zeros = 0;
    let nonFinite = 0;
    for (let i = start; i < n; i++) {
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
    this.count += count;
    this.sum += sum;
    this.sumSquares += sumSquares;
    this.min = min;
    this.max = max;
    this.zeros += zeros;
    this.nonFinite += nonFinite;
  }

  /** Number of finite values seen. */
  get finiteCount(): number {
    return this.count;
  }

  /** The statistics so far. With no finite values, the moments and extremes are 0. */
  result(): TensorStatsDto {
    if (this.count === 0) {
      return { mean: 0, std: 0, min: 0, max: 0, absMax: 0, l2: 0, zeros: this.zeros, nonFinite: this.nonFinite };
    }
    const n = this.count;
    const meanShifted = this.sum / n;
    const variance = Math.max(0, this.sumSquares / n - meanShifted * meanShifted);
    const mean = this.shift + meanShifted;
    // Σx² = Σ(d + K)² = Σd² + 2KΣd + nK²
    const sumSq = this.sumSquares + 2 * this.shift * this.sum + n * this.shift * this.shift;
    return {
      mean,
      std: Math.sqrt(variance),
      min: this.min,
      max: this.max,
      absMax: Math.max(Math.abs(this.min), Math.abs(this.max)),
      l2: Math.sqrt(Math.max(0, sumSq)),
      zeros: this.zeros,
      nonFinite: this.nonFinite,
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

  constructor(lo: number, hi: number, readonly bins: number) {
    if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`histogram needs a positive whole number of bins, got ${bins}`);
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

  /** Bins every finite value of `chunk` that lies in `[lo, hi]`; values outside the range are not counted. */
  add(chunk: ValueChunk): void {
    const counts = this.counts;
    const edges = this.edges;
    const lo = this.lo;
    const hi = this.hi;
    const scale = this.scale;
    const last = this.bins - 1;
    const n = chunk.length;
    for (let i = 0; i < n; i++) {
      const v = chunk[i] as number;
      if (!(v >= lo && v <= hi)) continue; // also skips NaN
      let b = ((v - lo) * scale) | 0; // v ∈ [lo, hi], so 0 ≤ b ≤ bins: safe as int32
      if (b > last) b = last;
      if (v < (edges[b] as number)) b--;
      else if (b !== last && v >= (edges[b + 1] as number)) b++;
      counts[b] = (counts[b] as number) + 1;
    }
  }

  /** The histogram: `bins + 1` edges and `bins` counts. */
  result(): HistogramDto {
    return { edges: Array.from(this.edges), counts: Array.from(this.counts) };
  }
}
