// Element decoding checked against NumPy (every float16 bit pattern), PyTorch (bfloat16) and the published FP8
// encodings (OCP 8-bit floating point: E4M3FN has no infinities, E5M2 follows IEEE rules).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeValues } from '../../../src/core/tensors/dtype';

const dir = join(__dirname, '../../fixtures/dtypes');
const bytes = (name: string): Uint8Array => new Uint8Array(readFileSync(join(dir, name)));

function sameFloats(actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(e)) assert.ok(Number.isNaN(a), `index ${i}: expected NaN, got ${a}`);
    else assert.ok(Object.is(a, e) || a === e, `index ${i}: ${a} vs ${e}`);
  }
}

test('float16 decoding matches NumPy for all 65,536 bit patterns', () => {
  sameFloats(decodeValues('F16', bytes('f16_bits.u16')), decodeValues('F32', bytes('f16_values.f32')));
});

test('bfloat16 decoding matches PyTorch', () => {
  sameFloats(decodeValues('BF16', bytes('bf16_bits.u16')), decodeValues('F32', bytes('bf16_values.f32')));
});

test('float8 E4M3FN and E5M2 decode the published extreme values', () => {
  const e4m3 = decodeValues('F8_E4M3', Uint8Array.from([0x00, 0x01, 0x08, 0x38, 0x7e, 0x7f, 0xfe, 0x80]));
  sameFloats(e4m3, [0, 2 ** -9, 2 ** -6, 1, 448, NaN, -448, -0]);
  const e5m2 = decodeValues('F8_E5M2', Uint8Array.from([0x01, 0x04, 0x3c, 0x7b, 0x7c, 0x7d, 0xfc]));
  sameFloats(e5m2, [2 ** -16, 2 ** -14, 1, 57344, Infinity, NaN, -Infinity]);
});

test('integer and big-endian decoding', () => {
  const be = new Uint8Array(8);
  new DataView(be.buffer).setFloat32(0, 1.5, false);
  new DataView(be.buffer).setFloat32(4, -2.25, false);
  sameFloats(decodeValues('F32', be, false), [1.5, -2.25]);
  const i64 = new BigInt64Array([-3n, 2n ** 40n]);
  sameFloats(decodeValues('I64', new Uint8Array(i64.buffer)), [-3, 2 ** 40]);
  sameFloats(decodeValues('I8', Uint8Array.from([0xff, 0x7f])), [-1, 127]);
  sameFloats(decodeValues('BOOL', Uint8Array.from([0, 1])), [0, 1]);
});

test('unaligned float32 input is decoded correctly', () => {
  const buf = new Uint8Array(9);
  new DataView(buf.buffer).setFloat32(1, 3.5, true);
  new DataView(buf.buffer).setFloat32(5, -1, true);
  sameFloats(decodeValues('F32', buf.subarray(1)), [3.5, -1]);
});

test('a byte count that is not whole elements is rejected', () => {
  assert.throws(() => decodeValues('F32', new Uint8Array(6)), /not a whole number of F32 elements/);
});
