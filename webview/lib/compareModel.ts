/**
 * Pure data shaping for the Compare panel: the relative change ‖Δ‖/‖A‖ per layer (the bar chart shown first), the
 * summary line of counts per status, and the table's rows with their figures formatted. No DOM, no plotly import,
 * so it is unit-tested under Node.
 */
import type { DiffReportDto, TensorDiffDto, TensorDiffStatus } from '../../src/protocol/diff';
import { BAR_LIST_MAX_ROWS, type BarTrace } from './compressPlots';
import { formatShape, formatStat } from './format';
import { plotText } from './plotText';

/** The statuses in the order the summary line lists them (worst first, as the rows are sorted). */
export const STATUS_ORDER: readonly TensorDiffStatus[] = [
  'reshaped',
  'removed',
  'added',
  'dtype-changed',
  'changed',
  'same',
];

/** One layer of the bar chart: the tensors sharing a name up to the last `.` (`layer1.0.conv1` for `….weight`). */
export interface LayerChange {
  /** The layer's name (A's spelling). */
  layer: string;
  /** The largest ‖Δ‖/‖A‖ among the layer's value-compared tensors (a fraction; > 0). */
  relative: number;
  /** The row of that tensor (the one the bar's click opens). */
  worst: TensorDiffDto;
  /** The layer's value-compared tensors. */
  tensors: number;
}

/** The layer a tensor name belongs to: the name without its last `.segment` (a name without a dot is its own). */
export function layerOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
}

/**
 * The layers whose tensors changed in value, worst first: for each layer the largest ‖Δ‖/‖A‖ of its tensors with a
 * finite relative change above 0 (a layer's tensors are a weight and its bias, or BatchNorm's four vectors, so its
 * largest is what a reader looks for). Tensors whose ‖A‖ is 0 while Δ is not (unbounded) are in `unbounded`
 * instead; structural rows (reshaped, added, removed) have no values to compare and are left out.
 */
export function layerChanges(report: DiffReportDto): { layers: LayerChange[]; unbounded: TensorDiffDto[] } {
  const byLayer = new Map<string, LayerChange>();
  const unbounded: TensorDiffDto[] = [];
  for (const row of report.tensors) {
    const name = row.a?.name;
    if (row.delta === undefined || name === undefined) continue;
    const relative = row.delta.relative;
    if (relative === null) {
      unbounded.push(row);
      continue;
    }
    if (!(relative > 0)) continue;
    const layer = layerOf(name);
    const known = byLayer.get(layer);
    if (known === undefined) byLayer.set(layer, { layer, relative, worst: row, tensors: 1 });
    else {
      known.tensors++;
      if (relative > known.relative) {
        known.relative = relative;
        known.worst = row;
      }
    }
  }
  const layers = [...byLayer.values()].sort((x, y) => y.relative - x.relative);
  return { layers, unbounded };
}

/**
 * The bar chart of `layers` (at most `limit`, worst at the top) as horizontal bars of ‖Δ‖/‖A‖ in percent; each bar's
 * `customdata` is its layer name, for clicks.
 */
export function layerChangeTrace(layers: readonly LayerChange[], color: string, limit = BAR_LIST_MAX_ROWS): BarTrace {
  const rows = layers.slice(0, limit);
  return {
    type: 'bar',
    orientation: 'h',
    name: 'relative change',
    x: rows.map((l) => l.relative * 100),
    y: rows.map((l) => plotText(l.layer)),
    customdata: rows.map((l) => l.layer),
    text: rows.map((l) => plotText(l.worst.a?.name ?? l.layer)),
    marker: { color },
    hovertemplate: '%{y}<br>‖Δ‖/‖A‖ %{x:.4g} % (largest: %{text})<extra></extra>',
    textposition: 'none',
    showlegend: false,
  };
}

/** The summary line: every status with a count above 0, worst first (`1 reshaped · 4 changed · 60 same`). */
export function summaryLine(report: DiffReportDto): string {
  const parts = STATUS_ORDER.filter((s) => report.summary.counts[s] > 0).map((s) => `${report.summary.counts[s]} ${s}`);
  const verdict = report.summary.identical ? 'Identical' : 'Different';
  return `${verdict}: ${parts.length > 0 ? parts.join(' · ') : 'no tensors'}`;
}

/** One row of the tensor table, formatted. */
export interface CompareRow {
  status: TensorDiffStatus;
  /** A's name, `→ B's name` when it differs after normalisation (or B's alone when added). */
  name: string;
  /** The shapes (`[a] → [b]` when they differ) and dtypes (`F32 → F16` when they differ). */
  shape: string;
  dtype: string;
  maxAbs: string;
  rms: string;
  relative: string;
  cosine: string;
  /** The names to request the Δ histogram with; absent when values were not compared or did not change. */
  histogram?: { a: string; b: string };
}

function sides(a: string | undefined, b: string | undefined): string {
  if (a === undefined) return b ?? '';
  if (b === undefined || a === b) return a;
  return `${a} → ${b}`;
}

/** The table row of `row`. Relative change is shown in percent; missing figures as `—`. */
export function compareRow(row: TensorDiffDto): CompareRow {
  const d = row.delta;
  const shapeA = row.a ? formatShape(row.a.shape) : undefined;
  const shapeB = row.b ? formatShape(row.b.shape) : undefined;
  const out: CompareRow = {
    status: row.status,
    name: sides(row.a?.name, row.b?.name),
    shape: sides(shapeA, shapeB),
    dtype: sides(row.a?.dtype, row.b?.dtype),
    maxAbs: d ? formatStat(d.maxAbs) : '—',
    rms: d ? formatStat(d.rms) : '—',
    relative: d ? (d.relative === null ? '∞' : `${formatStat(d.relative * 100)} %`) : '—',
    cosine: d ? formatStat(d.cosine) : '—',
  };
  if (d !== undefined && row.a !== undefined && row.b !== undefined && (row.status !== 'same' || d.maxAbs > 0))
    out.histogram = { a: row.a.name, b: row.b.name };
  return out;
}
