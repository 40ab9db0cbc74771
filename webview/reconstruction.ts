/**
 * The Reconstruction panel's webview: follows one compression run live (loss curve on a log axis, per-layer relative
 * error as horizontal bars worst first, original vs reconstructed histograms of the selected layer, kernel heatmaps of
 * one filter: original | reconstructed | difference) and shows the final report when the run is done or when the
 * panel was opened from an artifact. During training the detail is the layer the engine streams (the currently worst);
 * once the artifact exists, clicking a layer (bar or report row) or typing a filter number asks the host for that
 * layer and filter (debounced), and the answers are cached per (layer, filter). It folds host messages into a
 * `ReconstructionSnapshot` and redraws at most once per animation frame. Once the artifact is written, "Evaluate…"
 * asks the host to run it in a runnable model; the result shows original against reconstructed accuracy (or PSNR and
 * relative error) and a confusion heatmap of the classes compression changed. Only summaries arrive here, never
 * weight arrays.
 */
import type { CompressReportDto, LayerDetailDto } from '../src/protocol/compress';
import { boundTensorsText } from '../src/protocol/evaluate';
import { LEAN_REPORT_NOTE } from '../src/protocol/artifact';
import { COMPRESS_METHOD_DETAIL } from '../src/protocol/vocabulary';
import {
  applyReconstructionEvent,
  emptySnapshot,
  type ReconstructionCommand,
  type ReconstructionInbound,
  type ReconstructionOutbound,
  type ReconstructionSnapshot,
} from '../src/protocol/panels';
import {
  barListHeight,
  detailSeries,
  kernelHeatmaps,
  layerErrorTrace,
  lossTrace,
  worstFirst,
} from './lib/compressPlots';
import { clampFilter, DetailCache, detailKey } from './lib/detailCache';
import { byId, el, fillKeyValueTable, tableHead, vscodeApi } from './lib/dom';
import {
  baseName,
  formatBytes,
  formatCount,
  formatInteger,
  formatDuration,
  formatEta,
  formatShape,
  formatStat,
} from './lib/format';
import { buildTraces } from './lib/histogram';
import {
  drawPlot,
  renderRunHeader,
  RunPanelPage,
  runHeaderHtml,
  setCard,
  setProgressBar,
  wireCommands,
} from './lib/panelPage';
import { barListLayout, histogramLayout } from './lib/plotly';
import { changedSamples, confusionTraces, evalRows } from './lib/runPlots';
import { esdFigure, spectrumSummary } from './lib/spectraPlots';
import type { SpectraComparisonDto } from '../src/protocol/spectra';

/** UI state kept across webview reloads. */
interface PersistedState {
  selected?: string;
  /** Filter index the user chose, per layer. */
  filters?: Record<string, number>;
}

const api = vscodeApi<ReconstructionOutbound, PersistedState>();

let snapshot: ReconstructionSnapshot = emptySnapshot('');
let selected: string | undefined = api.getState()?.selected;
let filters: Record<string, number> = { ...(api.getState()?.filters ?? {}) };
const page = new RunPanelPage(render);
/** Details asked from the artifact, by (layer, filter). */
const details = new DetailCache();
/** The detail drawn last (kept on screen while another one loads or fails). */
let shown: LayerDetailDto | undefined;
/** Debounce timer of the next detail request. */
let requestTimer: ReturnType<typeof setTimeout> | undefined;
/** Key of the (layer, filter) the timer will ask for. */
let waiting: string | undefined;
/** Debounce of detail requests and of typing in the filter box, ms. */
const DEBOUNCE_MS = 250;

