// The reconstruction loop on small synthetic layers: it learns, is deterministic, leaks no tensors, un-permutes its
// output, handles 1×1 convolutions, and stops promptly when aborted.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/core/backend/tfjsBackend';
import { CancelledError, CheckpointFormatError } from '../../src/core/io/errors';
import { assembleLayers, gridTargets, reconstructLayers, type KernelLayer } from '../../src/core/nern/kernelMap';
import { isPermutation } from '../../src/core/nern/permutation';
import { Rng } from '../../src/core/nern/rng';
import { BatchSampler, trainReconstruction, type TrainOptions } from '../../src/core/nern/train';

before(async () => {
  await initBackend('wasm');
});

/** Kernels that vary smoothly with filter and channel (learnable) plus a little noise; one 1×1 layer. */
function syntheticLayers(seed = 1): KernelLayer[] {
  const rng = new Rng(seed);
  const make = (name: string, cout: number, cin: number, k: number, amp: number): KernelLayer => {
    const values = new Float32Array(cout * cin * k * k);
    for (let f = 0; f < cout; f++) {
      for (let c = 0; c < cin; c++) {
        for (let j = 0; j < k * k; j++) {
          values[(f * cin + c) * k * k + j] =
            amp * (Math.sin((3 * f) / cout + j) * Math.cos((2 * c) / cin - j / 3) + 0.1 * (2 * rng.next() - 1));
        }
      }
    }
    return { name, shape: [cout, cin, k, k], values };
  };
  return [make('a', 8, 3, 3, 0.2), make('b', 8, 8, 3, 0.1), make('c', 4, 8, 1, 0.3)];
}

const SMALL: Partial<TrainOptions> = {
  hidden: 24,
  steps: 150,
  batchSize: 64,
  lr: 5e-3,
  warmupSteps: 10,
  progressEvery: 5,
  seed: 3,
};
/** What learns this smooth-by-construction data in a few hundred steps (a permutation would only scramble it). */
const LEARNS: Partial<TrainOptions> = { ...SMALL, steps: 300, lr: 1e-2, permutation: 'none' };

void test('learns: final RMSE well below the weight RMS; reconstruction matches decoding', async () => {
  const layers = syntheticLayers();
  const evaluations: number[] = [];
  const result = await trainReconstruction(
    layers,
    { ...LEARNS, evalEvery: 100 },
    {
      onEvaluation: (e) => evaluations.push(e.rmse / e.weightRms),
    },
  );
  const { rmse, weightRms } = result.evaluation;
  assert.ok(rmse < 0.5 * weightRms, `rmse ${rmse} vs weight rms ${weightRms}`);
  assert.equal(evaluations.length, 3, 'evaluations at 100, 200 and the end');
  assert.ok(evaluations[0]! > evaluations[2]!, `error falls: ${evaluations.join(', ')}`);
  assert.equal(result.predictorParameters, 3 * 24 * 24 + 253 * 24 + 9);
  assert.equal(result.representedWeights, 8 * 3 * 9 + 8 * 8 * 9 + 4 * 8);
  result.kernelMap.permutations.forEach((p, l) => {
    assert.ok(isPermutation(p, layers[l]!.shape[0]! * layers[l]!.shape[1]!));
  });
  // Shapes preserved, 1×1 layer gets one value per kernel; per-layer RMSE recomputed from the returned arrays.
  result.reconstruction.forEach((r, l) => {
    const original = layers[l]!.values;
    assert.equal(r.length, original.length);
    let se = 0;
    for (let i = 0; i < r.length; i++) se += (r[i]! - original[i]!) ** 2;
    const layerRmse = Math.sqrt(se / r.length);
    assert.ok(Math.abs(layerRmse - result.evaluation.layers[l]!.rmse) < 1e-6, `layer ${l} rmse consistent`);
  });
  // Decoding from the plain-data artifact parts gives the same weights.
  const decoded = reconstructLayers(result.predictor, result.kernelMap);
  decoded.forEach((d, l) => {
    d.forEach((v, i) => {
      assert.ok(Math.abs(v - result.reconstruction[l]![i]!) < 1e-6);
    });
  });
});

