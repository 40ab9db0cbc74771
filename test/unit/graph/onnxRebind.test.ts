/**
 * Re-emitting ONNX models with weights bound by name: the ResNet-20 with its convolution weights as graph inputs
 * imports back with those names as inputs and no longer as initializers, replaced values are the ones stored, a
 * Constant node's value can be bound, a float16 weight is fed as float32 through a Cast (run in onnxruntime), and names that are not floating-point weights
 * of the graph are refused with a sentence.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FileByteSource, MemoryByteSource, siblingOpenerFor } from '../../../src/core/io/byteSource';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { importOnnx, loadOnnxModel } from '../../../src/core/graph/onnxImport';
import { FLOAT32_FEED_SUFFIX, rewriteOnnxWeights } from '../../../src/core/graph/onnxRebind';
import { ProtoReader, WIRE_VARINT } from '../../../src/core/containers/protobuf';
import { ProtoWriter } from '../../../src/core/containers/protobufWriter';
import { seededRandom } from './helpers';
import { buildOnnx } from '../../helpers/protobuf';
import { loadOrt, ortSkip, runOrt } from '../../helpers/ort';

const RESNET = 'test/fixtures/models/resnet20_fmnist.onnx';

async function reimport(bytes: Uint8Array): ReturnType<typeof importOnnx> {
  // The rewritten models here hold all their data inline: no sibling file is ever opened.
  return importOnnx(new MemoryByteSource(bytes, 'rewritten.onnx'), {
    path: RESNET,
    siblings: siblingOpenerFor(RESNET),
  });
}

test('ResNet-20: convolution weights become float32 graph inputs; the rest is kept', async () => {
  const { graph, weights } = await loadOnnxModel(RESNET);
  const convs = graph.nodes.filter((n) => n.op === 'Conv').map((n) => n.inputs[1] ?? '');
  assert.equal(convs.length, 19);
  const source = await FileByteSource.open(RESNET);
  try {
    const rebound = await rewriteOnnxWeights(source, graph, { inputs: convs });
    assert.deepEqual(
      rebound.inputs.map((w) => w.feed),
      convs,
    );
    const back = await reimport(rebound.bytes);
    assert.deepEqual(
      back.graph.inputs.map((i) => i.name),
      ['input', ...convs],
    );
    for (const name of convs) {
      assert.equal(back.graph.initializers.has(name), false, name);
      const input = back.graph.inputs.find((i) => i.name === name);
      assert.deepEqual(input?.shape, graph.initializers.get(name)?.shape);
      assert.equal(input?.dtype, 'F32');
    }
    assert.equal(back.graph.nodes.length, graph.nodes.length);
    assert.equal(back.graph.initializers.size, graph.initializers.size - convs.length);
    for (const [name, values] of back.weights) assert.deepEqual(values, weights.get(name), name);
  } finally {
    await source.close();
  }
});

test('ResNet-20: replaced weights hold the given values, under the same names', async () => {
  const { graph } = await loadOnnxModel(RESNET);
  const name = graph.nodes.find((n) => n.op === 'Conv')?.inputs[1] ?? '';
  const shape = graph.initializers.get(name)?.shape ?? [];
  const values = seededRandom(
    5,
    shape.reduce((a, b) => a * b, 1),
  );
  const source = await FileByteSource.open(RESNET);
  try {
    const rebound = await rewriteOnnxWeights(source, graph, { values: new Map([[name, values]]) });
    assert.deepEqual(rebound.inputs, []);
    const back = await reimport(rebound.bytes);
    assert.deepEqual(
      back.graph.inputs.map((i) => i.name),
      ['input'],
    );
    assert.deepEqual(back.weights.get(name), values);
    assert.deepEqual(back.graph.initializers.get(name)?.shape, shape);
  } finally {
    await source.close();
  }
});

test('wake-word MLP: a value held by a Constant node is bound too; its Constant node is dropped', async () => {
  const file = 'test/fixtures/published/openwakeword/hello_deepa.onnx';
  const { graph } = await loadOnnxModel(file);
  const name = '/layernorm1/Constant_1_output_0';
  assert.equal(graph.initializers.get(name)?.constant, true);
  const source = await FileByteSource.open(file);
  try {
    const rebound = await rewriteOnnxWeights(source, graph, {
      inputs: [name],
      values: new Map([['layer1.bias', new Float32Array(32)]]),
    });
    const back = await reimport(rebound.bytes);
    assert.deepEqual(
      back.graph.inputs.map((i) => i.name),
      [graph.inputs[0]?.name, name],
    );
    assert.deepEqual(back.graph.inputs[1]?.shape, []);
    assert.equal(back.graph.initializers.has(name), false);
    assert.deepEqual(back.weights.get('layer1.bias'), new Float32Array(32));
    assert.equal(back.graph.initializers.size, graph.initializers.size - 1);
  } finally {
    await source.close();
  }
});

/** y = float32(float16(x) + w) with w a float16 initializer [4] (the test builder writes float32 and int64 only). */
function float16Model(w: Uint16Array): Uint8Array {
  const model = buildOnnx({
    opset: 13,
    inputs: [{ name: 'x', shape: [1, 4] }],
    outputs: ['y'],
    nodes: [
      { op: 'Cast', inputs: ['x'], outputs: ['xh'], attrs: { to: 10 } },
      { op: 'Add', inputs: ['xh', 'w'], outputs: ['yh'] },
      { op: 'Cast', inputs: ['yh'], outputs: ['y'], attrs: { to: 1 } },
    ],
  });
  const tensor = new ProtoWriter()
    .packedVarints(1, [4])
    .varint(2, 10)
    .string(8, 'w')
    .bytes(9, new Uint8Array(w.buffer))
    .finish();
  const out = new ProtoWriter();
  const r = new ProtoReader(model);
  for (let f = r.next(); f !== undefined; f = r.next()) {
    if (f.wireType === WIRE_VARINT) out.varint(f.field, f.varint);
    else if (f.field === 7) out.bytes(7, new ProtoWriter().raw(r.payload(f)).bytes(5, tensor).finish());
    else out.bytes(f.field, r.payload(f));
  }
  return out.finish().slice();
}

