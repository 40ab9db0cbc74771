/**
 * The graph executor against onnxruntime on real published models: the openWakeWord "hello deepa" classifier (Gemm,
 * LayerNorm written out as ReduceMean/Pow/Sqrt…) and BlazeFace (depthwise and grouped convolutions, MaxPool, Concat).
 * Also: weights are inputs (perturbing them changes the output), gradients reach a weight, and nothing leaks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { loadOnnxModel } from '../../../src/core/graph/onnxImport';
import { executeGraph, weightTensors } from '../../../src/core/graph/execute';
import { relativeMaxError, seededRandom } from './helpers';
import { loadOrt, ortSkip, runOrt } from '../../helpers/ort';

const WAKEWORD = 'test/fixtures/published/openwakeword/hello_deepa.onnx';
const BLAZEFACE = 'test/fixtures/published/blazeface/face_detection_front_128x128_barracuda.onnx';
const TOLERANCE = 1e-4;

async function cpu(): Promise<void> {
  await tf.setBackend('cpu');
  await tf.ready();
}

const ort = loadOrt();
const skip = ortSkip(typeof ort === 'string' ? ort : undefined);

for (const [label, file, seed] of [
  ['openWakeWord hello_deepa', WAKEWORD, 7],
  ['BlazeFace front 128×128', BLAZEFACE, 11],
] as const) {
  test(`${label}: runGraph matches onnxruntime within ${TOLERANCE} relative`, { skip }, async () => {
    await cpu();
    if (typeof ort === 'string') assert.fail(ort);
    const { graph, weights } = await loadOnnxModel(file);
    const [inputInfo] = graph.inputs;
    assert.ok(inputInfo);
    const dims = inputInfo.shape.map((d) => d ?? 1);
    const data = seededRandom(
      seed,
      dims.reduce((a, b) => a * b, 1),
      label.startsWith('Blaze') ? -1 : 0,
      1,
    );
    const ref = await runOrt(ort, file, { [inputInfo.name]: { data, dims } });
    const before = tf.memory().numTensors;
    const w = weightTensors(graph, weights);
    const x = tf.tensor(data, dims);
    const out = executeGraph(graph, w, { [inputInfo.name]: x });
    for (const name of graph.outputs) {
      const r = ref[name];
      const o = out[name];
      assert.ok(r && o, name);
      assert.deepEqual(o.shape, r.dims, `shape of ${name}`);
      const err = relativeMaxError(o.dataSync(), r.data);
      assert.ok(err <= TOLERANCE, `${name}: relative max error ${err}`);
    }
    tf.dispose([...Object.values(out), ...Object.values(w), x]);
    assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  });
}

test('openWakeWord: weights are inputs, so perturbing one changes the output, and gradients reach it', async () => {
  await cpu();
  const { graph, weights } = await loadOnnxModel(WAKEWORD);
  const [inputInfo] = graph.inputs;
  assert.ok(inputInfo);
  const dims = inputInfo.shape.map((d) => d ?? 1);
  const before = tf.memory().numTensors;
  const w = weightTensors(graph, weights);
  const x = tf.tensor(
    seededRandom(
      3,
      dims.reduce((a, b) => a * b, 1),
      0,
      1,
    ),
    dims,
  );
  const [outName] = graph.outputs;
  assert.ok(outName);
  const base = executeGraph(graph, w, { [inputInfo.name]: x })[outName];
  assert.ok(base);
  const target = 'layer1.weight';
  const original = w[target];
  assert.ok(original);
  const perturbed = tf.tidy(() => tf.add(original, tf.mul(tf.randomNormal(original.shape, 0, 1, 'float32', 5), 0.05)));
  const changed = executeGraph(graph, { ...w, [target]: perturbed }, { [inputInfo.name]: x })[outName];
  assert.ok(changed);
  const diff = Math.abs((changed.dataSync()[0] ?? 0) - (base.dataSync()[0] ?? 0));
  assert.ok(diff > 1e-6, `output changed by ${diff}`);

  const grad = tf.grad((wt: tf.Tensor) => {
    const out = executeGraph(graph, { ...w, [target]: wt }, { [inputInfo.name]: x })[outName];
    assert.ok(out);
    return tf.sum(out);
  })(original);
  assert.deepEqual(grad.shape, original.shape);
  const g = grad.dataSync();
  assert.ok(
    g.every((v) => Number.isFinite(v)),
    'finite gradient',
  );
  assert.ok(
    g.some((v) => v !== 0),
    'non-zero gradient',
  );
  tf.dispose([base, changed, perturbed, grad, x, ...Object.values(w)]);
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
});

test('BlazeFace: a gradient flows through depthwise convolutions to the first conv weight', async () => {
  await cpu();
  const { graph, weights } = await loadOnnxModel(BLAZEFACE);
  const [inputInfo] = graph.inputs;
  assert.ok(inputInfo);
  const dims = inputInfo.shape.map((d) => d ?? 1);
  const before = tf.memory().numTensors;
  const w = weightTensors(graph, weights);
  const x = tf.tensor(
    seededRandom(
      9,
      dims.reduce((a, b) => a * b, 1),
      -1,
      1,
    ),
    dims,
  );
  const firstConv = graph.nodes.find((n) => n.op === 'Conv');
  const target = firstConv?.inputs[1];
  assert.ok(target !== undefined);
  const original = w[target];
  assert.ok(original);
  const grad = tf.grad((wt: tf.Tensor) => {
    const out = executeGraph(graph, { ...w, [target]: wt }, { [inputInfo.name]: x });
    return tf.addN(Object.values(out).map((t) => tf.sum(t)));
  })(original);
  const g = grad.dataSync();
  assert.ok(g.every((v) => Number.isFinite(v)) && g.some((v) => v !== 0));
  tf.dispose([grad, x, ...Object.values(w)]);
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
});
