// The .npz writer: members read back by the project's zip and .npy readers with the shapes and dtypes written, each
// CRC-32 (central directory and local header) equal to the one zlib's gzip computes independently, `.npy` headers
// padded to 64 bytes as NumPy writes them, and no file left behind by a member of the wrong size or an abort.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { npyHeader, writeNpz, type NpzMemberInput } from '../../../src/core/containers/npzWriter';
import { openZip } from '../../../src/core/containers/zip';
import { parseNpyHeader } from '../../../src/core/containers/npy';
import { FileByteSource } from '../../../src/core/io/byteSource';
import { CancelledError, CheckpointFormatError } from '../../../src/core/io/errors';

const dir = mkdtempSync(join(tmpdir(), 'wl-npz-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function member(name: string, dtype: NpzMemberInput['dtype'], shape: number[], data: ArrayBufferView): NpzMemberInput {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return {
    name,
    dtype,
    shape,
    itemBytes: shape.reduce((a, b) => a * b, 1) === 0 ? 4 : bytes.length / shape.reduce((a, b) => a * b, 1),
    data: async function* () {
      await Promise.resolve();
      yield bytes.subarray(0, Math.floor(bytes.length / 2));
      yield bytes.subarray(Math.floor(bytes.length / 2));
    },
  };
}

/** CRC-32 of `data` as zlib's gzip trailer records it. */
function gzipCrc(data: Uint8Array): number {
  const gz = gzipSync(data);
  return gz.readUInt32LE(gz.length - 8);
}

void test('members round-trip through the zip and .npy readers with independent CRC-32s', async () => {
  const path = join(dir, 'a.npz');
  const members = [
    member('w', 'F32', [2, 3], Float32Array.from([1, -2, 3.5, 0, 1e-7, -0])),
    member('layer/b', 'F64', [3], Float64Array.from([1, 2, 3])),
    member('step', 'I64', [], BigInt64Array.from([7n])),
    member('empty', 'F32', [0, 4], new Float32Array(0)),
    member('mask', 'BOOL', [4], Uint8Array.from([1, 0, 0, 1])),
  ];
  await writeNpz(path, members);
  const bytes = readFileSync(path);
  const source = await FileByteSource.open(path);
  try {
    const zip = await openZip(source);
    assert.deepEqual(
      zip.entries.map((e) => e.name),
      ['w.npy', 'layer/b.npy', 'step.npy', 'empty.npy', 'mask.npy'],
    );
    for (const [i, e] of zip.entries.entries()) {
      const data = await zip.readEntry(e);
      assert.equal(e.crc32, gzipCrc(data), e.name);
      assert.equal(bytes.readUInt32LE(e.localHeaderOffset + 14), e.crc32, `${e.name} local header`);
      const header = parseNpyHeader(data, e.name);
      assert.equal(header.dataOffset % 64, 0);
      assert.deepEqual(header.shape, members[i]!.shape);
      assert.equal(header.dtype, members[i]!.dtype);
      assert.equal(header.fortranOrder, false);
      assert.equal(data.length, header.dataOffset + header.dataBytes);
    }
  } finally {
    await source.close();
  }
});

void test('npy headers spell shapes as NumPy does', () => {
  const text = (shape: number[]): string => Buffer.from(npyHeader('F32', shape)).toString('latin1', 10);
  assert.match(text([5]), /'shape': \(5,\), \}/);
  assert.match(text([]), /'shape': \(\), \}/);
  assert.match(text([2, 3]), /'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \}\s+\n$/);
});

void test('a member of the wrong size, a duplicate name or an abort leaves no file', async () => {
  const path = join(dir, 'bad.npz');
  const short = { ...member('w', 'F32', [4], new Float32Array(3)), itemBytes: 4 };
  await assert.rejects(writeNpz(path, [short]), CheckpointFormatError);
  const w = member('w', 'F32', [1], new Float32Array(1));
  await assert.rejects(writeNpz(path, [w, w]), /two arrays named "w"/);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(writeNpz(path, [w], { signal: controller.signal }), CancelledError);
  assert.equal(existsSync(path), false);
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.startsWith('.bad')),
    [],
  );
});
