/**
 * The lowering of the graph IR to ONNX (`onnxLowering.ts`) against the TensorFlow.js executor: onnxruntime on the
 * lowered graph must match `executeGraph` to 1e-5 relative (max |Δ| / max |ref|) on a Sequential model holding every
 * supported layer (a dilated convolution among them) and a Functional model with merges, nested models, a shared
 * layer, every activation and the UpscalerJS custom layers, both saved by tfjs-layers with seeded weights; on the
 * quantised TF.js fixture (weights stored as uint8, uint16 and float16); on the
 * ResNet-20 ONNX export re-emitted through the IR; with a weight taken as a graph input (the forward pieces a
 * training graph appends to), fed perturbed values; and an operator without an ONNX form is refused naming it.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../../src/core/backend/tfjsBackend';
import { executeGraph, weightTensors } from '../../../src/core/graph/execute';
import type { Graph } from '../../../src/core/graph/ir';
import { loadLayersModel, registerCustomLayer } from '../../../src/core/graph/layersImport';
import { loadOnnxModel } from '../../../src/core/graph/onnxImport';
import { describeRefusal, lowerGraph, lowerGraphNodes } from '../../../src/core/graph/onnxLowering';
import { modelProto } from '../../../src/core/backend/onnxGraph';
import { BadInputError } from '../../../src/core/io/errors';
import { FIXTURES } from '../../helpers/fixtures';
import { functionalModel, randomiseWeights, sequentialModel, tfjsSave } from '../../helpers/layersModels';
import { loadOrt, ortSkip, runOrt, type Ort } from '../../helpers/ort';
import { relativeMaxError, seededRandom } from './helpers';

const TOLERANCE = 1e-5;
const RESNET = join(FIXTURES, 'models', 'resnet20_fmnist.onnx');
const QUANTISED = join(FIXTURES, 'tfjs', 'layers', 'model.json');
const ort = loadOrt();
const skip = ortSkip(typeof ort === 'string' ? ort : undefined);

before(async () => {
  await initBackend('wasm');
});

function needOrt(): Ort {
  if (typeof ort === 'string') assert.fail(ort);
  return ort;
}

/** The executor's outputs of `graph` on `weights` and one input. */
function reference(
  graph: Graph,
  weights: ReadonlyMap<string, Float32Array>,
  input: Float32Array,
  shape: number[],
): Float32Array[] {
  const before = tf.memory().numTensors;
  const w = weightTensors(graph, weights);
  const x = tf.tensor(input, shape);
  const [info] = graph.inputs;
  assert.ok(info);
  const out = executeGraph(graph, w, { [info.name]: x });
  const values = graph.outputs.map((name) => {
    const t = out[name];
    assert.ok(t, name);
    return t.dataSync() as Float32Array;
  });
  tf.dispose([x, ...Object.values(out), ...Object.values(w)]);
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  return values;
}

/** Lowers `graph`, runs it in onnxruntime and asserts every output matches the executor. */
async function assertLoweredMatches(
  graph: Graph,
  weights: ReadonlyMap<string, Float32Array>,
  input: Float32Array,
  shape: number[],
  label: string,
): Promise<void> {
  const lowered = lowerGraph(graph, weights);
  assert.ok(lowered.ok, lowered.ok ? '' : describeRefusal(lowered.refusal));
  const [info] = graph.inputs;
  assert.ok(info);
  const out = await runOrt(needOrt(), lowered.value.bytes, { [info.name]: { data: input, dims: shape } });
  const refs = reference(graph, weights, input, shape);
  graph.outputs.forEach((name, i) => {
    const o = out[name];
    const r = refs[i];
    assert.ok(o && r, `${label}: output ${name}`);
    assert.equal(o.data.length, r.length, `${label}: size of ${name}`);
    const err = relativeMaxError(o.data, r);
    assert.ok(err <= TOLERANCE, `${label} output ${name}: relative max error ${err}`);
  });
}

for (const [label, build, shape] of [
  ['a Sequential model of every supported layer', () => sequentialModel(true), [2, 12, 12, 3]],
  [
    'a Functional model (merges, nested models, shared layer, activations, UpscalerJS layers)',
    functionalModel,
    [2, 6, 6, 4],
  ],
] as const) {
  test(`${label}: onnxruntime on the lowered graph matches the executor to ${TOLERANCE}`, { skip }, async () => {
    const model = build();
    randomiseWeights(model, 1300);
    const path = await tfjsSave(model);
    model.dispose();
    try {
      const { graph, weights } = await loadLayersModel(path);
      const n = shape.reduce((a, b) => a * b, 1);
      await assertLoweredMatches(graph, weights, seededRandom(17, n), [...shape], label);
    } finally {
      rmSync(dirname(path), { recursive: true, force: true });
    }
  });
}

