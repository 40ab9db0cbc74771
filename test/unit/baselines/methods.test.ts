// The baseline compressors checked against NumPy on real trained weights (test/fixtures/baselines/
// resnet20_baselines.npz, written by test/fixtures/make/baselines_reference.py from the project's ResNet-20).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openCheckpoint } from '../../../src/core/formats/registry';
import type { Checkpoint } from '../../../src/core/formats/types';
import {
  decodeTensor,
  lowRankTensors,
  matrixView,
  pruneTensors,
  quantizeTensor,
  storedBytes,
  type BaselineInput,
  type CompressedTensor,
} from '../../../src/core/baselines/methods';
import { dequantizeMatrix, quantizeMatrix } from '../../../src/core/tensors/quantize';

const REFERENCE = join(__dirname, '..', '..', 'fixtures', 'baselines', 'resnet20_baselines.npz');
const NAMES = ['layer2.0.conv1.weight', 'layer3.2.conv2.weight'];

async function values(checkpoint: Checkpoint, name: string): Promise<{ shape: readonly number[]; data: number[] }> {
  const entry = checkpoint.tensors.find((t) => t.name === name);
  assert.ok(entry, `${name} is in the reference`);
  const data: number[] = [];
  for await (const chunk of entry.values()) for (const v of chunk) data.push(v);
  return { shape: entry.shape, data };
}

async function withReference(body: (ref: Checkpoint, inputs: BaselineInput[]) => Promise<void>): Promise<void> {
  const ref = await openCheckpoint(REFERENCE);
  try {
    const inputs: BaselineInput[] = [];
    for (const name of NAMES) {
      const w = await values(ref, name);
      inputs.push({ name, shape: w.shape, view: matrixView(w.shape, false), values: Float32Array.from(w.data) });
    }
    await body(ref, inputs);
  } finally {
    await ref.close();
  }
}

function decoded(t: CompressedTensor): Float32Array {
  return decodeTensor(t.form, new Map(t.parts.map((p) => [p.suffix, p.data])));
}

async function budget(ref: Checkpoint): Promise<number> {
  return (await values(ref, 'budget')).data[0] ?? 0;
}

void test('int8 codes and int4 packed bytes and scales equal NumPy; decoding is the dequantised matrix', async () => {
  await withReference(async (ref, inputs) => {
    for (const t of inputs) {
      const c8 = quantizeTensor(t, 8);
      assert.deepEqual(
        Array.from(new Int8Array(c8.parts[0]?.data.buffer ?? new ArrayBuffer(0))),
        (await values(ref, `${t.name}.int8.codes`)).data,
      );
      const c4 = quantizeTensor(t, 4);
      assert.deepEqual(Array.from(c4.parts[0]?.data ?? []), (await values(ref, `${t.name}.int4.packed`)).data);
      assert.deepEqual(
        Array.from(new Float32Array(Uint8Array.from(c4.parts[1]?.data ?? []).buffer)),
        (await values(ref, `${t.name}.int4.scales`)).data,
      );
      const { rows, cols } = t.view;
      assert.deepEqual(decoded(c4), dequantizeMatrix(quantizeMatrix(t.values, rows, cols, 4, 'row')));
      assert.equal(storedBytes([c4]), Math.ceil((rows * cols) / 2) + 4 * rows);
      assert.equal(storedBytes([c8]), rows * cols + 4 * rows);
    }
  });
});

void test('low-rank ranks and reconstructions match numpy.linalg.svd under the same byte budget', async () => {
  await withReference(async (ref, inputs) => {
    const b = await budget(ref);
    const out = lowRankTensors(inputs, b);
    assert.deepEqual(
      out.map((t) => t.form.rank),
      (await values(ref, 'lowrank.ranks')).data,
    );
    assert.ok(storedBytes(out) <= b, `${storedBytes(out)} bytes within the ${b}-byte budget`);
    for (const t of out) {
      const want = (await values(ref, `${t.name}.lowrank`)).data;
      const got = decoded(t);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs((got[i] ?? 0) - (want[i] ?? 0)));
      assert.ok(worst < 1e-5, `${t.name}: worst difference ${worst}`);
    }
  });
});

void test('global magnitude pruning keeps the same weights as NumPy, bitmap included in the bytes', async () => {
  await withReference(async (ref, inputs) => {
    const b = await budget(ref);
    const out = pruneTensors(inputs, b);
    assert.ok(storedBytes(out) <= b && storedBytes(out) > b - 4, `${storedBytes(out)} bytes fill the ${b}-byte budget`);
    for (const t of out) {
      assert.deepEqual(Array.from(t.parts[0]?.data ?? []), (await values(ref, `${t.name}.prune.mask`)).data);
      const want = (await values(ref, `${t.name}.prune.values`)).data;
      assert.deepEqual(Array.from(new Float32Array(Uint8Array.from(t.parts[1]?.data ?? []).buffer)), want);
      assert.equal(decoded(t).filter((v) => v !== 0).length, want.filter((v) => v !== 0).length);
    }
  });
});

void test('channel-last (hwio) weights quantise per output channel, the last dimension', () => {
  // [k, k, C_in, C_out] = [1, 1, 2, 3]: output channel j holds values j, 3 + j.
  const values = Float32Array.from([1, -2, 4, 0.5, 8, -1]);
  const t = quantizeTensor({ name: 'w', shape: [1, 1, 2, 3], view: matrixView([1, 1, 2, 3], true), values }, 8);
  const scales = new Float32Array(Uint8Array.from(t.parts[1]?.data ?? []).buffer);
  assert.deepEqual(
    Array.from(scales),
    [1, 8, 4].map((m) => Math.fround(m / 127)),
  );
  const back = decoded(t);
  for (let i = 0; i < values.length; i++) assert.ok(Math.abs((back[i] ?? 0) - (values[i] ?? 0)) < 0.04);
});
