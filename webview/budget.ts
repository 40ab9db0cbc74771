/**
 * The Budget panel's webview: where the bytes of a compressed checkpoint go. Original bytes against the artifact
 * (predictor, verbatim tensors, the rest), represented vs verbatim tensors with their parameter shares (table and
 * stacked bar), the ratio, the verbatim tensors with the reason each is kept, and the size/error trade-off across the
 * runs done on this source (RMSE against predictor size), and the method comparison (Compare methods…: score against
 * file size, one line per method, the Pareto front marked, the user's own runs as points; a click opens the
 * artifact). Receives one `BudgetViewDto` at a time.
 */
import { hasKind } from '../src/protocol/common';
import type { BudgetInbound, BudgetOutbound, BudgetViewDto, MethodComparisonDto } from '../src/protocol/panels';
import { describeSweepStage, type SweepRowDto } from '../src/protocol/sweep';
import { COMPRESS_METHODS } from '../src/protocol/vocabulary';
import { ARTIFACT_PART_LABELS, artifactParts, shareRows, storageNote, tradeoffTrace } from './lib/compressPlots';
import { byId, el, fillKeyValueTable, tableHead, vscodeApi } from './lib/dom';
import { baseName, formatBytes, formatCount, formatInteger, formatPercent, formatShape } from './lib/format';
import { drawPlot, observeTheme } from './lib/panelPage';
import { histogramLayout, readTheme, type ThemeColors } from './lib/plotly';
import { byteAxisTicks } from './lib/plotLayout';

const api = vscodeApi<BudgetOutbound, undefined>();
let view: BudgetViewDto | undefined;
let theme: ThemeColors | undefined;
/** Whether the comparison last drawn was running: the methods pane is scrolled into view once when one starts. */
let comparing = false;

function buildSkeleton(root: HTMLElement): void {
  root.innerHTML = `
    <header class="top">
      <div class="title-row"><h1 id="title" class="file-name">Budget</h1><span class="spacer-flex"></span>
        <vscode-button id="compare" data-testid="budget-compare">Compare methods…</vscode-button>
        <vscode-button id="cancel-compare" secondary hidden>Stop comparing</vscode-button>
        <vscode-button id="clear-runs" secondary hidden>Forget runs</vscode-button></div>
      <div id="subtitle" class="muted description">Compress a checkpoint to see where its bytes go.</div>
    </header>
    <div class="cards">
      <div class="card"><div class="card-value" id="card-ratio" data-testid="budget-ratio">–</div><div class="card-label">ratio</div></div>
      <div class="card"><div class="card-value" id="card-source">–</div><div class="card-label">original</div></div>
      <div class="card"><div class="card-value" id="card-artifact">–</div><div class="card-label" id="card-artifact-label">artifact (est.)</div></div>
      <div class="card"><div class="card-value" id="card-hidden">–</div><div class="card-label">predictor width</div></div>
    </div>
    <div class="panel-grid">
      <section class="pane">
        <div class="pane-title">Bytes: original vs compressed</div>
        <div id="bytes-plot" data-testid="budget-bytes" class="plot"></div>
        <div id="bytes-note" data-testid="budget-bytes-note" class="muted small-note"></div>
      </section>
      <section class="pane">
        <div class="pane-title">Parameters: represented vs verbatim</div>
        <div id="share-plot" class="plot short"></div>
        <table id="share-table" data-testid="budget-shares" class="small-table fit-table"></table>
      </section>
      <section class="pane">
        <div class="pane-title">Size / error trade-off <span class="muted">(runs on this checkpoint)</span></div>
        <div class="plot-box">
          <div id="tradeoff-plot" data-testid="budget-tradeoff" class="plot"></div>
          <div id="tradeoff-hint" class="plot-hint">Each finished compression of this checkpoint adds a point.</div>
        </div>
      </section>
      <section class="pane" id="methods-pane">
        <div class="pane-title">Methods: score against file size <span class="muted" id="methods-status" data-testid="budget-methods-status"></span>
          <span class="spacer-flex"></span><vscode-button id="methods-stop" data-testid="budget-methods-stop" secondary hidden>Stop</vscode-button></div>
        <div class="plot-box">
          <div id="methods-plot" data-testid="budget-methods" class="plot"></div>
          <div id="methods-hint" class="plot-hint">Compare methods… compresses this checkpoint with NeRN and the
            baselines (int8, int4, low rank, pruning) at several sizes, and scores each artifact on your model and data.</div>
        </div>
        <div class="report-layers"><table id="methods-table" data-testid="budget-methods-table" class="small-table layers-table fit-table"></table></div>
      </section>
      <section class="pane">
        <div class="pane-title">Tensors stored verbatim</div>
        <div class="report-layers"><table id="verbatim-table" data-testid="budget-verbatim" class="small-table layers-table fit-table"></table></div>
      </section>
    </div>`;
}

