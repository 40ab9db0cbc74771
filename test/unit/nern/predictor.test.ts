// Predictor MLP: parameter count, PyTorch-default init, the customGrad dense layers and RMSE loss against a float64
// backprop written here, batched prediction, and no tensor leaks.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../../src/core/backend/tfjsBackend';
import {
  initPredictorWeights,
  layerShapes,
  nernPredictorSpec,
  Predictor,
  predictorParameterCount,
  rmseLoss,
  type PredictorSpec,
  type PredictorWeights,
} from '../../../src/core/nern/predictor';
import { Rng } from '../../../src/core/nern/rng';

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
