// Histogram traces for the Inspector: bars for one tensor, closed step outlines for several, density normalisation,
// log-scale gaps, the series cap, and number formatting used in the table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binHeights, binWidth, buildTraces, isPlottable, MAX_SERIES } from '../../../../webview/lib/histogram';
import {
  formatBytes,
  formatCount,
  formatPercent,
  formatDuration,
  formatShape,
  formatStat,
} from '../../../../webview/lib/format';

const h = { edges: [0, 1, 2, 3, 4], counts: [1, 0, 3, 4] };
const palette = ['#112233', '#445566'];

void test('plottable needs consistent lengths, finite edges and a non-empty bin', () => {
  assert.ok(isPlottable(h));
  assert.equal(isPlottable({ edges: [0, 1], counts: [0] }), false);
  assert.equal(isPlottable({ edges: [0, 1, 2], counts: [1] }), false);
  assert.equal(isPlottable({ edges: [0, Number.NaN], counts: [1] }), false);
});

void test('bin width, with a positive fallback for a degenerate range', () => {
  assert.equal(binWidth(h), 1);
  assert.ok(binWidth({ edges: [2, 2], counts: [5] }) > 0);
  assert.ok(binWidth({ edges: [0, 0], counts: [5] }) > 0);
});

void test('density integrates to 1; log scale turns empty bins into gaps', () => {
  const d = binHeights(h, { logY: false, density: true });
  const area = d.reduce<number>((a, v) => a + (v ?? 0) * binWidth(h), 0);
  assert.ok(Math.abs(area - 1) < 1e-12);
  assert.deepEqual(binHeights(h, { logY: true, density: false }), [1, null, 3, 4]);
});

void test('one series is drawn as bars at bin centres', () => {
  const [t, ...rest] = buildTraces([{ name: 'w', histogram: h }], { logY: false, density: false }, palette);
  assert.equal(rest.length, 0);
  assert.ok(t);
  assert.equal(t.type, 'bar');
  assert.deepEqual(t.x, [0.5, 1.5, 2.5, 3.5]);
  assert.deepEqual(t.y, [1, 0, 3, 4]);
  assert.equal(t.width, 1);
  assert.equal(t.marker?.color, '#112233');
});

void test('several series are closed step outlines in palette colours', () => {
  const traces = buildTraces(
    [
      { name: 'a', histogram: h },
      { name: 'b', histogram: h },
      { name: 'c', histogram: h },
    ],
    { logY: false, density: false },
    palette,
  );
  assert.equal(traces.length, 3);
  const t = traces[0]!;
  assert.equal(t.type, 'scatter');
  assert.deepEqual(t.x, [0, 0, 1, 2, 3, 4, 4]);
  assert.deepEqual(t.y, [0, 1, 0, 3, 4, 4, 0]);
  assert.equal(t.x.length, t.customdata?.length);
  assert.equal(traces[2]!.line?.color, '#112233');
  assert.match(t.fillcolor ?? '', /^rgba\(17, 34, 51, /);
});

void test('at most MAX_SERIES traces; unplottable series are skipped', () => {
  const many = Array.from({ length: MAX_SERIES + 5 }, (_, i) => ({ name: `t${i}`, histogram: h }));
  assert.equal(buildTraces(many, { logY: false, density: false }, palette).length, MAX_SERIES);
  assert.equal(
    buildTraces([{ name: 'e', histogram: { edges: [0, 1], counts: [0] } }], { logY: true, density: false }, palette)
      .length,
    0,
  );
});

void test('formatting helpers', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1500), '1.5 kB');
  assert.equal(formatBytes(44_700_000), '45 MB');
  assert.equal(formatCount(9999), '9,999');
  assert.equal(formatCount(11_689_512), '11.7 M');
  assert.equal(formatCount(7e9), '7.0 B');
  assert.equal(formatStat(0), '0');
  assert.equal(formatStat(0.012345), '0.01235');
  assert.equal(formatStat(-1.23456e-5), '-1.235e-5');
  assert.equal(formatStat(3.4e38), '3.4e+38');
  assert.equal(formatStat(Number.NaN), 'NaN');
  assert.equal(formatPercent(0, 10), '0 %');
  assert.equal(formatPercent(1, 1e6), '<0.01 %');
  assert.equal(formatPercent(5, 10), '50.0 %');
  assert.equal(formatPercent(1, 0), '–');
  assert.equal(formatShape([64, 3, 7, 7]), '[64, 3, 7, 7]');
  assert.equal(formatShape([]), '[]');
  assert.equal(formatDuration(0.085), '85 ms');
  assert.equal(formatDuration(125), '2 min 5 s');
});
