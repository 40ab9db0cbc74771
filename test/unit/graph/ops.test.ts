/**
 * Operator-level checks of the graph executor: tiny ONNX models built in the test are run through the importer +
 * `runGraph` and through onnxruntime, and must agree. Also: the unsupported-operator error and the op table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { MemoryByteSource } from '../../../src/core/io/byteSource';
import { importOnnx } from '../../../src/core/graph/onnxImport';
import { OPS, runGraph, weightTensors } from '../../../src/core/graph/execute';
import { SUPPORTED_OPS } from '../../../src/core/graph/supportedOps';
import { relativeMaxError, seededRandom } from './helpers';
import { buildOnnx, type TestModel } from '../../helpers/protobuf';
import { loadOrt, ortSkip, runOrt } from '../../helpers/ort';

const ort = loadOrt();
const skip = ortSkip(typeof ort === 'string' ? ort : undefined);

async function importBytes(bytes: Uint8Array, checkSupported = true): ReturnType<typeof importOnnx> {
  return importOnnx(new MemoryByteSource(bytes, 'test.onnx'), { path: 'test.onnx', siblings: { open: () => Promise.reject(new Error('no siblings')) } }, { checkSupported });
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Runs `model` both ways on seeded inputs and asserts every output agrees within `tol` (relative to max |ref|). */
async function compare(model: TestModel, tol = 1e-5): Promise<void> {
  await tf.setBackend('cpu');
  if (typeof ort === 'string') assert.fail(ort);
  const bytes = buildOnnx(model);
  const feeds = Object.fromEntries(model.inputs.map((x, i) => [x.name, { data: seededRandom(100 + i, size(x.shape)), dims: x.shape }]));
  const ref = await runOrt(ort, bytes, feeds);
  const { graph, weights } = await importBytes(bytes);
  const before = tf.memory().numTensors;
  const w = weightTensors(graph, weights);
  const xs = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, tf.tensor(v.data, v.dims)]));
  const out = runGraph(graph, w, xs);
  for (const name of model.outputs) {
    const r = ref[name];
    const o = out[name];
    assert.ok(r && o, name);
    assert.deepEqual(o.shape, r.dims, `shape of ${name}`);
    const err = relativeMaxError(o.dataSync(), r.data);
    assert.ok(err <= tol, `${name}: relative max error ${err}`);
  }
  tf.dispose([...Object.values(out), ...Object.values(w), ...Object.values(xs)]);
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
}

function weight(name: string, shape: number[], seed: number): { name: string; shape: number[]; values: Float32Array } {
  return { name, shape, values: seededRandom(seed, size(shape)) };
}

const convCases: [string, Record<string, number | number[]>, number[], number[]][] = [
  ['plain 3×3 with pads', { pads: [1, 1, 1, 1] }, [1, 3, 9, 9], [4, 3, 3, 3]],
  ['asymmetric pads, stride 2', { pads: [0, 1, 2, 1], strides: [2, 2] }, [1, 3, 10, 9], [5, 3, 3, 3]],
  ['groups 2', { group: 2, pads: [1, 1, 1, 1] }, [1, 4, 8, 8], [6, 2, 3, 3]],
  ['depthwise with multiplier 2', { group: 4, pads: [1, 1, 1, 1] }, [1, 4, 8, 8], [8, 1, 3, 3]],
  ['dilation 2', { dilations: [2, 2], pads: [2, 2, 2, 2] }, [1, 2, 9, 9], [3, 2, 3, 3]],
  ['dilation 2 with stride 2', { dilations: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1] }, [1, 2, 11, 11], [3, 2, 3, 3]],
  ['auto_pad SAME_UPPER stride 2', { strides: [2, 2] }, [1, 2, 7, 8], [3, 2, 3, 3]],
];
for (const [label, attrs, xShape, wShape] of convCases) {
  test(`Conv ${label} matches onnxruntime`, { skip }, () => compare({
    opset: 13,
    inputs: [{ name: 'x', shape: xShape }],
    outputs: ['y'],
    initializers: [weight('w', wShape, 1), weight('b', [wShape[0] ?? 1], 2)],
    nodes: [{ op: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: label.startsWith('auto_pad') ? { ...attrs, auto_pad: 'SAME_UPPER' } : attrs }],
  }));
}

