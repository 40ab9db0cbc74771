// Quantisation-aware training end to end: reconstruction runs whose last steps train for an int4/int8 predictor on
// both engines (the trained weights, quantised by tensors/quantize.ts, give exactly the forward the training saw;
// the reported reconstruction is the quantised predictor's; QAT beats quantising afterwards), the compress options
// that turn it on, and distillation of the project's ResNet-20 with and without QAT. No tensors leak.
import { predictGridOnBestEngine } from '../../src/core/nern/nativeForward';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS, ensureBackend } from '../../src/core/jobs/compress';
import { distillArtifact, targetPredictorDtype } from '../../src/core/jobs/distill';
import { BadInputError } from '../../src/core/io/errors';
import { readArtifact } from '../../src/core/nern/artifact';
import { assembleLayers, type KernelLayer } from '../../src/core/nern/kernelMap';
import { buildFakeQuantModel } from '../../src/core/nern/ortStep';
import { fakeQuantValue, layerShapes, Predictor, quantizedPredictorWeights } from '../../src/core/nern/predictor';
import { encodeGrid, encodingWidth } from '../../src/core/nern/encoding';
import { gridShapes } from '../../src/core/nern/kernelMap';
import { Rng } from '../../src/core/nern/rng';
import { compressQuantization, trainReconstruction, type TrainOptions } from '../../src/core/nern/train';
import { dequantizeMatrix, quantizeMatrix } from '../../src/core/tensors/quantize';
import type { DistillOptionsDto } from '../../src/protocol/evaluate';
import { FIXTURES } from '../helpers/fixtures';
import { projectOrt } from '../helpers/ort';

const { loaded: ORT, skip: NEEDS_ORT } = projectOrt();
const MODEL = join(FIXTURES, 'models', 'resnet20_fmnist.onnx');
const STATE_DICT = join(FIXTURES, 'models', 'resnet20_fmnist.pt');
const IMAGES = join(FIXTURES, 'data', 'idx', 't10k-images-idx3-ubyte.gz');
let dir = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wl-qat-'));
  await ensureBackend('wasm');
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function syntheticLayers(seed = 1): KernelLayer[] {
  const rng = new Rng(seed);
  const make = (name: string, cout: number, cin: number, k: number, amp: number): KernelLayer => {
    const values = new Float32Array(cout * cin * k * k);
    for (let f = 0; f < cout; f++)
      for (let c = 0; c < cin; c++)
        for (let j = 0; j < k * k; j++)
          values[(f * cin + c) * k * k + j] =
            amp * (Math.sin((3 * f) / cout + j) * Math.cos((2 * c) / cin - j / 3) + 0.1 * (2 * rng.next() - 1));
    return { name, shape: [cout, cin, k, k], values };
  };
  return [make('a', 16, 3, 3, 0.2), make('b', 16, 16, 3, 0.1), make('c', 8, 16, 1, 0.3)];
}

const SMALL: Partial<TrainOptions> = {
  hidden: 24,
  steps: 80,
  batchSize: 128,
  lr: 5e-3,
  warmupSteps: 2,
  seed: 3,
  permutation: 'none',
  engineThreads: 1,
  collapseGuard: false,
};

/** Index of the first element where the arrays differ as numbers (−0 equals 0), or −1. */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

