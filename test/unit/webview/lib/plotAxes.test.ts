// Log axes are labelled with full numbers at decades or 1-2-5 steps, never with plotly's bare minor digits
// ("8 7 6 … 0.1 9 8"), in every layout that has one (loss curves, RMSE trade-off, log-y histograms).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  byteAxisTicks,
  byteTickLabel,
  histogramLayout,
  logAxisTicks,
  type ThemeColors,
} from '../../../../webview/lib/plotLayout';
import { formatBytes } from '../../../../src/protocol/units';

const theme: ThemeColors = {
  foreground: '#ccc',
  grid: '#444',
  fontFamily: 'sans-serif',
  fontSize: 13,
  hoverBackground: '#222',
  hoverBorder: '#555',
  palette: ['#3794ff'],
};

void test('many decades: one label per decade (or per few decades), in full', () => {
  assert.deepEqual(logAxisTicks([1, 10, 1000, 2e4]), { dtick: 1, tickformat: '~g' });
  assert.deepEqual(logAxisTicks([1e-9, 1]), { dtick: 2, tickformat: '~g' }, '9 decades: every second one');
  assert.deepEqual(logAxisTicks([1e-12, 1]), { dtick: 2, tickformat: '~g' });
  assert.deepEqual(logAxisTicks([1e-13, 1]), { dtick: 3, tickformat: '~g' });
});

void test('one to three decades: 1-2-5 steps labelled in full', () => {
  // The case that showed "2, 0.1, 5, 2, 0.01, 5": losses from 0.004 to 0.3.
  assert.deepEqual(logAxisTicks([0.3, 0.1, 0.02, 0.004]), { dtick: 'D2', tickformat: '~g' });
  assert.deepEqual(logAxisTicks([0.05, 0.3]), { dtick: 'D2', tickformat: '~g' });
});

void test("within a decade, plotly's linear ticks are kept but labelled in full; no data gives full labels too", () => {
  assert.deepEqual(logAxisTicks([0.053, 0.059]), { tickformat: '~g' });
  assert.deepEqual(logAxisTicks([]), { tickformat: '~g' });
  assert.deepEqual(
    logAxisTicks([0, -1, Number.NaN, null, undefined, 0.5]),
    { tickformat: '~g' },
    'non-positive values are ignored',
  );
});

void test('a log-y layout carries the ticks of its values; a linear one is untouched', () => {
  const log = histogramLayout(theme, { logY: true, xTitle: 'step', yTitle: 'loss', yValues: [0.3, 0.004] });
  assert.equal(log.yaxis.type, 'log');
  assert.equal(log.yaxis.dtick, 'D2');
  assert.equal(log.yaxis.tickformat, '~g');
  const linear = histogramLayout(theme, { logY: false, xTitle: 'value', yTitle: 'count', yValues: [1, 1000] });
  assert.equal(linear.yaxis.type, 'linear');
  assert.equal(linear.yaxis.dtick, undefined);
  assert.equal(linear.yaxis.tickformat, undefined);
});

void test('byte axes are labelled in kB/MB, never with bare SI digits', () => {
  // The Budget panel's bytes bar: 0 to the ResNet-20 checkpoint's 1,119,753 bytes.
  const bar = byteAxisTicks([1_119_753, 629_000], false);
  assert.equal(bar.tickmode, 'array');
  assert.deepEqual(bar.tickvals, [0, 200_000, 400_000, 600_000, 800_000, 1_000_000, 1_200_000]);
  assert.deepEqual(bar.ticktext, ['0 B', '200 kB', '400 kB', '600 kB', '800 kB', '1 MB', '1.2 MB']);
  // A method comparison on it: 157 kB to 320 kB on a log axis, less than a decade: linear steps of 50 kB.
  const sweep = byteAxisTicks([156_792, 185_952, 199_892, 319_688], true);
  assert.deepEqual(sweep.ticktext, ['150 kB', '200 kB', '250 kB', '300 kB', '350 kB']);
  assert.ok(sweep.tickvals.every((v, i) => i === 0 || v > (sweep.tickvals[i - 1] ?? Infinity)));
});

void test('byte log axes over decades use 1-2-5 steps, and powers of ten over many decades', () => {
  assert.deepEqual(byteAxisTicks([12_000, 900_000], true).ticktext, [
    '10 kB',
    '20 kB',
    '50 kB',
    '100 kB',
    '200 kB',
    '500 kB',
    '1 MB',
  ]);
  // Six decades: every second power of ten.
  assert.deepEqual(byteAxisTicks([2_000, 3e9], true).ticktext, ['10 kB', '1 MB', '100 MB']);
  assert.deepEqual(byteAxisTicks([], true), { tickmode: 'array', tickvals: [], ticktext: [] });
  assert.deepEqual(byteAxisTicks([0, -5, Number.NaN, null], false).tickvals, [], 'no positive value: no ticks');
});

void test('neighbouring byte labels always differ, and agree with formatBytes where both are exact', () => {
  for (const [lo, hi] of [
    [1_000_000, 1_040_000],
    [999, 1_001],
    [5_000_000, 5_000_600],
    [81_000, 99_000],
  ] as const) {
    for (const log of [true, false]) {
      const { ticktext } = byteAxisTicks([lo, hi], log);
      assert.ok(ticktext.length >= 2, `${lo}–${hi}: ${ticktext.join(', ')}`);
      assert.equal(new Set(ticktext).size, ticktext.length, `${lo}–${hi} (log ${log}): ${ticktext.join(', ')}`);
    }
  }
  for (const b of [0, 500, 200_000, 1_500_000, 20_000_000]) assert.equal(byteTickLabel(b, b / 2 || 1), formatBytes(b));
  assert.equal(byteTickLabel(1_010_000, 10_000), '1.01 MB');
});
