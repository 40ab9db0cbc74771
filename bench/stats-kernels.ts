// Throughput of the float32 statistics and histogram kernels, JS versus WebAssembly SIMD, through the public
// StatsAccumulator / HistogramAccumulator API (so the wasm figures include copying each chunk into wasm memory).
// Prints ns per element (median of several runs) over a 64 MiB Float32Array.
//
//   node --import tsx bench/stats-kernels.ts [runs] [bins]
import { HistogramAccumulator, StatsAccumulator } from '../src/core/tensors/stats';
import { setSimdEnabled, simdSupported } from '../src/core/tensors/simdKernels';

const runs = Number(process.argv[2] ?? 7);
const bins = Number(process.argv[3] ?? 256);
const n = 16 * 1024 * 1024; // 64 MiB of float32
const chunkElements = 4 * 1024 * 1024; // the default chunk of tensor value streams

// Normally distributed weights (Box-Muller), deterministic.
const values = new Float32Array(n);
let seed = 12345;
const uniform = (): number => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return (seed + 0.5) / 4294967296;
};
for (let i = 0; i < n; i += 2) {
  const r = Math.sqrt(-2 * Math.log(uniform())), t = 2 * Math.PI * uniform();
  values[i] = 0.02 * r * Math.cos(t);
  if (i + 1 < n) values[i + 1] = 0.02 * r * Math.sin(t);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function time(fn: () => void): number {
  fn(); // warm-up
  const ns: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    ns.push(Number(process.hrtime.bigint() - t0) / n);
  }
  return median(ns);
}

function stats(): { min: number; max: number } {
  const acc = new StatsAccumulator();
  for (let i = 0; i < n; i += chunkElements) acc.add(values.subarray(i, i + chunkElements));
  return acc.result();
}

function histogram(lo: number, hi: number): number[] {
  const acc = new HistogramAccumulator(lo, hi, bins);
  for (let i = 0; i < n; i += chunkElements) acc.add(values.subarray(i, i + chunkElements));
  return acc.result().counts;
}

if (!simdSupported()) console.log('WebAssembly SIMD is not available here: both rows use the JS kernels.');
const { min, max } = stats();
const rows: { path: string; moments: number; histogram: number }[] = [];
for (const simd of [false, true]) {
  setSimdEnabled(simd);
  rows.push({
    path: simd ? 'wasm SIMD' : 'JS',
    moments: time(() => { stats(); }),
    histogram: time(() => { histogram(min, max); }),
  });
}
setSimdEnabled(false);
const jsCounts = histogram(min, max);
setSimdEnabled(true);
const wasmCounts = histogram(min, max);
const same = jsCounts.every((c, i) => c === wasmCounts[i]);

console.log(`${n} float32 values (64 MiB) in chunks of ${chunkElements}, ${bins} bins, median of ${runs} runs`);
for (const r of rows) {
  const gbs = (ns: number): string => (4 / ns).toFixed(2);
  console.log(
    `${r.path.padEnd(10)} moments ${r.moments.toFixed(3)} ns/elt (${gbs(r.moments)} GB/s)   ` +
    `histogram ${r.histogram.toFixed(3)} ns/elt (${gbs(r.histogram)} GB/s)`,
  );
}
const [js, wasm] = rows as [typeof rows[0], typeof rows[0]];
console.log(`speed-up: moments ${(js.moments / wasm.moments).toFixed(2)}x, histogram ${(js.histogram / wasm.histogram).toFixed(2)}x; histogram counts identical: ${same}`);
