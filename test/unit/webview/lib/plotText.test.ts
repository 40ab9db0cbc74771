// File-derived strings handed to plotly (tensor, layer and class names) are escaped, so plotly's HTML subset never
// turns them into links or markup: histogram legends, layer-error and drift bars, confusion-matrix classes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layerErrorTrace } from '../../../../webview/lib/compressPlots';
import { buildTraces } from '../../../../webview/lib/histogram';
import { plotText } from '../../../../webview/lib/plotText';
import { confusionTraces, driftTrace } from '../../../../webview/lib/runPlots';

const LINK = '<a href="x">n</a>';
const ESCAPED = '&lt;a href="x"&gt;n&lt;/a&gt;';

void test('plotText escapes the characters plotly reads as markup, and only those', () => {
  assert.equal(plotText(LINK), ESCAPED);
  assert.equal(plotText('a &lt; b'), 'a &amp;lt; b', 'an entity in a name shows as written');
  assert.equal(plotText('<br>'), '&lt;br&gt;');
  assert.equal(plotText('layer3.0.conv1.weight'), 'layer3.0.conv1.weight');
  assert.notEqual(plotText('<b>'), plotText('&lt;b&gt;'), 'distinct names stay distinct');
});

void test('histogram legends carry escaped tensor names', () => {
  const h = { edges: [0, 1, 2], counts: [1, 2] };
  const one = buildTraces([{ name: LINK, histogram: h }], { logY: false, density: false }, ['#123456']);
  assert.equal(one[0]?.name, ESCAPED);
  const two = buildTraces(
    [
      { name: LINK, histogram: h },
      { name: '<b>w</b>', histogram: h },
    ],
    { logY: false, density: false },
    ['#123456'],
  );
  assert.deepEqual(
    two.map((t) => t.name),
    [ESCAPED, '&lt;b&gt;w&lt;/b&gt;'],
  );
});

void test('bar categories are escaped; customdata keeps the names for click handlers', () => {
  const layers = [{ name: LINK, shape: [2, 2, 3, 3], params: 36, rmse: 0.1, relativeError: 0.2 }];
  const bars = layerErrorTrace(layers, undefined, { normal: 'N', highlight: 'H' });
  assert.deepEqual(bars.y, [ESCAPED]);
  assert.deepEqual(bars.customdata, [LINK]);
  const drift = driftTrace([{ name: LINK, drift: 0.03 }], 'C');
  assert.deepEqual(drift.y, [ESCAPED]);
  assert.deepEqual(drift.customdata, [LINK]);
});

void test('confusion-matrix class names from a labels file are escaped', () => {
  const traces = confusionTraces(
    [
      [3, 1],
      [0, 4],
    ],
    [LINK, 'cat'],
    { same: 'S', changedLow: 'L', changedHigh: 'H', text: 'T' },
  );
  assert.deepEqual(traces[0]?.x, [`0: ${ESCAPED}`, '1: cat']);
  assert.deepEqual(traces[1]?.y, [`0: ${ESCAPED}`, '1: cat']);
});
