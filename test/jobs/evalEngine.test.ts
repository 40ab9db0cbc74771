// Evaluation on onnxruntime: the native runner's outputs against the TensorFlow.js executor on the ResNet-20 (64
// real Fashion-MNIST images), BlazeFace (its fixed batch of 1, run twice), the wake-word MLP and the ESRGAN-slim
// TF.js LayersModel (lowered to ONNX; two crops of its sample image), on the models' own weights and on perturbed
// weights bound by name, to 1e-5 relative (‖Δ‖₂ / ‖ref‖₂); the same through the IR's ONNX lowering for the three ONNX
// models; the fallbacks to TensorFlow.js and their reasons (package absent, package broken, wasm asked for, a
// LayersModel with a layer that has no ONNX form, a model onnxruntime refuses); a fixed batch size that does not
// divide the batch; and the engine in the reports of `evaluateModel` and of distillation's held-out evaluations.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ensureBackend } from '../../src/core/backend/tfjsBackend';
import { loadOnnxRuntime } from '../../src/core/backend/onnxRuntime';
import { openDataset } from '../../src/core/data/dataset';
import { decodeImage } from '../../src/core/data/imageFolder';
import { registerCustomLayer } from '../../src/core/graph/layersImport';
import { lowerGraph } from '../../src/core/graph/onnxLowering';
import { readInputBatch, type InputBatch } from '../../src/core/data/batches';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS } from '../../src/core/jobs/compress';
import { distillArtifact } from '../../src/core/jobs/distill';
import { evaluateModel } from '../../src/core/jobs/evaluate';
import { resolvePreprocessing } from '../../src/core/models/preprocessing';
import { loadExecutableModel, type ExecutableModel } from '../../src/core/models/executableModel';
import { openModelRunner, type ForwardOutput, type ModelRunner } from '../../src/core/models/runner';
import { FIXTURES } from '../helpers/fixtures';
import { seededRandom } from '../unit/graph/helpers';
import { buildOnnx } from '../helpers/protobuf';
import { ortSkip } from '../helpers/ort';
import { tfjsSave } from '../helpers/layersModels';
import * as tfl from '@tensorflow/tfjs-layers';

const RESNET = join(FIXTURES, 'models', 'resnet20_fmnist.onnx');
const STATE_DICT = join(FIXTURES, 'models', 'resnet20_fmnist.pt');
const IMAGES = join(FIXTURES, 'data', 'idx', 't10k-images-idx3-ubyte.gz');
const BLAZEFACE = join(FIXTURES, 'published', 'blazeface', 'face_detection_front_128x128_barracuda.onnx');
const WAKEWORD = join(FIXTURES, 'published', 'openwakeword', 'hello_deepa.onnx');
const ESRGAN = join(FIXTURES, 'published', 'esrgan-slim', 'x2', 'model.json');
const ESRGAN_IMAGE = join(FIXTURES, 'published', 'esrgan-slim', 'assets', 'fixture.png');
const TOLERANCE = 1e-5;

const native = loadOnnxRuntime();
const skipNative = ortSkip(native.ok ? undefined : native.reason);
let dir = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wl-eval-engine-'));
  await ensureBackend('wasm');
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** ‖a − b‖₂ / ‖b‖₂. */
function relativeError(a: Float32Array, b: Float32Array): number {
  let se = 0;
  let ss = 0;
  for (let i = 0; i < b.length; i++) {
    const d = (a[i] ?? NaN) - (b[i] ?? 0);
    se += d * d;
    ss += (b[i] ?? 0) ** 2;
  }
  return Math.sqrt(se / ss);
}

async function forward(
  runner: ModelRunner,
  overrides: ReadonlyMap<string, Float32Array>,
  batch: InputBatch,
): Promise<ForwardOutput> {
  const weights = await runner.prepare(overrides);
  try {
    return await runner.forward(weights, batch);
  } finally {
    await weights.dispose();
  }
}

/** The first weight of the first `op` node, perturbed by 5 % of its RMS (seeded). */
function perturbed(model: ExecutableModel, op: string, seed: number): Map<string, Float32Array> {
  const name = model.graph.nodes.find((n) => n.op === op)?.inputs[1] ?? '';
  const values = model.weights.get(name);
  assert.ok(values, `${op} weight of ${model.path}`);
  const rms = Math.sqrt(values.reduce((s, v) => s + v * v, 0) / values.length);
  const noise = seededRandom(seed, values.length);
  return new Map([[name, values.map((v, i) => v + 0.05 * rms * (noise[i] ?? 0))]]);
}

async function resnetBatch(model: ExecutableModel): Promise<InputBatch> {
  const data = await openDataset(IMAGES);
  try {
    const { spec } = await resolvePreprocessing(model, data);
    return await readInputBatch(
      data,
      Array.from({ length: 64 }, (_, i) => i),
      spec,
    );
  } finally {
    await data.close();
  }
}

