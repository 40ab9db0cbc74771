// Statistics and histograms checked against NumPy (test/fixtures/make/stats.py), including chunked accumulation,
// non-finite values, a large mean (variance cancellation) and values exactly on bin edges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeValues } from '../../../src/core/tensors/dtype';
import { HistogramAccumulator, StatsAccumulator } from '../../../src/core/tensors/stats';

interface Case {
  file: string;
  dtype: 'F32' | 'F64';
  count: number;
  bins: number;
  stats: Record<string, number>;
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
      for (const key of ['mean', 'min', 'max', 'absMax', 'l2']) close(s[key as keyof typeof s], c.stats[key]!, 1e-9, key);
      close(s.std, c.stats.std!, 1e-6, 'std');
      assert.equal(s.zeros, c.stats.zeros);
      assert.equal(s.nonFinite, c.stats.nonFinite);

      const hist = new HistogramAccumulator(s.min, s.max, c.bins);
      for (let i = 0; i < values.length; i += chunkSize) hist.add(values.subarray(i, i + chunkSize));
      const h = hist.result();
      assert.equal(h.counts.length, c.bins);
      assert.equal(h.edges.length, c.bins + 1);
      h.edges.forEach((e, i) => { close(e, c.histogram.edges[i]!, 1e-12, `edge ${i}`); });
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
  close(acc.result().std, c.stats.std!, 1e-6, 'std');
});

test('a histogram needs at least one bin', () => {
  assert.throws(() => new HistogramAccumulator(0, 1, 0), RangeError);
});
