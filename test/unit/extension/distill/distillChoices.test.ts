// The pure part of "Distill Compressed Model…" and "Evaluate…": settings parsing and validation, the defaults shared
// with the engine, preprocessing typed by the user, the command's options argument, candidate files, texts, and the
// choices remembered per artifact and per model in workspace state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_DISTILL_OPTIONS as CORE_DEFAULTS,
  DISTILL_DEFAULT_SOURCES as CORE_SOURCES,
} from '../../../../src/core/jobs/distill';
import {
  buildDistillOptions,
  checkDistillSettings,
  checkPreprocess,
  CHOICES_KEY,
  DISTILL_SETTINGS,
  distillDoneMessage,
  distillPercent,
  distillProgressMessage,
  evalDoneMessage,
  formatPreprocess,
  formatSettingValue,
  imageFolders,
  isDataName,
  isDistillArgument,
  isModelName,
  MAX_REMEMBERED,
  parseDistillArgument,
  parseLimit,
  parsePreprocess,
  parseSetting,
  rankCandidates,
  RememberedChoices,
  sameDataWarning,
  settingSource,
} from '../../../../src/extension/distill/distillChoices';
import { DEFAULT_DISTILL_OPTIONS, DISTILL_DEFAULT_SOURCES } from '../../../../src/protocol/defaults';
import type { DistillReportDto, EvalReportDto } from '../../../../src/protocol/evaluate';

/** An in-memory `vscode.Memento`. */
class FakeMemento {
  readonly values = new Map<string, unknown>();
  get(key: string): unknown {
    return this.values.get(key);
  }
  update(key: string, value: unknown): Promise<void> {
    this.values.set(key, JSON.parse(JSON.stringify(value)) as unknown);
    return Promise.resolve();
  }
}

void test('the engine re-exports the protocol defaults, so the extension and the CLI show the same numbers', () => {
  assert.equal(CORE_DEFAULTS, DEFAULT_DISTILL_OPTIONS);
  assert.equal(CORE_SOURCES, DISTILL_DEFAULT_SOURCES);
  assert.ok(Object.isFrozen(DEFAULT_DISTILL_OPTIONS));
  for (const s of DISTILL_SETTINGS) {
    assert.ok(DISTILL_DEFAULT_SOURCES[s.key].length > 0, `${s.key} has no stated origin`);
    assert.ok(
      parseSetting(s.key, String(DEFAULT_DISTILL_OPTIONS[s.key])).ok,
      `the default of ${s.key} passes its own check`,
    );
  }
  assert.equal(checkDistillSettings(DEFAULT_DISTILL_OPTIONS), undefined);
});

void test('settings are parsed within the engine’s bounds', () => {
  assert.deepEqual(parseSetting('steps', ' 1_000 '), { ok: true, value: 1000 });
  assert.deepEqual(parseSetting('steps', '2,500'), { ok: true, value: 2500 });
  assert.equal(parseSetting('steps', '0').ok, false);
  assert.equal(parseSetting('steps', '2.5').ok, false);
  assert.equal(parseSetting('steps', '').ok, false);
  assert.equal(parseSetting('batchSize', '4097').ok, false);
  assert.deepEqual(parseSetting('lr', '3e-5'), { ok: true, value: 3e-5 });
  for (const bad of ['0', '1', '-1e-4', 'fast', 'NaN', 'Infinity'])
    assert.equal(parseSetting('lr', bad).ok, false, `lr ${bad}`);
  assert.deepEqual(parseSetting('temperature', '100'), { ok: true, value: 100 });
  assert.equal(parseSetting('temperature', '0').ok, false);
  assert.deepEqual(parseSetting('featureWeight', '0'), { ok: true, value: 0 });
  assert.equal(parseSetting('klWeight', '-0.5').ok, false);
  assert.deepEqual(parseSetting('evalEvery', '0'), { ok: true, value: 0 });
  assert.equal(parseSetting('evalSamples', '0').ok, false);
  const p = parseSetting('lr', '2');
  assert.ok(
    !p.ok && /Learning rate must be from 0 \(exclusive\) to 1 \(exclusive\)/.test(p.message),
    JSON.stringify(p),
  );
});

