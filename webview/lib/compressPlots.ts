/**
 * Pure data shaping for the compression panels: loss curve, per-layer error bars (worst first), original vs
 * reconstructed histograms, kernel mosaics for heatmaps, the Budget panel's byte bars and the size/error curve.
 * Returns plain plotly trace objects (no DOM, no plotly import), so it is unit-tested under Node.
 */
import type { BudgetPlanDto, LayerDetailDto, LayerErrorDto } from '../../src/protocol/compress';
import type { RunSummaryDto } from '../../src/protocol/panels';
import type { HistogramSeries } from './histogram';
import { plotText } from './plotText';

/** A scatter (line/marker) trace. */
export interface LineTrace {
  type: 'scatter';
  mode: 'lines' | 'markers' | 'lines+markers';
  name: string;
  x: number[];
  y: number[];
  line?: { color: string; width: number };
  marker?: { color: string; size: number };
  text?: string[];
  hovertemplate?: string;
  showlegend?: boolean;
}

/** A bar trace (horizontal with `orientation: 'h'`). */
export interface BarTrace {
  type: 'bar';
  orientation?: 'h' | 'v';
  name: string;
  x: (number | string)[];
  y: (number | string)[];
  marker: { color: string | string[] };
  customdata?: string[];
  text?: string[];
  textposition?: 'auto' | 'inside' | 'outside' | 'none';
  hovertemplate?: string;
  showlegend?: boolean;
}

/** A heatmap trace. */
export interface HeatmapTrace {
  type: 'heatmap';
  z: (number | null)[][];
  colorscale: string | [number, string][];
  zmin: number;
  zmax: number;
  showscale: boolean;
  xgap: number;
  ygap: number;
  hovertemplate: string;
  colorbar?: { thickness: number; len: number; outlinewidth: number };
}

/** Most rows a list of horizontal bars (layer errors, drift) draws; the rest are left out of the plot. */
export const BAR_LIST_MAX_ROWS = 200;

/** Height (px) of a plot listing `rows` horizontal bars, one per row: 18 px a row plus the axis, from 160 to 520. */
export function barListHeight(rows: number): number {
  return Math.max(160, Math.min(520, 40 + Math.min(rows, BAR_LIST_MAX_ROWS) * 18));
}

/** Loss samples as one line (plot on a log y axis); non-positive or non-finite losses are left out. */
export function lossTrace(loss: readonly (readonly [number, number])[], color: string): LineTrace {
  const kept = loss.filter(([, l]) => Number.isFinite(l) && l > 0);
  return {
    type: 'scatter',
    mode: 'lines',
    name: 'loss',
    x: kept.map(([s]) => s),
    y: kept.map(([, l]) => l),
    line: { color, width: 1.5 },
    hovertemplate: 'step %{x}<br>loss %{y:.4g}<extra></extra>',
    showlegend: false,
  };
}

/** Layers ordered worst first (highest relative error; ties by name), without mutating `layers`. */
export function worstFirst(layers: readonly LayerErrorDto[]): LayerErrorDto[] {
  return [...layers].sort((a, b) => b.relativeError - a.relativeError || a.name.localeCompare(b.name));
}

/**
 * Horizontal bars of relative error in percent, worst first (draw with a reversed category y axis so the worst is on
 * top). The `selected` layer is drawn in `highlight`. At most `limit` layers (the worst ones). The categories are the
 * escaped names (`plotText`); `customdata` holds the names as they are, for click handlers.
 */
export function layerErrorTrace(
  layers: readonly LayerErrorDto[],
  selected: string | undefined,
  colors: { normal: string; highlight: string },
  limit = BAR_LIST_MAX_ROWS,
): BarTrace {
  const rows = worstFirst(layers).slice(0, limit);
  return {
    type: 'bar',
    orientation: 'h',
    name: 'relative error',
    x: rows.map((l) => l.relativeError * 100),
    y: rows.map((l) => plotText(l.name)),
    customdata: rows.map((l) => l.name),
    marker: { color: rows.map((l) => (l.name === selected ? colors.highlight : colors.normal)) },
    hovertemplate: '%{y}<br>relative error %{x:.3g} %<extra></extra>',
    showlegend: false,
  };
}

