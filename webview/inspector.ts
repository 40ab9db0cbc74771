/**
 * The Inspector webview: shows one checkpoint's header (format, metadata, totals, every tensor) as soon as the host
 * sends it, then fills in per-tensor statistics as they stream. The tensor table is virtualised, sortable and
 * filterable, its name column fits the longest name and every column resizes by dragging; selected rows' histograms
 * are plotted with plotly (loaded on first use) in the theme's colours. It receives only headers,
 * summary statistics and binned histograms (never raw weights) and talks to the host through `src/protocol` messages.
 */
import {
  otherValuesText,
  weightCounts,
  type CheckpointHeaderDto,
  type HistogramDto,
  type LayerKind,
  type TotalsDto,
} from '../src/protocol/inspect';
import { hasKind, type FailureReason } from '../src/protocol/common';
import type {
  InspectorInbound,
  InspectorOutbound,
  InspectorSpectraInbound,
  InspectorTensorUpdate,
} from '../src/protocol/inspector';
import {
  ARTIFACT_METADATA_KEY,
  artifactBannerText,
  artifactSections,
  artifactSummary,
  type ArtifactSection,
} from './lib/artifactMeta';
import type { ArtifactMetaSummary } from '../src/protocol/artifact';
import {
  baseName,
  formatBytes,
  formatCount,
  formatInteger,
  formatPercent,
  formatDuration,
  formatShape,
  formatStat,
} from './lib/format';
import { buildTraces, isPlottable, MAX_SERIES, type HistogramSeries } from './lib/histogram';
import { getPlotly, histogramLayout, PLOT_CONFIG, readTheme, withPlotly, type ThemeColors } from './lib/plotly';
import {
  COLUMNS,
  columnWidths,
  computeView,
  DEFAULT_COLUMN_WIDTHS,
  filterStatus,
  nextSort,
  parseFilter,
  RowSelection,
  type ColumnId,
  type RowFilter,
  type SortState,
  type TensorRow,
} from './lib/tableModel';
import { VirtualTable } from './lib/virtualTable';
import { SPECTRA_VIEW_HTML, SpectraView } from './lib/spectraView';

/** The API object VS Code injects into webviews. */
interface VsCodeApi<S> {
  postMessage(message: InspectorOutbound): void;
  getState(): S | undefined;
  setState(state: S): void;
}
declare function acquireVsCodeApi<S>(): VsCodeApi<S>;

/** UI state kept across webview reloads (VS Code persists it per editor). */
interface PersistedState {
  file: string;
  filter: string;
  sort: SortState | undefined;
  selected: number[];
  logY: boolean;
  density: boolean;
  /** Open state of the collapsible sections, by element id, once the user toggled them. */
  sections?: Record<string, boolean>;
  /** Widths (CSS px) the user dragged table columns to. */
  widths?: Partial<Record<ColumnId, number>>;
}

const vscodeApi = acquireVsCodeApi<PersistedState>();

/** Names of the layer kinds in the totals table. */
const KIND_LABELS: Record<LayerKind, string> = {
  conv: 'Convolution',
  dense: 'Dense / linear',
  norm: 'Normalisation',
  embedding: 'Embedding',
  bias: 'Bias',
  other: 'Other',
};

// ---------------------------------------------------------------------------------------------------------------
// DOM skeleton

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`Inspector element #${id} is missing`);
  return e;
}

function tableById(id: string): HTMLTableElement {
  const e = byId(id);
  if (!(e instanceof HTMLTableElement)) throw new Error(`Inspector element #${id} is not a table`);
  return e;
}

