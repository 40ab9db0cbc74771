/**
 * Turns binned histograms (never raw weights) into plotly traces for the Inspector: one tensor as bars, several as
 * overlaid step lines, optionally normalised to a density so tensors of different sizes compare. Pure (no DOM, no
 * plotly import): the traces are plain objects handed to the global `Plotly` by the caller.
 */
import type { HistogramDto } from '../../src/protocol/inspect';
import { plotText } from './plotText';

/** A named histogram to plot. */
export interface HistogramSeries {
  readonly name: string;
  readonly histogram: HistogramDto;
}

/** How to draw the series. */
export interface HistogramOptions {
  /** Logarithmic y axis (empty bins are then left out rather than drawn at 0). */
  readonly logY: boolean;
  /** Plot `count / (total · binWidth)` instead of raw counts. */
  readonly density: boolean;
}

/** The subset of a plotly trace these plots use. */
export interface PlotTrace {
  type: 'bar' | 'scatter';
  name: string;
  x: number[];
  y: (number | null)[];
  width?: number;
  mode?: 'lines';
  line?: { shape: 'hv'; width: number; color: string };
  marker?: { color: string; line?: { width: number } };
  opacity?: number;
  fill?: 'tozeroy' | 'none';
  fillcolor?: string;
  customdata?: [number, number][];
  hovertemplate?: string;
  showlegend?: boolean;
}

/** At most this many series are plotted at once (more selected rows are listed as left out). */
export const MAX_SERIES = 12;

/** True if `h` has at least one non-empty bin, finite edges, and consistent edges/counts lengths. */
export function isPlottable(h: HistogramDto): boolean {
  return (
    h.counts.length > 0 &&
    h.edges.length === h.counts.length + 1 &&
    h.edges.every((e) => Number.isFinite(e)) &&
    h.counts.some((c) => c > 0)
  );
}

/** Width of one bin of `h` (bins are equal-width); a degenerate range gets a small positive width for display. */
export function binWidth(h: HistogramDto): number {
  const first = h.edges[0] ?? 0;
  const last = h.edges[h.edges.length - 1] ?? first;
  const w = (last - first) / Math.max(1, h.counts.length);
  if (w > 0) return w;
  return Math.abs(first) > 0 ? Math.abs(first) * 0.02 : 1;
}

/** The plotted bin heights: raw counts or densities; with `logY`, empty bins become `null` (gaps). */
export function binHeights(h: HistogramDto, opts: HistogramOptions): (number | null)[] {
  const total = h.counts.reduce((a, b) => a + b, 0);
  const w = binWidth(h);
  return h.counts.map((c) => {
    if (opts.logY && c <= 0) return null;
    return opts.density ? (total > 0 ? c / (total * w) : 0) : c;
  });
}

function hexToRgba(color: string, alpha: number): string {
  const m = /^#([0-9a-f]{6})$/i.exec(color.trim());
  if (!m?.[1]) return color;
  const n = parseInt(m[1], 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/**
 * Builds plotly traces for up to `MAX_SERIES` series, coloured from `palette` in turn. A single series is drawn as
 * bars; several as step outlines (with a faint fill), which stay readable when overlaid. Series names are escaped
 * (`plotText`): they come from the file.
 */
export function buildTraces(
  series: readonly HistogramSeries[],
  opts: HistogramOptions,
  palette: readonly string[],
): PlotTrace[] {
  const plottable = series.filter((s) => isPlottable(s.histogram)).slice(0, MAX_SERIES);
  const yLabel = opts.density ? 'density' : 'count';
  const colours = palette.length > 0 ? palette : ['#3794ff'];
  return plottable.map((s, i): PlotTrace => {
    const h = s.histogram;
    const color = colours[i % colours.length] ?? '#3794ff';
    const heights = binHeights(h, opts);
    const w = binWidth(h);
    const first = h.edges[0] ?? 0;
    const customdata = h.counts.map((_, b): [number, number] => [
      h.edges[b] ?? first + b * w,
      h.edges[b + 1] ?? first + (b + 1) * w,
    ]);
    const hovertemplate = `%{fullData.name}<br>[%{customdata[0]:.4g}, %{customdata[1]:.4g}]<br>${yLabel}: %{y:.4g}<extra></extra>`;
    if (plottable.length === 1) {
      return {
        type: 'bar',
        name: plotText(s.name),
        x: h.counts.map((_, b) => first + (b + 0.5) * w),
        y: heights,
        width: w,
        marker: { color, line: { width: 0 } },
        opacity: 0.85,
        customdata,
        hovertemplate,
        showlegend: true,
      };
    }
    const last = heights[heights.length - 1] ?? 0;
    const end = first + h.counts.length * w;
    const base = opts.logY ? null : 0;
    return {
      type: 'scatter',
      mode: 'lines',
      name: plotText(s.name),
      x: [first, ...h.counts.map((_, b) => first + b * w), end, end],
      y: [base, ...heights, last, base],
      line: { shape: 'hv', width: 1.5, color },
      fill: opts.logY ? 'none' : 'tozeroy',
      fillcolor: hexToRgba(color, 0.12),
      customdata: [
        customdata[0] ?? [first, first + w],
        ...customdata,
        customdata[customdata.length - 1] ?? [end - w, end],
        [end, end],
      ],
      hovertemplate,
      showlegend: true,
    };
  });
}