function buildSkeleton(root: HTMLElement): void {
  const buttons = `
        <vscode-button id="cmd-stop" data-testid="cmd-stop" hidden title="End training after the step under way and write the predictor trained so far as an artifact marked as stopped early">Stop and Save</vscode-button>
        <vscode-button id="cmd-cancel" secondary hidden>Cancel</vscode-button>
        <vscode-button id="cmd-budget" secondary>Budget</vscode-button>
        <vscode-button id="cmd-decompress" secondary hidden>Decompress</vscode-button>
        <vscode-button id="cmd-evaluate" data-testid="cmd-evaluate" secondary hidden title="Run the artifact's weights in a runnable model (ONNX or TF.js) on data and compare with the original weights">Evaluate…</vscode-button>
        <vscode-button id="cmd-reveal" hidden>Reveal Artifact</vscode-button>`;
  root.innerHTML = `${runHeaderHtml('Reconstruction', buttons)}
    <div class="cards">
      <div class="card"><div class="card-value" id="card-step">–</div><div class="card-label">step</div></div>
      <div class="card"><div class="card-value" id="card-loss">–</div><div class="card-label">loss</div></div>
      <div class="card"><div class="card-value" id="card-rmse">–</div><div class="card-label">RMSE</div></div>
      <div class="card"><div class="card-value" id="card-speed">–</div><div class="card-label">steps / s</div></div>
      <div class="card"><div class="card-value" id="card-size">–</div><div class="card-label">predictor</div></div>
      <div class="card"><div class="card-value" id="card-backend" data-testid="card-backend">–</div><div class="card-label" id="card-backend-label">backend</div></div>
    </div>
    <div class="panel-grid">
      <section class="pane">
        <div class="pane-title">Loss <span class="muted">(log scale)</span></div>
        <div class="plot-box">
          <div id="loss-curve" data-testid="loss-curve" class="plot"></div>
          <div id="loss-hint" class="plot-hint">The loss curve appears with the first training steps.</div>
        </div>
      </section>
      <section class="pane">
        <div class="pane-title">Relative error per layer <span class="muted">‖W − Ŵ‖ / ‖W‖, worst first</span>
          <span class="spacer-flex"></span><span id="layer-count" data-testid="layer-count" class="muted">0 layers</span></div>
        <div class="plot-box">
          <div id="layer-errors" data-testid="layer-errors" class="plot tall"></div>
          <div id="layers-hint" class="plot-hint">Per-layer errors appear after the first evaluation.</div>
        </div>
      </section>
      <section class="pane">
        <div class="pane-title"><span id="hist-title" data-testid="hist-title">Original vs reconstructed</span></div>
        <div class="plot-box">
          <div id="layer-histogram" data-testid="layer-histogram" class="plot"></div>
          <div id="hist-hint" data-testid="hist-hint" class="plot-hint">Click a layer's bar to compare its values.</div>
        </div>
      </section>
      <section class="pane">
        <div class="pane-title"><span id="kernel-title" data-testid="kernel-title">Kernels</span><span class="spacer-flex"></span>
          <label class="muted" for="filter-index">filter</label>
          <vscode-textfield id="filter-index" data-testid="filter-index" class="filter-index" type="number" min="0" readonly aria-label="filter index"></vscode-textfield>
        </div>
        <div class="plot-box">
          <div id="kernel-heatmap" data-testid="kernel-heatmap" class="heatmaps">
            <div class="heatmap-cell"><div id="hm-original" class="plot heatmap"></div><div class="heatmap-caption">original</div></div>
            <div class="heatmap-cell"><div id="hm-reconstructed" class="plot heatmap"></div><div class="heatmap-caption">reconstructed</div></div>
            <div class="heatmap-cell"><div id="hm-difference" class="plot heatmap"></div><div class="heatmap-caption">difference</div></div>
          </div>
          <div id="kernel-hint" data-testid="kernel-hint" class="plot-hint">Kernels of one filter appear with the layer's detail.</div>
        </div>
        <div id="kernel-scale" data-testid="kernel-scale" class="muted heatmap-scale"></div>
      </section>
      <section class="pane pane-wide">
        <div class="pane-title"><span id="spectra-title" data-testid="spectra-title">Spectra: original vs reconstructed</span>
          <span class="spacer-flex"></span><span class="muted">ESD of WᵀW, log-log; dashed: start of the fitted power-law tail</span></div>
        <div class="plot-box">
          <div class="heatmaps spectra-pair">
            <div class="heatmap-cell"><div id="spectra-original" data-testid="spectra-original" class="plot"></div><div class="heatmap-caption">original</div></div>
            <div class="heatmap-cell"><div id="spectra-reconstructed" data-testid="spectra-reconstructed" class="plot"></div><div class="heatmap-caption">reconstructed</div></div>
          </div>
          <div id="spectra-hint" data-testid="spectra-hint" class="plot-hint">The layer's spectra appear once the artifact is written.</div>
        </div>
        <div id="spectra-numbers" data-testid="spectra-numbers" class="muted heatmap-scale"></div>
      </section>
    </div>
    <section id="model-eval" data-testid="model-eval" class="report" hidden>
      <h2>Evaluation in a runnable model</h2>
      <div class="status-row">
        <span id="eval-status" data-testid="eval-status" role="status" aria-live="polite"></span>
        <vscode-progress-bar id="eval-progress" class="progress"></vscode-progress-bar>
        <span class="spacer-flex"></span>
        <vscode-button id="cmd-cancel-eval" data-testid="cmd-cancel-eval" secondary hidden>Cancel evaluation</vscode-button>
      </div>
      <div class="panel-grid" style="grid-template-columns: repeat(auto-fit, minmax(min(360px, 100%), 1fr)); align-items: start">
        <div class="pane">
          <div class="pane-title">Original vs reconstructed weights</div>
          <table id="eval-table" data-testid="eval-table" class="small-table layers-table"></table>
          <div id="eval-note" data-testid="eval-note" class="muted"></div>
        </div>
        <div class="pane">
          <div class="pane-title">Classes: original → reconstructed <span id="confusion-note" data-testid="confusion-note" class="muted"></span></div>
          <div class="plot-box">
            <div id="eval-confusion" data-testid="eval-confusion" class="plot tall"></div>
            <div id="confusion-hint" class="plot-hint">The confusion of classes appears for classifiers.</div>
          </div>
        </div>
      </div>
    </section>
    <section id="report" data-testid="report" class="report" hidden>
      <h2>Report</h2>
      <div class="report-grid">
        <table id="report-summary" class="small-table kv-table"></table>
        <div class="report-layers">
          <table id="report-layers" data-testid="report-layers" class="small-table layers-table fit-table"></table>
        </div>
      </div>
    </section>`;
}

