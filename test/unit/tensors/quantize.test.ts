// Round-to-nearest quantisation checked against NumPy on real trained weights (test/fixtures/quantize/resnet20_rtn.npz,
// written by test/fixtures/make/quantize_reference.py from the project's ResNet-20), and the 4-bit packing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openCheckpoint } from '../../../src/core/formats/registry';
import type { Checkpoint } from '../../../src/core/formats/types';
import {
  dequantizeMatrix,
  packInt4,
  quantizeMatrix,
  roundHalfEven,
  roundToF16,
  unpackInt4,
  type QuantBits,
} from '../../../src/core/tensors/quantize';

const REFERENCE = join(__dirname, '..', '..', 'fixtures', 'quantize', 'resnet20_rtn.npz');
const NAMES = ['conv1.weight', 'layer2.0.conv1.weight', 'layer3.2.conv2.weight', 'linear.weight'];

async function values(checkpoint: Checkpoint, name: string): Promise<{ shape: readonly number[]; data: number[] }> {
  const entry = checkpoint.tensors.find((t) => t.name === name);
  assert.ok(entry, `${name} is in the reference`);
  const data: number[] = [];
  for await (const chunk of entry.values()) for (const v of chunk) data.push(v);
  return { shape: entry.shape, data };
}

void test('int8 and int4 per-output-channel codes and scales equal NumPy on trained ResNet-20 weights', async () => {
  const reference = await openCheckpoint(REFERENCE);
  try {
    for (const name of NAMES) {
      const w = await values(reference, name);
      const rows = w.shape[0] ?? 0;
      const cols = w.data.length / rows;
      for (const bits of [8, 4] as QuantBits[]) {
        const q = quantizeMatrix(Float32Array.from(w.data), rows, cols, bits, 'row');
        const codes = await values(reference, `${name}.int${bits}.codes`);
        const scales = await values(reference, `${name}.int${bits}.scales`);
        assert.deepEqual(Array.from(q.scales), scales.data, `${name} int${bits} scales`);
        assert.deepEqual(Array.from(q.codes), codes.data, `${name} int${bits} codes`);
        // Dequantised values are within half a step of the originals.
        const back = dequantizeMatrix(q);
        for (let i = 0; i < back.length; i++) {
          const step = q.scales[Math.floor(i / cols)] ?? 0;
          assert.ok(Math.abs((back[i] ?? 0) - (w.data[i] ?? 0)) <= step / 2 + 1e-7, `${name}[${i}] within half a step`);
        }
      }
    }
  } finally {
    await reference.close();
  }
});

void test('column scales are the row scales of the transpose', () => {
  const rows = 5;
  const cols = 7;
  const m = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 3)));
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c] ?? 0;
  const byColumn = quantizeMatrix(m, rows, cols, 4, 'column');
  const byRowOfT = quantizeMatrix(t, cols, rows, 4, 'row');
  assert.deepEqual(Array.from(byColumn.scales), Array.from(byRowOfT.scales));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) assert.equal(byColumn.codes[r * cols + c], byRowOfT.codes[c * rows + r]);
  }
});

void test('a group of zeros has scale 0 and codes 0; non-finite values are refused', () => {
  const q = quantizeMatrix(new Float32Array([0, 0, 0, 1, -2, 0.5]), 2, 3, 8, 'row');
  assert.deepEqual(Array.from(q.scales), [0, Math.fround(2 / 127)]);
  assert.deepEqual(Array.from(q.codes), [0, 0, 0, 64, -127, 32]);
  assert.throws(() => quantizeMatrix(new Float32Array([1, Number.NaN]), 1, 2, 8, 'row'), /cannot be quantised/);
  assert.throws(() => quantizeMatrix(new Float32Array(3), 2, 2, 8, 'row'), /2 × 2 matrix has 4 values, not 3/);
});

void test('rounding is half to even, as ONNX Round and tf.round are', () => {
  assert.deepEqual([-3.5, -2.5, -0.5, 0.5, 1.5, 2.5, 2.4, -2.6].map(roundHalfEven), [-4, -2, -0, 0, 2, 2, 2, -3]);
});

void test('int4 codes pack two to a byte, low nibble first, and unpack exactly', () => {
  const codes = Int8Array.from([-8, 7, -1, 0, 3, -5, 1]);
  const packed = packInt4(codes);
  assert.deepEqual(Array.from(packed), [0x78, 0x0f, 0xb3, 0x01]);
  assert.deepEqual(Array.from(unpackInt4(packed, codes.length)), Array.from(codes));
  assert.throws(() => packInt4(Int8Array.from([8])), /does not fit in 4 bits/);
  assert.throws(() => unpackInt4(packed, 9), /take 5 bytes, not 4/);
});

void test('float16 rounding keeps representable values and rounds the rest to nearest even', () => {
  const out = roundToF16(Float32Array.from([1, 65504, 70000, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25]));
  assert.deepEqual(Array.from(out), [1, 65504, Infinity, 1, 1 + 2 ** -9, 0]);
});