test('Conv 1-D matches onnxruntime', { skip }, () => compare({
  opset: 13, inputs: [{ name: 'x', shape: [2, 3, 12] }], outputs: ['y'],
  initializers: [weight('w', [4, 3, 3], 3)],
  nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], attrs: { pads: [1, 2], strides: [2] } }],
}));

test('MaxPool / AveragePool (pads, ceil_mode, exclude pad) / GlobalAveragePool match onnxruntime', { skip }, () => compare({
  opset: 13, inputs: [{ name: 'x', shape: [1, 3, 9, 9] }], outputs: ['m', 'a', 'c', 'g'],
  nodes: [
    { op: 'MaxPool', inputs: ['x'], outputs: ['m'], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } },
    { op: 'AveragePool', inputs: ['x'], outputs: ['a'], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } },
    { op: 'MaxPool', inputs: ['x'], outputs: ['c'], attrs: { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 } },
    { op: 'GlobalAveragePool', inputs: ['x'], outputs: ['g'] },
  ],
}));

test('BatchNormalization, activations and broadcasting arithmetic match onnxruntime', { skip }, () => compare({
  opset: 14, inputs: [{ name: 'x', shape: [2, 4, 5, 5] }], outputs: ['r', 'c', 'l', 's', 't', 'h', 'd'],
  initializers: [
    weight('scale', [4], 4), weight('bias', [4], 5), weight('mean', [4], 6),
    { name: 'var', shape: [4], values: seededRandom(7, 4, 0.5, 2) },
    weight('k', [4, 1, 1], 8), { name: 'kd', shape: [5], values: seededRandom(14, 5, 0.5, 2) }, { name: 'lo', shape: [], values: [-0.3] }, { name: 'hi', shape: [], values: [0.4] },
  ],
  nodes: [
    { op: 'BatchNormalization', inputs: ['x', 'scale', 'bias', 'mean', 'var'], outputs: ['bn'], attrs: { epsilon: { float: 1e-3 } } },
    { op: 'Relu', inputs: ['bn'], outputs: ['r'] },
    { op: 'Clip', inputs: ['bn', 'lo', 'hi'], outputs: ['c'] },
    { op: 'LeakyRelu', inputs: ['bn'], outputs: ['l'], attrs: { alpha: { float: 0.1 } } },
    { op: 'Sigmoid', inputs: ['bn'], outputs: ['s'] },
    { op: 'Tanh', inputs: ['bn'], outputs: ['t'] },
    { op: 'HardSwish', inputs: ['bn'], outputs: ['h'] },
    { op: 'Mul', inputs: ['bn', 'k'], outputs: ['m'] },
    { op: 'Sub', inputs: ['m', 'k'], outputs: ['sub'] },
    { op: 'Div', inputs: ['sub', 'kd'], outputs: ['d'] },
  ],
}));

test('Gemm (transA, alpha, beta), MatMul, Softmax, LayerNormalization match onnxruntime', { skip }, () => compare({
  opset: 17, inputs: [{ name: 'x', shape: [6, 3] }, { name: 'z', shape: [2, 3, 4] }], outputs: ['g', 'mm', 'sm', 'ln'],
  initializers: [weight('B', [6, 5], 9), weight('C', [5], 10), weight('M', [4, 7], 11), weight('gamma', [7], 12), weight('beta', [7], 13)],
  nodes: [
    { op: 'Gemm', inputs: ['x', 'B', 'C'], outputs: ['g'], attrs: { transA: 1, alpha: { float: 0.5 }, beta: { float: 2 } } },
    { op: 'MatMul', inputs: ['z', 'M'], outputs: ['mm'] },
    { op: 'Softmax', inputs: ['mm'], outputs: ['sm'], attrs: { axis: 1 } },
    { op: 'LayerNormalization', inputs: ['mm', 'gamma', 'beta'], outputs: ['ln'], attrs: { axis: -1 } },
  ],
}));

