// The Inspector table's pure model: filter parsing (substring and /regex/), numeric sorting with missing statistics
// last, view computation, and click/ctrl-click/shift-click/keyboard selection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TensorHeaderDto, TensorStatsDto } from '../../../../src/protocol/inspect';
import {
  clampColumnWidth,
  COLUMN_IDS,
  COLUMN_WIDTH_LIMITS,
  columnWidths,
  computeView,
  DEFAULT_COLUMN_WIDTHS,
  filterStatus,
  NAME_WIDTH_LIMITS,
  nextSort,
  parseFilter,
  RowSelection,
  type TensorRow,
} from '../../../../webview/lib/tableModel';

function header(name: string, dtype = 'F32', shape: number[] = [2, 2]): TensorHeaderDto {
  const params = shape.reduce((a, b) => a * b, 1);
  return { name, dtype, shape, params, bytes: params * 4, kind: 'other' };
}

function stats(mean: number, zeros = 0): TensorStatsDto {
  return { count: 16, mean, std: 1, min: -1, max: 1, absMax: 1, l2: 1, zeros, nonFinite: 0 };
}

function rows(): TensorRow[] {
  return [
    { index: 0, header: header('layers.10.weight', 'F32', [4, 4]), stats: stats(0.5) },
    { index: 1, header: header('layers.2.weight', 'BF16', [8]) },
    { index: 2, header: header('layers.1.bias', 'F32', [2]), stats: stats(-3, 1) },
    { index: 3, header: header('embed.weight', 'Q4_0', [16, 2]) },
  ];
}

void test('empty filter keeps everything in header order', () => {
  const f = parseFilter('   ');
  assert.ok(f.ok && f.empty);
  assert.deepEqual(computeView(rows(), f, undefined), [0, 1, 2, 3]);
});

void test('substring filter is case-insensitive and matches name or dtype', () => {
  assert.deepEqual(computeView(rows(), parseFilter('WEIGHT'), undefined), [0, 1, 3]);
  assert.deepEqual(computeView(rows(), parseFilter('bf16'), undefined), [1]);
  assert.deepEqual(computeView(rows(), parseFilter('q4_'), undefined), [3]);
});

void test('/regex/ filter with flags; g and y are dropped so repeated tests are stable', () => {
  assert.deepEqual(computeView(rows(), parseFilter('/^layers\\.\\d\\./'), undefined), [1, 2]);
  assert.deepEqual(computeView(rows(), parseFilter('/EMBED/i'), undefined), [3]);
  assert.deepEqual(computeView(rows(), parseFilter('/EMBED/'), undefined), []);
  const g = parseFilter('/weight/g');
  assert.ok(g.ok);
  assert.deepEqual(computeView(rows(), g, undefined), [0, 1, 3]);
  assert.deepEqual(computeView(rows(), g, undefined), [0, 1, 3]);
});

void test('an invalid regex is reported, not thrown', () => {
  const f = parseFilter('/[unclosed/');
  assert.ok(!f.ok);
  assert.match(f.error, /./);
});

void test('an invalid regex is named once, and the row count keeps its short form', () => {
  for (const text of ['/(/', '/[unclosed/', '/a{2,1}/', '/(?<n>a)(?<n>b)/']) {
    const f = parseFilter(text);
    const status = filterStatus(f, 0, 38);
    assert.equal(status.count, '38 tensors', text);
    assert.ok(status.error !== undefined, text);
    assert.equal(status.error.split('Invalid regular expression').length - 1, 1, `${text}: ${status.error}`);
    assert.doesNotMatch(status.error, /\/.*\/: /, `${text}: the pattern is not repeated`);
  }
  assert.equal(filterStatus(parseFilter('/(/'), 0, 38).error, 'Invalid regular expression: Unterminated group');
  assert.deepEqual(filterStatus(parseFilter(''), 38, 38), { count: '38 tensors' });
  assert.deepEqual(filterStatus(parseFilter('conv'), 10, 38), { count: '10 of 38 tensors' });
});

void test('the name column is wide enough for the longest name, within limits, and fills spare room', () => {
  const names = ['layer3.0.conv1.weight', 'layer3.0.conv2.weight', 'fc.bias'];
  const w = columnWidths({ names, charWidth: 8, containerWidth: 0 });
  assert.ok(w.name >= 'layer3.0.conv1.weight'.length * 8, `name column ${w.name} px`);
  assert.ok(w.name > 14 * 8 + 40, 'wider than the 14 characters that made conv1 and conv2 look alike');
  assert.equal(columnWidths({ names: ['a'], charWidth: 8, containerWidth: 0 }).name, NAME_WIDTH_LIMITS.min);
  assert.equal(columnWidths({ names: ['x'.repeat(500)], charWidth: 8, containerWidth: 0 }).name, NAME_WIDTH_LIMITS.max);
  const others = COLUMN_IDS.filter((id) => id !== 'name').reduce((sum, id) => sum + DEFAULT_COLUMN_WIDTHS[id], 0);
  assert.equal(columnWidths({ names, charWidth: 8, containerWidth: others + 900 }).name, 900, 'fills a wide pane');
  assert.equal(w.dtype, DEFAULT_COLUMN_WIDTHS.dtype);
});

