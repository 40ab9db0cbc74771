// Tests of the NumPy reader (.npy and .npz) against files written by NumPy (test/fixtures/make/numpy.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openWith, contextFor, type ManifestFile, hostileCases } from '../../helpers/fixtures';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { MemoryByteSource } from '../../../src/core/io/byteSource';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import type { Checkpoint } from '../../../src/core/formats/types';
import { numpyFormat } from '../../../src/core/formats/numpy';

const FIXTURES = join(__dirname, '..', '..', 'fixtures', 'numpy');
const HOSTILE = join(__dirname, '..', '..', 'fixtures', 'hostile');

const context = contextFor;

const openPath = (path: string): Promise<Checkpoint> => openWith(numpyFormat, path);

function near(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

async function allValues(checkpoint: Checkpoint, name: string, maxElements?: number): Promise<number[]> {
  const tensor = checkpoint.tensors.find((t) => t.name === name)!;
  const out: number[] = [];
  for await (const chunk of tensor.values(maxElements ? { maxElements } : {})) {
    assert.ok(chunk.length <= (maxElements ?? Infinity));
    for (const v of chunk) out.push(v);
  }
  assert.equal(out.length, tensor.params);
  return out;
}

void test('reads every fixture in the manifest with the right names, dtypes, shapes and values', async () => {
  const manifest = JSON.parse(await readFile(join(FIXTURES, 'manifest.json'), 'utf8')) as { files: ManifestFile[] };
  assert.ok(manifest.files.length >= 20);
  for (const file of manifest.files) {
    const checkpoint = await openPath(join(FIXTURES, file.file));
    try {
      assert.equal(checkpoint.format, 'numpy');
      assert.equal(checkpoint.tensors.length, file.tensors, file.file);
      for (const [i, expected] of file.entries.entries()) {
        const tensor = checkpoint.tensors[i]!;
        const label = `${file.file}: ${expected.name}`;
        assert.equal(tensor.name, expected.name, label);
        assert.equal(tensor.dtype, expected.dtype, label);
        assert.deepEqual(tensor.shape, expected.shape, label);
        if (expected.sum === undefined) {
          assert.ok(tensor.notDecodedReason, label);
          continue;
        }
        const values = await allValues(checkpoint, tensor.name, 1000);
        let sum = 0;
        let squares = 0;
        for (const v of values) {
          sum += v;
          squares += v * v;
        }
        assert.ok(near(sum, expected.sum), `${label}: sum ${sum} vs ${expected.sum}`);
        assert.ok(near(squares, expected.sumSquares!), `${label}: sumSquares`);
        assert.ok(
          values.slice(0, 4).every((v, k) => near(v, expected.first![k]!)),
          `${label}: first values`,
        );
      }
    } finally {
      await checkpoint.close();
    }
  }
});

void test('compressed .npz members stream in bounded chunks and match the stored archive', async () => {
  const stored = await openPath(join(FIXTURES, 'weights_stored.npz'));
  const compressed = await openPath(join(FIXTURES, 'weights_compressed.npz'));
  assert.equal(stored.description, 'NumPy .npz');
  assert.equal(compressed.description, 'NumPy .npz (compressed)');
  const large = compressed.tensors.find((t) => t.name === 'extra.large')!;
  assert.ok(large.bytes < 100 * 257 * 4, 'bytes counts the compressed size');
  assert.match(large.note ?? '', /deflated/);
  for (const name of ['extra.large', 'extra.fortran', 'extra.big_endian', '0.weight']) {
    assert.deepEqual(await allValues(compressed, name, 4096), await allValues(stored, name), name);
  }
  // Stopping early releases the inflater without error.
  for await (const chunk of large.values({ maxElements: 10 })) {
    assert.equal(chunk.length, 10);
    break;
  }
  await stored.close();
  await compressed.close();
});

void test('Fortran-order arrays are returned in row-major order', async () => {
  const checkpoint = await openPath(join(FIXTURES, 'fortran_order.npy'));
  assert.deepEqual(checkpoint.tensors[0]!.shape, [3, 4, 5]);
  assert.match(checkpoint.tensors[0]!.note ?? '', /Fortran/);
  assert.equal(checkpoint.metadata.fortran_order, true);
  await checkpoint.close();
});

void test('sniffs .npy by magic and .npz by its first member', async () => {
  const npy = await readFile(join(FIXTURES, 'f64.npy'));
  const npz = (await readFile(join(FIXTURES, 'weights_stored.npz'))).subarray(0, 65536);
  assert.equal(numpyFormat.sniff(npy, 'x.bin'), 1);
  assert.equal(numpyFormat.sniff(npz, 'w.npz'), 1);
  assert.ok(numpyFormat.sniff(npz, 'w.zip') >= 0.9);
  const torchLike = new Uint8Array(64);
  torchLike.set([0x50, 0x4b, 0x03, 0x04]);
  torchLike[26] = 8;
  torchLike.set(Buffer.from('arch/pkl'), 30);
  assert.equal(numpyFormat.sniff(torchLike, 'model.pt'), 0);
  assert.ok(numpyFormat.sniff(Buffer.from('hello'), 'a.npy') < 0.5);
  assert.equal(numpyFormat.sniff(Buffer.from('hello'), 'a.txt'), 0);
});

for (const folder of ['numpy', 'zip']) {
  void test(`every hostile ${folder} file fails with a clear CheckpointFormatError, quickly`, async () => {
    const dir = join(HOSTILE, folder);
    const manifest = { cases: hostileCases(folder) };
    assert.ok(manifest.cases.length >= 8);
    for (const c of manifest.cases) {
      const started = Date.now();
      const before = process.memoryUsage().arrayBuffers;
      await assert.rejects(openPath(join(dir, c.file)), (error: unknown) => {
        assert.ok(error instanceof CheckpointFormatError, `${c.file}: ${String(error)}`);
        // The file's own name must not be what satisfies the expected message.
        assert.match(error.message.split(c.file).join('<file>'), new RegExp(c.message), c.file);
        return true;
      });
      assert.ok(Date.now() - started < 2000, `${c.file} took too long`);
      assert.ok(process.memoryUsage().arrayBuffers - before < 16 * 1024 * 1024, `${c.file} allocated too much`);
    }
  });
}

/** A one-member zip whose member is deflated, with sizes as given (possibly lying). */
function deflatedZip(name: string, payload: Uint8Array, declaredSize = payload.length): Uint8Array {
  const data = deflateRawSync(payload);
  const nameBytes = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(declaredSize, 22);
  local.writeUInt16LE(nameBytes.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(declaredSize, 24);
  central.writeUInt16LE(nameBytes.length, 28);
  const cdOffset = 30 + nameBytes.length + data.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(46 + nameBytes.length, 12);
  end.writeUInt32LE(cdOffset, 16);
  return Buffer.concat([local, nameBytes, data, central, nameBytes, end]);
}

function npy(descr: string, shape: string, data: Uint8Array): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), data]);
}

