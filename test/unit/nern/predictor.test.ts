// Predictor MLP: parameter count, PyTorch-default init, the customGrad dense layers and RMSE loss against a float64
// backprop written here, batched prediction, fake quantisation (against tensors/quantize.ts) with its
// straight-through gradient, and no tensor leaks.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../../src/core/backend/tfjsBackend';
import {
  fakeQuantize,
  fakeQuantValue,
  initPredictorWeights,
  layerShapes,
  nernPredictorSpec,
  Predictor,
  predictorParameterCount,
  predictorQuantBits,
  quantizedPredictorWeights,
  rmseLoss,
  type PredictorSpec,
  type PredictorWeights,
} from '../../../src/core/nern/predictor';
import { Rng } from '../../../src/core/nern/rng';
import { dequantizeMatrix, quantizeMatrix, type QuantBits } from '../../../src/core/tensors/quantize';

before(async () => {
  await initBackend('wasm');
});

void test('parameter count is 3h² + 253h + 9 (h = 180 → 142,749)', () => {
  assert.equal(predictorParameterCount(nernPredictorSpec(180)), 142_749);
  for (const h of [1, 16, 140, 160, 200, 400])
    assert.equal(predictorParameterCount(nernPredictorSpec(h)), 3 * h * h + 253 * h + 9);
  assert.deepEqual(layerShapes(nernPredictorSpec(8)), [
    [240, 8],
    [8, 8],
    [8, 8],
    [8, 8],
    [8, 9],
  ]);
});

void test('PyTorch-default init: uniform within ±1/√fanIn, seeded and reproducible', () => {
  const spec = nernPredictorSpec(32);
  const a = initPredictorWeights(spec, 7);
  const b = initPredictorWeights(spec, 7);
  const c = initPredictorWeights(spec, 8);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.layers[0]!.weight, c.layers[0]!.weight);
  a.layers.forEach((layer, i) => {
    const bound = 1 / Math.sqrt(layerShapes(spec)[i]![0]);
    let max = 0;
    let sumSq = 0;
    for (const v of [...layer.weight, ...layer.bias]) {
      max = Math.max(max, Math.abs(v));
      sumSq += v * v;
    }
    assert.ok(max <= bound, `layer ${i} within bound`);
    const n = layer.weight.length + layer.bias.length;
    if (n > 1000)
      assert.ok(Math.abs(Math.sqrt(sumSq / n) - bound / Math.sqrt(3)) < 0.05 * bound, `layer ${i} uniform variance`);
  });
});

/** Float64 forward + backward of the MLP with loss sqrt(Σ (m·(ŷ·s − t))² / count). */
function referenceGrads(
  w: PredictorWeights,
  x: Float32Array,
  rows: number,
  t: Float32Array,
  s: Float32Array,
  m: Float32Array,
) {
  const shapes = layerShapes(w.spec);
  const acts: Float64Array[] = [Float64Array.from(x)];
  shapes.forEach(([fi, fo], l) => {
    const input = acts[l]!;
    const out = new Float64Array(rows * fo);
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < fo; o++) {
        let z = w.layers[l]!.bias[o]!;
        for (let i = 0; i < fi; i++) z += input[r * fi + i]! * w.layers[l]!.weight[i * fo + o]!;
        out[r * fo + o] = l < shapes.length - 1 ? Math.max(0, z) : z;
      }
    }
    acts.push(out);
  });
  const outW = w.spec.outputs;
  const y = acts[shapes.length]!;
  let se = 0;
  let count = 0;
  const d = new Float64Array(rows * outW);
  for (let i = 0; i < rows * outW; i++) {
    d[i] = m[i]! * (y[i]! * s[Math.floor(i / outW)]! - t[i]!);
    se += d[i]! * d[i]!;
    count += m[i]!;
  }
  const loss = Math.sqrt(se / count);
  let delta = new Float64Array(rows * outW);
  for (let i = 0; i < rows * outW; i++) delta[i] = (d[i]! * s[Math.floor(i / outW)]!) / (count * loss);
  const grads: { gw: Float64Array; gb: Float64Array }[] = [];
  for (let l = shapes.length - 1; l >= 0; l--) {
    const [fi, fo] = shapes[l]!;
    const input = acts[l]!;
    const gw = new Float64Array(fi * fo);
    const gb = new Float64Array(fo);
    const prev = new Float64Array(rows * fi);
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < fo; o++) {
        const g = delta[r * fo + o]!;
        gb[o] = gb[o]! + g;
        for (let i = 0; i < fi; i++) {
          gw[i * fo + o] = gw[i * fo + o]! + input[r * fi + i]! * g;
          prev[r * fi + i] = prev[r * fi + i]! + w.layers[l]!.weight[i * fo + o]! * g;
        }
      }
    }
    if (l > 0) for (let i = 0; i < prev.length; i++) if (!(input[i]! > 0)) prev[i] = 0;
    grads[l] = { gw, gb };
    delta = prev;
  }
  return { loss, grads };
}