void test('the quick pick shows values and where they come from', () => {
  assert.equal(formatSettingValue('lr', 3e-5), '3e-5');
  assert.equal(formatSettingValue('reconstructionWeight', 0.01), '0.01');
  assert.equal(formatSettingValue('steps', 1000), '1,000');
  assert.equal(settingSource('lr', 3e-5), `default · ${DISTILL_DEFAULT_SOURCES.lr}`);
  assert.equal(settingSource('steps', 3), 'changed for this run (default 300)');
  assert.equal(settingSource('augment', false), 'changed for this run (default on)');
  assert.match(
    checkDistillSettings({ ...DEFAULT_DISTILL_OPTIONS, klWeight: 0, featureWeight: 0, reconstructionWeight: 0 }) ?? '',
    /At least one/,
  );
  assert.match(checkDistillSettings({ ...DEFAULT_DISTILL_OPTIONS, batchSize: 0 }) ?? '', /Batch size/);
  const o = buildDistillOptions({ steps: 3, batchSize: 8 }, 'wasm');
  assert.deepEqual(o, { ...DEFAULT_DISTILL_OPTIONS, steps: 3, batchSize: 8, backend: 'wasm' });
  assert.equal(buildDistillOptions({ backend: 'cpu' }, 'wasm').backend, 'cpu');
});

void test('preprocessing is typed as key=value pairs or JSON and round-trips', () => {
  assert.deepEqual(parsePreprocess(''), { ok: true, value: undefined });
  assert.deepEqual(parsePreprocess('scale=1/255 mean=0.286 std=0.353 layout=nchw'), {
    ok: true,
    value: { scale: 1 / 255, mean: [0.286], std: [0.353], layout: 'NCHW' },
  });
  assert.deepEqual(parsePreprocess('mean=0.5,0.5,0.5; std=0.25,0.25,0.25; pad=4; resize=32x32'), {
    ok: true,
    value: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], pad: [4], resize: [32, 32] },
  });
  assert.deepEqual(parsePreprocess('{"scale": 0.5, "layout": "NHWC"}'), {
    ok: true,
    value: { scale: 0.5, layout: 'NHWC' },
  });
  for (const bad of [
    'scale=0',
    'std=0',
    'mean=1,2,3,4,5',
    'pad=-1',
    'pad=1,2',
    'resize=32',
    'layout=CHW',
    'colour=red',
    'scale',
    '{"scale": "x"}',
    '{oops',
    '[1]',
  ]) {
    const p = parsePreprocess(bad);
    assert.ok(!p.ok && p.message.length > 0 && !p.message.includes('\n'), bad);
  }
  const value = {
    scale: 1 / 255,
    mean: [0.286],
    std: [0.353],
    pad: [2],
    resize: [28, 28] as [number, number],
    layout: 'NCHW' as const,
  };
  assert.equal(formatPreprocess(value), 'scale=1/255 mean=0.286 std=0.353 pad=2 resize=28x28 layout=NCHW');
  const again = parsePreprocess(formatPreprocess(value));
  assert.ok(again.ok);
  assert.deepEqual(again.value, value);
  assert.equal(checkPreprocess(null).ok, false);
});