void test('a deflated member that inflates beyond its declared size is stopped at once', async () => {
  // The .npy header says 4 floats and the zip says 10,000 bytes, but the payload is 4 MB: the first inflated
  // chunk already overshoots the declared size, so even reading the header is refused.
  const payload = Buffer.concat([npy('<f4', '(4,)', new Uint8Array(16)), Buffer.alloc(4 * 1024 * 1024)]);
  const zip = deflatedZip('a.npy', payload, 10_000);
  await assert.rejects(
    numpyFormat.open(new MemoryByteSource(zip, 'lying.npz'), context('lying.npz')),
    /inflates to more than its declared/,
  );
  // Honest sizes read fine; a header whose data runs past the declared size is refused as truncated.
  const honest = deflatedZip('a.npy', npy('<i2', '(2, 2)', Uint8Array.from([1, 0, 2, 0, 3, 0, 0xff, 0xff])));
  const checkpoint = await numpyFormat.open(new MemoryByteSource(honest, 'ok.npz'), context('ok.npz'));
  assert.deepEqual(await allValues(checkpoint, 'a'), [1, 2, 3, -1]);
  const short = deflatedZip('b.npy', npy('<f4', '(1000,)', new Uint8Array(400)));
  await assert.rejects(numpyFormat.open(new MemoryByteSource(short, 'short.npz'), context('short.npz')), /truncated/);
});

void test('unsupported dtypes and object arrays are listed but not decoded', async () => {
  for (const [file, reason] of [
    ['object_array.npy', /Python objects/],
    ['complex.npy', /complex/],
    ['strings.npy', /unicode strings/],
  ] as const) {
    const checkpoint = await openPath(join(FIXTURES, file));
    const tensor = checkpoint.tensors[0]!;
    assert.match(tensor.notDecodedReason ?? '', reason);
    await assert.rejects(allValues(checkpoint, tensor.name), /not decoded/);
    await checkpoint.close();
  }
});

void test('an empty zip or one without .npy members is not an .npz', async () => {
  const empty = Buffer.alloc(22);
  empty.writeUInt32LE(0x06054b50, 0);
  const checkpoint = await numpyFormat.open(new MemoryByteSource(empty, 'e.npz'), context('e.npz'));
  assert.equal(checkpoint.tensors.length, 0);
  const other = deflatedZip('readme.txt', Buffer.from('hello'));
  await assert.rejects(
    numpyFormat.open(new MemoryByteSource(other, 'o.npz'), context('o.npz')),
    /holds no \.npy arrays/,
  );
});