void test('customGrad dense layers + RMSE loss give the exact gradients (vs float64 backprop)', () => {
  const spec: PredictorSpec = { inputs: 6, hidden: 5, outputs: 9, depth: 3 };
  const weights = initPredictorWeights(spec, 3);
  const rows = 7;
  const rng = new Rng(4);
  const x = rng.fillUniform(new Float32Array(rows * 6), 1);
  const t = rng.fillUniform(new Float32Array(rows * 9), 0.3);
  const s = Float32Array.from({ length: rows }, (_, r) => 0.5 + r * 0.25);
  const m = Float32Array.from({ length: rows * 9 }, (_, i) => (Math.floor(i / 9) === 2 && i % 9 !== 4 ? 0 : 1));
  const count = m.reduce((a, v) => a + v, 0);
  const ref = referenceGrads(weights, x, rows, t, s, m);
  const p = Predictor.fromWeights(weights);
  const n = tf.memory().numTensors;
  const { loss, grads } = tf.tidy(() => {
    const r = tf.variableGrads(
      () =>
        rmseLoss(
          p.apply(tf.tensor2d(x, [rows, 6])),
          tf.tensor2d(t, [rows, 9]),
          tf.tensor2d(s, [rows, 1]),
          tf.tensor2d(m, [rows, 9]),
          count,
        ),
      p.variables,
    );
    return { loss: r.value.dataSync()[0]!, grads: p.variables.map((v) => Array.from(r.grads[v.name]!.dataSync())) };
  });
  assert.equal(tf.memory().numTensors, n, 'no leak');
  assert.ok(Math.abs(loss - ref.loss) < 1e-5 * ref.loss, `loss ${loss} vs ${ref.loss}`);
  ref.grads.forEach(({ gw, gb }, l) => {
    const scale = Math.max(...gw.map(Math.abs), ...gb.map(Math.abs));
    gw.forEach((g, i) => {
      assert.ok(Math.abs(grads[2 * l]![i]! - g) <= 1e-4 * scale + 1e-7, `layer ${l} dW[${i}]`);
    });
    gb.forEach((g, i) => {
      assert.ok(Math.abs(grads[2 * l + 1]![i]! - g) <= 1e-4 * scale + 1e-7, `layer ${l} db[${i}]`);
    });
  });
  p.dispose();
});

void test('predict: batched equals whole, from arrays or tensors; weights round-trip; nothing leaks', () => {
  const spec = nernPredictorSpec(12);
  const p = Predictor.create(spec, 11);
  const rng = new Rng(1);
  const rows = 37;
  const x = rng.fillUniform(new Float32Array(rows * 240), 1);
  const n = tf.memory().numTensors;
  const whole = p.predict(x, 1000);
  const batched = p.predict(x, 8);
  const xt = tf.tensor2d(x, [rows, 240]);
  const fromTensor = p.predict(xt, 5);
  const viaApply = tf.tidy(() => p.apply(xt).dataSync());
  xt.dispose();
  assert.equal(tf.memory().numTensors, n, 'no leak');
  assert.equal(whole.length, rows * 9);
  for (let i = 0; i < whole.length; i++) {
    assert.ok(Math.abs(whole[i]! - batched[i]!) < 1e-6);
    assert.ok(Math.abs(whole[i]! - fromTensor[i]!) < 1e-6);
    assert.ok(Math.abs(whole[i]! - viaApply[i]!) < 1e-5);
  }
  const copy = Predictor.fromWeights(p.weights());
  assert.deepEqual(copy.predict(x), whole);
  assert.deepEqual(p.weights(), initPredictorWeights(spec, 11));
  copy.dispose();
  p.dispose();
  assert.equal(tf.memory().numTensors, n - 10, 'dispose frees the 10 variables');
  assert.throws(() => Predictor.fromWeights({ spec, layers: [] }), RangeError);
  assert.throws(() => Predictor.create(nernPredictorSpec(0), 1), RangeError);
});

