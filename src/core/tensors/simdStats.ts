/**
 * Loader and JS side of the WebAssembly SIMD statistics routines (simdStats.wat) for float32 statistics and histograms. The
 * module is compiled synchronously once, with its own fixed 1.6 MiB memory that never grows: each chunk is copied
 * through a 1 MiB window, so memory stays bounded whatever the chunk size. The routines give the same results as the
 * JS routines of stats.ts (histogram counts identical, moments up to float64 summation order); stats.ts falls back
 * to its JS routines when these are unavailable (no WebAssembly SIMD, `WEIGHT_LENS_NO_SIMD=1`, or
 * `setSimdEnabled(false)`) or decline a call (they return false).
 */
import { SIMD_STATS_WASM_BASE64 } from './simdStats.wasm';

/** Running moments in the layout of stats.ts: sums of (v − shift) over finite values, extremes, counts. */
export interface MomentSums {
  count: number;
  sum: number;
  sumSquares: number;
  min: number;
  max: number;
  zeros: number;
  nonFinite: number;
}

/** The float32 routines. Each returns false, having changed nothing, when it cannot take the call. */
export interface SimdStats {
  /**
   * Adds `chunk[start..]` to `m` exactly as the JS moments routine does: non-finite values counted in `nonFinite`
   * and skipped; `sum`/`sumSquares` of (v − shift) in float64; `min`/`max` updated only by strictly smaller/larger
   * values (so the sign of a zero extreme is that of the first zero, as in JS). Declines a shift that is not a
   * float32 value.
   */
  moments(chunk: Float32Array, start: number, shift: number, m: MomentSums): boolean;
  /**
   * Adds the histogram of `chunk` to `counts` (`bins = counts.length` bins, `edges.length = bins + 1`), with the
   * JS routine's binning: values in [lo, hi] go to bin trunc((v − lo) · scale) clamped to the last bin and corrected
   * by one against `edges`. Declines more than `maxBins` bins and non-finite `lo`, `hi` or `scale`. The float32
   * copy of `edges` is cached by array identity, so an edges array must not change once passed (those of a
   * HistogramAccumulator never do).
   */
  histogram(
    chunk: Float32Array,
    lo: number,
    hi: number,
    scale: number,
    edges: Float64Array,
    counts: Float64Array,
  ): boolean;
  /** Largest number of histogram bins the routine takes (the count tables live in the fixed memory). */
  readonly maxBins: number;
}

/** The parts of the WebAssembly JS API used here (the Node typings of this project do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

interface KernelExports {
  buffer: ArrayBuffer;
  data: number;
  window: number;
  edgeLo: number;
  edgeHi: number;
  counts: number;
  maxBins: number;
  moments: (n: number, shift: number) => void;
  momentsChecked: (n: number, shift: number, shift32: number) => void;
  histogram: (
    n: number,
    lo: number,
    scale: number,
    lo32: number,
    hi32: number,
    last: number,
    loF: number,
    scaleF: number,
    half: number,
  ) => void;
}

let enabled = process.env.WEIGHT_LENS_NO_SIMD !== '1';
let loaded: SimdStats | null | undefined;

/**
 * The SIMD statistics routines, or null when WebAssembly SIMD is unavailable or disabled. The module is instantiated on the
 * first call (synchronously, about 2 KB) and reused.
 */
export function simdStats(): SimdStats | null {
  if (!enabled) return null;
  if (loaded === undefined) loaded = load();
  return loaded;
}

/** Whether this runtime can run the routines, regardless of `setSimdEnabled`. */
export function simdSupported(): boolean {
  if (loaded === undefined) loaded = load();
  return loaded !== null;
}

/**
 * Turns the SIMD statistics routines on or off for this process (tests use it to compare both paths). They start enabled
 * unless the environment variable `WEIGHT_LENS_NO_SIMD` is `1`.
 */
export function setSimdEnabled(on: boolean): void {
  enabled = on;
}

