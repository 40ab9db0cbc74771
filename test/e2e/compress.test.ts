// Compression in a real VS Code (code-server + Chromium), installed from the packaged .vsix: right-click a PyTorch
// checkpoint in the Explorer → "Compress Checkpoint…", pick a budget and a permutation in the quick picks, see the
// Reconstruction panel fill in (layer errors, loss curve, final report), find the `.nern.safetensors` artifact in the
// Explorer, click another layer's bar to see its detail decoded from the artifact, compress again into the same panel
// (a longer run, watched live) and click a bar again, and open the Budget panel beside them: three editor columns in
// which every panel keeps its title and fits its column. Training is kept short through `weightLens.compress.steps`.
// The Reconstruction webview's paint times are printed. Screenshots go to test-results/reconstruction.png,
// reconstruction-training.png, reconstruction-second-run.png and budget.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from '../helpers/fixtures';
import { describePaint, nativeEngineExpected, overflowingElements, paintTimes, runStep, Session } from './harness';

/** A small ResNet-like state dict with 3×3 convolutions (what NeRN represents). */
const SOURCE = join(FIXTURES, 'pytorch', 'resnet_tiny.pt');
const NAME = 'resnet_tiny.pt';
const ARTIFACT = 'resnet_tiny.nern.safetensors';
/** Training steps for the test run: enough for a loss curve and an evaluation, short on 2 shared cores. */
const STEPS = 40;
/** Steps of the second run, long enough to see the panel while it trains. */
const SECOND_RUN_STEPS = 2000;

