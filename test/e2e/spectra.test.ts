// The Inspector's Spectra view in a real VS Code (code-server + Chromium), installed from the packaged .vsix: on the
// project's ResNet-20 (torch.save), "Compute spectra" runs the diagnostics in the engine worker, the α / stable-rank
// chart and the ESD of a layer are drawn, WeightWatcher's reading is shown, another layer can be picked, and a
// screenshot goes to test-results/inspector-spectra.png for a person to look.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runStep, Session } from './harness';

const RESNET = join(__dirname, '..', 'fixtures', 'models', 'resnet20_fmnist.pt');

void describe('Spectra view in VS Code (code-server)', { timeout: 300_000 }, () => {
  let session: Session | undefined;

  before(
    async () => {
      session = await Session.start({ name: 'spectra', files: [{ from: RESNET, to: 'resnet20_fmnist.pt' }] });
    },
    { timeout: 240_000 },
  );

  after(async () => {
    if (session !== undefined) {
      session.keepLogs('spectra');
      await session.close();
    }
  });

  const step = (name: string, body: (s: Session) => Promise<void>): Promise<void> => runStep(session, name, body);

  void test(
    'Compute spectra draws α and stable rank per layer and the ESD of a layer',
    { timeout: 180_000 },
    async () => {
      await step('spectra', async (s) => {
        await s.openFile('resnet20_fmnist.pt');
        const { frame } = await s.waitForTestId('tensor-count', { accept: (t) => t.replace(/\D/g, '') !== '0' });
        const section = frame.locator('[data-testid="spectra-section"]').first();
        await section.scrollIntoViewIfNeeded();
        // The section's heading opens it.
        await section.click({ position: { x: 60, y: 10 } });
        const run = frame.locator('[data-testid="spectra-run"]').first();
        await run.waitFor({ state: 'visible', timeout: 30_000 });
        await run.click();
        const done = await s.waitForTestId('spectra-status', {
          accept: (t) => /\d+ layers in [\d.]+ s/.test(t) || /failed/i.test(t),
          timeoutMs: 120_000,
        });
        assert.match(done.text, /^19 layers in [\d.]+ s; 1 skipped\.$/);
        const alpha = frame.locator('[data-testid="spectra-alpha"]').first();
        await alpha.locator('.scatterlayer path.js-line').first().waitFor({ state: 'attached', timeout: 30_000 });
        const esd = frame.locator('[data-testid="spectra-esd"]').first();
        await esd.locator('.scatterlayer path.js-line').first().waitFor({ state: 'attached', timeout: 30_000 });
        const box = await alpha.boundingBox();
        assert.ok(box !== null && box.height >= 200, `the α chart is ${box?.height ?? 0} px tall`);
        assert.match(
          await frame.locator('.spectra-guidance').first().innerText(),
          /below 2 may be over-trained, above 6 under-trained/,
        );
        // 19 layers to pick from; picking the under-trained one shows its numbers.
        const list = frame.locator('[data-testid="spectra-layer"]').first();
        assert.equal(await list.locator('option').count(), 19);
        await list.selectOption({ value: '9' }); // layer2.1.conv2.weight, the tenth layer
        const summary = await s.waitForTestId('spectra-summary', {
          accept: (t) => t.startsWith('layer2.1.conv2.weight'),
        });
        assert.match(summary.text, /α 10\.698 .* under-trained$/);
        await alpha.scrollIntoViewIfNeeded();
        await s.page.waitForTimeout(500);
        await s.screenshot('inspector-spectra');
      });
    },
  );
});
