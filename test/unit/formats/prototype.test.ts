// File strings that name Object.prototype's keys (`__proto__`, `constructor`) as a dtype, a NumPy descr, a metadata
// key or a tensor name are plain names: opening such a file must not change any object's prototype, so a clean
// checkpoint inspected afterwards in the same process still reports the right sizes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { inspectFile } from '../../../src/core/jobs/inspect';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { FIXTURES } from '../../helpers/fixtures';

const CRAFTED = join(FIXTURES, 'hostile', 'crafted');

/** Inspects a clean fixture and checks that every total is the sum of its tensors. */
async function cleanSizesAreRight(): Promise<void> {
  const report = await inspectFile(join(FIXTURES, 'safetensors', 'tiny_cnn.safetensors'), { bins: 8 });
  const bytes = report.tensors.reduce((n, t) => n + t.bytes, 0);
  const params = report.tensors.reduce((n, t) => n + t.params, 0);
  assert.equal(report.totals.bytes, bytes);
  assert.equal(report.totals.params, params);
  for (const [dtype, totals] of Object.entries(report.byDtype)) {
    assert.ok(
      Number.isFinite(totals.bytes) && Number.isFinite(totals.params),
      `byDtype ${dtype}: ${JSON.stringify(totals)}`,
    );
  }
  const probe: Record<string, unknown> = {};
  for (const key of ['bytes', 'params', 'tensors'])
    assert.equal(probe[key], undefined, `Object.prototype.${key} was set`);
}

test('a safetensors dtype "__proto__" and metadata keys "__proto__"/"constructor" are plain names', async () => {
  const report = await inspectFile(join(CRAFTED, 'proto_dtype.safetensors'), { bins: 8 });
  assert.deepEqual(
    report.tensors.map((t) => [t.name, t.dtype, t.bytes]),
    [
      ['w', '__proto__', 16],
      ['constructor', 'F32', 8],
    ],
  );
  assert.equal(report.tensors[0]?.notDecoded, 'safetensors dtype "__proto__" is not decoded');
  assert.ok(Object.hasOwn(report.byDtype, '__proto__'));
  assert.equal(report.byDtype.__proto__?.bytes, 16);
  assert.ok(Object.hasOwn(report.metadata, '__proto__'));
  assert.equal(report.metadata.__proto__, 'x');
  assert.equal(report.metadata.constructor, 'y');
  await cleanSizesAreRight();
});

test('a NumPy descr "__proto__" is listed as not decoded and pollutes nothing', async () => {
  const report = await inspectFile(join(CRAFTED, 'proto_descr.npy'), { bins: 8 });
  const tensor = report.tensors[0];
  assert.ok(tensor);
  assert.equal(tensor.dtype, '__proto__');
  assert.match(tensor.notDecoded ?? '', /NumPy dtype "__proto__" is not supported/);
  assert.equal(report.byDtype.__proto__?.tensors, 1);
  await cleanSizesAreRight();
});

test('a TF.js dtype "__proto__" is refused by name and pollutes nothing', async () => {
  await assert.rejects(
    inspectFile(join(CRAFTED, 'proto_tfjs', 'model.json')),
    (e: unknown) => e instanceof CheckpointFormatError && /dtype "__proto__"/.test(e.message),
  );
  await cleanSizesAreRight();
});
