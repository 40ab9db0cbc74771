// Greedy cosine-chain permutations, checked against orders worked out by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  computePermutation,
  crossfilterPermutation,
  infilterPermutation,
  invertPermutation,
  isPermutation,
} from '../../../src/core/nern/permutation';
import { Rng } from '../../../src/core/nern/rng';
import { join } from 'node:path';
import { FIXTURES } from '../../helpers/fixtures';
import { openCheckpoint } from '../../../src/core/formats/registry';
import { readTensorValues } from '../../../src/core/tensors/tensor';

/**
 * A layer of 3×3 kernels whose only non-zero entries are the first two, (r·cos θ, r·sin θ): the cosine of two kernels
 * is then cos(θa − θb), so "most similar" means "closest angle". Norms r vary to show that only directions matter.
 */
function layerFromAngles(degrees: number[]): Float32Array {
  const values = new Float32Array(degrees.length * 9);
  degrees.forEach((d, i) => {
    const r = 0.5 + (i % 3);
    values[i * 9] = r * Math.cos((d * Math.PI) / 180);
    values[i * 9 + 1] = r * Math.sin((d * Math.PI) / 180);
  });
  return values;
}

// 3 filters × 3 input channels, kernel index = f·3 + c:
//   f0: 0°, 120°, 20°    f1: 90°, 100°, 200°    f2: 10°, 170°, 30°
const ANGLES = [0, 120, 20, 90, 100, 200, 10, 170, 30];

void test('crossfilter: one chain over all kernels, by hand', () => {
  // Start at k0 (0°). Unvisited angle differences decide each step (cosine falls with |Δθ| up to 180°):
  //   0° → k6 (10°, Δ10) → k2 (20°, Δ10) → k8 (30°, Δ10) → k3 (90°, Δ60; next best 100° Δ70)
  //   → k4 (100°, Δ10) → k1 (120°, Δ20) → k7 (170°, Δ50; 200° is Δ80) → k5 (200°, last).
  const perm = crossfilterPermutation(layerFromAngles(ANGLES), 3, 3);
  assert.deepEqual(Array.from(perm), [0, 6, 2, 8, 3, 4, 1, 7, 5]);
  assert.ok(isPermutation(perm, 9));
});

void test('infilter: chains inside filters, then a chain over filters by summed per-position cosine, by hand', () => {
  // Inside each filter, from channel 0:
  //   f0: 0° → 20° (c2, cos 20° = 0.94 beats cos 120° = −0.5) → 120° (c1)   → channels [0, 2, 1]: 0°, 20°, 120°
  //   f1: 90° → 100° (c1, cos 10°) → 200° (c2)                              → channels [0, 1, 2]: 90°, 100°, 200°
  //   f2: 10° → 30° (c2, cos 20° = 0.94 beats cos 160° = −0.94) → 170° (c1) → channels [0, 2, 1]: 10°, 30°, 170°
  // Filter similarity = Σ over positions of cos(Δθ) of the permuted filters:
  //   S(f0, f1) = cos 90° + cos 80° + cos 80° = 0.347;  S(f0, f2) = cos 10° + cos 10° + cos 50° = 2.613
  // From f0 the chain goes to f2, then f1. Grid = f0's kernels [0, 2, 1], f2's [6, 8, 7], f1's [3, 4, 5].
  const perm = infilterPermutation(layerFromAngles(ANGLES), 3, 3);
  assert.deepEqual(Array.from(perm), [0, 2, 1, 6, 8, 7, 3, 4, 5]);
});

void test('zero-norm kernels: no NaN, zeros are visited together', () => {
  // k0 = 0°, k1 = 0, k2 = 30°, k3 = 0. From k0: cos(k2) = 0.87 > 0 = cos(zero) → k2; from k2 both zeros score 0 →
  // lowest index k1; from the zero k1 the other zero scores 1 → k3.
  const values = layerFromAngles([0, 0, 30, 0]);
  values.fill(0, 9, 18);
  values.fill(0, 27, 36);
  assert.deepEqual(Array.from(crossfilterPermutation(values, 2, 2)), [0, 2, 1, 3]);
  assert.deepEqual(Array.from(crossfilterPermutation(new Float32Array(36), 2, 2)), [0, 1, 2, 3]);
  assert.ok(isPermutation(infilterPermutation(values, 2, 2), 4));
});

