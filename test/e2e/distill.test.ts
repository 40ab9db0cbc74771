// Distillation and evaluation in a real VS Code (code-server + Chromium), installed from the packaged .vsix. A small
// artifact is made first with the CLI (30 compression steps of the ResNet-20 / Fashion-MNIST fixture), then:
// "Weight Lens: Distill Compressed Model…" from the command palette, with the artifact, the runnable ONNX model and the
// IDX data chosen in the quick picks and the settings changed there (3 steps, batch 8, 16 held-out samples); the
// Distillation panel must show the before/after metrics and the new artifact must exist. Then the artifact's
// Reconstruction panel runs "Evaluate…" on 32 samples and shows original against reconstructed accuracy and the
// confusion heatmap, whose diagonal counts must be readable on the dark theme; the kernel card's hint must not cover
// its captions. Screenshots go to test-results/distillation.png and test-results/evaluate.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from '../helpers/fixtures';
import { describePaint, nativeEngineExpected, paintTimes, ROOT, runStep, Session, vsixUnderTest } from './harness';

const CHECKPOINT = join(FIXTURES, 'models', 'resnet20_fmnist.pt');
const MODEL = join(FIXTURES, 'models', 'resnet20_fmnist.onnx');
const SIDECAR = join(FIXTURES, 'models', 'resnet20_fmnist.weightlens.json');
const IMAGES = join(FIXTURES, 'data', 'idx', 't10k-images-idx3-ubyte.gz');
const LABELS = join(FIXTURES, 'data', 'idx', 't10k-labels-idx1-ubyte.gz');
const ARTIFACT = 'r.nern.safetensors';
const DISTILLED = 'r.distilled.nern.safetensors';

