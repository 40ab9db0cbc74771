/**
 * The Compare panel's webview: one comparison of two checkpoints (`DiffReportDto`). First the relative change
 * ‖Δ‖/‖A‖ per layer as bars, worst first; then the summary line (counts per status) and the tensors, worst first,
 * with status, max |Δ|, RMS Δ, ‖Δ‖/‖A‖ and cosine. Clicking a changed row (or a layer's bar: its worst tensor) asks
 * the host for that pair's Δ histogram, computed in the engine worker, and draws it. Only the report's figures and
 * binned histograms arrive here, never weights.
 */
import type { CompareInbound, CompareOutbound, DeltaHistogramDto } from '../src/protocol/compare';
import type { DiffReportDto } from '../src/protocol/diff';
import { barListHeight, BAR_LIST_MAX_ROWS } from './lib/compressPlots';
import { compareRow, layerChanges, layerChangeTrace, summaryLine, type CompareRow } from './lib/compareModel';
import { byId, el, tableHead, vscodeApi } from './lib/dom';
import { baseName, formatInteger, formatStat } from './lib/format';
import { buildTraces } from './lib/histogram';
import { drawPlot, RunPanelPage } from './lib/panelPage';
import { barListLayout, histogramLayout } from './lib/plotly';

/** Most tensor rows the table shows (worst first; the rest are counted below it). */
const MAX_TABLE_ROWS = 2000;

const api = vscodeApi<CompareOutbound, undefined>();
const page = new RunPanelPage(render);

let report: DiffReportDto | undefined;
/** The pair whose Δ histogram is shown or asked for (`a`, `b`: the names in A and B). */
let selected: { a: string; b: string } | undefined;
/** The histogram of `selected` once it arrived, or why it could not be made. */
let histogram: { pair: string; result: DeltaHistogramDto } | { pair: string; failed: string } | undefined;
/** The table is rebuilt only when the report changes (selection only moves a class). */
let tableReport: DiffReportDto | undefined;

const pairKey = (p: { a: string; b: string }): string => JSON.stringify([p.a, p.b]);

function buildSkeleton(root: HTMLElement): void {
  root.innerHTML = `
    <header class="top">
      <div class="title-row"><h1 id="title" class="file-name">Compare</h1><span class="spacer-flex"></span>
        <vscode-button id="rematch" data-testid="compare-rematch" secondary hidden>Match by shape</vscode-button></div>
      <div id="subtitle" data-testid="compare-subtitle" class="muted description">Waiting for the comparison…</div>
    </header>
    <div class="panel-grid">
      <section class="pane pane-wide">
        <div class="pane-title">Relative change per layer <span class="muted">‖Δ‖/‖A‖ of the layer’s most changed tensor, worst first</span>
          <span class="spacer-flex"></span><span id="layer-count" data-testid="compare-layer-count" class="muted"></span></div>
        <div class="plot-box">
          <div id="layer-bars" data-testid="compare-layers" class="plot tall"></div>
          <div id="layer-hint" class="plot-hint">No tensor changed in value.</div>
        </div>
      </section>
      <section class="pane pane-wide">
        <div id="summary" data-testid="compare-summary" class="pane-title"></div>
        <div id="summary-figures" data-testid="compare-figures" class="muted"></div>
      </section>
      <section class="pane pane-wide">
        <div class="pane-title">Histogram of Δ = B − A <span id="histogram-status" data-testid="compare-histogram-status" class="muted">Click a changed tensor to see its differences.</span></div>
        <div class="plot-box">
          <div id="delta-histogram" data-testid="compare-histogram" class="plot"></div>
          <div id="histogram-hint" class="plot-hint">The histogram of a tensor’s differences appears here.</div>
        </div>
      </section>
      <section class="pane pane-wide">
        <div class="pane-title">Tensors <span class="muted">worst first</span></div>
        <div class="report-layers"><table id="tensor-table" data-testid="compare-table" class="small-table layers-table"></table></div>
        <div id="table-note" class="muted small-note"></div>
      </section>
    </div>`;
}

