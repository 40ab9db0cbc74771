// The WebAssembly SIMD float32 routines against the JS routines: every sequence of chunks is fed to a
// StatsAccumulator / HistogramAccumulator once with SIMD off and once with it on. Histogram counts, extremes (sign
// of zero included), zero and non-finite counts must be identical; mean, std and L2 may differ only by float64
// summation order. Data covers the NumPy fixtures, NaN/±Inf/±0/subnormals, values on and next to bin edges and
// range ends, window boundaries of the wasm memory, and the cases the wasm path hands back to JS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeValues, type ValueChunk } from '../../../src/core/tensors/dtype';
import { HistogramAccumulator, StatsAccumulator } from '../../../src/core/tensors/stats';
import { setSimdEnabled, simdStats, simdSupported } from '../../../src/core/tensors/simdStats';
import type { HistogramDto, TensorStatsDto } from '../../../src/protocol/inspect';

const WINDOW = 262144; // float32 values per copy into wasm memory (simdStats.wat)

interface Result {
  stats: TensorStatsDto;
  hist: HistogramDto;
}

/** Runs both passes over `chunks`, with the histogram over [lo, hi] (default: the data's min and max). */
function run(chunks: ValueChunk[], bins: number, simd: boolean, range?: [number, number]): Result {
  setSimdEnabled(simd);
  try {
    const acc = new StatsAccumulator();
    for (const c of chunks) acc.add(c);
    const stats = acc.result();
    const [lo, hi] = range ?? [stats.min ?? 0, stats.max ?? 0];
    const h = new HistogramAccumulator(lo, hi, bins);
    for (const c of chunks) h.add(c);
    return { stats, hist: h.result() };
  } finally {
    setSimdEnabled(true);
  }
}

function split(values: Float32Array, size: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i < values.length; i += size) out.push(values.subarray(i, i + size));
  return out;
}

/** Asserts the SIMD and JS paths agree on `chunks`; returns the SIMD result, with the JS one as `js`. */
function agree(what: string, chunks: ValueChunk[], bins: number, range?: [number, number]): Result & { js: Result } {
  const js = run(chunks, bins, false, range);
  const wasm = run(chunks, bins, true, range);
  for (const key of ['min', 'max', 'absMax', 'zeros', 'nonFinite'] as const) {
    assert.equal(wasm.stats[key], js.stats[key], `${what}: ${key} (wasm ${wasm.stats[key]}, JS ${js.stats[key]})`);
  }
  const magnitude = Math.max(js.stats.absMax ?? 0, Number.MIN_VALUE);
  for (const key of ['mean', 'std', 'l2'] as const) {
    const a = wasm.stats[key],
      b = js.stats[key];
    if (a === null || b === null) {
      assert.equal(a, b, `${what}: ${key} is missing on one path only`);
      continue;
    }
    const tol = 1e-12 * Math.max(Math.abs(a), Math.abs(b), magnitude);
    assert.ok(Math.abs(a - b) <= tol, `${what}: ${key} wasm ${a} vs JS ${b}`);
  }
  assert.deepEqual(wasm.hist.edges, js.hist.edges, `${what}: edges`);
  assert.deepEqual(wasm.hist.counts, js.hist.counts, `${what}: histogram counts`);
  return { ...wasm, js };
}

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(random() || 1e-300)) * Math.cos(2 * Math.PI * random());
}

/** The float32 neighbours of x: next below and next above. */
function f32Neighbours(x: number): [number, number] {
  const f = new Float32Array([Math.fround(x)]);
  const i = new Int32Array(f.buffer);
  const v = f[0]!;
  const step = (dir: 1 | -1): number => {
    if (v === 0) return dir * 2 ** -149;
    const g = new Float32Array([v]);
    const gi = new Int32Array(g.buffer);
    gi[0] = i[0]! + (v > 0 === dir > 0 ? 1 : -1);
    return g[0]!;
  };
  return [step(-1), step(1)];
}

test('WebAssembly SIMD is available in this Node and used by default', () => {
  assert.ok(simdSupported(), 'this runtime should run the wasm SIMD routines');
  assert.notEqual(simdStats(), null);
  setSimdEnabled(false);
  assert.equal(simdStats(), null);
  setSimdEnabled(true);
});