void test('assembleLayers undoes the permutation and applies scales and the 1×1 centre', () => {
  const layers: KernelLayer[] = [
    { name: 'k3', shape: [1, 2, 3, 3], values: new Float32Array(18) },
    { name: 'k1', shape: [2, 1, 1, 1], values: Float32Array.from([5, 6]) },
  ];
  const layout = {
    encoding: { base: 0.76, levels: 40 },
    layers: [
      { name: 'k3', shape: [1, 2, 3, 3] as [number, number, number, number] },
      { name: 'k1', shape: [2, 1, 1, 1] as [number, number, number, number] },
    ],
    permutations: [Int32Array.from([1, 0]), Int32Array.from([1, 0])],
    outputScales: Float32Array.from([2, 10]),
  };
  // Grid rows: row 0 → kernel 1 of k3, row 1 → kernel 0 of k3, row 2 → kernel 1 of k1, row 3 → kernel 0 of k1.
  const predictions = Float32Array.from({ length: 4 * 9 }, (_, i) => i);
  const [k3, k1] = assembleLayers(predictions, layout);
  assert.deepEqual(Array.from(k3!), [
    ...[9, 10, 11, 12, 13, 14, 15, 16, 17].map((v) => 2 * v),
    ...[0, 1, 2, 3, 4, 5, 6, 7, 8].map((v) => 2 * v),
  ]);
  assert.deepEqual(Array.from(k1!), [10 * 31, 10 * 22]);
  const grid = gridTargets(layers, layout);
  assert.deepEqual(Array.from(grid.targets.subarray(18, 36)), [0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0]);
  assert.ok(grid.mask);
});

void test('deterministic for a seed; no tensor growth across steps; progress reports', async () => {
  const layers = syntheticLayers(2);
  const counts: number[] = [];
  const progress: { step: number; loss: number; lr: number; stepsPerSecond: number }[] = [];
  const before = tf.memory().numTensors;
  const options = { ...SMALL, steps: 40 };
  const a = await trainReconstruction(layers, options, {
    onProgress: (p) => {
      counts.push(tf.memory().numTensors);
      progress.push(p);
    },
  });
  const b = await trainReconstruction(layers, options);
  assert.equal(tf.memory().numTensors, before, 'everything freed after the run');
  assert.ok(
    counts.every((c) => c === counts[0]),
    `tensor count stable across steps: ${counts.join(',')}`,
  );
  assert.deepEqual(
    progress.map((p) => p.step),
    [5, 10, 15, 20, 25, 30, 35, 40],
  );
  assert.ok(progress.every((p) => Number.isFinite(p.loss) && p.lr > 0 && p.stepsPerSecond > 0));
  assert.deepEqual(a.predictor, b.predictor, 'same seed → same weights');
  // With a real (crossfilter) permutation, errors recomputed from the un-permuted output match the grid-order ones.
  assert.equal(a.options.permutation, 'crossfilter');
  assert.ok(
    a.kernelMap.permutations.some((p) => p.some((v, i) => v !== i)),
    'permutation is not the identity',
  );
  a.reconstruction.forEach((r, l) => {
    const original = layers[l]!.values;
    let se = 0;
    for (let i = 0; i < r.length; i++) se += (r[i]! - original[i]!) ** 2;
    assert.ok(Math.abs(Math.sqrt(se / r.length) - a.evaluation.layers[l]!.rmse) < 1e-6, `layer ${l} rmse consistent`);
  });
  assert.deepEqual(a.reconstruction, b.reconstruction);
  // Encoding per batch on the CPU (for grids too big to pre-encode) trains identically.
  const perBatch = await trainReconstruction(layers, { ...options, maxEncodingBytes: 1 });
  assert.deepEqual(perBatch.predictor, a.predictor, 'per-batch encoding = pre-computed encoding');
  const c = await trainReconstruction(layers, { ...options, seed: 4 });
  assert.notDeepEqual(a.predictor.layers[0]!.weight, c.predictor.layers[0]!.weight);
});

void test('an abort stops the run within a second and frees every tensor', async () => {
  const layers = syntheticLayers(3);
  const before = tf.memory().numTensors;
  const controller = new AbortController();
  let abortedAt = 0;
  const run = trainReconstruction(
    layers,
    { ...SMALL, hidden: 64, batchSize: 256, steps: 100_000 },
    {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step >= 10 && abortedAt === 0) {
          abortedAt = performance.now();
          controller.abort();
        }
      },
    },
  );
  await assert.rejects(run, CancelledError);
  assert.ok(performance.now() - abortedAt < 1000, 'cancelled within 1 s');
  assert.equal(tf.memory().numTensors, before);
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(trainReconstruction(layers, SMALL, { signal: pre.signal }), CancelledError);
});