/** The score of a row as shown: accuracy in %, or PSNR in dB. */
function scoreText(row: SweepRowDto, metric: 'accuracy' | 'psnr'): string {
  return metric === 'accuracy' ? `${(100 * row.score).toFixed(2)} %` : `${row.score.toFixed(2)} dB`;
}

/** The change of a row's score as shown (accuracy: points). */
function changeText(row: SweepRowDto): string {
  if (row.change === undefined) return '–';
  const points = 100 * row.change;
  return `${points >= 0 ? '+' : '−'}${Math.abs(points).toFixed(2)}`;
}

/** A row's label in the table and tooltips: method, size asked for, distilled. */
function rowLabel(row: SweepRowDto): string {
  const size = row.size !== undefined ? ` ${Math.round(row.size * 1000) / 10} %` : '';
  return `${row.own === true ? 'your run' : row.method}${size}${row.distilled ? ' distilled' : ''}`;
}

function renderComparison(c: MethodComparisonDto | undefined, colors: (i: number) => string, t: ThemeColors): void {
  const running = c !== undefined && c.report === undefined && c.stopped === undefined;
  byId('compare').hidden = running;
  byId('cancel-compare').hidden = !running;
  byId('methods-stop').hidden = !running;
  // The pane is below the fold of a narrow column: show the comparison the user just started.
  if (running && !comparing) byId('methods-pane').scrollIntoView({ block: 'start' });
  comparing = running;
  const status = byId('methods-status');
  const p = c?.progress;
  status.textContent =
    c === undefined
      ? ''
      : c.stopped !== undefined
        ? `(${c.stopped})`
        : running
          ? p === undefined
            ? '(starting…)'
            : p.run === 0
              ? `(${describeSweepStage(p)}, then ${p.runs} runs)`
              : `(run ${p.run} of ${p.runs}: ${describeSweepStage(p)})`
          : `(${c.rows.length} runs, ${c.report?.samples ?? 0} samples${c.report?.original !== undefined ? `; original ${(100 * c.report.original).toFixed(2)} %` : ''})`;
  const rows = c?.rows ?? [];
  byId('methods-hint').hidden = rows.length > 0;
  const metric = c?.report?.metric ?? (rows.some((r) => r.change !== undefined) ? 'accuracy' : 'psnr');
  const scale = metric === 'accuracy' ? 100 : 1;
  const unit = metric === 'accuracy' ? ' %' : ' dB';
  // In the order of the vocabulary, each method in its own colour whichever runs finished first.
  const methods = COMPRESS_METHODS.filter((m) => rows.some((r) => r.method === m && r.own !== true));
  const traces: object[] = methods.map((m) => {
    const i = COMPRESS_METHODS.indexOf(m);
    const mine = rows.filter((r) => r.method === m && r.own !== true).sort((a, b) => a.bytes - b.bytes);
    return {
      type: 'scatter',
      mode: 'lines+markers',
      name: m,
      x: mine.map((r) => r.bytes),
      y: mine.map((r) => r.score * scale),
      customdata: mine.map((r) => r.artifact),
      text: mine.map((r) => `${rowLabel(r)}${r.pareto ? ' · on the front' : ''}<br>${formatBytes(r.bytes)}`),
      marker: {
        color: colors(i),
        size: mine.map((r) => (r.pareto ? 11 : 7)),
        symbol: mine.map((r) => (r.pareto ? 'star' : 'circle')),
      },
      line: { color: colors(i) },
      hovertemplate: `%{text} · %{y:.2f}${unit}<extra></extra>`,
    };
  });
  const own = rows.filter((r) => r.own === true);
  if (own.length > 0)
    traces.push({
      type: 'scatter',
      mode: 'markers',
      name: 'your runs',
      x: own.map((r) => r.bytes),
      y: own.map((r) => r.score * scale),
      customdata: own.map((r) => r.artifact),
      text: own.map((r) => `${baseName(r.artifact)}<br>${formatBytes(r.bytes)}`),
      marker: { color: t.foreground, size: 9, symbol: 'diamond-open' },
      hovertemplate: `%{text} · %{y:.2f}${unit}<extra></extra>`,
    });
  const original = c?.report?.original;
  const base = histogramLayout(t, {
    logY: false,
    xTitle: 'artifact size',
    yTitle: metric === 'accuracy' ? 'accuracy (%)' : 'output PSNR (dB)',
  });
  drawPlot(
    byId('methods-plot'),
    traces,
    {
      ...base,
      barmode: undefined,
      showlegend: true,
      xaxis: {
        ...base.xaxis,
        type: 'log',
        ...byteAxisTicks(
          rows.map((r) => r.bytes),
          true,
        ),
      },
      shapes:
        original === undefined
          ? []
          : [
              {
                type: 'line',
                xref: 'paper',
                x0: 0,
                x1: 1,
                y0: original * 100,
                y1: original * 100,
                line: { dash: 'dot', width: 1, color: t.grid },
              },
            ],
    },
    (point) => {
      if (typeof point.customdata === 'string')
        api.postMessage({ kind: 'budget/openArtifact', artifact: point.customdata });
    },
  );
  const table = byId('methods-table');
  if (rows.length === 0) {
    table.replaceChildren();
    return;
  }
  const head = tableHead([
    ['Run', 'col-name'],
    ['Size', 'num col-bytes'],
    ['Of file', 'num col-of'],
    [metric === 'accuracy' ? 'Accuracy' : 'PSNR', 'num col-score'],
    ['Change', 'num col-change'],
    ['Time', 'num col-time'],
    ['Front', 'col-front'],
  ]);
  const body = el('tbody');
  for (const r of [...rows].sort((a, b) => a.bytes - b.bytes)) {
    const tr = el('tr', { class: 'clickable', title: r.artifact });
    tr.append(
      el('td', { class: 'name', title: rowLabel(r) }, rowLabel(r)),
      el('td', { class: 'num' }, formatBytes(r.bytes)),
      el('td', { class: 'num col-of' }, `${(100 * r.fractionOfSource).toFixed(1)} %`),
      el('td', { class: 'num' }, scoreText(r, metric)),
      el('td', { class: 'num' }, changeText(r)),
      el('td', { class: 'num col-time' }, r.own === true ? '–' : `${r.seconds.toFixed(1)} s`),
      el('td', { class: 'col-front' }, r.pareto ? '★' : ''),
    );
    tr.addEventListener('click', () => {
      api.postMessage({ kind: 'budget/openArtifact', artifact: r.artifact });
    });
    body.appendChild(tr);
  }
  table.replaceChildren(head, body);
}