const dir = join(__dirname, '../../fixtures/stats');
interface Case {
  file: string;
  dtype: 'F32' | 'F64';
  count: number;
  bins: number;
  stats: Record<string, number | null>;
  histogram: { counts: number[] };
}
const cases = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, Case>;
for (const [name, c] of Object.entries(cases)) {
  if (c.dtype !== 'F32') continue;
  test(`NumPy fixture ${name}: wasm and JS agree, counts equal NumPy's`, () => {
    const values = decodeValues('F32', new Uint8Array(readFileSync(join(dir, c.file)))) as Float32Array;
    for (const size of [c.count, 1000, 7, 1]) {
      if (size === 1 && c.count > 5000) continue;
      const both = agree(`${name} in chunks of ${size}`, split(values, size), c.bins);
      for (const r of [both, both.js]) {
        if (c.stats.mean === null) {
          // No finite values: no moments, and nothing lands in any bin.
          for (const key of ['mean', 'min', 'max', 'absMax', 'l2', 'std'] as const)
            assert.equal(r.stats[key], null, `${name}: ${key}`);
          assert.ok(
            r.hist.counts.every((n) => n === 0),
            `${name}: empty histogram`,
          );
          assert.equal(r.stats.nonFinite, c.stats.nonFinite);
          continue;
        }
        assert.deepEqual(r.hist.counts, c.histogram.counts, `${name}: NumPy counts`);
        for (const key of ['mean', 'min', 'max', 'absMax', 'l2', 'std'] as const) {
          const expected = c.stats[key] ?? NaN;
          const tol = (key === 'std' ? 1e-6 : 1e-9) * Math.max(1, Math.abs(expected));
          assert.ok(
            Math.abs((r.stats[key] ?? NaN) - expected) <= tol,
            `${name}: ${key} ${r.stats[key]} vs NumPy ${expected}`,
          );
        }
        assert.equal(r.stats.zeros, c.stats.zeros);
        assert.equal(r.stats.nonFinite, c.stats.nonFinite);
      }
    }
  });
}

/** Random weights with a sprinkling of special values. */
function mixed(n: number, seed: number): Float32Array {
  const random = rng(seed);
  const specials = [NaN, Infinity, -Infinity, 0, -0, 2 ** -149, -(2 ** -149), 1e-40, -3e-39, 2 ** -126];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = random();
    out[i] = r < 0.01 ? specials[Math.floor(random() * specials.length)]! : 0.05 * normal(random) + 0.01;
  }
  return out;
}

test('random data with NaN, ±Inf, ±0 and subnormals, across wasm window boundaries', () => {
  for (const seed of [1, 2, 3]) {
    const values = mixed(WINDOW + 1237, seed);
    for (const size of [values.length, WINDOW, WINDOW - 1, 65537, 4099]) {
      for (const bins of [1, 7, 64, 256])
        agree(`seed ${seed}, chunks ${size}, ${bins} bins`, split(values, size), bins);
    }
  }
});

test('small chunks of every length 0..40, each a different mix', () => {
  const random = rng(99);
  for (let len = 0; len <= 40; len++) {
    const values = mixed(len, 1000 + len);
    // Split at random points, empty chunks included.
    const chunks: Float32Array[] = [];
    let i = 0;
    while (i < len) {
      const size = Math.floor(random() * 6);
      chunks.push(values.subarray(i, i + size));
      i += size;
    }
    agree(`length ${len}`, chunks.length ? chunks : [values], 16);
  }
});

test('values exactly on bin edges and on their float32 neighbours', () => {
  // Dyadic range: every edge is a float32, so values sit exactly on edges.
  const onEdges: number[] = [];
  for (let i = 0; i <= 64; i++) for (let r = 0; r < 3; r++) onEdges.push(-1 + i / 32);
  agree('dyadic edges', [new Float32Array(onEdges)], 64);
  // Non-dyadic ranges: float64 edges between float32 values; take the float32 values around each edge.
  for (const [lo, hi, bins] of [
    [-0.3, 0.7, 7],
    [0.1, 0.2, 100],
    [-1e-3, 3e-3, 1000],
    [1e4, 1e4 + 1, 64],
    [-5, 17, 3],
  ] as const) {
    const step = (hi - lo) / bins;
    const values: number[] = [];
    for (let i = 0; i <= bins; i++) {
      const e = i === bins ? hi : i * step + lo;
      const [below, above] = f32Neighbours(e);
      values.push(Math.fround(e), below, above);
    }
    const data = new Float32Array(values);
    agree(`edges of [${lo}, ${hi}] / ${bins}`, [data], bins, [lo, hi]);
    agree(`edges of [${lo}, ${hi}] / ${bins}, own range`, [data], bins);
  }
});

