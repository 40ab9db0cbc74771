/**
 * Typed access to the plotly.js bundle that the webview loads as a classic script (`media/vendor/plotly.min.js`,
 * global `Plotly`), and plot layouts coloured from the current VS Code theme's CSS variables.
 */
import type { PlotTrace } from './histogram';

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
  legend?: { orientation: 'h' | 'v'; x?: number; y?: number; xanchor?: 'left' | 'right'; yanchor?: 'top' | 'bottom'; bgcolor?: string };
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

/** The part of the plotly API the webviews call. Traces and layouts other than the histogram's are plain objects. */
export interface PlotlyApi {
  react(root: HTMLElement, data: readonly (PlotTrace | object)[], layout: PlotLayout | object, config: PlotConfig): Promise<unknown>;
  purge(root: HTMLElement): void;
  Plots: { resize(root: HTMLElement): unknown };
}

/** The global `Plotly`, or `undefined` when the bundle failed to load. */
export function getPlotly(): PlotlyApi | undefined {
  return (globalThis as { Plotly?: PlotlyApi }).Plotly;
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

function cssVar(style: CSSStyleDeclaration, name: string, fallback: string): string {
  const v = style.getPropertyValue(name).trim();
  return v === '' ? fallback : v;
}

/** Reads the theme's colours from VS Code's CSS variables on `<body>` (re-read whenever the theme changes). */
export function readTheme(): ThemeColors {
  const style = getComputedStyle(document.body);
  const foreground = cssVar(style, '--vscode-charts-foreground', cssVar(style, '--vscode-foreground', '#cccccc'));
  const palette = ['blue', 'orange', 'green', 'purple', 'red', 'yellow'].map((c, i) =>
    cssVar(style, `--vscode-charts-${c}`, ['#3794ff', '#d18616', '#89d185', '#b180d7', '#f14c4c', '#cca700'][i] ?? '#3794ff'),
  );
  return {
    foreground,
    grid: cssVar(style, '--vscode-charts-lines', 'rgba(128,128,128,0.35)'),
    fontFamily: cssVar(style, '--vscode-font-family', 'sans-serif'),
    fontSize: Number.parseFloat(cssVar(style, '--vscode-font-size', '13')) || 13,
    hoverBackground: cssVar(style, '--vscode-editorHoverWidget-background', '#252526'),
    hoverBorder: cssVar(style, '--vscode-editorHoverWidget-border', '#454545'),
    palette,
  };
}

/** A histogram layout in the theme's colours: transparent background, theme font and grid. */
export function histogramLayout(theme: ThemeColors, opts: { logY: boolean; xTitle: string; yTitle: string }): PlotLayout {
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
    yaxis: { ...axis(opts.yTitle), type: opts.logY ? 'log' : 'linear', exponentformat: 'SI' },
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

/** A point of a plotly click event (the fields our plots read). */
export interface PlotClickPoint {
  x?: unknown;
  y?: unknown;
  customdata?: unknown;
  pointIndex?: number;
}

/**
 * Calls `listener` with the first clicked point whenever the user clicks a mark of the plot in `root` (plotly adds an
 * `on` method to a div once it has drawn into it; call this after the first `react`). Registers at most once per div.
 */
export function onPlotClick(root: HTMLElement, listener: (point: PlotClickPoint) => void): void {
  const div = root as HTMLElement & { on?: (event: string, cb: (e: { points?: PlotClickPoint[] }) => void) => void; dataset: DOMStringMap };
  if (typeof div.on !== 'function' || div.dataset.clickBound === '1') return;
  div.dataset.clickBound = '1';
  div.on('plotly_click', (e) => {
    const point = e.points?.[0];
    if (point !== undefined) listener(point);
  });
}