function post(message: CompareOutbound): void {
  api.postMessage(message);
}

/** Asks for the Δ histogram of `pair` (unless it is the one shown) and marks its row. */
function select(pair: { a: string; b: string }): void {
  const key = pairKey(pair);
  if (selected !== undefined && pairKey(selected) === key && histogram !== undefined) return;
  selected = pair;
  histogram = undefined;
  post({ kind: 'compare/histogram', a: pair.a, b: pair.b });
  page.schedule();
}

function renderHeader(r: DiffReportDto): void {
  const title = byId('title');
  title.textContent = `${baseName(r.a.file)} ↔ ${baseName(r.b.file)}`;
  title.title = `A: ${r.a.file}\nB: ${r.b.file}`;
  const left = r.integerTensorsLeftOut.a + r.integerTensorsLeftOut.b;
  byId('subtitle').textContent =
    `A: ${r.a.file} (${r.a.format}, ${formatInteger(r.a.tensors)} tensors) · B: ${r.b.file} (${r.b.format}, ${formatInteger(r.b.tensors)} tensors) · matched by ${r.match}` +
    (left > 0 ? ` · ${left} integer tensors not compared` : '') +
    ` · ${formatStat(r.seconds)} s`;
  // Renamed layers show as removed + added by name; pairing the rest by shape in file order finds them.
  const rematch = byId('rematch');
  rematch.hidden = false;
  rematch.textContent = r.match === 'name' ? 'Match by shape' : 'Match by name';
  rematch.title =
    r.match === 'name'
      ? 'Compare again, pairing tensors left unmatched by name by their shape, in file order (renamed layers)'
      : 'Compare again, pairing tensors by name only';
}

function renderLayers(r: DiffReportDto): void {
  const { layers, unbounded } = layerChanges(r);
  const shown = Math.min(layers.length, BAR_LIST_MAX_ROWS);
  byId('layer-count').textContent =
    (layers.length === 1 ? '1 layer changed' : `${layers.length} layers changed`) +
    (shown < layers.length ? ` (${shown} worst shown)` : '') +
    (unbounded.length > 0 ? ` · ${unbounded.length} tensors with ‖A‖ = 0 changed (unbounded)` : '');
  byId('layer-hint').hidden = layers.length > 0;
  const div = byId('layer-bars');
  div.style.height = `${barListHeight(layers.length)}px`;
  drawPlot(
    div,
    layers.length > 0 ? [layerChangeTrace(layers, page.color(1))] : [],
    barListLayout(page.theme, '‖Δ‖/‖A‖ (%)', 'compare-layers'),
    (point) => {
      const layer = layers.find((l) => l.layer === point.customdata);
      const a = layer?.worst.a?.name;
      const b = layer?.worst.b?.name;
      if (a !== undefined && b !== undefined) select({ a, b });
    },
  );
}

function renderSummary(r: DiffReportDto): void {
  byId('summary').textContent = summaryLine(r);
  const s = r.summary;
  byId('summary-figures').textContent =
    `${formatInteger(s.compared)} elements compared · max |Δ| ${formatStat(s.maxAbs)} · ‖Δ‖/‖A‖ ` +
    `${s.relative === null ? '∞' : `${formatStat(s.relative * 100)} %`} · cosine ${formatStat(s.cosine)}`;
}

function rowCells(tr: HTMLTableRowElement, row: CompareRow): void {
  const name = el('td', { class: 'name', 'data-testid': 'compare-row-name' }, row.name);
  name.title = row.name;
  tr.append(
    el('td', { 'data-testid': 'compare-row-status' }, row.status),
    name,
    el('td', {}, row.shape),
    el('td', {}, row.dtype),
    el('td', { class: 'num' }, row.maxAbs),
    el('td', { class: 'num' }, row.rms),
    el('td', { class: 'num' }, row.relative),
    el('td', { class: 'num' }, row.cosine),
  );
}