const ort = loadOrt();

test(
  'a float16 weight is fed as float32 and cast back inside the graph',
  { skip: ortSkip(typeof ort === 'string' ? ort : undefined) },
  async () => {
    if (typeof ort === 'string') assert.fail(ort);
    // float16 bits of 1, −2, 0.5, 0.
    const bytes = float16Model(Uint16Array.of(0x3c00, 0xc000, 0x3800, 0));
    const { graph } = await reimport(bytes);
    assert.equal(graph.initializers.get('w')?.dtype, 'F16');
    const x = { data: Float32Array.of(1, 2, 3, 4), dims: [1, 4] };
    assert.deepEqual([...((await runOrt(ort, bytes, { x })).y?.data ?? [])], [2, 0, 3.5, 4]);
    const rebound = await rewriteOnnxWeights(new MemoryByteSource(bytes, 'f16.onnx'), graph, { inputs: ['w'] });
    const feed = `w${FLOAT32_FEED_SUFFIX}`;
    assert.deepEqual(rebound.inputs, [{ name: 'w', feed, shape: [4] }]);
    const out = await runOrt(ort, rebound.bytes, { x, [feed]: { data: Float32Array.of(3, 0.25, -1, 8), dims: [4] } });
    assert.deepEqual([...(out.y?.data ?? [])], [4, 2.25, 2, 12]);
    const replaced = await rewriteOnnxWeights(new MemoryByteSource(bytes, 'f16.onnx'), graph, {
      values: new Map([['w', Float32Array.of(-1, -1, -1, -1)]]),
    });
    assert.deepEqual([...((await runOrt(ort, replaced.bytes, { x })).y?.data ?? [])], [0, 1, 2, 3]);
  },
);

test('names that are not floating-point weights of the graph are refused with a sentence', async () => {
  const { graph } = await loadOnnxModel(RESNET);
  const source = await FileByteSource.open(RESNET);
  try {
    await assert.rejects(
      rewriteOnnxWeights(source, graph, { inputs: ['no.such.weight'] }),
      (e: unknown) => e instanceof CheckpointFormatError && /has no weight named "no\.such\.weight"/.test(e.message),
    );
    const integer = [...graph.initializers].find(([, info]) => info.dtype === 'I64')?.[0];
    assert.ok(integer !== undefined, 'the ResNet-20 export holds int64 shape constants');
    await assert.rejects(
      rewriteOnnxWeights(source, graph, { inputs: [integer] }),
      (e: unknown) => e instanceof CheckpointFormatError && /is I64, not a floating-point weight/.test(e.message),
    );
    const conv = graph.nodes.find((n) => n.op === 'Conv')?.inputs[1] ?? '';
    await assert.rejects(
      rewriteOnnxWeights(source, graph, { values: new Map([[conv, new Float32Array(3)]]) }),
      (e: unknown) => e instanceof CheckpointFormatError && /needs \d+ values, got 3/.test(e.message),
    );
  } finally {
    await source.close();
  }
});