/** Index of the first element where `a` and `b` differ as numbers (−0 equals 0), or −1 when they are equal. */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** A [rows, cols] test matrix with a zero column, exact half-way ties for int8 and int4, and one huge outlier. */
function awkwardMatrix(rows: number, cols: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const w = rng.fillUniform(new Float32Array(rows * cols), 0.3);
  for (let r = 0; r < rows; r++) w[r * cols + 1] = 0; // column 1 is all zeros
  // Column 2: max 1.27 → int8 scale 0.01; values at code ± 0.5 steps. Column 3: max 0.7 → int4 scale 0.1.
  for (let r = 0; r < rows; r++) {
    w[r * cols + 2] = Math.fround(((r % 7) - 3 + 0.5) * 0.01);
    w[r * cols + 3] = Math.fround(((r % 5) - 2 + 0.5) * 0.1);
  }
  w[2] = 1.27;
  w[3] = -0.7;
  w[(rows - 1) * cols] = 40; // column 0: one outlier
  return w;
}

void test('fake quantisation equals dequantizeMatrix(quantizeMatrix(W)) exactly, per output column, int8 and int4', () => {
  const rows = 37;
  const cols = 11;
  for (const bits of [8, 4] as QuantBits[]) {
    for (const seed of [1, 2, 3]) {
      const w = awkwardMatrix(rows, cols, seed);
      const expected = dequantizeMatrix(quantizeMatrix(w, rows, cols, bits, 'column'));
      const n = tf.memory().numTensors;
      const got = tf.tidy(() => fakeQuantValue(tf.tensor2d(w, [rows, cols]), bits).dataSync());
      const viaOp = tf.tidy(() => fakeQuantize(tf.tensor2d(w, [rows, cols]), bits).dataSync());
      assert.equal(tf.memory().numTensors, n, 'no leak');
      assert.equal(firstDifference(got, expected), -1, `int${bits}, seed ${seed}`);
      assert.equal(firstDifference(viaOp, expected), -1, `int${bits}, seed ${seed} (customGrad op)`);
      for (let r = 0; r < rows; r++) assert.equal(got[r * cols + 1], 0, 'the zero column stays zero');
    }
  }
  assert.equal(predictorQuantBits('int8'), 8);
  assert.equal(predictorQuantBits('int4'), 4);
  assert.equal(predictorQuantBits('f16'), undefined);
  assert.equal(predictorQuantBits('f32'), undefined);
});

void test('straight-through: the gradient reaches the float weight unchanged', () => {
  const rows = 9;
  const cols = 5;
  const w = awkwardMatrix(rows, cols, 4);
  const c = new Rng(5).fillUniform(new Float32Array(rows * cols), 1);
  const n = tf.memory().numTensors;
  const g = tf.tidy(() => {
    const grad = tf.grad((x: tf.Tensor) => fakeQuantize(x as tf.Tensor2D, 4));
    return grad(tf.tensor2d(w, [rows, cols]), tf.tensor2d(c, [rows, cols])).dataSync();
  });
  assert.equal(tf.memory().numTensors, n, 'no leak');
  assert.deepEqual(Float32Array.from(g), c);
});