for (const engine of ['tfjs', 'onnxruntime'] as const) {
  void test(
    `${engine}: QAT weights quantise to exactly the forward the training saw; the result is the quantised predictor's`,
    { skip: engine === 'onnxruntime' ? NEEDS_ORT : false },
    async () => {
      const layers = syntheticLayers();
      const tensors = tf.memory().numTensors;
      const qat = await trainReconstruction(layers, {
        ...SMALL,
        engine,
        quantization: { dtype: 'int4', fromStep: 40 },
        evalEvery: 20,
      });
      assert.equal(tf.memory().numTensors, tensors, 'no tensors leak');
      if (engine === 'onnxruntime') assert.equal(qat.engine.name, 'onnxruntime (native, 1 thread)');
      // The trained float weights, fake-quantised by tfjs and by the onnxruntime graph, are quantize.ts's values.
      const shapes = layerShapes(qat.predictor.spec);
      for (const [i, layer] of qat.predictor.layers.entries()) {
        const [fanIn, fanOut] = shapes[i]!;
        const expected = dequantizeMatrix(quantizeMatrix(layer.weight, fanIn, fanOut, 4, 'column'));
        const viaTfjs = tf.tidy(() => fakeQuantValue(tf.tensor2d(layer.weight, [fanIn, fanOut]), 4).dataSync());
        assert.equal(firstDifference(viaTfjs, expected), -1, `layer ${i}: tfjs fake quantisation`);
        if (ORT.ok) {
          const session = await ORT.ort.InferenceSession.create(buildFakeQuantModel(fanIn, fanOut, 4), {
            logSeverityLevel: 3,
          });
          const out = await session.run({ w: new ORT.ort.Tensor('float32', layer.weight, [fanIn, fanOut]) });
          await session.release();
          assert.equal(firstDifference(out.wq!.data as Float32Array, expected), -1, `layer ${i}: onnxruntime`);
        }
      }
      // The reported reconstruction is what the quantised predictor regenerates, on the engine that trained it (a
      // native run predicts every row natively, on its one thread).
      let recon: Float32Array[];
      if (engine === 'onnxruntime') {
        const native = await predictGridOnBestEngine(
          quantizedPredictorWeights(qat.predictor, 4),
          qat.kernelMap,
          'cpu-native',
          { threads: 1 },
        );
        assert.equal(native.engine.label, 'onnxruntime (native, 1 thread)');
        recon = assembleLayers(native.predictions, qat.kernelMap);
      } else {
        const q = Predictor.fromWeights(quantizedPredictorWeights(qat.predictor, 4));
        const encodings = encodeGrid(gridShapes(qat.kernelMap), qat.kernelMap.encoding);
        assert.equal(encodings.length % encodingWidth(qat.kernelMap.encoding), 0);
        recon = assembleLayers(q.predict(encodings), qat.kernelMap);
        q.dispose();
      }
      recon.forEach((r, i) => {
        assert.equal(firstDifference(r, qat.reconstruction[i]!), -1, `layer ${i} reconstruction`);
      });
      // Same seed, no QAT steps: quantised afterwards, the same float training, and a worse int4 reconstruction.
      const postHoc = await trainReconstruction(layers, {
        ...SMALL,
        engine,
        quantization: { dtype: 'int4', fromStep: SMALL.steps! },
      });
      const float = await trainReconstruction(layers, { ...SMALL, engine });
      assert.deepEqual(postHoc.predictor, float.predictor, 'fromStep = steps trains in float');
      assert.ok(postHoc.evaluation.rmse > float.evaluation.rmse, 'post-hoc int4 is evaluated quantised');
      assert.ok(
        qat.evaluation.rmse < postHoc.evaluation.rmse,
        `int4 rmse: ${qat.evaluation.rmse} with 40 QAT steps, ${postHoc.evaluation.rmse} quantised afterwards (float ${float.evaluation.rmse})`,
      );
    },
  );
}

void test('compress: --qat-steps needs an int8/int4 predictor and at most --steps; the last round trains for it', async () => {
  assert.deepEqual(compressQuantization({ predictorDtype: 'int8', qatSteps: 300 }, 1000), {
    dtype: 'int8',
    fromStep: 700,
  });
  assert.deepEqual(compressQuantization({ predictorDtype: 'int4' }, 1000), { dtype: 'int4', fromStep: 1000 });
  assert.equal(compressQuantization({}, 1000), undefined);
  assert.equal(compressQuantization({ predictorDtype: 'f16', qatSteps: 0 }, 1000), undefined);
  assert.throws(
    () => compressQuantization({ predictorDtype: 'f32', qatSteps: 10 }, 1000),
    (e: unknown) => e instanceof BadInputError && /int8 or int4/.test(e.message) && e.option === 'qatSteps',
  );
  assert.throws(
    () => compressQuantization({ predictorDtype: 'int8', qatSteps: 1001 }, 1000),
    (e: unknown) => e instanceof BadInputError && e.option === 'qatSteps',
  );
  await assert.rejects(
    compressCheckpoint(STATE_DICT, {
      ...DEFAULT_COMPRESS_OPTIONS,
      steps: 10,
      qatSteps: 5,
      backend: 'wasm',
      out: join(dir, 'never.nern.safetensors'),
    }),
    BadInputError,
  );
  await assert.rejects(
    trainReconstruction(syntheticLayers(), { steps: 10, quantization: { dtype: 'int4', fromStep: 11 } }),
    RangeError,
  );
});