void test("resized columns keep the user's width, clamped", () => {
  const w = columnWidths({
    names: ['n'],
    charWidth: 8,
    containerWidth: 5000,
    user: { name: 333.4, mean: 2, std: 1e9 },
  });
  assert.equal(w.name, 333, 'a width the user chose is not widened to fill the pane');
  assert.equal(w.mean, COLUMN_WIDTH_LIMITS.min);
  assert.equal(w.std, COLUMN_WIDTH_LIMITS.max);
  assert.equal(clampColumnWidth(Number.NaN), COLUMN_WIDTH_LIMITS.min);
  assert.equal(clampColumnWidth(120.6), 121);
});

void test('text that only starts with a slash is a substring', () => {
  const f = parseFilter('/weight');
  assert.ok(f.ok && !f.empty);
  assert.deepEqual(computeView(rows(), f, undefined), []);
});

void test('sort cycles asc → desc → none', () => {
  const a = nextSort(undefined, 'mean');
  assert.deepEqual(a, { column: 'mean', direction: 'asc' });
  const d = nextSort(a, 'mean');
  assert.deepEqual(d, { column: 'mean', direction: 'desc' });
  assert.equal(nextSort(d, 'mean'), undefined);
  assert.deepEqual(nextSort(d, 'name'), { column: 'name', direction: 'asc' });
});

void test('numeric sort puts rows without statistics last in both directions', () => {
  assert.deepEqual(computeView(rows(), parseFilter(''), { column: 'mean', direction: 'asc' }), [2, 0, 1, 3]);
  assert.deepEqual(computeView(rows(), parseFilter(''), { column: 'mean', direction: 'desc' }), [0, 2, 1, 3]);
});

void test('name sort is natural (layers.2 before layers.10); params and shape sort numerically', () => {
  assert.deepEqual(computeView(rows(), parseFilter(''), { column: 'name', direction: 'asc' }), [3, 2, 1, 0]);
  assert.deepEqual(computeView(rows(), parseFilter(''), { column: 'params', direction: 'desc' }), [3, 0, 1, 2]);
  assert.deepEqual(computeView(rows(), parseFilter(''), { column: 'shape', direction: 'asc' }), [2, 0, 1, 3]);
});

void test('zeros sorts by the share of zeros, not the count', () => {
  const r: TensorRow[] = [
    { index: 0, header: header('a', 'F32', [100]), stats: stats(0, 10) },
    { index: 1, header: header('b', 'F32', [10]), stats: stats(0, 5) },
  ];
  assert.deepEqual(computeView(r, parseFilter(''), { column: 'zeros', direction: 'desc' }), [1, 0]);
});

void test('sorting 10,000 rows stays fast and total', () => {
  const many: TensorRow[] = Array.from({ length: 10_000 }, (_, i) => ({
    index: i,
    header: header(`t.${i}`),
    ...(i % 3 === 0 ? {} : { stats: stats(Math.sin(i)) }),
  }));
  const view = computeView(many, parseFilter(''), { column: 'mean', direction: 'asc' });
  assert.equal(view.length, 10_000);
  assert.equal(new Set(view).size, 10_000);
  // Rows without statistics (every third) come last, in header order.
  assert.deepEqual(view.slice(-3), [9993, 9996, 9999]);
});

void test('selection: click, ctrl-click toggle, shift-click range in visible order', () => {
  const view = [3, 1, 0, 2];
  const s = new RowSelection();
  s.click(1, view, { toggle: false, range: false });
  assert.deepEqual(s.indices, [1]);
  s.click(2, view, { toggle: false, range: true });
  assert.deepEqual(s.indices.sort(), [0, 1, 2]);
  s.click(0, view, { toggle: true, range: false });
  assert.deepEqual(s.indices.sort(), [1, 2]);
  s.click(3, view, { toggle: true, range: false });
  assert.deepEqual(s.indices.sort(), [1, 2, 3]);
  s.click(3, view, { toggle: false, range: false });
  assert.deepEqual(s.indices, [3]);
});

void test('selection: keyboard moves clamp at the ends and extend with shift', () => {
  const view = [5, 6, 7, 8];
  const s = new RowSelection();
  assert.equal(s.move(view, 1, false), 5);
  assert.equal(s.move(view, 1, false), 6);
  assert.equal(s.move(view, 10, true), 8);
  assert.deepEqual(s.indices.sort(), [6, 7, 8]);
  assert.equal(s.move(view, -100, false), 5);
  assert.deepEqual(s.indices, [5]);
  s.retain((i) => i !== 5);
  assert.equal(s.size, 0);
  assert.equal(s.focus, undefined);
});
