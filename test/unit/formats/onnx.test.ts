// The ONNX reader on models written by the real `onnx` package (test/fixtures/onnx, made by
// test/fixtures/make/onnx.py), on published models (BlazeFace, a wake-word MLP), on hand-encoded protobuf for what
// the Python package cannot write (unpacked fields, float8/4-bit/2-bit types), and on damaged and hostile files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openWith, type ManifestFile, hostileCases, readEveryTensor } from '../../helpers/fixtures';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnxFormat } from '../../../src/core/formats/onnx';
import type { Checkpoint, OpenContext } from '../../../src/core/formats/types';
import { MemoryByteSource, type ByteSource } from '../../../src/core/io/byteSource';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { readTensorValues, type TensorEntry } from '../../../src/core/tensors/tensor';
import {
  cat,
  f32field,
  graphProto,
  lbytes,
  lfield,
  modelProto,
  nodeProto,
  sfield,
  tensorProto,
  varint,
  vfield,
  type TensorSpec,
} from '../../helpers/protobuf';
import { tensorStatistics } from '../../../src/core/tensors/stats';

const FIXTURES = join(__dirname, '..', '..', 'fixtures');

const openFile = (path: string): Promise<Checkpoint> => openWith(onnxFormat, path);

function memoryContext(name: string): OpenContext {
  return {
    path: name,
    siblings: { open: (rel: string) => Promise.reject(new CheckpointFormatError(`no sibling ${rel} in memory`)) },
  };
}

async function openBytes(data: Uint8Array, name = 'hand.onnx'): Promise<Checkpoint> {
  return onnxFormat.open(new MemoryByteSource(data, name), memoryContext(name));
}

