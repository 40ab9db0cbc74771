// Log axes are labelled with full numbers at decades or 1-2-5 steps, never with plotly's bare minor digits
// ("8 7 6 … 0.1 9 8"), in every layout that has one (loss curves, RMSE trade-off, log-y histograms).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { histogramLayout, logAxisTicks, type ThemeColors } from '../../../../webview/lib/plotLayout';

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
