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
import { OPS, executeGraph, weightTensors } from '../../../src/core/graph/execute';
import { SUPPORTED_OPS } from '../../../src/core/graph/supportedOps';
import { relativeMaxError, seededRandom } from './helpers';
import { buildOnnx, type TestInitializer, type TestModel } from '../../helpers/protobuf';
import { loadOrt, ortSkip, runOrt } from '../../helpers/ort';

const ort = loadOrt();
const skip = ortSkip(typeof ort === 'string' ? ort : undefined);

async function importBytes(bytes: Uint8Array, checkSupported = true): ReturnType<typeof importOnnx> {
  return importOnnx(
    new MemoryByteSource(bytes, 'test.onnx'),
    { path: 'test.onnx', siblings: { open: () => Promise.reject(new Error('no siblings')) } },
    { checkSupported },
  );
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Runs `model` both ways on seeded inputs and asserts every output agrees within `tol` (relative to max |ref|);
 * outputs declared bool or int64 must agree exactly.
 */
async function compare(model: TestModel, tol = 1e-5): Promise<void> {
  await tf.setBackend('cpu');
  if (typeof ort === 'string') assert.fail(ort);
  const bytes = buildOnnx(model);
  const feeds = Object.fromEntries(
    model.inputs.map((x, i) => [x.name, { data: seededRandom(100 + i, size(x.shape)), dims: x.shape }]),
  );
  const ref = await runOrt(ort, bytes, feeds);
  const { graph, weights } = await importBytes(bytes);
  const before = tf.memory().numTensors;
  const w = weightTensors(graph, weights);
  const xs = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, tf.tensor(v.data, v.dims)]));
  const out = executeGraph(graph, w, xs);
  for (const name of model.outputs) {
    const r = ref[name];
    const o = out[name];
    assert.ok(r && o, name);
    assert.deepEqual(o.shape, r.dims, `shape of ${name}`);
    if (model.outputTypes?.[name] !== undefined) {
      assert.deepEqual(
        Array.from(o.dataSync()),
        Array.from(r.data),
        `${name}: exact ${model.outputTypes[name]} values`,
      );
      continue;
    }
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
  [
    'dilation 2 with stride 2',
    { dilations: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1] },
    [1, 2, 11, 11],
    [3, 2, 3, 3],
  ],
  ['auto_pad SAME_UPPER stride 2', { strides: [2, 2] }, [1, 2, 7, 8], [3, 2, 3, 3]],
];
for (const [label, attrs, xShape, wShape] of convCases) {
  test(`Conv ${label} matches onnxruntime`, { skip }, () =>
    compare({
      opset: 13,
      inputs: [{ name: 'x', shape: xShape }],
      outputs: ['y'],
      initializers: [weight('w', wShape, 1), weight('b', [wShape[0] ?? 1], 2)],
      nodes: [
        {
          op: 'Conv',
          inputs: ['x', 'w', 'b'],
          outputs: ['y'],
          attrs: label.startsWith('auto_pad') ? { ...attrs, auto_pad: 'SAME_UPPER' } : attrs,
        },
      ],
    }),
  );
}

test('Conv 1-D matches onnxruntime', { skip }, () =>
  compare({
    opset: 13,
    inputs: [{ name: 'x', shape: [2, 3, 12] }],
    outputs: ['y'],
    initializers: [weight('w', [4, 3, 3], 3)],
    nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], attrs: { pads: [1, 2], strides: [2] } }],
  }),
);

test('MaxPool / AveragePool (pads, ceil_mode, exclude pad) / GlobalAveragePool match onnxruntime', { skip }, () =>
  compare({
    opset: 13,
    inputs: [{ name: 'x', shape: [1, 3, 9, 9] }],
    outputs: ['m', 'a', 'c', 'g'],
    nodes: [
      {
        op: 'MaxPool',
        inputs: ['x'],
        outputs: ['m'],
        attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
      },
      {
        op: 'AveragePool',
        inputs: ['x'],
        outputs: ['a'],
        attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
      },
      { op: 'MaxPool', inputs: ['x'], outputs: ['c'], attrs: { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 } },
      { op: 'GlobalAveragePool', inputs: ['x'], outputs: ['g'] },
    ],
  }),
);

