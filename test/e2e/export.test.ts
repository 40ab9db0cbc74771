// Export in a real VS Code (code-server + Chromium), installed from the packaged .vsix: the project's ResNet-20
// (torch.save) is opened in the Inspector, "Weight Lens: Export as safetensors…" is run from the palette, its save
// dialog (code-server's simple dialog, a quick input) is answered with the default path beside the source, the
// notification's "Open in Inspector" opens the written file, which shows the same tensor count; then "Export Netron
// Attachment…" from the Inspector's title bar writes a netron:attachment file beside it. Screenshots go to test-results/export-*.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStep, Session, TIMEOUTS } from './harness';

const RESNET = join(__dirname, '..', 'fixtures', 'models', 'resnet20_fmnist.pt');

void describe('Export in VS Code (code-server)', { timeout: 300_000 }, () => {
  let session: Session | undefined;

  before(
    async () => {
      session = await Session.start({ name: 'export', files: [{ from: RESNET, to: 'resnet20_fmnist.pt' }] });
    },
    { timeout: 240_000 },
  );

  after(async () => {
    if (session !== undefined) {
      session.keepLogs('export');
      await session.close();
    }
  });

  const step = (name: string, body: (s: Session) => Promise<void>): Promise<void> => runStep(session, name, body);
  const digits = (t: string): string => t.replace(/\D/g, '');

  /** Answers the save dialog titled `title` (a quick input in code-server) with its default path; returns that path. */
  async function acceptSaveDialog(s: Session, title: string): Promise<string> {
    const widget = s.page.locator('.quick-input-widget');
    await widget.locator('.quick-input-title', { hasText: title }).waitFor({ state: 'visible', timeout: 60_000 });
    const input = widget.locator('input.input');
    // The simple dialog fills in the folder first, then the default file name.
    const deadline = Date.now() + 15_000;
    let value = await input.inputValue();
    while (!/[^/\\]\.[a-z]+$/i.test(value) && Date.now() < deadline) {
      await s.page.waitForTimeout(200);
      value = await input.inputValue();
    }
    await input.press('Enter');
    await widget.waitFor({ state: 'hidden', timeout: TIMEOUTS.quickInput });
    return value;
  }

  /** Waits until the progress notification starting with `title` has closed, so a screenshot shows the result. */
  async function progressGone(s: Session, title: string): Promise<void> {
    await s.page
      .locator('.notification-list-item', { hasText: title })
      .first()
      .waitFor({ state: 'hidden', timeout: 30_000 })
      .catch(() => undefined);
    await s.page.waitForTimeout(500);
  }

  void test(
    'Export as safetensors… writes a file that re-opens in the Inspector with the same tensors',
    { timeout: 240_000 },
    async () => {
      let count = '';
      await step('open the source', async (s) => {
        await s.openFile('resnet20_fmnist.pt');
        const { text } = await s.waitForTestId('tensor-count', { accept: (t) => digits(t) !== '0' });
        count = digits(text);
      });
      await step('export as safetensors', async (s) => {
        await s.runCommand('Weight Lens: Export as safetensors…');
        const chosen = await acceptSaveDialog(s, 'Export resnet20_fmnist.pt as safetensors');
        assert.match(chosen, /resnet20_fmnist\.safetensors$/);
        const toast = s.page
          .locator('.notification-list-item', { hasText: `Exported ${count} tensors of resnet20_fmnist.pt` })
          .first();
        await toast.waitFor({ state: 'visible', timeout: 120_000 });
        assert.match(await toast.innerText(), /None was dequantised\./);
        assert.ok(existsSync(join(s.workspace, 'resnet20_fmnist.safetensors')), 'the file is beside the source');
        await progressGone(s, 'Exporting resnet20_fmnist.pt');
        await s.screenshot('export-safetensors-done');
        await toast.locator('.monaco-button', { hasText: 'Open in Inspector' }).first().click();
        await s.page
          .locator('.tabs-container .tab.active', { hasText: 'resnet20_fmnist.safetensors' })
          .waitFor({ state: 'visible', timeout: TIMEOUTS.webview });
        await s.waitForTestId('tensor-count', { accept: (t) => digits(t) === count, timeoutMs: 60_000 });
        await s.page.waitForTimeout(500);
        await s.screenshot('export-safetensors-reopened');
      });
      await step('export a Netron attachment', async (s) => {
        await s.closeToasts();
        // From the Inspector's title bar this time, beside Export as safetensors….
        const button = s.page.locator('.editor-actions [aria-label*="Export Netron Attachment"]').first();
        await button.waitFor({ state: 'visible', timeout: 30_000 });
        assert.equal(await s.page.locator('.editor-actions [aria-label*="Export as safetensors"]').count(), 1);
        await button.click();
        const chosen = await acceptSaveDialog(s, 'as a Netron attachment');
        assert.match(chosen, /resnet20_fmnist\.attachment\.json$/);
        const toast = s.page.locator('.notification-list-item', { hasText: 'Wrote resnet20_fmnist.attachment.json' });
        await toast.first().waitFor({ state: 'visible', timeout: 180_000 });
        assert.match(await toast.first().innerText(), /spectra of 19 layers/);
        const data = JSON.parse(readFileSync(join(s.workspace, 'resnet20_fmnist.attachment.json'), 'utf8')) as {
          signature: string;
          metrics: { kind: string; target: string; name: string }[];
        };
        assert.equal(data.signature, 'netron:attachment');
        assert.ok(data.metrics.some((m) => m.kind === 'tensor' && m.target === 'linear.weight' && m.name === 'alpha'));
        await progressGone(s, 'Exporting a Netron attachment');
        await s.screenshot('export-netron-attachment');
      });
    },
  );
});