/** The two histograms of a layer detail as series (original first), ready for `buildTraces`. */
export function detailSeries(detail: LayerDetailDto): HistogramSeries[] {
  return [
    { name: 'original', histogram: detail.original },
    { name: 'reconstructed', histogram: detail.reconstructed },
  ];
}

/**
 * Tiles one filter's kernels (`rows[c]` holds input channel c's `kh*kw` values, row-major) into a mosaic: kernels
 * side by side in a near-square grid with a one-cell `null` gap between them. A 1×1 filter becomes a grid of cells.
 */
export function tileKernels(rows: readonly (readonly number[])[], kh: number, kw: number): (number | null)[][] {
  const channels = rows.length;
  if (channels === 0 || kh < 1 || kw < 1) return [];
  const gap = kh * kw > 1 ? 1 : 0;
  const cols = Math.ceil(Math.sqrt(channels * (kh / kw)));
  const gridCols = Math.max(1, Math.min(channels, cols));
  const gridRows = Math.ceil(channels / gridCols);
  const height = gridRows * kh + (gridRows - 1) * gap;
  const width = gridCols * kw + (gridCols - 1) * gap;
  const z: (number | null)[][] = Array.from({ length: height }, () => new Array<number | null>(width).fill(null));
  rows.forEach((kernel, c) => {
    const top = Math.floor(c / gridCols) * (kh + gap);
    const left = (c % gridCols) * (kw + gap);
    for (let i = 0; i < kh; i++) {
      const line = z[top + i];
      if (!line) continue;
      for (let j = 0; j < kw; j++) {
        const v = kernel[i * kw + j];
        line[left + j] = v !== undefined && Number.isFinite(v) ? v : null;
      }
    }
  });
  return z;
}

/** Element-wise `reconstructed − original` of two equally shaped kernel lists (missing values count as 0). */
export function kernelDifference(
  original: readonly (readonly number[])[],
  reconstructed: readonly (readonly number[])[],
): number[][] {
  return original.map((row, c) => row.map((v, i) => (reconstructed[c]?.[i] ?? 0) - v));
}