test(
  'the quantised TF.js fixture (weights stored as uint8, uint16 and float16, dequantised) lowers and matches',
  { skip },
  async () => {
    const { graph, weights } = await loadLayersModel(QUANTISED);
    await assertLoweredMatches(graph, weights, seededRandom(19, 2 * 16 * 16 * 3), [2, 16, 16, 3], 'quantised');
  },
);

test('the ResNet-20 ONNX export re-emitted through the IR matches the executor', { skip }, async () => {
  const { graph, weights } = await loadOnnxModel(RESNET);
  await assertLoweredMatches(graph, weights, seededRandom(23, 4 * 28 * 28, 0, 1), [4, 1, 28, 28], 'ResNet-20');
});

test(
  'a weight taken as a graph input: the forward pieces run on values fed per run, as the executor does',
  { skip },
  async () => {
    const { graph, weights } = await loadOnnxModel(RESNET);
    const conv = graph.nodes.find((n) => n.op === 'Conv');
    const name = conv?.inputs[1] ?? '';
    const own = weights.get(name);
    assert.ok(own);
    const lowered = lowerGraphNodes(graph, weights, { weightsAsInputs: [name], nodePrefix: 'f' });
    assert.ok(lowered.ok);
    const pieces = lowered.value;
    assert.deepEqual(pieces.weightInputs, [{ name, feed: name, shape: graph.initializers.get(name)?.shape }]);
    // The value names are the IR's: inputs, weights, every node output.
    for (const v of [graph.inputs[0]?.name ?? '', name, ...graph.nodes.flatMap((n) => n.outputs)])
      assert.ok(pieces.valueNames.has(v), v);
    const bytes = modelProto('forward', pieces.nodes, pieces.inits, pieces.inputs, pieces.outputs, pieces.opset);
    const moved = own.map((v, i) => v * (1 + 0.1 * Math.sin(i)));
    const x = seededRandom(29, 2 * 28 * 28, 0, 1);
    const input = graph.inputs[0]?.name ?? '';
    const kernelDims = [...(graph.initializers.get(name)?.shape ?? [])];
    const out = await runOrt(needOrt(), bytes, {
      [input]: { data: x, dims: [2, 1, 28, 28] },
      [name]: { data: moved, dims: kernelDims },
    });
    const logits = out[graph.outputs[0] ?? '']?.data;
    assert.ok(logits);
    const [ref] = reference(graph, new Map([...weights, [name, moved]]), x, [2, 1, 28, 28]);
    assert.ok(ref);
    assert.ok(relativeMaxError(logits, ref) <= TOLERANCE, `relative max error ${relativeMaxError(logits, ref)}`);
    const [base] = reference(graph, weights, x, [2, 1, 28, 28]);
    assert.ok(base && relativeMaxError(base, ref) > 100 * TOLERANCE, 'the fed weight changed the logits');
    assert.throws(
      () => lowerGraphNodes(graph, weights, { weightsAsInputs: ['no-such-weight'] }),
      (e: unknown) => e instanceof BadInputError && /no floating-point weight named "no-such-weight"/.test(e.message),
    );
  },
);

test('an operator without an ONNX form is refused, naming the operator and the layer', async () => {
  // A custom layer computing GELU with ONNX's Gelu, which the executor runs and ONNX opset 17 lacks (opset 20).
  registerCustomLayer('OnnxGelu', (ctx) => ({ op: 'Gelu', inputs: [ctx.inputs[0] ?? ''] }));
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [3], units: 2, name: 'first' }),
      tfl.layers.activation({ activation: 'relu', name: 'gelu_here' }),
    ],
  });
  const path = await tfjsSave(model);
  model.dispose();
  try {
    const json = readFileSync(path, 'utf8').replace('"class_name":"Activation"', '"class_name":"OnnxGelu"');
    writeFileSync(path, json);
    const { graph, weights } = await loadLayersModel(path);
    const lowered = lowerGraph(graph, weights);
    assert.equal(lowered.ok, false);
    assert.deepEqual(lowered.refusal, {
      kind: 'layer',
      op: 'Gelu',
      node: 'gelu_here',
      detail: 'ONNX opset 17 has no Gelu (it came in opset 20)',
    });
    assert.equal(
      describeRefusal(lowered.refusal),
      'layer "gelu_here" (op Gelu): ONNX opset 17 has no Gelu (it came in opset 20)',
    );
  } finally {
    rmSync(dirname(path), { recursive: true, force: true });
  }
});
