// Pure shaping for the compression panels: worst-first layer bars, kernel mosaics and differences, loss traces,
// budget shares, the size/error curve, the height of bar lists (layers, drift), the snapshot reducer shared by host
// and webview, and artifact metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BudgetPlanDto, CompressReportDto, LayerDetailDto } from '../../../../src/protocol/compress';
import { PANEL_LOSS_POINTS } from '../../../../src/protocol/defaults';
import { applyReconstructionEvent, emptySnapshot, pushLoss } from '../../../../src/protocol/panels';
import { artifactBannerText, artifactSummary } from '../../../../webview/lib/artifactMeta';
import {
  absMax,
  ARTIFACT_PART_LABELS,
  artifactParts,
  BAR_LIST_MAX_ROWS,
  barListHeight,
  kernelDifference,
  kernelHeatmaps,
  layerErrorTrace,
  lossTrace,
  shareRows,
  storageNote,
  tileKernels,
  tradeoffTrace,
  worstFirst,
} from '../../../../webview/lib/compressPlots';

const layer = (name: string, relativeError: number) => ({
  name,
  shape: [4, 2, 3, 3],
  params: 72,
  rmse: relativeError / 10,
  relativeError,
});

void test('layers are ordered worst first and the selected bar is highlighted', () => {
  const layers = [layer('a', 0.1), layer('b', 0.5), layer('c', 0.1)];
  assert.deepEqual(
    worstFirst(layers).map((l) => l.name),
    ['b', 'a', 'c'],
  );
  assert.deepEqual(
    layers.map((l) => l.name),
    ['a', 'b', 'c'],
    'input untouched',
  );
  const t = layerErrorTrace(layers, 'a', { normal: 'N', highlight: 'H' }, 2);
  assert.equal(t.orientation, 'h');
  assert.deepEqual(t.y, ['b', 'a']);
  assert.deepEqual(t.x, [50, 10]);
  assert.deepEqual(t.marker.color, ['N', 'H']);
});

void test('kernels tile into a near-square mosaic with null gaps', () => {
  const k = (v: number) => new Array<number>(9).fill(v);
  const z = tileKernels([k(1), k(2), k(3), k(4)], 3, 3);
  assert.equal(z.length, 7);
  assert.equal(z[0]!.length, 7);
  assert.equal(z[0]![0], 1);
  assert.equal(z[0]![3], null);
  assert.equal(z[0]![4], 2);
  assert.equal(z[4]![0], 3);
  assert.equal(z[6]![6], 4);
  assert.equal(z[3]![3], null);
  // 1×1 kernels: a grid without gaps.
  const ones = tileKernels([[1], [2], [3]], 1, 1);
  assert.deepEqual(ones, [
    [1, 2],
    [3, null],
  ]);
  assert.deepEqual(tileKernels([], 3, 3), []);
});

void test('difference maps are symmetric around zero', () => {
  const original = [
    [1, -2],
    [0.5, 0],
  ];
  const reconstructed = [
    [1.5, -2],
    [0, 0.25],
  ];
  assert.deepEqual(kernelDifference(original, reconstructed), [
    [0.5, 0],
    [-0.5, 0.25],
  ]);
  assert.equal(
    absMax([
      [null, -3],
      [2, Number.NaN],
    ]),
    3,
  );
  const detail: LayerDetailDto = {
    name: 'conv',
    original: { edges: [0, 1], counts: [1] },
    reconstructed: { edges: [0, 1], counts: [1] },
    filter: { index: 0, kh: 1, kw: 2, original, reconstructed },
  };
  const maps = kernelHeatmaps(detail);
  assert.equal(maps.range, 2);
  // Original, reconstructed and difference are drawn alike: one colour scale, one range, no colour bar taking the
  // width of some of them, and the same mosaic shape.
  for (const m of [maps.original, maps.reconstructed, maps.difference]) {
    assert.equal(m.zmin, -2);
    assert.equal(m.zmax, 2);
    assert.deepEqual(m.colorscale, maps.original.colorscale);
    assert.equal(m.showscale, false);
    assert.equal(m.z.length, maps.original.z.length);
    assert.equal(m.z[0]?.length, maps.original.z[0]?.length);
  }
});

void test('loss traces drop non-positive and non-finite samples', () => {
  const t = lossTrace(
    [
      [1, 0.5],
      [2, 0],
      [3, Number.NaN],
      [4, 0.1],
    ],
    '#fff',
  );
  assert.deepEqual(t.x, [1, 4]);
  assert.deepEqual(t.y, [0.5, 0.1]);
});