test('Reshape (0, -1), Transpose, Concat, Flatten, Pad, Squeeze/Unsqueeze, Slice, DepthToSpace match onnxruntime', { skip }, () => compare({
  opset: 13, inputs: [{ name: 'x', shape: [2, 8, 3, 4] }], outputs: ['f', 'cat', 'p', 'u', 'sl', 'dcr', 'crd'],
  initializers: [
    { name: 'shape', shape: [3], values: [0, -1, 4], type: 'int64' },
    { name: 'pads', shape: [8], values: [0, 0, 1, 2, 0, 0, 2, 0], type: 'int64' },
    { name: 'ax0', shape: [1], values: [0], type: 'int64' },
    { name: 'starts', shape: [2], values: [-1, 1], type: 'int64' },
    { name: 'ends', shape: [2], values: [-1000, 100], type: 'int64' },
    { name: 'axes', shape: [2], values: [1, 3], type: 'int64' },
    { name: 'steps', shape: [2], values: [-2, 2], type: 'int64' },
  ],
  nodes: [
    { op: 'Reshape', inputs: ['x', 'shape'], outputs: ['r'] },
    { op: 'Transpose', inputs: ['r'], outputs: ['t'], attrs: { perm: [2, 0, 1] } },
    { op: 'Flatten', inputs: ['t'], outputs: ['f'], attrs: { axis: 2 } },
    { op: 'Concat', inputs: ['x', 'x'], outputs: ['cat'], attrs: { axis: -1 } },
    { op: 'Pad', inputs: ['x', 'pads'], outputs: ['p'] },
    { op: 'Unsqueeze', inputs: ['x', 'ax0'], outputs: ['us'] },
    { op: 'Squeeze', inputs: ['us', 'ax0'], outputs: ['u'] },
    { op: 'Slice', inputs: ['x', 'starts', 'ends', 'axes', 'steps'], outputs: ['sl'] },
    { op: 'DepthToSpace', inputs: ['x'], outputs: ['dcr'], attrs: { blocksize: 2 } },
    { op: 'DepthToSpace', inputs: ['x'], outputs: ['crd'], attrs: { blocksize: 2, mode: 'CRD' } },
  ],
}));

test('Resize nearest (asymmetric, floor) and linear (half_pixel, align_corners) match onnxruntime', { skip }, () => compare({
  opset: 13, inputs: [{ name: 'x', shape: [1, 2, 4, 5] }], outputs: ['n', 'l', 'a'],
  initializers: [{ name: 'scales', shape: [4], values: [1, 1, 2, 2] }, { name: 'sizes', shape: [4], values: [1, 2, 7, 3], type: 'int64' }],
  nodes: [
    { op: 'Resize', inputs: ['x', '', 'scales'], outputs: ['n'], attrs: { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' } },
    { op: 'Resize', inputs: ['x', '', 'scales'], outputs: ['l'], attrs: { mode: 'linear' } },
    { op: 'Resize', inputs: ['x', '', '', 'sizes'], outputs: ['a'], attrs: { mode: 'linear', coordinate_transformation_mode: 'align_corners' } },
  ],
}));

test('an unsupported operator is refused at import, naming it and its node', async () => {
  const bytes = buildOnnx({
    opset: 16, inputs: [{ name: 'x', shape: [1, 1, 4, 4] }, { name: 'grid', shape: [1, 4, 4, 2] }], outputs: ['y'],
    nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['r'] }, { op: 'GridSample', inputs: ['r', 'grid'], outputs: ['y'] }],
  });
  await assert.rejects(importBytes(bytes), /ONNX operator GridSample \(node n1\) is not supported/);
  const { graph } = await importBytes(bytes, false);
  assert.deepEqual(graph.nodes.map((n) => n.op), ['Relu', 'GridSample']);
});

test('the executor implements exactly the operators the importer accepts', () => {
  assert.deepEqual(Object.keys(OPS).sort(), [...SUPPORTED_OPS].sort());
});
