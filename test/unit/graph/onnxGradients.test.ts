// The ONNX gradient rule table (graph/onnxGradients.ts) on single-op graphs run in onnxruntime on CPU: for every rule,
// the gradient of Σ Y ⊙ R (R random) with respect to each float input against TensorFlow.js' gradient of the same IR
// node on the functional executor, and against central finite differences of onnxruntime's own forward pass along a
// random direction. Also: a node without a rule, and a rule that refuses its attributes, are named in the reason.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../../src/core/backend/tfjsBackend';
import { nodeEmitter, modelProto, valueInfoProto } from '../../../src/core/backend/onnxGraph';
import { executeGraph } from '../../../src/core/graph/execute';
import '../../../src/core/graph/gradients';
import type { AttrValue, Graph, InitializerInfo, Node } from '../../../src/core/graph/ir';
import {
  emitBackward,
  GRADIENT_RULES,
  missingGradientRule,
  OnnxGraphBuilder,
} from '../../../src/core/graph/onnxGradients';
import { constantInitializer, emitLoweredNode, lowerForward } from '../../../src/core/graph/onnxFolding';
import type { OrtModuleLike } from '../../../src/core/backend/onnxRuntime';
import { projectOrt } from '../../helpers/ort';
import { relativeMaxError, seededRandom } from './helpers';

const { skip: NEEDS_ORT, ort } = projectOrt();

before(async () => {
  await initBackend('wasm');
});

/** One input of a single-op case: a float input (differentiated) or an int64 constant. */
type CaseInput =
  | { shape: number[]; lo?: number; hi?: number; away?: number }
  | { ints: number[] }
  | { fixed: number[]; shape: number[] };

interface OpCase {
  name: string;
  op: string;
  attrs?: Record<string, AttrValue>;
  inputs: (CaseInput | null)[];
  outputs?: number;
}

/** The IR graph of one case and the random values of its float inputs. */
function caseGraph(
  c: OpCase,
  seed: number,
): { graph: Graph; floats: Map<string, Float32Array>; consts: Map<string, Float32Array> } {
  const initializers = new Map<string, InitializerInfo>();
  const floats = new Map<string, Float32Array>();
  const consts = new Map<string, Float32Array>();
  const inputs: { name: string; dtype: string; shape: number[] }[] = [];
  const names = c.inputs.map((inp, i) => {
    if (inp === null) return '';
    const name = `in${i}`;
    if ('ints' in inp) {
      initializers.set(name, { dtype: 'I64', shape: [inp.ints.length], constant: true });
      consts.set(name, Float32Array.from(inp.ints));
    } else if ('fixed' in inp) {
      initializers.set(name, { dtype: 'F32', shape: inp.shape });
      consts.set(name, Float32Array.from(inp.fixed));
    } else {
      const n = inp.shape.reduce((a, d) => a * d, 1);
      const v = seededRandom(seed + i * 101, n, inp.lo ?? -1, inp.hi ?? 1);
      if (inp.away !== undefined) for (let k = 0; k < n; k++) v[k] = (v[k] ?? 0) + Math.sign(v[k] ?? 1) * inp.away;
      floats.set(name, v);
      inputs.push({ name, dtype: 'F32', shape: inp.shape });
    }
    return name;
  });
  const outputs = Array.from({ length: c.outputs ?? 1 }, (_, j) => `y${j}`);
  const node: Node = { op: c.op, name: c.name, inputs: names, outputs, attrs: c.attrs ?? {} };
  return { graph: { inputs, outputs, nodes: [node], initializers, opset: 17 }, floats, consts };
}