function renderTable(r: DiffReportDto): void {
  const table = byId('tensor-table');
  if (tableReport !== r) {
    tableReport = r;
    const tbody = el('tbody');
    for (const dto of r.tensors.slice(0, MAX_TABLE_ROWS)) {
      const row = compareRow(dto);
      const tr = el('tr', { 'data-testid': 'compare-row', 'data-status': row.status });
      if (row.histogram !== undefined) {
        const pair = row.histogram;
        tr.dataset.pair = pairKey(pair);
        tr.title = 'Show the histogram of Δ';
        tr.addEventListener('click', () => {
          select(pair);
        });
      } else tr.classList.add('inert');
      rowCells(tr, row);
      tbody.appendChild(tr);
    }
    table.replaceChildren(
      tableHead([
        ['status', ''],
        ['tensor', ''],
        ['shape', ''],
        ['dtype', ''],
        ['max |Δ|', 'num'],
        ['RMS Δ', 'num'],
        ['‖Δ‖/‖A‖', 'num'],
        ['cosine', 'num'],
      ]),
      tbody,
    );
    const more = r.tensors.length - MAX_TABLE_ROWS;
    byId('table-note').textContent = more > 0 ? `${formatInteger(more)} more rows (all same or less changed).` : '';
  }
  const key = selected === undefined ? undefined : pairKey(selected);
  for (const tr of table.querySelectorAll<HTMLTableRowElement>('tbody tr')) {
    tr.classList.toggle('selected', key !== undefined && tr.dataset.pair === key);
  }
}

function renderHistogram(): void {
  const status = byId('histogram-status');
  const div = byId('delta-histogram');
  const key = selected === undefined ? undefined : pairKey(selected);
  const h = histogram !== undefined && histogram.pair === key ? histogram : undefined;
  if (selected === undefined) {
    status.textContent = 'Click a changed tensor to see its differences.';
  } else if (h === undefined) {
    status.textContent = `Computing the Δ histogram of ${selected.a}…`;
  } else if ('failed' in h) {
    status.textContent = `${selected.a}: ${h.failed}`;
  } else {
    const d = h.result;
    const left = d.nonFinite > 0 ? ` · ${formatInteger(d.nonFinite)} non-finite left out` : '';
    status.textContent = `${d.a}: ${formatInteger(d.count)} elements, Δ from ${formatStat(d.min)} to ${formatStat(d.max)}${left}`;
  }
  const traces =
    h !== undefined && 'result' in h
      ? buildTraces([{ name: `Δ ${h.result.a}`, histogram: h.result.histogram }], { logY: false, density: false }, [
          page.color(0),
        ])
      : [];
  byId('histogram-hint').hidden = traces.length > 0;
  drawPlot(div, traces, histogramLayout(page.theme, { logY: false, xTitle: 'Δ = B − A', yTitle: 'count' }));
}

function render(): void {
  const r = report;
  if (r === undefined) return;
  renderHeader(r);
  renderLayers(r);
  renderSummary(r);
  renderTable(r);
  renderHistogram();
}

function onMessage(msg: CompareInbound): void {
  if (msg.kind === 'compare/report') {
    if (report !== undefined && report !== msg.report) {
      selected = undefined;
      histogram = undefined;
    }
    report = msg.report;
  } else {
    const pair = pairKey(msg);
    if (selected === undefined || pairKey(selected) !== pair) return;
    histogram = msg.kind === 'compare/histogram' ? { pair, result: msg.histogram } : { pair, failed: msg.message };
  }
  page.schedule();
}

page.start<CompareInbound>({
  build: buildSkeleton,
  wire: () => {
    byId('rematch').addEventListener('click', () => {
      if (report === undefined) return;
      post({ kind: 'compare/rematch', match: report.match === 'name' ? 'shape' : 'name' });
    });
  },
  prefixes: ['compare/'],
  onMessage,
  ready: () => {
    post({ kind: 'compare/ready' });
  },
});
