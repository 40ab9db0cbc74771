/**
 * Plot layouts and settings for the webview panels, coloured from a theme read elsewhere (`readTheme` in plotly.ts):
 * histogram and bar-list layouts, log-axis ticks labelled in full, the plot config. Pure (no DOM, no plotly), so it
 * is unit-tested under Node.
 */

/** Axis settings used by our plots. */
export interface PlotAxis {
  title?: { text: string; font?: { size: number } };
  type?: 'linear' | 'log';
  color?: string;
  gridcolor?: string;
  zerolinecolor?: string;
  linecolor?: string;
  automargin?: boolean;
  exponentformat?: 'e' | 'power' | 'SI' | 'none';
  /** Tick step: a number (in decades on a log axis) or plotly's `D1`/`D2`/`L…` strings. */
  dtick?: number | string;
  /** d3 format of the tick labels. */
  tickformat?: string;
}

/** Layout settings used by our plots. */
export interface PlotLayout {
  paper_bgcolor: string;
  plot_bgcolor: string;
  font: { family: string; size: number; color: string };
  margin: { l: number; r: number; t: number; b: number };
  xaxis: PlotAxis;
  yaxis: PlotAxis;
  barmode?: 'overlay';
  bargap?: number;
  showlegend: boolean;
  legend?: {
    orientation: 'h' | 'v';
    x?: number;
    y?: number;
    xanchor?: 'left' | 'right';
    yanchor?: 'top' | 'bottom';
    bgcolor?: string;
  };
  hoverlabel?: { bgcolor: string; bordercolor: string; font: { color: string } };
  uirevision?: string;
  autosize: boolean;
}

/** Config settings used by our plots. */
export interface PlotConfig {
  responsive: boolean;
  displaylogo: boolean;
  displayModeBar: boolean | 'hover';
  modeBarButtonsToRemove: string[];
}

/** Colours and font read from the theme. */
export interface ThemeColors {
  foreground: string;
  grid: string;
  fontFamily: string;
  fontSize: number;
  hoverBackground: string;
  hoverBorder: string;
  palette: string[];
}

/** Tick settings of a log axis (merge into the axis): see `logAxisTicks`. */
export interface LogTicks {
  dtick?: number | string;
  tickformat: string;
}

/**
 * Ticks for a log axis over the positive finite `values`, labelled with full numbers (never plotly's bare minor
 * digits, `8 7 6 … 0.1 9 8`): powers of ten when the values span 3 decades or more (every `⌈span/6⌉`-th decade),
 * 1-2-5 steps (`0.01 0.02 0.05 0.1`) from 0.7 decades, and plotly's own linear ticks inside a narrower range.
 */
export function logAxisTicks(values: Iterable<number | null | undefined>): LogTicks {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v === null || v === undefined || !Number.isFinite(v) || v <= 0) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const tickformat = '~g';
  if (!(hi >= lo)) return { tickformat };
  const decades = Math.log10(hi) - Math.log10(lo);
  if (decades >= 3) return { dtick: Math.max(1, Math.ceil(decades / 6)), tickformat };
  if (decades >= 0.7) return { dtick: 'D2', tickformat };
  return { tickformat };
}

/**
 * A histogram layout in the theme's colours: transparent background, theme font and grid. With `logY`, the y ticks
 * come from `logAxisTicks(yValues)` (the plotted heights).
 */
export function histogramLayout(
  theme: ThemeColors,
  opts: { logY: boolean; xTitle: string; yTitle: string; yValues?: Iterable<number | null | undefined> },
): PlotLayout {
  const axis = (title: string): PlotAxis => ({
    title: { text: title, font: { size: theme.fontSize } },
    color: theme.foreground,
    gridcolor: theme.grid,
    zerolinecolor: theme.grid,
    linecolor: theme.grid,
    automargin: true,
    exponentformat: 'e',
  });
  return {
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: 'rgba(0,0,0,0)',
    font: { family: theme.fontFamily, size: Math.max(10, theme.fontSize - 1), color: theme.foreground },
    margin: { l: 56, r: 16, t: 8, b: 40 },
    xaxis: axis(opts.xTitle),
    yaxis: opts.logY
      ? { ...axis(opts.yTitle), type: 'log', exponentformat: 'SI', ...logAxisTicks(opts.yValues ?? []) }
      : { ...axis(opts.yTitle), type: 'linear', exponentformat: 'SI' },
    barmode: 'overlay',
    bargap: 0,
    showlegend: true,
    legend: { orientation: 'h', x: 0, y: 1, xanchor: 'left', yanchor: 'bottom', bgcolor: 'rgba(0,0,0,0)' },
    hoverlabel: { bgcolor: theme.hoverBackground, bordercolor: theme.hoverBorder, font: { color: theme.foreground } },
    uirevision: 'histogram',
    autosize: true,
  };
}

/**
 * The layout of a list of horizontal bars in the theme's colours: one category per row, first row at the top, names
 * in the left margin, x titled `xTitle`, no legend; `uirevision` keeps zoom across redraws. (Its height:
 * `barListHeight`.)
 */
export function barListLayout(theme: ThemeColors, xTitle: string, uirevision: string): object {
  const base = histogramLayout(theme, { logY: false, xTitle, yTitle: '' });
  return {
    ...base,
    showlegend: false,
    bargap: 0.2,
    barmode: undefined,
    margin: { l: 8, r: 16, t: 8, b: 40 },
    yaxis: { ...base.yaxis, title: undefined, autorange: 'reversed', automargin: true, type: 'category' },
    uirevision,
  };
}

/** Plot config: no plotly logo, mode bar on hover, without the selection tools that mean nothing for a histogram. */
export const PLOT_CONFIG: PlotConfig = {
  responsive: true,
  displaylogo: false,
  displayModeBar: 'hover',
  modeBarButtonsToRemove: ['select2d', 'lasso2d', 'autoScale2d', 'toggleSpikelines'],
};
