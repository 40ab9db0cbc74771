// Protobuf wire-format decoding: varints (including 64-bit and sign-extended negatives), fixed fields, packed lists,
// skipping unknown fields and groups, bounds and nesting checks, and the header-scanning cursor over a ByteSource.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ProtoCursor,
  ProtoReader,
  WIRE_I32,
  WIRE_I64,
  WIRE_LEN,
  WIRE_VARINT,
  countPackedVarints,
  decodePackedInt64s,
  decodePackedVarints,
  fieldDouble,
  fieldFixed64,
  fieldFloat,
  fieldInt32,
  fieldInt64,
  fieldInt64Big,
  fieldUint,
  type ProtoField,
} from '../../../src/core/containers/protobuf';
import type { ByteSource } from '../../../src/core/io/byteSource';
import { MemoryByteSource } from '../../../src/core/io/byteSource';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { LIMITS } from '../../../src/core/io/limits';
import { cat, f32field, f64field, lfield, tag, varint, vfield } from '../../helpers/protobuf';

function readAll(r: ProtoReader): ProtoField[] {
  const out: ProtoField[] = [];
  for (let f = r.next(); f !== undefined; f = r.next()) out.push(f);
  return out;
}

function isFormatError(pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof CheckpointFormatError, `expected CheckpointFormatError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  };
}

void test('varints: small, 64-bit, and sign-extended negatives', () => {
  const msg = cat(
    vfield(1, 150),
    vfield(2, 2n ** 63n + 5n),
    vfield(3, -1),
    vfield(4, -(2n ** 40n)),
    vfield(5, 2n ** 53n - 1n),
  );
  const [a, b, c, d, e] = readAll(new ProtoReader(msg));
  assert.equal(fieldUint(a!, 'a', 'm'), 150);
  assert.equal(b!.varint, 2n ** 63n + 5n);
  assert.throws(() => fieldUint(b!, 'b', 'm'), isFormatError(/too large/));
  assert.equal(fieldInt32(c!, 'm'), -1);
  assert.equal(fieldInt64(c!, 'm'), -1);
  assert.equal(c!.length, 10, 'negative int64 takes 10 bytes');
  assert.equal(fieldInt64Big(d!, 'm'), -(2n ** 40n));
  assert.equal(fieldUint(e!, 'e', 'm'), Number.MAX_SAFE_INTEGER);
});

void test('fixed32/fixed64 and wire type checks', () => {
  const big = new Uint8Array(8);
  new DataView(big.buffer).setBigUint64(0, 0xfedcba9876543210n, true);
  const msg = cat(f32field(1, 1.5), f64field(2, -2.25), [...tag(3, 1), ...big]);
  const [a, b, c] = readAll(new ProtoReader(msg));
  assert.equal(a!.wireType, WIRE_I32);
  assert.equal(fieldFloat(a!, 'm'), 1.5);
  assert.equal(b!.wireType, WIRE_I64);
  assert.equal(fieldDouble(b!, 'm'), -2.25);
  assert.equal(fieldFixed64(c!, 'm'), 0xfedcba9876543210n);
  assert.throws(() => fieldFloat(b!, 'm'), isFormatError(/wire type 1, expected 5/));
});

void test('length-delimited payloads and children carry absolute offsets', () => {
  const inner = cat(vfield(1, 7), lfield(2, [0x61, 0x62]));
  const msg = cat(vfield(9, 1), lfield(3, inner));
  const r = new ProtoReader(msg, 1000);
  const [, sub] = readAll(r);
  assert.equal(sub!.wireType, WIRE_LEN);
  assert.equal(sub!.offset, 1000 + 2 + 2);
  const child = r.child(sub!);
  const [x, y] = readAll(child);
  assert.equal(fieldUint(x!, 'x', 'm'), 7);
  assert.deepEqual([...child.payload(y!)], [0x61, 0x62]);
  assert.equal(y!.offset, sub!.offset + 4);
});

void test('unknown fields and (nested) groups are skipped', () => {
  const group = [
    ...tag(5, 3),
    ...vfield(1, 1),
    ...tag(6, 3),
    ...lfield(2, [1, 2, 3]),
    ...tag(6, 4),
    ...f32field(3, 2),
    ...tag(5, 4),
  ];
  const msg = cat(vfield(1, 42), group, vfield(2, 43));
  const fields = readAll(new ProtoReader(msg));
  assert.deepEqual(
    fields.map((f) => f.field),
    [1, 2],
  );
  assert.equal(fields[1]!.varint, 43n);
});

void test('malformed input fails with clear errors', () => {
  assert.throws(
    () => readAll(new ProtoReader(cat(lfield(1, [1, 2, 3])).subarray(0, 4))),
    isFormatError(/truncated or corrupt: field 1 at byte 0 declares 3 B but only 2 B remain/),
  );
  assert.throws(() => readAll(new ProtoReader(cat([0x08, 0x80, 0x80]))), isFormatError(/truncated/));
  assert.throws(
    () => readAll(new ProtoReader(cat([0x08], Array<number>(11).fill(0xff)))),
    isFormatError(/longer than 10 bytes/),
  );
  assert.throws(() => readAll(new ProtoReader(cat([0x0e, 0x00]))), isFormatError(/invalid wire type 6/));
  assert.throws(() => readAll(new ProtoReader(cat([0x00]))), isFormatError(/invalid protobuf field number 0/));
  assert.throws(() => readAll(new ProtoReader(cat(tag(5, 4)))), isFormatError(/unmatched end of group/));
  assert.throws(() => readAll(new ProtoReader(cat(tag(5, 3), tag(6, 4)))), isFormatError(/mismatched end of group/));
  assert.throws(() => readAll(new ProtoReader(cat(tag(5, 3), vfield(1, 1)))), isFormatError(/truncated/));
  assert.throws(() => readAll(new ProtoReader(cat([0x0d, 1, 2]))), isFormatError(/truncated/));
});

void test('nesting deeper than the limit is refused', () => {
  let msg: number[] = vfield(1, 1);
  for (let i = 0; i < LIMITS.maxNesting + 5; i++) msg = lfield(1, msg);
  let r = new ProtoReader(Uint8Array.from(msg));
  assert.throws(
    () => {
      for (;;) {
        const f = r.next();
        if (f === undefined || f.wireType !== WIRE_LEN) break;
        r = r.child(f);
      }
    },
    isFormatError(/deeper than 200 levels/),
  );
  // Deeply nested groups too.
  const groups = [
    ...Array<number[]>(LIMITS.maxNesting + 5)
      .fill(tag(2, 3))
      .flat(),
    ...Array<number[]>(LIMITS.maxNesting + 5)
      .fill(tag(2, 4))
      .flat(),
  ];
  assert.throws(() => readAll(new ProtoReader(Uint8Array.from(groups))), isFormatError(/groups deeper/));
});

void test('packed varints decode as int32, int64, uint32 and uint64', () => {
  const packed = Uint8Array.from([
    ...varint(1),
    ...varint(-1),
    ...varint(300),
    ...varint(2n ** 40n),
    ...varint(2n ** 64n - 2n),
  ]);
  assert.equal(countPackedVarints(packed, 'm'), 5);
  const out = new Float64Array(5);
  decodePackedVarints(packed, 'int64', out, 0, 'm');
  assert.deepEqual([...out], [1, -1, 300, 2 ** 40, -2]);
  decodePackedVarints(packed, 'int32', out, 0, 'm');
  assert.deepEqual([...out], [1, -1, 300, 0, -2]);
  decodePackedVarints(packed, 'uint32', out, 0, 'm');
  assert.deepEqual([...out], [1, 4294967295, 300, 0, 4294967294]);
  decodePackedVarints(packed, 'uint64', out, 0, 'm');
  assert.deepEqual([...out], [1, 2 ** 64, 300, 2 ** 40, 2 ** 64]);
  assert.throws(() => countPackedVarints(Uint8Array.from([1, 0x80]), 'm'), isFormatError(/middle of a value/));
  assert.deepEqual(decodePackedInt64s(Uint8Array.from([...varint(2n ** 62n), ...varint(-3)]), 4, 'dims', 'm'), [
    2n ** 62n,
    -3n,
  ]);
  assert.throws(
    () => decodePackedInt64s(Uint8Array.from([1, 2, 3]), 2, 'dims', 'm'),
    isFormatError(/dims has more than 2 values/),
  );
});

/** A ByteSource that records every read, to check what the cursor touches. */
class CountingSource implements ByteSource {
  reads: [number, number][] = [];
  constructor(private readonly inner: ByteSource) {}
  get size(): number {
    return this.inner.size;
  }
  get name(): string {
    return this.inner.name;
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    this.reads.push([offset, length]);
    return this.inner.read(offset, length);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

void test('the cursor scans headers without reading large payloads', async () => {
  const blob = new Uint8Array(3 * 1024 * 1024).fill(7);
  const blobField = Uint8Array.from([...tag(9, 2), ...varint(blob.length)]);
  const innerHead = cat(vfield(1, 5));
  const innerTail = cat(vfield(2, 6));
  const innerLength = innerHead.length + blobField.length + blob.length + innerTail.length;
  const parts = [
    cat(lfield(1, [0x61])),
    Uint8Array.from([...tag(7, 2), ...varint(innerLength)]),
    innerHead,
    blobField,
    blob,
    innerTail,
    cat(vfield(3, 99)),
  ];
  const msg = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => {
    msg.set(p, at);
    return at + p.length;
  }, 0);
  const source = new CountingSource(new MemoryByteSource(msg, 'big.bin'));
  const cur = ProtoCursor.over(source);
  const seen: number[] = [];
  let payloadAt = -1;
  for (let f = await cur.next(); f !== undefined; f = await cur.next()) {
    seen.push(f.field);
    if (f.field === 7) {
      const child = cur.child(f);
      for (let g = await child.next(); g !== undefined; g = await child.next()) {
        if (g.field === 9) {
          payloadAt = g.offset;
          assert.equal(g.length, blob.length);
        }
      }
    }
  }
  assert.deepEqual(seen, [1, 7, 3]);
  assert.ok(payloadAt > 0);
  const total = source.reads.reduce((s, [, n]) => s + n, 0);
  assert.ok(total < 300 * 1024, `read ${total} bytes to scan a 3 MB message`);
  assert.ok(
    source.reads.every(([, n]) => n <= 64 * 1024),
    'every read is one window at most',
  );
});

void test('the cursor handles fields that straddle its window and reads payloads on request', async () => {
  const parts: number[][] = [];
  for (let i = 0; i < 5000; i++)
    parts.push(lfield(1 + (i % 3), Array<number>(20 + (i % 17)).fill(i & 0xff)), vfield(4, BigInt(i) * 2n ** 40n));
  const msg = cat(...parts);
  const source = new MemoryByteSource(msg, 'many.bin');
  const sync = readAll(new ProtoReader(msg));
  const cur = ProtoCursor.over(source);
  let i = 0;
  for (let f = await cur.next(); f !== undefined; f = await cur.next(), i++) {
    const s = sync[i]!;
    assert.equal(f.field, s.field);
    assert.equal(f.offset, s.offset);
    assert.equal(f.varint, s.varint);
    if (f.wireType === WIRE_LEN) {
      const p = await cur.payload(f, 'test payload', 1000);
      assert.equal(p.length, f.length);
      assert.equal(p[0], (i >> 1) & 0xff);
    } else {
      assert.equal(f.wireType, WIRE_VARINT);
    }
  }
  assert.equal(i, sync.length);
});

void test('the cursor refuses payloads over a limit and lengths past the end', async () => {
  const msg = cat(lfield(1, Array<number>(100).fill(1)));
  const cur = ProtoCursor.over(new MemoryByteSource(msg, 'x.onnx'));
  const f = await cur.next();
  await assert.rejects(
    cur.payload(f!, 'tensor name', 10),
    isFormatError(/x\.onnx: tensor name at byte 2 is 100 B, over the 10 B limit/),
  );
  const lying = cat([...tag(7, 2), ...varint(2n ** 40n)], [1, 2, 3]);
  const cur2 = ProtoCursor.over(new MemoryByteSource(lying, 'lying.onnx'));
  await assert.rejects(
    cur2.next(),
    isFormatError(/lying\.onnx is truncated or corrupt: field 7 at byte 0 declares 1\.1 TB but only 3 B remain/),
  );
  const groups = cat(tag(5, 3), vfield(1, 1), tag(5, 4), vfield(2, 2));
  const cur3 = ProtoCursor.over(new MemoryByteSource(groups, 'g'));
  const g = await cur3.next();
  assert.equal(g?.field, 2);
});
