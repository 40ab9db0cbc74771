// The pure part of "Compress Checkpoint…": settings, options, artifact paths, input parsing, texts, and the run
// history kept in globalState.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunHistory, HISTORY_KEY, MAX_RUNS_PER_SOURCE } from '../../../../src/extension/compress/compressHistory';
import {
  numberedArtifactPath,
  buildOptions,
  describePlan,
  doneMessage,
  fractionLabel,
  relativePercent,
  parseSize,
  parseSteps,
  parseWidth,
  percentDone,
  progressMessage,
  readCompressSettings,
  storageLabel,
  statusBarText,
  statusBarTooltip,
} from '../../../../src/extension/compress/compressChoices';
import type { RunSummaryDto } from '../../../../src/protocol/panels';
import type { CompressReportDto } from '../../../../src/protocol/compress';

import { isArtifactName } from '../../../../src/protocol/paths';
void test('settings are validated with defaults', () => {
  assert.deepEqual(
    readCompressSettings(() => undefined),
    {
      steps: 2000,
      permutation: 'crossfilter',
      seed: 0,
      representDense: false,
      pointwise: 'blocks',
      recipe: 'weight-lens',
      predictorDtype: 'f32',
      verbatimDtype: 'f32',
    },
  );
  const values: Record<string, unknown> = {
    'compress.steps': 40.4,
    'compress.permutation': 'infilter',
    'compress.seed': 7,
    'compress.representDense': true,
    'compress.pointwise': 'centre',
    'compress.recipe': 'nern',
    'compress.predictorDtype': 'int4',
    'compress.verbatimDtype': 'int8',
  };
  assert.deepEqual(
    readCompressSettings((k) => values[k]),
    {
      steps: 40,
      permutation: 'infilter',
      seed: 7,
      representDense: true,
      pointwise: 'centre',
      recipe: 'nern',
      predictorDtype: 'int4',
      verbatimDtype: 'int8',
    },
  );
  assert.equal(readCompressSettings((k) => (k === 'compress.verbatimDtype' ? 'int4' : undefined)).verbatimDtype, 'f32');
  assert.equal(
    readCompressSettings((k) => (k === 'compress.predictorDtype' ? 'f64' : undefined)).predictorDtype,
    'f32',
  );
  assert.equal(readCompressSettings((k) => (k === 'compress.permutation' ? 'bogus' : -5)).permutation, 'crossfilter');
  assert.equal(readCompressSettings((k) => (k === 'compress.steps' ? -5 : undefined)).steps, 1);
  assert.equal(readCompressSettings((k) => (k === 'compress.pointwise' ? 'center' : undefined)).pointwise, 'blocks');
});

void test('options carry the budget, overrides and represent policy', () => {
  const settings = readCompressSettings(() => undefined);
  const o = buildOptions(settings, { kind: 'fraction', fraction: 0.5 }, 'wasm', {
    permutation: 'none',
    steps: 40,
    out: '/x.nern.safetensors',
  });
  assert.deepEqual(o, {
    budget: { kind: 'fraction', fraction: 0.5 },
    steps: 40,
    permutation: 'none',
    seed: 0,
    represent: { conv: true, dense: false, pointwise: 'blocks' },
    backend: 'wasm',
    rounds: 1,
    roundWidthScale: 1,
    recipe: 'weight-lens',
    out: '/x.nern.safetensors',
  });
  assert.equal('out' in buildOptions(settings, { kind: 'hidden', hidden: 8 }, 'auto'), false);
  // The chosen storage dtypes reach the plan and the run; f32 adds nothing.
  const narrow = buildOptions({ ...settings, predictorDtype: 'int8', verbatimDtype: 'f16' }, o.budget, 'wasm');
  assert.equal(narrow.predictorDtype, 'int8');
  assert.equal(narrow.verbatimDtype, 'f16');
  assert.equal(
    storageLabel({ predictorDtype: 'int8', verbatimDtype: 'f16' }),
    'Stored as: predictor int8 · verbatim f16…',
  );
});

void test('"keep both" names a second artifact with a number, still recognised as an artifact', () => {
  assert.equal(numberedArtifactPath('/m/resnet.nern.safetensors', 2), '/m/resnet-2.nern.safetensors');
  assert.equal(numberedArtifactPath('/m/out.bin', 3), '/m/out-3.bin');
  assert.ok(isArtifactName(numberedArtifactPath('/m/resnet.nern.safetensors', 7)));
});

void test('width, steps and size input', () => {
  assert.deepEqual(parseWidth(' 64 '), { ok: true, value: 64 });
  for (const bad of ['', '0', '-3', '1.5', 'abc', '100000']) assert.equal(parseWidth(bad).ok, false, bad);
  assert.deepEqual(parseSteps('2_000'), { ok: true, value: 2000 });
  assert.equal(parseSteps('0').ok, false);
  assert.deepEqual(parseSize('1.5 MB'), { ok: true, value: { kind: 'bytes', bytes: 1_500_000 } });
  assert.deepEqual(parseSize('2MiB'), { ok: true, value: { kind: 'bytes', bytes: 2 * 1024 * 1024 } });
  assert.deepEqual(parseSize('800 kB', 10_000_000), { ok: true, value: { kind: 'bytes', bytes: 800_000 } });
  assert.deepEqual(parseSize('30 %', 1000), { ok: true, value: { kind: 'bytes', bytes: 300 } });
  assert.equal(parseSize('30 %').ok, false);
  assert.equal(parseSize('2 MB', 1_000_000).ok, false, 'not smaller than the source');
  assert.equal(parseSize('12 parsecs').ok, false);
  assert.equal(parseSize('0').ok, false);
});

