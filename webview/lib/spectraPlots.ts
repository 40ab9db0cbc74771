/**
 * Plots of the spectral diagnostics, as plain plotly traces and layouts (pure: no DOM, no plotly, unit-tested under
 * Node): α and stable rank per layer, with WeightWatcher's reading of α as shaded bands (below 2 may be over-trained,
 * above 6 under-trained), and log-log ESDs of one or more spectra (a layer's, or its original and reconstruction).
 */
import {
  OVER_TRAINED_ALPHA,
  UNDER_TRAINED_ALPHA,
  type LayerSpectrumDto,
  type LogHistogramDto,
} from '../../src/protocol/spectra';
import type { ThemeColors } from './plotLayout';

/** The one-line guidance shown beside the α chart. */
export const ALPHA_GUIDANCE = `WeightWatcher reads α as guidance: ${OVER_TRAINED_ALPHA} ≤ α ≤ ${UNDER_TRAINED_ALPHA} is typical of well-trained layers; below ${OVER_TRAINED_ALPHA} may be over-trained, above ${UNDER_TRAINED_ALPHA} under-trained.`;

/** A plotly figure: traces and layout as plain objects. */
export interface Figure {
  data: object[];
  layout: object;
}

function axisBase(theme: ThemeColors): object {
  return {
    color: theme.foreground,
    gridcolor: theme.grid,
    zerolinecolor: theme.grid,
    linecolor: theme.grid,
    automargin: true,
  };
}

