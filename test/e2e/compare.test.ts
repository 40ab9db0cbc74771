// "Weight Lens: Compare With…" in a real VS Code (code-server + Chromium), installed from the packaged .vsix: the tiny
// ResNet as safetensors (written with NumPy) and its perturbed torch.save copy (test/fixtures/make/diff.py) are
// selected together in the Explorer and compared from its context menu; the comparison runs in the engine worker,
// the per-layer bar chart of ‖Δ‖/‖A‖ is drawn with the layer NumPy finds most changed at the top, the summary and
// the tensor table appear, clicking that layer's tensor draws its Δ histogram with NumPy's element count, and a
// screenshot goes to test-results/compare.png for a person to look. Then the Inspector toolbar path (B from the file
// dialog: A against its own torch.save is identical) and the palette path (both from the dialog).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStep, Session } from './harness';
import type { TensorDiffStatus } from '../../src/protocol/diff';

const DIFF = join(__dirname, '..', 'fixtures', 'diff');
const A = 'resnet_tiny.safetensors';
const B = 'resnet_tiny_perturbed.pt';
/** The same state dict as A, saved by torch.save (the source diff.py serialised A from). */
const TINY_PT = join(__dirname, '..', 'fixtures', 'pytorch', 'resnet_tiny.pt');

const reference = JSON.parse(readFileSync(join(DIFF, 'reference.json'), 'utf8')) as {
  name: {
    rows: { a?: string; status: TensorDiffStatus; delta?: { relative: number; count: number } }[];
    counts: Partial<Record<TensorDiffStatus, number>>;
  };
};
/** NumPy's most changed tensor (largest ‖Δ‖/‖A‖) and its layer. */
const worst = reference.name.rows
  .filter((r) => r.status === 'changed' || r.status === 'dtype-changed')
  .reduce((m, r) => ((r.delta?.relative ?? 0) > (m.delta?.relative ?? 0) ? r : m));
const worstName = worst.a ?? '';
const worstLayer = worstName.slice(0, worstName.lastIndexOf('.'));

/**
 * Types `path` into code-server's file dialog (a quick input holding a path) and accepts it. The dialog fills in its
 * starting folder once it has read it, which would overwrite text typed earlier: wait for that, then type and check.
 */
async function enterPath(s: Session, path: string): Promise<void> {
  const input = s.page.locator('.quick-input-widget input.input').first();
  await input.waitFor({ state: 'visible', timeout: 30_000 });
  const deadline = Date.now() + 15_000;
  while ((await input.inputValue()) === '' && Date.now() < deadline) await s.page.waitForTimeout(100);
  for (let attempt = 0; attempt < 5; attempt++) {
    await input.fill(path);
    await s.page.waitForTimeout(500);
    if ((await input.inputValue()) === path) break;
  }
  assert.equal(await input.inputValue(), path);
  await input.press('Enter');
}