function post(message: ReconstructionOutbound): void {
  api.postMessage(message);
}

function statusText(s: ReconstructionSnapshot): string {
  const p = s.progress;
  switch (s.status) {
    case 'planning':
      return 'Planning the predictor…';
    case 'running': {
      const r = s.reconstructing;
      if (r !== undefined && r.done < r.total)
        return `Predicting every kernel: ${formatInteger(r.done)} / ${formatInteger(r.total)} rows`;
      if (p === undefined) return 'Training…';
      const eta = formatEta(p.step, p.steps, p.stepsPerSecond);
      return `Training: step ${formatInteger(p.step)} / ${formatInteger(p.steps)}${p.round > 1 ? `, round ${p.round}` : ''}${eta === '' ? '' : ` · ${eta}`}`;
    }
    case 'done':
      return s.report === undefined ? 'Done.' : doneText(s.report);
    case 'failed':
      return 'Failed.';
    case 'cancelled':
      return 'Cancelled.';
  }
}

/**
 * The status line of a finished report: steps and time (when known: a reopened artifact stores no wall-clock time),
 * both phases of a distilled artifact, and whether a phase was stopped early.
 */
function doneText(r: CompressReportDto): string {
  const time = r.seconds > 0 ? ` in ${formatDuration(r.seconds)}` : '';
  const stopped =
    r.stoppedEarly === undefined
      ? ''
      : ` (stopped early at step ${formatInteger(r.stoppedEarly.step)} of ${formatInteger(r.stoppedEarly.steps)})`;
  if (r.method !== undefined) return `Done: ${r.method} baseline, nothing trained`;
  const d = r.distillation;
  if (d === undefined) return `Done: ${formatInteger(r.steps)} steps${time}${stopped}`;
  const dStopped =
    d.stoppedEarly === undefined
      ? ''
      : ` (stopped early at step ${formatInteger(d.stoppedEarly.step)} of ${formatInteger(d.stoppedEarly.steps)})`;
  return `Done: ${formatInteger(r.steps)} reconstruction steps${stopped}, then ${formatInteger(d.steps)} distillation steps${dStopped}`;
}

function renderHeader(): void {
  const s = snapshot;
  renderRunHeader({
    title: s.source === '' ? 'Reconstruction' : baseName(s.source),
    tooltip: s.source,
    status: s.status,
    statusText: statusText(s),
    message: s.message,
  });
  const p = s.progress;
  setProgressBar(
    byId('progress'),
    s.status === 'running' || s.status === 'planning',
    s.status !== 'running'
      ? undefined
      : s.reconstructing !== undefined && s.reconstructing.done < s.reconstructing.total
        ? { value: s.reconstructing.done, max: Math.max(1, s.reconstructing.total) }
        : p !== undefined
          ? { value: p.step, max: Math.max(1, p.steps) }
          : undefined,
  );
  byId('cmd-cancel').hidden = s.status !== 'running' && s.status !== 'planning';
  byId('cmd-stop').hidden = s.status !== 'running';
  byId('cmd-reveal').hidden = s.status !== 'done' || s.artifact === undefined;
  byId('cmd-decompress').hidden = s.status !== 'done' || s.artifact === undefined;
  byId('cmd-evaluate').hidden = s.status !== 'done' || s.artifact === undefined || s.modelEval?.status === 'running';
  const r = s.report;
  // A baseline artifact (int8, int4, low rank, pruning) has no predictor and no training: its method shows instead.
  const baseline = r?.method;
  const step = baseline !== undefined ? undefined : (r?.steps ?? p?.step);
  setCard(
    'card-step',
    step === undefined
      ? '–'
      : p !== undefined && s.status === 'running'
        ? `${formatInteger(p.step)} / ${formatInteger(p.steps)}`
        : formatInteger(step),
  );
  const lastLoss = s.loss[s.loss.length - 1];
  setCard(
    'card-loss',
    lastLoss === undefined ? '–' : formatStat(lastLoss[1]),
    lastLoss === undefined ? undefined : String(lastLoss[1]),
  );
  const rmse = r?.rmse ?? s.evaluation?.rmse;
  setCard('card-rmse', rmse === undefined ? '–' : formatStat(rmse), rmse === undefined ? undefined : String(rmse));
  setCard('card-speed', p === undefined ? '–' : p.stepsPerSecond.toFixed(p.stepsPerSecond < 10 ? 1 : 0));
  const params = r?.predictorParams ?? s.plan?.predictorParams;
  const hidden = r?.hidden ?? s.plan?.hidden;
  setCard(
    'card-size',
    baseline !== undefined
      ? 'none'
      : params === undefined
        ? '–'
        : `${formatCount(params)}${hidden === undefined ? '' : ` (h ${hidden})`}`,
    baseline !== undefined ? undefined : params === undefined ? undefined : `${formatInteger(params)} parameters`,
  );
  byId('card-backend-label').textContent = baseline !== undefined ? 'method' : 'backend';
  if (baseline !== undefined) setCard('card-backend', baseline, COMPRESS_METHOD_DETAIL[baseline]);
  else setCard('card-backend', r?.backend ?? p?.backend ?? '–');
}

