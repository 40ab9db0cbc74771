// The Budget panel's "Compare methods…" in a real VS Code (code-server + Chromium), installed from the packaged
// .vsix: the project's ResNet-20 checkpoint is opened in the Inspector, "Weight Lens: Show Budget" opens its Budget
// panel, and Compare methods… is answered in its quick picks (the ONNX model, the 64 labelled Fashion-MNIST test
// images, int8, int4, prune and nern, one size). The sweep runs in the engine worker: the progress notification and
// the panel's status show it, the chart draws one line per method with the Pareto front starred (read from plotly's
// own `data` and its SVG), the table's bytes are the artifact files' sizes on disk and the int8 row's accuracy is the
// CLI's `eval --weights` of that same file, and a click on the int8 point opens that artifact's Reconstruction panel.
// Then a long NeRN-only comparison is started and stopped from the panel: the panel and the log say it stopped, and
// no table is drawn for it. Training is kept short through `weightLens.compress.steps`. Screenshots go to
// test-results/sweep-picks.png, sweep-running.png, sweep.png, sweep-artifact.png and sweep-stopped.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Frame } from 'playwright-core';
import { formatBytes } from '../../src/protocol/units';
import { FIXTURES } from '../helpers/fixtures';
import { overflowingElements, ROOT, runStep, Session, vsixUnderTest } from './harness';

const CHECKPOINT = join(FIXTURES, 'models', 'resnet20_fmnist.pt');
const MODEL = join(FIXTURES, 'models', 'resnet20_fmnist.onnx');
const SIDECAR = join(FIXTURES, 'models', 'resnet20_fmnist.weightlens.json');
const IMAGES = join(FIXTURES, 'data', 'idx', 't10k-images-idx3-ubyte.gz');
const LABELS = join(FIXTURES, 'data', 'idx', 't10k-labels-idx1-ubyte.gz');
const NAME = 'resnet20_fmnist.pt';
/** The methods compared (low rank is left out to keep the run short) and the one size the sized ones get. */
const METHODS = ['int8', 'int4', 'prune', 'nern'] as const;
const SIZE = 0.1;
/** NeRN's training steps in the comparison: enough for a real predictor, a few seconds on 2 shared cores. */
const STEPS = 60;
/** Steps of the comparison that is stopped: far more than it can run before the stop. */
const LONG_STEPS = 1_000_000;
/** Where the sweep writes its artifacts, relative to the workspace, by method. */
const ARTIFACTS: Record<(typeof METHODS)[number], string> = {
  int8: 'resnet20_fmnist.sweep/resnet20_fmnist.int8.safetensors',
  int4: 'resnet20_fmnist.sweep/resnet20_fmnist.int4.safetensors',
  prune: 'resnet20_fmnist.sweep/resnet20_fmnist-10pct.prune.safetensors',
  nern: 'resnet20_fmnist.sweep/resnet20_fmnist-10pct.nern.safetensors',
};

/** What the test reads of the methods chart from plotly's `data` on the plot's div. */
interface PlottedTrace {
  name: string;
  x: number[];
  y: number[];
  customdata: string[];
  symbols: string[];
}

