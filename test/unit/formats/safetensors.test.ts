// Tests of the safetensors reader and writer against files written by test/fixtures/make/safetensors.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openWith, contextFor, type ManifestFile, hostileCases } from '../../helpers/fixtures';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryByteSource } from '../../../src/core/io/byteSource';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { readTensorValues } from '../../../src/core/tensors/tensor';
import type { Checkpoint } from '../../../src/core/formats/types';
import { safetensorsFormat, writeSafetensors } from '../../../src/core/formats/safetensors';

const FIXTURES = join(__dirname, '..', '..', 'fixtures', 'safetensors');
const HOSTILE = join(__dirname, '..', '..', 'fixtures', 'hostile', 'safetensors');

const context = contextFor;

const openPath = (path: string): Promise<Checkpoint> => openWith(safetensorsFormat, path);

function close(a: number, b: number): boolean {
  if (Number.isNaN(a) && Number.isNaN(b)) return true;
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

async function checkAgainstManifest(dir: string, fileFilter?: (f: ManifestFile) => boolean): Promise<void> {
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { files: ManifestFile[] };
  for (const file of manifest.files.filter(fileFilter ?? (() => true))) {
    const checkpoint = await openPath(join(dir, file.file));
    try {
      assert.equal(checkpoint.tensors.length, file.tensors, file.file);
      for (const [i, expected] of file.entries.entries()) {
        const tensor = checkpoint.tensors[i]!;
        assert.equal(tensor.name, expected.name, `${file.file}: tensor ${i}`);
        assert.equal(tensor.dtype, expected.dtype, `${file.file}: ${expected.name}`);
        assert.deepEqual(tensor.shape, expected.shape, `${file.file}: ${expected.name}`);
        if (expected.sum === undefined) continue;
        const values: number[] = [];
        for await (const chunk of tensor.values({ maxElements: 7 })) values.push(...chunk);
        assert.equal(values.length, tensor.params);
        let sum = 0;
        let squares = 0;
        for (const v of values) {
          sum += v;
          squares += v * v;
        }
        assert.ok(close(sum, expected.sum), `${file.file}: ${expected.name} sum ${sum} vs ${expected.sum}`);
        assert.ok(close(squares, expected.sumSquares!), `${file.file}: ${expected.name} sumSquares`);
        assert.deepEqual(
          values.slice(0, 4).map((v, k) => close(v, expected.first![k]!)),
          expected.first!.map(() => true),
        );
      }
    } finally {
      await checkpoint.close();
    }
  }
}

void test('reads every fixture in the manifest with the right names, dtypes, shapes and values', async () => {
  await checkAgainstManifest(FIXTURES);
});

void test('exposes __metadata__ and index metadata', async () => {
  const single = await openPath(join(FIXTURES, 'tiny_cnn.safetensors'));
  assert.equal(single.metadata.format, 'pt');
  assert.match(String(single.metadata.source), /seed 0/);
  assert.equal(single.description, 'safetensors');
  await single.close();
  await single.close(); // idempotent
  const sharded = await openPath(join(FIXTURES, 'sharded-model.safetensors.index.json'));
  assert.equal(sharded.description, 'safetensors (3 shards)');
  assert.equal(sharded.metadata.shards, 3);
  assert.equal(typeof sharded.metadata.total_size, 'number');
  assert.equal(sharded.tensors[0]?.name, '0.weight');
  await sharded.close();
});

void test('sniffs by content and by name', async () => {
  const head = (await readFile(join(FIXTURES, 'tiny_cnn.safetensors'))).subarray(0, 65536);
  assert.equal(safetensorsFormat.sniff(head, 'x.safetensors'), 1);
  assert.ok(safetensorsFormat.sniff(head, 'model.bin') >= 0.9);
  assert.equal(safetensorsFormat.sniff(new Uint8Array([0x89, 0x50, 0x4e, 0x47]), 'a.png'), 0);
  assert.ok(safetensorsFormat.sniff(new Uint8Array([0x89, 0x50, 0x4e, 0x47]), 'a.safetensors') < 0.5);
  const index = await readFile(join(FIXTURES, 'sharded-model.safetensors.index.json'));
  assert.equal(safetensorsFormat.sniff(index, 'sharded-model.safetensors.index.json'), 1);
  assert.equal(safetensorsFormat.sniff(new Uint8Array(0), ''), 0);
});

void test('every hostile file fails with a clear CheckpointFormatError', async () => {
  const manifest = { cases: hostileCases('safetensors') };
  assert.ok(manifest.cases.length >= 10);
  for (const c of manifest.cases) {
    await assert.rejects(openPath(join(HOSTILE, c.file)), (error: unknown) => {
      assert.ok(error instanceof CheckpointFormatError, `${c.file}: ${String(error)}`);
      // The file's own name must not be what satisfies the expected message.
      assert.match(error.message.split(c.file).join('<file>'), new RegExp(c.message), c.file);
      return true;
    });
  }
});

void test('float32 values stream as zero-copy views in bounded chunks', async () => {
  const checkpoint = await openPath(join(FIXTURES, 'tiny_cnn.safetensors'));
  const weight = checkpoint.tensors.find((t) => t.name === '3.weight')!;
  const chunks: number[] = [];
  for await (const chunk of weight.values({ maxElements: 100 })) {
    assert.ok(chunk instanceof Float32Array);
    chunks.push(chunk.length);
  }
  assert.equal(
    chunks.reduce((a, b) => a + b, 0),
    weight.params,
  );
  assert.ok(chunks.every((n) => n <= 100));
  await checkpoint.close();
});

void test('writer round-trips every dtype, metadata and 8-byte header alignment, atomically', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wl-st-'));
  try {
    const path = join(dir, 'out.safetensors');
    const f32 = Float32Array.from([1.5, -2, 3.25, 0, 7, 8]);
    const i64 = BigInt64Array.from([1n, -2n, 3n]);
    const bf16 = Uint16Array.from([0x3f80, 0xc000]); // 1, -2
    async function* streamed(): AsyncIterable<Uint8Array> {
      await Promise.resolve();
      yield new Uint8Array([1, 2]);
      yield new Uint8Array([3]);
    }
    await writeSafetensors(
      path,
      [
        { name: 'w', dtype: 'F32', shape: [2, 3], data: f32 },
        { name: 'n', dtype: 'I64', shape: [3], data: i64 },
        { name: 'b', dtype: 'BF16', shape: [2], data: bf16 },
        { name: 'u', dtype: 'U8', shape: [3], data: streamed() },
        { name: 's', dtype: 'F64', shape: [], data: Float64Array.from([Math.PI]) },
      ],
      { purpose: 'test', ünïcode: 'ok' },
    );
    assert.deepEqual((await readdir(dir)).sort(), ['out.safetensors']);
    const bytes = await readFile(path);
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    assert.ok(
      bytes
        .subarray(8, 8 + n)
        .toString('utf8')
        .endsWith('}') || bytes[8 + n - 1] === 0x20,
    );
    const checkpoint = await openPath(path);
    assert.deepEqual(
      checkpoint.tensors.map((t) => t.name),
      ['w', 'n', 'b', 'u', 's'],
    );
    assert.deepEqual([...(await readTensorValues(checkpoint.tensors[0]!))], [...f32]);
    assert.deepEqual([...(await readTensorValues(checkpoint.tensors[1]!))], [1, -2, 3]);
    assert.deepEqual([...(await readTensorValues(checkpoint.tensors[2]!))], [1, -2]);
    assert.deepEqual([...(await readTensorValues(checkpoint.tensors[3]!))], [1, 2, 3]);
    assert.equal((await readTensorValues(checkpoint.tensors[4]!))[0], Math.fround(Math.PI));
    assert.equal(checkpoint.metadata.purpose, 'test');
    assert.equal(checkpoint.metadata['ünïcode'], 'ok');
    await checkpoint.close();

    // Failures leave neither the target nor a temporary file behind.
    const bad = join(dir, 'bad.safetensors');
    await assert.rejects(
      writeSafetensors(bad, [{ name: 'x', dtype: 'F32', shape: [3], data: new Float32Array(2) }]),
      /12 bytes/,
    );
    await assert.rejects(
      writeSafetensors(bad, [
        { name: 'x', dtype: 'U8', shape: [3], data: streamed() },
        { name: 'x', dtype: 'U8', shape: [1], data: new Uint8Array(1) },
      ]),
      /two tensors/,
    );
    async function* short(): AsyncIterable<Uint8Array> {
      await Promise.resolve();
      yield new Uint8Array(2);
    }
    await assert.rejects(
      writeSafetensors(bad, [{ name: 'x', dtype: 'U8', shape: [3], data: short() }]),
      /streamed 2 bytes/,
    );
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      writeSafetensors(bad, [{ name: 'x', dtype: 'U8', shape: [1], data: new Uint8Array(1) }], undefined, {
        signal: controller.signal,
      }),
      /cancelled/,
    );
    assert.deepEqual((await readdir(dir)).sort(), ['out.safetensors']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('in-memory headers: undecoded dtypes are listed, empty tensors and gaps are fine, overlaps are not', async () => {
  const make = (header: object, dataBytes: number): MemoryByteSource => {
    let json = Buffer.from(JSON.stringify(header));
    json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length));
    return new MemoryByteSource(Buffer.concat([prefix, json, Buffer.alloc(dataBytes)]), 'mem.safetensors');
  };
  const ok = await safetensorsFormat.open(
    make(
      {
        c: { dtype: 'C64', shape: [2], data_offsets: [0, 16] },
        e: { dtype: 'F32', shape: [0], data_offsets: [16, 16] },
        f: { dtype: 'F32', shape: [1], data_offsets: [20, 24] },
        z: { dtype: 'F4', shape: [3], data_offsets: [24, 26] },
      },
      26,
    ),
    context('mem.safetensors'),
  );
  assert.deepEqual(
    ok.tensors.map((t) => [t.name, t.dtype, t.bytes, t.notDecodedReason !== undefined]),
    [
      ['c', 'C64', 16, true],
      ['e', 'F32', 0, false],
      ['f', 'F32', 4, false],
      ['z', 'F4', 2, true],
    ],
  );
  await assert.rejects(readTensorValues(ok.tensors[0]!), /not decoded/);
  await assert.rejects(
    safetensorsFormat.open(
      make(
        { a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [1], data_offsets: [3, 4] } },
        4,
      ),
      context('m'),
    ),
    /overlap/,
  );
  await assert.rejects(
    safetensorsFormat.open(make({ a: { dtype: 'U8', shape: 'x', data_offsets: [0, 1] } }, 1), context('m')),
    /invalid shape/,
  );
  await assert.rejects(safetensorsFormat.open(make({ __metadata__: 'x' }, 0), context('m')), /__metadata__/);
});

