/**
 * The Distillation panel's webview: follows one distillation run live (total and KL loss on a log axis, the held-out
 * metric over steps with agreement, per-layer drift from the phase-1 reconstruction) and, once done, the before /
 * best / after metrics table with the teacher's accuracy and the written artifact (Reveal, Open in Reconstruction
 * panel). It folds host messages into a `DistillationSnapshot` (the host re-sends the whole snapshot when the webview
 * reloads) and redraws at most once per animation frame. Only summaries arrive here, never weight arrays.
 */
import {
  applyDistillationEvent,
  emptyDistillationSnapshot,
  type DistillationCommand,
  type DistillationInbound,
  type DistillationOutbound,
  type DistillationSnapshot,
} from '../src/protocol/panels';
import { barListHeight } from './lib/compressPlots';
import { byId, el, fillKeyValueTable, tableHead, vscodeApi } from './lib/dom';
import { baseName, formatInteger, formatDuration, formatEta, formatStat } from './lib/format';
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
import {
  distillLossTraces,
  driftTrace,
  formatFraction,
  formatHeadline,
  heldOutTraces,
  metricsRows,
} from './lib/runPlots';

const api = vscodeApi<DistillationOutbound, undefined>();

let snapshot: DistillationSnapshot = emptyDistillationSnapshot({ artifact: '', model: '', data: '', out: '' });
const page = new RunPanelPage(render);

function buildSkeleton(root: HTMLElement): void {
  const buttons = `
        <vscode-button id="cmd-stop" data-testid="cmd-stop" hidden title="End training after the step under way, evaluate the predictor so far and write it as an artifact marked as stopped early">Stop and Save</vscode-button>
        <vscode-button id="cmd-cancel" data-testid="cmd-cancel" secondary hidden>Cancel</vscode-button>
        <vscode-button id="cmd-reconstruction" data-testid="cmd-reconstruction" secondary hidden>Open in Reconstruction panel</vscode-button>
        <vscode-button id="cmd-reveal" data-testid="cmd-reveal" hidden>Reveal</vscode-button>`;
  const subtitle = `
      <div id="subtitle" data-testid="subtitle" class="muted description"></div>`;
  root.innerHTML = `${runHeaderHtml('Distillation', buttons, subtitle)}
    <div class="cards">
      <div class="card"><div class="card-value" id="card-step">–</div><div class="card-label">step</div></div>
      <div class="card"><div class="card-value" id="card-loss">–</div><div class="card-label">loss</div></div>
      <div class="card"><div class="card-value" id="card-kl">–</div><div class="card-label">KL</div></div>
      <div class="card"><div class="card-value" id="card-metric" data-testid="card-metric">–</div><div class="card-label" id="card-metric-label">held-out</div></div>
      <div class="card"><div class="card-value" id="card-agreement">–</div><div class="card-label">agreement</div></div>
      <div class="card"><div class="card-value" id="card-speed">–</div><div class="card-label">steps / s</div></div>
    </div>
    <div class="panel-grid">
      <section class="pane">
        <div class="pane-title">Loss <span class="muted">(log scale; total and KL)</span></div>
        <div class="plot-box">
          <div id="loss-curve" data-testid="loss-curve" class="plot"></div>
          <div id="loss-hint" class="plot-hint">The loss curves appear with the first steps.</div>
        </div>
      </section>
      <section class="pane">
        <div class="pane-title">Held-out metric <span id="heldout-note" class="muted">over steps</span></div>
        <div class="plot-box">
          <div id="heldout-curve" data-testid="heldout-curve" class="plot"></div>
          <div id="heldout-hint" class="plot-hint">The held-out metric appears after the phase-1 evaluation.</div>
        </div>
      </section>
      <section class="pane">
        <div class="pane-title">Drift per layer <span class="muted">RMS change from phase 1 / RMS of the layer</span>
          <span class="spacer-flex"></span><span id="drift-count" data-testid="drift-count" class="muted">0 layers</span></div>
        <div class="plot-box">
          <div id="drift-bars" data-testid="drift-bars" class="plot tall"></div>
          <div id="drift-hint" class="plot-hint">Drift appears with the held-out evaluations.</div>
        </div>
      </section>
      <section class="pane">
        <div class="pane-title">Held-out metrics</div>
        <table id="metrics" data-testid="metrics" class="small-table layers-table"></table>
        <div id="teacher-accuracy" data-testid="teacher-accuracy" class="muted"></div>
        <table id="summary" class="small-table kv-table"></table>
        <div class="pane-title">Output artifact</div>
        <div id="artifact-out" data-testid="artifact-out" class="mono" style="word-break: break-all"></div>
      </section>
    </div>`;
}

