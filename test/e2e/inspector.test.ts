// The Inspector in a real VS Code (code-server + Chromium), installed from the packaged .vsix: the extension
// activates, a .safetensors checkpoint opens in the Inspector with the right tensor count, selecting a tensor draws
// its histogram, and a corrupt file shows a clear error banner. Screenshots go to test-results/ for a person to look.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { goodFixtures, hostileCases } from '../helpers/fixtures';
import { Session } from './harness';

/** The good safetensors fixture to open: the one with the most tensors (a fuller screenshot), at most 200. */
function pickGoodFixture(): { path: string; tensors: number; histogramTensor: string | undefined } {
  const candidates = goodFixtures()
    .filter((f) => f.format === 'safetensors' && f.file.endsWith('.safetensors') && f.tensors <= 200)
    .sort((a, b) => b.tensors - a.tensors);
  const chosen = candidates[0];
  if (chosen === undefined) throw new Error('no safetensors fixture in test/fixtures/*/manifest.json');
  // A decodable tensor with the most elements draws the fullest histogram.
  const decodable = chosen.entries
    .filter((e) => e.sum !== undefined)
    .sort((a, b) => b.shape.reduce((p, d) => p * d, 1) - a.shape.reduce((p, d) => p * d, 1));
  return { path: chosen.path, tensors: chosen.tensors, histogramTensor: decodable[0]?.name };
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

  /** Runs a step; on failure, saves a failure screenshot and attaches code-server/extension-host/console tails. */
  async function step(name: string, body: (s: Session) => Promise<void>): Promise<void> {
    const s = session;
    assert.ok(s, 'the code-server session did not start');
    try {
      await body(s);
    } catch (e) {
      const report = await s.diagnose(name);
      const message = e instanceof Error ? e.message : String(e);
      throw new Error(`${message}\n${report}`, { cause: e });
    }
  }

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
      const { frame, text } = await s.waitForTestId('tensor-count', { accept: (t) => t === String(good.tensors) });
      assert.equal(text, String(good.tensors));
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
      await target.scrollIntoViewIfNeeded();
      await target.click();
      const histogram = frame.locator('[data-testid="histogram"]').first();
      await histogram.locator('.main-svg').first().waitFor({ state: 'attached', timeout: 30_000 });
      // plotly draws one <path> per bar inside the bar layer (or a filled trace for a histogram-like area plot).
      const marks = histogram.locator('.barlayer path, .scatterlayer path.js-fill, .scatterlayer path.js-line');
      await marks.first().waitFor({ state: 'attached', timeout: 30_000 });
      assert.ok((await marks.count()) > 0, 'the histogram has no bars');
      await s.screenshot('inspector-histogram');
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
