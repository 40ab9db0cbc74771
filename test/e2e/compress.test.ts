// Compression in a real VS Code (code-server + Chromium), installed from the packaged .vsix: right-click a PyTorch
// checkpoint in the Explorer → "Compress Checkpoint…", pick a budget and a permutation in the quick picks, see the
// Reconstruction panel fill in (layer errors, loss curve, final report), find the `.nern.safetensors` artifact in the
// Explorer, click another layer's bar to see its detail decoded from the artifact, and open the Budget panel. Training is kept short through `weightLens.compress.steps`. Screenshots go to
// test-results/reconstruction.png and test-results/budget.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from '../helpers/fixtures';
import { nativeEngineExpected, runStep, Session } from './harness';

/** A small ResNet-like state dict with 3×3 convolutions (what NeRN represents). */
const SOURCE = join(FIXTURES, 'pytorch', 'resnet_tiny.pt');
const NAME = 'resnet_tiny.pt';
const ARTIFACT = 'resnet_tiny.nern.safetensors';
/** Training steps for the test run: enough for a loss curve and an evaluation, short on 2 shared cores. */
const STEPS = 40;

void describe('Compress a checkpoint in VS Code (code-server)', { timeout: 600_000 }, () => {
  let session: Session | undefined;

  before(async () => {
    session = await Session.start({
      name: 'compress',
      files: [{ from: SOURCE, to: NAME }],
      settings: { 'weightLens.compress.steps': STEPS, 'weightLens.compress.permutation': 'crossfilter' },
    });
  }, { timeout: 240_000 });

  after(async () => {
    if (session !== undefined) {
      session.keepLogs('compress');
      await session.close();
    }
  });

  const step = (name: string, body: (s: Session) => Promise<void>): Promise<void> => runStep(session, name, body);

  /** Starts "Compress Checkpoint…" from the Explorer's context menu; falls back to the palette with the file open. */
  async function startCompress(s: Session): Promise<void> {
    const row = s.page.locator('.explorer-folders-view .monaco-list-row', { hasText: NAME }).first();
    await row.waitFor({ state: 'visible', timeout: 30_000 });
    await row.click({ button: 'right' });
    const item = s.page.locator('.monaco-menu .action-item', { hasText: 'Compress Checkpoint' }).first();
    try {
      await item.waitFor({ state: 'visible', timeout: 10_000 });
      await item.click();
      return;
    } catch {
      await s.page.keyboard.press('Escape');
      console.log('e2e: no "Compress Checkpoint" entry in the Explorer context menu; using the palette with the file open');
    }
    await s.openFile(NAME);
    await s.runCommand('Weight Lens: Compress Checkpoint');
  }

  /** Waits for the quick input titled with `title`, types `text` and presses Enter once a matching row shows. */
  async function pick(s: Session, title: string, text: string, row: string): Promise<void> {
    const widget = s.page.locator('.quick-input-widget');
    await widget.locator('.quick-input-title', { hasText: title }).waitFor({ state: 'visible', timeout: 60_000 });
    const input = widget.locator('input.input').first();
    await input.fill(text);
    await s.page.locator('.quick-input-list .monaco-list-row', { hasText: row }).first().waitFor({ state: 'visible', timeout: 15_000 });
    await input.press('Enter');
  }

  void test(`compressing ${NAME} from the Explorer shows the Reconstruction panel and writes ${ARTIFACT}`, { timeout: 420_000 }, async () => {
    await step('compress', async (s) => {
      await startCompress(s);
      // The budget items show their planned width once the engine has planned them.
      await s.page.locator('.quick-input-list .monaco-list-row', { hasText: 'h = ' }).first().waitFor({ state: 'visible', timeout: 120_000 });
      await pick(s, 'predictor budget', '50 %', '50 %');
      await pick(s, 'kernel permutation', 'crossfilter', 'crossfilter');

      const count = (t: string): number => Number(t.replace(/\D/g, '') || '0');
      const { frame } = await s.waitForTestId('layer-count', { accept: (t) => count(t) > 0, timeoutMs: 240_000 });
      await frame.locator('[data-testid="loss-curve"] .main-svg').first().waitFor({ state: 'attached', timeout: 60_000 });
      await frame.locator('[data-testid="layer-errors"] .barlayer path').first().waitFor({ state: 'attached', timeout: 60_000 });
      const { text: reportText } = await s.waitForTestId('report', { accept: (t) => t.includes('Ratio'), timeoutMs: 240_000 });
      assert.match(reportText, /RMSE/);
      // The platform package trains on its own onnxruntime-node binaries; the universal one on wasm.
      const engine = (await frame.locator('#card-backend').textContent())?.trim() ?? '';
      assert.match(engine, nativeEngineExpected() ? /^onnxruntime \(native, \d+ threads?\)$/ : /^wasm$/);
      const rows = await frame.locator('[data-testid="layer-row"]').count();
      assert.ok(rows > 0, 'the report lists no layers');
      await frame.locator('[data-testid="kernel-heatmap"] .main-svg').first().waitFor({ state: 'attached', timeout: 30_000 });
      await s.page.waitForTimeout(1_000);
      await s.screenshot('reconstruction');

      assert.ok(existsSync(join(s.workspace, ARTIFACT)), `${ARTIFACT} was not written beside the source`);
      await s.page
        .locator('.explorer-folders-view .monaco-list-row', { hasText: ARTIFACT })
        .first()
        .waitFor({ state: 'visible', timeout: 30_000 });
    });
  });

  void test('clicking another layer shows its detail from the artifact; the filter number is editable', { timeout: 120_000 }, async () => {
    await step('layer detail', async (s) => {
      const { frame } = await s.waitForTestId('report');
      // Bars and report rows are both ordered worst first.
      const second = (await frame.locator('[data-testid="layer-row"] td.name').nth(1).textContent())?.trim() ?? '';
      assert.ok(second !== '', 'the report has no second layer');
      // Plotly's drag layer lies over the bars and turns a click at a bar into plotly_click: click there through it.
      await frame.locator('[data-testid="layer-errors"] .barlayer .point path').nth(1).click({ force: true });
      await s.waitForTestId('kernel-title', { accept: (t) => t.includes(second), timeoutMs: 60_000 });
      const { text: hist } = await s.waitForTestId('hist-title', { accept: (t) => t.includes(second), timeoutMs: 10_000 });
      assert.match(hist, /Original vs reconstructed/);
      const box = frame.locator('[data-testid="filter-index"]');
      assert.equal(await box.getAttribute('readonly'), null, 'the filter number is editable once the artifact exists');
      const input = box.locator('input').first();
      await input.fill('1');
      await input.press('Enter');
      await s.waitForTestId('kernel-title', { accept: (t) => t.includes(second) && /filter 1 of \d+/.test(t), timeoutMs: 60_000 });
    });
  });

  void test('the Budget panel opens from the Reconstruction panel', { timeout: 120_000 }, async () => {
    await step('budget', async (s) => {
      const { frame } = await s.waitForTestId('report');
      await frame.locator('#cmd-budget').click();
      await s.waitForTestId('budget-shares', { accept: (t) => t.includes('verbatim'), timeoutMs: 60_000 });
      const { frame: budget } = await s.waitForTestId('budget-tradeoff');
      await budget.locator('[data-testid="budget-tradeoff"] .main-svg').first().waitFor({ state: 'attached', timeout: 30_000 });
      await s.page.waitForTimeout(800);
      await s.screenshot('budget');
    });
  });
});
