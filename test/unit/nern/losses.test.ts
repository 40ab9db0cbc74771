// Distillation losses (src/core/nern/losses.ts), each against a float64 computation written out in plain JavaScript,
// with no tensors left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { ensureBackend } from '../../../src/core/backend/tfjsBackend';
import {
  distillationKl,
  featureMapLoss,
  reconstructionLoss,
  relativeOutputMse,
  STUDENT_LOG_FLOOR,
} from '../../../src/core/nern/losses';

const softmax = (z: readonly number[], t: number): number[] => {
  const m = Math.max(...z.map((v) => v / t));
  const e = z.map((v) => Math.exp(v / t - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

const value = (f: () => tf.Scalar): number => tf.tidy(() => f().dataSync()[0] ?? NaN);

function close(actual: number, expected: number, rel = 1e-5): void {
  assert.ok(Math.abs(actual - expected) <= rel * Math.max(1, Math.abs(expected)), `${actual} vs ${expected}`);
}

void test('KL(teacher ‖ student) with temperature, T² scaling and the 1e-4 floor', async () => {
  await ensureBackend('cpu');
  const before = tf.memory().numTensors;
  const zt = [
    [2, 0.5, -1],
    [0, 0, 3],
  ];
  const zs = [
    [1, 1, 0],
    [0.2, -0.3, 2],
  ];
  for (const T of [1, 2.5]) {
    let expected = 0;
    zt.forEach((row, i) => {
      const p = softmax(row, T);
      const q = softmax(zs[i] ?? [], T);
      expected += p.reduce(
        (acc, pk, k) => acc + pk * (Math.log(pk + 1e-12) - Math.log((q[k] ?? 0) + STUDENT_LOG_FLOOR)),
        0,
      );
    });
    expected = (expected / zt.length) * T * T;
    close(
      value(() => distillationKl(tf.tensor2d(zt), tf.tensor2d(zs), T)),
      expected,
    );
  }
  // A student equal to its teacher has (almost) zero divergence: only the floor remains.
  assert.ok(Math.abs(value(() => distillationKl(tf.tensor2d(zt), tf.tensor2d(zt), 1))) < 1e-3);
  assert.equal(tf.memory().numTensors, before);
});

void test('relative output MSE, feature-map and reconstruction terms', async () => {
  await ensureBackend('cpu');
  const before = tf.memory().numTensors;
  const t = [1, -2, 3, 0.5];
  const s = [0.5, -1, 2, 0];
  const mse = t.reduce((a, v, i) => a + (v - (s[i] ?? 0)) ** 2, 0) / t.length;
  const ms = t.reduce((a, v) => a + v * v, 0) / t.length;
  close(
    value(() => relativeOutputMse(tf.tensor1d(t), tf.tensor1d(s))),
    mse / (ms + 1e-12),
  );
  close(
    value(() => relativeOutputMse(tf.tensor1d(t), tf.zeros([4]))),
    1,
  );

  // Two samples of a 2×2 map: each flattened, divided by (its norm + 1e-3), squared distance summed, batch mean.
  const ft = [
    [1, 2, 3, 4],
    [0, 1, 0, 1],
  ];
  const fs = [
    [1, 2, 3, 5],
    [1, 0, 0, 0],
  ];
  const unit = (v: number[]): number[] => {
    const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0)) + 1e-3;
    return v.map((x) => x / n);
  };
  const dist = ft.map((row, i) => {
    const a = unit(row);
    const b = unit(fs[i] ?? []);
    return a.reduce((acc, x, k) => acc + (x - (b[k] ?? 0)) ** 2, 0);
  });
  const expectedFeature = (dist[0]! + dist[1]!) / 2;
  close(
    value(() => featureMapLoss([tf.tensor4d(ft.flat(), [2, 2, 2, 1])], [tf.tensor4d(fs.flat(), [2, 2, 2, 1])])),
    expectedFeature,
  );
  // Averaged over pairs: the same pair twice gives the same value; no pairs gives 0.
  close(
    value(() => featureMapLoss([tf.tensor2d(ft), tf.tensor2d(ft)], [tf.tensor2d(fs), tf.tensor2d(fs)])),
    expectedFeature,
  );
  assert.equal(
    value(() => featureMapLoss([], [])),
    0,
  );

  const w = [1, 2, 3];
  const w0 = [1, 1, 1];
  const sq = 1 + 1 + 1 + 4; // ‖w0‖² over both layers
  close(
    value(() => reconstructionLoss([tf.tensor1d(w), tf.tensor1d([2])], [tf.tensor1d(w0), tf.tensor1d([2])], sq)),
    (0 + 1 + 4) / sq,
  );
  assert.equal(tf.memory().numTensors, before);
});