function layout(opts: Parameters<typeof histogramLayout>[1]): ReturnType<typeof histogramLayout> {
  return histogramLayout(page.theme, opts);
}

function renderLoss(): void {
  const theme = page.theme;
  const trace = lossTrace(snapshot.loss, theme.palette[0] ?? '#3794ff');
  const hint = byId('loss-hint');
  hint.hidden = trace.x.length > 0;
  const method = snapshot.report?.method;
  if (snapshot.report?.lean === true) hint.textContent = LEAN_REPORT_NOTE;
  else if (method !== undefined)
    hint.textContent = `This ${method} artifact stores the weights themselves (${COMPRESS_METHOD_DETAIL[method]}): nothing is trained, so there is no loss curve.`;
  const lay = {
    ...layout({ logY: true, xTitle: 'step', yTitle: 'loss', yValues: trace.y }),
    showlegend: false,
    uirevision: 'loss',
  };
  drawPlot(byId('loss-curve'), trace.x.length > 0 ? [trace] : [], lay);
}

function currentLayers(): { name: string; shape: number[]; params: number; rmse: number; relativeError: number }[] {
  return snapshot.report?.layers ?? snapshot.evaluation?.layers ?? [];
}

function renderLayers(): void {
  const theme = page.theme;
  const layers = currentLayers();
  byId('layer-count').textContent = layers.length === 1 ? '1 layer' : `${layers.length} layers`;
  byId('layers-hint').hidden = layers.length > 0;
  if (snapshot.report?.lean === true && layers.length === 0) byId('layers-hint').textContent = LEAN_REPORT_NOTE;
  const div = byId('layer-errors');
  div.style.height = `${barListHeight(layers.length)}px`;
  const trace = layerErrorTrace(layers, selected, {
    normal: theme.palette[0] ?? '#3794ff',
    highlight: theme.palette[1] ?? '#d18616',
  });
  // The categories are escaped names; customdata holds each layer's name as it is.
  drawPlot(div, layers.length > 0 ? [trace] : [], barListLayout(theme, 'relative error (%)', 'layers'), (point) => {
    if (typeof point.customdata === 'string') select(point.customdata);
  });
}

/** True once the artifact exists, so any layer and filter can be asked for. */
function canAsk(): boolean {
  return snapshot.status === 'done' && snapshot.artifact !== undefined;
}

/** The layer the detail panes are about: the selected one, else the last streamed one, else the worst. */
function shownLayer(): string | undefined {
  return selected ?? snapshot.details[snapshot.details.length - 1]?.name ?? worstFirst(currentLayers())[0]?.name;
}

/** Asks the host for `layer` at `filter` after a short pause (a different ask replaces a waiting one). */
function askDetail(layer: string, filter: number | undefined): void {
  const key = detailKey(layer, filter);
  if (requestTimer !== undefined && waiting === key) return;
  if (requestTimer !== undefined) clearTimeout(requestTimer);
  waiting = key;
  requestTimer = setTimeout(() => {
    requestTimer = undefined;
    waiting = undefined;
    if (
      !canAsk() ||
      details.get(layer, filter) !== undefined ||
      details.isPending(layer, filter) ||
      details.failure(layer, filter) !== undefined
    )
      return;
    details.markPending(layer, filter);
    post(filter === undefined ? { kind: 'recon/detail', layer } : { kind: 'recon/detail', layer, filter });
  }, DEBOUNCE_MS);
}