test('values whose bin estimate overshoots and needs the lower-edge correction', () => {
  // Found by search: trunc((v - lo) * bins / (hi - lo)) is k although v lies just below edge k (a few float64 ulps).
  const found: [number, number, number, number, number][] = [
    [-0.26383018493652344, 15.026549458503725, 43, 6, 1.86971116065979],
    [-1.970522165298462, 6.021642128626507, 8, 3, 1.0265394449234009],
    [0.47475433349609375, 7.020139592034477, 46, 14, 2.4668281078338623],
    [-1.29638671875, 5.952330923080445, 59, 15, 0.5465075969696045],
    [-1.1785736083984375, 2.362739580598745, 29, 11, 0.16468311846256256],
  ];
  for (const [lo, hi, bins, k, v] of found) {
    const edge = k * ((hi - lo) / bins) + lo;
    assert.equal(((v - lo) * (bins / (hi - lo))) | 0, k);
    assert.ok(v < edge);
    const h = agree(
      `overshoot at edge ${k} of [${lo}, ${hi}] / ${bins}`,
      [new Float32Array([v, ...f32Neighbours(v)])],
      bins,
      [lo, hi],
    );
    assert.equal(h.hist.counts[k - 1], 2, 'v and the value below it are in bin k - 1');
  }
});

test('histogram range narrower than the data, and range ends next to float32 values', () => {
  const values = mixed(50_001, 7);
  agree('narrow range', [values], 32, [-0.02, 0.03]);
  // Range ends that are not float32 values, with data on their float32 neighbours.
  const lo = 0.1,
    hi = 0.30000000000000004;
  const [loBelow, loAbove] = f32Neighbours(lo);
  const [hiBelow, hiAbove] = f32Neighbours(hi);
  const ends = new Float32Array([lo, loBelow, loAbove, hi, hiBelow, hiAbove, 0.2, NaN, Infinity, -Infinity]);
  agree('range ends', [ends], 10, [lo, hi]);
});

test('large mean, constant tensors and a single value', () => {
  const random = rng(5);
  const large = new Float32Array(100_003);
  for (let i = 0; i < large.length; i++) large[i] = 1e4 + 1e-2 * normal(random);
  agree('large mean', split(large, 30_000), 64);
  agree('constant', [new Float32Array(1001).fill(0.25)], 16);
  agree('constant non-dyadic', [new Float32Array(999).fill(1e-8)], 16);
  agree('one value', [new Float32Array([3])], 8);
  agree('subnormal values only', [Float32Array.from({ length: 501 }, (_, i) => (i - 100) * 2 ** -149)], 16);
  agree('huge values', [new Float32Array([3e38, -3e38, 1e38, 0, -1e38, 3.4028234663852886e38])], 16);
  agree('all NaN', [new Float32Array(13).fill(NaN)], 8);
  agree('NaN then values', [new Float32Array([NaN, NaN, -Infinity]), new Float32Array([NaN, 2, 1, 0, -1, NaN])], 8);
});

test('the sign of a zero minimum or maximum is that of the first zero, as in the JS routine', () => {
  // Non-negative data whose minimum is zero (and non-positive data whose maximum is zero), with the first zero of
  // either sign in any lane, behind padding and NaN replacement, and zeros as the shift.
  for (const first of [0, -0]) {
    for (let pos = 0; pos < 9; pos++) {
      const pos1 = new Float32Array(11).fill(1);
      const neg1 = new Float32Array(11).fill(-1);
      pos1[pos] = first;
      neg1[pos] = first;
      pos1[10] = -first;
      neg1[10] = -first;
      const a = agree(`min zero at ${pos}`, [pos1], 4);
      assert.ok(Object.is(a.stats.min, first), `min should be ${Object.is(first, -0) ? '-0' : '+0'}`);
      const b = agree(`max zero at ${pos}`, [neg1], 4);
      assert.ok(Object.is(b.stats.max, first));
    }
  }
  agree('zero shift with padding', [new Float32Array([-0, 3, NaN, 2, 0, 5, Infinity])], 4);
  agree('zero shift, later chunks positive', [new Float32Array([0]), new Float32Array([NaN, 1, 2, 3, 4, 5])], 4);
  agree('zero shift, later chunks negative', [new Float32Array([-0]), new Float32Array([NaN, -1, -2, 0, -4, -5])], 4);
});

test('cases the wasm path hands to the JS routines give the same results', () => {
  const values = mixed(10_000, 11);
  // More bins than the wasm count tables hold.
  const many = simdStats()!.maxBins + 5;
  agree('too many bins', [values], many);
  // A shift that is not a float32 value (first chunk float64): moments fall back to JS for later float32 chunks.
  agree('float64 shift', [new Float64Array([0.1, 0.2]), values], 16);
});

test('WEIGHT_LENS_NO_SIMD=1 is honoured when the module loads', async () => {
  const { spawnSync } = await import('node:child_process');
  const script = "process.stdout.write(String(require('./src/core/tensors/simdStats.ts').simdStats() === null))";
  const root = join(__dirname, '../../..');
  const out = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: root,
    env: { ...process.env, WEIGHT_LENS_NO_SIMD: '1' },
    encoding: 'utf8',
  });
  assert.equal(out.stdout, 'true', out.stderr);
});
