// The native distillation step (nern/ortDistill.ts) on the project's ResNet-20 (PyTorch-exported ONNX, Fashion-MNIST)
// with a real compression artifact and real test images: the predictor gradient of one step of the ONNX training
// graph in onnxruntime against the TensorFlow.js gradient of the same objective (jobs/distill.ts' regeneration and
// losses.ts' terms: KL at temperature 4, the feature-map term on every block pre-activation, the reconstruction
// term; or KL alone; or the relative output MSE of a non-classifier), in float and quantisation-aware (int8)
// training, to 1e-4 relative; and the losses of both. Then the job:
// a short distillation under `auto` runs natively and lands close to the TensorFlow.js one (held-out metrics,
// predictor updates), two native runs with the same seed write identical bytes, and a model with an op that has no
// gradient rule (LeakyRelu) falls back to TensorFlow.js with the reason naming it; `cpu-native` trains on the CPU
// provider, and `cuda` on a machine without an NVIDIA GPU falls back to it with the reason.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '../../src/core/graph/gradients';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS, ensureBackend } from '../../src/core/jobs/compress';
import { openDataset } from '../../src/core/data/dataset';
import { applyPreprocessing } from '../../src/core/data/preprocess';
import { readImageBatch } from '../../src/core/data/batches';
import { bindLayers, boundEncodings, distillArtifact, featureValues, toWeight } from '../../src/core/jobs/distill';
import type { DistillOptionsDto, DistillProgressDto } from '../../src/protocol/evaluate';
import { executeGraph, weightTensors } from '../../src/core/graph/execute';
import type { Graph } from '../../src/core/graph/ir';
import { missingGpuDevice } from '../../src/core/backend/nativeDevice';
import { loadExecutableModel } from '../../src/core/models/executableModel';
import { resolvePreprocessing } from '../../src/core/models/preprocessing';
import { readArtifact } from '../../src/core/nern/artifact';
import { encodingWidth } from '../../src/core/nern/encoding';
import { KERNEL_OUTPUTS } from '../../src/core/nern/kernelMap';
import { distillationKl, featureMapLoss, reconstructionLoss, relativeOutputMse } from '../../src/core/nern/losses';
import { adamConfig } from '../../src/core/nern/optimizer';
import { buildDistillModels, OrtDistillTrainer, type OrtDistillSpec } from '../../src/core/nern/ortDistill';
import { Predictor } from '../../src/core/nern/predictor';
import type { QuantBits } from '../../src/core/tensors/quantize';
import { FIXTURES } from '../helpers/fixtures';
import { projectOrt } from '../helpers/ort';
import { relativeMaxError } from '../unit/graph/helpers';

const { loaded: ORT, skip: NEEDS_ORT } = projectOrt();
const MODEL = join(FIXTURES, 'models', 'resnet20_fmnist.onnx');
const STATE_DICT = join(FIXTURES, 'models', 'resnet20_fmnist.pt');
const IMAGES = join(FIXTURES, 'data', 'idx', 't10k-images-idx3-ubyte.gz');
let dir = '';
let artifactPath = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wl-ortd-'));
  await ensureBackend('wasm');
  artifactPath = join(dir, 'resnet20.nern.safetensors');
  await compressCheckpoint(STATE_DICT, {
    ...DEFAULT_COMPRESS_OPTIONS,
    budget: { kind: 'hidden', hidden: 24 },
    steps: 30,
    backend: 'wasm',
    out: artifactPath,
  });
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Loss settings of a gradient comparison: with every term, or KL alone (the other terms constant zeros). */
interface Terms {
  /** KL on logits (true), or the relative output MSE of a non-classifier (false). */
  classifier?: boolean;
  temperature: number;
  featureWeight: number;
  reconstructionWeight: number;
}
const ALL_TERMS: Terms = { temperature: 4, featureWeight: 0.5, reconstructionWeight: 0.25 };