function render(): void {
  const v = view;
  if (v === undefined) return;
  theme ??= readTheme();
  const palette = theme.palette;
  const c = (i: number): string => palette[i % palette.length] ?? '#3794ff';
  byId('title').textContent = `Budget: ${baseName(v.source)}`;
  byId('title').title = v.source;
  byId('clear-runs').hidden = v.runs.length === 0;
  const plan = v.plan;
  byId('subtitle').textContent =
    plan === undefined
      ? 'No plan yet: compress this checkpoint to see where its bytes go.'
      : `Predictor of ${formatInteger(plan.predictorParams)} parameters (${formatPercent(plan.predictorParams, plan.representedParams)} of the ${formatCount(plan.representedParams)} represented weights).`;
  // A finished run with this plan's width gives the real artifact size; otherwise show the plan's estimate.
  const measured = plan === undefined ? undefined : [...v.runs].reverse().find((r) => r.hidden === plan.hidden);
  const artifactBytes = measured?.artifactBytes ?? plan?.artifactBytes;
  byId('card-ratio').textContent =
    measured !== undefined
      ? `${measured.ratio.toFixed(2)}×`
      : plan === undefined || plan.artifactBytes <= 0
        ? '–'
        : `${(plan.sourceBytes / plan.artifactBytes).toFixed(2)}×`;
  byId('card-source').textContent = plan === undefined ? '–' : formatBytes(plan.sourceBytes);
  byId('card-artifact').textContent = artifactBytes === undefined ? '–' : formatBytes(artifactBytes);
  byId('card-artifact-label').textContent = measured !== undefined ? 'artifact' : 'artifact (est.)';
  byId('card-hidden').textContent = plan === undefined ? '–' : String(plan.hidden);

  const base = histogramLayout(theme, { logY: false, xTitle: 'size', yTitle: '' });
  if (plan !== undefined) {
    const parts = artifactParts(measured === undefined ? plan : { ...plan, artifactBytes: measured.artifactBytes });
    const y = ['original', 'compressed'];
    const bar = (name: string, xs: [number, number], color: string): object => ({
      type: 'bar',
      orientation: 'h',
      name,
      x: xs,
      y,
      marker: { color },
      hovertemplate: `${name}: %{text}<extra></extra>`,
      text: xs.map((b) => formatBytes(b)),
      textposition: 'none',
    });
    drawPlot(
      byId('bytes-plot'),
      [
        bar('original checkpoint', [plan.sourceBytes, 0], c(4)),
        bar(ARTIFACT_PART_LABELS.predictor, [0, parts.predictor], c(0)),
        bar(ARTIFACT_PART_LABELS.verbatim, [0, parts.verbatim], c(1)),
        bar(ARTIFACT_PART_LABELS.other, [0, parts.other], c(3)),
      ],
      {
        ...base,
        barmode: 'stack',
        showlegend: true,
        margin: { l: 8, r: 16, t: 28, b: 40 },
        yaxis: { ...base.yaxis, title: undefined, type: 'category', automargin: true },
        xaxis: {
          ...base.xaxis,
          ...byteAxisTicks([plan.sourceBytes, parts.predictor + parts.verbatim + parts.other], false),
        },
      },
    );
    byId('bytes-note').textContent =
      `${ARTIFACT_PART_LABELS.otherNote} Here ${formatBytes(parts.other)}, ${formatPercent(parts.other, parts.predictor + parts.verbatim + parts.other)} of the artifact. ${storageNote(plan)}`;
    const rows = shareRows(plan);
    drawPlot(
      byId('share-plot'),
      rows.map((r, i) => ({
        type: 'bar',
        orientation: 'h',
        name: r.label,
        x: [r.share * 100],
        y: ['params'],
        marker: { color: c(i) },
        hovertemplate: `${r.label}: %{x:.3g} %<extra></extra>`,
      })),
      {
        ...base,
        barmode: 'stack',
        showlegend: true,
        margin: { l: 8, r: 16, t: 28, b: 32 },
        xaxis: { ...base.xaxis, title: { text: 'share of parameters (%)' }, range: [0, 100] },
        yaxis: { ...base.yaxis, title: undefined, type: 'category', showticklabels: false },
      },
    );
    const table = byId('share-table');
    const thead = tableHead([
      ['', ''],
      ['Tensors', 'num col-num'],
      ['Params', 'num col-num'],
      ['Share', 'num col-share'],
    ]);
    const tbody = el('tbody');
    for (const r of rows) {
      const tr = el('tr');
      tr.append(
        el('td', { class: 'wrap' }, r.label),
        el('td', { class: 'num' }, formatInteger(r.tensors)),
        el('td', { class: 'num' }, formatCount(r.params)),
        el('td', { class: 'num wrap' }, formatPercent(r.share, 1)),
      );
      tbody.appendChild(tr);
    }
    const predictor = el('tr');
    predictor.append(
      el('td', { class: 'wrap' }, 'Predictor'),
      el('td', { class: 'num' }, '–'),
      el('td', { class: 'num' }, formatCount(plan.predictorParams)),
      el('td', { class: 'num wrap' }, `${formatPercent(plan.predictorParams, plan.representedParams)} of repr.`),
    );
    tbody.appendChild(predictor);
    table.replaceChildren(thead, tbody);
    const vt = byId('verbatim-table');
    if (plan.verbatim.length === 0) {
      fillKeyValueTable(vt, [['Every tensor is represented by the predictor.', '']]);
    } else {
      const head = tableHead([
        ['Tensor', 'col-name'],
        ['Shape', 'col-shape'],
        ['Params', 'num col-num'],
        ['Why verbatim', 'col-reason'],
      ]);
      const body = el('tbody');
      for (const t of [...plan.verbatim].sort((a, b) => b.params - a.params).slice(0, 500)) {
        const tr = el('tr');
        tr.append(
          el('td', { class: 'name', title: t.name }, t.name),
          el('td', { class: 'mono', title: formatShape(t.shape) }, formatShape(t.shape)),
          el('td', { class: 'num' }, formatInteger(t.params)),
          el('td', { class: 'muted wrap' }, t.reason),
        );
        body.appendChild(tr);
      }
      vt.replaceChildren(head, body);
    }
  }
  renderComparison(v.comparison, c, theme);
  const trace = tradeoffTrace(v.runs, c(2));
  byId('tradeoff-hint').hidden = trace.x.length > 0;
  drawPlot(byId('tradeoff-plot'), trace.x.length > 0 ? [trace] : [], {
    ...histogramLayout(theme, {
      logY: true,
      xTitle: 'predictor size (% of represented weights)',
      yTitle: 'RMSE',
      yValues: trace.y,
    }),
    showlegend: false,
    barmode: undefined,
  });
}

function main(): void {
  document.body.classList.add('panel');
  const root = document.getElementById('app') ?? document.body;
  buildSkeleton(root);
  performance.mark('weight-lens:skeleton');
  byId('clear-runs').addEventListener('click', () => {
    if (view !== undefined) api.postMessage({ kind: 'budget/clearRuns', source: view.source });
  });
  byId('compare').addEventListener('click', () => {
    if (view !== undefined) api.postMessage({ kind: 'budget/compare', source: view.source });
  });
  for (const id of ['cancel-compare', 'methods-stop'])
    byId(id).addEventListener('click', () => {
      if (view !== undefined) api.postMessage({ kind: 'budget/cancelCompare', source: view.source });
    });
  window.addEventListener('message', (event: MessageEvent<unknown>) => {
    const data = event.data;
    if (!hasKind(data) || data.kind !== 'budget/show') return;
    view = (data as BudgetInbound).view;
    render();
  });
  observeTheme(() => {
    theme = readTheme();
    render();
  });
  api.postMessage({ kind: 'budget/ready' });
}

main();
