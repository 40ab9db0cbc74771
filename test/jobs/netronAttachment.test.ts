// The Netron attachment job in process (src/core/jobs/netronAttachment.ts): a cancel during the spectra leaves no
// output and no temporary, and an existing attachment is replaced only by a whole new one. The file's structure and
// figures are checked against inspect and spectra in test/cli/attachment.test.ts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError } from '../../src/core/io/errors';
import { writeNetronAttachment } from '../../src/core/jobs/netronAttachment';
import type { NetronAttachmentDto } from '../../src/protocol/convert';

const RESNET = join(__dirname, '..', 'fixtures', 'models', 'resnet20_fmnist.onnx');
const dir = mkdtempSync(join(tmpdir(), 'wl-attachment-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

void test('a cancel during the spectra leaves no attachment and no temporary', async () => {
  const out = join(dir, 'cancelled.attachment.json');
  const controller = new AbortController();
  const phases: string[] = [];
  await assert.rejects(
    writeNetronAttachment(
      RESNET,
      { out, spectra: true, maxRank: 0 },
      {
        signal: controller.signal,
        onProgress: (p) => {
          phases.push(p.phase);
          if (p.phase === 'spectra') controller.abort();
        },
      },
    ),
    CancelledError,
  );
  assert.ok(phases.includes('statistics') && phases.includes('spectra'), phases.join(','));
  assert.ok(!existsSync(out));
  assert.deepEqual(readdirSync(dir), []);
});

void test('an existing attachment is replaced whole; statistics only without spectra', async () => {
  const out = join(dir, 'resnet.attachment.json');
  writeFileSync(out, 'old');
  const report = await writeNetronAttachment(RESNET, { out, spectra: false, maxRank: 0 });
  assert.equal(report.spectra, 0);
  const data = JSON.parse(readFileSync(out, 'utf8')) as NetronAttachmentDto;
  assert.equal(data.signature, 'netron:attachment');
  assert.equal(data.producer, 'Weight Lens');
  assert.equal(data.metrics.length, report.metrics);
  assert.ok(!data.metrics.some((m) => m.name === 'alpha'));
  assert.deepEqual(readdirSync(dir).sort(), ['resnet.attachment.json']);
});
