// The CLI's --pointwise flag: how compress represents 1×1 convolutions (blocks by default, NeRN's centre on request).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../../src/cli/args';
import { compressOptionsFromArgs } from '../../../src/cli/compressCommands';

void test('compress --pointwise: blocks by default, centre on request, anything else a usage error', () => {
  assert.deepEqual(compressOptionsFromArgs(['m.pt']).options.represent, {
    conv: true,
    dense: false,
    pointwise: 'blocks',
  });
  assert.deepEqual(compressOptionsFromArgs(['m.pt', '--pointwise', 'centre', '--dense']).options.represent, {
    conv: true,
    dense: true,
    pointwise: 'centre',
  });
  assert.throws(() => compressOptionsFromArgs(['m.pt', '--pointwise', 'center']), UsageError);
  assert.throws(
    () => compressOptionsFromArgs(['m.pt', '--pointwise', 'tiles']),
    /--pointwise must be one of blocks, centre/,
  );
});
