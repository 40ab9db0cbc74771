// File-given names that are also Object.prototype's (`__proto__`, `constructor`, `toString`, `valueOf`) are plain
// names to the graph importer and executor: weights, inputs, outputs, attributes and operators are looked up as own
// entries only, so such a model runs correctly or fails with a clear message, never with a prototype's value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { MemoryByteSource } from '../../../src/core/io/byteSource';
import { importOnnx } from '../../../src/core/graph/onnxImport';
import { executeGraph, weightTensors } from '../../../src/core/graph/execute';
import type { Graph } from '../../../src/core/graph/ir';
import { buildOnnx } from '../../helpers/protobuf';

async function importModel(bytes: Uint8Array): ReturnType<typeof importOnnx> {
  return importOnnx(new MemoryByteSource(bytes, 'names.onnx'), {
    path: 'names.onnx',
    siblings: { open: () => Promise.reject(new Error('no siblings')) },
  });
}

void test('a Gemm whose weight, bias, input and output are named after prototype members runs correctly', async () => {
  await tf.setBackend('cpu');
  const bytes = buildOnnx({
    opset: 13,
    inputs: [{ name: 'toString', shape: [1, 2] }],
    outputs: ['valueOf'],
    nodes: [
      {
        op: 'Gemm',
        inputs: ['toString', 'constructor', '__proto__'],
        outputs: ['valueOf'],
        attrs: { ['__proto__']: 1, transB: 0 },
      },
    ],
    initializers: [
      { name: 'constructor', shape: [2, 3], values: [1, 2, 3, 4, 5, 6] },
      { name: '__proto__', shape: [3], values: [10, 20, 30] },
    ],
  });
  const { graph, weights } = await importModel(bytes);
  assert.deepEqual([...graph.initializers.keys()].sort(), ['__proto__', 'constructor']);
  const before = tf.memory().numTensors;
  const w = weightTensors(graph, weights);
  assert.ok(Object.hasOwn(w, '__proto__') && Object.hasOwn(w, 'constructor'));
  const x = tf.tensor2d([[1, -1]]);
  const out = executeGraph(graph, w, { toString: x });
  assert.ok(Object.hasOwn(out, 'valueOf'));
  const y = Object.getOwnPropertyDescriptor(out, 'valueOf')?.value as unknown;
  assert.ok(y instanceof tf.Tensor);
  // [1, -1] · [[1, 2, 3], [4, 5, 6]] + [10, 20, 30]
  assert.deepEqual(Array.from(y.dataSync()), [7, 17, 27]);
  tf.dispose([x, y, ...Object.values(w)]);
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
});

void test('a missing weight or input named after a prototype member is reported missing, not found on the prototype', async () => {
  await tf.setBackend('cpu');
  const bytes = buildOnnx({
    opset: 13,
    inputs: [{ name: 'x', shape: [1, 2] }],
    outputs: ['y'],
    nodes: [{ op: 'Add', inputs: ['x', 'constructor'], outputs: ['y'] }],
    initializers: [{ name: 'constructor', shape: [2], values: [1, 2] }],
  });
  const { graph } = await importModel(bytes);
  const x = tf.tensor2d([[1, 2]]);
  assert.throws(() => executeGraph(graph, {}, { x }), /The weight "constructor" the graph needs was not provided/);
  assert.throws(
    () => executeGraph({ ...graph, initializers: new Map() }, {}, {}),
    /The graph input "x" was not provided/,
  );
  x.dispose();
});

void test('an operator named after a prototype member is unsupported, not called', () => {
  const graph: Graph = {
    inputs: [],
    outputs: ['y'],
    nodes: [{ op: 'constructor', name: 'n0', inputs: [], outputs: ['y'], attrs: {} }],
    initializers: new Map(),
    opset: 13,
  };
  assert.throws(() => executeGraph(graph, {}, {}), /ONNX operator constructor \(node n0\) is not supported/);
});
