/**
 * Pure data shaping for the Distillation panel and the Reconstruction panel's evaluation: the loss curves (total and
 * KL), the held-out metric over steps (accuracy and agreement in %, or PSNR in dB), per-layer drift bars, the
 * before / best / after metrics rows, and the confusion heatmap of original against reconstructed classes with the
 * off-diagonal (the changes compression made) highlighted. Returns plain plotly trace objects and strings (no DOM, no
 * plotly import), so it is unit-tested under Node.
 */
import type {
  DistillEvalDto,
  DistillReportDto,
  EvalMetricsDto,
  EvalReportDto,
  LayerDriftDto,
} from '../../src/protocol/evaluate';
import type { DistillationSnapshot } from '../../src/protocol/panels';
import { BAR_LIST_MAX_ROWS, type BarTrace, type HeatmapTrace, type LineTrace } from './compressPlots';
import { plotText } from './plotText';

/** Which metric a set of metrics is judged by: top-1 accuracy (labels), output PSNR (images), else agreement. */
export type MetricKind = 'accuracy' | 'psnr' | 'agreement';

/** The headline metric of `m`. */
export function metricKind(m: EvalMetricsDto): MetricKind {
  if (m.accuracy !== undefined) return 'accuracy';
  if (m.psnr !== undefined) return 'psnr';
  return 'agreement';
}

