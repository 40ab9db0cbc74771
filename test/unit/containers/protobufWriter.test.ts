// The protobuf writer round-trips through the reader: varints (incl. negatives and 64-bit), floats, strings, nested
// messages and packed varints; bad field numbers are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodePackedInt64s,
  decodeUtf8,
  fieldFloat,
  fieldInt64Big,
  ProtoReader,
  WIRE_I32,
  WIRE_LEN,
  WIRE_VARINT,
} from '../../../src/core/containers/protobuf';
import { ProtoWriter } from '../../../src/core/containers/protobufWriter';

void test('writes fields the reader decodes', () => {
  const bytes = new ProtoWriter()
    .varint(1, 0)
    .varint(2, 300)
    .varint(3, -1)
    .varint(4, 2n ** 62n)
    .float(5, 1.5)
    .string(6, 'héllo')
    .message(7, (w) => w.varint(1, 17).string(2, 'x'))
    .packedVarints(8, [1, 2, 2 ** 40, -3])
    .varint(0x1fffffff, 5)
    .finish();
  const r = new ProtoReader(bytes);
  const fields = [];
  for (let f = r.next(); f; f = r.next()) fields.push(f);
  assert.deepEqual(
    fields.map((f) => f.field),
    [1, 2, 3, 4, 5, 6, 7, 8, 0x1fffffff],
  );
  assert.equal(fields[0]!.varint, 0n);
  assert.equal(fields[1]!.varint, 300n);
  assert.equal(fieldInt64Big(fields[2]!, 't'), -1n);
  assert.equal(fields[3]!.varint, 2n ** 62n);
  assert.equal(fields[4]!.wireType, WIRE_I32);
  assert.equal(fieldFloat(fields[4]!, 't'), 1.5);
  assert.equal(fields[5]!.wireType, WIRE_LEN);
  assert.equal(decodeUtf8(r.payload(fields[5]!)), 'héllo');
  const inner = r.child(fields[6]!);
  const a = inner.next()!;
  const b = inner.next()!;
  assert.equal(a.wireType, WIRE_VARINT);
  assert.equal(a.varint, 17n);
  assert.equal(decodeUtf8(inner.payload(b)), 'x');
  assert.equal(inner.next(), undefined);
  assert.deepEqual(decodePackedInt64s(r.payload(fields[7]!), 10, 'dims', 't'), [1n, 2n, 2n ** 40n, -3n]);
});

void test('grows past its initial buffer', () => {
  const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
  const bytes = new ProtoWriter().bytes(1, big).varint(2, 1).finish();
  const r = new ProtoReader(bytes);
  assert.deepEqual(r.payload(r.next()!), big);
  assert.equal(r.next()!.varint, 1n);
});

void test('refuses invalid field numbers and unsafe integers', () => {
  assert.throws(() => new ProtoWriter().varint(0, 1), RangeError);
  assert.throws(() => new ProtoWriter().varint(0x20000000, 1), RangeError);
  assert.throws(() => new ProtoWriter().varint(1, 2 ** 53), RangeError);
  assert.throws(() => new ProtoWriter().varint(1, 0.5), RangeError);
});
