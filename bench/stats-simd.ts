// Throughput of the float32 statistics and histogram kernels, JS versus WebAssembly SIMD, through the public
// StatsAccumulator / HistogramAccumulator API (so the wasm figures include copying each chunk into wasm memory).
// Prints ns per element (median of several runs) over a 64 MiB Float32Array streamed from RAM, the same work on a
// 1 MiB array that stays in cache (the kernels' own speed), and the cost of the copy alone.
//
//   node --import tsx bench/stats-simd.ts [runs] [bins]
import { HistogramAccumulator, StatsAccumulator } from '../src/core/tensors/stats';
import { setSimdEnabled, simdSupported } from '../src/core/tensors/simdStats';

const runs = Number(process.argv[2] ?? 7);
const bins = Number(process.argv[3] ?? 256);
const n = 16 * 1024 * 1024; // 64 MiB of float32
const chunkElements = 4 * 1024 * 1024; // DEFAULT_CHUNK_ELEMENTS of tensor value streams

// Normally distributed weights (Box-Muller), deterministic.
const values = new Float32Array(n);
let seed = 12345;
const uniform = (): number => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return (seed + 0.5) / 4294967296;
};
for (let i = 0; i < n; i += 2) {
  const r = Math.sqrt(-2 * Math.log(uniform())),
    t = 2 * Math.PI * uniform();
  values[i] = 0.02 * r * Math.cos(t);
  if (i + 1 < n) values[i + 1] = 0.02 * r * Math.sin(t);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function time(fn: () => void): number {
  for (let w = 0; w < 3; w++) fn(); // warm-up: let V8 optimise the JS kernels
  const ns: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    ns.push(Number(process.hrtime.bigint() - t0) / n);
  }
  return median(ns);
}

/** Both passes over `reps` repetitions of `chunks` (the same chunks repeated keep the data in cache). */
function stats(chunks: Float32Array[], reps = 1): { min: number; max: number } {
  const acc = new StatsAccumulator();
  for (let r = 0; r < reps; r++) for (const c of chunks) acc.add(c);
  const result = acc.result();
  return { min: result.min ?? 0, max: result.max ?? 0 };
}

function histogram(chunks: Float32Array[], lo: number, hi: number, reps = 1): number[] {
  const acc = new HistogramAccumulator(lo, hi, bins);
  for (let r = 0; r < reps; r++) for (const c of chunks) acc.add(c);
  return acc.result().counts;
}

const chunks: Float32Array[] = [];
for (let i = 0; i < n; i += chunkElements) chunks.push(values.subarray(i, i + chunkElements));
// 1 MiB of the same values, added 64 times: L2-resident, so this measures the kernels rather than memory.
const small = [values.subarray(0, 256 * 1024)];
const smallReps = n / (256 * 1024);

if (!simdSupported()) console.log('WebAssembly SIMD is not available here: both rows use the JS kernels.');
setSimdEnabled(false); // JS rows first, before V8 sees the wasm path (mixing both in one run can leave the JS kernel less optimised)
const { min, max } = stats(chunks);
interface Row {
  path: string;
  moments: number;
  histogram: number;
}
const rows: { memory: Row[]; cache: Row[] } = { memory: [], cache: [] };
for (const simd of [false, true]) {
  setSimdEnabled(simd);
  const path = simd ? 'wasm SIMD' : 'JS';
  rows.memory.push({
    path,
    moments: time(() => {
      stats(chunks);
    }),
    histogram: time(() => {
      histogram(chunks, min, max);
    }),
  });
  rows.cache.push({
    path,
    moments: time(() => {
      stats(small, smallReps);
    }),
    histogram: time(() => {
      histogram(small, min, max, smallReps);
    }),
  });
}
setSimdEnabled(false);
const jsCounts = histogram(chunks, min, max);
setSimdEnabled(true);
const wasmCounts = histogram(chunks, min, max);
const same = jsCounts.every((c, i) => c === wasmCounts[i]);

// What the wasm path cannot avoid: copying the values into wasm memory (1 MiB windows), from RAM.
const window = new Float32Array(256 * 1024);
const copy = time(() => {
  for (let i = 0; i < n; i += window.length) window.set(values.subarray(i, i + window.length));
});

const gbs = (ns: number): string => (4 / ns).toFixed(2);
const print = (title: string, list: Row[]): void => {
  console.log(title);
  for (const r of list) {
    console.log(
      `  ${r.path.padEnd(10)} moments ${r.moments.toFixed(3)} ns/elt (${gbs(r.moments)} GB/s)   ` +
        `histogram ${r.histogram.toFixed(3)} ns/elt (${gbs(r.histogram)} GB/s)`,
    );
  }
  const [js, wasm] = list as [Row, Row];
  console.log(
    `  speed-up: moments ${(js.moments / wasm.moments).toFixed(2)}x, histogram ${(js.histogram / wasm.histogram).toFixed(2)}x`,
  );
};
console.log(`${n} float32 values, ${bins} bins, median of ${runs} runs`);
print(`64 MiB array in chunks of ${chunkElements} (values stream from RAM):`, rows.memory);
print('1 MiB array added 64 times (values in cache: kernel speed):', rows.cache);
console.log(`copying 64 MiB from RAM into a 1 MiB buffer alone: ${copy.toFixed(3)} ns/elt (${gbs(copy)} GB/s)`);
console.log(`histogram counts identical (JS vs wasm): ${same}`);