/** A fraction in [0, 1] as a percentage with two decimals (`93.75 %`); `–` when absent or not finite. */
export function formatFraction(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(2)} %`;
}

/** A PSNR in dB (`31.20 dB`, `∞ dB` for identical outputs); `–` when absent. */
export function formatPsnr(x: number | undefined): string {
  if (x === undefined) return '–';
  if (x === Infinity) return '∞ dB';
  return Number.isFinite(x) ? `${x.toFixed(2)} dB` : '–';
}

/** A relative error with 3 significant digits (`1.09`, `2.31e-3`). */
export function formatRelativeError(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x !== 0 && Math.abs(x) < 1e-2) return x.toExponential(2);
  return x.toPrecision(3);
}

/** The headline value of `m` as text (accuracy %, PSNR dB, or agreement %). */
export function formatHeadline(m: EvalMetricsDto): string {
  const kind = metricKind(m);
  if (kind === 'accuracy') return formatFraction(m.accuracy);
  if (kind === 'psnr') return formatPsnr(m.psnr);
  return formatFraction(m.agreement);
}

/** Loss curves: the total loss and the KL term (plot on a log y axis); non-positive or non-finite samples are left out. */
export function distillLossTraces(
  loss: readonly (readonly [number, number])[],
  kl: readonly (readonly [number, number])[],
  colors: { total: string; kl: string },
): LineTrace[] {
  const line = (
    samples: readonly (readonly [number, number])[],
    name: string,
    color: string,
    dash: boolean,
  ): LineTrace & { line: { color: string; width: number; dash?: string } } => {
    const kept = samples.filter(([, v]) => Number.isFinite(v) && v > 0);
    return {
      type: 'scatter',
      mode: 'lines',
      name,
      x: kept.map(([s]) => s),
      y: kept.map(([, v]) => v),
      line: { color, width: 1.5, ...(dash ? { dash: 'dot' } : {}) },
      hovertemplate: `step %{x}<br>${name} %{y:.4g}<extra></extra>`,
      showlegend: true,
    };
  };
  return [line(loss, 'total', colors.total, false), line(kl, 'KL', colors.kl, true)].filter((t) => t.x.length > 0);
}

/**
 * The held-out metric over steps: accuracy and agreement in percent for classifiers with labels (agreement alone
 * without labels), PSNR in dB for image outputs. `yTitle` names the axis.
 */
export function heldOutTraces(
  evals: readonly DistillEvalDto[],
  colors: { metric: string; agreement: string },
): { traces: LineTrace[]; yTitle: string } {
  const first = evals[0];
  if (first === undefined) return { traces: [], yTitle: '' };
  const kind = metricKind(first.metrics);
  const steps = evals.map((e) => e.step);
  const trace = (name: string, y: number[], color: string, unit: string): LineTrace => ({
    type: 'scatter',
    mode: 'lines+markers',
    name,
    x: steps,
    y,
    line: { color, width: 1.5 },
    marker: { color, size: 6 },
    hovertemplate: `step %{x}<br>${name} %{y:.4g}${unit}<extra></extra>`,
    showlegend: true,
  });
  if (kind === 'psnr')
    return {
      traces: [
        trace(
          'PSNR',
          evals.map((e) => e.metrics.psnr ?? NaN),
          colors.metric,
          ' dB',
        ),
      ],
      yTitle: 'PSNR (dB)',
    };
  const traces: LineTrace[] = [];
  if (kind === 'accuracy')
    traces.push(
      trace(
        'accuracy',
        evals.map((e) => (e.metrics.accuracy ?? NaN) * 100),
        colors.metric,
        ' %',
      ),
    );
  traces.push(
    trace(
      'agreement',
      evals.map((e) => e.metrics.agreement * 100),
      colors.agreement,
      ' %',
    ),
  );
  return { traces, yTitle: '%' };
}

/**
 * Horizontal bars of per-layer drift in percent (RMS change / RMS of the layer), in the network's order, at most `limit`;
 * the categories are the escaped names (`plotText`), `customdata` the names as they are.
 */
export function driftTrace(drift: readonly LayerDriftDto[], color: string, limit = BAR_LIST_MAX_ROWS): BarTrace {
  const rows = drift.slice(0, limit);
  return {
    type: 'bar',
    orientation: 'h',
    name: 'drift',
    x: rows.map((d) => d.drift * 100),
    y: rows.map((d) => plotText(d.name)),
    customdata: rows.map((d) => d.name),
    marker: { color },
    hovertemplate: '%{y}<br>drift %{x:.3g} % of the layer’s RMS<extra></extra>',
    showlegend: false,
  };
}

/** One row of the before / best / after table. */
export interface MetricsRow {
  /** `before`, `best` or `after` (the row's id suffix). */
  id: 'before' | 'best' | 'after';
  label: string;
  /** The headline metric (accuracy or PSNR, else agreement). */
  headline: string;
  agreement: string;
  relativeError: string;
  samples: string;
}

function row(id: MetricsRow['id'], label: string, m: EvalMetricsDto): MetricsRow {
  return {
    id,
    label,
    headline: formatHeadline(m),
    agreement: formatFraction(m.agreement),
    relativeError: formatRelativeError(m.relativeError),
    samples: m.n.toLocaleString('en-US'),
  };
}

/**
 * The rows the metrics table shows: the phase-1 reconstruction (known from the first held-out evaluation), and once
 * done the best held-out point and the final predictor. The header of the headline column is `headline`.
 */
export function metricsRows(snapshot: Pick<DistillationSnapshot, 'evals' | 'report'>): {
  headline: string;
  rows: MetricsRow[];
} {
  const r: DistillReportDto | undefined = snapshot.report;
  const before = r?.before ?? snapshot.evals[0]?.metrics;
  if (before === undefined) return { headline: 'accuracy', rows: [] };
  const kind = metricKind(before);
  const headline = kind === 'accuracy' ? 'accuracy' : kind === 'psnr' ? 'PSNR' : 'agreement';
  const rows = [row('before', 'phase 1 (reconstruction)', before)];
  if (r !== undefined) {
    rows.push(row('best', `best (step ${r.best.step})`, r.best.metrics), row('after', 'after distillation', r.after));
  }
  return { headline, rows };
}

/** One row of the Evaluate table (original model vs the artifact's weights). */
export interface EvalRow {
  id: 'original' | 'reconstructed';
  label: string;
  accuracy: string;
  agreement: string;
  psnr: string;
  relativeError: string;
}

/** Original and reconstructed rows of an evaluation report (the original is the reference: agreement 100 %, error 0). */
export function evalRows(report: EvalReportDto): EvalRow[] {
  const c = report.candidate;
  return [
    {
      id: 'original',
      label: 'original weights',
      accuracy: formatFraction(report.originalAccuracy),
      agreement: formatFraction(1),
      psnr: report.classifier ? '–' : '∞ dB',
      relativeError: '0',
    },
    {
      id: 'reconstructed',
      label: 'reconstructed (artifact)',
      accuracy: formatFraction(c.accuracy),
      agreement: formatFraction(c.agreement),
      psnr: formatPsnr(c.psnr),
      relativeError: formatRelativeError(c.relativeError),
    },
  ];
}

/** Samples whose class changed (the off-diagonal sum of a confusion matrix). */
export function changedSamples(confusion: readonly (readonly number[])[]): number {
  let n = 0;
  confusion.forEach((r, i) => {
    r.forEach((v, j) => {
      if (i !== j) n += v;
    });
  });
  return n;
}

/** A heatmap with category axes and counts written in its cells. */
export interface ConfusionTrace extends HeatmapTrace {
  x: string[];
  y: string[];
  texttemplate: string;
  name: string;
  /** Colour of the counts written in the cells (plotly's default picks one from the cell colour). */
  textfont?: { color: string };
}

/**
 * The confusion matrix as two overlaid heatmaps on the same category axes (x: reconstructed class, y: original
 * class): the diagonal (unchanged predictions) in a neutral grey, the off-diagonal (predictions compression changed)
 * in a warm scale, so the differences stand out. Empty cells are `null` (transparent). The diagonal's cells are
 * translucent, so its counts are written in `colors.text` (the theme's foreground: plotly would judge the contrast
 * from the grey alone and pick a dark text, invisible on a dark theme); the opaque off-diagonal cells keep plotly's
 * contrasting choice. Class labels come from
 * `classNames` (escaped: they come from a file) when they match the matrix size, else the class indices.
 */
export function confusionTraces(
  confusion: readonly (readonly number[])[],
  classNames: readonly string[] | undefined,
  colors: { same: string; changedLow: string; changedHigh: string; text: string },
): ConfusionTrace[] {
  const k = confusion.length;
  if (k === 0) return [];
  const labels =
    classNames !== undefined && classNames.length === k
      ? classNames.map((n, i) => plotText(`${i}: ${n}`))
      : Array.from({ length: k }, (_, i) => String(i));
  const diag: (number | null)[][] = [];
  const off: (number | null)[][] = [];
  let maxOff = 0;
  let maxDiag = 0;
  for (let i = 0; i < k; i++) {
    const d: (number | null)[] = [];
    const o: (number | null)[] = [];
    for (let j = 0; j < k; j++) {
      const v = confusion[i]?.[j] ?? 0;
      if (i === j) {
        d.push(v);
        o.push(null);
        maxDiag = Math.max(maxDiag, v);
      } else {
        d.push(null);
        o.push(v === 0 ? null : v);
        maxOff = Math.max(maxOff, v);
      }
    }
    diag.push(d);
    off.push(o);
  }
  const base = {
    xgap: 1,
    ygap: 1,
    x: labels,
    y: labels,
    texttemplate: '%{z}',
    colorbar: { thickness: 10, len: 0.9, outlinewidth: 0 },
  };
  return [
    {
      ...base,
      type: 'heatmap',
      name: 'unchanged',
      z: diag,
      textfont: { color: colors.text },
      colorscale: [
        [0, colors.same],
        [1, colors.same],
      ],
      zmin: 0,
      zmax: Math.max(1, maxDiag),
      showscale: false,
      hovertemplate: 'original %{y} → reconstructed %{x}<br>%{z} samples unchanged<extra></extra>',
    },
    {
      ...base,
      type: 'heatmap',
      name: 'changed',
      z: off,
      colorscale: [
        [0, colors.changedLow],
        [1, colors.changedHigh],
      ],
      zmin: 0,
      zmax: Math.max(1, maxOff),
      showscale: maxOff > 0,
      hovertemplate: 'original %{y} → reconstructed %{x}<br>%{z} samples changed class<extra></extra>',
    },
  ];
}
