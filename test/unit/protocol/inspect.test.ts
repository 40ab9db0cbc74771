// The parameter headline (src/protocol/inspect.ts weightCounts): learned float weights are counted apart from the
// integer constants (shape tensors, indices) that some formats store beside them, on the project's real ONNX export.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { inspectFile } from '../../../src/core/jobs/inspect';
import { isIntegerDtype, otherValuesText, weightCounts } from '../../../src/protocol/inspect';

const root = join(__dirname, '..', '..', '..');

void test('the ResNet-20 ONNX export: 270,810 float weights, 48 integer values in 36 tensors', async () => {
  const report = await inspectFile(join(root, 'test', 'fixtures', 'models', 'resnet20_fmnist.onnx'), {
    headersOnly: true,
  });
  assert.equal(report.totals.params, 270_858);
  const counts = weightCounts(report.byDtype);
  assert.deepEqual(counts, { float: 270_810, other: 48, otherTensors: 36 });
  assert.equal(otherValuesText(counts), '+ 48 integer values in 36 tensors');
});

void test('quantised float weights count as float weights; integers and booleans do not', () => {
  for (const d of ['F32', 'BF16', 'F8_E4M3', 'Q4_0', 'uint8 (quantized)', 'float16 (quantized)'])
    assert.ok(!isIntegerDtype(d), d);
  for (const d of ['I64', 'I8', 'U8', 'U16', 'BOOL', 'int32', 'uint8']) assert.ok(isIntegerDtype(d), d);
  assert.equal(otherValuesText({ other: 0, otherTensors: 0 }), '');
  assert.equal(otherValuesText({ other: 1, otherTensors: 1 }), '+ 1 integer value in 1 tensor');
});
