// The Distillation panel's state and shaping: the snapshot fold shared by host and webview (status, losses, held-out
// evaluations, drift, the final report, thinning), the Reconstruction panel's evaluation events, and the plot and
// table data of both (loss and held-out curves, drift bars, before/best/after rows, the confusion heatmap).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type {
  DistillEvalDto,
  DistillReportDto,
  EvalMetricsDto,
  EvalReportDto,
} from '../../../../src/protocol/evaluate';
import { DEFAULT_DISTILL_OPTIONS } from '../../../../src/protocol/defaults';
import {
  applyDistillationEvent,
  applyReconstructionEvent,
  emptyDistillationSnapshot,
  emptySnapshot,
  MAX_EVAL_POINTS,
  pushEval,
  type DistillationSnapshot,
  type ModelEvalState,
} from '../../../../src/protocol/panels';
import {
  changedSamples,
  confusionTraces,
  distillLossTraces,
  driftTrace,
  evalRows,
  formatFraction,
  formatHeadline,
  formatPsnr,
  formatRelativeError,
  heldOutTraces,
  metricKind,
  metricsRows,
} from '../../../../webview/lib/runPlots';

const metrics = (accuracy: number, n = 16): EvalMetricsDto => ({
  n,
  accuracy,
  agreement: accuracy,
  relativeError: 1 - accuracy,
});
const progress = (step: number, loss: number, kl: number) => ({
  step,
  steps: 3,
  loss,
  kl,
  feature: 0,
  reconstruction: 0.1,
  lr: 3e-5,
  stepsPerSecond: 2,
});

function report(): DistillReportDto {
  return {
    artifact: '/x/r.nern.safetensors',
    model: '/m/net.onnx',
    data: '/d/t10k-images-idx3-ubyte.gz',
    teacher: '/m/net.onnx',
    out: '/x/r.distilled.nern.safetensors',
    options: { ...DEFAULT_DISTILL_OPTIONS, steps: 3, batchSize: 8, evalSamples: 16 },
    before: metrics(0.125),
    best: { step: 3, metrics: metrics(0.5) },
    after: metrics(0.5),
    teacherAccuracy: 0.9375,
    drift: [
      { name: 'conv1', drift: 0.01 },
      { name: 'conv2', drift: 0.02 },
    ],
    boundLayers: 2,
    unboundLayers: 0,
    lossCurve: [
      [1, 3],
      [2, 2.5],
      [3, 2],
    ],
    preprocess: { layout: 'NCHW' },
    preprocessSource: 'default',
    backend: 'wasm',
    durationMs: 1234,
  };
}

function fresh(): DistillationSnapshot {
  return emptyDistillationSnapshot({
    artifact: '/x/r.nern.safetensors',
    model: '/m/net.onnx',
    data: '/d/t10k',
    out: '/x/r.distilled.nern.safetensors',
  });
}

void test('a distillation snapshot folds status, progress, evaluations, drift and the report', () => {
  const s = fresh();
  assert.equal(s.status, 'starting');
  assert.equal('teacher' in s, false);
  applyDistillationEvent(s, { kind: 'distill/status', message: 'Loading the model…' });
  assert.equal(s.phase, 'Loading the model…');
  applyDistillationEvent(s, { kind: 'distill/eval', evaluation: { step: 0, metrics: metrics(0.125) } });
  applyDistillationEvent(s, { kind: 'distill/drift', drift: [{ name: 'conv1', drift: 0 }] });
  assert.equal(s.status, 'starting');
  applyDistillationEvent(s, { kind: 'distill/progress', progress: progress(1, 3, 2.9) });
  applyDistillationEvent(s, { kind: 'distill/progress', progress: progress(2, NaN, 2.4) });
  applyDistillationEvent(s, { kind: 'distill/progress', progress: progress(3, 2, 1.9) });
  assert.equal(s.status, 'running');
  assert.deepEqual(
    s.loss,
    [
      [1, 3],
      [3, 2],
    ],
    'non-finite losses are not plotted',
  );
  assert.deepEqual(s.kl, [
    [1, 2.9],
    [2, 2.4],
    [3, 1.9],
  ]);
  applyDistillationEvent(s, { kind: 'distill/eval', evaluation: { step: 3, metrics: metrics(0.5) } });
  applyDistillationEvent(s, { kind: 'distill/done', report: report() });
  assert.equal(s.status, 'done');
  assert.equal(s.report?.after.accuracy, 0.5);
  assert.equal(s.phase, undefined);
  assert.deepEqual(
    s.drift.map((d) => d.name),
    ['conv1', 'conv2'],
  );
  assert.deepEqual(
    s.evals.map((e) => e.step),
    [0, 3],
  );
  // After the end, late events change nothing.
  applyDistillationEvent(s, { kind: 'distill/progress', progress: progress(4, 1, 1) });
  applyDistillationEvent(s, { kind: 'distill/ended', status: 'cancelled', reason: 'cancelled', message: 'Cancelled.' });
  assert.equal(s.status, 'done');
  assert.equal(s.loss.length, 2);
  // The snapshot survives the trip to the webview (structured clone / JSON).
  assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
});