/** What the detail panes show now, and a note about it (empty when there is nothing to say). */
function currentDetail(): { detail: LayerDetailDto | undefined; note: string } {
  const streamed = (name: string | undefined): LayerDetailDto | undefined =>
    snapshot.details.find((x) => x.name === name);
  const latest = snapshot.details[snapshot.details.length - 1];
  if (!canAsk()) {
    const live = snapshot.status === 'running' || snapshot.status === 'planning';
    const d = streamed(selected) ?? latest;
    const liveNote = live
      ? 'While training, this shows the layer the engine samples at each evaluation (the currently worst); any layer and filter can be shown once the artifact is written.'
      : '';
    const missing =
      selected !== undefined && d !== undefined && d.name !== selected
        ? `No sampled values for ${selected} yet; showing ${d.name}.`
        : '';
    return { detail: d, note: [missing, liveNote].filter((x) => x !== '').join(' ') };
  }
  const layer = shownLayer();
  if (layer === undefined) return { detail: shown ?? latest, note: '' };
  const filter = filters[layer];
  const own = streamed(layer);
  const ready =
    details.get(layer, filter) ??
    (own !== undefined && (filter === undefined || own.filter.index === filter) ? own : undefined);
  if (ready !== undefined) return { detail: ready, note: '' };
  const fallback = shown ?? own ?? latest;
  const what = `${layer}${filter === undefined ? '' : `, filter ${filter}`}`;
  const failure = details.failure(layer, filter);
  if (failure !== undefined) return { detail: fallback, note: `Cannot show ${what}: ${failure}` };
  askDetail(layer, filter);
  return { detail: fallback, note: `Loading ${what}…` };
}

function renderDetail(): void {
  const theme = page.theme;
  const { detail, note } = currentDetail();
  const histHint = byId('hist-hint');
  const kernelHint = byId('kernel-hint');
  const input = byId('filter-index');
  if (detail === undefined) {
    shown = undefined;
    byId('hist-title').textContent = 'Original vs reconstructed';
    byId('kernel-title').textContent = 'Kernels';
    histHint.textContent = note === '' ? 'Histograms appear with the first evaluation.' : note;
    histHint.hidden = false;
    kernelHint.textContent = "Kernels of one filter appear with the layer's detail.";
    kernelHint.hidden = false;
    byId('kernel-scale').textContent = '';
    input.setAttribute('readonly', '');
    drawPlot(byId('layer-histogram'), [], {});
    for (const id of ['hm-original', 'hm-reconstructed', 'hm-difference']) drawPlot(byId(id), [], {});
    return;
  }
  shown = detail;
  byId('hist-title').textContent = `Original vs reconstructed: ${detail.name}`;
  histHint.textContent = note;
  histHint.hidden = note === '';
  const traces = buildTraces(detailSeries(detail), { logY: false, density: false }, theme.palette);
  const histLayout = {
    ...layout({ logY: false, xTitle: 'value', yTitle: 'count' }),
    showlegend: true,
    margin: { l: 56, r: 16, t: 28, b: 40 },
    uirevision: detail.name,
  };
  drawPlot(byId('layer-histogram'), traces, histLayout);
  const f = detail.filter;
  byId('kernel-title').textContent =
    `Kernels: ${detail.name}, filter ${f.index}${f.count === undefined ? '' : ` of ${f.count}`} (${f.original.length} × ${f.kh}×${f.kw})`;
  const editable = canAsk();
  if (editable) input.removeAttribute('readonly');
  else input.setAttribute('readonly', '');
  if (f.count !== undefined) input.setAttribute('max', String(Math.max(0, f.count - 1)));
  else input.removeAttribute('max');
  if (document.activeElement !== input) {
    input.setAttribute('value', String(f.index));
    // Set the property only once the element is upgraded: an own property set before would hide its accessor.
    if (customElements.get('vscode-textfield') !== undefined)
      (input as unknown as { value: string }).value = String(f.index);
  }
  input.title = editable
    ? `Output filter to show (0–${f.count === undefined ? '…' : String(f.count - 1)}).`
    : 'While training, the engine samples the filter with the largest error; any filter can be chosen once the artifact is written.';
  kernelHint.hidden = f.original.length > 0;
  kernelHint.textContent = f.original.length > 0 ? '' : 'This layer has no kernels to show.';
  const maps = kernelHeatmaps(detail);
  byId('kernel-scale').textContent =
    f.original.length > 0
      ? `One colour scale for all three: blue −${formatStat(maps.range)} · white 0 · red +${formatStat(maps.range)}`
      : '';
  const base = layout({ logY: false, xTitle: '', yTitle: '' });
  const axis = { ...base.xaxis, title: undefined, showgrid: false, zeroline: false, showticklabels: false };
  const hmLayout = {
    ...base,
    showlegend: false,
    margin: { l: 4, r: 4, t: 4, b: 4 },
    xaxis: axis,
    yaxis: { ...axis, autorange: 'reversed', scaleanchor: 'x' },
    uirevision: detail.name,
  };
  drawPlot(byId('hm-original'), [maps.original], hmLayout);
  drawPlot(byId('hm-reconstructed'), [maps.reconstructed], hmLayout);
  drawPlot(byId('hm-difference'), [maps.difference], hmLayout);
}

/**
 * Applies the filter number typed in the box to the shown layer (clamped to its filters) so it is asked for; returns
 * the filter now chosen for that layer (undefined when nothing can be chosen).
 */