void describe('Compress a checkpoint in VS Code (code-server)', { timeout: 600_000 }, () => {
  let session: Session | undefined;

  before(
    async () => {
      session = await Session.start({
        name: 'compress',
        files: [{ from: SOURCE, to: NAME }],
        settings: { 'weightLens.compress.steps': STEPS, 'weightLens.compress.permutation': 'crossfilter' },
      });
    },
    { timeout: 240_000 },
  );

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
      // The workbench ignores a click that comes right after the menu opened (the releasing right button).
      await item.hover();
      await s.page.waitForTimeout(500);
      await item.click();
      await s.page.locator('.monaco-menu').first().waitFor({ state: 'hidden', timeout: 10_000 });
      return;
    } catch {
      await s.page.keyboard.press('Escape');
      console.log(
        'e2e: no "Compress Checkpoint" entry in the Explorer context menu; using the palette with the file open',
      );
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
    await s.page
      .locator('.quick-input-list .monaco-list-row', { hasText: row })
      .first()
      .waitFor({ state: 'visible', timeout: 15_000 });
    await input.press('Enter');
  }

  void test(
    `compressing ${NAME} from the Explorer shows the Reconstruction panel and writes ${ARTIFACT}`,
    { timeout: 420_000 },
    async () => {
      await step('compress', async (s) => {
        // The Inspector first, so the Reconstruction panel opens beside it, at half the editor's width.
        await s.openFile(NAME);
        await startCompress(s);
        // The budget items show their planned width once the engine has planned them.
        await s.page
          .locator('.quick-input-list .monaco-list-row', { hasText: 'h = ' })
          .first()
          .waitFor({ state: 'visible', timeout: 120_000 });
        // Each planned item leads with its compression ratio, in full (the label is never cut off).
        const ratioRow = s.page.locator('.quick-input-list .monaco-list-row', { hasText: '× smaller' }).first();
        await ratioRow.waitFor({ state: 'visible', timeout: 120_000 });
        const label = ratioRow.locator('.label-name').first();
        const clipped = (await label.evaluate('(e) => e.scrollWidth > e.clientWidth + 1')) === true;
        assert.equal(clipped, false, `the budget label "${(await label.textContent()) ?? ''}" is cut off`);
        assert.match((await label.textContent()) ?? '', /^\d+\.\d× smaller · predictor \d+ %$/);
        await s.screenshot('compress-budget-pick');
        await pick(s, 'predictor budget', '50 %', '50 %');
        await pick(s, 'kernel permutation', 'crossfilter', 'crossfilter');

        const count = (t: string): number => Number(t.replace(/\D/g, '') || '0');
        const { frame } = await s.waitForTestId('layer-count', { accept: (t) => count(t) > 0, timeoutMs: 240_000 });
        await frame
          .locator('[data-testid="loss-curve"] .main-svg')
          .first()
          .waitFor({ state: 'attached', timeout: 60_000 });
        await frame
          .locator('[data-testid="layer-errors"] .barlayer path')
          .first()
          .waitFor({ state: 'attached', timeout: 60_000 });
        const { text: reportText } = await s.waitForTestId('report', {
          accept: (t) => t.includes('Ratio'),
          timeoutMs: 240_000,
        });
        assert.match(reportText, /RMSE/);
        // The done toast headlines the relative weight error, not the RMSE.
        const toast = s.page.locator('.notification-list-item-message', { hasText: 'Compressed ' }).first();
        await toast.waitFor({ state: 'visible', timeout: 60_000 });
        const toastText = (await toast.textContent()) ?? '';
        assert.match(toastText, /relative error \(per layer [\d.]+ %–[\d.]+ %\)/);
        assert.doesNotMatch(toastText, /RMSE/);
        // The platform package trains on its own onnxruntime-node binaries; the universal one on wasm.
        const engine = (await frame.locator('#card-backend').textContent())?.trim() ?? '';
        assert.match(engine, nativeEngineExpected() ? /^onnxruntime \(native, \d+ threads?\)$/ : /^wasm$/);
        const rows = await frame.locator('[data-testid="layer-row"]').count();
        assert.ok(rows > 0, 'the report lists no layers');
        await frame
          .locator('[data-testid="kernel-heatmap"] .main-svg')
          .first()
          .waitFor({ state: 'attached', timeout: 30_000 });
        await s.page.waitForTimeout(1_000);
        await s.screenshot('reconstruction');
        console.log(`e2e: Reconstruction webview: ${describePaint(await paintTimes(frame))}`);
        // Beside the Inspector (half the editor width), the panel keeps its title; buttons wrap below it if need be.
        const title = frame.locator('#title');
        const box = await title.boundingBox();
        assert.ok(box !== null && box.width >= 60, `the title is ${box?.width ?? 0} px wide`);
        assert.match((await title.textContent()) ?? '', /resnet_tiny/);
        assert.deepEqual(
          await overflowingElements(frame),
          [],
          'parts of the Reconstruction panel are cut off at half width',
        );

        assert.ok(existsSync(join(s.workspace, ARTIFACT)), `${ARTIFACT} was not written beside the source`);
        await s.page
          .locator('.explorer-folders-view .monaco-list-row', { hasText: ARTIFACT })
          .first()
          .waitFor({ state: 'visible', timeout: 30_000 });
      });
    },
  );

  void test(
    'clicking another layer shows its detail from the artifact; the filter number is editable',
    { timeout: 120_000 },
    async () => {
      await step('layer detail', async (s) => {
        const { frame } = await s.waitForTestId('report');
        // Bars and report rows are both ordered worst first.
        const second = (await frame.locator('[data-testid="layer-row"] td.name').nth(1).textContent())?.trim() ?? '';
        assert.ok(second !== '', 'the report has no second layer');
        // The "Compressed …" toast floats over the panel's lower part: close it, then bring the bar into view.
        await s.closeToasts();
        const bar = frame.locator('[data-testid="layer-errors"] .barlayer .point path').nth(1);
        await bar.scrollIntoViewIfNeeded();
        // Plotly's drag layer lies over the bars and turns a click at a bar into plotly_click: click there through it.
        await bar.click({ force: true });
        await s.waitForTestId('kernel-title', { accept: (t) => t.includes(second), timeoutMs: 60_000 });
        const { text: hist } = await s.waitForTestId('hist-title', {
          accept: (t) => t.includes(second),
          timeoutMs: 10_000,
        });
        assert.match(hist, /Original vs reconstructed/);
        const box = frame.locator('[data-testid="filter-index"]');
        assert.equal(
          await box.getAttribute('readonly'),
          null,
          'the filter number is editable once the artifact exists',
        );
        const input = box.locator('input').first();
        await input.fill('1');
        await input.press('Enter');
        await s.waitForTestId('kernel-title', {
          accept: (t) => t.includes(second) && /filter 1 of \d+/.test(t),
          timeoutMs: 60_000,
        });
      });
    },
  );

  void test(
    'a second compression in the same panel: the note sits under the live histogram, and bars stay clickable',
    { timeout: 300_000 },
    async () => {
      await step('second run', async (s) => {
        // Keep the Inspector in the first column (the palette fallback opens the checkpoint in the focused group).
        await s.runCommand('View: Focus First Editor Group');
        await startCompress(s);
        await s.page
          .locator('.quick-input-list .monaco-list-row', { hasText: 'h = ' })
          .first()
          .waitFor({ state: 'visible', timeout: 120_000 });
        // This run stores the predictor as int4 and the verbatim tensors as int8: the budgets are planned again.
        await pick(s, 'predictor budget', 'Stored as', 'Stored as: predictor f32 · verbatim f32');
        await pick(s, 'predictor dtype', 'int4', 'int4');
        await pick(s, 'verbatim dtype', 'int8', 'int8');
        await s.page
          .locator('.quick-input-widget .quick-input-title', { hasText: 'predictor int4, verbatim int8' })
          .waitFor({ state: 'visible', timeout: 30_000 });
        await s.page
          .locator('.quick-input-list .monaco-list-row', { hasText: 'h = ' })
          .first()
          .waitFor({ state: 'visible', timeout: 120_000 });
        await pick(s, 'predictor budget', '50 %', '50 %');
        // A longer run, set in the permutation pick's "Training steps" item.
        await pick(s, 'kernel permutation', 'Training steps', 'Training steps');
        const widget = s.page.locator('.quick-input-widget');
        await widget
          .locator('.quick-input-title', { hasText: 'Training steps' })
          .waitFor({ state: 'visible', timeout: 30_000 });
        await widget.locator('input.input').first().fill(String(SECOND_RUN_STEPS));
        await widget.locator('input.input').first().press('Enter');
        await pick(s, `${SECOND_RUN_STEPS.toLocaleString('en-US')} steps`, 'crossfilter', 'crossfilter');
        // The artifact exists: replace it (a modal dialog asks first).
        const overwrite = s.page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Overwrite' }).first();
        await overwrite.waitFor({ state: 'visible', timeout: 30_000 });
        await overwrite.click();

        // While it trains, the streamed layer's histogram is drawn with a note; the note lies below the plot.
        const { frame } = await s.waitForTestId('status', {
          accept: (t) => /^(Planning|Training)/.test(t),
          timeoutMs: 120_000,
        });
        const histogram = frame.locator('[data-testid="layer-histogram"]');
        const hint = frame.locator('[data-testid="hist-hint"]');
        let watched = false;
        for (const deadline = Date.now() + 180_000; !watched && Date.now() < deadline;) {
          const status = (await frame.locator('[data-testid="status"]').textContent()) ?? '';
          if (!/^(Planning|Training)/.test(status)) break;
          const drawn =
            (await histogram.locator('.main-svg').count()) > 0 &&
            !((await histogram.getAttribute('class')) ?? '').includes('empty');
          if (drawn && (await hint.isVisible()) && ((await hint.textContent()) ?? '').includes('While training')) {
            const plot = await histogram.boundingBox();
            const note = await hint.boundingBox();
            assert.ok(plot !== null && note !== null);
            assert.ok(
              note.y >= plot.y + plot.height - 1,
              `the note (top ${note.y}) overlaps the histogram (bottom ${plot.y + plot.height})`,
            );
            await frame.evaluate(`document.querySelector('[data-testid="hist-title"]').scrollIntoView()`);
            await s.screenshot('reconstruction-training');
            watched = true;
          } else {
            await s.page.waitForTimeout(200);
          }
        }
        assert.ok(watched, 'the live histogram with its note was never seen while training');
        await s.waitForTestId('report', {
          accept: (t) => t.includes(SECOND_RUN_STEPS.toLocaleString('en-US')),
          timeoutMs: 240_000,
        });
        await s.waitForTestId('status', { accept: (t) => t.startsWith('Done'), timeoutMs: 30_000 });

        // The bars were purged and redrawn for the new run: a click on one must still select its layer.
        const names = (await frame.locator('[data-testid="layer-row"] td.name').allTextContents()).map((t) => t.trim());
        const current = (await frame.locator('[data-testid="hist-title"]').textContent()) ?? '';
        const target = names.find((n) => !current.endsWith(n)) ?? names[0] ?? '';
        const index = names.indexOf(target);
        assert.ok(index >= 0, 'the report lists no layers');
        await s.closeToasts();
        const bar = frame.locator('[data-testid="layer-errors"] .barlayer .point path').nth(index);
        await bar.scrollIntoViewIfNeeded();
        await bar.click({ force: true });
        await s.waitForTestId('kernel-title', { accept: (t) => t.includes(target), timeoutMs: 60_000 });
        await s.page.waitForTimeout(1_000);
        await s.screenshot('reconstruction-second-run');
      });
    },
  );

  void test(
    'the Budget panel opens from the Reconstruction panel; in three editor columns every panel fits its column',
    { timeout: 120_000 },
    async () => {
      await step('budget', async (s) => {
        // The Budget opens beside the active group: make that the Reconstruction panel's, for three columns.
        await s.page.locator('.tabs-container .tab', { hasText: 'Reconstruction:' }).first().click();
        const { frame } = await s.waitForTestId('report');
        await frame.locator('#cmd-budget').click();
        await s.waitForTestId('budget-shares', { accept: (t) => t.includes('verbatim'), timeoutMs: 60_000 });
        // The part of the artifact that is neither predictor nor verbatim tensors is named and explained.
        const { text: note } = await s.waitForTestId('budget-bytes-note', { accept: (t) => t.length > 0 });
        assert.match(
          note,
          /JSON description \(layer map, training settings and, unless the artifact is lean, the loss curve/,
        );
        assert.match(note, /Here [\d.]+ [kM]?B, [\d.]+ ?% of the artifact\./);
        // The bytes are those of the last run's dtypes (an int4 predictor, int8 verbatim tensors).
        assert.match(note, /Planned with the predictor stored as int4 and the verbatim tensors as int8\./);
        const { frame: budget } = await s.waitForTestId('budget-tradeoff');
        await budget
          .locator('[data-testid="budget-tradeoff"] .main-svg')
          .first()
          .waitFor({ state: 'attached', timeout: 30_000 });
        await s.page.waitForTimeout(800);
        // Close the "Compressed …" toast so it covers nothing.
        await s.closeToasts();
        await s.screenshot('budget');
        console.log(`e2e: Budget webview: ${describePaint(await paintTimes(budget))}`);
        const frames = await s.visibleWebviewFrames();
        assert.ok(
          frames.length >= 3,
          `${frames.length} webviews are visible, not the Inspector, Reconstruction and Budget side by side`,
        );
        for (const f of frames) {
          const name = (await f.locator('h1').first().textContent())?.trim() ?? '?';
          const title = await f.locator('h1').first().boundingBox();
          assert.ok(title !== null && title.width >= 60, `${name}: the title is ${title?.width ?? 0} px wide`);
          // The Inspector's tensor table scrolls sideways by design; everything else must fit.
          const parts = await overflowingElements(f, '.plot, .pane, .panel-grid, .cards, header, .report-layers table');
          assert.deepEqual(parts, [], `${name}: parts cut off in a third of the editor`);
        }
        const cut = await budget.evaluate<number>(
          `(() => { const t = document.querySelector('[data-testid="budget-verbatim"]'); return t.scrollWidth - t.parentElement.clientWidth; })()`,
        );
        assert.ok(cut <= 1, `the verbatim table is ${cut} px wider than its pane`);
        await budget.evaluate(`document.querySelector('[data-testid="budget-verbatim"]').scrollIntoView()`);
        await s.page.waitForTimeout(300);
        await s.screenshot('budget-verbatim');
      });
    },
  );
});