void test('texts for the pick, the notification and the status bar', () => {
  const plan = {
    hidden: 48,
    predictorParams: 12_345,
    representedParams: 50_000,
    verbatimParams: 10,
    fractionOfRepresented: 0.25,
    artifactBytes: 60_000,
    sourceBytes: 240_000,
    represented: [],
    verbatim: [],
  };
  assert.equal(describePlan(plan), 'h = 48 · 12.3 k params · artifact ≈ 60 kB');
  // The ratio leads the label (a narrow quick pick cuts the description, never the start of the label).
  assert.equal(fractionLabel(0.25, plan), '4.0× smaller · predictor 25 %');
  assert.equal(fractionLabel(0.25), 'Predictor 25 % of represented weights');
  assert.ok(fractionLabel(0.25, plan).length <= 32, 'the label stays short');
  const p = { step: 37, steps: 100, round: 1, loss: 0.001234, lr: 1e-3, stepsPerSecond: 85.2, backend: 'wasm' };
  assert.equal(progressMessage(p), 'step 37 / 100 · about 739 ms left · loss 0.00123 · 85 steps/s · wasm');
  assert.equal(percentDone(p), 37);
  assert.equal(statusBarText(p), '$(sync~spin) Weight Lens: compressing 37 % · wasm');
  assert.equal(
    statusBarText({ ...p, backend: 'onnxruntime (native, 2 threads)' }),
    '$(sync~spin) Weight Lens: compressing 37 % · onnxruntime CPU',
  );
  assert.equal(
    statusBarText({ ...p, backend: 'onnxruntime (native, CUDA)' }),
    '$(sync~spin) Weight Lens: compressing 37 % · onnxruntime CUDA',
  );
  assert.match(
    statusBarTooltip({
      ...p,
      backend: 'onnxruntime (native, 2 threads)',
      engineReason: 'CUDA unavailable: no NVIDIA GPU',
    }),
    /trains on onnxruntime \(native, 2 threads\) \(CUDA unavailable: no NVIDIA GPU\)/,
  );
  assert.equal(percentDone({ ...p, steps: 0 }), 0);
});

void test('the done message headlines the relative weight error and the per-layer range, not the RMSE', () => {
  const layer = (name: string, relativeError: number): CompressReportDto['layers'][number] => ({
    name,
    shape: [16, 16, 3, 3],
    params: 2304,
    rmse: 0.02,
    relativeError,
  });
  const report: CompressReportDto = {
    source: '/m/resnet.pt',
    artifact: '/m/resnet.nern.safetensors',
    predictorParams: 100,
    representedParams: 4608,
    verbatimParams: 0,
    ratio: 2.1,
    artifactBytes: 500_000,
    sourceBytes: 1_050_000,
    steps: 300,
    seconds: 3,
    backend: 'wasm',
    hidden: 16,
    permutation: 'crossfilter',
    rmse: 0.0216,
    relativeError: 0.312,
    layers: [layer('a', 0.22), layer('b', 0.653)],
    lossCurve: [],
  };
  const text = doneMessage(report);
  assert.equal(
    text,
    'Compressed resnet.pt 2.10× (1.1 MB → 500 kB): weights reconstructed with 31.2 % relative error (per layer 22.0 %–65.3 %). Evaluate it to see what that costs in accuracy.',
  );
  assert.doesNotMatch(text, /RMSE/);
  assert.match(
    doneMessage({ ...report, stoppedEarly: { step: 1012, steps: 2000 } }),
    /^Stopped early and saved after step 1,012 of 2,000\. Compressed resnet\.pt/,
  );
  assert.equal(relativePercent(0.0042), '0.42 %');
  assert.equal(relativePercent(0), '0 %');
});

void test('run history is kept per source, bounded, and can be cleared', async () => {
  const data = new Map<string, unknown>();
  const memento = {
    get: (k: string): unknown => data.get(k),
    update: (k: string, v: unknown) => {
      data.set(k, JSON.parse(JSON.stringify(v)));
      return Promise.resolve();
    },
  };
  const h = new RunHistory(memento);
  const run = (source: string, hidden: number, finishedAt: number): RunSummaryDto => ({
    source,
    artifact: `${source}.nern`,
    hidden,
    fraction: hidden / 100,
    rmse: 1 / hidden,
    ratio: 2,
    artifactBytes: 10,
    steps: 10,
    permutation: 'none',
    finishedAt,
  });
  await h.add(run('/a', 8, 1));
  await h.add(run('/a', 16, 2));
  await h.add(run('/a', 16, 3));
  await h.add(run('/b', 4, 4));
  assert.deepEqual(
    h.runs('/a').map((r) => [r.hidden, r.finishedAt]),
    [
      [8, 1],
      [16, 3],
    ],
  );
  for (let i = 0; i < MAX_RUNS_PER_SOURCE + 5; i++) await h.add(run('/c', 100 + i, 10 + i));
  assert.equal(h.runs('/c').length, MAX_RUNS_PER_SOURCE);
  await h.clear('/a');
  assert.deepEqual(h.runs('/a'), []);
  assert.equal(h.runs('/b').length, 1);
  data.set(HISTORY_KEY, { '/x': [{ bogus: true }], '/y': 'nope' });
  assert.deepEqual(h.runs('/x'), []);
  assert.deepEqual(h.runs('/y'), []);
});
