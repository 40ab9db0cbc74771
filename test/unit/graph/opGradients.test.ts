/**
 * Gradients through the differentiable operators a distillation may meet (ConvTranspose, PRelu,
 * InstanceNormalization, Expand, Tile, Where): `tf.grad` through `runGraph` on the wasm backend (the one distillation
 * trains on) must match a central finite difference of the same loss along a seeded direction, for the weights and
 * the data alike.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '../../../src/core/graph/gradients';
import { initBackend } from '../../../src/core/backend/tfjsBackend';
import { MemoryByteSource } from '../../../src/core/io/byteSource';
import { importOnnx } from '../../../src/core/graph/onnxImport';
import { executeGraph, weightTensors } from '../../../src/core/graph/execute';
import { seededRandom } from './helpers';
import { buildOnnx, type TestInitializer, type TestModel } from '../../helpers/protobuf';

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function weight(name: string, shape: number[], seed: number): TestInitializer {
  return { name, shape, values: seededRandom(seed, size(shape)) };
}

/**
 * For each name in `targets` (an initializer or a graph input), checks that the analytic directional derivative of
 * Σ y² over the outputs matches the central difference with step 1e-2, within 1e-2 relative.
 */
async function checkGradients(model: TestModel, targets: string[]): Promise<void> {
  await initBackend('wasm');
  const bytes = buildOnnx(model);
  const { graph, weights } = await importOnnx(new MemoryByteSource(bytes, 'grad.onnx'), {
    path: 'grad.onnx',
    siblings: { open: () => Promise.reject(new Error('no siblings')) },
  });
  const before = tf.memory().numTensors;
  const w = weightTensors(graph, weights);
  const xs = Object.fromEntries(
    model.inputs.map((x, i) => [x.name, tf.tensor(seededRandom(300 + i, size(x.shape)), x.shape)]),
  );
  const loss = (name: string, t: tf.Tensor): tf.Scalar =>
    tf.tidy(() => {
      const out = graph.initializers.has(name)
        ? executeGraph(graph, { ...w, [name]: t }, xs)
        : executeGraph(graph, w, { ...xs, [name]: t });
      return tf.addN(Object.values(out).map((y) => tf.sum(tf.square(y)))) as tf.Scalar;
    });
  const shifted = (name: string, at: tf.Tensor, v: tf.Tensor, step: number): number => {
    const t = tf.tidy(() => tf.add(at, tf.mul(v, step)));
    const l = loss(name, t);
    const value = l.dataSync()[0] ?? NaN;
    tf.dispose([t, l]);
    return value;
  };
  for (const [k, name] of targets.entries()) {
    const at = w[name] ?? xs[name];
    assert.ok(at, `${name} is a weight or an input`);
    const g = tf.grad((t: tf.Tensor) => loss(name, t))(at);
    assert.deepEqual(g.shape, at.shape);
    const gv = g.dataSync();
    assert.ok(gv.every((v) => Number.isFinite(v)) && gv.some((v) => v !== 0), `${name}: finite, non-zero gradient`);
    const v = tf.tensor(seededRandom(400 + k, at.size), at.shape);
    const eps = 1e-2;
    const central = (shifted(name, at, v, eps) - shifted(name, at, v, -eps)) / (2 * eps);
    const analytic = tf.tidy(() => tf.sum(tf.mul(g, v)).dataSync()[0] ?? NaN);
    assert.ok(
      Math.abs(central - analytic) <= 1e-2 * Math.max(1, Math.abs(central)),
      `${name}: gradient ${analytic}, central difference ${central}`,
    );
    tf.dispose([g, v]);
  }
  tf.dispose([...Object.values(w), ...Object.values(xs)]);
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
}

test('ConvTranspose (stride 2, pads, output_padding, groups, dilation): gradients of weight, bias and input match a central difference', () =>
  checkGradients(
    {
      opset: 11,
      inputs: [{ name: 'x', shape: [1, 4, 4, 5] }],
      outputs: ['y', 'z'],
      initializers: [weight('w', [4, 3, 4, 4], 31), weight('b', [6], 32), weight('wd', [4, 2, 3, 3], 33)],
      nodes: [
        {
          op: 'ConvTranspose',
          inputs: ['x', 'w', 'b'],
          outputs: ['y'],
          attrs: { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 0], group: 2 },
        },
        {
          op: 'ConvTranspose',
          inputs: ['x', 'wd'],
          outputs: ['z'],
          attrs: { strides: [1, 1], dilations: [2, 2], pads: [1, 0, 1, 2] },
        },
      ],
    },
    ['w', 'b', 'wd', 'x'],
  ));

test('PRelu (per-channel slope) and InstanceNormalization: gradients of slope, scale, bias and input match a central difference', () =>
  checkGradients(
    {
      opset: 9,
      inputs: [{ name: 'x', shape: [2, 3, 4, 4] }],
      outputs: ['y'],
      initializers: [weight('slope', [3, 1, 1], 34), weight('scale', [3], 35), weight('bias', [3], 36)],
      nodes: [
        { op: 'PRelu', inputs: ['x', 'slope'], outputs: ['p'] },
        { op: 'InstanceNormalization', inputs: ['p', 'scale', 'bias'], outputs: ['y'] },
      ],
    },
    ['slope', 'scale', 'bias', 'x'],
  ));

test('Expand, Tile and Where: gradients of the expanded, tiled and selected tensors match a central difference', () =>
  checkGradients(
    {
      opset: 13,
      inputs: [{ name: 'c', shape: [2, 3, 4] }],
      outputs: ['y'],
      initializers: [
        weight('a', [3, 1], 37),
        weight('t', [1, 3, 2], 38),
        weight('e', [4], 39),
        { name: 'shape', shape: [3], values: [2, 3, 4], type: 'int64' },
        { name: 'reps', shape: [3], values: [2, 1, 2], type: 'int64' },
        { name: 'zero', shape: [], values: [0] },
      ],
      nodes: [
        { op: 'Expand', inputs: ['a', 'shape'], outputs: ['ea'] },
        { op: 'Tile', inputs: ['t', 'reps'], outputs: ['tt'] },
        { op: 'Greater', inputs: ['c', 'zero'], outputs: ['cond'] },
        { op: 'Where', inputs: ['cond', 'ea', 'e'], outputs: ['w1'] },
        { op: 'Mul', inputs: ['w1', 'tt'], outputs: ['y'] },
      ],
    },
    ['a', 't', 'e'],
  ));
