// Preprocessing semantics against onnxruntime: a ResNet-20 whose declared input is 1×32×32 (resnet20_fmnist_32.onnx)
// on 28×28 Fashion-MNIST images with `pad 2`. The steps apply in the stated order (scale, mean/std, pad, crop,
// resize), an explicit option is never merged with a default resize, and a size that does not fit is an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'fflate';
import * as tf from '@tensorflow/tfjs-core';
import { ensureBackend } from '../../src/core/backend/tfjsBackend';
import { openDataset } from '../../src/core/data/dataset';
import { readInputBatch } from '../../src/core/data/batches';
import { weightTensors } from '../../src/core/graph/execute';
import { BadInputError } from '../../src/core/io/errors';
import { evaluateModel } from '../../src/core/jobs/evaluate';
import { forwardBatch } from '../../src/core/models/forward';
import { resolvePreprocessing } from '../../src/core/models/preprocessing';
import { loadExecutableModel } from '../../src/core/models/executableModel';
import type { PreprocessDto } from '../../src/protocol/evaluate';
import { FIXTURES } from '../helpers/fixtures';
import { loadOrt, ortSkip, runOrt } from '../helpers/ort';
import { relativeMaxError } from '../unit/graph/helpers';

const MODEL = join(FIXTURES, 'models', 'resnet20_fmnist_32.onnx');
const IMAGES = join(FIXTURES, 'data', 'idx', 't10k-images-idx3-ubyte.gz');
const LABELS = join(FIXTURES, 'data', 'idx', 't10k-labels-idx1-ubyte.gz');
const INTENDED: PreprocessDto = { scale: 1 / 255, mean: [0.286], std: [0.353], pad: [2], layout: 'NCHW' };

/** The intended preprocessing written out independently: x/255, (x − mean)/std, then 2 pixels of zeros per side. */
function referenceInput(): { data: Float32Array; n: number; labels: Uint8Array } {
  const images = gunzipSync(readFileSync(IMAGES));
  const labels = gunzipSync(readFileSync(LABELS)).subarray(8);
  const view = new DataView(images.buffer, images.byteOffset);
  const n = view.getUint32(4);
  const out = new Float32Array(n * 32 * 32);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const raw = images[16 + i * 784 + y * 28 + x] ?? 0;
        out[i * 1024 + (y + 2) * 32 + (x + 2)] = (raw / 255 - 0.286) / 0.353;
      }
    }
  }
  return { data: out, n, labels };
}

function argmaxRows(values: Float32Array, k: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * k < values.length; r++) {
    let best = 0;
    for (let j = 1; j < k; j++) if ((values[r * k + j] ?? -Infinity) > (values[r * k + best] ?? -Infinity)) best = j;
    out.push(best);
  }
  return out;
}

const ort = loadOrt();

void test(
  'pad 2 on a 32×32 model: the logits and the accuracy match onnxruntime with the intended preprocessing',
  { skip: ortSkip(typeof ort === 'string' ? ort : undefined) },
  async () => {
    if (typeof ort === 'string') assert.fail(ort);
    await ensureBackend('wasm');
    const ref = referenceInput();
    const expected = await runOrt(ort, MODEL, { input: { data: ref.data, dims: [ref.n, 1, 32, 32] } });
    const logits = expected.logits;
    assert.ok(logits !== undefined);
    const model = await loadExecutableModel(MODEL);
    const dataset = await openDataset(IMAGES);
    try {
      const { spec, dto } = await resolvePreprocessing(model, dataset, INTENDED);
      assert.equal(dto.resize, undefined, 'an explicit option is never merged with a default resize');
      const batch = await readInputBatch(
        dataset,
        Array.from({ length: ref.n }, (_, i) => i),
        spec,
      );
      assert.deepEqual(batch.shape, [ref.n, 1, 32, 32]);
      const weights = weightTensors(model.graph, model.weights);
      try {
        const out = forwardBatch(model.graph, weights, batch);
        assert.ok(
          relativeMaxError(out.values, logits.data) < 1e-4,
          `max relative error ${relativeMaxError(out.values, logits.data)}`,
        );
      } finally {
        tf.dispose(Object.values(weights));
      }
    } finally {
      await dataset.close();
    }
    const predicted = argmaxRows(logits.data, 10);
    const ortAccuracy = predicted.filter((p, i) => p === ref.labels[i]).length / ref.n;
    const report = await evaluateModel(MODEL, IMAGES, { preprocess: INTENDED });
    assert.equal(report.originalAccuracy, ortAccuracy);
    assert.deepEqual(report.preprocess, {
      layout: 'NCHW',
      scale: 1 / 255,
      mean: [0.286],
      std: [0.353],
      pad: [2, 2, 2, 2],
    });
    assert.equal(report.preprocessSource, 'options');
    assert.equal(report.warnings, undefined);
  },
);

void test('a size that does not fit the model is an error saying what was expected, unless a resize is asked for', async () => {
  await ensureBackend('wasm');
  const noPad: PreprocessDto = { scale: 1 / 255, mean: [0.286], std: [0.353], layout: 'NCHW' };
  await assert.rejects(evaluateModel(MODEL, IMAGES, { preprocess: noPad, limit: 4 }), (e: unknown) => {
    assert.ok(e instanceof BadInputError);
    assert.equal(e.option, 'preprocess');
    assert.match(e.message, /the 28×28 images are 28×28, but resnet20_fmnist_32\.onnx takes 32×32/);
    return true;
  });
  await assert.rejects(
    evaluateModel(MODEL, IMAGES, { preprocess: { ...INTENDED, pad: [4] }, limit: 4 }),
    /are 36×36, but .* takes 32×32/,
  );
  // Asked for: pad 4 then resize to 32×32 is accepted, and the report says so.
  const resized = await evaluateModel(MODEL, IMAGES, {
    preprocess: { ...INTENDED, pad: [4], resize: [32, 32] },
    limit: 4,
  });
  assert.deepEqual(resized.preprocess.resize, [32, 32]);
  // No options and no sidecar: the defaults resize to the model's input, because it is needed, and say so.
  const defaults = await evaluateModel(MODEL, IMAGES, { limit: 4 });
  assert.equal(defaults.preprocessSource, 'default');
  assert.deepEqual(defaults.preprocess, { layout: 'NCHW', resize: [32, 32] });
});

void test('raw 0–255 pixels put the original model near chance, and the report warns about the preprocessing', async () => {
  await ensureBackend('wasm');
  const raw = await evaluateModel(MODEL, IMAGES, { preprocess: { pad: [2], layout: 'NCHW' } });
  assert.ok((raw.originalAccuracy ?? 1) < 0.15, `accuracy ${raw.originalAccuracy}`);
  assert.equal(raw.warnings?.length, 1);
  assert.match(
    raw.warnings[0] ?? '',
    /near chance \(10\.0 % for 10 classes\): the preprocessing \(pad 2 → NCHW\) is probably not what the model was trained with/,
  );
});