test('BatchNormalization, activations and broadcasting arithmetic match onnxruntime', { skip }, () =>
  compare({
    opset: 14,
    inputs: [{ name: 'x', shape: [2, 4, 5, 5] }],
    outputs: ['r', 'c', 'l', 's', 't', 'h', 'd'],
    initializers: [
      weight('scale', [4], 4),
      weight('bias', [4], 5),
      weight('mean', [4], 6),
      { name: 'var', shape: [4], values: seededRandom(7, 4, 0.5, 2) },
      weight('k', [4, 1, 1], 8),
      { name: 'kd', shape: [5], values: seededRandom(14, 5, 0.5, 2) },
      { name: 'lo', shape: [], values: [-0.3] },
      { name: 'hi', shape: [], values: [0.4] },
    ],
    nodes: [
      {
        op: 'BatchNormalization',
        inputs: ['x', 'scale', 'bias', 'mean', 'var'],
        outputs: ['bn'],
        attrs: { epsilon: { float: 1e-3 } },
      },
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
  }),
);

test('Gemm (transA, alpha, beta), MatMul, Softmax, LayerNormalization match onnxruntime', { skip }, () =>
  compare({
    opset: 17,
    inputs: [
      { name: 'x', shape: [6, 3] },
      { name: 'z', shape: [2, 3, 4] },
    ],
    outputs: ['g', 'mm', 'sm', 'ln'],
    initializers: [
      weight('B', [6, 5], 9),
      weight('C', [5], 10),
      weight('M', [4, 7], 11),
      weight('gamma', [7], 12),
      weight('beta', [7], 13),
    ],
    nodes: [
      {
        op: 'Gemm',
        inputs: ['x', 'B', 'C'],
        outputs: ['g'],
        attrs: { transA: 1, alpha: { float: 0.5 }, beta: { float: 2 } },
      },
      { op: 'MatMul', inputs: ['z', 'M'], outputs: ['mm'] },
      { op: 'Softmax', inputs: ['mm'], outputs: ['sm'], attrs: { axis: 1 } },
      { op: 'LayerNormalization', inputs: ['mm', 'gamma', 'beta'], outputs: ['ln'], attrs: { axis: -1 } },
    ],
  }),
);

test(
  'Reshape (0, -1), Transpose, Concat, Flatten, Pad, Squeeze/Unsqueeze, Slice, DepthToSpace match onnxruntime',
  { skip },
  () =>
    compare({
      opset: 13,
      inputs: [{ name: 'x', shape: [2, 8, 3, 4] }],
      outputs: ['f', 'cat', 'p', 'u', 'sl', 'dcr', 'crd'],
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
    }),
);

test('Resize nearest (asymmetric, floor) and linear (half_pixel, align_corners) match onnxruntime', { skip }, () =>
  compare({
    opset: 13,
    inputs: [{ name: 'x', shape: [1, 2, 4, 5] }],
    outputs: ['n', 'l', 'a'],
    initializers: [
      { name: 'scales', shape: [4], values: [1, 1, 2, 2] },
      { name: 'sizes', shape: [4], values: [1, 2, 7, 3], type: 'int64' },
    ],
    nodes: [
      {
        op: 'Resize',
        inputs: ['x', '', 'scales'],
        outputs: ['n'],
        attrs: { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' },
      },
      { op: 'Resize', inputs: ['x', '', 'scales'], outputs: ['l'], attrs: { mode: 'linear' } },
      {
        op: 'Resize',
        inputs: ['x', '', '', 'sizes'],
        outputs: ['a'],
        attrs: { mode: 'linear', coordinate_transformation_mode: 'align_corners' },
      },
    ],
  }),
);

const int64 = (name: string, values: number[], shape = [values.length]): TestInitializer => ({
  name,
  shape,
  values,
  type: 'int64',
});

test(
  'Split by attribute (opset 11, negative axis), by input (opset 13), evenly, and by num_outputs (opset 18) matches onnxruntime',
  { skip },
  async () => {
    await compare({
      opset: 11,
      inputs: [{ name: 'x', shape: [2, 3, 7] }],
      outputs: ['a', 'b', 'c', 'e0', 'e1'],
      nodes: [
        { op: 'Split', inputs: ['x'], outputs: ['a', 'b', 'c'], attrs: { axis: -1, split: [2, 4, 1] } },
        { op: 'Split', inputs: ['x'], outputs: ['e0', 'e1'] },
      ],
    });
    await compare({
      opset: 13,
      inputs: [{ name: 'x', shape: [4, 6] }],
      outputs: ['a', 'b', 'e0', 'e1', 'e2'],
      initializers: [int64('sizes', [1, 5])],
      nodes: [
        { op: 'Split', inputs: ['x', 'sizes'], outputs: ['a', 'b'], attrs: { axis: 1 } },
        { op: 'Split', inputs: ['x'], outputs: ['e0', 'e1', 'e2'], attrs: { axis: -1 } },
      ],
    });
    await compare({
      opset: 18,
      inputs: [{ name: 'x', shape: [7, 2] }],
      outputs: ['a', 'b', 'c'],
      nodes: [{ op: 'Split', inputs: ['x'], outputs: ['a', 'b', 'c'], attrs: { num_outputs: 3 } }],
    });
  },
);

test('Split of an int64 pads tensor feeding Concat and Pad (as in M-LSD) matches onnxruntime', { skip }, () =>
  compare({
    opset: 11,
    inputs: [{ name: 'x', shape: [1, 2, 3, 3] }],
    outputs: ['p', 'q'],
    outputTypes: { q: 'int64' },
    initializers: [int64('pads8', [0, 0, 0, 0, 0, 1, 1, 0])],
    nodes: [
      {
        op: 'Split',
        inputs: ['pads8'],
        outputs: ['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7'],
        attrs: { split: [1, 1, 1, 1, 1, 1, 1, 1] },
      },
      { op: 'Concat', inputs: ['s0', 's3', 's1', 's2', 's4', 's7', 's5', 's6'], outputs: ['q'], attrs: { axis: 0 } },
      { op: 'Pad', inputs: ['x', 'q'], outputs: ['p'] },
    ],
  }),
);

test(
  'Equal, Greater, Less, GreaterOrEqual, LessOrEqual broadcast, with ties, and Cast of their booleans match onnxruntime',
  { skip },
  () =>
    compare({
      opset: 13,
      inputs: [
        { name: 'x', shape: [2, 3, 4] },
        { name: 'y', shape: [3, 1] },
      ],
      outputs: ['eq', 'gt', 'lt', 'ge', 'le', 'mask', 'peak'],
      outputTypes: { eq: 'bool', gt: 'bool', lt: 'bool', ge: 'bool', le: 'bool' },
      initializers: [{ name: 'two', shape: [], values: [2] }],
      nodes: [
        // Floor(2·v) takes few values, so the comparisons see many ties.
        { op: 'Mul', inputs: ['x', 'two'], outputs: ['x2'] },
        { op: 'Floor', inputs: ['x2'], outputs: ['fx'] },
        { op: 'Mul', inputs: ['y', 'two'], outputs: ['y2'] },
        { op: 'Floor', inputs: ['y2'], outputs: ['fy'] },
        { op: 'Equal', inputs: ['fx', 'fy'], outputs: ['eq'] },
        { op: 'Greater', inputs: ['fx', 'fy'], outputs: ['gt'] },
        { op: 'Less', inputs: ['fx', 'fy'], outputs: ['lt'] },
        { op: 'GreaterOrEqual', inputs: ['fx', 'fy'], outputs: ['ge'] },
        { op: 'LessOrEqual', inputs: ['fx', 'fy'], outputs: ['le'] },
        { op: 'Cast', inputs: ['eq'], outputs: ['mask'], attrs: { to: 1 } },
        // The local-maximum mask of a line detector: x where it equals its 3-wide max pool.
        { op: 'MaxPool', inputs: ['x'], outputs: ['mp'], attrs: { kernel_shape: [3], pads: [1, 1], strides: [1] } },
        { op: 'Equal', inputs: ['x', 'mp'], outputs: ['isPeak'] },
        { op: 'Cast', inputs: ['isPeak'], outputs: ['peakF'], attrs: { to: 1 } },
        { op: 'Mul', inputs: ['x', 'peakF'], outputs: ['peak'] },
      ],
    }),
);

test(
  'Not, And, Or, Xor on comparison results, and Where with three-way broadcasting, match onnxruntime',
  { skip },
  () =>
    compare({
      opset: 13,
      inputs: [
        { name: 'x', shape: [2, 1, 5] },
        { name: 'y', shape: [3, 5] },
      ],
      outputs: ['not', 'and', 'or', 'xor', 'w', 'w2'],
      outputTypes: { not: 'bool', and: 'bool', or: 'bool', xor: 'bool' },
      initializers: [
        { name: 'zero', shape: [], values: [0] },
        { name: 'c', shape: [1], values: [0.25] },
      ],
      nodes: [
        { op: 'Greater', inputs: ['x', 'zero'], outputs: ['px'] },
        { op: 'Less', inputs: ['y', 'c'], outputs: ['ly'] },
        { op: 'Not', inputs: ['px'], outputs: ['not'] },
        { op: 'And', inputs: ['px', 'ly'], outputs: ['and'] },
        { op: 'Or', inputs: ['px', 'ly'], outputs: ['or'] },
        { op: 'Xor', inputs: ['px', 'ly'], outputs: ['xor'] },
        { op: 'Where', inputs: ['px', 'y', 'c'], outputs: ['w'] },
        { op: 'Where', inputs: ['ly', 'x', 'y'], outputs: ['w2'] },
      ],
    }),
);

test(
  'ArgMax and ArgMin (negative axis, keepdims 0 and 1, select_last_index with ties) match onnxruntime',
  { skip },
  () =>
    compare({
      opset: 13,
      inputs: [{ name: 'x', shape: [3, 4, 5] }],
      outputs: ['a', 'b', 'c', 'd', 'e'],
      outputTypes: { a: 'int64', b: 'int64', c: 'int64', d: 'int64', e: 'int64' },
      initializers: [{ name: 'two', shape: [], values: [2] }],
      nodes: [
        { op: 'Mul', inputs: ['x', 'two'], outputs: ['x2'] },
        { op: 'Floor', inputs: ['x2'], outputs: ['t'] },
        { op: 'ArgMax', inputs: ['x'], outputs: ['a'], attrs: { axis: -1, keepdims: 0 } },
        { op: 'ArgMin', inputs: ['x'], outputs: ['b'], attrs: { axis: 1 } },
        { op: 'ArgMax', inputs: ['t'], outputs: ['c'], attrs: { axis: 2 } },
        { op: 'ArgMax', inputs: ['t'], outputs: ['d'], attrs: { axis: 2, select_last_index: 1 } },
        { op: 'ArgMin', inputs: ['t'], outputs: ['e'], attrs: { axis: 0, keepdims: 0, select_last_index: 1 } },
      ],
    }),
);

test(
  'TopK: largest on the last axis, smallest on axis 1, ties in index order, K as attribute (opset 1) and input (opset 10) matches onnxruntime',
  { skip },
  async () => {
    await compare({
      opset: 11,
      inputs: [{ name: 'x', shape: [2, 6, 5] }],
      outputs: ['v', 'i', 'sv', 'si', 'tv', 'ti'],
      outputTypes: { i: 'int64', si: 'int64', ti: 'int64' },
      initializers: [int64('k3', [3]), int64('k4', [4]), { name: 'two', shape: [], values: [2] }],
      nodes: [
        { op: 'TopK', inputs: ['x', 'k3'], outputs: ['v', 'i'] },
        { op: 'TopK', inputs: ['x', 'k4'], outputs: ['sv', 'si'], attrs: { axis: 1, largest: 0 } },
        { op: 'Mul', inputs: ['x', 'two'], outputs: ['x2'] },
        { op: 'Floor', inputs: ['x2'], outputs: ['t'] },
        { op: 'TopK', inputs: ['t', 'k4'], outputs: ['tv', 'ti'], attrs: { axis: -2 } },
      ],
    });
    await compare({
      opset: 10,
      inputs: [{ name: 'x', shape: [3, 7] }],
      outputs: ['v', 'i'],
      outputTypes: { i: 'int64' },
      initializers: [int64('k', [2])],
      nodes: [{ op: 'TopK', inputs: ['x', 'k'], outputs: ['v', 'i'] }],
    });
    await compare({
      opset: 9,
      inputs: [{ name: 'x', shape: [3, 7] }],
      outputs: ['v', 'i'],
      outputTypes: { i: 'int64' },
      nodes: [{ op: 'TopK', inputs: ['x'], outputs: ['v', 'i'], attrs: { k: 5 } }],
    });
  },
);

test(
  'Expand (bidirectional broadcast, shorter and longer shapes), Tile, Range, Sum, Mean, Floor/Ceil/Round/Sign and Cast to integers match onnxruntime',
  { skip },
  () =>
    compare({
      opset: 13,
      inputs: [
        { name: 'x', shape: [3, 1] },
        { name: 'y', shape: [2, 3, 4] },
      ],
      outputs: ['e1', 'e2', 'e3', 't', 'r', 'sum', 'mean', 'fl', 'ce', 'ro', 'sg', 'ci', 'cb'],
      outputTypes: { ci: 'int64', cb: 'bool' },
      initializers: [
        int64('s1', [2, 1, 6]),
        int64('s2', [1]),
        int64('s3', [3, 4]),
        int64('reps', [1, 2, 3]),
        { name: 'start', shape: [], values: [-1.5] },
        { name: 'limit', shape: [], values: [2] },
        { name: 'delta', shape: [], values: [0.75] },
        { name: 'five', shape: [], values: [5] },
      ],
      nodes: [
        { op: 'Expand', inputs: ['x', 's1'], outputs: ['e1'] },
        { op: 'Expand', inputs: ['y', 's2'], outputs: ['e2'] },
        { op: 'Expand', inputs: ['x', 's3'], outputs: ['e3'] },
        { op: 'Tile', inputs: ['y', 'reps'], outputs: ['t'] },
        { op: 'Range', inputs: ['start', 'limit', 'delta'], outputs: ['r'] },
        { op: 'Sum', inputs: ['x', 'y', 'x'], outputs: ['sum'] },
        { op: 'Mean', inputs: ['y', 'x'], outputs: ['mean'] },
        { op: 'Mul', inputs: ['y', 'five'], outputs: ['y5'] },
        { op: 'Floor', inputs: ['y5'], outputs: ['fl'] },
        { op: 'Ceil', inputs: ['y5'], outputs: ['ce'] },
        { op: 'Round', inputs: ['y5'], outputs: ['ro'] },
        { op: 'Sign', inputs: ['fl'], outputs: ['sg'] },
        { op: 'Cast', inputs: ['y5'], outputs: ['ci'], attrs: { to: 7 } },
        { op: 'Cast', inputs: ['fl'], outputs: ['cb'], attrs: { to: 9 } },
      ],
    }),
);

const convTransposeCases: [string, Record<string, number | number[] | string>, number[], number[]][] = [
  ['stride 2, kernel 3', { strides: [2, 2] }, [1, 3, 5, 4], [3, 2, 3, 3]],
  ['stride 2, kernel 4, pads 1 (2× upsampling)', { strides: [2, 2], pads: [1, 1, 1, 1] }, [2, 4, 4, 5], [4, 3, 4, 4]],
  [
    'asymmetric pads and strides, output_padding',
    { strides: [3, 2], pads: [1, 0, 2, 1], output_padding: [1, 1] },
    [1, 2, 4, 4],
    [2, 3, 3, 2],
  ],
  ['dilation 2, stride 2', { strides: [2, 2], dilations: [2, 2], pads: [1, 1, 1, 1] }, [1, 2, 5, 5], [2, 3, 3, 3]],
  ['groups 2', { group: 2, strides: [2, 2] }, [1, 4, 4, 4], [4, 3, 3, 3]],
  ['depthwise (group = channels)', { group: 3, strides: [2, 2], pads: [1, 1, 1, 1] }, [1, 3, 5, 5], [3, 1, 3, 3]],
  ['output_shape', { strides: [2, 2], output_shape: [10, 8] }, [1, 2, 5, 4], [2, 3, 3, 3]],
  [
    'output_shape (odd total) with SAME_UPPER',
    { strides: [2, 2], output_shape: [9, 8], auto_pad: 'SAME_UPPER' },
    [1, 2, 5, 4],
    [2, 3, 4, 4],
  ],
  ['output_shape (odd total) with NOTSET', { strides: [2, 2], output_shape: [9, 8] }, [1, 2, 5, 4], [2, 3, 4, 4]],
  ['auto_pad SAME_UPPER (odd total)', { strides: [2, 2], auto_pad: 'SAME_UPPER' }, [1, 2, 5, 4], [2, 3, 3, 3]],
  ['auto_pad SAME_LOWER (odd total)', { strides: [2, 2], auto_pad: 'SAME_LOWER' }, [1, 2, 5, 4], [2, 3, 3, 3]],
  ['auto_pad VALID', { strides: [2, 1], auto_pad: 'VALID' }, [1, 2, 3, 4], [2, 3, 2, 3]],
];
for (const [label, attrs, xShape, wShape] of convTransposeCases) {
  test(`ConvTranspose ${label} matches onnxruntime`, { skip }, () =>
    compare({
      opset: 11,
      inputs: [{ name: 'x', shape: xShape }],
      outputs: ['y'],
      initializers: [
        weight('w', wShape, 21),
        weight('b', [(wShape[1] ?? 1) * (typeof attrs.group === 'number' ? attrs.group : 1)], 22),
      ],
      nodes: [{ op: 'ConvTranspose', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs }],
    }),
  );
}

test('ConvTranspose 1-D (stride, pads, output_padding, dilation, no bias) matches onnxruntime', { skip }, () =>
  compare({
    opset: 11,
    inputs: [{ name: 'x', shape: [2, 3, 6] }],
    outputs: ['y'],
    initializers: [weight('w', [3, 2, 3], 23)],
    nodes: [
      {
        op: 'ConvTranspose',
        inputs: ['x', 'w'],
        outputs: ['y'],
        attrs: { strides: [3], pads: [1, 2], output_padding: [2], dilations: [2] },
      },
    ],
  }),
);

test(
  'InstanceNormalization (4-D and 3-D) and PRelu (per-channel, last-axis and scalar slopes) match onnxruntime',
  { skip },
  () =>
    compare({
      opset: 9,
      inputs: [
        { name: 'x', shape: [2, 3, 4, 5] },
        { name: 'z', shape: [2, 3, 6] },
      ],
      outputs: ['in4', 'in3', 'pc', 'pw', 'ps'],
      initializers: [
        weight('scale', [3], 24),
        weight('bias', [3], 25),
        weight('slopeC', [3, 1, 1], 26),
        weight('slopeW', [5], 27),
        { name: 'slope1', shape: [1], values: [0.2] },
      ],
      nodes: [
        {
          op: 'InstanceNormalization',
          inputs: ['x', 'scale', 'bias'],
          outputs: ['in4'],
          attrs: { epsilon: { float: 1e-3 } },
        },
        { op: 'InstanceNormalization', inputs: ['z', 'scale', 'bias'], outputs: ['in3'] },
        { op: 'PRelu', inputs: ['x', 'slopeC'], outputs: ['pc'] },
        { op: 'PRelu', inputs: ['x', 'slopeW'], outputs: ['pw'] },
        { op: 'PRelu', inputs: ['z', 'slope1'], outputs: ['ps'] },
      ],
    }),
);

test('Shape with start and end (opset 15, negative and out-of-range bounds) matches onnxruntime', { skip }, () =>
  compare({
    opset: 15,
    inputs: [{ name: 'x', shape: [2, 3, 4, 5] }],
    outputs: ['all', 'mid', 'tail', 'none'],
    outputTypes: { all: 'int64', mid: 'int64', tail: 'int64', none: 'int64' },
    nodes: [
      { op: 'Shape', inputs: ['x'], outputs: ['all'] },
      { op: 'Shape', inputs: ['x'], outputs: ['mid'], attrs: { start: 1, end: -1 } },
      { op: 'Shape', inputs: ['x'], outputs: ['tail'], attrs: { start: -2, end: 10 } },
      { op: 'Shape', inputs: ['x'], outputs: ['none'], attrs: { start: 3, end: 1 } },
    ],
  }),
);

test('an unsupported operator is refused at import, naming it and its node', async () => {
  const bytes = buildOnnx({
    opset: 16,
    inputs: [
      { name: 'x', shape: [1, 1, 4, 4] },
      { name: 'grid', shape: [1, 4, 4, 2] },
    ],
    outputs: ['y'],
    nodes: [
      { op: 'Relu', inputs: ['x'], outputs: ['r'] },
      { op: 'GridSample', inputs: ['r', 'grid'], outputs: ['y'] },
    ],
  });
  await assert.rejects(importBytes(bytes), /ONNX operator GridSample \(node n1\) is not supported/);
  const { graph } = await importBytes(bytes, false);
  assert.deepEqual(
    graph.nodes.map((n) => n.op),
    ['Relu', 'GridSample'],
  );
});

test('the executor implements exactly the operators the importer accepts', () => {
  assert.deepEqual(Object.keys(OPS).sort(), [...SUPPORTED_OPS].sort());
});