/** Largest absolute finite value in a mosaic (0 when empty): the symmetric colour range of a difference map. */
export function absMax(z: readonly (readonly (number | null)[])[]): number {
  let m = 0;
  for (const row of z) for (const v of row) if (v !== null && Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m;
}

/** Diverging blue–white–red colourscale for differences (symmetric around zero). */
export const DIVERGING: [number, string][] = [
  [0, '#2166ac'],
  [0.25, '#67a9cf'],
  [0.5, '#f7f7f7'],
  [0.75, '#ef8a62'],
  [1, '#b2182b'],
];

/**
 * The three heatmaps of a filter (original, reconstructed, and their difference), drawn alike so they compare at a
 * glance: the same mosaic shape, one diverging colour scale symmetric around zero over all three (`range` is its
 * half-width, the largest |value| in any of them; 1 when all are zero) and no colour bar, so each map gets the same
 * plot area (the caller states the range in words).
 */
export function kernelHeatmaps(detail: LayerDetailDto): {
  original: HeatmapTrace;
  reconstructed: HeatmapTrace;
  difference: HeatmapTrace;
  range: number;
} {
  const { kh, kw } = detail.filter;
  const zo = tileKernels(detail.filter.original, kh, kw);
  const zr = tileKernels(detail.filter.reconstructed, kh, kw);
  const zd = tileKernels(kernelDifference(detail.filter.original, detail.filter.reconstructed), kh, kw);
  const range = Math.max(absMax(zo), absMax(zr), absMax(zd)) || 1;
  const base = (z: (number | null)[][]): HeatmapTrace => ({
    type: 'heatmap',
    z,
    colorscale: DIVERGING,
    zmin: -range,
    zmax: range,
    showscale: false,
    xgap: 0,
    ygap: 0,
    hovertemplate: 'row %{y}, col %{x}<br>%{z:.4g}<extra></extra>',
  });
  return { original: base(zo), reconstructed: base(zr), difference: base(zd), range };
}

/** One row of the Budget panel's share table. */
export interface ShareRow {
  label: string;
  tensors: number;
  params: number;
  /** Share of all parameters, 0…1. */
  share: number;
}

/** Represented vs verbatim tensors with their parameter shares. */
export function shareRows(plan: BudgetPlanDto): ShareRow[] {
  const total = plan.representedParams + plan.verbatimParams;
  const share = (p: number): number => (total > 0 ? p / total : 0);
  return [
    {
      label: 'Represented by the predictor',
      tensors: plan.represented.length,
      params: plan.representedParams,
      share: share(plan.representedParams),
    },
    {
      label: 'Stored verbatim',
      tensors: plan.verbatim.length,
      params: plan.verbatimParams,
      share: share(plan.verbatimParams),
    },
  ];
}

/**
 * Names of the three parts of an artifact's bytes in the Budget panel, and what the third one holds: everything that
 * is neither predictor weights nor verbatim tensors.
 */
export const ARTIFACT_PART_LABELS = {
  predictor: 'predictor',
  verbatim: 'verbatim tensors',
  other: 'layout + description',
  /** The legend line under the bytes plot that explains the third part. */
  otherNote:
    'layout + description: the kernel order of each layer (at most ⌈log₂ N⌉ bits per kernel of a layer of N) and the JSON description (layer map, training settings and, unless the artifact is lean, the loss curve and per-layer report) that decoding and these panels read.',
} as const;

/**
 * Bytes of the predictor, the verbatim tensors and the rest of the artifact (`plan.artifactBytes`, planned or as
 * written): from the planner's breakdown at the stored dtype when the plan has one, else 4 bytes per float32 parameter.
 */
export function artifactParts(plan: BudgetPlanDto): { predictor: number; verbatim: number; other: number } {
  if (plan.bytes !== undefined) {
    const { predictor, verbatim } = plan.bytes;
    return { predictor, verbatim, other: Math.max(0, plan.artifactBytes - predictor - verbatim) };
  }
  const predictor = plan.predictorParams * 4;
  const verbatimGuess = plan.verbatimParams * 4;
  const verbatim = Math.min(verbatimGuess, Math.max(0, plan.artifactBytes - predictor));
  return { predictor, verbatim, other: Math.max(0, plan.artifactBytes - predictor - verbatim) };
}

/** The dtypes a plan's bytes are for, as the Budget panel states them ("Planned with the predictor stored as …"). */
export function storageNote(plan: Pick<BudgetPlanDto, 'predictorDtype' | 'verbatimDtype'>): string {
  const verbatim = plan.verbatimDtype ?? 'f32';
  return `Planned with the predictor stored as ${plan.predictorDtype ?? 'f32'} and the verbatim tensors ${verbatim === 'f32' ? 'in their own dtypes' : `as ${verbatim}`}.`;
}

/** Runs sorted by predictor fraction, as markers joined by a line: RMSE against predictor size. */
export function tradeoffTrace(runs: readonly RunSummaryDto[], color: string): LineTrace {
  const sorted = [...runs]
    .filter((r) => Number.isFinite(r.rmse) && Number.isFinite(r.fraction))
    .sort((a, b) => a.fraction - b.fraction || a.finishedAt - b.finishedAt);
  return {
    type: 'scatter',
    mode: 'lines+markers',
    name: 'runs',
    x: sorted.map((r) => r.fraction * 100),
    y: sorted.map((r) => r.rmse),
    text: sorted.map((r) => `h = ${r.hidden}, ratio ${r.ratio.toFixed(2)}×, ${r.steps} steps, ${r.permutation}`),
    line: { color, width: 1.5 },
    marker: { color, size: 8 },
    hovertemplate: 'predictor %{x:.3g} % of represented<br>RMSE %{y:.4g}<br>%{text}<extra></extra>',
    showlegend: false,
  };
}