/** Σ_j Σ Y_j ⊙ R_j and its gradients: from the ONNX gradient graph in onnxruntime, from tfjs, and the FD check. */
async function checkCase(c: OpCase): Promise<void> {
  const { graph, floats, consts } = caseGraph(c, 7);
  const before = tf.memory().numTensors;
  const weights: Record<string, tf.Tensor> = {};
  for (const [name, v] of consts) weights[name] = tf.tensor(v, graph.initializers.get(name)?.shape.slice());
  const inputTensors: Record<string, tf.Tensor> = {};
  for (const i of graph.inputs) inputTensors[i.name] = tf.tensor(floats.get(i.name) ?? [], i.shape.slice() as number[]);
  const lowered = lowerForward({ graph, weights, inputs: inputTensors, live: new Set() });
  const node = graph.nodes[0] as Node;
  const wrt = graph.inputs.map((i) => i.name);
  const seeds = new Map(graph.outputs.map((o) => [o, `seed_${o}`]));
  const R = new Map(
    graph.outputs.map((o, j) => [
      o,
      seededRandom(
        99 + j,
        (lowered.shapes.get(o) ?? []).reduce((a, d) => a * d, 1),
      ),
    ]),
  );

  // onnxruntime: forward node + emitted backward.
  const ints = new Map([...lowered.constants].map(([k, v]) => [k, Array.from(v.values)]));
  const g = new OnnxGraphBuilder(lowered.shapes, ints);
  emitLoweredNode(g.node, node);
  const grads = emitBackward({ nodes: [node], seeds, wrt }, g);
  for (const w of wrt) assert.ok(grads.has(w), `${c.name}: a gradient for ${w}`);
  const vi = (n: string): Uint8Array => valueInfoProto(n, (lowered.shapes.get(n) ?? []).slice());
  const model = g.model(
    `grad_${c.op}`,
    [...wrt.map(vi), ...graph.outputs.map((o) => valueInfoProto(`seed_${o}`, (lowered.shapes.get(o) ?? []).slice()))],
    [
      ...graph.outputs.map(vi),
      ...wrt.map((w) => valueInfoProto(grads.get(w) ?? '', (lowered.shapes.get(w) ?? []).slice())),
    ],
    [...lowered.constants].map(([k, v]) => constantInitializer(k, v)),
  );
  const o = ort();
  const session = await o.InferenceSession.create(model, {});
  const forwardNodes: Uint8Array[] = [];
  emitLoweredNode(nodeEmitter(forwardNodes), node);
  const forwardSession = await o.InferenceSession.create(
    modelProto(
      `fwd_${c.op}`,
      forwardNodes,
      [...lowered.constants].map(([k, v]) => constantInitializer(k, v)),
      wrt.map(vi),
      graph.outputs.map(vi),
    ),
    {},
  );
  try {
    const feeds = (values: Map<string, Float32Array>): Record<string, InstanceType<OrtModuleLike['Tensor']>> => {
      const f: Record<string, InstanceType<OrtModuleLike['Tensor']>> = {};
      for (const w of wrt)
        f[w] = new o.Tensor('float32', values.get(w) ?? new Float32Array(0), (lowered.shapes.get(w) ?? []).slice());
      return f;
    };
    const all = feeds(floats);
    for (const y of graph.outputs)
      all[`seed_${y}`] = new o.Tensor(
        'float32',
        R.get(y) ?? new Float32Array(0),
        (lowered.shapes.get(y) ?? []).slice(),
      );
    const out = await session.run(all);
    const ortGrad = new Map(wrt.map((w) => [w, out[grads.get(w) ?? '']?.data as Float32Array]));

    // tfjs: the same IR node on the functional executor.
    const tfGrad = tf.tidy(() => {
      const xs = wrt.map((w) => inputTensors[w] as tf.Tensor);
      const f = (...args: tf.Tensor[]): tf.Scalar => {
        const ins: Record<string, tf.Tensor> = {};
        wrt.forEach((w, i) => {
          ins[w] = args[i] as tf.Tensor;
        });
        const ys = executeGraph(graph, weights, ins);
        return tf.addN(
          graph.outputs.map((y) =>
            tf.sum(tf.mul(ys[y] as tf.Tensor, tf.tensor(R.get(y) ?? [], (ys[y] as tf.Tensor).shape))),
          ),
        ) as tf.Scalar;
      };
      return tf
        .grads(f)(xs)
        .map((t) => t.dataSync() as Float32Array);
    });
    wrt.forEach((w, i) => {
      const err = relativeMaxError(ortGrad.get(w) ?? new Float32Array(0), tfGrad[i] ?? new Float32Array(0));
      assert.ok(err < 1e-4, `${c.name}: d/d${w} onnx vs tfjs relative error ${err}`);
    });

    // Finite differences of onnxruntime's forward along a random direction, per input.
    const objective = async (values: Map<string, Float32Array>): Promise<number> => {
      const r = await forwardSession.run(feeds(values));
      let s = 0;
      for (const y of graph.outputs) {
        const d = r[y]?.data as Float32Array;
        const rv = R.get(y) ?? new Float32Array(0);
        for (let k = 0; k < d.length; k++) s += (d[k] ?? 0) * (rv[k] ?? 0);
      }
      return s;
    };
    for (const [k, w] of wrt.entries()) {
      const x = floats.get(w) ?? new Float32Array(0);
      const dir = seededRandom(500 + k, x.length);
      const eps = 1e-2;
      const shifted = (sign: number): Map<string, Float32Array> =>
        new Map([...floats, [w, Float32Array.from(x, (v, i) => v + sign * eps * (dir[i] ?? 0))]]);
      const fd = ((await objective(shifted(1))) - (await objective(shifted(-1)))) / (2 * eps);
      const gw = ortGrad.get(w) ?? new Float32Array(0);
      let analytic = 0;
      let scale = 0;
      for (let i = 0; i < x.length; i++) {
        analytic += (gw[i] ?? 0) * (dir[i] ?? 0);
        scale += Math.abs((gw[i] ?? 0) * (dir[i] ?? 0));
      }
      assert.ok(
        Math.abs(fd - analytic) <= 2e-3 * Math.max(scale, 1e-6) + 1e-3 * Math.abs(analytic),
        `${c.name}: d/d${w} finite difference ${fd} vs analytic ${analytic}`,
      );
    }
  } finally {
    await session.release();
    await forwardSession.release();
    tf.dispose([...Object.values(weights), ...Object.values(inputTensors)]);
  }
  assert.equal(tf.memory().numTensors, before, `${c.name}: no tensors leak`);
}