function chooseFilter(text: string): number | undefined {
  if (!canAsk()) return undefined;
  const layer = shownLayer();
  if (layer === undefined) return undefined;
  const count = shown?.name === layer ? shown.filter.count : undefined;
  const filter = clampFilter(text, count);
  if (filter === undefined) return filters[layer];
  if (filters[layer] !== filter) {
    details.clearFailures();
    filters = { ...filters, [layer]: filter };
    persist();
    page.schedule();
  }
  return filter;
}

function renderReport(): void {
  const r = snapshot.report;
  const section = byId('report');
  section.hidden = r === undefined;
  if (r === undefined) return;
  fillKeyValueTable(byId('report-summary'), [
    ['Source', baseName(r.source), r.source],
    ['Artifact', baseName(r.artifact), r.artifact],
    ['Ratio', `${r.ratio.toFixed(2)}×`],
    ['Source size', formatBytes(r.sourceBytes), `${formatInteger(r.sourceBytes)} bytes`],
    ['Artifact size', formatBytes(r.artifactBytes), `${formatInteger(r.artifactBytes)} bytes`],
    ['Relative error', `${(r.relativeError * 100).toPrecision(3)} %`, 'over all represented weights: ‖W − Ŵ‖ / ‖W‖'],
    ['RMSE', formatStat(r.rmse), String(r.rmse)],
    ...(r.sidecar !== undefined
      ? ([
          [
            'Report sidecar',
            `${baseName(r.sidecar.path)}: ${formatBytes(r.sidecar.bytes)}, beside the artifact (not counted in its size)`,
            r.sidecar.path,
          ],
        ] as [string, string, string][])
      : r.lean === true
        ? ([['Report', LEAN_REPORT_NOTE]] as [string, string][])
        : []),
    ...(r.distillation === undefined
      ? []
      : ([
          [
            'Phase 1',
            `${formatInteger(r.distillation.phase1.steps)} reconstruction steps: relative error ${(r.distillation.phase1.relativeError * 100).toPrecision(3)} %, RMSE ${formatStat(r.distillation.phase1.rmse)}`,
          ],
          [
            'Phase 2',
            `${formatInteger(r.distillation.steps)} distillation steps from ${r.distillation.from}${r.distillation.stoppedEarly === undefined ? '' : ' (stopped early)'}: the errors above and per layer are the distilled predictor's`,
          ],
        ] as [string, string][])),
    ...(r.method !== undefined
      ? ([['Method', `${r.method}: ${COMPRESS_METHOD_DETAIL[r.method]}`]] as [string, string][])
      : ([['Predictor', `${formatInteger(r.predictorParams)} params, h = ${r.hidden}`]] as [string, string][])),
    ['Represented', `${formatInteger(r.representedParams)} params`],
    ['Verbatim', `${formatInteger(r.verbatimParams)} params`],
    ...(r.method !== undefined
      ? []
      : ([
          ['Permutation', r.permutation],
          ['Backend', r.backend],
          ['Steps', formatInteger(r.steps)],
          ['Time', formatDuration(r.seconds)],
        ] as [string, string][])),
  ]);
  const table = byId('report-layers');
  const thead = tableHead([
    ['Layer', 'col-name'],
    ['Shape', 'col-shape'],
    ['Params', 'num col-num'],
    ['RMSE', 'num col-num'],
    ['Rel. error', 'num col-num'],
    ...(r.distillation === undefined ? [] : ([['Phase 1', 'num col-num']] as [string, string][])),
  ]);
  const tbody = el('tbody');
  const phase1 = new Map((r.distillation?.phase1.layers ?? []).map((l) => [l.name, l.relativeError]));
  for (const l of worstFirst(r.layers)) {
    const tr = el('tr', { 'data-testid': 'layer-row', class: l.name === selected ? 'selected' : '' });
    tr.append(
      el('td', { class: 'name', title: l.name }, l.name),
      el('td', { class: 'mono', title: formatShape(l.shape) }, formatShape(l.shape)),
      el('td', { class: 'num' }, formatInteger(l.params)),
      el('td', { class: 'num', title: String(l.rmse) }, formatStat(l.rmse)),
      el('td', { class: 'num', title: String(l.relativeError) }, `${(l.relativeError * 100).toPrecision(3)} %`),
    );
    if (r.distillation !== undefined) {
      const p1 = phase1.get(l.name);
      tr.append(
        el(
          'td',
          { class: 'num', 'data-testid': 'layer-phase1' },
          p1 === undefined ? '—' : `${(p1 * 100).toPrecision(3)} %`,
        ),
      );
    }
    tr.addEventListener('click', () => {
      select(l.name);
    });
    tbody.appendChild(tr);
  }
  table.replaceChildren(thead, tbody);
}