const plan: BudgetPlanDto = {
  hidden: 16,
  predictorParams: 1000,
  representedParams: 4000,
  verbatimParams: 1000,
  fractionOfRepresented: 0.25,
  artifactBytes: 9000,
  sourceBytes: 20000,
  represented: [{ name: 'conv', shape: [4], params: 4000 }],
  verbatim: [{ name: 'bias', shape: [1000], params: 1000, reason: 'bias' }],
};

void test('budget shares and artifact parts add up', () => {
  const rows = shareRows(plan);
  assert.equal(rows[0]!.share, 0.8);
  assert.equal(rows[1]!.share, 0.2);
  assert.equal(rows[1]!.tensors, 1);
  const parts = artifactParts(plan);
  assert.equal(parts.predictor, 4000);
  assert.equal(parts.verbatim, 4000);
  assert.equal(parts.predictor + parts.verbatim + parts.other, 9000);
  // With the planner's byte breakdown (an int4 predictor): its stored bytes, not 4 per parameter.
  const bytes = { predictor: 700, permutations: 300, scales: 8, verbatim: 4000, metadata: 992, total: 6000 };
  const stored = artifactParts({ ...plan, artifactBytes: 6000, bytes, predictorDtype: 'int4' });
  assert.deepEqual(stored, { predictor: 700, verbatim: 4000, other: 1300 });
  // Against a written size (the Budget panel's measured run), the rest is what the file holds besides the two.
  assert.equal(artifactParts({ ...plan, artifactBytes: 5900, bytes }).other, 1200);
  // The Budget panel says which dtypes the planned bytes are for.
  assert.equal(
    storageNote(plan),
    'Planned with the predictor stored as f32 and the verbatim tensors in their own dtypes.',
  );
  assert.equal(
    storageNote({ predictorDtype: 'int4', verbatimDtype: 'int8' }),
    'Planned with the predictor stored as int4 and the verbatim tensors as int8.',
  );
});

void test('the trade-off curve is sorted by predictor fraction', () => {
  const run = (fraction: number, rmse: number, finishedAt: number) => ({
    source: 's',
    artifact: 'a',
    hidden: 8,
    fraction,
    rmse,
    ratio: 2,
    artifactBytes: 1,
    steps: 10,
    permutation: 'none' as const,
    finishedAt,
  });
  const t = tradeoffTrace([run(0.5, 0.01, 1), run(0.25, 0.02, 2), run(0.75, Number.NaN, 3)], '#000');
  assert.deepEqual(t.x, [25, 50]);
  assert.deepEqual(t.y, [0.02, 0.01]);
});

void test('bar lists grow with their rows within bounds', () => {
  assert.equal(barListHeight(0), 160);
  assert.equal(barListHeight(10), 220);
  assert.equal(barListHeight(25), 490);
  assert.equal(barListHeight(BAR_LIST_MAX_ROWS * 5), 520);
  const many = Array.from({ length: BAR_LIST_MAX_ROWS + 5 }, (_, i) => layer(`l${i}`, i));
  assert.equal(layerErrorTrace(many, undefined, { normal: '#00f', highlight: '#f80' }).y.length, BAR_LIST_MAX_ROWS);
});

void test('the snapshot reducer follows a run and keeps the latest detail per layer', () => {
  const s = emptySnapshot('/m.pt', '/m.nern.safetensors');
  assert.equal(s.status, 'planning');
  applyReconstructionEvent(s, {
    kind: 'compress/progress',
    progress: { step: 10, steps: 100, round: 1, loss: 0.5, lr: 1e-3, stepsPerSecond: 20, backend: 'wasm' },
  });
  assert.equal(s.status, 'running');
  assert.deepEqual(s.loss, [[10, 0.5]]);
  const detail = (name: string, index: number): LayerDetailDto => ({
    name,
    original: { edges: [0, 1], counts: [1] },
    reconstructed: { edges: [0, 1], counts: [1] },
    filter: { index, kh: 1, kw: 1, original: [[1]], reconstructed: [[1]] },
  });
  const evaluation = (d: LayerDetailDto) => ({
    step: 10,
    rmse: 0.1,
    weightRms: 1,
    layers: [layer('a', 0.2)],
    detail: d,
  });
  applyReconstructionEvent(s, { kind: 'compress/evaluation', evaluation: evaluation(detail('a', 0)) });
  applyReconstructionEvent(s, { kind: 'compress/evaluation', evaluation: evaluation(detail('b', 0)) });
  applyReconstructionEvent(s, { kind: 'compress/evaluation', evaluation: evaluation(detail('a', 3)) });
  assert.deepEqual(
    s.details.map((d) => `${d.name}${d.filter.index}`),
    ['b0', 'a3'],
  );
  const report = { artifact: '/out.nern.safetensors', lossCurve: [] } as unknown as CompressReportDto;
  applyReconstructionEvent(s, { kind: 'compress/done', report });
  assert.equal(s.status, 'done');
  assert.equal(s.artifact, '/out.nern.safetensors');
  assert.equal(s.loss.length, 1, 'the streamed loss is kept');
  applyReconstructionEvent(s, {
    kind: 'compress/ended',
    status: 'failed',
    reason: 'badInput',
    message: 'no convolutions',
  });
  assert.equal(s.message, 'no convolutions');
});

