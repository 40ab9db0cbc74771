// closeOnce makes a close function idempotent, as the Checkpoint and ByteSource contracts require; every reader's
// Checkpoint.close is built with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeOnce } from '../../../src/core/io/byteSource';

test('the wrapped close runs once; later calls share its promise', async () => {
  let calls = 0;
  const close = closeOnce(async () => {
    calls++;
    await Promise.resolve();
  });
  const first = close();
  const second = close();
  assert.equal(first, second);
  await Promise.all([first, second, close()]);
  assert.equal(calls, 1);
});
