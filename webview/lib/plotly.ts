/**
 * Typed access to the plotly.js bundle (`media/vendor/plotly.min.js`, global `Plotly`), loaded on demand the first
 * time a plot is drawn, so a page paints its skeleton before the 5 MB bundle is parsed; the current VS Code theme's
 * colours read from its CSS variables; and click listeners that survive a purge. The layouts themselves are pure, in
 * plotLayout.ts (re-exported here). Browser-only.
 */
import type { PlotTrace } from './histogram';
import type { PlotConfig, PlotLayout, ThemeColors } from './plotLayout';

export {
  barListLayout,
  histogramLayout,
  logAxisTicks,
  PLOT_CONFIG,
  type LogTicks,
  type PlotAxis,
  type PlotConfig,
  type PlotLayout,
  type ThemeColors,
} from './plotLayout';

/** The part of the plotly API the webviews call. Traces and layouts other than the histogram's are plain objects. */
export interface PlotlyApi {
  react(
    root: HTMLElement,
    data: readonly (PlotTrace | object)[],
    layout: PlotLayout | object,
    config: PlotConfig,
  ): Promise<unknown>;
  purge(root: HTMLElement): void;
  Plots: { resize(root: HTMLElement): unknown };
}

/** The global `Plotly`, or `undefined` while the bundle is not loaded (see `loadPlotly`). */
export function getPlotly(): PlotlyApi | undefined {
  return (globalThis as { Plotly?: PlotlyApi }).Plotly;
}

let plotlyLoad: Promise<PlotlyApi | undefined> | undefined;

/**
 * Loads the plotly bundle once, on first call: a `<script>` with the page's CSP nonce and the URL the host put in
 * `#app`'s `data-plotly`. Resolves to the API, or `undefined` when the bundle cannot be loaded (the caller shows a
 * hint). Marks `weight-lens:plotly` in the performance timeline when it has run.
 */
export function loadPlotly(): Promise<PlotlyApi | undefined> {
  const ready = getPlotly();
  if (ready !== undefined) return Promise.resolve(ready);
  plotlyLoad ??= new Promise((resolve) => {
    const src = document.getElementById('app')?.dataset.plotly;
    if (src === undefined || src === '') {
      resolve(undefined);
      return;
    }
    const script = document.createElement('script');
    // The nonce content attribute may be hidden from the DOM; the property keeps it.
    const nonce = document.querySelector<HTMLScriptElement>('script[nonce]')?.nonce;
    if (nonce !== undefined && nonce !== '') script.nonce = nonce;
    script.src = src;
    script.async = true;
    script.addEventListener('load', () => {
      performance.mark('weight-lens:plotly');
      resolve(getPlotly());
    });
    script.addEventListener('error', () => {
      resolve(undefined);
    });
    document.head.appendChild(script);
  });
  return plotlyLoad;
}

/**
 * Calls `draw` with plotly now if it is loaded, else once it has loaded (calls keep their order); `failed` runs
 * instead when the bundle cannot be loaded.
 */
export function withPlotly(draw: (plotly: PlotlyApi) => void, failed?: () => void): void {
  const ready = getPlotly();
  if (ready !== undefined) {
    draw(ready);
    return;
  }
  void loadPlotly().then((plotly) => {
    if (plotly !== undefined) draw(plotly);
    else failed?.();
  });
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
    cssVar(
      style,
      `--vscode-charts-${c}`,
      ['#3794ff', '#d18616', '#89d185', '#b180d7', '#f14c4c', '#cca700'][i] ?? '#3794ff',
    ),
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

/** A point of a plotly click event (the fields our plots read). */
export interface PlotClickPoint {
  x?: unknown;
  y?: unknown;
  customdata?: unknown;
  pointIndex?: number;
}

/** A div plotly has drawn into: its event emitter's `on`, which plotly replaces on every draw after a purge. */
type PlotDiv = HTMLElement & { on?: (event: string, cb: (e: { points?: PlotClickPoint[] }) => void) => void };

/** The `on` method each plot div's click listener was registered with. */
const clickEmitters = new WeakMap<HTMLElement, unknown>();

/**
 * Calls `listener` with the first clicked point whenever the user clicks a mark of the plot in `root`. Call it after
 * every draw: plotly's `purge` drops a div's listeners and the next draw gives the div a new emitter, so the listener
 * is registered again whenever the emitter changed, and only then (once per emitter).
 */
export function onPlotClick(root: HTMLElement, listener: (point: PlotClickPoint) => void): void {
  const div = root as PlotDiv;
  if (typeof div.on !== 'function' || clickEmitters.get(root) === div.on) return;
  clickEmitters.set(root, div.on);
  div.on('plotly_click', (e) => {
    const point = e.points?.[0];
    if (point !== undefined) listener(point);
  });
}