void describe('Distill and evaluate a compressed model in VS Code (code-server)', { timeout: 600_000 }, () => {
  let session: Session | undefined;
  let tmp: string | undefined;

  before(
    async () => {
      // Packaging builds dist/, which the CLI below needs.
      vsixUnderTest();
      tmp = mkdtempSync(join(tmpdir(), 'weight-lens-distill-'));
      const artifact = join(tmp, ARTIFACT);
      const r = spawnSync(
        process.execPath,
        [join(ROOT, 'dist', 'cli.js'), 'compress', CHECKPOINT, '--steps', '30', '--out', artifact],
        { cwd: ROOT, encoding: 'utf8', timeout: 180_000 },
      );
      assert.equal(r.status, 0, `weight-lens compress failed:\n${r.stdout}\n${r.stderr}`);
      assert.ok(existsSync(artifact), 'the CLI wrote no artifact');
      session = await Session.start({
        name: 'distill',
        files: [
          { from: artifact, to: ARTIFACT },
          { from: MODEL, to: 'resnet20_fmnist.onnx' },
          { from: SIDECAR, to: 'resnet20_fmnist.weightlens.json' },
          { from: IMAGES, to: 'data/t10k-images-idx3-ubyte.gz' },
          { from: LABELS, to: 'data/t10k-labels-idx1-ubyte.gz' },
        ],
      });
    },
    { timeout: 420_000 },
  );

  after(async () => {
    if (session !== undefined) {
      session.keepLogs('distill');
      await session.close();
    }
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  const step = (name: string, body: (s: Session) => Promise<void>): Promise<void> => runStep(session, name, body);

  /** Waits for the quick input titled `title`, types `filter`, and clicks the first row showing `row`. */
  async function choose(s: Session, title: string | RegExp, filter: string, row: string | RegExp): Promise<void> {
    const widget = s.page.locator('.quick-input-widget');
    await widget.locator('.quick-input-title', { hasText: title }).waitFor({ state: 'visible', timeout: 60_000 });
    const input = widget.locator('input.input').first();
    await input.fill(filter);
    const item = s.page.locator('.quick-input-list .monaco-list-row', { hasText: row }).first();
    await item.waitFor({ state: 'visible', timeout: 30_000 });
    await item.click();
  }

  /** Waits for the input box titled `title` and enters `value`. */
  async function answer(s: Session, title: RegExp, value: string): Promise<void> {
    const widget = s.page.locator('.quick-input-widget');
    await widget.locator('.quick-input-title', { hasText: title }).waitFor({ state: 'visible', timeout: 30_000 });
    const input = widget.locator('input.input').first();
    await input.fill(value);
    await input.press('Enter');
  }

  void test(
    `"Distill Compressed Model…" from the palette distils ${ARTIFACT} and shows the metrics before and after`,
    { timeout: 360_000 },
    async () => {
      await step('distill', async (s) => {
        await s.runCommand('Weight Lens: Distill Compressed Model');
        await choose(s, 'compressed model', ARTIFACT, ARTIFACT);
        await choose(s, 'runnable model', 'resnet20_fmnist.onnx', 'resnet20_fmnist.onnx');
        await choose(s, 'training data', 't10k-images', 't10k-images-idx3-ubyte.gz');
        // The settings list starts with "Start"; each setting is edited in an input box and the list comes back.
        const settings = 'settings';
        await s.page
          .locator('.quick-input-list .monaco-list-row', { hasText: 'Start distillation' })
          .first()
          .waitFor({ state: 'visible', timeout: 60_000 });
        const defaults = await s.page
          .locator('.quick-input-list .monaco-list-row', { hasText: 'Steps:' })
          .first()
          .innerText();
        assert.match(defaults, /Steps: 300/);
        assert.match(defaults, /default/);
        await choose(s, settings, 'Steps', 'Steps:');
        await answer(s, /^Steps$/, '3');
        await choose(s, settings, 'Batch size', 'Batch size:');
        await answer(s, /^Batch size$/, '8');
        await choose(s, settings, 'Held-out samples', 'Held-out samples:');
        await answer(s, /^Held-out samples$/, '16');
        // The list comes back showing the changed values and that they were changed for this run.
        await s.page
          .locator('.quick-input-list .monaco-list-row', { hasText: /Steps: 3\s*changed for this run/ })
          .first()
          .waitFor({ state: 'visible', timeout: 30_000 });
        await choose(s, settings, 'Start', 'Start distillation');

        const { frame, text: after } = await s.waitForTestId('metrics-after', { timeoutMs: 240_000 });
        assert.match(after, /after distillation/);
        assert.match(after, /\d+\.\d\d %/);
        const before = await s.waitForTestId('metrics-before', { timeoutMs: 10_000 });
        assert.match(before.text, /phase 1/);
        assert.match(before.text, /\d+\.\d\d %/);
        const { text: status } = await s.waitForTestId('status', {
          accept: (t) => t.startsWith('Done'),
          timeoutMs: 30_000,
        });
        assert.match(status, /3 steps/);
        // The platform package trains and evaluates the ONNX model on its own onnxruntime-node binaries (on the CPU
        // provider: the e2e machine has no GPU); the universal one on TensorFlow.js, saying why.
        assert.match(
          status,
          nativeEngineExpected()
            ? /steps in .* on onnxruntime \(native, \d+ threads?\) · held-out evaluations on onnxruntime$/
            : /steps in .* on tfjs \(wasm\) \(.*onnxruntime-node is not installed.*\) · held-out evaluations on tfjs \(.*onnxruntime-node is not installed/,
        );
        // The completion notification names the engine that trained too.
        await s.page
          .locator('.notifications-toasts .notification-list-item-message', {
            hasText: nativeEngineExpected()
              ? /Distilled .* Trained on onnxruntime \(native, \d+ threads?\)\./
              : /Distilled .* Trained on tfjs \(wasm\) \(.*onnxruntime-node is not installed/,
          })
          .first()
          .waitFor({ state: 'visible', timeout: 30_000 });
        const { text: out } = await s.waitForTestId('artifact-out', { accept: (t) => t.includes(DISTILLED) });
        assert.ok(!out.includes('written when done'), out);
        await s.waitForTestId('teacher-accuracy', { accept: (t) => /Teacher accuracy .*%/.test(t), timeoutMs: 10_000 });
        await frame
          .locator('[data-testid="loss-curve"] .main-svg')
          .first()
          .waitFor({ state: 'attached', timeout: 30_000 });
        await frame
          .locator('[data-testid="heldout-curve"] .main-svg')
          .first()
          .waitFor({ state: 'attached', timeout: 30_000 });
        await frame
          .locator('[data-testid="drift-bars"] .barlayer path')
          .first()
          .waitFor({ state: 'attached', timeout: 30_000 });
        assert.ok(await frame.locator('#cmd-reveal').isVisible(), 'Reveal is offered once the artifact is written');
        assert.ok(
          await frame.locator('#cmd-reconstruction').isVisible(),
          '"Open in Reconstruction panel" is offered once the artifact is written',
        );
        assert.ok(existsSync(join(s.workspace, DISTILLED)), `${DISTILLED} was not written beside the artifact`);
        await s.page.waitForTimeout(1_000);
        await s.screenshot('distillation');
        console.log(`e2e: Distillation webview: ${describePaint(await paintTimes(frame))}`);
        // The written artifact opens in a Reconstruction panel like any other, showing both phases: the distilled
        // predictor's errors per layer beside phase 1's, and no made-up training time.
        await frame.locator('#cmd-reconstruction').click();
        const { frame: recon, text: reportText } = await s.waitForTestId('report', {
          accept: (t) => t.includes(DISTILLED),
          timeoutMs: 60_000,
        });
        assert.match(reportText, /Phase 1\s*30 reconstruction steps: relative error [\d.]+ %/);
        assert.match(reportText, /Phase 2\s*3 distillation steps from r\.nern\.safetensors/);
        assert.ok((await recon.locator('[data-testid="layer-phase1"]').count()) > 0, 'no phase-1 column');
        const { text: reconStatus } = await s.waitForTestId('status', {
          accept: (t) => t.includes('distillation steps'),
          timeoutMs: 10_000,
        });
        assert.doesNotMatch(reconStatus, / in 0 ms/);
        await s.screenshot('reconstruction-distilled');
      });
    },
  );

  void test(
    `"Evaluate…" in the Reconstruction panel shows original and reconstructed accuracy of ${ARTIFACT}`,
    { timeout: 240_000 },
    async () => {
      await step('evaluate', async (s) => {
        await s.page.keyboard.press('Escape');
        // One wide panel for the screenshot: close the Distillation and Reconstruction panels of the first test.
        await s.runCommand('View: Close All Editors');
        const row = s.page
          .locator('.explorer-folders-view .monaco-list-row', {
            hasText: new RegExp(`^${ARTIFACT.replace(/\./g, '\\.')}$`),
          })
          .first();
        await row.waitFor({ state: 'visible', timeout: 30_000 });
        await row.click({ button: 'right' });
        const item = s.page.locator('.monaco-menu .action-item', { hasText: 'Show Reconstruction' }).first();
        await item.waitFor({ state: 'visible', timeout: 10_000 });
        // The workbench ignores a click that comes right after the menu opened (the releasing right button).
        await item.hover();
        await s.page.waitForTimeout(500);
        await item.click();
        const { frame } = await s.waitForTestId('report', { accept: (t) => t.includes(ARTIFACT), timeoutMs: 60_000 });
        const evaluate = frame.locator('[data-testid="cmd-evaluate"]');
        await evaluate.waitFor({ state: 'visible', timeout: 30_000 });
        await evaluate.click();
        // The model and data chosen for this artifact are offered first.
        await s.page
          .locator('.quick-input-title', { hasText: 'runnable model' })
          .waitFor({ state: 'visible', timeout: 60_000 });
        const first = await s.page.locator('.quick-input-list .monaco-list-row').first().innerText();
        assert.match(first, /resnet20_fmnist\.onnx/);
        assert.match(first, /last used/);
        await choose(s, 'runnable model', 'resnet20_fmnist.onnx', 'resnet20_fmnist.onnx');
        await choose(s, 'data', 't10k-images', 't10k-images-idx3-ubyte.gz');
        await choose(s, 'settings', 'Samples', 'Samples:');
        await answer(s, /^Samples$/, '32');
        await choose(s, 'settings', 'Evaluate', /Evaluate/);

        const { text: reconstructed } = await s.waitForTestId('eval-reconstructed', { timeoutMs: 120_000 });
        assert.match(reconstructed, /reconstructed/);
        assert.match(reconstructed, /\d+\.\d\d %/);
        const { text: original } = await s.waitForTestId('eval-original', { timeoutMs: 10_000 });
        assert.match(original, /original/);
        assert.match(original, /\d+\.\d\d %/);
        await s.waitForTestId('eval-status', { accept: (t) => t.startsWith('Done: 32 samples'), timeoutMs: 30_000 });
        // The platform package evaluates on its own onnxruntime-node binaries; the universal one on wasm.
        const { text: note } = await s.waitForTestId('eval-note', { timeoutMs: 10_000 });
        assert.match(
          note,
          nativeEngineExpected() ? /samples on onnxruntime \(native, \d+ threads?\)/ : /samples on wasm/,
        );
        // Weights are bound by name: the count is of tensors, and says so.
        assert.match(note, /\d+ weight tensors came from the artifact/);
        await s.waitForTestId('confusion-note', {
          accept: (t) => /of 32 samples changed class/.test(t),
          timeoutMs: 10_000,
        });
        const { frame: panel } = await s.waitForTestId('eval-confusion');
        await panel
          .locator('[data-testid="eval-confusion"] .main-svg')
          .first()
          .waitFor({ state: 'attached', timeout: 30_000 });
        await panel.locator('[data-testid="model-eval"]').scrollIntoViewIfNeeded();
        await s.page.waitForTimeout(1_000);
        await s.screenshot('evaluate');
        // The diagonal (unchanged classes) is the first heatmap; its counts must stand out from the page background
        // (WCAG contrast ratio of at least 3), which a dark text on the dark theme did not.
        // Browser code as a string: this project's Node code is compiled without the DOM's types.
        const contrasts = await panel.evaluate<number[]>(`(() => {
        const rgb = (c) => (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
        const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
          .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
        const bg = lum(rgb(getComputedStyle(document.body).backgroundColor));
        const diagonal = document.querySelector('[data-testid="eval-confusion"] g.hm');
        return [...(diagonal ? diagonal.querySelectorAll('text') : [])].filter((t) => t.textContent.trim() !== '').map((t) => {
          const l = lum(rgb(getComputedStyle(t).fill));
          return (Math.max(l, bg) + 0.05) / (Math.min(l, bg) + 0.05);
        });
      })()`);
        assert.ok(contrasts.length > 0, 'the confusion matrix writes no counts on its diagonal');
        assert.ok(
          Math.min(...contrasts) >= 3,
          `diagonal counts have contrast ${Math.min(...contrasts).toFixed(2)} against the background`,
        );
        // The kernel card's hint (no source beside the artifact, so no kernels) lies over the empty maps, not their captions.
        const hint = panel.locator('[data-testid="kernel-hint"]');
        if (await hint.isVisible()) {
          const h = await hint.boundingBox();
          for (const caption of await panel.locator('.heatmap-caption').all()) {
            const c = await caption.boundingBox();
            const overlaps =
              h !== null &&
              c !== null &&
              h.x < c.x + c.width &&
              c.x < h.x + h.width &&
              h.y < c.y + c.height &&
              c.y < h.y + h.height;
            assert.ok(!overlaps, `the kernel hint covers the caption "${(await caption.textContent()) ?? ''}"`);
          }
        }
      });
    },
  );
  void test(
    'Distill warns when the training data is the data the artifact was evaluated on',
    { timeout: 120_000 },
    async () => {
      await step('same data', async (s) => {
        await s.page.keyboard.press('Escape');
        await s.runCommand('Weight Lens: Distill Compressed Model');
        await choose(s, 'compressed model', ARTIFACT, ARTIFACT);
        await choose(s, 'runnable model', 'resnet20_fmnist.onnx', 'resnet20_fmnist.onnx');
        await choose(s, 'training data', 't10k-images', 't10k-images-idx3-ubyte.gz');
        const warning = s.page.locator('.quick-input-list .monaco-list-row', {
          hasText: 'Training data is also evaluation data',
        });
        await warning.first().waitFor({ state: 'visible', timeout: 60_000 });
        await s.screenshot('distill-same-data-warning');
        await s.page.keyboard.press('Escape');
      });
    },
  );
});