function buildSkeleton(root: HTMLElement): void {
  root.innerHTML = `
    <header class="top">
      <div class="title-row">
        <h1 id="file-name" class="file-name">Weight Lens</h1>
        <vscode-badge id="format-badge" hidden></vscode-badge>
        <span id="file-size" class="muted"></span>
        <span class="spacer-flex"></span>
        <vscode-button id="compress-button" data-testid="compress-button" secondary title="Compress this checkpoint with a neural representation (NeRN)">Compress…</vscode-button>
      </div>
      <div id="description" class="muted description"></div>
      <div class="status-row">
        <span id="status" data-testid="status" role="status" aria-live="polite">Opening…</span>
        <vscode-progress-bar id="progress" class="progress"></vscode-progress-bar>
      </div>
      <div id="error" data-testid="error" class="banner banner-error" role="alert" hidden>
        <div class="banner-text"><strong id="error-title"></strong><span id="error-message"></span></div>
        <div class="banner-actions">
          <vscode-button id="error-reload">Reload</vscode-button>
          <vscode-button id="error-log" secondary>Show Log</vscode-button>
        </div>
      </div>
      <div id="artifact" data-testid="artifact-banner" class="banner banner-info banner-artifact" hidden>
        <div class="banner-text"><span id="artifact-message"></span></div>
        <div class="banner-actions">
          <vscode-button id="artifact-decompress" data-testid="artifact-decompress">Decompress</vscode-button>
          <vscode-button id="artifact-reconstruction" secondary>Show Reconstruction</vscode-button>
        </div>
      </div>
      <div id="changed" data-testid="file-changed" class="banner banner-info" hidden>
        <div class="banner-text"><span id="changed-message">The file changed on disk.</span></div>
        <div class="banner-actions"><vscode-button id="changed-reload">Reload</vscode-button></div>
      </div>
    </header>
    <div id="empty" class="empty-state">
      <vscode-progress-ring id="empty-ring"></vscode-progress-ring>
      <span id="empty-text">Reading the checkpoint header…</span>
    </div>
    <div id="content" class="content" hidden>
      <section class="summary" aria-label="Summary">
        <div class="cards">
          <div class="card"><div class="card-value" id="tensor-count" data-testid="tensor-count">0</div><div class="card-label">tensors</div></div>
          <div class="card"><div class="card-value" id="param-count" data-testid="param-count">0</div><div class="card-label">float weights</div><div class="card-sub" id="param-other" data-testid="param-other" hidden></div></div>
          <div class="card"><div class="card-value" id="tensor-bytes">0 B</div><div class="card-label">tensor bytes</div></div>
          <div class="card"><div class="card-value" id="file-bytes">0 B</div><div class="card-label">file size</div></div>
        </div>
        <div class="collapsibles">
          <vscode-collapsible id="totals-section" heading="Totals by dtype and layer kind">
            <div class="totals-grid">
              <table class="small-table" id="by-dtype" data-testid="by-dtype"></table>
              <table class="small-table" id="by-kind" data-testid="by-kind"></table>
            </div>
          </vscode-collapsible>
          <vscode-collapsible id="metadata-section" heading="Metadata">
            <div id="metadata" class="metadata" data-testid="metadata"></div>
          </vscode-collapsible>
          <vscode-collapsible id="spectra-section" data-testid="spectra-section" heading="Spectra: power-law α and stable rank per layer">
            <div id="spectra" class="spectra">${SPECTRA_VIEW_HTML}</div>
          </vscode-collapsible>
        </div>
      </section>
      <section class="tensors" aria-label="Tensors">
        <div class="toolbar">
          <div class="filter-box">
            <vscode-textfield id="filter" data-testid="filter" class="filter" placeholder="Filter by name or dtype: text or /regex/"></vscode-textfield>
            <div id="filter-error" data-testid="filter-error" class="filter-error" role="alert" hidden></div>
          </div>
          <span id="shown-count" data-testid="shown-count" class="muted"></span>
          <span class="spacer-flex"></span>
          <span class="muted hint-keys">Click a row to plot it; Ctrl/⌘- or Shift-click to compare.</span>
          <vscode-button id="clear-selection" secondary hidden>Clear selection</vscode-button>
        </div>
        <vscode-split-layout id="split" split="horizontal" initial-handle-position="50%" min-start="120px" min-end="240px">
          <div slot="start" id="table-scroll" class="table-scroll" tabindex="0" aria-label="Tensor table"></div>
          <div slot="end" class="plot-pane">
            <div class="plot-toolbar">
              <span id="plot-title" class="plot-title">Histogram</span>
              <span class="spacer-flex"></span>
              <vscode-checkbox id="logy" data-testid="yscale-toggle" toggle>Log y</vscode-checkbox>
              <vscode-checkbox id="density" data-testid="density-toggle" toggle>Density</vscode-checkbox>
            </div>
            <div class="plot-area">
              <div id="histogram" data-testid="histogram" class="plot"></div>
              <div id="plot-hint" class="plot-hint">Select a tensor to plot its histogram.</div>
            </div>
            <div id="details" class="details" data-testid="details"></div>
          </div>
        </vscode-split-layout>
      </section>
    </div>`;
}

// ---------------------------------------------------------------------------------------------------------------
// State

type Phase = 'loading' | 'streaming' | 'done' | 'failed';

const state = {
  file: '',
  header: undefined as CheckpointHeaderDto | undefined,
  rows: [] as TensorRow[],
  histograms: [] as (HistogramDto | undefined)[],
  settled: 0,
  failedTensors: 0,
  phase: 'loading' as Phase,
  seconds: undefined as number | undefined,
  filterText: '',
  filter: parseFilter(''),
  sort: undefined as SortState | undefined,
  logY: false,
  density: false,
};
const selection = new RowSelection();
/** Collapsible sections whose open state is remembered. */
const SECTION_IDS = ['totals-section', 'metadata-section', 'spectra-section'] as const;
const sectionsOpen: Record<string, boolean> = {};
/** Widths (CSS px) the user dragged columns to; the others follow the names and the pane. */
const userWidths: Partial<Record<ColumnId, number>> = {};
/** Width of one character of the monospaced name font, CSS px (0 until measured). */
let nameCharWidth = 0;

let table: VirtualTable | undefined;
let spectraView: SpectraView | undefined;
let theme: ThemeColors | undefined;
let plotFrame = 0;
let resortTimer: ReturnType<typeof setTimeout> | undefined;
let persistTimer: ReturnType<typeof setTimeout> | undefined;

function post(message: InspectorOutbound): void {
  vscodeApi.postMessage(message);
}

