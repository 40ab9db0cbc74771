// Tests of the .npy header parser: real NumPy-written headers, the descr table, the literal parser (which must
// never evaluate anything) and the Fortran-order transpose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import {
  fortranToRowMajor,
  hasNpyMagic,
  parseDescr,
  parseNpyHeader,
  parseNpyPreamble,
  parsePythonLiteral,
} from '../../../src/core/containers/npy';

const NUMPY = join(__dirname, '..', '..', 'fixtures', 'numpy');

function header(text: string, version: 1 | 2 | 3 = 1): Uint8Array {
  const body = Buffer.from(text, version === 3 ? 'utf8' : 'latin1');
  const pre = Buffer.alloc(version === 1 ? 10 : 12);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(pre);
  if (version === 1) pre.writeUInt16LE(body.length, 8);
  else pre.writeUInt32LE(body.length, 8);
  return Buffer.concat([pre, body]);
}

void test('parses headers NumPy wrote (versions 1, 2, 3; big-endian; Fortran order; scalars)', async () => {
  const cases: [string, Partial<ReturnType<typeof parseNpyHeader>>][] = [
    ['f64.npy', { descr: '<f8', dtype: 'F64', shape: [3, 5], fortranOrder: false, littleEndian: true, itemBytes: 8 }],
    ['big_endian_f4.npy', { descr: '>f4', dtype: 'F32', littleEndian: false, shape: [4, 3] }],
    ['bool.npy', { descr: '|b1', dtype: 'BOOL', littleEndian: true }],
    ['fortran_order.npy', { fortranOrder: true, shape: [3, 4, 5] }],
    ['scalar.npy', { shape: [], params: 1 }],
    ['empty.npy', { shape: [0, 3], params: 0, dataBytes: 0 }],
    ['version_2.npy', { version: [2, 0], headerOffset: 12 }],
    ['version_3.npy', { version: [3, 0], headerOffset: 12 }],
    ['object_array.npy', { descr: '|O', dtype: undefined }],
  ];
  for (const [file, expected] of cases) {
    const bytes = await readFile(join(NUMPY, file));
    const parsed = parseNpyHeader(bytes, file);
    for (const [key, value] of Object.entries(expected)) {
      assert.deepEqual(parsed[key as keyof typeof parsed], value, `${file}: ${key}`);
    }
    assert.equal(parsed.dataOffset % 16, 0, 'NumPy aligns the data');
  }
});

void test('descr table: decodable types, byte order, and clear reasons for the rest', () => {
  const table: [string, string | undefined, number, boolean][] = [
    ['<f4', 'F32', 4, true],
    ['>f4', 'F32', 4, false],
    ['<f2', 'F16', 2, true],
    ['<f8', 'F64', 8, true],
    ['|u1', 'U8', 1, true],
    ['|i1', 'I8', 1, true],
    ['|b1', 'BOOL', 1, true],
    ['<i8', 'I64', 8, true],
    ['>i2', 'I16', 2, false],
    ['<u4', 'U32', 4, true],
    ['=f4', 'F32', 4, true],
    ['>u1', 'U8', 1, true],
  ];
  for (const [descr, dtype, bytes, little] of table) {
    const info = parseDescr(descr);
    assert.equal(info.dtype, dtype, descr);
    assert.equal(info.itemBytes, bytes, descr);
    assert.equal(info.littleEndian, little, descr);
  }
  assert.match(parseDescr('<c8').reason ?? '', /complex/);
  assert.match(parseDescr('<U5').reason ?? '', /unicode/);
  assert.equal(parseDescr('<U5').itemBytes, 20);
  assert.match(parseDescr('|O').reason ?? '', /objects/);
  assert.match(parseDescr('<f16').reason ?? '', /128-bit floats/);
  assert.match(parseDescr('<M8[ns]').reason ?? '', /not supported/);
});

void test('the literal parser handles what repr writes and nothing more', () => {
  const dict = parsePythonLiteral("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }");
  assert.ok(dict instanceof Map);
  assert.equal(dict.get('descr'), '<f4');
  assert.equal(dict.get('fortran_order'), false);
  assert.deepEqual(dict.get('shape'), [3, 4]);
  assert.deepEqual(parsePythonLiteral('(5,)'), [5]);
  assert.deepEqual(parsePythonLiteral('()'), []);
  assert.deepEqual(parsePythonLiteral("[('a', '<f4'), ('b', '<i8')]"), [
    ['a', '<f4'],
    ['b', '<i8'],
  ]);
  assert.deepEqual(parsePythonLiteral('(10L, -2, 1.5e3, None, True)'), [10, -2, 1500, null, true]);
  assert.equal(parsePythonLiteral(String.raw`"it's \"quoted\""`), 'it\'s "quoted"');
  for (const bad of [
    "__import__('os')",
    "{'a': os.system('x')}",
    '{1: 2}',
    "{'a' 1}",
    "'unterminated",
    '(1, 2',
    '1 2',
    'lambda: 0',
  ]) {
    assert.throws(() => parsePythonLiteral(bad), Error, bad);
  }
  assert.throws(() => parsePythonLiteral('['.repeat(1000) + ']'.repeat(1000)), /nesting/);
});

void test('malformed and hostile headers are CheckpointFormatErrors', () => {
  const bad: [Uint8Array, RegExp][] = [
    [Buffer.from('not npy'), /does not start with/],
    [header('{}').subarray(0, 8), /truncated/],
    [header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }").subarray(0, 20), /truncated/],
    [header("{'descr': '<f4', 'shape': (2,), }"), /fortran_order/],
    [header("{'descr': '<f4', 'fortran_order': False, 'shape': ('a',), }"), /shape/],
    [header("{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,), }"), /invalid dimension/],
    [header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }"), /structured/],
    [header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } trailing"), /malformed/],
    [header('[1, 2]'), /not a dict/],
  ];
  for (const [bytes, pattern] of bad) {
    assert.throws(
      () => parseNpyHeader(bytes, 'bad.npy'),
      (error: unknown) => error instanceof CheckpointFormatError && pattern.test(error.message),
    );
  }
  const v3 = parseNpyHeader(header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'é': 1}", 3), 'v3.npy');
  assert.equal(v3.params, 2);
  assert.equal(parseNpyPreamble(header('{}', 2), 'x').headerLength, 2);
  assert.equal(hasNpyMagic(new Uint8Array([0x93, 0x4e])), false);
});

void test('Fortran order is transposed to row-major', () => {
  // A 2x3x2 array whose column-major element order is 0..11: element (i, j, k) = i + 2j + 6k.
  const shape = [2, 3, 2];
  const column = Uint8Array.from({ length: 12 }, (_, n) => n);
  const rowMajor = fortranToRowMajor(column, shape, 1);
  const expected: number[] = [];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 2; k++) expected.push(i + 2 * j + 6 * k);
  assert.deepEqual([...rowMajor], expected);
  // Multi-byte elements move whole.
  const wide = new Uint8Array(new Uint16Array([0x0100, 0x0302, 0x0504, 0x0706]).buffer);
  assert.deepEqual([...new Uint16Array(fortranToRowMajor(wide, [2, 2], 2).buffer)], [0x0100, 0x0504, 0x0302, 0x0706]);
  assert.equal(fortranToRowMajor(column, [12], 1), column);
});