/** Two 24×24 crops of the ESRGAN sample image, values 0…255 as UpscalerJS feeds it (NHWC). */
async function esrganBatch(): Promise<InputBatch> {
  const image = await decodeImage(readFileSync(ESRGAN_IMAGE), ESRGAN_IMAGE);
  const size = 24;
  const data = new Float32Array(2 * size * size * 3);
  [
    [40, 48],
    [8, 16],
  ].forEach(([top = 0, left = 0], n) => {
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        for (let c = 0; c < 3; c++)
          data[((n * size + y) * size + x) * 3 + c] = image.data[((y + top) * image.width + x + left) * 3 + c] ?? 0;
  });
  return { data, shape: [2, size, size, 3] };
}

const cases: [string, string, string, (m: ExecutableModel) => Promise<InputBatch>][] = [
  ['ResNet-20 on 64 Fashion-MNIST images', RESNET, 'Conv', resnetBatch],
  [
    'BlazeFace (fixed batch of 1) on 2 images',
    BLAZEFACE,
    'Conv',
    () => Promise.resolve({ data: seededRandom(11, 2 * 128 * 128 * 3), shape: [2, 128, 128, 3] }),
  ],
  [
    'wake-word MLP on 3 feature windows',
    WAKEWORD,
    'Gemm',
    () => Promise.resolve({ data: seededRandom(7, 3 * 25 * 96, 0, 1), shape: [3, 25, 96, 1] }),
  ],
  ['ESRGAN-slim x2 (a TF.js LayersModel, lowered to ONNX) on 2 image crops', ESRGAN, 'tfjs.Conv2D', esrganBatch],
];

for (const [label, file, op, batchOf] of cases) {
  test(
    `${label}: onnxruntime matches the TensorFlow.js executor to ${TOLERANCE} relative, own and bound weights`,
    { skip: skipNative },
    async () => {
      const model = await loadExecutableModel(file);
      const batch = await batchOf(model);
      const tensorsBefore = tf.memory().numTensors;
      const ort = await openModelRunner(model, { backend: 'auto' });
      const tfjs = await openModelRunner(model, { backend: 'wasm' });
      try {
        assert.equal(ort.engine, 'onnxruntime', ort.reason);
        assert.match(ort.label, /^onnxruntime \(native, \d+ threads?\)$/);
        assert.equal(tfjs.engine, 'tfjs');
        const bound = perturbed(model, op, 3);
        const outputs: Float32Array[] = [];
        for (const overrides of [new Map<string, Float32Array>(), bound]) {
          const a = await forward(ort, overrides, batch);
          const b = await forward(tfjs, overrides, batch);
          assert.deepEqual(a.shapes, b.shapes);
          assert.equal(a.perSample, b.perSample);
          assert.equal(a.values.length, batch.shape[0] * b.perSample);
          const err = relativeError(a.values, b.values);
          assert.ok(err <= TOLERANCE, `relative error ${err}`);
          outputs.push(a.values);
        }
        // The bound weights were really used: the outputs moved by far more than the engines differ.
        const [own, moved] = outputs;
        assert.ok(own && moved && relativeError(moved, own) > 100 * TOLERANCE, 'perturbed weights change the outputs');
      } finally {
        await ort.dispose();
        await tfjs.dispose();
      }
      assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor leaks');
    },
  );
}