void test('the options argument is validated and resolved against the workspace', () => {
  assert.equal(isDistillArgument({ artifact: 'a' }), true);
  assert.equal(isDistillArgument('a'), false);
  assert.equal(isDistillArgument({ fsPath: '/x', scheme: 'file' }), false);
  const ok = parseDistillArgument(
    {
      artifact: 'r.nern.safetensors',
      model: { fsPath: '/m/net.onnx' },
      data: '/d/t10k-images-idx3-ubyte.gz',
      options: {
        steps: 3,
        batchSize: 8,
        evalSamples: 16,
        augment: false,
        preprocess: { scale: 0.5 },
        out: 'o.nern.safetensors',
      },
    },
    '/ws',
  );
  assert.ok(ok.ok, JSON.stringify(ok));
  assert.deepEqual(ok.value, {
    artifact: '/ws/r.nern.safetensors',
    model: '/m/net.onnx',
    data: '/d/t10k-images-idx3-ubyte.gz',
    options: {
      steps: 3,
      batchSize: 8,
      evalSamples: 16,
      augment: false,
      preprocess: { scale: 0.5 },
      out: '/ws/o.nern.safetensors',
    },
  });
  const teacher = parseDistillArgument(
    { artifact: '/a', model: '/m', data: '/d', options: { teacher: '/t', evalData: '/e' } },
    undefined,
  );
  assert.ok(teacher.ok);
  assert.equal(teacher.value.teacher, '/t');
  assert.equal(teacher.value.evalData, '/e');
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ model: '/m', data: '/d' }, /"artifact"/],
    [{ artifact: '/a', model: '/m', data: 3 }, /"data"/],
    [{ artifact: '/a', model: '/m', data: '/d', options: { steps: 0 } }, /Steps/],
    [{ artifact: '/a', model: '/m', data: '/d', options: { lr: '3e-5' } }, /options\.lr must be a number/],
    [{ artifact: '/a', model: '/m', data: '/d', options: { warp: 9 } }, /Unknown distillation option "warp"/],
    [{ artifact: '/a', model: '/m', data: '/d', options: { backend: 'tpu' } }, /options\.backend/],
    [{ artifact: '/a', model: '/m', data: '/d', options: { klWeight: 0, reconstructionWeight: 0 } }, /At least one/],
    [{ artifact: '/a', model: '/m', data: '/d', options: 'fast' }, /"options" must be an object/],
    [{ artifact: '/a', model: '/m', data: '/d', options: { preprocess: { std: [0] } } }, /std/],
  ];
  for (const [arg, message] of cases) {
    const p = parseDistillArgument(arg, '/ws');
    assert.ok(!p.ok, JSON.stringify(arg));
    assert.match(p.message, message);
  }
});

void test('candidate files: models, datasets, image folders, and their order', () => {
  assert.ok(isModelName('resnet20_fmnist.onnx'));
  assert.ok(isModelName('model.json'));
  assert.ok(!isModelName('package.json'));
  assert.ok(!isModelName('resnet20.pt'));
  for (const n of [
    't10k-images-idx3-ubyte.gz',
    'train-images-idx3-ubyte',
    'data_batch_1.bin',
    'test_batch.bin',
    'test.bin',
    'x.npy',
    'fmnist_xy.npz',
  ])
    assert.ok(isDataName(n), n);
  for (const n of ['t10k-labels-idx1-ubyte.gz', 'weights.bin', 'model.onnx', 'notes.txt']) assert.ok(!isDataName(n), n);
  assert.deepEqual(imageFolders(['/d/images/cat/1.png', '/d/images/dog/2.png', '/e/x/a/3.jpg']), ['/d/images', '/e/x']);
  assert.deepEqual(imageFolders(['/a/b/1.png', '/c/d/2.png'], 1), ['/a']);
  const ranked = rankCandidates(
    ['/ws/deep/er/m.onnx', '/ws/b.onnx', '/src/a.onnx', '/ws/a.onnx', '/ws/b.onnx'],
    ['/src'],
    ['/old/last.onnx'],
  );
  assert.deepEqual(ranked, ['/old/last.onnx', '/src/a.onnx', '/ws/a.onnx', '/ws/b.onnx', '/ws/deep/er/m.onnx']);
});

