// The Inspector in a real VS Code (code-server + Chromium), installed from the packaged .vsix: the extension
// activates, a .safetensors checkpoint opens in the Inspector with the right tensor count (the time to its first paint
// is printed), names are readable and columns resize, selecting a tensor draws a histogram of a useful height, a log y
// axis is labelled in order, an invalid regex is reported once without moving the toolbar, tensor names that look like
// markup show literally, and a corrupt file shows a clear error banner. Screenshots go to test-results/ for a person
// to look.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { goodFixtures, hostileCases, type ManifestEntry, type ManifestFile } from '../helpers/fixtures';
import { describePaint, paintTimes, runStep, Session } from './harness';

/** Floating-point dtypes: the weights a histogram is most telling for. */
const FLOAT_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16']);

/**
 * The good safetensors fixture to open: the most model-like one (most decodable floating-point tensors, at most 200
 * tensors in all), which also makes the fullest README screenshot.
 */
function pickGoodFixture(): { path: string; tensors: number; histogramTensor: string | undefined } {
  const floatWeights = (f: ManifestFile): ManifestEntry[] =>
    f.entries.filter((e) => FLOAT_DTYPES.has(e.dtype) && e.sum !== undefined);
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

/**
 * A safetensors file whose tensor names look like markup (and one long name), written here per the format's
 * specification (8-byte little-endian header length, JSON header, raw little-endian float32 data): a name a stranger's
 * checkpoint may carry, which must show as text, never as a link.
 */
const MARKUP_NAMES = [
  '<a href="x">n</a>',
  '<b>bold</b>.weight',
  'encoder.layers.11.self_attention.query_key_value.weight',
];
function markupCheckpoint(): Uint8Array {
  const n = 64;
  const header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> = {};
  const data = Buffer.alloc(MARKUP_NAMES.length * n * 4);
  MARKUP_NAMES.forEach((name, t) => {
    header[name] = { dtype: 'F32', shape: [8, 8], data_offsets: [t * n * 4, (t + 1) * n * 4] };
    for (let i = 0; i < n; i++) data.writeFloatLE(Math.sin(i * (t + 1) * 0.37) * (t + 1), (t * n + i) * 4);
  });
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([length, Buffer.from(json, 'utf8'), data]);
}

const good = pickGoodFixture();
const hostile = pickHostileCase();
const goodName = basename(good.path);
const brokenName = `broken-${basename(hostile.path)}`;
const markupName = 'markup-names.safetensors';
/** The project's ResNet-20 ONNX export: 270,810 float weights and 48 int64 shape constants in 36 tensors. */
const onnxPath = join(__dirname, '..', 'fixtures', 'models', 'resnet20_fmnist.onnx');
const onnxName = 'resnet20_fmnist.onnx';

void describe('Inspector in VS Code (code-server)', { timeout: 300_000 }, () => {
  let session: Session | undefined;

  before(
    async () => {
      session = await Session.start({
        name: 'inspector',
        files: [
          { from: good.path, to: goodName },
          { from: hostile.path, to: brokenName },
          { to: markupName, content: markupCheckpoint() },
          { from: onnxPath, to: onnxName },
          { to: 'notes.txt', content: 'Checkpoints for the Weight Lens end-to-end test.\n' },
        ],
      });
    },
    { timeout: 240_000 },
  );

  after(async () => {
    if (session !== undefined) {
      session.keepLogs('inspector');
      await session.close();
    }
  });

  const step = (name: string, body: (s: Session) => Promise<void>): Promise<void> => runStep(session, name, body);

  void test(
    'the extension activates: "Weight Lens: Show Log" opens its output channel',
    { timeout: 90_000 },
    async () => {
      await step('activate', async (s) => {
        await s.runCommand('Weight Lens: Show Log');
        const panel = s.page.locator('.part.panel');
        // On a loaded machine the first command of a fresh window can be taken while the workbench is still
        // restoring its layout, which hides the panel again: ask once more before failing.
        try {
          await panel.waitFor({ state: 'visible', timeout: 15_000 });
        } catch {
          await s.runCommand('Weight Lens: Show Log');
          await panel.waitFor({ state: 'visible', timeout: 30_000 });
        }
        // The Output view's channel picker shows the selected channel's name.
        await s.page
          .locator('.part.panel select option:checked', { hasText: 'Weight Lens' })
          .first()
          .waitFor({ state: 'attached', timeout: 30_000 });
        const notFound = await s.page
          .locator('.notification-list-item-message', { hasText: "command 'weightLens" })
          .count();
        assert.equal(notFound, 0, 'VS Code reported a Weight Lens command as not found');
        await s.page.keyboard.press('Escape');
        // Hide the panel again so the Inspector screenshots get the whole editor area.
        await s.runCommand('View: Hide Panel');
      });
    },
  );

  void test(`opening ${goodName} shows the Inspector with ${good.tensors} tensors`, { timeout: 120_000 }, async () => {
    await step('open', async (s) => {
      const opened = Date.now();
      await s.openFile(goodName);
      // The count may be formatted with digit grouping ("1,234"): compare its digits.
      const digits = (t: string): string => t.replace(/\D/g, '');
      const { frame, text } = await s.waitForTestId('tensor-count', {
        accept: (t) => digits(t) === String(good.tensors),
      });
      const shown = Date.now() - opened;
      await frame
        .locator('[data-testid="histogram"] .main-svg')
        .first()
        .waitFor({ state: 'attached', timeout: 30_000 });
      // Measured, never asserted: the page paints its skeleton before plotly loads.
      console.log(
        `e2e: Inspector webview: ${describePaint(await paintTimes(frame))}; tensor count shown ${shown} ms after opening`,
      );
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
      const target =
        good.histogramTensor === undefined ? rows.first() : rows.filter({ hasText: good.histogramTensor }).first();
      const histogram = frame.locator('[data-testid="histogram"]').first();
      // The Inspector may already plot a tensor (the first row); remember that drawing to see it replaced.
      const before =
        (await histogram.count()) > 0
          ? await histogram
              .locator('.barlayer')
              .first()
              .innerHTML()
              .catch(() => '')
          : '';
      const isFirstRow = (await target.innerText()).trim() === (await rows.first().innerText()).trim();
      await target.scrollIntoViewIfNeeded();
      await target.click();
      await histogram.locator('.main-svg').first().waitFor({ state: 'attached', timeout: 30_000 });
      if (before !== '' && !isFirstRow) {
        const deadline = Date.now() + 30_000;
        let now = before;
        while (now === before && Date.now() < deadline) {
          await s.page.waitForTimeout(200);
          now = await histogram
            .locator('.barlayer')
            .first()
            .innerHTML()
            .catch(() => before);
        }
        assert.notEqual(now, before, `selecting ${good.histogramTensor ?? 'a row'} did not redraw the histogram`);
      }
      // plotly draws one <path> per bar inside the bar layer (or a filled trace for a histogram-like area plot).
      const marks = histogram.locator('.barlayer path, .scatterlayer path.js-fill, .scatterlayer path.js-line');
      await marks.first().waitFor({ state: 'attached', timeout: 30_000 });
      assert.ok((await marks.count()) > 0, 'the histogram has no bars');
      // The histogram gets real height (the totals section no longer takes the space).
      const box = await histogram.boundingBox();
      assert.ok(box !== null && box.height >= 180, `the histogram is ${box?.height ?? 0} px tall`);
      await s.screenshot('inspector-histogram');
      // Switching the y axis between linear and log scale redraws the same histogram.
      const toggle = frame.locator('[data-testid="yscale-toggle"]').first();
      if (await toggle.isVisible()) {
        await toggle.click();
        await marks.first().waitFor({ state: 'attached', timeout: 30_000 });
        assert.equal(
          await frame.locator('[data-testid="error"]').first().isVisible(),
          false,
          'toggling the y scale raised an error',
        );
        // A log axis is labelled with full numbers in increasing order (bottom to top), not bare minor digits.
        const ticks = histogram.locator('.yaxislayer-above .ytick text');
        await ticks.first().waitFor({ state: 'attached', timeout: 30_000 });
        await s.page.waitForTimeout(500);
        const labelled: { y: number; text: string }[] = [];
        for (const t of await ticks.all()) {
          const b = await t.boundingBox();
          const text = (await t.textContent())?.trim() ?? '';
          if (b !== null && text !== '') labelled.push({ y: b.y, text });
        }
        const values = labelled.sort((a, b) => b.y - a.y).map((l) => Number(l.text.replace('\u2212', '-')));
        assert.ok(values.length >= 2, `log axis labels: ${JSON.stringify(labelled)}`);
        for (let i = 1; i < values.length; i++) {
          assert.ok(
            (values[i] ?? NaN) > (values[i - 1] ?? NaN),
            `log axis labels out of order: ${labelled.map((l) => l.text).join(' ')}`,
          );
        }
        await s.screenshot('inspector-log-y');
        await toggle.click();
        await marks.first().waitFor({ state: 'attached', timeout: 30_000 });
      }
    });
  });

  void test('tensor names are readable in full, and columns resize by dragging', { timeout: 90_000 }, async () => {
    await step('columns', async (s) => {
      const { frame } = await s.waitForTestId('tensor-table');
      const cells = frame.locator('[data-testid="tensor-row"] td.name');
      // Browser code as a string: this project's Node code is compiled without the DOM's types.
      const cut = await frame.evaluate<string[]>(
        `[...document.querySelectorAll('[data-testid="tensor-row"] td.name')].filter((td) => td.scrollWidth > td.clientWidth + 1).map((td) => td.textContent)`,
      );
      assert.deepEqual(cut, [], 'names cut off in the table');
      const title = await cells.first().getAttribute('title');
      assert.ok(
        title !== null && title.startsWith((await cells.first().textContent()) ?? '\u0000'),
        'the full name is in a tooltip',
      );
      const header = frame.locator('.tensor-table th[data-column="name"]');
      const before = (await header.boundingBox())?.width ?? 0;
      const handle = await frame.locator('[data-testid="col-resizer-name"]').boundingBox();
      assert.ok(handle !== null, 'the name column has a resize handle');
      await s.page.mouse.move(handle.x + handle.width / 2, handle.y + handle.height / 2);
      await s.page.mouse.down();
      await s.page.mouse.move(handle.x + handle.width / 2 + 60, handle.y + handle.height / 2, { steps: 6 });
      await s.page.mouse.up();
      const after = (await header.boundingBox())?.width ?? 0;
      assert.ok(
        Math.abs(after - before - 60) <= 3,
        `dragging the handle 60 px widened the name column from ${before} to ${after} px`,
      );
      const sorted = await header.getAttribute('aria-sort');
      assert.notEqual(sorted, 'ascending', 'a drag on the handle does not sort');
      await s.screenshot('inspector-columns');
    });
  });

  void test(
    'an invalid regex in the filter is reported once and the toolbar keeps its layout',
    { timeout: 60_000 },
    async () => {
      await step('invalid regex', async (s) => {
        const { frame } = await s.waitForTestId('filter');
        const toolbar = frame.locator('.toolbar');
        const height = (await toolbar.boundingBox())?.height ?? 0;
        const input = frame.locator('[data-testid="filter"] input').first();
        await input.fill('/(/');
        const { text } = await s.waitForTestId('filter-error', { accept: (t) => t.length > 0, timeoutMs: 10_000 });
        assert.match(text, /Invalid regular expression: Unterminated group/);
        // The toolbar holds the count and the message under the field: the phrase appears once in all of it.
        const said = await toolbar.innerText();
        assert.equal(said.split('Invalid regular expression').length - 1, 1, `said: ${said}`);
        assert.equal((await toolbar.boundingBox())?.height ?? 0, height, 'the toolbar reflowed');
        await s.screenshot('inspector-invalid-regex');
        await input.fill('');
        await frame.locator('[data-testid="filter-error"]').waitFor({ state: 'hidden', timeout: 10_000 });
      });
    },
  );

  void test(
    'tensor names that look like markup show literally in the table and the histogram legend',
    { timeout: 90_000 },
    async () => {
      await step('markup names', async (s) => {
        await s.openFile(markupName);
        const { frame } = await s.waitForTestId('tensor-count', { accept: (t) => t === String(MARKUP_NAMES.length) });
        const names = (await frame.locator('[data-testid="tensor-row"] td.name').allTextContents()).map((t) =>
          t.trim(),
        );
        assert.deepEqual(names, MARKUP_NAMES);
        const rows = frame.locator('[data-testid="tensor-row"]');
        await rows.nth(0).click();
        await rows.nth(1).click({ modifiers: ['Control'] });
        const histogram = frame.locator('[data-testid="histogram"]');
        const legend = histogram.locator('.legend .legendtext');
        await legend.nth(1).waitFor({ state: 'attached', timeout: 30_000 });
        assert.deepEqual(
          (await legend.allTextContents()).map((t) => t.trim()),
          MARKUP_NAMES.slice(0, 2),
        );
        assert.equal(await histogram.locator('svg a').count(), 0, 'a name became a link in the plot');
        assert.equal(
          await histogram.locator('svg text b, svg tspan[style*="bold"]').count(),
          0,
          'a name became bold text',
        );
        await s.screenshot('inspector-markup-names');
      });
    },
  );

  void test(
    'the parameter headline counts float weights, and shows integer constants beside them',
    { timeout: 90_000 },
    async () => {
      await step('float weights', async (s) => {
        await s.openFile(onnxName);
        const { frame } = await s.waitForTestId('tensor-count', { accept: (t) => t === '133' });
        const count = frame.locator('[data-testid="param-count"]');
        assert.equal((await count.textContent())?.trim(), '271 k');
        assert.match((await count.getAttribute('title')) ?? '', /^270,810 float weights; 270,858 values in all$/);
        const other = frame.locator('[data-testid="param-other"]');
        assert.equal((await other.textContent())?.trim(), '+ 48 integer values in 36 tensors');
        assert.ok(await other.isVisible());
        await s.screenshot('inspector-float-weights');
      });
    },
  );

  void test('a corrupt checkpoint shows a clear error banner', { timeout: 90_000 }, async () => {
    await step('error', async (s) => {
      await s.openFile(brokenName);
      const { text } = await s.waitForTestId('error', { accept: (t) => t.length > 0 });
      assert.match(text, hostile.message, `the banner for "${hostile.why}" should explain the problem`);
      await s.screenshot('inspector-error');
    });
  });
});
