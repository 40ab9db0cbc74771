// The export commands' text and default paths (src/extension/export/exportText.ts): the done message of a real
// conversion of the TF.js fixture (uint8-quantised kernels, dequantised) and of the ResNet-20 (nothing changed), and
// the default output beside the source, which is never the source itself.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertFile } from '../../../../src/core/jobs/convert';
import { convertSummary, defaultSafetensorsPath } from '../../../../src/extension/export/exportText';

const FIX = join(__dirname, '..', '..', '..', 'fixtures');
const dir = mkdtempSync(join(tmpdir(), 'wl-export-text-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

void test('the done message gives the tensor count and names the dequantised tensors', async () => {
  const tfjs = await convertFile(join(FIX, 'tfjs', 'layers', 'model.json'), join(dir, 'tfjs.safetensors'));
  const text = convertSummary(tfjs);
  assert.match(text, /^Exported 6 tensors of model\.json to tfjs\.safetensors\. /);
  const dequantized = tfjs.changed.filter((c) => c.dequantized);
  assert.ok(dequantized.length > 0);
  assert.match(text, new RegExp(`${dequantized.length} dequantised to F32: `));
  assert.match(text, /conv2\/kernel \(uint8 \(quantized\)\)/);
  const resnet = await convertFile(join(FIX, 'models', 'resnet20_fmnist.pt'), join(dir, 'resnet.npz'));
  assert.equal(
    convertSummary(resnet),
    `Exported ${resnet.tensors} tensors of resnet20_fmnist.pt to resnet.npz. None was dequantised.`,
  );
});

void test('the default output is beside the source, named after it, and never the source', () => {
  assert.equal(defaultSafetensorsPath('/m/resnet20.pt'), '/m/resnet20.safetensors');
  assert.equal(defaultSafetensorsPath('/m/model.json'), '/m/model.safetensors');
  assert.equal(defaultSafetensorsPath('/m/model.safetensors'), '/m/model.copy.safetensors');
  assert.equal(defaultSafetensorsPath('/m/model.safetensors.index.json'), '/m/model.safetensors');
  assert.equal(defaultSafetensorsPath('/m/weights'), '/m/weights.safetensors');
});
