// Tests of the zip container: archives written by NumPy/Python's zipfile (fixtures) and hand-built ones covering
// zip64, data descriptors, comments and every refusal path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { FileByteSource, MemoryByteSource, SliceByteSource } from '../../../src/core/io/byteSource';
import { CancelledError, CheckpointFormatError } from '../../../src/core/io/errors';
import { checkMemberPath, looksLikeZip, openZip, ZIP_DEFLATED, ZIP_STORED } from '../../../src/core/containers/zip';

const NUMPY = join(__dirname, '..', '..', 'fixtures', 'numpy');

interface Member {
  name: string;
  data: Uint8Array;
  method?: number;
  /** Uncompressed size written in the headers (default: the real one). */
  declaredSize?: number;
  crc?: number;
  flags?: number;
}

/** Builds a zip archive; with `zip64`, sizes and offsets go in zip64 extra fields and a zip64 end record is added. */
function buildZip(
  members: Member[],
  options: { zip64?: boolean; comment?: string; localPadding?: number } = {},
): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const method = m.method ?? ZIP_STORED;
    const stored = method === ZIP_DEFLATED ? deflateRawSync(m.data) : Buffer.from(m.data);
    const size = m.declaredSize ?? m.data.length;
    const crc = m.crc ?? crc32(m.data);
    const name = Buffer.from(m.name);
    const padding = Buffer.alloc(options.localPadding ?? 0);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(m.flags ?? 0, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE((m.flags ?? 0) & 8 ? 0 : crc, 14);
    local.writeUInt32LE((m.flags ?? 0) & 8 ? 0 : stored.length, 18);
    local.writeUInt32LE((m.flags ?? 0) & 8 ? 0 : size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(padding.length, 28);
    const descriptor = (m.flags ?? 0) & 8 ? Buffer.alloc(16) : Buffer.alloc(0);
    if (descriptor.length) {
      descriptor.writeUInt32LE(0x08074b50, 0);
      descriptor.writeUInt32LE(crc, 4);
      descriptor.writeUInt32LE(stored.length, 8);
      descriptor.writeUInt32LE(size, 12);
    }
    const extra = options.zip64 ? Buffer.alloc(4 + 24) : Buffer.alloc(0);
    if (options.zip64) {
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(size), 4);
      extra.writeBigUInt64LE(BigInt(stored.length), 12);
      extra.writeBigUInt64LE(BigInt(offset), 20);
    }
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(45, 4);
    central.writeUInt16LE(45, 6);
    central.writeUInt16LE(m.flags ?? 0, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(options.zip64 ? 0xffffffff : stored.length, 20);
    central.writeUInt32LE(options.zip64 ? 0xffffffff : size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(extra.length, 30);
    central.writeUInt32LE(options.zip64 ? 0xffffffff : offset, 42);
    locals.push(local, name, padding, stored, descriptor);
    centrals.push(central, name, extra);
    offset += local.length + name.length + padding.length + stored.length + descriptor.length;
  }
  const cd = Buffer.concat(centrals);
  const tail: Buffer[] = [];
  if (options.zip64) {
    const record = Buffer.alloc(56);
    record.writeUInt32LE(0x06064b50, 0);
    record.writeBigUInt64LE(44n, 4);
    record.writeBigUInt64LE(BigInt(members.length), 24);
    record.writeBigUInt64LE(BigInt(members.length), 32);
    record.writeBigUInt64LE(BigInt(cd.length), 40);
    record.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    locator.writeUInt32LE(1, 16);
    tail.push(record, locator);
  }
  const comment = Buffer.from(options.comment ?? '');
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(options.zip64 ? 0xffff : members.length, 8);
  end.writeUInt16LE(options.zip64 ? 0xffff : members.length, 10);
  end.writeUInt32LE(options.zip64 ? 0xffffffff : cd.length, 12);
  end.writeUInt32LE(options.zip64 ? 0xffffffff : offset, 16);
  end.writeUInt16LE(comment.length, 20);
  return Buffer.concat([...locals, cd, ...tail, end, comment]);
}

/** Incompressible pseudo-random bytes (a fixed LCG), so deflated test members stay under the ratio limit. */
function noise(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = 12345;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const mem = (bytes: Uint8Array, name = 'test.zip'): MemoryByteSource => new MemoryByteSource(bytes, name);
const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

void test('reads NumPy-written archives: stored and deflated members hold the same bytes', async () => {
  const stored = await FileByteSource.open(join(NUMPY, 'weights_stored.npz'));
  const deflated = await FileByteSource.open(join(NUMPY, 'weights_compressed.npz'));
  const a = await openZip(stored);
  const b = await openZip(deflated);
  assert.deepEqual(
    a.entries.map((e) => e.name),
    b.entries.map((e) => e.name),
  );
  assert.ok(a.entries.every((e) => e.method === ZIP_STORED));
  assert.ok(b.entries.every((e) => e.method === ZIP_DEFLATED && e.compressedSize < e.uncompressedSize));
  for (const entry of a.entries) {
    const other = b.get(entry.name)!;
    const plain = await a.readEntry(entry);
    assert.deepEqual(await b.readEntry(other), plain, entry.name);
    assert.deepEqual(await collect(b.readEntryStream(other, { readBytes: 4096 })), Buffer.from(plain), entry.name);
    assert.deepEqual(await b.readEntryPrefix(other, 10), plain.subarray(0, 10));
    const view = await a.openEntry(entry);
    assert.ok(view instanceof SliceByteSource, 'stored members are zero-copy slices');
    assert.equal(view.size, entry.uncompressedSize);
    assert.deepEqual(await view.read(0, view.size), plain);
    assert.equal(view.name, `${stored.name}:${entry.name}`);
    const inflated = await b.openEntry(other);
    assert.deepEqual(await inflated.read(0, inflated.size), plain);
  }
  await stored.close();
  await deflated.close();
});

void test('zip64 extra fields and end records (as torch.save writes them), comments, padding and data descriptors', async () => {
  const payload = Buffer.from('x'.repeat(5000));
  const archive = buildZip(
    [
      { name: 'archive/data.pkl', data: Buffer.from('pickle bytes') },
      { name: 'archive/data/0', data: payload, method: ZIP_DEFLATED },
    ],
    { zip64: true, comment: 'a trailing comment', localPadding: 40 },
  );
  const zip = await openZip(mem(archive));
  assert.equal(zip.zip64, true);
  assert.equal(zip.entries.length, 2);
  assert.equal(text(await zip.readEntry(zip.get('archive/data.pkl')!)), 'pickle bytes');
  assert.equal(text(await zip.readEntry(zip.get('archive/data/0')!)), payload.toString());
  assert.equal(zip.get('archive/data.pkl')!.dataOffset, 30 + 16 + 40);

  const described = buildZip([
    { name: 'd', data: Buffer.from('described'), flags: 8 },
    { name: 'e/', data: new Uint8Array(0) },
  ]);
  const z2 = await openZip(mem(described));
  assert.equal(text(await z2.readEntry(z2.get('d')!)), 'described');
  assert.equal(z2.get('e/')!.isDirectory, true);
  assert.equal(z2.get('missing'), undefined);
});

void test('a long deflated member streams in bounded chunks and checks its CRC', async () => {
  const data = noise(3 * 1024 * 1024);
  const zip = await openZip(mem(buildZip([{ name: 'big', data, method: ZIP_DEFLATED }])));
  let total = 0;
  let largest = 0;
  for await (const chunk of zip.readEntryStream(zip.get('big')!)) {
    total += chunk.length;
    largest = Math.max(largest, chunk.length);
  }
  assert.equal(total, data.length);
  assert.ok(largest <= 64 * 1024);
  const bad = await openZip(mem(buildZip([{ name: 'big', data, method: ZIP_DEFLATED, crc: 1234 }])));
  await assert.rejects(collect(bad.readEntryStream(bad.get('big')!)), /CRC-32/);
});

void test('zip bombs are refused from the declared ratio, and lying sizes are caught while inflating', async () => {
  const zeros = new Uint8Array(8 * 1024 * 1024);
  const bomb = await openZip(mem(buildZip([{ name: 'z', data: zeros, method: ZIP_DEFLATED }])));
  const entry = bomb.get('z')!;
  assert.ok(entry.uncompressedSize / entry.compressedSize > 1000);
  await assert.rejects(bomb.readEntry(entry, 1e9), /zip bomb/);
  await assert.rejects(bomb.openEntry(entry), /zip bomb/);
  await assert.rejects(collect(bomb.readEntryStream(entry)), /zip bomb/);
  await assert.rejects(bomb.readEntryPrefix(entry, 10), /zip bomb/);

  // Small members may compress very well (an all-zero bias): those are allowed.
  const small = await openZip(mem(buildZip([{ name: 'b', data: new Uint8Array(100_000), method: ZIP_DEFLATED }])));
  assert.equal((await small.readEntry(small.get('b')!)).length, 100_000);

  // The headers say 1000 bytes; the stream holds 8 MB. Inflation stops at the first chunk past the declared size.
  const before = process.memoryUsage().arrayBuffers;
  const liar = await openZip(mem(buildZip([{ name: 'z', data: zeros, method: ZIP_DEFLATED, declaredSize: 1000 }])));
  await assert.rejects(collect(liar.readEntryStream(liar.get('z')!)), /inflates to more than its declared/);
  assert.ok(process.memoryUsage().arrayBuffers - before < 4 * 1024 * 1024);
  // And a stream shorter than declared is an error too.
  const short = await openZip(
    mem(buildZip([{ name: 's', data: Buffer.from('abc'), method: ZIP_DEFLATED, declaredSize: 10 }])),
  );
  await assert.rejects(collect(short.readEntryStream(short.get('s')!)), /inflates to 3 B but declares 10 B/);
});

void test('members over the in-memory limit must be streamed', async () => {
  const data = new Uint8Array(5000).fill(1);
  const zip = await openZip(
    mem(
      buildZip([
        { name: 'a', data, method: ZIP_DEFLATED },
        { name: 'b', data },
      ]),
    ),
  );
  await assert.rejects(zip.readEntry(zip.get('a')!, 100), /over the 100 B that may be loaded/);
  await assert.rejects(zip.openEntry(zip.get('a')!, { maxInMemoryBytes: 100 }), /over the 100 B/);
  assert.equal(
    (await zip.openEntry(zip.get('b')!, { maxInMemoryBytes: 100 })).size,
    5000,
    'stored members are never loaded',
  );
});

void test('refusals: encrypted, unknown methods, duplicates, overlaps, out-of-range headers, absurd counts', async () => {
  const one = (m: Partial<Member> = {}): Buffer => buildZip([{ name: 'a', data: Buffer.from('hello'), ...m }]);
  const reject = async (bytes: Uint8Array, pattern: RegExp, read = false): Promise<void> => {
    const attempt = async (): Promise<void> => {
      const zip = await openZip(mem(bytes));
      if (read) await zip.readEntry(zip.entries[0]!);
    };
    await assert.rejects(attempt(), (error: unknown) => {
      assert.ok(error instanceof CheckpointFormatError, String(error));
      assert.match(error.message, pattern);
      return true;
    });
  };
  await reject(one({ flags: 1 }), /encrypted/, true);
  await reject(one({ method: 14 }), /compression method 14/, true);
  await reject(
    buildZip([
      { name: 'a', data: Buffer.from('1') },
      { name: 'a', data: Buffer.from('2') },
    ]),
    /two zip members named "a"/,
  );
  await reject(new Uint8Array(10), /too small/);
  await reject(new Uint8Array(100), /end-of-central-directory record is missing/);
  const good = one();
  const cdAt = good.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  const eocdAt = good.length - 22;
  let bad = Buffer.from(good);
  bad.writeUInt32LE(1_000_000, cdAt + 42);
  await reject(bad, /outside the member area/);
  bad = Buffer.from(good);
  bad.writeUInt32LE(0x12345678, 0);
  await reject(bad, /no local header/);
  bad = Buffer.from(good);
  bad.writeUInt32LE(500, cdAt + 20);
  bad.writeUInt32LE(500, cdAt + 24);
  await reject(bad, /needs bytes up to/);
  bad = Buffer.from(good);
  bad.writeUInt16LE(5, eocdAt + 10);
  await reject(bad, /cannot fit/);
  bad = Buffer.from(good);
  bad.writeUInt16LE(1, eocdAt + 4);
  await reject(bad, /multi-part/);
  bad = Buffer.from(good);
  bad.writeUInt32LE(0, cdAt);
  await reject(bad, /central directory entry 0/);
  bad = Buffer.from(good);
  bad.writeUInt32LE(7, cdAt + 20); // stored member whose two sizes differ
  await reject(bad, /declares 7 bytes stored but 5 uncompressed/);
  const two = buildZip([
    { name: 'a', data: Buffer.from('1111') },
    { name: 'b', data: Buffer.from('2222') },
  ]);
  const second = two.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  bad = Buffer.from(two);
  bad.writeUInt32LE(10, second + 42);
  await reject(bad, /overlap/);
});

void test('cancellation stops streaming with CancelledError', async () => {
  const data = noise(2 * 1024 * 1024);
  const zip = await openZip(
    mem(
      buildZip([
        { name: 'a', data, method: ZIP_DEFLATED },
        { name: 'b', data },
      ]),
    ),
  );
  const controller = new AbortController();
  controller.abort();
  for (const name of ['a', 'b']) {
    await assert.rejects(
      collect(zip.readEntryStream(zip.get(name)!, { signal: controller.signal })),
      (e: unknown) => e instanceof CancelledError,
    );
  }
});

void test('member paths and sniffing helpers', () => {
  assert.equal(checkMemberPath('x.zip', 'archive/data/0'), 'archive/data/0');
  for (const bad of ['../evil', 'a/../../b', '/abs', 'C:/win', 'a\\b', '', 'nul\0']) {
    assert.throws(() => checkMemberPath('x.zip', bad), CheckpointFormatError, bad);
  }
  assert.equal(looksLikeZip(Buffer.from('PK\x03\x04rest')), true);
  assert.equal(looksLikeZip(Buffer.from('PK\x05\x06')), true);
  assert.equal(looksLikeZip(Buffer.from('PK')), false);
  assert.equal(looksLikeZip(Buffer.from('GGUF')), false);
});
