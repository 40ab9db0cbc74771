// The Spectra plots on real spectra (the ResNet-20's, computed by the job): α and stable rank per layer with the
// over/under-trained bands at WeightWatcher's 2 and 6, and log-log ESDs whose points are the bins' geometric centres.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spectraOfFile } from '../../../../src/core/jobs/spectra';
import { alphaFigure, esdFigure, esdPoints, spectrumSummary } from '../../../../webview/lib/spectraPlots';
import type { ThemeColors } from '../../../../webview/lib/plotLayout';

const theme: ThemeColors = {
  foreground: '#ccc',
  grid: '#444',
  fontFamily: 'sans-serif',
  fontSize: 13,
  hoverBackground: '#222',
  hoverBorder: '#555',
  palette: ['#1', '#2', '#3', '#4', '#5', '#6'],
};
const RESNET = join(__dirname, '..', '..', '..', 'fixtures', 'models', 'resnet20_fmnist.pt');

void test('α chart: one point per layer on both axes, bands below 2 and above 6, the selected layer ringed', async () => {
  const { layers } = await spectraOfFile(RESNET, { maxRank: 0, bins: 40 });
  const fig = alphaFigure(layers, theme, 3) as unknown as {
    data: { name: string; y: (number | null)[]; yaxis?: string }[];
    layout: { shapes: { y0: number; y1: number }[]; yaxis2: { type: string }; yaxis: { range: number[] } };
  };
  const [alpha, rank, ring] = fig.data;
  assert.deepEqual(
    alpha!.y,
    layers.map((l) => l.alpha),
  );
  assert.deepEqual(
    rank!.y,
    layers.map((l) => l.stableRank),
  );
  assert.equal(rank!.yaxis, 'y2');
  assert.equal(fig.layout.yaxis2.type, 'log');
  assert.deepEqual(ring!.y, [layers[3]!.alpha]);
  const [low, high] = fig.layout.shapes;
  assert.equal(low!.y1, 2);
  assert.equal(high!.y0, 6);
  // The range holds every α (the ResNet-20 has one at 10.7).
  assert.ok(fig.layout.yaxis.range[1]! > Math.max(...layers.map((l) => l.alpha!)));
  assert.match(spectrumSummary(layers[0]!), /^α 2\.297 · α-weighted .* · exact$/);
});

void test('ESD points are geometric bin centres of non-empty bins, with a dashed x_min line per series', () => {
  const esd = { edges: [1, 10, 100, 1000], density: [0.5, 0, 0.01] };
  assert.deepEqual(esdPoints(esd), { x: [Math.sqrt(10), Math.sqrt(100000)], y: [0.5, 0.01] });
  const fig = esdFigure(
    [
      { name: 'original', esd, xmin: 10, alpha: 3.21 },
      { name: 'reconstructed', esd, xmin: null, alpha: null },
    ],
    theme,
  ) as unknown as { data: { name: string }[]; layout: { shapes: { x0: number }[]; xaxis: { type: string } } };
  assert.deepEqual(
    fig.data.map((d) => d.name),
    ['original (α = 3.21)', 'reconstructed'],
  );
  assert.deepEqual(
    fig.layout.shapes.map((s) => s.x0),
    [10],
  );
  assert.equal(fig.layout.xaxis.type, 'log');
});
