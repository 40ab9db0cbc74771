// The committed corpus of broken and hostile files: each must end in a CheckpointFormatError whose message matches
// the manifest (a sentence a user can act on), in-process, without crashing or hanging.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { inspectFile } from '../../../src/core/jobs/inspect';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { FIXTURES, hostileCases } from '../../helpers/fixtures';

const cases = hostileCases();

// The first HDF5 file compiles the h5wasm module (seconds on a busy machine): do it before the per-case timeouts run.
before(
  async () => {
    await inspectFile(join(FIXTURES, 'keras', 'generic.h5'), { headersOnly: true });
  },
  { timeout: 120_000 },
);

test('the hostile corpus covers every required kind of damage', () => {
  const groups = new Set(cases.map((c) => c.group));
  for (const g of ['safetensors', 'pytorch', 'onnx', 'tfjs', 'keras', 'numpy', 'gguf', 'zip'])
    assert.ok(groups.has(g), `no hostile cases for ${g}`);
  assert.ok(cases.length >= 15, `only ${cases.length} hostile cases`);
});

for (const c of cases) {
  test(`hostile ${c.group}/${c.file} (${c.why}) fails clearly`, { timeout: 20_000 }, async () => {
    await assert.rejects(inspectFile(c.path, { bins: 16 }), (error: unknown) => {
      assert.ok(error instanceof CheckpointFormatError, `expected CheckpointFormatError, got ${String(error)}`);
      assert.match(error.message, new RegExp(c.message, 'i'));
      assert.ok(!error.message.includes('\n'), 'the message is one line');
      return true;
    });
  });
}