function post(message: DistillationOutbound): void {
  api.postMessage(message);
}

function statusText(s: DistillationSnapshot): string {
  const p = s.progress;
  switch (s.status) {
    case 'starting':
      return s.phase ?? 'Starting the engine…';
    case 'running': {
      if (p === undefined) return s.phase ?? 'Distilling…';
      const eta = formatEta(p.step, p.steps, p.stepsPerSecond);
      const on = p.engineLabel !== undefined ? ` · on ${p.engineLabel}` : '';
      return `Distilling: step ${formatInteger(p.step)} / ${formatInteger(p.steps)}${eta === '' ? '' : ` · ${eta}`}${on}${p.step >= p.steps && s.phase !== undefined ? ` · ${s.phase}` : ''}`;
    }
    case 'done': {
      const r = s.report;
      if (r === undefined) return 'Done.';
      const steps = r.stoppedEarly?.step ?? r.options.steps;
      const stopped =
        r.stoppedEarly === undefined
          ? ''
          : ` (stopped early at step ${formatInteger(r.stoppedEarly.step)} of ${formatInteger(r.stoppedEarly.steps)})`;
      // The steps ran on r.engineLabel (onnxruntime on a device, or tfjs), the held-out evaluations on the model's
      // engine; each with the reason it is not the one asked for (the same words as the CLI's report).
      const trainedOn = r.engineLabel ?? `tfjs (${r.backend})`;
      const why = r.engineReason !== undefined ? ` (${r.engineReason})` : '';
      const reason = r.evalEngineReason !== undefined ? ` (${r.evalEngineReason})` : '';
      const evals = ` · held-out evaluations on ${r.evalEngine ?? 'tfjs'}${reason}`;
      return `Done: ${formatInteger(steps)} steps in ${formatDuration(r.durationMs / 1000)} on ${trainedOn}${why}${stopped}${evals}`;
    }
    case 'failed':
      return 'Failed.';
    case 'cancelled':
      return 'Cancelled.';
  }
}

function renderHeader(): void {
  const s = snapshot;
  const live = s.status === 'running' || s.status === 'starting';
  renderRunHeader({
    title: s.artifact === '' ? 'Distillation' : `Distilling ${baseName(s.artifact)}`,
    tooltip: s.artifact,
    status: s.status,
    statusText: statusText(s),
    message: s.message,
  });
  const teacher = s.teacher === undefined ? 'the model on its original weights' : baseName(s.teacher);
  byId('subtitle').textContent =
    s.model === '' ? '' : `${baseName(s.model)} on ${baseName(s.data)} · teacher: ${teacher}`;
  byId('subtitle').title = [s.model, s.data, s.teacher ?? ''].filter((x) => x !== '').join('\n');
  const p = s.progress;
  setProgressBar(
    byId('progress'),
    live,
    p !== undefined && s.status === 'running' && p.step < p.steps
      ? { value: p.step, max: Math.max(1, p.steps) }
      : undefined,
  );
  byId('cmd-cancel').hidden = !live;
  byId('cmd-stop').hidden = s.status !== 'running';
  const written = s.status === 'done';
  byId('cmd-reveal').hidden = !written;
  byId('cmd-reconstruction').hidden = !written;

  setCard('card-step', p === undefined ? '–' : `${formatInteger(p.step)} / ${formatInteger(p.steps)}`);
  setCard('card-loss', p === undefined ? '–' : formatStat(p.loss), p === undefined ? undefined : String(p.loss));
  setCard('card-kl', p === undefined ? '–' : formatStat(p.kl), p === undefined ? undefined : String(p.kl));
  const last = s.report?.after ?? s.evals[s.evals.length - 1]?.metrics;
  setCard('card-metric', last === undefined ? '–' : formatHeadline(last));
  byId('card-metric-label').textContent =
    last === undefined
      ? 'held-out'
      : last.accuracy !== undefined
        ? 'held-out accuracy'
        : last.psnr !== undefined
          ? 'held-out PSNR'
          : 'held-out agreement';
  setCard('card-agreement', last === undefined ? '–' : formatFraction(last.agreement));
  setCard('card-speed', p === undefined ? '–' : p.stepsPerSecond.toFixed(p.stepsPerSecond < 10 ? 2 : 0));
}

function renderLoss(): void {
  const traces = distillLossTraces(snapshot.loss, snapshot.kl, { total: page.color(0), kl: page.color(1) });
  byId('loss-hint').hidden = traces.length > 0;
  const yValues = traces.flatMap((t) => t.y);
  drawPlot(byId('loss-curve'), traces, {
    ...histogramLayout(page.theme, { logY: true, xTitle: 'step', yTitle: 'loss', yValues }),
    barmode: undefined,
    uirevision: 'loss',
  });
}