void test('texts of the notification and the results', () => {
  const progress = {
    step: 12,
    steps: 300,
    loss: 0.1234,
    kl: 0.101,
    feature: 0,
    reconstruction: 0.02,
    lr: 3e-5,
    stepsPerSecond: 1.4,
  };
  assert.equal(
    distillProgressMessage(progress),
    'step 12 / 300 · about 3 min 26 s left · loss 0.123 · KL 0.101 · 1.40 steps/s',
  );
  assert.equal(
    distillProgressMessage({ ...progress, engine: 'onnxruntime', engineLabel: 'onnxruntime (native, CUDA)' }),
    'step 12 / 300 · about 3 min 26 s left · loss 0.123 · KL 0.101 · 1.40 steps/s on onnxruntime (native, CUDA)',
  );
  assert.equal(distillPercent(progress), 4);
  assert.equal(distillPercent({ ...progress, steps: 0 }), 0);
  const m = (accuracy: number): { n: number; accuracy: number; agreement: number; relativeError: number } => ({
    n: 16,
    accuracy,
    agreement: accuracy,
    relativeError: 0.5,
  });
  const report = {
    artifact: '/x/r.nern.safetensors',
    out: '/x/r.distilled.nern.safetensors',
    before: m(0.125),
    after: m(0.8),
  } as unknown as DistillReportDto;
  assert.equal(
    distillDoneMessage(report),
    'Distilled r.nern.safetensors: accuracy 12.5 % → 80.0 % (held out, 16 samples). Wrote r.distilled.nern.safetensors.',
  );
  // The engine that trained, and why it is not the one asked for.
  assert.equal(
    distillDoneMessage({
      ...report,
      engine: 'onnxruntime',
      engineLabel: 'onnxruntime (native, 2 threads)',
      engineReason: 'CUDA unavailable: no NVIDIA GPU on this machine (no /dev/nvidia0)',
    }),
    'Distilled r.nern.safetensors: accuracy 12.5 % → 80.0 % (held out, 16 samples). Wrote r.distilled.nern.safetensors.' +
      ' Trained on onnxruntime (native, 2 threads) (CUDA unavailable: no NVIDIA GPU on this machine (no /dev/nvidia0)).',
  );
  const evalReport = {
    model: '/m/net.onnx',
    weights: '/x/r.nern.safetensors',
    originalAccuracy: 0.9375,
    candidate: { n: 32, accuracy: 0.09375, agreement: 0.1, relativeError: 1.1 },
  } as unknown as EvalReportDto;
  assert.equal(
    evalDoneMessage(evalReport),
    'r.nern.safetensors in net.onnx: accuracy 93.8 % → 9.4 % (−84.4 points, 32 samples).',
  );
  const sr = {
    model: '/m/sr.onnx',
    weights: '/x/sr.nern.safetensors',
    candidate: { n: 4, agreement: 1, psnr: 31.2, relativeError: 0.0123 },
  } as unknown as EvalReportDto;
  assert.equal(
    evalDoneMessage(sr),
    'sr.nern.safetensors in sr.onnx: PSNR 31.20 dB, relative error 0.0123 (4 samples).',
  );
  assert.deepEqual(parseLimit(''), { ok: true, value: undefined });
  assert.deepEqual(parseLimit('All'), { ok: true, value: undefined });
  assert.deepEqual(parseLimit('1,000'), { ok: true, value: 1000 });
  assert.equal(parseLimit('0').ok, false);
  assert.equal(parseLimit('-3').ok, false);
  assert.equal(parseLimit('ten').ok, false);
});

void test('distillation warns when it would train on the held-out or evaluation data', () => {
  const test10k = '/w/data/t10k-images-idx3-ubyte.gz';
  const train = '/w/data/train-images-idx3-ubyte.gz';
  assert.equal(sameDataWarning(train, undefined, [test10k]), undefined);
  assert.equal(sameDataWarning(train, test10k, [test10k]), undefined);
  assert.match(
    sameDataWarning(test10k, undefined, [test10k]) ?? '',
    /t10k-images-idx3-ubyte\.gz is the data this model was evaluated on/,
  );
  assert.match(
    sameDataWarning(train, '/w/data/../data/train-images-idx3-ubyte.gz', []) ?? '',
    /also the held-out data/,
  );
});