function evalStatusText(): string {
  const e = snapshot.modelEval;
  if (e === undefined) return '';
  const what = `${baseName(e.model)} on ${baseName(e.data)}`;
  switch (e.status) {
    case 'running':
      return e.done === undefined || e.total === undefined
        ? `Evaluating in ${what}…`
        : `Evaluating in ${what}: ${formatInteger(e.done)} / ${formatInteger(e.total)} samples`;
    case 'done':
      return e.report === undefined
        ? 'Done.'
        : `Done: ${formatInteger(e.report.candidate.n)} samples of ${what} in ${formatDuration(e.report.durationMs / 1000)} (preprocessing from ${e.report.preprocessSource})`;
    case 'failed':
      return `Failed: ${e.message ?? ''}`;
    case 'cancelled':
      return 'Evaluation cancelled.';
  }
}

/** The evaluation run last scrolled into view (a new run is brought into view once). */
let scrolledEval: object | undefined;

function renderModelEval(): void {
  const e = snapshot.modelEval;
  const section = byId('model-eval');
  section.hidden = e === undefined;
  if (e === undefined) return;
  if (e.status === 'running' && scrolledEval !== e) {
    scrolledEval = e;
    section.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }
  const theme = page.theme;
  byId('eval-status').textContent = evalStatusText();
  setProgressBar(
    byId('eval-progress'),
    e.status === 'running',
    e.done !== undefined && e.total !== undefined && e.total > 0 ? { value: e.done, max: e.total } : undefined,
  );
  byId('cmd-cancel-eval').hidden = e.status !== 'running';
  const r = e.report;
  const table = byId('eval-table');
  const confusion = byId('eval-confusion');
  if (r === undefined) {
    table.replaceChildren();
    byId('eval-note').textContent = '';
    byId('confusion-note').textContent = '';
    byId('confusion-hint').hidden = false;
    drawPlot(confusion, [], {});
    return;
  }
  const thead = tableHead(
    r.classifier
      ? [
          ['weights', ''],
          ['accuracy', 'num'],
          ['agreement', 'num'],
          ['rel. error', 'num'],
        ]
      : [
          ['weights', ''],
          ['PSNR', 'num'],
          ['rel. error', 'num'],
        ],
  );
  const tbody = el('tbody');
  for (const row of evalRows(r)) {
    const tr = el('tr', { id: `eval-${row.id}`, 'data-testid': `eval-${row.id}` });
    tr.appendChild(el('td', {}, row.label));
    const cells = r.classifier ? [row.accuracy, row.agreement, row.relativeError] : [row.psnr, row.relativeError];
    for (const c of cells) tr.appendChild(el('td', { class: 'num' }, c));
    tbody.appendChild(tr);
  }
  table.replaceChildren(thead, tbody);
  const boundText = boundTensorsText(r, 'the artifact');
  const bound = boundText === '' ? '' : ` ${boundText}.`;
  byId('eval-note').textContent = `${r.candidate.n.toLocaleString('en-US')} samples on ${r.backend}.${bound}`;
  const matrix = r.confusion;
  const traces =
    matrix === undefined
      ? []
      : confusionTraces(matrix, r.classNames, {
          same: 'rgba(128,128,128,0.35)',
          changedLow: theme.palette[1] ?? '#d18616',
          changedHigh: theme.palette[4] ?? '#f14c4c',
          text: theme.foreground,
        });
  byId('confusion-hint').hidden = traces.length > 0;
  byId('confusion-note').textContent =
    matrix === undefined
      ? ''
      : `${formatInteger(changedSamples(matrix))} of ${formatInteger(r.candidate.n)} samples changed class`;
  const base = layout({ logY: false, xTitle: 'reconstructed class', yTitle: 'original class' });
  drawPlot(confusion, traces, {
    ...base,
    showlegend: false,
    barmode: undefined,
    margin: { l: 8, r: 8, t: 8, b: 40 },
    xaxis: { ...base.xaxis, type: 'category', side: 'bottom' },
    yaxis: { ...base.yaxis, type: 'category', autorange: 'reversed' },
    uirevision: 'confusion',
  });
}

/** Spectra by layer name for the current artifact: the comparison, or why it could not be made. */
const spectra = new Map<string, SpectraComparisonDto | { failed: string }>();
/** Layers whose spectra have been asked for and not answered. */
const spectraPending = new Set<string>();

/**
 * The original and reconstructed ESDs of the shown layer side by side, on the same axes, asked from the host once the
 * artifact is written (the engine computes both), so a flattened or shortened tail shows.
 */