void test('a report alone fills an empty snapshot (a panel that missed the stream)', () => {
  const s = applyDistillationEvent(fresh(), { kind: 'distill/done', report: report() });
  assert.deepEqual(s.loss, [
    [1, 3],
    [2, 2.5],
    [3, 2],
  ]);
  assert.deepEqual(
    s.evals.map((e) => [e.step, e.metrics.accuracy]),
    [
      [0, 0.125],
      [3, 0.5],
    ],
  );
  assert.equal(s.options?.steps, 3);
});

void test('failures and cancellation end a run with their reason', () => {
  const s = applyDistillationEvent(fresh(), {
    kind: 'distill/ended',
    status: 'failed',
    reason: 'badInput',
    message: 'The model has no input.',
  });
  assert.equal(s.status, 'failed');
  assert.equal(s.reason, 'badInput');
  assert.equal(s.message, 'The model has no input.');
});

void test('held-out evaluations are bounded and keep the phase-1 point', () => {
  const evals: DistillEvalDto[] = [];
  for (let step = 0; step <= 3 * MAX_EVAL_POINTS; step++)
    pushEval(evals, { step, metrics: metrics(step / (3 * MAX_EVAL_POINTS)) });
  assert.ok(evals.length <= MAX_EVAL_POINTS);
  assert.equal(evals[0]?.step, 0);
  assert.equal(evals[evals.length - 1]?.step, 3 * MAX_EVAL_POINTS);
  for (let i = 1; i < evals.length; i++)
    assert.ok((evals[i]?.step ?? 0) > (evals[i - 1]?.step ?? 0), 'steps stay increasing');
  pushEval(evals, { step: 3 * MAX_EVAL_POINTS, metrics: metrics(1) });
  assert.equal(evals[evals.length - 1]?.metrics.accuracy, 1, 'a repeated step replaces the last point');
});

void test('the Reconstruction snapshot folds an evaluation run', () => {
  const s = emptySnapshot('/src/net.pt', '/x/r.nern.safetensors');
  const state = (): ModelEvalState | undefined => s.modelEval;
  applyReconstructionEvent(s, { kind: 'eval/progress', done: 1, total: 2 });
  assert.equal(state(), undefined, 'progress without a run is ignored');
  applyReconstructionEvent(s, { kind: 'eval/started', model: '/m/net.onnx', data: '/d/t10k' });
  applyReconstructionEvent(s, { kind: 'eval/progress', done: 16, total: 32 });
  assert.deepEqual(state(), { status: 'running', model: '/m/net.onnx', data: '/d/t10k', done: 16, total: 32 });
  const r = {
    model: '/m/net.onnx',
    data: '/d/t10k',
    classifier: true,
    candidate: metrics(0.1, 32),
    originalAccuracy: 0.9,
  } as unknown as EvalReportDto;
  applyReconstructionEvent(s, { kind: 'eval/done', report: r });
  assert.equal(state()?.status, 'done');
  assert.equal(state()?.done, 32);
  assert.equal(state()?.report, r);
  applyReconstructionEvent(s, { kind: 'eval/started', model: '/m/net.onnx', data: '/d/other' });
  assert.equal(state()?.report, undefined, 'a new run replaces the old result');
  applyReconstructionEvent(s, { kind: 'eval/ended', status: 'cancelled', reason: 'cancelled', message: 'Cancelled.' });
  assert.deepEqual(state(), { status: 'cancelled', model: '/m/net.onnx', data: '/d/other', message: 'Cancelled.' });
  assert.equal(s.status, 'planning', 'the compression status is untouched');
});

void test('metric formatting and kinds', () => {
  assert.equal(metricKind(metrics(0.5)), 'accuracy');
  assert.equal(metricKind({ n: 1, agreement: 1, psnr: 30, relativeError: 0.1 }), 'psnr');
  assert.equal(metricKind({ n: 1, agreement: 0.5, relativeError: 0.1 }), 'agreement');
  assert.equal(formatFraction(0.9375), '93.75 %');
  assert.equal(formatFraction(undefined), '–');
  assert.equal(formatPsnr(31.204), '31.20 dB');
  assert.equal(formatPsnr(Infinity), '∞ dB');
  assert.equal(formatRelativeError(1.0886), '1.09');
  assert.equal(formatRelativeError(0.00231), '2.31e-3');
  assert.equal(formatHeadline({ n: 1, agreement: 1, psnr: 30, relativeError: 0.1 }), '30.00 dB');
});

