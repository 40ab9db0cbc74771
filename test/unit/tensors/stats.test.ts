// Statistics and histograms checked against NumPy (test/fixtures/make/stats.py), including chunked accumulation,
// non-finite values, a large mean (variance cancellation) and values exactly on bin edges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeValues } from '../../../src/core/tensors/dtype';
import { HistogramAccumulator, StatsAccumulator, tensorStatistics } from '../../../src/core/tensors/stats';
import { memoryTensor } from '../../../src/core/tensors/tensor';

interface Case {
  file: string;
  dtype: 'F32' | 'F64';
  count: number;
  bins: number;
  stats: Record<string, number | null>;
  histogram: { edges: number[]; counts: number[] };
}
const dir = join(__dirname, '../../fixtures/stats');
const cases = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, Case>;

function close(actual: number, expected: number, rel: number, what: string): void {
  const tol = rel * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs NumPy ${expected}`);
}

for (const [name, c] of Object.entries(cases)) {
  for (const chunkSize of [c.count, 1000, 7]) {
    test(`stats of ${name} match NumPy (chunks of ${chunkSize})`, () => {
      const values = decodeValues(c.dtype, new Uint8Array(readFileSync(join(dir, c.file))));
      assert.equal(values.length, c.count);
      const acc = new StatsAccumulator();
      for (let i = 0; i < values.length; i += chunkSize) acc.add(values.subarray(i, i + chunkSize));
      const s = acc.result();
      assert.equal(s.zeros, c.stats.zeros);
      assert.equal(s.nonFinite, c.stats.nonFinite);
      if (c.stats.mean === null) {
        // No finite values: no statistics at all, not zeros.
        assert.equal(s.count, 0);
        for (const key of ['mean', 'std', 'min', 'max', 'absMax', 'l2'] as const) assert.equal(s[key], null, key);
        return;
      }
      for (const key of ['mean', 'min', 'max', 'absMax', 'l2'] as const)
        close(s[key] ?? NaN, c.stats[key] ?? NaN, 1e-9, key);
      close(s.std ?? NaN, c.stats.std ?? NaN, 1e-6, 'std');

      const hist = new HistogramAccumulator(s.min ?? 0, s.max ?? 0, c.bins);
      for (let i = 0; i < values.length; i += chunkSize) hist.add(values.subarray(i, i + chunkSize));
      const h = hist.result();
      assert.equal(h.counts.length, c.bins);
      assert.equal(h.edges.length, c.bins + 1);
      h.edges.forEach((e, i) => {
        close(e, c.histogram.edges[i]!, 1e-12, `edge ${i}`);
      });
      assert.deepEqual(h.counts, c.histogram.counts);
    });
  }
}

test('the variance of a large-mean tensor does not cancel', () => {
  const c = cases.large_mean!;
  const values = decodeValues('F64', new Uint8Array(readFileSync(join(dir, c.file))));
  const acc = new StatsAccumulator();
  acc.add(values);
  // std is 1e-3 around a mean of 1e4: a naive Σx²/n − mean² would lose every digit.
  close(acc.result().std ?? NaN, c.stats.std ?? NaN, 1e-6, 'std');
});

test('a histogram needs at least one bin', () => {
  assert.throws(() => new HistogramAccumulator(0, 1, 0), RangeError);
});

test('weighted values count as repeated ones, in the moments and in the histogram', () => {
  const values = decodeValues('F32', new Uint8Array(readFileSync(join(dir, cases.conv_weights!.file)))).subarray(
    0,
    999,
  );
  for (const chunk of [values, Float64Array.from(values)]) {
    const repeated = new StatsAccumulator();
    const weighted = new StatsAccumulator();
    for (let r = 0; r < 3; r++) repeated.add(chunk);
    weighted.add(chunk, 3);
    const a = repeated.result();
    const b = weighted.result();
    assert.equal(b.count, 3 * 999);
    for (const key of ['mean', 'std', 'min', 'max', 'absMax', 'l2'] as const)
      close(b[key] ?? NaN, a[key] ?? NaN, 1e-9, key);
    assert.equal(b.zeros, a.zeros);
    const h1 = new HistogramAccumulator(a.min ?? 0, a.max ?? 0, 16);
    const h3 = new HistogramAccumulator(a.min ?? 0, a.max ?? 0, 16);
    for (let r = 0; r < 3; r++) h1.add(chunk);
    h3.add(chunk, 3);
    assert.deepEqual(h3.result(), h1.result());
  }
});

test('an empty tensor has no statistics (null moments, an empty histogram), not zeros', async () => {
  const empty = memoryTensor('empty', 'F32', [0, 3], new Float32Array(0), 0);
  const { stats, histogram } = await tensorStatistics(empty, 16);
  assert.deepEqual(stats, {
    count: 0,
    mean: null,
    std: null,
    min: null,
    max: null,
    absMax: null,
    l2: null,
    zeros: 0,
    nonFinite: 0,
  });
  assert.deepEqual(histogram, { edges: [], counts: [] });
  const nan = await tensorStatistics(memoryTensor('nan', 'F32', [2], Float32Array.of(NaN, Infinity), 8), 16);
  assert.equal(nan.stats.count, 0);
  assert.equal(nan.stats.mean, null);
  assert.equal(nan.stats.nonFinite, 2);
});
