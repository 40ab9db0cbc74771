// The native route of the spectra (src/core/analysis/nativeLinalg.ts): the panel QR and its compact-WY factor, the
// Givens band reduction, and the whole route against linalg.ts's JavaScript singular values on every shape class
// (tall, wide, sides around multiples of the band, a 1 × n row). NumPy agreement on real layers is in spectra.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BAND, bandToTridiagonal, NativeSingularValues, panelQr } from '../../../src/core/analysis/nativeLinalg';
import { singularValues, symmetricEigenvalues, tridiagonalEigenvalues } from '../../../src/core/analysis/linalg';
import { loadOnnxRuntime } from '../../../src/core/backend/onnxRuntime';

/** Deterministic values in [−0.5, 0.5). */
function values(count: number, seed: number): Float64Array {
  let s = seed >>> 0;
  return Float64Array.from({ length: count }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  });
}

void test('panel QR: Q·R rebuilds the panel, R is upper triangular and Q = I − V T Vᵀ is orthogonal', () => {
  for (const [m, bw] of [
    [9, 4],
    [4, 4],
    [2, 3],
    [30, 16],
  ] as const) {
    const p = values(m * bw, m * 31 + bw);
    const r = Float64Array.from(p);
    const { v, t, k } = panelQr(r, m, bw);
    assert.equal(k, Math.min(bw, m - 1));
    // Q = I − V T Vᵀ, explicitly.
    const q = new Float64Array(m * m);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < m; j++) {
        let s = i === j ? 1 : 0;
        for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) s -= v[i * k + a]! * t[a * k + b]! * v[j * k + b]!;
        q[i * m + j] = s;
      }
    for (let i = 0; i < m; i++)
      for (let c = 0; c < bw; c++) {
        if (i > c) assert.equal(r[i * bw + c], 0, `R[${i}][${c}] below the diagonal`);
        let s = 0;
        for (let j = 0; j < m; j++) s += q[i * m + j]! * r[j * bw + c]!;
        assert.ok(Math.abs(s - p[i * bw + c]!) < 1e-13, `(QR)[${i}][${c}] ${s} vs ${p[i * bw + c]}`);
      }
    for (let i = 0; i < m; i++)
      for (let j = 0; j < m; j++) {
        let s = 0;
        for (let a = 0; a < m; a++) s += q[a * m + i]! * q[a * m + j]!;
        assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-13, `(QᵀQ)[${i}][${j}]`);
      }
  }
});

void test('band → tridiagonal keeps the eigenvalues of a symmetric band matrix', () => {
  for (const [n, b] of [
    [40, 5],
    [17, 16],
    [64, 16],
    [6, 2],
  ] as const) {
    const w = b + 2;
    const dense = new Float64Array(n * n);
    const band = new Float64Array(n * w);
    const x = values(n * (b + 1), n + b);
    for (let c = 0; c < n; c++)
      for (let d = 0; d <= b && c + d < n; d++) {
        const a = x[c * (b + 1) + d]!;
        band[c * w + d] = a;
        dense[(c + d) * n + c] = a;
        dense[c * n + c + d] = a;
      }
    const want = symmetricEigenvalues(dense, n);
    const { d, e } = bandToTridiagonal(band, n, b);
    const got = tridiagonalEigenvalues(d, e);
    const top = Math.max(...Array.from(want, Math.abs));
    got.forEach((g, i) => {
      assert.ok(Math.abs(g - want[i]!) <= 1e-12 * top, `n ${n} b ${b} λ[${i}] ${g} vs ${want[i]}`);
    });
  }
});

void test('the native route gives linalg.ts singular values on tall, wide and band-edge shapes', async () => {
  const loaded = loadOnnxRuntime();
  if (!loaded.ok) throw new Error(`onnxruntime-node is a dev dependency and must load: ${loaded.reason}`);
  const native = await NativeSingularValues.create(loaded.ort, 2, 0);
  try {
    for (const [rows, cols] of [
      [1, 7],
      [2, 2],
      [3, 5],
      [BAND + 1, BAND + 1],
      [BAND + 2, BAND + 2],
      [70, 2 * BAND + 1],
      [2 * BAND + 3, 90],
      [260, 200],
    ] as const) {
      const a = Float32Array.from(values(rows * cols, rows * 1000 + cols), (v, i) => v * (1 + (i % cols) / 3));
      const want = singularValues(a, rows, cols);
      const got = await native.singularValues(a, rows, cols);
      assert.equal(got.length, Math.min(rows, cols));
      const top = want[want.length - 1]!;
      got.forEach((g, i) => {
        assert.ok(Math.abs(g - want[i]!) <= 1e-10 * top, `${rows}×${cols} σ[${i}] ${g} vs ${want[i]}`);
      });
    }
    // A tick that throws stops the computation with its error, and the sessions stay usable.
    const a = Float32Array.from(values(300 * 300, 7));
    await assert.rejects(
      native.singularValues(a, 300, 300, (f) => {
        if (f > 0.3) throw new Error('stopped');
      }),
      /stopped/,
    );
    assert.equal((await native.singularValues(a, 300, 300)).length, 300);
  } finally {
    await native.release();
  }
});
