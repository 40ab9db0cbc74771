// Tiling of any tensor into 3×3 predictor kernels: which tile each shape gets, and exact round trips with padding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromKernels, kernelShape, tileFor, tileMatches, toKernels } from '../../../src/core/nern/tiling';

void test('tileFor: 3×3 and 1×1 convolutions pass through; other tensors of rank ≥ 2 are tiled; vectors are not', () => {
  assert.deepEqual(tileFor([8, 3, 3, 3]), { kind: 'conv', k: 3, layout: 'oihw' });
  assert.deepEqual(tileFor([16, 8, 1, 1]), { kind: 'conv', k: 1, layout: 'oihw' });
  assert.deepEqual(tileFor([32, 2400]), { kind: 'tiled', rows: 32, cols: 2400 });
  assert.deepEqual(tileFor([64, 64, 5, 5]), { kind: 'tiled', rows: 64, cols: 1600 });
  assert.deepEqual(tileFor([4, 6, 7]), { kind: 'tiled', rows: 4, cols: 42 });
  assert.equal(tileFor([10]), undefined);
  assert.equal(tileFor([]), undefined);
  assert.equal(tileFor([0, 3]), undefined);
  assert.deepEqual(kernelShape({ kind: 'tiled', rows: 32, cols: 2400 }, [32, 2400]), [11, 800, 3, 3]);
  assert.deepEqual(kernelShape({ kind: 'conv', k: 1, layout: 'oihw' }, [16, 8, 1, 1]), [16, 8, 1, 1]);
  assert.ok(tileMatches({ kind: 'tiled', rows: 32, cols: 2400 }, [32, 2400]));
  assert.ok(!tileMatches({ kind: 'tiled', rows: 32, cols: 2399 }, [32, 2400]));
  assert.ok(!tileMatches({ kind: 'conv', k: 3, layout: 'oihw' }, [8, 3, 1, 1]));
});

void test('toKernels / fromKernels round-trip exactly and zero-pad the edges', () => {
  for (const [rows, cols] of [
    [1, 1],
    [3, 3],
    [4, 5],
    [7, 2],
    [32, 17],
  ] as const) {
    const values = Float32Array.from({ length: rows * cols }, (_, i) => i + 1);
    const tile = { kind: 'tiled' as const, rows, cols };
    const kernels = toKernels(values, tile, [rows, cols]);
    const [cout, cin] = kernelShape(tile, [rows, cols]);
    assert.equal(kernels.length, cout * cin * 9);
    assert.deepEqual(fromKernels(kernels, tile, [rows, cols]), values);
    // Every value appears once; the rest are padding zeros.
    assert.equal(kernels.filter((x) => x !== 0).length, rows * cols);
  }
  // Block (0, 1) of a 3×6 matrix holds columns 3–5 of rows 0–2.
  const m = Float32Array.from({ length: 18 }, (_, i) => i);
  const k = toKernels(m, { kind: 'tiled', rows: 3, cols: 6 }, [3, 6]);
  assert.deepEqual(Array.from(k.subarray(9, 18)), [3, 4, 5, 9, 10, 11, 15, 16, 17]);
});

void test('tileFor: a 1×1 convolution under pointwise blocks is its C_out × C_in matrix in blocks, in either layout', () => {
  assert.deepEqual(tileFor([16, 8, 1, 1], 'oihw', 'blocks'), { kind: 'tiled', rows: 16, cols: 8 });
  assert.deepEqual(tileFor([1, 1, 8, 16], 'hwio', 'blocks'), { kind: 'tiled', rows: 8, cols: 16 });
  assert.deepEqual(tileFor([16, 8, 1, 1], 'oihw', 'centre'), { kind: 'conv', k: 1, layout: 'oihw' });
  // 3×3 convolutions and every other tensor are the same under either choice.
  assert.deepEqual(tileFor([8, 3, 3, 3], 'oihw', 'blocks'), { kind: 'conv', k: 3, layout: 'oihw' });
  assert.deepEqual(tileFor([64, 64, 5, 5], 'oihw', 'blocks'), { kind: 'tiled', rows: 64, cols: 1600 });
  // 512 × 2048 weights: 512·2048 grid rows in NeRN's layout, 171 · 683 = 116,793 in blocks (about 9× fewer).
  const [cout, cin] = kernelShape({ kind: 'tiled', rows: 512, cols: 2048 }, [512, 2048, 1, 1]);
  assert.equal(cout * cin, 116_793);
  // The artifact reader accepts both forms of a 1×1 convolution, and nothing else.
  assert.ok(tileMatches({ kind: 'tiled', rows: 16, cols: 8 }, [16, 8, 1, 1]));
  assert.ok(tileMatches({ kind: 'conv', k: 1, layout: 'oihw' }, [16, 8, 1, 1]));
  assert.ok(tileMatches({ kind: 'tiled', rows: 8, cols: 16 }, [1, 1, 8, 16], 'hwio'));
  assert.ok(!tileMatches({ kind: 'tiled', rows: 8, cols: 16 }, [16, 8, 1, 1]));
  assert.ok(!tileMatches({ kind: 'tiled', rows: 16, cols: 8 }, [1, 1, 8, 16], 'hwio'));
  // The blocks round-trip a [C_out, C_in, 1, 1] tensor exactly: toKernels reads it as the row-major matrix.
  const values = Float32Array.from({ length: 16 * 8 }, (_, i) => i - 60);
  const tile = { kind: 'tiled' as const, rows: 16, cols: 8 };
  assert.deepEqual(fromKernels(toKernels(values, tile, [16, 8, 1, 1]), tile, [16, 8, 1, 1]), values);
});
