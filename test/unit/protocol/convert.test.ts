// The default path of a Netron attachment (src/protocol/convert.ts): beside the checkpoint, its last extension
// replaced by `.attachment.json`, on POSIX and Windows paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultAttachmentPath } from '../../../src/protocol/convert';

void test('defaultAttachmentPath replaces the last extension by .attachment.json, beside the input', () => {
  assert.equal(defaultAttachmentPath('/m/resnet20.onnx'), '/m/resnet20.attachment.json');
  assert.equal(defaultAttachmentPath('/m/model.json'), '/m/model.attachment.json');
  assert.equal(defaultAttachmentPath('/m/a.b/weights'), '/m/a.b/weights.attachment.json');
  assert.equal(defaultAttachmentPath('C:\\m\\x.safetensors'), 'C:\\m\\x.attachment.json');
  assert.equal(defaultAttachmentPath('/m/.hidden'), '/m/.hidden.attachment.json');
});