void describe("The Budget panel's Compare methods… in VS Code (code-server)", { timeout: 300_000 }, () => {
  let session: Session | undefined;

  before(
    async () => {
      // Packaging builds dist/, whose CLI scores the artifact independently below.
      vsixUnderTest();
      session = await Session.start({
        name: 'sweep',
        files: [
          { from: CHECKPOINT, to: NAME },
          { from: MODEL, to: 'resnet20_fmnist.onnx' },
          { from: SIDECAR, to: 'resnet20_fmnist.weightlens.json' },
          { from: IMAGES, to: 'data/t10k-images-idx3-ubyte.gz' },
          { from: LABELS, to: 'data/t10k-labels-idx1-ubyte.gz' },
        ],
        settings: { 'weightLens.compress.steps': STEPS },
      });
    },
    { timeout: 240_000 },
  );

  after(async () => {
    if (session !== undefined) {
      session.keepLogs('sweep');
      await session.close();
    }
  });

  const step = (name: string, body: (s: Session) => Promise<void>): Promise<void> => runStep(session, name, body);

  /** Waits for the quick input whose title contains `title`. */
  async function waitForTitle(s: Session, title: string): Promise<void> {
    await s.page
      .locator('.quick-input-widget .quick-input-title', { hasText: title })
      .waitFor({ state: 'visible', timeout: 60_000 });
  }

  /** In the quick pick titled `title`, types `filter` and clicks the first row showing `row`. */
  async function choose(s: Session, title: string, filter: string, row: string): Promise<void> {
    await waitForTitle(s, title);
    await s.page.locator('.quick-input-widget input.input').first().fill(filter);
    const item = s.page.locator('.quick-input-list .monaco-list-row', { hasText: row }).first();
    await item.waitFor({ state: 'visible', timeout: 30_000 });
    await item.click();
  }

  /**
   * In the methods quick pick (every method checked at first), leaves only `keep` checked and accepts. The check
   * boxes are read back (`aria-checked`) before accepting.
   */
  async function chooseMethods(s: Session, keep: readonly string[]): Promise<void> {
    await waitForTitle(s, 'methods');
    const rows = s.page.locator('.quick-input-list .monaco-list-row');
    const box = (row: ReturnType<typeof rows.nth>): ReturnType<typeof rows.nth> =>
      row.locator('.monaco-checkbox, [role=checkbox]').first();
    /** Each row's label and whether it is checked, once the list shows every method. */
    const states = async (): Promise<{ label: string; checked: boolean }[]> => {
      const out: { label: string; checked: boolean }[] = [];
      for (let i = 0; i < (await rows.count()); i++) {
        const row = rows.nth(i);
        const label = ((await row.locator('.label-name').first().textContent()) ?? '').trim();
        const own = await row.getAttribute('aria-checked');
        out.push({ label, checked: (own ?? (await box(row).getAttribute('aria-checked'))) === 'true' });
      }
      return out;
    };
    let now: { label: string; checked: boolean }[] = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      now = await states();
      const wrong = now.findIndex((r) => r.checked !== keep.includes(r.label));
      if (now.length === 5 && wrong < 0) break;
      if (now.length === 5) await box(rows.nth(wrong)).click();
      await s.page.waitForTimeout(250);
    }
    const checked = now.filter((r) => r.checked).map((r) => r.label);
    assert.deepEqual(checked.sort(), [...keep].sort(), 'the methods checked in the quick pick');
    await s.page.locator('.quick-input-widget input.input').first().press('Enter');
  }

  /** Answers the sizes input box with `sizes`. */
  async function enterSizes(s: Session, sizes: string): Promise<void> {
    await waitForTitle(s, 'sizes');
    const input = s.page.locator('.quick-input-widget input.input').first();
    await input.fill(sizes);
    await input.press('Enter');
    await s.page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 15_000 });
  }

  /** Clicks the Budget panel's Compare methods… and answers the model and data picks. */
  async function startComparison(s: Session, budget: Frame): Promise<void> {
    await s.closeToasts();
    await budget.locator('[data-testid="budget-compare"]').click();
    await choose(s, 'the runnable model', 'resnet20_fmnist.onnx', 'resnet20_fmnist.onnx');
    await choose(s, 'the data to score on', 't10k-images', 't10k-images-idx3-ubyte.gz');
  }

  /** The methods chart's traces, from plotly's `data` on its div. */
  function plotted(frame: Frame): Promise<PlottedTrace[]> {
    return frame.evaluate<PlottedTrace[]>(`(() => {
      const div = document.querySelector('[data-testid="budget-methods"]');
      return (div.data ?? []).map((t) => ({
        name: t.name,
        x: Array.from(t.x),
        y: Array.from(t.y),
        customdata: Array.from(t.customdata ?? []),
        symbols: Array.isArray(t.marker?.symbol) ? t.marker.symbol : [t.marker?.symbol],
      }));
    })()`);
  }

  let budget: Frame | undefined;

  void test(
    'Compare methods… asks for the model, data, methods and sizes, shows progress and draws one line per method',
    { timeout: 180_000 },
    async () => {
      await step('compare methods', async (s) => {
        await s.openFile(NAME);
        await s.waitForTestId('tensor-count', { accept: (t) => t.replace(/\D/g, '') !== '' && !/^0\b/.test(t) });
        await s.runCommand('Weight Lens: Show Budget');
        ({ frame: budget } = await s.waitForTestId('budget-compare'));
        const frame = budget;
        await s.waitForTestId('budget-shares', { accept: (t) => t.includes('verbatim'), timeoutMs: 60_000 });
        // Before any comparison the chart's place holds the hint.
        assert.equal(await frame.locator('#methods-hint').isVisible(), true, 'the methods hint is shown');

        await startComparison(s, frame);
        await waitForTitle(s, 'methods');
        await s.screenshot('sweep-picks');
        await chooseMethods(s, METHODS);
        await enterSizes(s, String(SIZE));

        // Progress: the notification and the panel's status say which run of how many.
        const notification = s.page
          .locator('.notification-list-item', { hasText: 'Comparing methods on resnet20_fmnist.pt' })
          .first();
        await notification.waitFor({ state: 'visible', timeout: 60_000 });
        const { text: running } = await s.waitForTestId('budget-methods-status', {
          accept: (t) => /^\((run [1-4] of 4: (compressing|scoring) |scoring the original, then 4 runs\))/.test(t),
          timeoutMs: 60_000,
        });
        console.log(`e2e: methods status while running: ${running}`);
        // The pane is below the fold of the column: starting a comparison brings it into view.
        const top = await frame.evaluate<number>(
          `document.querySelector('[data-testid="budget-methods-status"]').getBoundingClientRect().top`,
        );
        const height = await frame.evaluate<number>('window.innerHeight');
        assert.ok(top >= 0 && top < height, `the comparison's status is at ${top} px of a ${height} px page`);
        assert.equal(await frame.locator('[data-testid="budget-methods-stop"]').isVisible(), true, 'Stop shows');
        await s.screenshot('sweep-running');

        const { text: done } = await s.waitForTestId('budget-methods-status', {
          accept: (t) => /^\(\d+ runs, \d+ samples/.test(t) || /^\((Stopped|Failed)/.test(t),
          timeoutMs: 150_000,
        });
        // The original's accuracy is the CLI's (checked below): 59 of the 64 images.
        assert.equal(done, '(4 runs, 64 samples; original 92.19 %)');
        const finished = s.page.locator('.notification-list-item-message', { hasText: 'Compared 4 runs on' }).first();
        await finished.waitFor({ state: 'visible', timeout: 30_000 });

        // One trace per method, each through its artifact, with the front starred.
        let traces: PlottedTrace[] = [];
        for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
          traces = await plotted(frame);
          if (traces.length === METHODS.length && traces.every((t) => t.x.length === 1)) break;
          await s.page.waitForTimeout(250);
        }
        assert.deepEqual(traces.map((t) => t.name).sort(), [...METHODS].sort(), 'one trace per method');
        for (const t of traces) {
          const method = t.name as (typeof METHODS)[number];
          const artifact = join(s.workspace, ARTIFACTS[method]);
          assert.deepEqual(t.customdata, [artifact], `${method}'s point opens its artifact`);
          assert.deepEqual(t.x, [statSync(artifact).size], `${method}'s point is at its artifact's bytes`);
        }
        const byName = new Map(traces.map((t) => [t.name, t]));
        const starred = traces.filter((t) => t.symbols.includes('star')).map((t) => t.name);
        // int4 is both smaller than int8 and as accurate (round to nearest loses nothing on 64 images).
        assert.ok(starred.includes('int4'), `int4 is on the front (starred: ${starred.join(', ')})`);
        const int8 = byName.get('int8');
        const int4 = byName.get('int4');
        assert.ok(int8 !== undefined && int4 !== undefined);
        assert.ok((int4.x[0] ?? 0) < (int8.x[0] ?? 0), 'int4 is smaller than int8');
        // The SVG has what `data` says: four lines with one point each, the legend names them, the stars are drawn.
        assert.equal(await frame.locator('[data-testid="budget-methods"] .scatterlayer .trace').count(), 4);
        const legend = (await frame.locator('[data-testid="budget-methods"] .legend .legendtext').allTextContents())
          .map((t) => t.trim())
          .sort();
        assert.deepEqual(legend, [...METHODS].sort(), 'the legend names every method');
        const points = await frame.locator('[data-testid="budget-methods"] .scatterlayer .trace .points path').count();
        assert.equal(points, 4, 'four points are drawn');

        // The table: one row per run, bytes as the file sizes in kB, the front starred like the chart.
        const tableRows = frame.locator('[data-testid="budget-methods-table"] tbody tr');
        assert.equal(await tableRows.count(), 4);
        for (let i = 0; i < 4; i++) {
          const cells = (await tableRows.nth(i).locator('td').allTextContents()).map((c) => c.trim());
          const method = (cells[0] ?? '').split(' ')[0] as (typeof METHODS)[number];
          const trace = byName.get(method);
          assert.ok(trace !== undefined, `row ${i} names a plotted method: ${cells.join(' | ')}`);
          const bytes = statSync(join(s.workspace, ARTIFACTS[method])).size;
          assert.equal(cells[1], formatBytes(bytes), `${method}: the table's bytes are the file's`);
          assert.match(cells[1], / kB$/);
          assert.equal(
            cells[6] === '★',
            trace.symbols[0] === 'star',
            `${method}: the table and the chart agree on the front`,
          );
          if (method !== 'int8' && method !== 'int4') assert.match(cells[0] ?? '', /^\w+ 10 %$/);
          // The chart's y is the table's accuracy.
          assert.equal(
            cells[3],
            `${(trace.y[0] ?? NaN).toFixed(2)} %`,
            `${method}: the table's accuracy is the chart's`,
          );
        }

        // The accuracies are what the CLI's eval measures on the same files with the same data (int8 keeps the
        // original's; pruning to 10 % loses most of it).
        for (const method of ['int8', 'prune'] as const) {
          const r = spawnSync(
            process.execPath,
            [
              join(ROOT, 'dist', 'cli.js'),
              'eval',
              join(s.workspace, 'resnet20_fmnist.onnx'),
              '--data',
              join(s.workspace, 'data', 't10k-images-idx3-ubyte.gz'),
              '--weights',
              join(s.workspace, ARTIFACTS[method]),
              '--json',
            ],
            { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
          );
          assert.equal(r.status, 0, `weight-lens eval failed:\n${r.stdout}\n${r.stderr}`);
          const measured = JSON.parse(r.stdout) as {
            report: { originalAccuracy?: number; candidate: { accuracy?: number } };
          };
          const cli = measured.report.candidate.accuracy;
          assert.equal(`${(100 * (measured.report.originalAccuracy ?? NaN)).toFixed(2)} %`, '92.19 %');
          const shown = byName.get(method)?.y[0];
          assert.ok(cli !== undefined && shown !== undefined, `${method}: the CLI and the chart have an accuracy`);
          assert.ok(
            Math.abs(shown - 100 * cli) < 1e-9,
            `${method}: the chart's ${shown} % against the CLI's ${100 * cli} %`,
          );
        }

        // The x axis reads in bytes with their unit.
        const ticks = (await frame.locator('[data-testid="budget-methods"] .xtick text').allTextContents()).map((t) =>
          t.trim(),
        );
        assert.ok(ticks.length >= 2, `the x axis has ticks: ${ticks.join(', ')}`);
        for (const t of ticks) assert.match(t, /^[\d.]+ ?[kM]B$/, `the x tick "${t}" is a size with its unit`);
        assert.deepEqual(await overflowingElements(frame), [], 'parts of the Budget panel are cut off');
        // Every heading and figure of the table is read in full (none cut off with an ellipsis).
        const clipped = await frame.evaluate<string[]>(`[...document.querySelectorAll(
          '[data-testid="budget-methods-table"] th, [data-testid="budget-methods-table"] td')]
          .filter((c) => c.scrollWidth > c.clientWidth + 1).map((c) => c.textContent)`);
        assert.deepEqual(clipped, [], 'cells of the methods table are cut off');
        await s.closeToasts();
        await frame.locator('[data-testid="budget-methods"]').scrollIntoViewIfNeeded();
        await s.page.waitForTimeout(500);
        await s.screenshot('sweep');
      });
    },
  );

  void test('a click on the int8 point opens that artifact', { timeout: 90_000 }, async () => {
    await step('open point', async (s) => {
      assert.ok(budget !== undefined, 'the Budget panel is open');
      const frame = budget;
      const traces = await plotted(frame);
      const index = traces.findIndex((t) => t.name === 'int8');
      assert.ok(index >= 0, 'the chart has an int8 line');
      const point = frame
        .locator('[data-testid="budget-methods"] .scatterlayer .trace')
        .nth(index)
        .locator('.points path')
        .first();
      await point.scrollIntoViewIfNeeded();
      // Plotly's drag layer lies over the points and turns a click at a point into plotly_click: click through it.
      await point.click({ force: true });
      const name = 'resnet20_fmnist.int8.safetensors';
      await s.page
        .locator('.tabs-container .tab', { hasText: `Reconstruction: ${name}` })
        .first()
        .waitFor({ state: 'visible', timeout: 60_000 });
      const { frame: recon, text } = await s.waitForTestId('report', {
        accept: (t) => t.includes(name),
        timeoutMs: 60_000,
      });
      // A baseline: its method and the size on disk, and no training figures of a NeRN run.
      assert.match(text, /Method\s+int8: per-output-channel round-to-nearest, 8 bits/);
      assert.ok(text.includes(formatBytes(statSync(join(s.workspace, ARTIFACTS.int8)).size)), text);
      assert.doesNotMatch(text, /Steps|Permutation|Predictor/);
      const status = (await recon.locator('#status').innerText()).trim();
      assert.equal(status, 'Done: int8 baseline, nothing trained');
      assert.equal((await recon.locator('#card-backend').innerText()).trim(), 'int8');
      assert.equal((await recon.locator('#card-backend-label').innerText()).trim(), 'method');
      assert.match(await recon.locator('#loss-hint').innerText(), /nothing is trained, so there is no loss curve/);
      await s.page.waitForTimeout(500);
      await s.screenshot('sweep-artifact');
    });
  });

  void test('Stop comparing ends a running comparison and says it stopped', { timeout: 120_000 }, async () => {
    await step('stop', async (s) => {
      assert.ok(budget !== undefined, 'the Budget panel is open');
      const frame = budget;
      // A long NeRN run: the steps setting is read when the comparison starts.
      const settingsFile = join(s.userDataDir, 'User', 'settings.json');
      const settings = JSON.parse(readFileSync(settingsFile, 'utf8')) as Record<string, unknown>;
      writeFileSync(settingsFile, JSON.stringify({ ...settings, 'weightLens.compress.steps': LONG_STEPS }, null, 2));
      await s.page.waitForTimeout(1_500);
      await s.page.locator('.tabs-container .tab', { hasText: 'Budget: resnet20_fmnist.pt' }).first().click();
      await startComparison(s, frame);
      await chooseMethods(s, ['nern']);
      await enterSizes(s, '0.2');
      await s.waitForTestId('budget-methods-status', {
        accept: (t) => t.startsWith('(run 1 of 1: compressing nern at 20 %'),
        timeoutMs: 90_000,
      });
      const stop = frame.locator('[data-testid="budget-methods-stop"]');
      assert.equal(await stop.isVisible(), true, 'Stop comparing shows while the comparison runs');
      assert.equal(await frame.locator('[data-testid="budget-compare"]').isVisible(), false);
      await stop.click();
      const { text } = await s.waitForTestId('budget-methods-status', {
        accept: (t) => t.startsWith('(Stopped'),
        timeoutMs: 30_000,
      });
      assert.equal(text, '(Stopped after 0 of 1 runs.)');
      assert.equal(await frame.locator('[data-testid="budget-compare"]').isVisible(), true);
      assert.equal(await stop.isVisible(), false, 'Stop is gone once the comparison stopped');
      await s.page
        .locator('.notification-list-item', { hasText: 'Comparing methods on' })
        .first()
        .waitFor({ state: 'hidden', timeout: 30_000 });
      // The engine stopped the run: the log says so and no artifact of it was written.
      const log = s
        .extensionHostLogs()
        .filter((f) => f.endsWith('Weight Lens.log'))
        .map((f) => readFileSync(f, 'utf8'))
        .join('\n');
      assert.match(log, /Comparing methods on resnet20_fmnist\.pt was cancelled\./);
      assert.equal(
        existsSync(join(s.workspace, 'resnet20_fmnist.sweep', 'resnet20_fmnist-20pct.nern.safetensors')),
        false,
      );
      await s.screenshot('sweep-stopped');
    });
  });
});