test('without a usable onnxruntime-node the runner falls back to TensorFlow.js and says why', async () => {
  const model = await loadExecutableModel(WAKEWORD);
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  const broken = join(dir, 'broken');
  mkdirSync(join(broken, 'node_modules', 'onnxruntime-node'), { recursive: true });
  writeFileSync(
    join(broken, 'node_modules', 'onnxruntime-node', 'index.js'),
    "throw new Error('libonnxruntime.so.1: cannot open shared object file');\n",
  );
  const cases: [string, Parameters<typeof openModelRunner>[1], RegExp][] = [
    [
      'absent',
      { backend: 'auto', load: (name) => createRequire(join(empty, 'x.js'))(name) as unknown },
      /^the native engine is unavailable: onnxruntime-node is not installed$/,
    ],
    [
      'broken',
      { backend: 'auto', load: (name) => createRequire(join(broken, 'x.js'))(name) as unknown },
      /^the native engine is unavailable: onnxruntime-node failed to load \(libonnxruntime\.so\.1: cannot open/,
    ],
    [
      'the wasm backend was asked for',
      { backend: 'wasm' },
      /^the wasm backend was asked for \(the native engine runs under auto, cpu-native, cuda and webgpu\)$/,
    ],
  ];
  const batch: InputBatch = { data: seededRandom(1, 25 * 96, 0, 1), shape: [1, 25, 96, 1] };
  for (const [label, options, reason] of cases) {
    const runner = await openModelRunner(model, options);
    try {
      assert.equal(runner.engine, 'tfjs', label);
      assert.equal(runner.label, 'tfjs (wasm)', label);
      assert.match(runner.reason ?? '', reason, label);
      assert.equal((await forward(runner, new Map(), batch)).values.length, 1, label);
    } finally {
      await runner.dispose();
    }
  }
});

test(
  'the three ONNX models lowered through the IR match the executor to 1e-5 relative, as their files do',
  { skip: skipNative },
  async () => {
    for (const [label, file, , batchOf] of cases.filter(([, f]) => f.endsWith('.onnx'))) {
      const model = await loadExecutableModel(file);
      const batch = await batchOf(model);
      const lowered = lowerGraph(model.graph, model.weights);
      assert.ok(lowered.ok, label);
      if (!native.ok) return;
      const session = await native.ort.InferenceSession.create(lowered.value.bytes, {});
      const tfjs = await openModelRunner(model, { backend: 'wasm' });
      try {
        const ref = await forward(tfjs, new Map(), batch);
        const input = model.graph.inputs[0];
        assert.ok(input);
        // One sample at a time: BlazeFace and the wake-word MLP fix a batch of 1.
        const perInput = batch.data.length / batch.shape[0];
        const fixed = input.shape.slice(1).every((d) => typeof d === 'number');
        const dims = fixed ? input.shape.slice(1).map(Number) : batch.shape.slice(1);
        const got = new Float32Array(ref.values.length);
        for (let s = 0; s < batch.shape[0]; s++) {
          const x = new native.ort.Tensor('float32', batch.data.slice(s * perInput, (s + 1) * perInput), [1, ...dims]);
          const out = await session.run({ [input.name]: x });
          let at = s * ref.perSample;
          for (const name of model.graph.outputs) {
            const data = out[name]?.data as Float32Array;
            got.set(data, at);
            at += data.length;
          }
        }
        const err = relativeError(got, ref.values);
        assert.ok(err <= TOLERANCE, `${label}: relative error ${err}`);
      } finally {
        await session.release();
        await tfjs.dispose();
      }
    }
  },
);

test('a TF.js LayersModel with a layer that has no ONNX form runs on TensorFlow.js, and the reason names it', async () => {
  // ONNX's Gelu as a custom layer: the executor runs it, ONNX opset 17 has none (it came in opset 20).
  registerCustomLayer('OnnxGeluLayer', (ctx) => ({ op: 'Gelu', inputs: [ctx.inputs[0] ?? ''] }));
  const built = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [4], units: 3, name: 'dense' }),
      tfl.layers.activation({ activation: 'relu', name: 'gelu' }),
    ],
  });
  const path = await tfjsSave(built);
  built.dispose();
  try {
    writeFileSync(
      path,
      readFileSync(path, 'utf8').replace('"class_name":"Activation"', '"class_name":"OnnxGeluLayer"'),
    );
    const model = await loadExecutableModel(path);
    const runner = await openModelRunner(model, { backend: 'auto' });
    try {
      assert.equal(runner.engine, 'tfjs');
      assert.equal(
        runner.reason,
        'the TF.js LayersModel has no ONNX form yet: layer "gelu" (op Gelu): ONNX opset 17 has no Gelu (it came in opset 20)',
      );
      const out = await forward(runner, new Map(), { data: seededRandom(3, 8), shape: [2, 4, 1, 1] });
      assert.equal(out.values.length, 6);
    } finally {
      await runner.dispose();
    }
    const wasm = await openModelRunner(await loadExecutableModel(ESRGAN), { backend: 'wasm' });
    try {
      assert.equal(wasm.engine, 'tfjs');
      assert.match(wasm.reason ?? '', /^the wasm backend was asked for/);
    } finally {
      await wasm.dispose();
    }
  } finally {
    rmSync(dirname(path), { recursive: true, force: true });
  }
});

test("a model onnxruntime refuses runs on TensorFlow.js with onnxruntime's reason", { skip: skipNative }, async () => {
  // ReLU under opset 99, an operator-set version onnxruntime does not know; the executor runs ReLU under any.
  const file = join(dir, 'future-opset.onnx');
  writeFileSync(
    file,
    buildOnnx({
      opset: 99,
      inputs: [{ name: 'x', shape: [1, 4] }],
      outputs: ['y'],
      nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }],
    }),
  );
  const model = await loadExecutableModel(file);
  const runner = await openModelRunner(model, { backend: 'auto' });
  try {
    assert.equal(runner.engine, 'tfjs');
    assert.match(runner.reason ?? '', /^onnxruntime could not load the model \(.+\)$/);
    const out = await forward(runner, new Map(), { data: Float32Array.of(-1, 2, -3, 4), shape: [1, 4, 1, 1] });
    assert.deepEqual([...out.values], [0, 2, 0, 4]);
  } finally {
    await runner.dispose();
  }
});