void test('a quantisation-aware step: its loss and gradients are the float ones at the quantised weights (finite differences)', () => {
  const spec: PredictorSpec = { inputs: 6, hidden: 5, outputs: 9, depth: 3 };
  const weights = initPredictorWeights(spec, 3);
  const rows = 7;
  const rng = new Rng(4);
  const x = rng.fillUniform(new Float32Array(rows * 6), 1);
  const t = rng.fillUniform(new Float32Array(rows * 9), 0.3);
  const s = Float32Array.from({ length: rows }, (_, r) => 0.5 + r * 0.25);
  const m = new Float32Array(rows * 9).fill(1);
  const count = rows * 9;
  const bits = 4;
  const quantized = quantizedPredictorWeights(weights, bits);
  assert.notDeepEqual(quantized.layers[0]!.weight, weights.layers[0]!.weight, 'int4 moves the weights');
  assert.deepEqual(quantized.layers[0]!.bias, weights.layers[0]!.bias, 'biases are not quantised');
  // Float path at Ŵ = dequant(quant(W)): float64 backprop, checked against central differences of its own loss.
  const ref = referenceGrads(quantized, x, rows, t, s, m);
  const h = 1e-4;
  for (const [l, i] of [
    [0, 3],
    [1, 7],
    [2, 20],
  ] as const) {
    const bump = (delta: number): number => {
      const copy: PredictorWeights = {
        spec,
        layers: quantized.layers.map((layer) => ({
          weight: Float32Array.from(layer.weight),
          bias: Float32Array.from(layer.bias),
        })),
      };
      // Float64 differences need float64 weights: perturb through the reference with an exact representable step.
      copy.layers[l]!.weight[i] = copy.layers[l]!.weight[i]! + delta;
      return referenceGrads(copy, x, rows, t, s, m).loss;
    };
    const dw = Math.fround(quantized.layers[l]!.weight[i]! + h) - quantized.layers[l]!.weight[i]!;
    const fd = (bump(dw) - bump(-dw)) / (2 * dw);
    const g = ref.grads[l]!.gw[i]!;
    assert.ok(
      Math.abs(fd - g) <= 2e-3 * Math.abs(g) + 1e-6,
      `layer ${l} dW[${i}]: finite difference ${fd}, backprop ${g}`,
    );
  }
  // tfjs, quantisation-aware on the float W: the same loss and gradients (the STE passes them to W).
  const p = Predictor.fromWeights(weights);
  const n = tf.memory().numTensors;
  const { loss, grads } = tf.tidy(() => {
    const r = tf.variableGrads(
      () =>
        rmseLoss(
          p.apply(tf.tensor2d(x, [rows, 6]), bits),
          tf.tensor2d(t, [rows, 9]),
          tf.tensor2d(s, [rows, 1]),
          null,
          count,
        ),
      p.variables,
    );
    return { loss: r.value.dataSync()[0]!, grads: p.variables.map((v) => Array.from(r.grads[v.name]!.dataSync())) };
  });
  const forward = tf.tidy(() => p.forward(tf.tensor2d(x, [rows, 6]), bits).dataSync());
  const predicted = p.predict(x, 3, bits);
  assert.equal(tf.memory().numTensors, n, 'no leak');
  assert.ok(Math.abs(loss - ref.loss) < 1e-5 * ref.loss, `loss ${loss} vs ${ref.loss}`);
  ref.grads.forEach(({ gw, gb }, l) => {
    const scale = Math.max(...gw.map(Math.abs), ...gb.map(Math.abs));
    gw.forEach((g, i) => {
      assert.ok(Math.abs(grads[2 * l]![i]! - g) <= 1e-4 * scale + 1e-7, `layer ${l} dW[${i}]`);
    });
    gb.forEach((g, i) => {
      assert.ok(Math.abs(grads[2 * l + 1]![i]! - g) <= 1e-4 * scale + 1e-7, `layer ${l} db[${i}]`);
    });
  });
  // Inference on the fake-quantised weights is inference of the quantised predictor.
  const q = Predictor.fromWeights(quantized);
  const expected = q.predict(x);
  q.dispose();
  assert.equal(firstDifference(forward, expected), -1);
  assert.equal(firstDifference(predicted, expected), -1);
  p.dispose();
});