async function compareOneStep(quantBits: QuantBits | undefined, terms: Terms = ALL_TERMS): Promise<void> {
  if (!ORT.ok) throw new Error(ORT.reason);
  const model = await loadExecutableModel(MODEL);
  const artifact = await readArtifact(artifactPath);
  const data = await openDataset(IMAGES);
  const before = tf.memory().numTensors;
  const original = weightTensors(model.graph, model.weights);
  const predictor = Predictor.fromWeights(artifact.predictor);
  try {
    const { bound, kernels } = bindLayers(artifact, model.graph, 'resnet20');
    const { spec: pre } = await resolvePreprocessing(model, data);
    const batch = 8;
    const { images } = await readImageBatch(
      data,
      Array.from({ length: batch }, (_, i) => i),
      undefined,
    );
    const x = applyPreprocessing(images, pre);
    const encodings = boundEncodings(artifact, bound);
    const features = terms.featureWeight > 0 ? featureValues(model.graph) : [];
    assert.equal(features.length, terms.featureWeight > 0 ? 9 : 0);
    const graph: Graph = { ...model.graph, outputs: [...model.graph.outputs, ...features] };
    const originalSq = bound.reduce(
      (s, b) => s + tf.tidy(() => tf.sum(tf.square(original[b.name] as tf.Tensor)).dataSync()[0] ?? 0),
      0,
    );
    const loss = {
      classifier: terms.classifier !== false,
      temperature: terms.temperature,
      klWeight: 1,
      featureWeight: terms.featureWeight,
      reconstructionWeight: terms.reconstructionWeight,
      originalSquaredNorm: originalSq,
    };
    const spec: OrtDistillSpec = {
      graph,
      weights: original,
      teacherGraph: graph,
      teacherWeights: original,
      inputShape: x.shape,
      teacherInputShape: x.shape,
      features,
      layers: bound,
      encodings,
      predictor: artifact.predictor,
      loss,
      optimizer: adamConfig(10, 1e-3),
      ...(quantBits !== undefined ? { quantBits } : {}),
      gradientOutputs: true,
    };
    const built = buildDistillModels(spec);
    assert.ok('models' in built, 'reason' in built ? built.reason : '');
    const trainer = await OrtDistillTrainer.create(ORT.ort, spec, built.models, { threads: 2 });
    let native;
    try {
      native = await trainer.step(x.data, x.data);
    } finally {
      await trainer.dispose();
    }
    const nativeGrads = trainer.lastGradients;

    // TensorFlow.js: the objective as jobs/distill.ts writes it.
    const reference = tf.tidy(() => {
      const encoding = tf.tensor2d(encodings, [kernels, encodingWidth(artifact.kernelMap.encoding)]);
      const xs = tf.tensor(x.data, x.shape);
      const target = executeGraph(graph, original, { [model.graph.inputs[0]?.name ?? '']: xs });
      const parts: number[] = [];
      const { value, grads } = tf.variableGrads(() => {
        const out = predictor.apply(encoding, quantBits);
        const weights: Record<string, tf.Tensor> = { ...original };
        for (const b of bound) weights[b.name] = toWeight(tf.slice(out, [b.start, 0], [b.kernels, KERNEL_OUTPUTS]), b);
        const outputs = executeGraph(graph, weights, { [model.graph.inputs[0]?.name ?? '']: xs });
        const logits = graph.outputs[0] ?? '';
        const kl = loss.classifier
          ? distillationKl(target[logits] as tf.Tensor, outputs[logits] as tf.Tensor, loss.temperature)
          : relativeOutputMse(target[logits] as tf.Tensor, outputs[logits] as tf.Tensor);
        const feature = featureMapLoss(
          features.map((f) => target[f] as tf.Tensor),
          features.map((f) => outputs[f] as tf.Tensor),
        );
        const rec =
          loss.reconstructionWeight > 0
            ? reconstructionLoss(
                bound.map((b) => weights[b.name] as tf.Tensor),
                bound.map((b) => original[b.name] as tf.Tensor),
                originalSq,
              )
            : tf.scalar(0);
        parts.push(kl.dataSync()[0] ?? NaN, feature.dataSync()[0] ?? NaN, rec.dataSync()[0] ?? NaN);
        return tf.addN([
          tf.mul(kl, loss.klWeight),
          tf.mul(feature, loss.featureWeight),
          tf.mul(rec, loss.reconstructionWeight),
        ]) as tf.Scalar;
      }, predictor.variables);
      return {
        loss: value.dataSync()[0] ?? NaN,
        parts,
        grads: predictor.variables.map((v) => (grads[v.name] as tf.Tensor).dataSync() as Float32Array),
      };
    });
    const close = (a: number, b: number, what: string, tol: number): void => {
      assert.ok(Math.abs(a - b) <= tol * Math.max(Math.abs(b), 1e-6), `${what}: native ${a} vs tfjs ${b}`);
    };
    close(native.loss, reference.loss, 'loss', 1e-4);
    close(native.kl, reference.parts[0] ?? NaN, 'KL', 1e-4);
    close(native.feature, reference.parts[1] ?? NaN, 'feature term', 1e-4);
    close(native.reconstruction, reference.parts[2] ?? NaN, 'reconstruction term', 1e-4);
    assert.ok(reference.loss > 0 && native.kl > 0);
    assert.equal(nativeGrads.length, reference.grads.length);
    reference.grads.forEach((g, i) => {
      const err = relativeMaxError(nativeGrads[i] ?? new Float32Array(0), g);
      assert.ok(err < 1e-4, `predictor parameter ${i}: gradient relative error ${err}`);
    });
  } finally {
    predictor.dispose();
    tf.dispose(Object.values(original));
    await artifact.close();
    await data.close();
  }
  assert.equal(tf.memory().numTensors, before, 'no tensors leak');
}

