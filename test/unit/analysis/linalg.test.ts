// The float64 eigen- and singular-value routines behind the spectra: exact answers on matrices whose spectrum is known
// by construction, NumPy's SVD on real layers (test/fixtures/spectra/reference.json), and the randomized top values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from '../../helpers/fixtures';
import {
  gram,
  singularValues,
  symmetricEigenvalues,
  topSingularValues,
  tridiagonalEigenvalues,
} from '../../../src/core/analysis/linalg';
import { openCheckpoint } from '../../../src/core/formats/registry';
import { readTensorValues } from '../../../src/core/tensors/tensor';

/** Q diag(λ) Qᵀ for a Householder Q = I − 2uuᵀ/uᵀu: a dense symmetric matrix with eigenvalues λ exactly known. */
function withEigenvalues(lambda: number[], seed: number): Float64Array {
  const n = lambda.length;
  const u = Array.from({ length: n }, (_, i) => Math.sin(seed * (i + 1)) + 0.1);
  const uu = u.reduce((s, x) => s + x * x, 0);
  const q = (i: number, j: number): number => (i === j ? 1 : 0) - (2 * u[i]! * u[j]!) / uu;
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += q(i, k) * lambda[k]! * q(j, k);
      a[i * n + j] = s;
    }
  return a;
}

void test('symmetric eigenvalues of matrices with known spectra, repeated and negative ones included', () => {
  for (const lambda of [
    [5],
    [2, -1],
    [3, 1, 4, 1, 5, 9, 2, 6],
    Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? 1 : i * 0.37 - 4)),
    Array.from({ length: 33 }, (_, i) => 10 ** (-i / 4)),
  ]) {
    const got = symmetricEigenvalues(withEigenvalues(lambda, 3), lambda.length);
    const want = [...lambda].sort((a, b) => a - b);
    const top = Math.max(...want.map(Math.abs));
    got.forEach((g, i) => {
      assert.ok(Math.abs(g - want[i]!) <= 1e-12 * top * lambda.length, `λ[${i}] ${g} vs ${want[i]}`);
    });
  }
});

void test('tridiagonal QL: the 1-2-1 matrix has eigenvalues 2 − 2cos(kπ/(n+1))', () => {
  const n = 50;
  const got = tridiagonalEigenvalues(new Float64Array(n).fill(2), new Float64Array(n).fill(-1).fill(0, n - 1));
  for (let k = 1; k <= n; k++) assert.ok(Math.abs(got[k - 1]! - (2 - 2 * Math.cos((k * Math.PI) / (n + 1)))) < 1e-13);
});

void test('the Gram matrix AᵀA, wide and tall, equals the direct sum', () => {
  const rows = 7;
  const cols = 5;
  const a = Float32Array.from({ length: rows * cols }, (_, i) => Math.cos(i * 1.3));
  const g = gram(a, rows, cols);
  for (let p = 0; p < cols; p++)
    for (let q = 0; q < cols; q++) {
      let s = 0;
      for (let k = 0; k < rows; k++) s += a[k * cols + p]! * a[k * cols + q]!;
      assert.ok(Math.abs(g[p * cols + q]! - s) < 1e-12);
    }
  // Singular values do not depend on which side is longer.
  const t = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j]!;
  const s1 = singularValues(a, rows, cols);
  const s2 = singularValues(t, cols, rows);
  assert.equal(s1.length, 5);
  s1.forEach((s, i) => {
    assert.ok(Math.abs(s - s2[i]!) < 1e-12);
  });
});

void test('randomized top singular values of a real 128 × 640 layer agree with NumPy', async () => {
  const file = 'published/esrgan-medium/x2/model.json';
  const ref = (
    JSON.parse(readFileSync(join(FIXTURES, 'spectra', 'reference.json'), 'utf8')) as {
      files: Record<string, { name: string; singularValues: number[] }[]>;
    }
  ).files[file]!.find((l) => l.name === 'GFF_1/kernel')!;
  const checkpoint = await openCheckpoint(join(FIXTURES, file));
  try {
    const entry = checkpoint.tensors.find((t) => t.name === 'GFF_1/kernel')!; // [1, 1, 640, 64]
    const values = await readTensorValues(entry);
    const k = 16;
    const top = await topSingularValues(values, 640, 64, k, 0);
    assert.equal(top.length, k);
    const want = ref.singularValues.slice(-k);
    top.forEach((s, i) => {
      assert.ok(s <= want[i]! * (1 + 1e-9), `σ[${i}] ${s} above the exact ${want[i]}`);
      // A flat spectrum is the hard case: the smallest of the k converge last (here within 3 %, the top half 1 %).
      const tolerance = i >= k / 2 ? 1e-2 : 3e-2;
      assert.ok(Math.abs(s - want[i]!) <= tolerance * want[i]!, `σ[${i}] ${s} vs ${want[i]}`);
    });
    // The largest is the most accurate; the same seed gives the same values.
    assert.ok(Math.abs(top[k - 1]! - want[k - 1]!) <= 1e-3 * want[k - 1]!);
    assert.deepEqual(await topSingularValues(values, 640, 64, k, 0), top);
  } finally {
    await checkpoint.close();
  }
});
