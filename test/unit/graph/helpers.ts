/**
 * Test helpers for the graph executor: a seeded random source and a relative-error measure. ONNX test models are
 * built by test/helpers/protobuf.ts; onnxruntime-node, the reference, comes from test/helpers/ort.ts.
 */
/** Deterministic uniform values in [lo, hi) (mulberry32). */
export function seededRandom(seed: number, count: number, lo = -1, hi = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = lo + (hi - lo) * r;
  }
  return out;
}

/** max |a − b| / max(max |ref|, 1e-12). */
export function relativeMaxError(actual: ArrayLike<number>, ref: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] ?? NaN) - (ref[i] ?? NaN)) || (Number.isNaN(actual[i]) ? Infinity : 0));
    scale = Math.max(scale, Math.abs(ref[i] ?? 0));
  }
  return diff / Math.max(scale, 1e-12);
}