function renderSpectra(): void {
  const layer = shownLayer();
  const hint = byId('spectra-hint');
  const numbers = byId('spectra-numbers');
  const divs = [byId('spectra-original'), byId('spectra-reconstructed')];
  const clear = (text: string): void => {
    for (const d of divs) drawPlot(d, [], {});
    hint.textContent = text;
    hint.hidden = text === '';
    numbers.textContent = '';
  };
  if (layer === undefined || !canAsk()) {
    clear("The layer's spectra appear once the artifact is written.");
    return;
  }
  byId('spectra-title').textContent = `Spectra: ${layer}, original vs reconstructed`;
  const known = spectra.get(layer);
  if (known === undefined) {
    if (!spectraPending.has(layer)) {
      spectraPending.add(layer);
      post({ kind: 'recon/spectra', layer });
    }
    clear(`Computing the spectra of ${layer}…`);
    return;
  }
  if ('failed' in known) {
    clear(`Cannot show the spectra of ${layer}: ${known.failed}`);
    return;
  }
  hint.hidden = true;
  const theme = page.theme;
  const both = [known.original, known.reconstructed];
  // One x and y range for both plots, so the tails compare by eye.
  const xs = both.flatMap((l) => l.esd.edges).filter((x) => x > 0);
  const ys = both.flatMap((l) => l.esd.density).filter((y) => y > 0);
  const range = (v: number[]): number[] => [Math.log10(Math.min(...v)), Math.log10(Math.max(...v))];
  both.forEach((l, i) => {
    const fig = esdFigure(
      [{ name: i === 0 ? 'original' : 'reconstructed', esd: l.esd, xmin: l.xmin, alpha: l.alpha }],
      {
        ...theme,
        palette: theme.palette.slice(i),
      },
    );
    const lay = fig.layout as { xaxis: object; yaxis: object };
    const layout = {
      ...fig.layout,
      xaxis: { ...lay.xaxis, ...(xs.length > 0 ? { range: range(xs) } : {}) },
      yaxis: { ...lay.yaxis, ...(ys.length > 0 ? { range: range(ys) } : {}) },
    };
    const div = divs[i];
    if (div !== undefined) drawPlot(div, fig.data, layout);
  });
  numbers.textContent = `original: ${spectrumSummary(known.original)}\nreconstructed: ${spectrumSummary(known.reconstructed)}`;
}

function render(): void {
  renderHeader();
  renderLoss();
  renderLayers();
  renderDetail();
  renderSpectra();
  renderModelEval();
  renderReport();
}

function persist(): void {
  api.setState({ ...(selected === undefined ? {} : { selected }), filters });
}

function select(name: string): void {
  selected = name;
  details.clearFailures();
  persist();
  page.schedule();
}

function onMessage(msg: ReconstructionInbound): void {
  switch (msg.kind) {
    case 'recon/snapshot':
      snapshot = msg.snapshot;
      details.clear();
      spectra.clear();
      spectraPending.clear();
      break;
    case 'recon/layerSpectra':
      spectraPending.delete(msg.layer);
      spectra.set(msg.layer, msg.spectra);
      break;
    case 'recon/layerSpectraFailed':
      spectraPending.delete(msg.layer);
      spectra.set(msg.layer, { failed: msg.message });
      break;
    case 'recon/layerDetail':
      details.put(msg.layer, msg.filter, msg.detail);
      break;
    case 'recon/layerDetailFailed':
      details.fail(msg.layer, msg.filter, msg.message);
      break;
    default:
      if (msg.kind === 'compress/done') details.clear();
      applyReconstructionEvent(snapshot, msg);
  }
  page.schedule();
}

function wire(): void {
  const commands: [string, ReconstructionCommand][] = [
    ['cmd-cancel', 'cancel'],
    ['cmd-stop', 'stopAndSave'],
    ['cmd-budget', 'showBudget'],
    ['cmd-reveal', 'revealArtifact'],
    ['cmd-decompress', 'decompress'],
    ['cmd-evaluate', 'evaluate'],
    ['cmd-cancel-eval', 'cancelEvaluate'],
  ];
  wireCommands(commands, (command) => {
    post({ kind: 'recon/command', command });
  });
  const filterBox = byId('filter-index');
  let typing: ReturnType<typeof setTimeout> | undefined;
  const valueOf = (e: Event): string => {
    const v = (e.target as { value?: unknown } | null)?.value;
    return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
  };
  filterBox.addEventListener('input', (e) => {
    const text = valueOf(e);
    if (typing !== undefined) clearTimeout(typing);
    typing = setTimeout(() => {
      typing = undefined;
      chooseFilter(text);
    }, DEBOUNCE_MS);
  });
  filterBox.addEventListener('change', (e) => {
    if (typing !== undefined) clearTimeout(typing);
    typing = undefined;
    const filter = chooseFilter(valueOf(e));
    // Show the clamped value at once (the box may keep the focus).
    if (filter !== undefined) (filterBox as unknown as { value: string }).value = String(filter);
  });
}

page.start<ReconstructionInbound>({
  build: buildSkeleton,
  wire,
  prefixes: ['recon/', 'compress/', 'eval/'],
  onMessage,
  ready: () => {
    post({ kind: 'recon/ready' });
  },
});