function layoutBase(theme: ThemeColors): Record<string, unknown> {
  return {
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: 'rgba(0,0,0,0)',
    font: { family: theme.fontFamily, size: theme.fontSize, color: theme.foreground },
    margin: { l: 56, r: 56, t: 28, b: 40 },
    hoverlabel: { bgcolor: theme.hoverBackground, bordercolor: theme.hoverBorder, font: { color: theme.foreground } },
    showlegend: true,
    legend: { orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom', bgcolor: 'rgba(0,0,0,0)' },
    autosize: true,
  };
}

/**
 * α (left axis) and stable rank (right axis, log) per layer in file order, x = layer index (names in the hover and
 * as tick labels when few); layers without α are left out of its line. Bands mark α < 2 and α > 6. `selected`
 * (a layer index) is ringed.
 */
export function alphaFigure(layers: readonly LayerSpectrumDto[], theme: ThemeColors, selected?: number): Figure {
  const x = layers.map((_, i) => i);
  const names = layers.map((l) => l.name);
  const alphas = layers.map((l) => l.alpha);
  const finite = alphas.filter((a): a is number => a !== null);
  const top = Math.max(UNDER_TRAINED_ALPHA + 1, ...finite.map((a) => Math.min(a, 20) + 0.5));
  const bottom = Math.min(1, ...finite.map((a) => a - 0.5));
  const blue = theme.palette[0] ?? '#3794ff';
  const orange = theme.palette[1] ?? '#d18616';
  const red = theme.palette[4] ?? '#f14c4c';
  const data: object[] = [
    {
      type: 'scatter',
      mode: 'lines+markers',
      name: 'α',
      x,
      y: alphas,
      customdata: names,
      hovertemplate: '%{customdata}<br>α = %{y:.3f}<extra></extra>',
      line: { color: blue, width: 1.5 },
      marker: { color: blue, size: 7 },
    },
    {
      type: 'scatter',
      mode: 'lines+markers',
      name: 'stable rank',
      x,
      y: layers.map((l) => l.stableRank),
      customdata: names,
      yaxis: 'y2',
      hovertemplate: '%{customdata}<br>stable rank = %{y:.2f}<extra></extra>',
      line: { color: orange, width: 1, dash: 'dot' },
      marker: { color: orange, size: 5, symbol: 'diamond' },
    },
  ];
  const sel = selected !== undefined ? layers[selected] : undefined;
  if (sel !== undefined && sel.alpha !== null)
    data.push({
      type: 'scatter',
      mode: 'markers',
      name: 'selected',
      showlegend: false,
      hoverinfo: 'skip',
      x: [selected],
      y: [sel.alpha],
      marker: { color: 'rgba(0,0,0,0)', size: 15, line: { color: theme.foreground, width: 2 } },
    });
  const few = layers.length <= 24;
  const band = (y0: number, y1: number): object => ({
    type: 'rect',
    xref: 'paper',
    x0: 0,
    x1: 1,
    yref: 'y',
    y0,
    y1,
    fillcolor: red,
    opacity: 0.08,
    line: { width: 0 },
    layer: 'below',
  });
  const layout = {
    ...layoutBase(theme),
    xaxis: {
      ...axisBase(theme),
      title: { text: 'layer' },
      tickmode: few ? 'array' : 'auto',
      ...(few
        ? { tickvals: x, ticktext: names.map((n) => (n.length > 18 ? `…${n.slice(-17)}` : n)), tickangle: -35 }
        : {}),
    },
    yaxis: { ...axisBase(theme), title: { text: 'α' }, range: [bottom, top] },
    yaxis2: {
      ...axisBase(theme),
      title: { text: 'stable rank' },
      overlaying: 'y',
      side: 'right',
      type: 'log',
      showgrid: false,
    },
    shapes: [band(bottom, OVER_TRAINED_ALPHA), band(UNDER_TRAINED_ALPHA, top)],
    annotations: [
      {
        xref: 'paper',
        x: 0.01,
        y: OVER_TRAINED_ALPHA,
        yref: 'y',
        yanchor: 'top',
        xanchor: 'left',
        showarrow: false,
        text: 'α < 2: may be over-trained',
        font: { size: 11, color: theme.foreground },
        opacity: 0.7,
      },
      {
        xref: 'paper',
        x: 0.01,
        y: UNDER_TRAINED_ALPHA,
        yref: 'y',
        yanchor: 'bottom',
        xanchor: 'left',
        showarrow: false,
        text: 'α > 6: may be under-trained',
        font: { size: 11, color: theme.foreground },
        opacity: 0.7,
      },
    ],
    uirevision: `alpha|${layers.length}`,
  };
  return { data, layout };
}

/** Bin centres (geometric means of the edges) of a log histogram, and its densities; empty bins are dropped. */
export function esdPoints(esd: LogHistogramDto): { x: number[]; y: number[] } {
  const x: number[] = [];
  const y: number[] = [];
  esd.density.forEach((d, i) => {
    const lo = esd.edges[i];
    const hi = esd.edges[i + 1];
    if (lo === undefined || hi === undefined || !(d > 0)) return;
    x.push(Math.sqrt(lo * hi));
    y.push(d);
  });
  return { x, y };
}

/** One spectrum to draw: its label, its ESD and where its fitted power-law tail starts (null: no fit). */
export interface EsdSeries {
  name: string;
  esd: LogHistogramDto;
  xmin: number | null;
  alpha: number | null;
}

/**
 * Log-log ESDs of `series` (density against eigenvalue of WᵀW), each as a step line in its palette colour, with a
 * dashed vertical line at its x_min (the start of the fitted tail) labelled with α.
 */
export function esdFigure(series: readonly EsdSeries[], theme: ThemeColors, title?: string): Figure {
  const data: object[] = [];
  const shapes: object[] = [];
  series.forEach((s, i) => {
    const colour = theme.palette[i % theme.palette.length] ?? '#3794ff';
    const { x, y } = esdPoints(s.esd);
    data.push({
      type: 'scatter',
      mode: 'lines+markers',
      name: s.alpha !== null ? `${s.name} (α = ${s.alpha.toFixed(2)})` : s.name,
      x,
      y,
      line: { color: colour, width: 1.5, shape: 'hvh' },
      marker: { color: colour, size: 4 },
      hovertemplate: 'λ = %{x:.3g}<br>density %{y:.3g}<extra></extra>',
    });
    if (s.xmin !== null)
      shapes.push({
        type: 'line',
        xref: 'x',
        x0: s.xmin,
        x1: s.xmin,
        yref: 'paper',
        y0: 0,
        y1: 1,
        line: { color: colour, width: 1, dash: 'dash' },
      });
  });
  const layout = {
    ...layoutBase(theme),
    ...(title !== undefined ? { title: { text: title, font: { size: theme.fontSize } } } : {}),
    margin: { l: 56, r: 16, t: title !== undefined ? 48 : 28, b: 40 },
    xaxis: { ...axisBase(theme), type: 'log', title: { text: 'eigenvalue λ of WᵀW' }, exponentformat: 'power' },
    yaxis: { ...axisBase(theme), type: 'log', title: { text: 'density' }, exponentformat: 'power' },
    shapes,
    uirevision: `esd|${series.map((s) => s.name).join('|')}`,
  };
  return { data, layout };
}

/** One line of numbers about a layer's spectrum, for the panel beside its ESD. */
export function spectrumSummary(l: LayerSpectrumDto): string {
  const f = (v: number | null, d: number): string => (v === null ? '—' : v.toFixed(d));
  const method =
    l.method.kind === 'exact'
      ? 'exact'
      : `top ${l.method.rank} of ${l.m} singular values per slice (randomized SVD; no MP soft rank)`;
  return [
    `α ${f(l.alpha, 3)}`,
    `α-weighted ${f(l.alphaWeighted, 3)}`,
    `stable rank ${l.stableRank.toFixed(2)}`,
    `log λmax ${l.logSpectralNorm.toFixed(3)}`,
    `log ‖W‖F² ${l.logNorm.toFixed(3)}`,
    `MP soft rank ${f(l.mpSoftRank, 3)}`,
    `${l.evalCount} eigenvalues${l.slices > 1 ? ` (${l.slices} slices of ${l.n} × ${l.m})` : ` (${l.n} × ${l.m})`}`,
    method,
  ].join(' · ');
}