void test('loss samples stay bounded and keep the newest', () => {
  const loss: [number, number][] = [];
  for (let i = 1; i <= PANEL_LOSS_POINTS * 3; i++) pushLoss(loss, i, 1 / i);
  assert.ok(loss.length <= PANEL_LOSS_POINTS);
  assert.deepEqual(loss[loss.length - 1], [PANEL_LOSS_POINTS * 3, 1 / (PANEL_LOSS_POINTS * 3)]);
  for (let i = 1; i < loss.length; i++) assert.ok(loss[i]![0] > loss[i - 1]![0], 'steps ascend');
  pushLoss(loss, PANEL_LOSS_POINTS * 3, 7);
  assert.equal(loss[loss.length - 1]![1], 7, 'a repeated step replaces its sample');
});

void test('artifact metadata: the schema the engine writes, a parsed object, partial and broken documents', () => {
  assert.equal(artifactSummary({ format: 'pt' }), undefined);
  const meta = {
    format: 'weight-lens-nern',
    version: 1,
    source: { name: 'resnet20.pt', format: 'pytorch', bytes: 1000, sha256: 'ab' },
    training: {
      hidden: 32,
      steps: 40,
      seed: 0,
      optimizer: 'adam',
      permutation: 'crossfilter',
      backend: 'wasm',
      rounds: 1,
      roundWidthScale: 1,
      roundWidths: [32],
      batchSize: 4096,
      dense: false,
    },
    report: {
      predictorParams: 1,
      representedParams: 2,
      verbatimParams: 3,
      rmse: 0.01,
      weightRms: 0.03,
      layers: [],
      lossCurve: [],
    },
  };
  const engine = artifactSummary({ weight_lens: JSON.stringify(meta) }, 250);
  assert.deepEqual(engine, {
    source: 'resnet20.pt',
    sourceBytes: 1000,
    ratio: 4,
    hidden: 32,
    steps: 40,
    rmse: 0.01,
    permutation: 'crossfilter',
  });
  assert.ok(engine);
  assert.equal(
    artifactBannerText(engine),
    'NeRN artifact: compressed from resnet20.pt, ratio 4.00×, h = 32, 40 steps, crossfilter permutation, RMSE 0.0100',
  );
  // A distilled artifact says so; a reader that already parsed the JSON passes an object.
  const distilled = artifactSummary({
    weight_lens: {
      ...meta,
      distillation: {
        settings: { steps: 200 },
        model: 'm.onnx',
        data: 'd',
        teacher: 'm.onnx',
        before: {},
        after: {},
        from: 'a',
      },
    },
  });
  assert.equal(distilled?.distilledSteps, 200);
  // Keys the writer never produces are not guessed at; wrong types are left out; broken JSON gives nothing.
  assert.deepEqual(
    artifactSummary({
      weight_lens: JSON.stringify({ source: 'resnet.pt', ratio: 3.456, width: 48, settings: { hidden: 48 } }),
    }),
    {},
  );
  assert.deepEqual(
    artifactSummary({ weight_lens: JSON.stringify({ source: { name: 7 }, training: { hidden: '32' } }) }),
    {},
  );
  assert.deepEqual(artifactSummary({ weight_lens: '{not json' }), {});
  assert.equal(artifactBannerText({}), 'NeRN artifact: compressed checkpoint');
});

void test('the part of the artifact that is neither predictor nor verbatim is named and explained', () => {
  assert.notEqual(ARTIFACT_PART_LABELS.other, 'metadata');
  assert.ok(ARTIFACT_PART_LABELS.otherNote.startsWith(`${ARTIFACT_PART_LABELS.other}: `));
  assert.match(
    ARTIFACT_PART_LABELS.otherNote,
    /JSON description \(layer map, training settings and, unless the artifact is lean, the loss curve/,
  );
  assert.match(ARTIFACT_PART_LABELS.otherNote, /kernel order/);
});