void test('distillation: QAT by default for an int4 predictor dtype, --no-qat trains in float; metrics are int4', async () => {
  assert.equal(targetPredictorDtype({ predictorDtype: 'int8' }, undefined), 'int8');
  assert.equal(targetPredictorDtype({ predictorDtype: 'int8' }, 'int4'), 'int4');
  assert.equal(targetPredictorDtype({ predictorDtype: 'int3' }, undefined), 'f32');
  assert.equal(targetPredictorDtype({}, undefined), 'f32');
  const artifact = join(dir, 'resnet20.nern.safetensors');
  await compressCheckpoint(STATE_DICT, {
    ...DEFAULT_COMPRESS_OPTIONS,
    budget: { kind: 'hidden', hidden: 24 },
    steps: 40,
    backend: 'wasm',
    predictorDtype: 'int4',
    qatSteps: 20,
    out: artifact,
  });
  const options: DistillOptionsDto = {
    steps: 4,
    batchSize: 16,
    lr: 3e-5,
    temperature: 1,
    klWeight: 1,
    featureWeight: 0,
    reconstructionWeight: 0.01,
    augment: false,
    evalSamples: 32,
    evalEvery: 0,
    seed: 0,
    backend: 'wasm',
  };
  const tensors = tf.memory().numTensors;
  const run = (o: Partial<DistillOptionsDto>, name: string): ReturnType<typeof distillArtifact> =>
    distillArtifact({
      artifact,
      model: MODEL,
      data: IMAGES,
      options: { ...options, ...o, out: join(dir, `${name}.nern.safetensors`) },
    });
  const qat = await run({ predictorDtype: 'int4' }, 'qat');
  const noQat = await run({ predictorDtype: 'int4', qat: false }, 'float');
  const f32 = await run({ steps: 1, predictorDtype: 'f32' }, 'f32');
  assert.equal(tf.memory().numTensors, tensors, 'no tensors leak');
  assert.equal(qat.qat, true);
  assert.equal(qat.predictorDtype, 'int4');
  assert.equal(noQat.qat, false);
  assert.equal(f32.qat, false);
  assert.equal(f32.predictorDtype, 'f32', 'an explicit f32 overrides the int4 the artifact records');
  // Both int4 runs start from the same quantised phase-1 predictor; the float metrics differ from it.
  assert.deepEqual(qat.before, noQat.before);
  assert.ok(qat.lossCurve.every(([, l]) => Number.isFinite(l)));
  assert.notDeepEqual(qat.after, noQat.after, 'QAT changes what is trained');
  const a = await readArtifact(qat.out);
  try {
    assert.equal(a.meta.distillation?.settings.predictorDtype, 'int4');
    assert.equal(a.meta.distillation.settings.qat, true);
    assert.equal(a.meta.predictorStorage, 'int4', 'the distilled predictor is stored as int4');
  } finally {
    await a.close();
  }
  const source = await readArtifact(artifact);
  const float = await readArtifact(f32.out);
  try {
    assert.equal(source.meta.predictorStorage, 'int4');
    assert.equal(targetPredictorDtype(source.meta, undefined), 'int4', 'the recorded storage is the default target');
    assert.equal(float.meta.predictorStorage, undefined);
  } finally {
    await source.close();
    await float.close();
  }
});