void describe('Compare With… in VS Code (code-server)', { timeout: 300_000 }, () => {
  let session: Session | undefined;

  before(
    async () => {
      session = await Session.start({
        name: 'compare',
        files: [{ from: join(DIFF, A) }, { from: join(DIFF, B) }, { from: TINY_PT }],
        // A click only selects in the Explorer (no preview editor opens while the two files are being selected).
        settings: { 'workbench.list.openMode': 'doubleClick' },
      });
    },
    { timeout: 240_000 },
  );

  after(async () => {
    if (session !== undefined) {
      session.keepLogs('compare');
      await session.close();
    }
  });

  const step = (name: string, body: (s: Session) => Promise<void>): Promise<void> => runStep(session, name, body);

  void test(
    'two files selected in the Explorer are compared: layer bars, worst tensor, Δ histogram',
    { timeout: 180_000 },
    async () => {
      await step('compare', async (s) => {
        const rowA = s.page.locator('.explorer-folders-view .monaco-list-row', { hasText: A }).first();
        const rowB = s.page.locator('.explorer-folders-view .monaco-list-row', { hasText: B }).first();
        await rowA.waitFor({ state: 'visible', timeout: 30_000 });
        await rowA.click();
        await rowB.click({ modifiers: ['Control'] });
        await s.page.locator('.explorer-folders-view .monaco-list-row.selected').nth(1).waitFor({ timeout: 10_000 });
        // The menu has the extension's entries once the workbench has its contributions: reopen it until then.
        const item = s.page.locator('.monaco-menu .action-item', { hasText: 'Compare With…' }).first();
        for (let attempt = 1; ; attempt++) {
          await rowB.click({ button: 'right' });
          try {
            await item.waitFor({ state: 'visible', timeout: 5_000 });
            break;
          } catch (e) {
            await s.page.keyboard.press('Escape');
            if (attempt >= 12) throw e;
          }
        }
        // The workbench ignores a click that comes right after the menu opened (the releasing right button).
        await item.hover();
        await s.page.waitForTimeout(500);
        await item.click();

        const summary = await s.waitForTestId('compare-summary', {
          accept: (t) => t.startsWith('Different:'),
          timeoutMs: 90_000,
        });
        for (const [status, n] of Object.entries(reference.name.counts))
          assert.ok(summary.text.includes(`${n} ${status}`), `${summary.text} lacks ${n} ${status}`);
        const frame = summary.frame;
        // A is the file selected first.
        const subtitle = await frame.locator('[data-testid="compare-subtitle"]').first().innerText();
        assert.match(subtitle, new RegExp(`^A: .*${A.replace(/\./g, '\\.')} \\(safetensors`), subtitle);
        const bars = frame.locator('[data-testid="compare-layers"]').first();
        await bars.locator('.barlayer .point').first().waitFor({ state: 'attached', timeout: 30_000 });
        // The top bar (categories reversed: first row at the top) is NumPy's most changed layer.
        const tickTexts = bars.locator('.yaxislayer-above .ytick text');
        const ticks: { text: string; y: number }[] = [];
        for (let i = 0; i < (await tickTexts.count()); i++) {
          const tick = tickTexts.nth(i);
          ticks.push({ text: (await tick.textContent()) ?? '', y: (await tick.boundingBox())?.y ?? Infinity });
        }
        ticks.sort((p, q) => p.y - q.y);
        assert.ok(ticks.length > 0, 'the bar chart has layer labels');
        assert.equal(ticks[0]?.text, worstLayer, `bars, top down: ${ticks.map((t) => t.text).join(', ')}`);
        const box = await bars.boundingBox();
        assert.ok(box !== null && box.height >= 150, `the bar chart is ${box?.height ?? 0} px tall`);

        const row = frame
          .locator('[data-testid="compare-row"]', {
            has: frame.locator('[data-testid="compare-row-name"]', { hasText: worstName }),
          })
          .first();
        await row.scrollIntoViewIfNeeded();
        await row.click();
        const status = await s.waitForTestId('compare-histogram-status', {
          accept: (t) => t.startsWith(`${worstName}: `),
          timeoutMs: 60_000,
        });
        assert.match(
          status.text,
          new RegExp(`^${worstName.replace(/\./g, '\\.')}: ${worst.delta?.count ?? -1} elements`),
        );
        const histogram = frame.locator('[data-testid="compare-histogram"]').first();
        await histogram.locator('.barlayer .point').first().waitFor({ state: 'attached', timeout: 30_000 });
        await bars.scrollIntoViewIfNeeded();
        await s.closeToasts();
        await s.page.waitForTimeout(500);
        await s.screenshot('compare');
      });
    },
  );
  void test(
    "the Inspector's toolbar asks for B in the file dialog: A against its own torch.save is identical",
    { timeout: 120_000 },
    async () => {
      await step('compare-toolbar', async (s) => {
        // Quick Open would offer the Compare panel, whose title names A too: open A from the Explorer instead.
        await s.page.locator('.explorer-folders-view .monaco-list-row', { hasText: A }).first().dblclick();
        await s.waitForTestId('tensor-count', { accept: (t) => t.replace(/\D/g, '') !== '0' });
        const button = s.page.locator('.editor-actions .action-label[aria-label^="Compare With"]').first();
        await button.waitFor({ state: 'visible', timeout: 30_000 });
        await button.click();
        await enterPath(s, join(s.workspace, 'resnet_tiny.pt'));
        const summary = await s.waitForTestId('compare-summary', {
          accept: (t) => t.startsWith('Identical:'),
          timeoutMs: 90_000,
        });
        assert.match(summary.text, /^Identical: \d+ same$/);
        const subtitle = await summary.frame.locator('[data-testid="compare-subtitle"]').first().innerText();
        assert.match(subtitle, /· B: .*resnet_tiny\.pt \(pytorch/, subtitle);
        assert.equal(await summary.frame.locator('#layer-hint').first().isVisible(), true);
        await s.screenshot('compare-identical');
      });
    },
  );
  void test('from the palette it asks for both files', { timeout: 120_000 }, async () => {
    await step('compare-palette', async (s) => {
      await s.runCommand('Weight Lens: Compare With…');
      const widget = s.page.locator('.quick-input-widget');
      for (const [title, file] of [
        ['the checkpoint to compare (A)', 'resnet_tiny.pt'],
        ['compare resnet_tiny.pt with… (B)', B],
      ] as const) {
        await widget.locator('.quick-input-title', { hasText: title }).waitFor({ state: 'visible', timeout: 30_000 });
        await enterPath(s, join(s.workspace, file));
      }
      const summary = await s.waitForTestId('compare-summary', {
        accept: (t) => t.startsWith('Different:'),
        timeoutMs: 90_000,
      });
      const subtitle = await summary.frame.locator('[data-testid="compare-subtitle"]').first().innerText();
      assert.match(subtitle, /^A: .*resnet_tiny\.pt \(pytorch.* · B: .*resnet_tiny_perturbed\.pt/, subtitle);
      // "Match by shape" compares the same two files again, pairing by shape what names leave unmatched.
      await summary.frame.locator('[data-testid="compare-rematch"]').first().click();
      await s.waitForTestId('compare-subtitle', { accept: (t) => t.includes('matched by shape'), timeoutMs: 90_000 });
      const button = await summary.frame.locator('[data-testid="compare-rematch"]').first().innerText();
      assert.equal(button.trim(), 'Match by name');
    });
  });
});