void test('adam and ranger both run; bad layers are rejected with a clear error', async () => {
  const layers = syntheticLayers(4);
  const r = await trainReconstruction(layers, { ...SMALL, steps: 30, optimizer: 'ranger', lr: undefined });
  assert.ok(Number.isFinite(r.evaluation.rmse));
  assert.equal(r.options.optimizer, 'ranger');
  await assert.rejects(
    trainReconstruction([{ name: 'fc', shape: [4, 4], values: new Float32Array(16) }], SMALL),
    (e: unknown) => e instanceof CheckpointFormatError && /fc has shape \[4, 4\]/.test(e.message),
  );
  await assert.rejects(
    trainReconstruction(
      [{ name: 'x', shape: [1, 1, 3, 3], values: Float32Array.from({ length: 9 }, () => NaN) }],
      SMALL,
    ),
    /non-finite/,
  );
  await assert.rejects(trainReconstruction(layers, { steps: 0 }), RangeError);
});

void test('batch sampler: uniform batches have no repeats; norm-weighted batches favour big kernels', () => {
  const norms = Float32Array.from({ length: 100 }, (_, i) => (i < 50 ? 0 : 1));
  const uniform = new BatchSampler(norms, new Rng(1), 1);
  const out = new Int32Array(100);
  uniform.next(out);
  assert.equal(new Set(out).size, 100);
  const weighted = new BatchSampler(norms, new Rng(1), 0);
  weighted.next(out);
  assert.ok(
    out.every((i) => i >= 50),
    'zero-norm kernels are never drawn by norm',
  );
});

void test('collapse guard: a learning rate that kills every ReLU is rolled back and cut', async () => {
  const layers = syntheticLayers(5);
  const r = await trainReconstruction(layers, { ...SMALL, lr: 1, steps: 30, guardEvery: 10 });
  assert.ok(r.guardEvents.length > 0, 'guard acted');
  // lr 1 × cosine(step 10 of 30, 6 warm-up steps) 0.933 × 0.25 = 0.233.
  assert.match(
    r.guardEvents[0]!,
    /step 10: output collapsed .* rolled back to step 0 and cut the learning rate to 2\.33e-1/,
  );
  assert.ok(Number.isFinite(r.evaluation.rmse));
  const off = await trainReconstruction(layers, { ...SMALL, lr: 1, steps: 30, guardEvery: 10, collapseGuard: false });
  assert.deepEqual(off.guardEvents, []);
});

void test('the whole-grid prediction reports its rows and stops on an abort between batches', async () => {
  // 128 × 96 kernels of 1×1 (12,288 rows) plus 3×3 layers: more than one 8,192-row batch.
  const layers = [
    ...syntheticLayers(5),
    { name: 'wide', shape: [128, 96, 1, 1], values: new Float32Array(12_288).fill(0.1) },
  ];
  const rows = 8 * 3 + 8 * 8 + 4 * 8 + 128 * 96;
  for (const maxEncodingBytes of [undefined, 1024]) {
    // Pre-computed encodings, then encoded per chunk (predictGridAsync).
    const options = { ...SMALL, steps: 3, ...(maxEncodingBytes ? { maxEncodingBytes } : {}) };
    const seen: [number, number][] = [];
    const done = await trainReconstruction(layers, options, { onReconstruction: (d, t) => seen.push([d, t]) });
    assert.deepEqual(
      seen,
      [
        [8192, rows],
        [rows, rows],
      ],
      `maxEncodingBytes ${maxEncodingBytes}`,
    );
    // The same values as the one-pass decoder.
    const decoded = reconstructLayers(done.predictor, done.kernelMap);
    done.reconstruction.forEach((r, i) => {
      assert.deepEqual(r, decoded[i]);
    });
    const before = tf.memory().numTensors;
    const controller = new AbortController();
    await assert.rejects(
      trainReconstruction(layers, options, {
        signal: controller.signal,
        onReconstruction: () => {
          controller.abort();
        },
      }),
      CancelledError,
    );
    assert.equal(tf.memory().numTensors, before);
  }
});