void test('random layers give permutations; none is the identity; 1×1 kernels work', () => {
  const rng = new Rng(5);
  const values = rng.fillUniform(new Float32Array(64 * 32 * 9), 1);
  for (const kind of ['crossfilter', 'infilter', 'none'] as const) {
    const perm = computePermutation(kind, values, 64, 32);
    assert.ok(isPermutation(perm, 64 * 32), kind);
    const inv = invertPermutation(perm);
    for (let t = 0; t < perm.length; t++) assert.equal(inv[perm[t]!], t);
  }
  assert.deepEqual(Array.from(computePermutation('none', values.subarray(0, 18), 1, 2)), [0, 1]);
  // 1×1: cosine of scalars is their sign agreement; chain from k0 (+) visits the other positive first.
  assert.deepEqual(Array.from(crossfilterPermutation(Float32Array.from([1, -2, 3, -4]), 2, 2, 1)), [0, 2, 1, 3]);
  assert.throws(() => crossfilterPermutation(new Float32Array(10), 2, 2), RangeError);
  assert.equal(isPermutation([0, 0, 1], 3), false);
});

void test('crossfilter on the largest ResNet-20 layer (4,096 kernels) is fast', () => {
  const rng = new Rng(9);
  const values = rng.fillUniform(new Float32Array(64 * 64 * 9), 0.1);
  const start = performance.now();
  const perm = crossfilterPermutation(values, 64, 64);
  const ms = performance.now() - start;
  assert.ok(isPermutation(perm, 4096));
  // Reported, not asserted tightly (shared CI machines); the bound only catches an accidental O(N³).
  console.log(`crossfilter 4096 kernels: ${ms.toFixed(0)} ms`);
  assert.ok(ms < 10_000);
});

void test('1×1 layers: the closed-form chains equal the general greedy cosine chains', () => {
  // A scalar kernel x has the direction of the 2-vector (x, 0), so the general path at kernelSize 2 on (x, 0) pairs
  // is the reference for the closed forms that kernelSize 1 takes (same cosines of ±1 and 0, same ties).
  const rng = new Rng(11);
  for (const [cout, cin] of [
    [1, 1],
    [1, 9],
    [7, 1],
    [12, 33],
    [40, 70],
    [5, 64],
  ] as const) {
    for (const zeros of [0, 0.3, 1]) {
      const scalar = Float32Array.from({ length: cout * cin }, () => {
        const u = rng.uniform(0, 1);
        if (u < zeros) return u < zeros / 8 ? Number.NaN : 0;
        return rng.uniform(-0.5, 0.5);
      });
      const padded = new Float32Array(cout * cin * 2);
      scalar.forEach((x, i) => (padded[2 * i] = x));
      for (const kind of ['crossfilter', 'infilter'] as const) {
        const fast = computePermutation(kind, scalar, cout, cin, 1);
        assert.ok(isPermutation(fast, cout * cin));
        assert.deepEqual(
          Array.from(fast),
          Array.from(computePermutation(kind, padded, cout, cin, 2)),
          `${kind} ${cout}×${cin}, zeros ${zeros}`,
        );
      }
    }
  }
});

void test('1×1 layers of a published model (ESRGAN, TF.js): the closed forms equal the general chains', async () => {
  const checkpoint = await openCheckpoint(join(FIXTURES, 'published', 'esrgan-medium', 'x2', 'model.json'));
  try {
    for (const name of ['GFF_1/kernel', 'LFF_1/kernel']) {
      const entry = checkpoint.tensors.find((t) => t.name === name)!; // [1, 1, C_in, C_out] (hwio)
      const values = await readTensorValues(entry);
      const [, , cin = 0, cout = 0] = entry.shape;
      // Filter-major scalars, as the kernel map passes a 1×1 layer: [C_out, C_in].
      const scalar = new Float32Array(cout * cin);
      for (let c = 0; c < cin; c++) for (let f = 0; f < cout; f++) scalar[f * cin + c] = values[c * cout + f]!;
      const padded = new Float32Array(scalar.length * 2);
      scalar.forEach((x, i) => (padded[2 * i] = x));
      assert.deepEqual(
        Array.from(computePermutation('infilter', scalar, cout, cin, 1)),
        Array.from(computePermutation('infilter', padded, cout, cin, 2)),
        `${name} infilter`,
      );
      // crossfilter is O(N²) on the general path: the first filters, up to 4,096 kernels, suffice.
      const filters = Math.max(1, Math.floor(4096 / cin));
      const part = filters * cin;
      assert.deepEqual(
        Array.from(computePermutation('crossfilter', scalar.subarray(0, part), filters, cin, 1)),
        Array.from(computePermutation('crossfilter', padded.subarray(0, 2 * part), filters, cin, 2)),
        `${name} crossfilter`,
      );
    }
  } finally {
    await checkpoint.close();
  }
});