void test('choices are remembered per artifact and per model, bounded, and malformed state is ignored', async () => {
  const memento = new FakeMemento();
  const choices = new RememberedChoices(memento);
  assert.equal(choices.forArtifact('/a'), undefined);
  await choices.remember(
    { artifact: '/a', model: '/m.onnx', data: '/d1', teacher: '/t.onnx', preprocess: { scale: 0.5 } },
    10,
  );
  assert.deepEqual(choices.forArtifact('/a'), { model: '/m.onnx', data: '/d1', teacher: '/t.onnx', at: 10 });
  assert.deepEqual(choices.forModel('/m.onnx'), { data: '/d1', preprocess: { scale: 0.5 }, at: 10 });
  // The test set evaluated on is not what distillation offers to train on, and training data is kept apart.
  assert.deepEqual(choices.dataFor('evaluate', '/m.onnx', '/a'), ['/d1']);
  assert.deepEqual(choices.dataFor('train', '/m.onnx', '/a'), []);
  await choices.remember({ artifact: '/a', model: '/m.onnx', data: '/train', role: 'train' }, 11);
  assert.deepEqual(choices.dataFor('train', '/m.onnx', '/a'), ['/train']);
  assert.deepEqual(choices.dataFor('evaluate', '/m.onnx', '/a'), ['/d1'], 'training does not replace the test set');
  await choices.remember({ artifact: '/a', model: '/m.onnx', data: '/d1', preprocess: { scale: 0.5 } }, 12);
  assert.deepEqual(choices.forArtifact('/a'), { model: '/m.onnx', data: '/d1', trainData: '/train', at: 12 });
  // An evaluation without an artifact updates the model's data; no preprocessing forgets the typed one.
  await choices.remember({ model: '/m.onnx', data: '/d2' }, 20);
  assert.deepEqual(choices.forModel('/m.onnx'), { data: '/d2', trainData: '/train', at: 20 });
  assert.equal(choices.forArtifact('/a')?.data, '/d1');
  // Bounded: the least recently used go first.
  for (let i = 0; i < MAX_REMEMBERED + 5; i++)
    await choices.remember({ artifact: `/art${i}`, model: `/m${i}`, data: '/d' }, 100 + i);
  const stored = memento.get(CHOICES_KEY) as { artifacts: Record<string, unknown>; models: Record<string, unknown> };
  assert.equal(Object.keys(stored.artifacts).length, MAX_REMEMBERED);
  assert.equal(Object.keys(stored.models).length, MAX_REMEMBERED);
  assert.equal(choices.forArtifact('/a'), undefined);
  assert.ok(choices.forArtifact(`/art${MAX_REMEMBERED + 4}`));
  // Hand-edited or old state: bad entries are skipped, good ones kept.
  await memento.update(CHOICES_KEY, {
    artifacts: { '/ok': { model: '/m', at: 1 }, '/bad': { model: 3, at: 1 }, '/worse': 'x' },
    models: { '/m': { data: '/d', at: 1, preprocess: { std: [-1] } }, '/n': { at: 1 } },
  });
  assert.deepEqual(choices.forArtifact('/ok'), { model: '/m', at: 1 });
  assert.equal(choices.forArtifact('/bad'), undefined);
  assert.equal(choices.forArtifact('/worse'), undefined);
  assert.deepEqual(choices.forModel('/m'), { data: '/d', at: 1 });
  assert.equal(choices.forModel('/n'), undefined);
  await memento.update(CHOICES_KEY, 'garbage');
  assert.equal(choices.forModel('/m'), undefined);
});
