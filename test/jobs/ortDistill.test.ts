// The native distillation step (nern/ortDistill.ts) on the project's ResNet-20 (PyTorch-exported ONNX, Fashion-MNIST)
// with a real compression artifact and real test images: the predictor gradient of one step of the ONNX training
// graph in onnxruntime against the TensorFlow.js gradient of the same objective (jobs/distill.ts' regeneration and
// losses.ts' terms: KL at temperature 4, the feature-map term on every block pre-activation, the reconstruction
// term), in float and quantisation-aware (int8) training, to 1e-4 relative; and the losses of both.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '../../src/core/graph/gradients';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS, ensureBackend } from '../../src/core/jobs/compress';
import { openDataset } from '../../src/core/data/dataset';
import { applyPreprocessing } from '../../src/core/data/preprocess';
import { readImageBatch } from '../../src/core/data/batches';
import { bindLayers, boundEncodings, featureValues, toWeight } from '../../src/core/jobs/distill';
import { executeGraph, weightTensors } from '../../src/core/graph/execute';
import type { Graph } from '../../src/core/graph/ir';
import { loadExecutableModel } from '../../src/core/models/executableModel';
import { resolvePreprocessing } from '../../src/core/models/preprocessing';
import { readArtifact } from '../../src/core/nern/artifact';
import { encodingWidth } from '../../src/core/nern/encoding';
import { KERNEL_OUTPUTS } from '../../src/core/nern/kernelMap';
import { distillationKl, featureMapLoss, reconstructionLoss } from '../../src/core/nern/losses';
import { adamConfig } from '../../src/core/nern/optimizer';
import { buildDistillModels, OrtDistillTrainer, type OrtDistillSpec } from '../../src/core/nern/ortDistill';
import { Predictor } from '../../src/core/nern/predictor';
import { loadOnnxRuntime } from '../../src/core/backend/onnxRuntime';
import type { QuantBits } from '../../src/core/tensors/quantize';
import { FIXTURES } from '../helpers/fixtures';
import { ortSkip } from '../helpers/ort';
import { relativeMaxError } from '../unit/graph/helpers';

const ORT = loadOnnxRuntime();
const NEEDS_ORT = ortSkip(ORT.ok ? undefined : `onnxruntime-node is optional and absent here (${ORT.reason})`);
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

async function compareOneStep(quantBits: QuantBits | undefined): Promise<void> {
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
    const features = featureValues(model.graph);
    assert.equal(features.length, 9);
    const graph: Graph = { ...model.graph, outputs: [...model.graph.outputs, ...features] };
    const originalSq = bound.reduce(
      (s, b) => s + tf.tidy(() => tf.sum(tf.square(original[b.name] as tf.Tensor)).dataSync()[0] ?? 0),
      0,
    );
    const loss = {
      classifier: true,
      temperature: 4,
      klWeight: 1,
      featureWeight: 0.5,
      reconstructionWeight: 0.25,
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
        const kl = distillationKl(target[logits] as tf.Tensor, outputs[logits] as tf.Tensor, loss.temperature);
        const feature = featureMapLoss(
          features.map((f) => target[f] as tf.Tensor),
          features.map((f) => outputs[f] as tf.Tensor),
        );
        const rec = reconstructionLoss(
          bound.map((b) => weights[b.name] as tf.Tensor),
          bound.map((b) => original[b.name] as tf.Tensor),
          originalSq,
        );
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