function renderHeldOut(): void {
  const { traces, yTitle } = heldOutTraces(snapshot.evals, { metric: page.color(2), agreement: page.color(3) });
  byId('heldout-hint').hidden = traces.length > 0;
  const first = snapshot.evals[0]?.metrics;
  byId('heldout-note').textContent =
    first === undefined ? 'over steps' : `${first.n.toLocaleString('en-US')} samples, over steps`;
  drawPlot(byId('heldout-curve'), traces, {
    ...histogramLayout(page.theme, { logY: false, xTitle: 'step', yTitle }),
    barmode: undefined,
    uirevision: 'heldout',
  });
}

function renderDrift(): void {
  const drift = snapshot.drift;
  byId('drift-count').textContent = drift.length === 1 ? '1 layer' : `${drift.length} layers`;
  byId('drift-hint').hidden = drift.length > 0;
  const div = byId('drift-bars');
  div.style.height = `${barListHeight(drift.length)}px`;
  drawPlot(
    div,
    drift.length > 0 ? [driftTrace(drift, page.color(0))] : [],
    barListLayout(page.theme, 'drift (%)', 'drift'),
  );
}

function renderMetrics(): void {
  const s = snapshot;
  const { headline, rows } = metricsRows(s);
  const table = byId('metrics');
  if (rows.length === 0) {
    const tbody = el('tbody');
    const tr = el('tr');
    tr.appendChild(el('td', { class: 'muted' }, 'The phase-1 metrics appear after the first held-out evaluation.'));
    tbody.appendChild(tr);
    table.replaceChildren(tbody);
  } else {
    const thead = tableHead([
      ['held out', ''],
      [headline, 'num'],
      ['agreement', 'num'],
      ['rel. error', 'num'],
      ['samples', 'num'],
    ]);
    const tbody = el('tbody');
    for (const r of rows) {
      const tr = el('tr', { id: `metrics-${r.id}`, 'data-testid': `metrics-${r.id}` });
      tr.append(
        el('td', {}, r.label),
        el('td', { class: 'num', 'data-testid': `metrics-${r.id}-headline` }, r.headline),
        el('td', { class: 'num' }, r.agreement),
        el('td', { class: 'num' }, r.relativeError),
        el('td', { class: 'num' }, r.samples),
      );
      tbody.appendChild(tr);
    }
    table.replaceChildren(thead, tbody);
  }
  const r = s.report;
  byId('teacher-accuracy').textContent =
    r?.teacherAccuracy === undefined
      ? ''
      : `Teacher accuracy on the same held-out samples: ${formatFraction(r.teacherAccuracy)}`;
  const o = r?.options ?? s.options;
  const facts: [string, string][] = [];
  if (o !== undefined) {
    facts.push(['Steps', `${formatInteger(o.steps)} · batch ${o.batchSize} · lr ${formatStat(o.lr)}`]);
    facts.push([
      'Loss',
      `KL ×${o.klWeight} (T = ${o.temperature}) · feature ×${o.featureWeight} · reconstruction ×${o.reconstructionWeight}`,
    ]);
  }
  if (r !== undefined)
    facts.push([
      'Layers',
      `${r.boundLayers} represented layers used by the model${r.unboundLayers > 0 ? `, ${r.unboundLayers} not` : ''}`,
    ]);
  fillKeyValueTable(byId('summary'), facts, false);
  const out = byId('artifact-out');
  out.textContent =
    s.out === ''
      ? ''
      : s.status === 'done'
        ? s.out
        : `${s.out} (${s.status === 'running' || s.status === 'starting' ? 'written when done' : 'not written'})`;
  out.title = s.out;
}

function render(): void {
  renderHeader();
  renderLoss();
  renderHeldOut();
  renderDrift();
  renderMetrics();
}

function onMessage(msg: DistillationInbound): void {
  if (msg.kind === 'distillation/snapshot') snapshot = msg.snapshot;
  else applyDistillationEvent(snapshot, msg);
  page.schedule();
}

function wire(): void {
  const commands: [string, DistillationCommand][] = [
    ['cmd-cancel', 'cancel'],
    ['cmd-stop', 'stopAndSave'],
    ['cmd-reveal', 'revealArtifact'],
    ['cmd-reconstruction', 'openReconstruction'],
  ];
  wireCommands(commands, (command) => {
    post({ kind: 'distillation/command', command });
  });
}

page.start<DistillationInbound>({
  build: buildSkeleton,
  wire,
  prefixes: ['distillation/', 'distill/'],
  onMessage,
  ready: () => {
    post({ kind: 'distillation/ready' });
  },
});