function closeTo(actual: number, expected: number, what: string): void {
  const tol = 1e-6 * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: read ${actual}, expected ${expected}`);
}

async function compare(checkpoint: Checkpoint, file: ManifestFile): Promise<void> {
  assert.equal(checkpoint.format, 'onnx');
  assert.equal(checkpoint.tensors.length, file.tensors);
  assert.deepEqual(
    checkpoint.tensors.map((t) => t.name),
    file.entries.map((e) => e.name),
    'names in order',
  );
  for (const [i, expected] of file.entries.entries()) {
    const t = checkpoint.tensors[i]!;
    assert.equal(t.dtype, expected.dtype, `${t.name} dtype`);
    assert.deepEqual(t.shape, expected.shape, `${t.name} shape`);
    if (expected.sum === undefined) continue;
    const values = await readTensorValues(t);
    let sum = 0;
    let squares = 0;
    for (const v of values) {
      sum += v;
      squares += v * v;
    }
    closeTo(sum, expected.sum, `${t.name} sum`);
    closeTo(squares, expected.sumSquares!, `${t.name} sum of squares`);
    expected.first!.forEach((v, k) => {
      closeTo(values[k]!, v, `${t.name}[${k}]`);
    });
  }
}

function manifest(group: string): ManifestFile[] {
  const parsed = JSON.parse(readFileSync(join(FIXTURES, group, 'manifest.json'), 'utf8')) as { files: ManifestFile[] };
  return parsed.files.filter((f) => f.format === 'onnx');
}

for (const group of ['onnx', 'published']) {
  for (const file of manifest(group)) {
    void test(`${group}/${file.file} matches the manifest written with the onnx package`, async () => {
      const checkpoint = await openFile(join(FIXTURES, group, file.file));
      try {
        await compare(checkpoint, file);
      } finally {
        await checkpoint.close();
      }
    });
  }
}

void test('metadata, subgraph naming and notes of the mixed model', async () => {
  const c = await openFile(join(FIXTURES, 'onnx', 'mixed.onnx'));
  try {
    assert.equal(c.description, 'ONNX (IR 8, opset 13)');
    const m = c.metadata;
    assert.equal(m.ir_version, 8);
    assert.equal(m.opset, 'ai.onnx 13');
    assert.equal(m.producer, 'weight-lens-fixtures 1');
    assert.equal(m.graph, 'mixed');
    assert.equal(m.nodes, 12);
    assert.equal(m.subgraphs, 3);
    assert.equal(m['nodes (all graphs)'], 12 + 2 + 2 + 2);
    assert.equal(m['op.If'], 1);
    assert.equal(m['op.Loop'], 1);
    assert.equal(m['op.Constant'], 6);
    assert.equal(m['sparse initializers'], 1);
    assert.equal(m['meta.purpose'], 'reader test');
    assert.equal(m.inputs, 'x F32[1, 3, 8, 8]');
    assert.equal(m.outputs, 'y F32[1, 4]');
    const byName = new Map(c.tensors.map((t) => [t.name, t]));
    assert.match(
      byName.get('branch/then_branch/branch_w')!.note!,
      /in subgraph branch\/then_branch; named "branch_w" in the file/,
    );
    assert.match(byName.get('then_c')!.note!, /from Constant node "then_const"; in subgraph branch\/then_branch/);
    assert.equal(byName.get('body.weight')!.note, 'in subgraph loop/body');
    assert.match(byName.get('typed.int64_data')!.note!, /int64_data/);
    assert.match(byName.get('sparse.weight')!.note!, /sparse: 3 stored values/);
    assert.equal(byName.get('conv.weight')!.note, undefined);
    assert.equal(byName.get('conv.weight')!.bytes, 4 * 3 * 3 * 3 * 4);
  } finally {
    await c.close();
  }
});

void test('external data is read from the sibling file named by the tensor', async () => {
  const c = await openFile(join(FIXTURES, 'onnx', 'external', 'model.onnx'));
  try {
    assert.equal(c.description, 'ONNX (IR 8, opset 13, external data)');
    assert.equal(c.metadata['external data files'], 'weights.bin');
    assert.equal(c.tensors[0]!.note, 'external data: weights.bin at byte 0');
    assert.equal(c.tensors[2]!.note, 'external data: weights.bin at byte 576');
  } finally {
    await c.close();
    await c.close();
  }
});

void test('the hostile ONNX corpus fails with the expected messages', async () => {
  const dir = join(FIXTURES, 'hostile', 'onnx');
  const cases = hostileCases('onnx');
  assert.ok(cases.length >= 5);
  for (const c of cases) {
    await assert.rejects(readEveryTensor(openFile(join(dir, c.file))), (error: unknown) => {
      assert.ok(error instanceof CheckpointFormatError, `${c.file}: ${String(error)}`);
      assert.match(error.message, new RegExp(c.message, 'i'), c.file);
      assert.ok(!error.message.includes('\n'));
      return true;
    });
  }
});

// --- hand-encoded models (test/helpers/protobuf.ts) ---
const model = (inits: TensorSpec[], nodes: number[][] = []): Uint8Array =>
  modelProto(graphProto('g', nodes, inits.map(tensorProto)));

async function valuesOf(t: TensorEntry): Promise<number[]> {
  return Array.from(await readTensorValues(t));
}

void test('unpacked dims and unpacked float_data/int64_data fields', async () => {
  const c = await openBytes(
    model([
      {
        name: 'f',
        dims: [2, 2],
        type: 1,
        extra: [...f32field(4, 1.5), ...f32field(4, -2), ...f32field(4, 0.25), ...f32field(4, 8)],
      },
      { name: 'i', dims: [3], type: 7, extra: [...vfield(7, -5), ...vfield(7, 2n ** 40n), ...vfield(7, 0)] },
      { name: 'mixed', dims: [3], type: 6, extra: [...vfield(5, 1), ...lfield(5, [...varint(-2), ...varint(3)])] },
    ]),
  );
  assert.deepEqual(
    c.tensors.map((t) => t.dtype),
    ['F32', 'I64', 'I32'],
  );
  assert.deepEqual(await valuesOf(c.tensors[0]!), [1.5, -2, 0.25, 8]);
  assert.deepEqual(await valuesOf(c.tensors[1]!), [-5, 2 ** 40, 0]);
  assert.deepEqual(await valuesOf(c.tensors[2]!), [1, -2, 3]);
  assert.equal(c.metadata.opset, 'ai.onnx 21');
});

void test('float8, E8M0, 4-bit and 2-bit types decode from raw_data', async () => {
  const c = await openBytes(
    model([
      { name: 'e4m3fn', dims: [4], type: 17, raw: [0x38, 0xb8, 0x7e, 0x7f] },
      { name: 'e4m3fnuz', dims: [4], type: 18, raw: [0x40, 0xc0, 0x80, 0x7f] },
      { name: 'e5m2', dims: [3], type: 19, raw: [0x3c, 0x7c, 0x7f] },
      { name: 'e5m2fnuz', dims: [3], type: 20, raw: [0x40, 0x80, 0x01] },
      { name: 'e8m0', dims: [3], type: 24, raw: [127, 130, 255] },
      { name: 'uint4', dims: [3], type: 21, raw: [0x21, 0x0f] },
      { name: 'int4', dims: [2, 2], type: 22, raw: [0xf7, 0x08] },
      { name: 'float4', dims: [4], type: 23, raw: [0x21, 0xf7] },
      { name: 'int2', dims: [5], type: 26, raw: [0b11100100, 0b10] },
      { name: 'uint2', dims: [4], type: 25, raw: [0b11100100] },
    ]),
  );
  const v = new Map<string, number[]>();
  for (const t of c.tensors) v.set(t.name, await valuesOf(t));
  assert.deepEqual(v.get('e4m3fn'), [1, -1, 448, NaN]);
  assert.deepEqual(v.get('e4m3fnuz'), [1, -1, NaN, 240]);
  assert.deepEqual(v.get('e5m2'), [1, Infinity, NaN]);
  assert.deepEqual(v.get('e5m2fnuz'), [1, NaN, 2 ** -17]);
  assert.deepEqual(v.get('e8m0'), [1, 8, NaN]);
  assert.deepEqual(v.get('uint4'), [1, 2, 15]);
  assert.deepEqual(v.get('int4'), [7, -1, -8, 0]);
  assert.deepEqual(v.get('float4'), [0.5, 1, 6, -6]);
  assert.deepEqual(v.get('int2'), [0, 1, -2, -1, -2]);
  assert.deepEqual(v.get('uint2'), [0, 1, 2, 3]);
  const int4 = c.tensors.find((t) => t.name === 'int4')!;
  assert.equal(int4.dtype, 'INT4');
  assert.equal(int4.bytes, 2);
  // Chunked streaming of packed types keeps element order.
  const chunks: number[] = [];
  for await (const chunk of c.tensors.find((t) => t.name === 'int2')!.values({ maxElements: 2 })) chunks.push(...chunk);
  assert.deepEqual(chunks, [0, 1, -2, -1, -2]);
});

void test('typed float8/float16/bf16 in int32_data, and types listed but not decoded', async () => {
  const c = await openBytes(
    model([
      { name: 'f8', dims: [2], type: 17, extra: lfield(5, [...varint(0x38), ...varint(0xb8)]) },
      { name: 'f16', dims: [1], type: 10, extra: vfield(5, 0x3c00) },
      { name: 'bf16', dims: [1], type: 16, extra: vfield(5, 0xbf80) },
      { name: 'str', dims: [2], type: 8, extra: [...sfield(6, 'a'), ...sfield(6, 'bc')] },
      { name: 'cplx', dims: [1], type: 14, raw: new Uint8Array(8) },
      { name: 'odd', dims: [2], type: 99, raw: [1, 2] },
      { name: 'int4typed', dims: [2], type: 22, extra: vfield(5, 0x21) },
    ]),
  );
  assert.deepEqual(await valuesOf(c.tensors[0]!), [1, -1]);
  assert.deepEqual(await valuesOf(c.tensors[1]!), [1]);
  assert.deepEqual(await valuesOf(c.tensors[2]!), [-1]);
  for (const [i, dtype] of [
    [3, 'STRING'],
    [4, 'COMPLEX64'],
    [5, 'data_type 99'],
    [6, 'INT4'],
  ] as const) {
    const t = c.tensors[i]!;
    assert.equal(t.dtype, dtype);
    assert.ok(t.notDecodedReason, `${t.name} is not decoded`);
    await assert.rejects(readTensorValues(t), CheckpointFormatError);
  }
  assert.equal(c.tensors[3]!.bytes, 3);
});

void test('Constant attributes other than value, GRAPHS attributes and colliding names', async () => {
  const sub = (w: number): number[] =>
    graphProto(
      's',
      [nodeProto('Constant', ['k'], [[...sfield(1, 'value_ints'), ...lfield(8, [...varint(4), ...varint(-4)])]])],
      [tensorProto({ name: 'w', dims: [1], type: 1, raw: new Uint8Array(new Float32Array([w]).buffer) })],
    );
  const scan = nodeProto(
    'Scan',
    ['y'],
    [[...sfield(1, 'bodies'), ...lfield(11, sub(1)), ...lfield(11, sub(2))]],
    'scan',
  );
  const nodes = [
    nodeProto('Constant', ['a'], [[...sfield(1, 'value_float'), ...f32field(2, 2.5)]]),
    nodeProto('Constant', ['b'], [[...sfield(1, 'value_floats'), ...f32field(7, 1), ...f32field(7, 2)]]),
    nodeProto('Constant', ['s'], [[...sfield(1, 'value_string'), ...sfield(4, 'hi')]]),
    nodeProto('Constant', [], [[...sfield(1, 'value_int'), ...vfield(3, -7)]], 'named'),
    scan,
  ];
  const c = await openBytes(model([{ name: 'w', dims: [1], type: 1, raw: new Uint8Array(4) }], nodes));
  assert.deepEqual(
    c.tensors.map((t) => t.name),
    ['w', 'a', 'b', 's', 'named.value', 'scan/bodies[0]/w', 'scan/bodies[0]/k', 'scan/bodies[1]/w', 'scan/bodies[1]/k'],
  );
  assert.deepEqual(await valuesOf(c.tensors[1]!), [2.5]);
  assert.deepEqual(c.tensors[1]!.shape, []);
  assert.deepEqual(await valuesOf(c.tensors[2]!), [1, 2]);
  assert.equal(c.tensors[3]!.dtype, 'STRING');
  assert.deepEqual(await valuesOf(c.tensors[4]!), [-7]);
  assert.deepEqual(await valuesOf(c.tensors[7]!), [2]);
  assert.deepEqual(await valuesOf(c.tensors[8]!), [4, -4]);
  assert.equal(c.metadata.subgraphs, 2);
  assert.equal(c.metadata['op.Scan'], 1);
});

void test('a sparse Constant with coordinate indices is densified; bad indices are clear errors', async () => {
  const f32raw = (values: number[]): Uint8Array => new Uint8Array(new Float32Array(values).buffer);
  const i64raw = (values: number[]): Uint8Array => new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer);
  const sparse = (indices: number[]): number[] => [
    ...lfield(1, tensorProto({ name: 'v', dims: [2], type: 1, raw: f32raw([5, -1]) })),
    ...lfield(2, tensorProto({ name: 'i', dims: [2, 2], type: 7, raw: i64raw(indices) })),
    ...vfield(3, 2),
    ...vfield(3, 3),
  ];
  const node = (indices: number[]): number[] =>
    nodeProto('Constant', ['sp'], [[...sfield(1, 'sparse_value'), ...lfield(22, sparse(indices))]]);
  const c = await openBytes(model([], [node([1, 2, 0, 1])]));
  const t = c.tensors[0]!;
  assert.equal(t.name, 'sp');
  assert.deepEqual(t.shape, [2, 3]);
  assert.equal(t.bytes, 8 + 32);
  assert.deepEqual(await valuesOf(t), [0, -1, 0, 0, 0, 5]);
  const chunks: number[] = [];
  for await (const chunk of t.values({ maxElements: 4 })) chunks.push(...chunk);
  assert.deepEqual(chunks, [0, -1, 0, 0, 0, 5]);
  const bad = await openBytes(model([], [node([1, 3, 0, 0])]));
  await assert.rejects(readTensorValues(bad.tensors[0]!), /index 3 outside dimension 1 of size 3/);
});

/** Records the reads made through a source. */
class CountingSource implements ByteSource {
  readonly reads: number[] = [];
  constructor(private readonly inner: ByteSource) {}
  get size(): number {
    return this.inner.size;
  }
  get name(): string {
    return this.inner.name;
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    this.reads.push(length);
    return this.inner.read(offset, length);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

void test('opening never reads raw_data payloads; values stream them in bounded chunks', async () => {
  const big = new Float32Array(2 * 1024 * 1024).map((_, i) => (i % 7) - 3);
  const tensors: Uint8Array[] = [];
  for (let i = 0; i < 4; i++) {
    tensors.push(
      lbytes(
        5,
        cat(vfield(1, 1024), vfield(1, 2048), vfield(2, 1), sfield(8, `w${i}`), lbytes(9, new Uint8Array(big.buffer))),
      ),
    );
  }
  const bigModel = cat(vfield(1, 9), lbytes(7, cat(sfield(2, 'g'), ...tensors)));
  const source = new CountingSource(new MemoryByteSource(bigModel, 'big.onnx'));
  const c = await onnxFormat.open(source, memoryContext('big.onnx'));
  const total = source.reads.reduce((a, b) => a + b, 0);
  assert.ok(total < 512 * 1024, `open read ${total} bytes of a ${source.size}-byte model`);
  assert.ok(Math.max(...source.reads) <= 64 * 1024);
  source.reads.length = 0;
  let n = 0;
  let sum = 0;
  for await (const chunk of c.tensors[3]!.values({ maxElements: 100_000 })) {
    n += chunk.length;
    for (const v of chunk) sum += v;
  }
  assert.equal(n, big.length);
  assert.equal(
    sum,
    big.reduce((a, b) => a + b, 0),
  );
  assert.ok(Math.max(...source.reads) <= 400_000);
});

void test('inconsistent tensors fail with one clear sentence', async () => {
  const cases: [TensorSpec, RegExp][] = [
    [
      { name: 'short', dims: [4], type: 1, raw: new Uint8Array(15) },
      /tensor "short" has 15 B of raw_data but its shape \[4\] of FLOAT needs 16 B/,
    ],
    [{ name: 'long', dims: [1], type: 1, raw: new Uint8Array(5) }, /raw_data.*needs 4 B/],
    [{ name: 'empty', dims: [3], type: 1 }, /tensor "empty" has shape \[3\] but no data/],
    [{ name: 'count', dims: [3], type: 7, extra: lfield(7, [1, 2]) }, /has 2 typed values but its shape needs 3/],
    [{ name: 'foreign', dims: [1], type: 7, extra: f32field(4, 1) }, /is INT64 but stores values in float_data/],
    [{ name: 'neg', dims: [-1], type: 1, raw: [] }, /declares dimension -1/],
    [
      { name: 'huge', dims: [2n ** 62n, 4], type: 1, raw: new Uint8Array(16) },
      /declares dimension 4611686018427387904/,
    ],
    [{ name: 'wide', dims: [2 ** 21, 2 ** 21], type: 1, raw: [] }, /over 2\^40 elements/],
    [{ name: 'rank', dims: Array<number>(17).fill(1), type: 1, raw: [] }, /more than 16 dimensions/],
    [{ name: 'ext', dims: [1], type: 1, extra: vfield(14, 1) }, /external but names no location/],
  ];
  for (const [spec, pattern] of cases) {
    await assert.rejects(openBytes(model([spec])), (error: unknown) => {
      assert.ok(error instanceof CheckpointFormatError, `${spec.name}: ${String(error)}`);
      assert.match(error.message, pattern, spec.name);
      assert.match(error.message, /^hand\.onnx/, 'the message names the file');
      return true;
    });
  }
  await assert.rejects(openBytes(new Uint8Array(0)), /is empty/);
  await assert.rejects(openBytes(Uint8Array.from([...vfield(1, 8), ...sfield(2, 'x')])), /no graph/);
});

void test('external data: length and range are checked, and names are confined to the folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'onnx-ext-'));
  try {
    writeFileSync(join(dir, 'w.bin'), new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer));
    const ext = (entries: [string, string][]): number[] => [
      ...entries.flatMap(([k, v]) => lfield(13, [...sfield(1, k), ...sfield(2, v)])),
      ...vfield(14, 1),
    ];
    const write = (name: string, spec: TensorSpec): string => {
      const p = join(dir, name);
      writeFileSync(p, model([spec]));
      return p;
    };
    const good = await openFile(
      write('good.onnx', {
        name: 'w',
        dims: [2],
        type: 1,
        extra: ext([
          ['location', 'w.bin'],
          ['offset', '8'],
          ['length', '8'],
        ]),
      }),
    );
    assert.deepEqual(await valuesOf(good.tensors[0]!), [3, 4]);
    await good.close();
    await assert.rejects(
      openFile(
        write('len.onnx', {
          name: 'w',
          dims: [2],
          type: 1,
          extra: ext([
            ['location', 'w.bin'],
            ['length', '12'],
          ]),
        }),
      ),
      /has 12 B of external data in "w\.bin" but its shape \[2\] of FLOAT needs 8 B/,
    );
    await assert.rejects(
      openFile(
        write('past.onnx', {
          name: 'w',
          dims: [2],
          type: 1,
          extra: ext([
            ['location', 'w.bin'],
            ['offset', '12'],
          ]),
        }),
      ),
      /needs bytes 12–20 of external file "w\.bin", which has only 16 B/,
    );
    await assert.rejects(
      openFile(
        write('bad.onnx', {
          name: 'w',
          dims: [2],
          type: 1,
          extra: ext([
            ['location', 'w.bin'],
            ['offset', '-3'],
          ]),
        }),
      ),
      /invalid external data offset "-3"/,
    );
    await assert.rejects(
      openFile(write('abs.onnx', { name: 'w', dims: [2], type: 1, extra: ext([['location', '/etc/passwd']]) })),
      /invalid file name|outside its folder/,
    );
    await assert.rejects(
      openFile(write('up.onnx', { name: 'w', dims: [2], type: 1, extra: ext([['location', '../w.bin']]) })),
      /outside its folder/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('every truncation and random corruption of a real model is a clear error or a valid open', async () => {
  const whole = readFileSync(join(FIXTURES, 'onnx', 'mixed.onnx'));
  let seed = 12345;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const variants: Uint8Array[] = [];
  for (let cut = 0; cut < whole.length; cut += 37) variants.push(whole.subarray(0, cut));
  for (let k = 0; k < 150; k++) {
    const copy = Uint8Array.from(whole);
    for (let j = 0; j < 3; j++) copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
    variants.push(copy);
  }
  let failures = 0;
  for (const v of variants) {
    try {
      const c = await openBytes(v, 'damaged.onnx');
      for (const t of c.tensors) if (!t.notDecodedReason && t.params < 1e7) await readTensorValues(t);
    } catch (error) {
      assert.ok(error instanceof CheckpointFormatError, `unexpected ${String(error)}`);
      failures++;
    }
  }
  assert.ok(failures > variants.length / 3);
});

void test('sniff: ONNX by content and name, never other files', () => {
  const head = readFileSync(join(FIXTURES, 'onnx', 'mixed.onnx')).subarray(0, 64);
  assert.equal(onnxFormat.sniff(head, 'mixed.onnx'), 0.95);
  assert.equal(onnxFormat.sniff(head, 'model.bin'), 0.6);
  assert.equal(onnxFormat.sniff(new TextEncoder().encode('{"name": "x"}'), 'package.json'), 0);
  assert.equal(onnxFormat.sniff(Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0]), 'model.pt'), 0);
  assert.equal(onnxFormat.sniff(new Uint8Array(0), 'x.bin'), 0);
  assert.equal(onnxFormat.sniff(Uint8Array.from([1, 2, 3]), 'broken.onnx'), 0.3);
  // A TensorProto (.pb) is not a ModelProto.
  assert.equal(
    onnxFormat.sniff(
      Uint8Array.from(tensorProto({ name: 't', dims: [2], type: 1, raw: new Uint8Array(8) })),
      'input_0.pb',
    ),
    0,
  );
});

void test(
  'a sparse initializer with huge dims: statistics cost its stored values, not its 2^40 dense elements',
  { timeout: 60_000 },
  async () => {
    const values = tensorProto({
      name: 'w',
      dims: [2],
      type: 1,
      raw: new Uint8Array(new Float32Array([5, -3]).buffer),
    });
    const indices = tensorProto({
      name: 'w_i',
      dims: [2],
      type: 7,
      raw: new Uint8Array(new BigInt64Array([7n, 2n ** 40n - 1n]).buffer),
    });
    const sparse = [...lfield(1, values), ...lfield(2, indices), ...vfield(3, 2 ** 20), ...vfield(3, 2 ** 20)];
    const c = await openBytes(modelProto([...sfield(2, 'g'), ...lfield(15, sparse)]));
    try {
      const t = c.tensors[0]!;
      assert.equal(t.params, 2 ** 40);
      const { stats, histogram } = await tensorStatistics(t, 4);
      assert.equal(stats.count, 2 ** 40);
      assert.equal(stats.zeros, 2 ** 40 - 2);
      assert.equal(stats.min, -3);
      assert.equal(stats.max, 5);
      assert.ok(Math.abs((stats.mean ?? NaN) - 2 / 2 ** 40) < 1e-20);
      assert.equal(
        histogram.counts.reduce((a, b) => a + b, 0),
        2 ** 40,
      );
    } finally {
      await c.close();
    }
  },
);

void test('40,000 initializers with one name get unique names in linear time', { timeout: 60_000 }, async () => {
  const one = lfield(5, tensorProto({ name: 'w', dims: [], type: 1, raw: [0, 0, 128, 63] }));
  const graph = new Uint8Array(one.length * 40_000);
  for (let i = 0; i < 40_000; i++) graph.set(one, i * one.length);
  const c = await openBytes(cat(vfield(1, 9), lbytes(7, cat(sfield(2, 'g'), graph))));
  try {
    assert.equal(c.tensors.length, 40_000);
    assert.equal(new Set(c.tensors.map((t) => t.name)).size, 40_000);
    assert.deepEqual(
      c.tensors.slice(0, 3).map((t) => t.name),
      ['w', 'w#2', 'w#3'],
    );
    assert.equal(c.tensors[39_999]?.name, 'w#40000');
  } finally {
    await c.close();
  }
});