test('a model that fixes a batch of 2 runs 3 samples on both engines: the short last sub-batch is padded, then dropped', async () => {
  const file = join(dir, 'batch-of-two.onnx');
  writeFileSync(
    file,
    buildOnnx({
      opset: 13,
      inputs: [{ name: 'x', shape: [2, 4] }],
      outputs: ['y'],
      nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }],
    }),
  );
  const model = await loadExecutableModel(file);
  const data = Float32Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? i : -i));
  for (const backend of native.ok ? (['auto', 'wasm'] as const) : (['wasm'] as const)) {
    const runner = await openModelRunner(model, { backend });
    try {
      const out = await forward(runner, new Map(), { data, shape: [3, 4, 1, 1] });
      assert.deepEqual(out.shapes, [[3, 4]], runner.label);
      assert.deepEqual([...out.values], [0, 0, 2, 0, 4, 0, 6, 0, 8, 0, 10, 0], runner.label);
    } finally {
      await runner.dispose();
    }
  }
});

test(
  'evaluateModel reports the engine: onnxruntime under auto, TensorFlow.js with the reason under wasm',
  { skip: skipNative },
  async () => {
    const options = { weights: STATE_DICT, limit: 64 };
    const engines: string[] = [];
    const auto = await evaluateModel(
      RESNET,
      IMAGES,
      { ...options, backend: 'auto' },
      { onEngine: (e) => engines.push(e.label) },
    );
    const wasm = await evaluateModel(
      RESNET,
      IMAGES,
      { ...options, backend: 'wasm' },
      { onEngine: (e) => engines.push(`${e.label}: ${e.reason ?? ''}`) },
    );
    assert.equal(auto.engine, 'onnxruntime');
    assert.equal(auto.engineReason, undefined);
    assert.match(auto.backend, /^onnxruntime \(native/);
    assert.equal(wasm.engine, 'tfjs');
    assert.equal(wasm.backend, 'wasm');
    assert.match(wasm.engineReason ?? '', /wasm backend was asked for/);
    assert.match(engines[0] ?? '', /^onnxruntime \(native/);
    assert.match(engines[1] ?? '', /^tfjs \(wasm\): the wasm backend was asked for/);
    assert.equal(auto.candidate.n, 64);
    assert.equal(auto.originalAccuracy, wasm.originalAccuracy);
    assert.equal(auto.candidate.accuracy, wasm.candidate.accuracy);
    assert.equal(auto.candidate.agreement, 1);
    assert.ok(auto.candidate.relativeError <= TOLERANCE);
  },
);

test(
  'distillation evaluates held-out data on onnxruntime under auto, with the same metrics as on TensorFlow.js',
  { skip: skipNative },
  async () => {
    const artifact = join(dir, 'resnet20.nern.safetensors');
    await compressCheckpoint(STATE_DICT, {
      ...DEFAULT_COMPRESS_OPTIONS,
      budget: { kind: 'hidden', hidden: 16 },
      steps: 20,
      backend: 'wasm',
      out: artifact,
    });
    const options = {
      steps: 1,
      batchSize: 8,
      lr: 1e-5,
      temperature: 1,
      klWeight: 1,
      featureWeight: 0,
      reconstructionWeight: 0,
      augment: false,
      evalSamples: 32,
      evalEvery: 0,
      seed: 0,
    };
    const status: string[] = [];
    const auto = await distillArtifact(
      {
        artifact,
        model: RESNET,
        data: IMAGES,
        options: { ...options, backend: 'auto', out: join(dir, 'auto.nern.safetensors') },
      },
      { onStatus: (s) => status.push(s) },
    );
    const wasm = await distillArtifact({
      artifact,
      model: RESNET,
      data: IMAGES,
      options: { ...options, backend: 'wasm', out: join(dir, 'wasm.nern.safetensors') },
    });
    assert.equal(auto.evalEngine, 'onnxruntime');
    assert.equal(auto.evalEngineReason, undefined);
    assert.ok(
      status.some((s) => /^Held-out evaluations run on onnxruntime \(native/.test(s)),
      status.join(' | '),
    );
    assert.equal(wasm.evalEngine, 'tfjs');
    assert.match(wasm.evalEngineReason ?? '', /wasm backend was asked for/);
    assert.equal(auto.before.n, 32);
    assert.equal(auto.before.accuracy, wasm.before.accuracy);
    assert.equal(auto.before.agreement, wasm.before.agreement);
    assert.ok(
      Math.abs(auto.before.relativeError - wasm.before.relativeError) <= 1e-4 * wasm.before.relativeError,
      `${auto.before.relativeError} vs ${wasm.before.relativeError}`,
    );
  },
);