const conv = (name: string, x: number[], w: number[], attrs: Record<string, AttrValue>, bias?: number): OpCase => ({
  name,
  op: 'Conv',
  attrs: { kernel_shape: w.slice(2), ...attrs },
  inputs: [{ shape: x }, { shape: w }, ...(bias !== undefined ? [{ shape: [bias] }] : [])],
});

const CASES: OpCase[] = [
  conv('Conv 3×3 stride 1 pad 1', [2, 3, 6, 6], [4, 3, 3, 3], { pads: [1, 1, 1, 1], strides: [1, 1] }),
  conv(
    'Conv 3×3 stride 2 pad 1 (ResNet downsampling)',
    [2, 3, 8, 8],
    [4, 3, 3, 3],
    { pads: [1, 1, 1, 1], strides: [2, 2] },
    4,
  ),
  conv('Conv 3×3 stride 2 odd input', [1, 2, 7, 9], [3, 2, 3, 3], { pads: [1, 0, 1, 2], strides: [2, 2] }),
  conv('Conv 1×1 stride 2', [2, 4, 6, 6], [3, 4, 1, 1], { strides: [2, 2] }, 3),
  conv('Conv 3×3 dilation 2', [1, 2, 9, 9], [2, 2, 3, 3], { dilations: [2, 2], pads: [2, 2, 2, 2] }),
  conv('Conv grouped (2 groups)', [2, 4, 5, 5], [6, 2, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, 6),
  conv('Conv depthwise', [1, 3, 5, 5], [3, 1, 3, 3], { group: 3, pads: [1, 1, 1, 1] }),
  {
    name: 'BatchNormalization (inference)',
    op: 'BatchNormalization',
    attrs: { epsilon: 1e-5 },
    inputs: [
      { shape: [2, 3, 4, 4] },
      { shape: [3] },
      { shape: [3] },
      { fixed: [0.1, -0.2, 0.3], shape: [3] },
      { fixed: [0.5, 1.5, 0.8], shape: [3] },
    ],
  },
  { name: 'Relu', op: 'Relu', inputs: [{ shape: [3, 5], away: 0.05 }] },
  { name: 'Add broadcast', op: 'Add', inputs: [{ shape: [2, 3, 4, 4] }, { shape: [1, 3, 1, 1] }] },
  { name: 'Add same', op: 'Add', inputs: [{ shape: [2, 3] }, { shape: [2, 3] }] },
  { name: 'Sub broadcast', op: 'Sub', inputs: [{ shape: [4, 3] }, { shape: [3] }] },
  { name: 'Mul broadcast', op: 'Mul', inputs: [{ shape: [2, 5] }, { shape: [2, 1] }] },
  { name: 'Div', op: 'Div', inputs: [{ shape: [2, 5] }, { shape: [2, 5], lo: 0.5, hi: 1.5 }] },
  { name: 'Neg', op: 'Neg', inputs: [{ shape: [4] }] },
  { name: 'Exp', op: 'Exp', inputs: [{ shape: [2, 3] }] },
  { name: 'Log', op: 'Log', inputs: [{ shape: [2, 3], lo: 0.5, hi: 1.5 }] },
  { name: 'Sqrt', op: 'Sqrt', inputs: [{ shape: [2, 3], lo: 0.5, hi: 1.5 }] },
  { name: 'Sum of three', op: 'Sum', inputs: [{ shape: [2, 3] }, { shape: [3] }, { shape: [2, 3] }] },
  { name: 'Softmax last axis', op: 'Softmax', attrs: { axis: -1 }, inputs: [{ shape: [4, 10] }] },
  { name: 'Softmax axis 0', op: 'Softmax', attrs: { axis: 0 }, inputs: [{ shape: [3, 6] }] },
  {
    name: 'ReduceSum axis 1 keepdims',
    op: 'ReduceSum',
    attrs: { keepdims: 1 },
    inputs: [{ shape: [2, 5, 3] }, { ints: [1] }],
  },
  { name: 'ReduceSum all', op: 'ReduceSum', attrs: { keepdims: 0 }, inputs: [{ shape: [3, 4] }] },
  {
    name: 'ReduceMean axes 0,2',
    op: 'ReduceMean',
    attrs: { axes: [0, 2], keepdims: 0 },
    inputs: [{ shape: [2, 3, 4] }],
  },
  { name: 'Reshape', op: 'Reshape', inputs: [{ shape: [2, 3, 4] }, { ints: [6, -1] }] },
  { name: 'Squeeze', op: 'Squeeze', inputs: [{ shape: [2, 1, 3] }, { ints: [1] }] },
  { name: 'Unsqueeze', op: 'Unsqueeze', inputs: [{ shape: [2, 3] }, { ints: [0, 3] }] },
  { name: 'Flatten', op: 'Flatten', attrs: { axis: 1 }, inputs: [{ shape: [2, 3, 2, 2] }] },
  { name: 'Transpose', op: 'Transpose', attrs: { perm: [2, 0, 1] }, inputs: [{ shape: [2, 3, 4] }] },
  { name: 'GlobalAveragePool', op: 'GlobalAveragePool', inputs: [{ shape: [2, 3, 4, 5] }] },
  {
    name: 'Gemm transB with bias',
    op: 'Gemm',
    attrs: { alpha: 1, beta: 1, transB: 1 },
    inputs: [{ shape: [4, 6] }, { shape: [3, 6] }, { shape: [3] }],
  },
  {
    name: 'Gemm transA, α and β',
    op: 'Gemm',
    attrs: { alpha: 0.5, beta: 2, transA: 1 },
    inputs: [{ shape: [6, 4] }, { shape: [6, 3] }, { shape: [4, 3] }],
  },
  { name: 'Gemm plain', op: 'Gemm', inputs: [{ shape: [5, 4] }, { shape: [4, 3] }] },
  { name: 'MatMul 2-D', op: 'MatMul', inputs: [{ shape: [4, 6] }, { shape: [6, 3] }] },
  { name: 'MatMul batched', op: 'MatMul', inputs: [{ shape: [2, 4, 6] }, { shape: [2, 6, 3] }] },
  {
    name: 'Slice step 2 (ResNet shortcut)',
    op: 'Slice',
    inputs: [{ shape: [2, 3, 8, 8] }, { ints: [0] }, { ints: [2 ** 63] }, { ints: [2] }, { ints: [2] }],
  },
  {
    name: 'Slice offset, negative end, step 3',
    op: 'Slice',
    inputs: [{ shape: [2, 10, 7] }, { ints: [1, 2] }, { ints: [-1, 7] }, { ints: [1, 2] }, { ints: [3, 1] }],
  },
  {
    name: 'Pad channels (ResNet shortcut)',
    op: 'Pad',
    attrs: { mode: 'constant' },
    inputs: [{ shape: [2, 3, 4, 4] }, { ints: [0, 2, 0, 1, 0, 2, 0, 0] }],
  },
  { name: 'Concat axis 1', op: 'Concat', attrs: { axis: 1 }, inputs: [{ shape: [2, 3] }, { shape: [2, 2] }] },
  {
    name: 'Split, one output unused downstream',
    op: 'Split',
    attrs: { axis: 0 },
    inputs: [{ shape: [7, 3] }, { ints: [3, 4] }],
    outputs: 2,
  },
];

for (const c of CASES) {
  void test(
    `gradient rule ${c.name}: onnxruntime matches tfjs and finite differences`,
    { skip: NEEDS_ORT },
    async () => {
      assert.ok(Object.hasOwn(GRADIENT_RULES, c.op));
      await checkCase(c);
    },
  );
}

void test('every rule in the table is exercised by a case above', () => {
  const covered = new Set(CASES.map((c) => c.op));
  const missing = Object.keys(GRADIENT_RULES).filter((op) => !covered.has(op) && op !== 'Identity' && op !== 'Dropout');
  assert.deepEqual(missing, []);
});

void test('an op without a rule, and attributes a rule refuses, are named in the reason', () => {
  const shapes = new Map<string, readonly number[]>([
    ['x', [1, 2, 4, 4]],
    ['w', [2, 2, 3, 3]],
    ['y', [1, 2, 4, 4]],
    ['z', [1, 2, 4, 4]],
  ]);
  const g = new OnnxGraphBuilder(shapes, new Map());
  const conv: Node = { op: 'Conv', name: 'c', inputs: ['x', 'w'], outputs: ['y'], attrs: { auto_pad: 'SAME_UPPER' } };
  const tanh: Node = { op: 'Tanh', name: 't', inputs: ['y'], outputs: ['z'], attrs: {} };
  const seeds = new Map([['z', 'dz']]);
  assert.match(
    missingGradientRule({ nodes: [{ ...conv, attrs: {} }, tanh], seeds, wrt: ['w'] }, g) ?? '',
    /has no gradient rule on the native engine: Tanh$/,
  );
  assert.match(
    missingGradientRule({ nodes: [conv], seeds: new Map([['y', 'dy']]), wrt: ['w'] }, g) ?? '',
    /Conv node c has no gradient rule on the native engine: Conv with auto_pad SAME_UPPER/,
  );
  // A node off every path from the wanted values to the seeds needs no rule.
  assert.equal(
    missingGradientRule({ nodes: [{ ...conv, attrs: {} }, tanh], seeds: new Map([['y', 'dy']]), wrt: ['w'] }, g),
    undefined,
  );
});