void test('curves: total and KL loss, held-out accuracy and agreement or PSNR, drift bars', () => {
  const loss = distillLossTraces(
    [
      [1, 3],
      [2, 0],
      [3, 2],
    ],
    [[1, 2.9]],
    { total: 'blue', kl: 'orange' },
  );
  assert.deepEqual(
    loss.map((t) => [t.name, t.x, t.y]),
    [
      ['total', [1, 3], [3, 2]],
      ['KL', [1], [2.9]],
    ],
  );
  assert.deepEqual(distillLossTraces([], [], { total: 'b', kl: 'o' }), []);
  const held = heldOutTraces(
    [
      { step: 0, metrics: metrics(0.125) },
      { step: 3, metrics: metrics(0.5) },
    ],
    { metric: 'g', agreement: 'p' },
  );
  assert.equal(held.yTitle, '%');
  assert.deepEqual(
    held.traces.map((t) => [t.name, t.x, t.y]),
    [
      ['accuracy', [0, 3], [12.5, 50]],
      ['agreement', [0, 3], [12.5, 50]],
    ],
  );
  const psnr = heldOutTraces([{ step: 0, metrics: { n: 2, agreement: 1, psnr: 28, relativeError: 0.1 } }], {
    metric: 'g',
    agreement: 'p',
  });
  assert.equal(psnr.yTitle, 'PSNR (dB)');
  assert.deepEqual(
    psnr.traces.map((t) => t.name),
    ['PSNR'],
  );
  assert.deepEqual(heldOutTraces([], { metric: 'g', agreement: 'p' }).traces, []);
  const bars = driftTrace(
    [
      { name: 'a', drift: 0.01 },
      { name: 'b', drift: 0.2 },
    ],
    'red',
    1,
  );
  assert.deepEqual([bars.x, bars.y], [[1], ['a']]);
});

void test('the before / best / after table', () => {
  assert.deepEqual(metricsRows({ evals: [], report: undefined }).rows, []);
  const live = metricsRows({ evals: [{ step: 0, metrics: metrics(0.125) }], report: undefined });
  assert.deepEqual(
    live.rows.map((r) => [r.id, r.headline]),
    [['before', '12.50 %']],
  );
  const done = metricsRows({ evals: [], report: report() });
  assert.equal(done.headline, 'accuracy');
  assert.deepEqual(
    done.rows.map((r) => [r.id, r.label, r.headline, r.agreement, r.samples]),
    [
      ['before', 'phase 1 (reconstruction)', '12.50 %', '12.50 %', '16'],
      ['best', 'best (step 3)', '50.00 %', '50.00 %', '16'],
      ['after', 'after distillation', '50.00 %', '50.00 %', '16'],
    ],
  );
});

void test('evaluation rows and the confusion heatmap of changed classes', () => {
  const confusion = [
    [5, 1, 0],
    [0, 3, 2],
    [0, 0, 4],
  ];
  assert.equal(changedSamples(confusion), 3);
  const [same, changed] = confusionTraces(confusion, ['cat', 'dog', 'cow'], {
    same: 'grey',
    changedLow: 'orange',
    changedHigh: 'red',
    text: 'white',
  });
  assert.ok(same !== undefined && changed !== undefined);
  assert.deepEqual(same.x, ['0: cat', '1: dog', '2: cow']);
  assert.deepEqual(same.z, [
    [5, null, null],
    [null, 3, null],
    [null, null, 4],
  ]);
  assert.deepEqual(changed.z, [
    [null, 1, null],
    [null, null, 2],
    [null, null, null],
  ]);
  assert.equal(changed.zmax, 2);
  assert.equal(changed.showscale, true);
  // The translucent diagonal writes its counts in the theme's foreground (plotly's own pick is dark on dark themes).
  assert.deepEqual(same.textfont, { color: 'white' });
  assert.equal(changed.textfont, undefined, "opaque cells keep plotly's contrasting text colour");
  const unnamed = confusionTraces(
    [
      [2, 0],
      [0, 2],
    ],
    ['only one name'],
    { same: 'g', changedLow: 'o', changedHigh: 'r', text: 'w' },
  );
  assert.deepEqual(unnamed[0]?.y, ['0', '1']);
  assert.equal(unnamed[1]?.showscale, false, 'no colour bar when nothing changed');
  assert.deepEqual(confusionTraces([], undefined, { same: 'g', changedLow: 'o', changedHigh: 'r', text: 'w' }), []);
  const rows = evalRows({
    classifier: true,
    originalAccuracy: 0.9375,
    candidate: { n: 32, accuracy: 0.09375, agreement: 0.09375, relativeError: 1.1151 },
  } as unknown as EvalReportDto);
  assert.deepEqual(
    rows.map((r) => [r.id, r.accuracy, r.agreement, r.relativeError]),
    [
      ['original', '93.75 %', '100.00 %', '0'],
      ['reconstructed', '9.38 %', '9.38 %', '1.12'],
    ],
  );
  const sr = evalRows({
    classifier: false,
    candidate: { n: 4, agreement: 1, psnr: 31.2, relativeError: 0.012 },
  } as unknown as EvalReportDto);
  assert.deepEqual(
    sr.map((r) => r.psnr),
    ['∞ dB', '31.20 dB'],
  );
});