function persist(): void {
  if (persistTimer !== undefined) return;
  persistTimer = setTimeout(() => {
    persistTimer = undefined;
    vscodeApi.setState({
      file: state.file,
      filter: state.filterText,
      sort: state.sort,
      selected: selection.indices.slice(0, 1000),
      logY: state.logY,
      density: state.density,
      sections: sectionsOpen,
      widths: userWidths,
    });
  }, 200);
}

function isSettled(row: TensorRow): boolean {
  return row.stats !== undefined || row.error !== undefined || row.header.notDecoded !== undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering: header and summary

function setStatus(text: string): void {
  byId('status').textContent = text;
  document.body.dataset.state = state.phase;
}

function renderProgress(): void {
  const bar = byId('progress');
  const total = state.rows.length;
  if (state.phase === 'loading') {
    bar.hidden = true; // the empty state shows a progress ring

    setStatus(state.file === '' ? 'Opening…' : `Opening ${baseName(state.file)}…`);
    return;
  }
  if (state.phase === 'streaming') {
    bar.hidden = total === 0;
    bar.removeAttribute('indeterminate');
    bar.setAttribute('max', String(Math.max(1, total)));
    bar.setAttribute('value', String(state.settled));
    setStatus(`Computing statistics… ${state.settled} / ${total} tensors`);
    return;
  }
  bar.hidden = true;
  if (state.phase === 'done') {
    const failed = state.failedTensors > 0 ? `, ${state.failedTensors} failed` : '';
    const skipped = state.rows.filter((r) => r.header.notDecoded !== undefined).length;
    const notDecoded = skipped > 0 ? `, ${skipped} not decoded` : '';
    const took = state.seconds === undefined ? '' : ` in ${formatDuration(state.seconds)}`;
    setStatus(`Done: ${state.settled} / ${total} tensors${took}${failed}${notDecoded}`);
  }
}

function totalsRow(label: string, t: TotalsDto, allParams: number, title?: string): HTMLTableRowElement {
  const tr = el('tr');
  const name = el('td', {}, label);
  if (title !== undefined) name.title = title;
  tr.append(
    name,
    el('td', { class: 'num' }, formatInteger(t.tensors)),
    el('td', { class: 'num', title: formatInteger(t.params) }, formatCount(t.params)),
    el('td', { class: 'num' }, formatPercent(t.params, allParams)),
    el('td', { class: 'num', title: `${formatInteger(t.bytes)} bytes` }, formatBytes(t.bytes)),
  );
  const share = el('td', { class: 'bar-cell' });
  const bar = el('div', { class: 'share-bar' });
  bar.style.width = `${allParams > 0 ? Math.max(0.5, (t.params / allParams) * 100) : 0}%`;
  share.appendChild(bar);
  tr.appendChild(share);
  return tr;
}

function renderTotalsTable(
  tableEl: HTMLTableElement,
  first: string,
  entries: [string, TotalsDto, string?][],
  allParams: number,
): void {
  const thead = el('thead');
  const hr = el('tr');
  for (const [label, cls] of [
    [first, ''],
    ['Tensors', 'num'],
    ['Params', 'num'],
    ['Share', 'num'],
    ['Bytes', 'num'],
    ['', 'bar-cell'],
  ] as const) {
    hr.appendChild(el('th', cls === '' ? {} : { class: cls }, label));
  }
  thead.appendChild(hr);
  const tbody = el('tbody');
  entries.sort((a, b) => b[1].params - a[1].params || a[0].localeCompare(b[0]));
  for (const [label, totals, title] of entries) tbody.appendChild(totalsRow(label, totals, allParams, title));
  tableEl.replaceChildren(thead, tbody);
}

/** An artifact's description as sections (source, training, layers, report…), one small table each. */
function artifactSectionsElement(sections: readonly ArtifactSection[]): HTMLElement {
  const box = el('div', { class: 'artifact-sections', 'data-testid': 'artifact-sections' });
  for (const s of sections) {
    const t = el('table', { class: 'small-table metadata-table', 'data-testid': 'artifact-section' });
    const caption = el('caption', { class: 'artifact-section-title' }, s.title);
    const tbody = el('tbody');
    for (const [k, v] of s.rows) {
      const tr = el('tr');
      const td = el('td');
      td.appendChild(el('div', { class: 'meta-value' }, v));
      tr.append(el('th', { scope: 'row' }, k), td);
      tbody.appendChild(tr);
    }
    t.append(caption, tbody);
    box.appendChild(t);
  }
  return box;
}

function renderMetadata(metadata: CheckpointHeaderDto['metadata'], artifact?: ArtifactMetaSummary): void {
  const box = byId('metadata');
  const section = byId('metadata-section');
  const keys = Object.keys(metadata);
  // An artifact's description is shown as sections (read whole by the engine), not as its JSON.
  const sections = artifact === undefined ? [] : artifactSections(artifact);
  section.setAttribute('description', keys.length === 1 ? '1 entry' : `${keys.length} entries`);
  if (keys.length === 0) {
    box.replaceChildren(el('div', { class: 'muted' }, 'This checkpoint has no metadata.'));
    return;
  }
  const t = el('table', { class: 'small-table metadata-table' });
  const tbody = el('tbody');
  for (const key of keys.sort((a, b) => a.localeCompare(b))) {
    if (sections.length > 0 && key === ARTIFACT_METADATA_KEY) continue;
    const value = metadata[key];
    const tr = el('tr');
    const th = el('th', { scope: 'row' }, key);
    const td = el('td');
    const div = el(
      'div',
      { class: value === null || typeof value !== 'string' ? 'meta-value mono' : 'meta-value' },
      value === null ? 'null' : String(value),
    );
    td.appendChild(div);
    tr.append(th, td);
    tbody.appendChild(tr);
  }
  t.appendChild(tbody);
  box.replaceChildren(...(sections.length > 0 ? [artifactSectionsElement(sections)] : []), t);
}

/** A NeRN artifact (metadata key `weight_lens`) gets a banner with Decompress and Show Reconstruction. */
function renderArtifactBanner(header: CheckpointHeaderDto): void {
  // The engine reads an artifact's metadata whole (header.artifact); the metadata strings themselves are cut at 1 kB.
  const whole =
    header.artifact !== undefined && 'summary' in header.artifact
      ? { [ARTIFACT_METADATA_KEY]: header.artifact.summary }
      : header.metadata;
  const summary = artifactSummary(whole, header.fileBytes);
  byId('artifact').hidden = summary === undefined;
  byId('compress-button').hidden = summary !== undefined;
  if (summary !== undefined) byId('artifact-message').textContent = artifactBannerText(summary);
}

function renderHeader(header: CheckpointHeaderDto): void {
  byId('file-name').textContent = baseName(header.file);
  byId('file-name').title = header.file;
  const badge = byId('format-badge');
  badge.textContent = header.format;
  badge.hidden = false;
  byId('file-size').textContent = formatBytes(header.fileBytes);
  byId('description').textContent = header.description;
  byId('tensor-count').textContent = String(header.tensors.length);
  const counts = weightCounts(header.byDtype);
  const params = byId('param-count');
  params.textContent = formatCount(counts.float);
  params.title = `${formatInteger(counts.float)} float weights; ${formatInteger(header.totals.params)} values in all`;
  const other = byId('param-other');
  other.textContent = otherValuesText(counts);
  other.hidden = counts.otherTensors === 0;
  const bytes = byId('tensor-bytes');
  bytes.textContent = formatBytes(header.totals.bytes);
  bytes.title = `${formatInteger(header.totals.bytes)} bytes`;
  const fileBytes = byId('file-bytes');
  fileBytes.textContent = formatBytes(header.fileBytes);
  fileBytes.title = `${formatInteger(header.fileBytes)} bytes`;
  renderTotalsTable(
    tableById('by-dtype'),
    'DType',
    Object.entries(header.byDtype).map(([k, v]): [string, TotalsDto] => [k, v]),
    header.totals.params,
  );
  const kinds: [string, TotalsDto, string?][] = [];
  for (const [k, v] of Object.entries(header.byKind) as [LayerKind, TotalsDto | undefined][]) {
    if (v) kinds.push([KIND_LABELS[k], v, k]);
  }
  renderTotalsTable(tableById('by-kind'), 'Layer kind', kinds, header.totals.params);
  renderMetadata(
    header.metadata,
    header.artifact !== undefined && 'summary' in header.artifact ? header.artifact.summary : undefined,
  );
  renderArtifactBanner(header);
  byId('empty').hidden = true;
  byId('content').hidden = false;
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering: table rows

function td(cls: string, text: string, title?: string): HTMLTableCellElement {
  const cell = document.createElement('td');
  if (cls !== '') cell.className = cls;
  cell.textContent = text;
  if (title !== undefined) cell.title = title;
  return cell;
}

function statCell(value: number | null): HTMLTableCellElement {
  return td('num', formatStat(value), String(value));
}

function renderRow(tr: HTMLTableRowElement, index: number): void {
  const row = state.rows[index];
  if (!row) return;
  const h = row.header;
  const selected = selection.has(index);
  tr.classList.toggle('selected', selected);
  tr.classList.toggle('focused', selection.focus === index);
  tr.setAttribute('aria-selected', String(selected));
  const name = td('name', h.name, h.note === undefined ? h.name : `${h.name}\n${h.note}`);
  if (h.note !== undefined) name.classList.add('has-note');
  const cells: HTMLTableCellElement[] = [
    name,
    td('dtype mono', h.dtype),
    td('shape mono', formatShape(h.shape)),
    td('num', formatInteger(h.params)),
    td('num', formatBytes(h.bytes), `${formatInteger(h.bytes)} bytes`),
  ];
  const statColumns = COLUMNS.length - cells.length;
  const s = row.stats;
  if (h.notDecoded !== undefined) {
    const cell = td('not-decoded', `Not decoded: ${h.notDecoded}`, h.notDecoded);
    cell.colSpan = statColumns;
    cells.push(cell);
  } else if (row.error !== undefined) {
    const cell = td('row-error', `Failed: ${row.error}`, row.error);
    cell.colSpan = statColumns;
    cells.push(cell);
  } else if (s) {
    cells.push(statCell(s.mean), statCell(s.std), statCell(s.min), statCell(s.max));
    cells.push(td('num', formatPercent(s.zeros, h.params), `${formatInteger(s.zeros)} zeros`));
    cells.push(td(s.nonFinite > 0 ? 'num bad' : 'num', formatInteger(s.nonFinite)));
  } else if (state.phase === 'failed' || state.phase === 'done') {
    for (let i = 0; i < statColumns; i++) cells.push(td('num muted', '–', 'No statistics'));
  } else {
    for (let i = 0; i < statColumns; i++) {
      const cell = td('num pending', '');
      cell.appendChild(el('span', { class: 'placeholder', 'aria-label': 'pending' }));
      cells.push(cell);
    }
  }
  tr.replaceChildren(...cells);
}

/** Width of one character in a name cell's font, measured once the table is visible (8 px until then). */
function charWidth(): number {
  if (nameCharWidth > 0) return nameCharWidth;
  const probe = el('span', { class: 'name-probe' }, '0'.repeat(20));
  byId('table-scroll').appendChild(probe);
  const w = probe.getBoundingClientRect().width / 20;
  probe.remove();
  if (w > 0) nameCharWidth = w;
  return w > 0 ? w : 8;
}

/** Sizes the table's columns: the user's widths, a name column fitting the longest name and the pane. */
function layoutColumns(): void {
  if (!table) return;
  const scroll = byId('table-scroll');
  const names = state.rows.map((r) => r.header.name);
  table.setColumnWidths(
    columnWidths({ names, charWidth: charWidth(), containerWidth: scroll.clientWidth, user: userWidths }),
  );
}

function refreshView(keepScroll = true): void {
  if (!table) return;
  const filter: RowFilter = state.filter;
  const view = computeView(state.rows, filter, state.sort);
  const scroll = byId('table-scroll');
  const top = scroll.scrollTop;
  table.setSort(state.sort);
  table.setView(view);
  if (!keepScroll) scroll.scrollTop = 0;
  else scroll.scrollTop = top;
  const status = filterStatus(filter, view.length, state.rows.length);
  byId('shown-count').textContent = status.count;
  const field = byId('filter');
  const error = byId('filter-error');
  // The problem shows under the field, over the content, so the toolbar keeps its layout.
  error.textContent = status.error ?? '';
  error.hidden = status.error === undefined;
  if (status.error !== undefined) field.setAttribute('invalid', '');
  else field.removeAttribute('invalid');
  field.title = status.error ?? '';
}

function scheduleResort(): void {
  if (state.sort === undefined || !COLUMNS.some((c) => c.id === state.sort?.column && c.needsStats)) return;
  if (resortTimer !== undefined) return;
  resortTimer = setTimeout(() => {
    resortTimer = undefined;
    refreshView();
  }, 300);
}

function onSelectionChanged(): void {
  table?.refreshVisible();
  byId('clear-selection').hidden = selection.size === 0;
  schedulePlot();
  persist();
}

// ---------------------------------------------------------------------------------------------------------------
// Histogram plot and details

function schedulePlot(): void {
  if (plotFrame !== 0) return;
  plotFrame = requestAnimationFrame(() => {
    plotFrame = 0;
    renderPlot();
  });
}

function detailLine(label: string, value: string, title?: string): HTMLElement {
  const d = el('div', { class: 'detail' });
  const v = el('span', { class: 'detail-value' }, value);
  if (title !== undefined) v.title = title;
  d.append(el('span', { class: 'detail-label' }, label), v);
  return d;
}

function renderDetails(indices: number[]): void {
  const box = byId('details');
  if (indices.length !== 1) {
    box.replaceChildren();
    box.hidden = true;
    return;
  }
  const row = state.rows[indices[0] ?? -1];
  if (!row) return;
  const h = row.header;
  const s = row.stats;
  const items: HTMLElement[] = [
    detailLine('dtype', h.dtype),
    detailLine('shape', formatShape(h.shape)),
    detailLine('kind', h.kind),
    detailLine('params', formatInteger(h.params)),
    detailLine('bytes', formatBytes(h.bytes), `${formatInteger(h.bytes)} bytes`),
  ];
  if (s) {
    items.push(
      detailLine('mean', formatStat(s.mean), String(s.mean)),
      detailLine('std', formatStat(s.std), String(s.std)),
      detailLine('min', formatStat(s.min), String(s.min)),
      detailLine('max', formatStat(s.max), String(s.max)),
      detailLine('|max|', formatStat(s.absMax), String(s.absMax)),
      detailLine('L2', formatStat(s.l2), String(s.l2)),
      detailLine('zeros', `${formatInteger(s.zeros)} (${formatPercent(s.zeros, h.params)})`),
      detailLine('NaN/Inf', formatInteger(s.nonFinite)),
    );
  }
  if (h.note !== undefined) items.push(detailLine('note', h.note));
  if (h.notDecoded !== undefined) items.push(detailLine('not decoded', h.notDecoded));
  if (row.error !== undefined) items.push(detailLine('error', row.error));
  box.replaceChildren(...items);
  box.hidden = false;
}

function renderPlot(): void {
  const plotDiv = byId('histogram');
  const hint = byId('plot-hint');
  const title = byId('plot-title');
  const order = table?.order ?? [];
  const selectedSet = new Set(selection.indices);
  // Plot in the visible order, then any selected rows hidden by the filter.
  const visibleSelected = order.filter((i) => selectedSet.has(i));
  const hidden = selection.indices.filter((i) => !visibleSelected.includes(i));
  const indices = [...visibleSelected, ...hidden];
  renderDetails(indices);
  const series: HistogramSeries[] = [];
  const waiting: string[] = [];
  const unavailable: string[] = [];
  for (const i of indices) {
    const row = state.rows[i];
    if (!row) continue;
    const hist = state.histograms[i];
    if (hist && isPlottable(hist)) series.push({ name: row.header.name, histogram: hist });
    else if (row.header.notDecoded !== undefined)
      unavailable.push(`${row.header.name}: not decoded (${row.header.notDecoded})`);
    else if (row.error !== undefined) unavailable.push(`${row.header.name}: ${row.error}`);
    else if (row.stats !== undefined) unavailable.push(`${row.header.name}: no finite values to plot`);
    else waiting.push(row.header.name);
  }
  if (indices.length === 0) title.textContent = 'Histogram';
  else if (indices.length === 1) title.textContent = state.rows[indices[0] ?? -1]?.header.name ?? 'Histogram';
  else title.textContent = `${indices.length} tensors`;
  const notes: string[] = [];
  if (indices.length === 0) notes.push('Select a tensor to plot its histogram.');
  if (series.length > MAX_SERIES) notes.push(`Showing the first ${MAX_SERIES} of ${series.length} histograms.`);
  if (waiting.length > 0)
    notes.push(
      waiting.length === 1
        ? `Waiting for statistics of ${waiting[0] ?? ''}…`
        : `Waiting for statistics of ${waiting.length} tensors…`,
    );
  notes.push(...unavailable.slice(0, 5));
  if (unavailable.length > 5) notes.push(`… and ${unavailable.length - 5} more without a histogram.`);
  hint.textContent = notes.join('\n');
  hint.hidden = notes.length === 0;
  if (series.length === 0) {
    getPlotly()?.purge(plotDiv);
    plotDiv.classList.add('empty');
    return;
  }
  plotDiv.classList.remove('empty');
  theme ??= readTheme();
  const traces = buildTraces(series, { logY: state.logY, density: state.density }, theme.palette);
  const yValues = traces.flatMap((t) => t.y);
  const layout = histogramLayout(theme, {
    logY: state.logY,
    xTitle: 'value',
    yTitle: state.density ? 'density' : 'count',
    yValues,
  });
  layout.showlegend = traces.length > 1;
  layout.margin.t = traces.length > 1 ? 32 : 8;
  layout.uirevision = `${indices.join(',')}|${state.logY}|${state.density}`;
  const failed = (message: string): void => {
    hint.textContent = message;
    hint.hidden = false;
  };
  withPlotly(
    (plotly) => {
      plotly.react(plotDiv, traces, layout, PLOT_CONFIG).catch((e: unknown) => {
        failed(`Could not draw the histogram: ${e instanceof Error ? e.message : String(e)}`);
      });
    },
    () => {
      failed('The plotting library did not load.');
    },
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Errors and banners

function failureTitle(reason: FailureReason): string {
  switch (reason) {
    case 'badInput':
      return 'This file could not be read as a checkpoint.';
    case 'workerCrashed':
      return 'The Weight Lens engine stopped unexpectedly.';
    case 'cancelled':
      return 'Inspection was cancelled.';
    case 'internal':
      return 'Weight Lens hit an internal error.';
  }
}

function showFailure(reason: FailureReason, message: string): void {
  state.phase = 'failed';
  const banner = byId('error');
  banner.dataset.reason = reason;
  byId('error-title').textContent = failureTitle(reason);
  byId('error-message').textContent = message;
  byId('error-log').hidden = reason === 'badInput' || reason === 'cancelled';
  banner.hidden = false;
  banner.classList.toggle('prominent', state.header === undefined);
  byId('progress').hidden = true;
  setStatus(state.header === undefined ? 'Failed' : `Failed after ${state.settled} / ${state.rows.length} tensors`);
  if (state.header === undefined) {
    byId('empty-ring').hidden = true;
    byId('empty-text').textContent = '';
  }
  table?.refreshVisible();
  schedulePlot();
}

function hideBanners(): void {
  byId('error').hidden = true;
  byId('artifact').hidden = true;
  byId('changed').hidden = true;
}

// ---------------------------------------------------------------------------------------------------------------
// Message handling

function reset(file: string): void {
  state.file = file;
  state.header = undefined;
  state.rows = [];
  state.histograms = [];
  state.settled = 0;
  state.failedTensors = 0;
  state.seconds = undefined;
  state.phase = 'loading';
  hideBanners();
  byId('empty').hidden = false;
  byId('empty-ring').hidden = false;
  byId('empty-text').textContent = 'Reading the checkpoint header…';
  byId('content').hidden = true;
  byId('file-name').textContent = file === '' ? 'Weight Lens' : baseName(file);
  byId('format-badge').hidden = true;
  byId('file-size').textContent = '';
  byId('description').textContent = '';
  renderProgress();
}

function onHeader(header: CheckpointHeaderDto): void {
  const previousFile = state.file;
  reset(header.file);
  state.header = header;
  state.rows = header.tensors.map((t, index): TensorRow => ({ index, header: t }));
  state.histograms = new Array<HistogramDto | undefined>(header.tensors.length).fill(undefined);
  state.settled = state.rows.filter(isSettled).length;
  state.phase = state.settled === state.rows.length ? 'done' : 'streaming';
  renderHeader(header);
  layoutColumns();
  const saved = vscodeApi.getState();
  const n = state.rows.length;
  const keep = (i: number): boolean => i >= 0 && i < n;
  if (saved?.file === header.file && saved.selected.length > 0) selection.set(saved.selected.filter(keep));
  else if (previousFile === header.file && selection.size > 0) selection.retain(keep);
  else selection.clear();
  refreshView(false);
  if (selection.size === 0) {
    const first = (table?.order ?? []).find((i) => state.rows[i]?.header.notDecoded === undefined) ?? table?.order[0];
    if (first !== undefined) selection.set([first]);
  }
  onSelectionChanged();
  renderProgress();
  persist();
}

function applyUpdate(u: InspectorTensorUpdate): boolean {
  const row = state.rows[u.index];
  if (!row) return false;
  const wasSettled = isSettled(row);
  if (u.kind === 'inspect/tensorStats') {
    row.stats = u.stats;
    row.error = undefined;
    state.histograms[u.index] = u.histogram;
  } else {
    if (row.error === undefined) state.failedTensors++;
    row.error = u.message;
  }
  if (!wasSettled) state.settled++;
  table?.refreshRow(u.index);
  return selection.has(u.index);
}

function onUpdates(updates: readonly InspectorTensorUpdate[]): void {
  let touchesSelection = false;
  for (const u of updates) if (applyUpdate(u)) touchesSelection = true;
  if (touchesSelection) schedulePlot();
  scheduleResort();
  if (state.phase === 'streaming') renderProgress();
}

function onMessage(msg: InspectorInbound): void {
  if (msg.kind.startsWith('spectra/')) {
    spectraView?.onMessage(msg as InspectorSpectraInbound);
    return;
  }
  switch (msg.kind) {
    case 'inspector/loading':
      spectraView?.reset();
      reset(msg.file);
      break;
    case 'inspect/header':
      onHeader(msg.header);
      break;
    case 'inspect/tensorStats':
    case 'inspect/tensorError':
      onUpdates([msg]);
      break;
    case 'inspector/batch':
      onUpdates(msg.updates);
      break;
    case 'inspect/done':
      state.phase = 'done';
      state.seconds = msg.seconds;
      if (resortTimer !== undefined) {
        clearTimeout(resortTimer);
        resortTimer = undefined;
      }
      if (state.sort !== undefined) refreshView();
      else table?.refreshVisible();
      renderProgress();
      schedulePlot();
      break;
    case 'inspect/failed':
      showFailure(msg.reason, msg.message);
      break;
    case 'inspector/fileChanged':
      byId('changed-message').textContent = msg.deleted
        ? 'The file was deleted or moved on disk; the view shows it as it was.'
        : 'The file changed on disk since it was opened.';
      byId('changed').hidden = false;
      break;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Wiring

function isMac(): boolean {
  return /Macintosh|Mac OS X|iPhone|iPad/.test(navigator.userAgent);
}

function onTableKey(e: KeyboardEvent): void {
  if (!table) return;
  const view = table.order;
  let delta: number | undefined;
  switch (e.key) {
    case 'ArrowDown':
      delta = 1;
      break;
    case 'ArrowUp':
      delta = -1;
      break;
    case 'PageDown':
      delta = table.pageRows;
      break;
    case 'PageUp':
      delta = -table.pageRows;
      break;
    case 'Home':
      delta = -view.length;
      break;
    case 'End':
      delta = view.length;
      break;
    case 'Escape':
      selection.clear();
      onSelectionChanged();
      e.preventDefault();
      return;
    case 'a':
      if (e.ctrlKey || e.metaKey) {
        selection.set([...view]);
        onSelectionChanged();
        e.preventDefault();
      }
      return;
    default:
      return;
  }
  e.preventDefault();
  const target = selection.move(view, delta, e.shiftKey);
  if (target !== undefined) table.scrollToIndex(target);
  onSelectionChanged();
}

function readToggle(target: EventTarget | null): boolean {
  return (target as { checked?: unknown } | null)?.checked === true;
}

function wire(): void {
  const scroll = byId('table-scroll');
  table = new VirtualTable({
    container: scroll,
    columns: COLUMNS,
    widths: { ...DEFAULT_COLUMN_WIDTHS },
    renderRow,
    onColumnResize: (column, width) => {
      userWidths[column] = width;
      persist();
    },
    onColumnReset: (column) => {
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- a record keyed by column id
      delete userWidths[column];
      layoutColumns();
      persist();
    },
    onHeaderClick: (column) => {
      state.sort = nextSort(state.sort, column);
      refreshView();
      persist();
    },
    onRowClick: (index, event) => {
      const toggle = isMac() ? event.metaKey : event.ctrlKey;
      selection.click(index, table?.order ?? [], { toggle, range: event.shiftKey });
      if (event.shiftKey) window.getSelection()?.removeAllRanges();
      scroll.focus({ preventScroll: true });
      onSelectionChanged();
    },
  });
  scroll.addEventListener('keydown', onTableKey);
  new ResizeObserver(() => {
    if (userWidths.name === undefined) layoutColumns();
  }).observe(scroll);

  let filterTimer: ReturnType<typeof setTimeout> | undefined;
  const filterField = byId('filter');
  filterField.addEventListener('input', (e) => {
    const value = (e.target as { value?: unknown } | null)?.value;
    state.filterText = typeof value === 'string' ? value : '';
    if (filterTimer !== undefined) clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      state.filter = parseFilter(state.filterText);
      refreshView(false);
      schedulePlot();
      persist();
    }, 120);
  });

  byId('logy').addEventListener('change', (e) => {
    state.logY = readToggle(e.target);
    schedulePlot();
    persist();
  });
  byId('density').addEventListener('change', (e) => {
    state.density = readToggle(e.target);
    schedulePlot();
    persist();
  });
  byId('clear-selection').addEventListener('click', () => {
    selection.clear();
    onSelectionChanged();
  });
  const reload = (): void => {
    post({ kind: 'inspector/reload' });
  };
  byId('error-reload').addEventListener('click', reload);
  byId('changed-reload').addEventListener('click', reload);
  byId('error-log').addEventListener('click', () => {
    post({ kind: 'inspector/command', command: 'weightLens.showLog' });
  });
  const commandButtons: [string, string][] = [
    ['compress-button', 'weightLens.compressCheckpoint'],
    ['artifact-decompress', 'weightLens.decompressArtifact'],
    ['artifact-reconstruction', 'weightLens.showReconstruction'],
  ];
  for (const [id, command] of commandButtons) {
    byId(id).addEventListener('click', () => {
      post({ kind: 'inspector/command', command });
    });
  }

  // Theme changes: VS Code swaps the body class (vscode-light / vscode-dark / vscode-high-contrast…) and rewrites
  // the CSS variables in the <html> element's style.
  const themeObserver = new MutationObserver(() => {
    theme = readTheme();
    schedulePlot();
  });
  themeObserver.observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-kind'] });
  themeObserver.observe(document.documentElement, { attributes: true, attributeFilter: ['style'] });

  // Keep the plot sized to its pane (the split handle and the editor both resize it).
  const plotDiv = byId('histogram');
  new ResizeObserver(() => {
    const plotly = getPlotly();
    if (plotly && !plotDiv.classList.contains('empty') && plotDiv.childElementCount > 0) plotly.Plots.resize(plotDiv);
  }).observe(plotDiv);

  window.addEventListener('message', (event: MessageEvent<unknown>) => {
    const data = event.data;
    // The Inspector's own messages, and the inspection's stream.
    if (hasKind(data) && /^(inspect|inspector|spectra)\//.test(data.kind)) onMessage(data as InspectorInbound);
  });
}

function restoreUiState(): void {
  const saved = vscodeApi.getState();
  if (!saved) return;
  state.file = saved.file;
  state.filterText = saved.filter;
  state.filter = parseFilter(saved.filter);
  state.sort = saved.sort;
  state.logY = saved.logY;
  state.density = saved.density;
  if (saved.filter !== '') byId('filter').setAttribute('value', saved.filter);
  if (saved.logY) byId('logy').setAttribute('checked', '');
  if (saved.density) byId('density').setAttribute('checked', '');
  Object.assign(sectionsOpen, saved.sections ?? {});
  Object.assign(userWidths, saved.widths ?? {});
}

/**
 * Opens the totals section by default only when the window is tall enough to leave the table and the histogram room
 * (it is closed on most screens; the user's choice is remembered).
 */
function initSections(): void {
  for (const id of SECTION_IDS) {
    const section = byId(id);
    const open = sectionsOpen[id] ?? (id === 'totals-section' && window.innerHeight >= 1100);
    if (open) section.setAttribute('open', '');
    else section.removeAttribute('open');
    section.addEventListener('vsc-collapsible-toggle', () => {
      sectionsOpen[id] = (section as { open?: unknown }).open === true;
      persist();
    });
  }
}

function main(): void {
  const root = document.getElementById('app') ?? document.body;
  buildSkeleton(root);
  restoreUiState();
  initSections();
  wire();
  spectraView = new SpectraView((start) => {
    post({ kind: start ? 'inspector/spectra' : 'inspector/spectraCancel' });
  });
  reset(root.dataset.file ?? state.file);
  performance.mark('weight-lens:skeleton');
  post({ kind: 'inspector/ready' });
}

main();