function load(): SimdStats | null {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (wasm === undefined) return null;
  let exports: Record<string, unknown>;
  try {
    exports = new wasm.Instance(new wasm.Module(Buffer.from(SIMD_STATS_WASM_BASE64, 'base64')), {}).exports;
  } catch {
    return null; // No SIMD support in this runtime: the JS routines are used.
  }
  const global = (name: string): number => {
    const g = exports[name] as { value?: unknown } | undefined;
    if (typeof g?.value !== 'number') throw new Error(`simdStats.wasm lacks the export ${name}`);
    return g.value;
  };
  const func = (name: string): unknown => {
    const f = exports[name];
    if (typeof f !== 'function') throw new Error(`simdStats.wasm lacks the function ${name}`);
    return f;
  };
  const memory = exports.memory as { buffer?: unknown } | undefined;
  if (!(memory?.buffer instanceof ArrayBuffer)) throw new Error('simdStats.wasm lacks its memory');
  return makeKernels({
    buffer: memory.buffer,
    data: global('DATA'),
    window: global('WINDOW'),
    edgeLo: global('EDGE_LO'),
    edgeHi: global('EDGE_HI'),
    counts: global('COUNTS'),
    maxBins: global('MAX_BINS'),
    moments: func('moments') as KernelExports['moments'],
    momentsChecked: func('momentsChecked') as KernelExports['momentsChecked'],
    histogram: func('histogram') as KernelExports['histogram'],
  });
}

// Float32 neighbours, for rounding float64 bounds to float32 in a chosen direction.
const scratchF32 = new Float32Array(1);
const scratchI32 = new Int32Array(scratchF32.buffer);
const MIN_SUBNORMAL_F32 = 2 ** -149;

/** The smallest float32 ≥ x (x not NaN): for a float32 v, `v >= x` ⇔ `v >= f32AtLeast(x)`. */
function f32AtLeast(x: number): number {
  const f = Math.fround(x);
  if (f >= x) return f;
  if (f === 0) return MIN_SUBNORMAL_F32;
  scratchF32[0] = f;
  scratchI32[0] = (scratchI32[0] as number) + (f > 0 ? 1 : -1);
  return scratchF32[0];
}

/** The largest float32 ≤ x (x not NaN): for a float32 v, `v <= x` ⇔ `v <= f32AtMost(x)`. */
function f32AtMost(x: number): number {
  return -f32AtLeast(-x);
}

const U32 = 2 ** -24; // unit roundoff of float32
const U64 = 2 ** -53; // unit roundoff of float64

/**
 * The histogram routine's fast-path bound `half` = 0.5 − M (0 turns the fast path off). In bin units, M is 4 times
 * the sum of: the float32 error of t = (v − fround(lo)) · fround(scale) − 0.5 against the exact position
 * (v − lo) · bins / (hi − lo), that is |lo| · scale · u32 (rounding lo), 3 · bins · u32 (subtraction, rounding
 * scale, multiplication), the subnormal floor of rounding lo and 2^-25 (subtracting 0.5); and the float64 error of
 * the edges `i · step + lo`, 3 · bins · u64 + max(|lo|, |hi|) · scale · u64. With |t − round(t)| < 0.5 − M the
 * exact position is more than those errors away from every edge, so round(t) is the bin the edges give.
 */
function fastPathBound(lo: number, hi: number, scale: number, bins: number): number {
  const absLo = Math.abs(lo),
    absMax = Math.max(absLo, Math.abs(hi));
  // Keep well inside the float32 normal range; anything else takes the exact path.
  if (!(absMax <= 2 ** 100 && scale >= 2 ** -100 && scale <= 2 ** 100)) return 0;
  const position = 1.01 * (U32 * absLo * scale + 2 ** -150 * scale + 3 * U32 * bins) + 2 ** -25;
  const edges = 1.01 * (3 * U64 * bins + U64 * absMax * scale);
  const margin = 4 * (position + edges) + 2 ** -20;
  return margin < 0.5 ? f32AtMost(0.5 - margin) : 0;
}