void test(
  'ResNet-20: the native step’s predictor gradient equals the tfjs distillation gradient',
  { skip: NEEDS_ORT },
  () => compareOneStep(undefined),
);

void test('ResNet-20, quantisation-aware (int8): the native gradient equals the tfjs one', { skip: NEEDS_ORT }, () =>
  compareOneStep(8),
);

void test(
  'ResNet-20 at T = 1 with the KL term alone: the native gradient equals the tfjs one',
  { skip: NEEDS_ORT },
  () => compareOneStep(undefined, { temperature: 1, featureWeight: 0, reconstructionWeight: 0 }),
);

void test(
  'ResNet-20 outputs matched as a non-classifier (relative output MSE): the native gradient equals the tfjs one',
  { skip: NEEDS_ORT },
  () => compareOneStep(undefined, { classifier: false, temperature: 1, featureWeight: 0, reconstructionWeight: 0.25 }),
);

const SHORT: DistillOptionsDto = {
  steps: 4,
  batchSize: 16,
  lr: 1e-4,
  temperature: 2,
  klWeight: 1,
  featureWeight: 0.1,
  reconstructionWeight: 0.01,
  augment: true,
  evalSamples: 32,
  evalEvery: 0,
  seed: 3,
  backend: 'auto',
};

/** The flattened predictor parameters of an artifact. */
async function predictorValues(path: string): Promise<Float32Array> {
  const a = await readArtifact(path);
  try {
    const parts = a.predictor.layers.flatMap((l) => [l.weight, l.bias]);
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  } finally {
    await a.close();
  }
}

void test(
  'a short ResNet-20 distillation runs natively under auto and lands close to the tfjs one; the same seed writes the same bytes',
  { skip: NEEDS_ORT },
  async () => {
    const progress: DistillProgressDto[] = [];
    const run = (backend: 'auto' | 'wasm', out: string) =>
      distillArtifact(
        { artifact: artifactPath, model: MODEL, data: IMAGES, options: { ...SHORT, backend, out } },
        backend === 'auto' ? { onProgress: (p) => progress.push(p) } : {},
      );
    const nativeA = await run('auto', join(dir, 'native-a.nern.safetensors'));
    const nativeB = await run('auto', join(dir, 'native-b.nern.safetensors'));
    const tfjs = await run('wasm', join(dir, 'tfjs.nern.safetensors'));
    assert.equal(nativeA.engine, 'onnxruntime');
    assert.equal(nativeA.engineReason, undefined);
    assert.ok(progress.length === 2 * SHORT.steps && progress.every((p) => p.engine === 'onnxruntime'));
    assert.match(nativeA.engineLabel ?? '', /^onnxruntime \(native, \d+ threads?\)$/);
    assert.ok(progress.every((p) => p.engineLabel === nativeA.engineLabel));
    assert.equal(tfjs.engine, 'tfjs');
    assert.equal(tfjs.engineLabel, 'tfjs (wasm)');
    assert.match(tfjs.engineReason ?? '', /the wasm backend was asked for/);
    assert.deepEqual(
      readFileSync(nativeA.out),
      readFileSync(nativeB.out),
      'same seed, same engine: identical artifacts',
    );
    assert.deepEqual(nativeA.lossCurve, nativeB.lossCurve);

    // Both engines took the same batches: losses, held-out metrics and the predictor's updates agree.
    nativeA.lossCurve.forEach(([, l], i) => {
      const t = tfjs.lossCurve[i]?.[1] ?? NaN;
      assert.ok(Math.abs(l - t) <= 1e-3 * Math.abs(t), `step ${i + 1}: loss ${l} native vs ${t} tfjs`);
    });
    assert.ok(Math.abs(nativeA.after.agreement - tfjs.after.agreement) <= 1 / 32 + 1e-9);
    assert.ok(
      Math.abs(nativeA.after.relativeError - tfjs.after.relativeError) <= 0.02 * tfjs.after.relativeError,
      `held-out relative error ${nativeA.after.relativeError} native vs ${tfjs.after.relativeError} tfjs`,
    );
    const start = await predictorValues(artifactPath);
    const n = await predictorValues(nativeA.out);
    const t = await predictorValues(tfjs.out);
    let diff = 0;
    let moved = 0;
    for (let i = 0; i < start.length; i++) {
      diff += ((n[i] ?? 0) - (t[i] ?? 0)) ** 2;
      moved += ((t[i] ?? 0) - (start[i] ?? 0)) ** 2;
    }
    assert.ok(moved > 0, 'the predictor moved');
    assert.ok(Math.sqrt(diff / moved) < 0.05, `predictor updates differ by ${Math.sqrt(diff / moved)} of their size`);
  },
);