void test('a missing shard is named in the error and opened shards are closed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wl-st-'));
  try {
    await writeSafetensors(join(dir, 'a.safetensors'), [
      { name: 'x', dtype: 'U8', shape: [1], data: new Uint8Array(1) },
    ]);
    const index = join(dir, 'm.safetensors.index.json');
    await writeFile(index, JSON.stringify({ weight_map: { x: 'a.safetensors', y: 'b.safetensors' } }));
    await assert.rejects(openPath(index), /"b\.safetensors".*missing/);
    await writeFile(index, JSON.stringify({ weight_map: { x: 'a.safetensors', y: 'a.safetensors' } }));
    await assert.rejects(openPath(index), /does not contain it/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test(
  'an index of 300,000 entries naming 10,000 shards reports its missing shard at once',
  { timeout: 60_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'st-index-'));
    try {
      const weightMap: Record<string, string> = {};
      for (let i = 0; i < 300_000; i++) weightMap[`t${i}`] = `shard-${String(i % 10_000).padStart(5, '0')}.safetensors`;
      const path = join(dir, 'model.safetensors.index.json');
      await writeFile(path, JSON.stringify({ weight_map: weightMap }));
      await assert.rejects(openPath(path), /refers to "shard-00000\.safetensors", which is missing or unreadable/);
      weightMap.extra = 'x.safetensors';
      weightMap.more = 'y.safetensors';
      await writeFile(path, JSON.stringify({ weight_map: weightMap }));
      await assert.rejects(openPath(path), /lists 300002 tensors, more than the 300000 allowed/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  'a header of a million empty tensors is refused before it is parsed; 300,000 of them list',
  { timeout: 120_000 },
  async () => {
    const header = (n: number): Uint8Array => {
      const entries: string[] = [];
      for (let i = 0; i < n; i++) entries.push(`"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
      const json = Buffer.from(`{${entries.join(',')}}`);
      const out = Buffer.alloc(8 + json.length);
      out.writeBigUInt64LE(BigInt(json.length));
      json.copy(out, 8);
      return out;
    };
    const open = (bytes: Uint8Array): Promise<Checkpoint> =>
      safetensorsFormat.open(new MemoryByteSource(bytes, 'empty.safetensors'), context('empty.safetensors'));
    await assert.rejects(open(header(1_000_000)), /empty\.safetensors lists more than 300000 tensors, over the limit/);
    const c = await open(header(300_000));
    try {
      assert.equal(c.tensors.length, 300_000);
      assert.ok(c.tensors.every((t) => t.params === 0));
    } finally {
      await c.close();
    }
  },
);
