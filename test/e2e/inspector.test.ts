// The Inspector in a real VS Code (code-server + Chromium), installed from the packaged .vsix: the extension
// activates, a .safetensors checkpoint opens in the Inspector with the right tensor count, selecting a tensor draws
// its histogram, and a corrupt file shows a clear error banner. Screenshots go to test-results/ for a person to look.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { goodFixtures, hostileCases, type ManifestEntry, type ManifestFile } from '../helpers/fixtures';
import { runStep, Session } from './harness';

/** Floating-point dtypes: the weights a histogram is most telling for. */
const FLOAT_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16']);

/**
 * The good safetensors fixture to open: the most model-like one (most decodable floating-point tensors, at most 200
 * tensors in all), which also makes the fullest README screenshot.
 */
function pickGoodFixture(): { path: string; tensors: number; histogramTensor: string | undefined } {
  const floatWeights = (f: ManifestFile): ManifestEntry[] => f.entries.filter((e) => FLOAT_DTYPES.has(e.dtype) && e.sum !== undefined);
  const candidates = goodFixtures()
    .filter((f) => f.format === 'safetensors' && f.file.endsWith('.safetensors') && f.tensors <= 200)
    .sort((a, b) => floatWeights(b).length - floatWeights(a).length);
  const chosen = candidates[0];
  if (chosen === undefined) throw new Error('no safetensors fixture in test/fixtures/*/manifest.json');
  // The floating-point tensor with the most elements draws the fullest histogram.
  const size = (e: ManifestEntry): number => e.shape.reduce((p, d) => p * d, 1);
  const largest = floatWeights(chosen).sort((a, b) => size(b) - size(a))[0];
  return { path: chosen.path, tensors: chosen.tensors, histogramTensor: largest?.name };
}

/** A corrupt safetensors file from the hostile corpus, and the error its message must match. */
function pickHostileCase(): { path: string; message: RegExp; why: string } {
  const c = hostileCases().find((h) => h.group === 'safetensors' && h.file.endsWith('.safetensors'));
  if (c === undefined) throw new Error('no .safetensors case in test/fixtures/hostile/safetensors/manifest.json');
  return { path: c.path, message: new RegExp(c.message, 'i'), why: c.why };
}

const good = pickGoodFixture();
const hostile = pickHostileCase();
const goodName = basename(good.path);
const brokenName = `broken-${basename(hostile.path)}`;

void describe('Inspector in VS Code (code-server)', { timeout: 300_000 }, () => {
  let session: Session | undefined;

  before(async () => {
    session = await Session.start({
      name: 'inspector',
      files: [
        { from: good.path, to: goodName },
        { from: hostile.path, to: brokenName },
        { to: 'notes.txt', content: 'Checkpoints for the Weight Lens end-to-end test.\n' },
      ],
    });
  }, { timeout: 240_000 });

  after(async () => {
    if (session !== undefined) {
      session.keepLogs('inspector');
      await session.close();
    }
  });

  const step = (name: string, body: (s: Session) => Promise<void>): Promise<void> => runStep(session, name, body);

  void test('the extension activates: "Weight Lens: Show Log" opens its output channel', { timeout: 90_000 }, async () => {
    await step('activate', async (s) => {
      await s.runCommand('Weight Lens: Show Log');
      const panel = s.page.locator('.part.panel');
      await panel.waitFor({ state: 'visible', timeout: 30_000 });
      // The Output view's channel picker shows the selected channel's name.
      await s.page
        .locator('.part.panel select option:checked', { hasText: 'Weight Lens' })
        .first()
        .waitFor({ state: 'attached', timeout: 30_000 });
      const notFound = await s.page.locator('.notification-list-item-message', { hasText: "command 'weightLens" }).count();
      assert.equal(notFound, 0, 'VS Code reported a Weight Lens command as not found');
      await s.page.keyboard.press('Escape');
      // Hide the panel again so the Inspector screenshots get the whole editor area.
      await s.runCommand('View: Hide Panel');
    });
  });

  void test(`opening ${goodName} shows the Inspector with ${good.tensors} tensors`, { timeout: 120_000 }, async () => {
    await step('open', async (s) => {
      await s.openFile(goodName);
      // The count may be formatted with digit grouping ("1,234"): compare its digits.
      const digits = (t: string): string => t.replace(/\D/g, '');
      const { frame, text } = await s.waitForTestId('tensor-count', { accept: (t) => digits(t) === String(good.tensors) });
      assert.equal(digits(text), String(good.tensors));
      await frame.locator('[data-testid="tensor-table"]').first().waitFor({ state: 'visible' });
      const rows = await frame.locator('[data-testid="tensor-row"]').count();
      assert.ok(rows >= 1, 'the tensor table has no rows');
      assert.ok(rows <= good.tensors, `the table shows ${rows} rows for ${good.tensors} tensors`);
      // Let streamed statistics settle before the README screenshot.
      await s.page.waitForTimeout(1_500);
      await s.screenshot('inspector');
    });
  });

  void test('selecting a tensor row draws its histogram', { timeout: 90_000 }, async () => {
    await step('histogram', async (s) => {
      const { frame } = await s.waitForTestId('tensor-table');
      const rows = frame.locator('[data-testid="tensor-row"]');
      const target = good.histogramTensor === undefined ? rows.first() : rows.filter({ hasText: good.histogramTensor }).first();
      const histogram = frame.locator('[data-testid="histogram"]').first();
      // The Inspector may already plot a tensor (the first row); remember that drawing to see it replaced.
      const before = (await histogram.count()) > 0 ? await histogram.locator('.barlayer').first().innerHTML().catch(() => '') : '';
      const isFirstRow = (await target.innerText()).trim() === (await rows.first().innerText()).trim();
      await target.scrollIntoViewIfNeeded();
      await target.click();
      await histogram.locator('.main-svg').first().waitFor({ state: 'attached', timeout: 30_000 });
      if (before !== '' && !isFirstRow) {
        const deadline = Date.now() + 30_000;
        let now = before;
        while (now === before && Date.now() < deadline) {
          await s.page.waitForTimeout(200);
          now = await histogram.locator('.barlayer').first().innerHTML().catch(() => before);
        }
        assert.notEqual(now, before, `selecting ${good.histogramTensor ?? 'a row'} did not redraw the histogram`);
      }
      // plotly draws one <path> per bar inside the bar layer (or a filled trace for a histogram-like area plot).
      const marks = histogram.locator('.barlayer path, .scatterlayer path.js-fill, .scatterlayer path.js-line');
      await marks.first().waitFor({ state: 'attached', timeout: 30_000 });
      assert.ok((await marks.count()) > 0, 'the histogram has no bars');
      await s.screenshot('inspector-histogram');
      // Switching the y axis between linear and log scale redraws the same histogram.
      const toggle = frame.locator('[data-testid="yscale-toggle"]').first();
      if (await toggle.isVisible()) {
        await toggle.click();
        await marks.first().waitFor({ state: 'attached', timeout: 30_000 });
        assert.equal(await frame.locator('[data-testid="error"]').first().isVisible(), false, 'toggling the y scale raised an error');
        await toggle.click();
        await marks.first().waitFor({ state: 'attached', timeout: 30_000 });
      }
    });
  });

  void test('a corrupt checkpoint shows a clear error banner', { timeout: 90_000 }, async () => {
    await step('error', async (s) => {
      await s.openFile(brokenName);
      const { text } = await s.waitForTestId('error', { accept: (t) => t.length > 0 });
      assert.match(text, hostile.message, `the banner for "${hostile.why}" should explain the problem`);
      await s.screenshot('inspector-error');
    });
  });
});