void test(
  'a model with an op that has no gradient rule distils on tfjs, and the reason names the op',
  { skip: NEEDS_ORT },
  async () => {
    const progress: DistillProgressDto[] = [];
    const statuses: string[] = [];
    const report = await distillArtifact(
      {
        artifact: artifactPath,
        model: join(FIXTURES, 'models', 'resnet20_fmnist_leaky.onnx'),
        data: IMAGES,
        options: { ...SHORT, steps: 2, out: join(dir, 'leaky.nern.safetensors') },
      },
      { onProgress: (p) => progress.push(p), onStatus: (s) => statuses.push(s) },
    );
    assert.equal(report.engine, 'tfjs');
    assert.match(report.engineReason ?? '', /LeakyRelu has no gradient rule on the native engine: LeakyRelu$/);
    assert.ok(
      progress.length === 2 && progress.every((p) => p.engine === 'tfjs' && p.engineReason === report.engineReason),
    );
    assert.ok(statuses.some((s) => s.startsWith('Distillation steps run on tfjs') && s.includes('LeakyRelu')));
    assert.equal(report.evalEngine, 'onnxruntime', 'the held-out evaluations still run natively');
  },
);

void test(
  'the device of native distillation: cpu-native trains on the CPU provider; cuda on a machine without one falls back to the CPU and says why',
  { skip: NEEDS_ORT },
  async () => {
    const run = async (backend: 'cpu-native' | 'cuda') => {
      const progress: DistillProgressDto[] = [];
      const statuses: string[] = [];
      const report = await distillArtifact(
        {
          artifact: artifactPath,
          model: MODEL,
          data: IMAGES,
          options: { ...SHORT, steps: 1, backend, out: join(dir, `${backend}.nern.safetensors`) },
        },
        { onProgress: (p) => progress.push(p), onStatus: (s) => statuses.push(s) },
      );
      return { report, progress, statuses };
    };
    const cpu = await run('cpu-native');
    assert.equal(cpu.report.engine, 'onnxruntime');
    assert.match(cpu.report.engineLabel ?? '', /^onnxruntime \(native, \d+ threads?\)$/);
    assert.equal(cpu.report.engineReason, undefined, 'the CPU provider was asked for: nothing to explain');
    assert.ok(cpu.progress.length === 1 && cpu.progress[0]?.engineLabel === cpu.report.engineLabel);

    const absent = missingGpuDevice('cuda');
    const cuda = await run('cuda');
    assert.equal(cuda.report.engine, 'onnxruntime');
    if (absent === null) {
      // A machine with an NVIDIA device node: CUDA was tried; either it runs the steps or the reason says why not.
      assert.ok(cuda.report.engineLabel === 'onnxruntime (native, CUDA)' || cuda.report.engineReason !== undefined);
      return;
    }
    assert.equal(cuda.report.engineLabel, cpu.report.engineLabel, 'the steps fell back to the CPU provider');
    assert.equal(cuda.report.engineReason, `CUDA unavailable: ${absent}`);
    assert.equal(cuda.progress[0]?.engineReason, cuda.report.engineReason);
    assert.ok(
      cuda.statuses.some((s) =>
        s.startsWith(`Distillation steps run on ${cpu.report.engineLabel ?? ''}: CUDA unavailable`),
      ),
      cuda.statuses.join(' | '),
    );
  },
);
