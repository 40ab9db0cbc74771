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

/** Tick positions and labels of an axis of byte counts (merge into the axis): see `byteAxisTicks`. */
export interface ByteTicks {
  tickmode: 'array';
  tickvals: number[];
  ticktext: string[];
}

/** Decimal byte units (`kB` = 1000 B), as `formatBytes` writes them. */
const BYTE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** A 1-2-5 step near `raw` (> 0): 1, 2 or 5 times a power of ten. */
function niceStep(raw: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / magnitude;
  return (norm < 1.5 ? 1 : norm < 3.5 ? 2 : norm < 7.5 ? 5 : 10) * magnitude;
}

/**
 * One byte tick's label: the value in its own decimal unit (`500 kB`, `1.5 MB`, `0 B`) with as many decimals as the
 * `step` between ticks needs in that unit, so neighbouring labels always differ; trailing zeros are dropped.
 */
export function byteTickLabel(bytes: number, step: number): string {
  let unit = 0;
  while (Math.abs(bytes) >= 1000 ** (unit + 1) && unit < BYTE_UNITS.length - 1) unit++;
  const scale = 1000 ** unit;
  const digits = Math.min(6, Math.max(0, -Math.floor(Math.log10(step / scale) + 1e-9)));
  return `${Number((bytes / scale).toFixed(digits))} ${BYTE_UNITS[unit] ?? 'B'}`;
}

/**
 * Ticks for an axis of byte counts over the positive finite `values`, labelled in decimal units as the tables write
 * them (`200 kB`, `1.5 MB`), never plotly's bare SI digits (`200k`, `0.5M`). A linear axis (`log` false) gets about
 * five 1-2-5 steps from 0 past the largest value. A log axis gets powers of ten when the values span 3 decades or
 * more (every `⌈span/6⌉`-th), 1, 2 and 5 times each power from 0.7 decades, and about five linear 1-2-5 steps
 * inside a narrower range. Ticks reach 25 % beyond the values on both sides (plotly pads the range around markers;
 * ticks outside the drawn range are not shown). No values: no ticks (plotly's own).
 */
export function byteAxisTicks(values: Iterable<number | null | undefined>, log: boolean): ByteTicks {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v === null || v === undefined || !Number.isFinite(v) || v <= 0) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const ticks = (vals: number[], step: (v: number, i: number) => number): ByteTicks => ({
    tickmode: 'array',
    tickvals: vals,
    ticktext: vals.map((v, i) => byteTickLabel(v, step(v, i))),
  });
  if (!(hi >= lo)) return { tickmode: 'array', tickvals: [], ticktext: [] };
  const linear = (from: number, to: number): ByteTicks => {
    const step = niceStep(Math.max(to - from, to * 1e-6) / 5);
    const vals: number[] = [];
    for (let k = Math.ceil(from / step); k * step <= to * (1 + 1e-9) && vals.length < 50; k++) vals.push(k * step);
    return ticks(vals, () => step);
  };
  if (!log) return linear(0, hi * 1.25);
  const from = lo / 1.25;
  const to = hi * 1.25;
  const decades = Math.log10(hi) - Math.log10(lo);
  if (decades < 0.7) return linear(from, to);
  const every = decades >= 3 ? Math.max(1, Math.ceil(decades / 6)) : 1;
  const multiples = decades >= 3 ? [1] : [1, 2, 5];
  const vals: number[] = [];
  for (let e = Math.floor(Math.log10(from)); e <= Math.ceil(Math.log10(to)); e++) {
    if (e % every !== 0) continue;
    for (const m of multiples) {
      const v = m * 10 ** e;
      if (v >= from && v <= to) vals.push(v);
    }
  }
  return ticks(vals, (v) => (multiples.length === 1 ? v : v / 2));
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