function makeKernels(k: KernelExports): SimdStats {
  // The memory never grows, so these views stay valid.
  const window = k.window;
  const data = new Float32Array(k.buffer, k.data, window + 4);
  const resultsF64 = new Float64Array(k.buffer, 0, 2);
  const resultsF32 = new Float32Array(k.buffer, 16, 8);
  const resultsI32 = new Int32Array(k.buffer, 48, 2);
  const edgeLo = new Float32Array(k.buffer, k.edgeLo, k.maxBins);
  const edgeHi = new Float32Array(k.buffer, k.edgeHi, k.maxBins);
  const tables = new Int32Array(k.buffer, k.counts, 4 * (k.maxBins + 1));
  let loadedEdges: Float64Array | null = null;

  /** Copies chunk[from, from + len) into the window and pads it with `pad` to a multiple of 4; returns that length. */
  function fill(chunk: Float32Array, from: number, len: number, pad: number): number {
    data.set(chunk.subarray(from, from + len));
    const n = (len + 3) & ~3;
    for (let j = len; j < n; j++) data[j] = pad;
    return n;
  }

  /** The first zero (with its sign) in chunk[from, from + len), or `fallback` if there is none. */
  function firstZero(chunk: Float32Array, from: number, len: number, fallback: number): number {
    for (let i = from, end = from + len; i < end; i++) {
      const v = chunk[i] as number;
      if (v === 0) return v;
    }
    return fallback;
  }

  function moments(chunk: Float32Array, start: number, shift: number, m: MomentSums): boolean {
    const shift32 = Math.fround(shift);
    if (shift32 !== shift) return false;
    let count = 0,
      sum = 0,
      sumSquares = 0,
      zeros = 0,
      nonFinite = 0;
    let min = m.min,
      max = m.max;
    for (let i = start, total = chunk.length; i < total; i += window) {
      const len = Math.min(window, total - i);
      // Padding with the shift adds 0 to both sums and cannot move an extreme (the shift was seen first).
      const n = fill(chunk, i, len, shift32);
      const pad = n - len;
      k.moments(n, shift);
      let s = resultsF64[0] as number,
        q = resultsF64[1] as number;
      if (!(s - s === 0 && q - q === 0)) {
        // A NaN or ±Inf in the window: redo it skipping non-finite values.
        k.momentsChecked(n, shift, shift32);
        s = resultsF64[0] as number;
        q = resultsF64[1] as number;
      }
      const finite = (resultsI32[1] as number) - pad;
      sum += s;
      sumSquares += q;
      count += finite;
      nonFinite += len - finite;
      zeros += (resultsI32[0] as number) - (shift32 === 0 ? pad : 0);
      // Merge the lanes. Values are those of the sequential loop; only a zero extreme could differ in sign, and
      // the sequential loop keeps the first zero of the window.
      let wmin = Infinity,
        wmax = -Infinity;
      for (let lane = 0; lane < 4; lane++) {
        const lo = resultsF32[lane] as number,
          hi = resultsF32[4 + lane] as number;
        if (lo < wmin) wmin = lo;
        if (hi > wmax) wmax = hi;
      }
      if (wmin === 0) wmin = firstZero(chunk, i, len, wmin);
      if (wmax === 0) wmax = firstZero(chunk, i, len, wmax);
      if (wmin < min) min = wmin;
      if (wmax > max) max = wmax;
    }
    m.count += count;
    m.sum += sum;
    m.sumSquares += sumSquares;
    m.min = min;
    m.max = max;
    m.zeros += zeros;
    m.nonFinite += nonFinite;
    return true;
  }

  /** Adds the interleaved int32 tables to `counts` and clears them. */
  function flush(counts: Float64Array): void {
    const bins = counts.length;
    for (let b = 0, o = 0; b < bins; b++, o += 4) {
      counts[b] =
        (counts[b] as number) +
        (tables[o] as number) +
        (tables[o + 1] as number) +
        (tables[o + 2] as number) +
        (tables[o + 3] as number);
    }
    tables.fill(0, 0, 4 * (bins + 1));
  }

  function histogram(
    chunk: Float32Array,
    lo: number,
    hi: number,
    scale: number,
    edges: Float64Array,
    counts: Float64Array,
  ): boolean {
    const bins = counts.length;
    if (bins < 1 || bins > k.maxBins || edges.length !== bins + 1) return false;
    if (!(Number.isFinite(lo) && Number.isFinite(hi) && Number.isFinite(scale))) return false;
    const last = bins - 1;
    if (loadedEdges !== edges) {
      // The edges of an accumulator never change, so they are rounded into the tables once per accumulator in turn.
      for (let b = 0; b < bins; b++) {
        edgeLo[b] = f32AtLeast(edges[b] as number);
        edgeHi[b] = b === last ? Infinity : f32AtLeast(edges[b + 1] as number);
      }
      loadedEdges = edges;
    }
    const lo32 = f32AtLeast(lo),
      hi32 = f32AtMost(hi);
    const half = fastPathBound(lo, hi, scale, bins);
    // Pad with NaN, which falls outside [lo, hi]. Flush well before an int32 slot could overflow.
    let sinceFlush = 0;
    for (let i = 0, total = chunk.length; i < total; i += window) {
      const len = Math.min(window, total - i);
      const n = fill(chunk, i, len, NaN);
      k.histogram(n, lo, scale, lo32, hi32, last, Math.fround(lo), Math.fround(scale), half);
      sinceFlush += n;
      if (sinceFlush >= 2 ** 30) {
        flush(counts);
        sinceFlush = 0;
      }
    }
    flush(counts);
    return true;
  }

  return { moments, histogram, maxBins: k.maxBins };
}
