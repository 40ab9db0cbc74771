/**
 * Benchmark and check of the native NeRN training step (src/core/nern/ortStep.ts) against the tfjs step. Needs the
 * optional `onnxruntime-node` package (install: `ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save
 * onnxruntime-node@1.30.0`, or point NODE_PATH at a folder holding it). Prints:
 * - the gradient check: the graph's first-step Adam moment m = (1 − β1)·g against tfjs' `variableGrads` of `rmseLoss`
 *   on the same predictor and batch (with output scales, and with a mask), and parameters after 5 steps;
 * - steps/s of the ONNX step at h = 180, batch 4,096, with 1 and 2 intra-op threads, and of the tfjs wasm step.
 * Run: node --import tsx bench/ort-step.ts [--hidden 180] [--batch 4096] [--steps 40] [--threads 1,2] [--write FILE]
 */
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/core/backend/tfjsBackend';
import { adamConfig, NernOptimizer } from '../src/core/nern/optimizer';
import {
  buildTrainStepModel,
  loadOnnxRuntime,
  ortParamNames,
  OrtTrainer,
  type OrtModuleLike,
  type OrtTensorLike,
} from '../src/core/nern/ortStep';
import {
  layerShapes,
  nernPredictorSpec,
  Predictor,
  predictorForwardMacs,
  rmseLoss,
  type PredictorSpec,
} from '../src/core/nern/predictor';
import { Rng } from '../src/core/nern/rng';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

interface Batch {
  x: Float32Array;
  t: Float32Array;
  s: Float32Array;
  mask: Float32Array | null;
  count: number;
}

function makeBatch(rows: number, inputs: number, masked: boolean, seed: number): Batch {
  const rng = new Rng(seed);
  const x = rng.fillUniform(new Float32Array(rows * inputs), 1);
  const t = rng.fillUniform(new Float32Array(rows * 9), 0.05);
  const s = new Float32Array(rows);
  for (let i = 0; i < rows; i++) s[i] = 0.02 + 0.05 * rng.next();
  let mask: Float32Array | null = null;
  let count = rows * 9;
  if (masked) {
    mask = new Float32Array(rows * 9).fill(1);
    count = 0;
    for (let i = 0; i < rows; i++) {
      const pointwise = rng.next() < 0.3;
      for (let j = 0; j < 9; j++) {
        const on = !pointwise || j === 4;
        mask[i * 9 + j] = on ? 1 : 0;
        if (!on) t[i * 9 + j] = 0;
        count += on ? 1 : 0;
      }
    }
  }
  return { x, t, s, mask, count };
}

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    num += d * d;
    den += (b[i] ?? 0) ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

/** tfjs gradients of rmseLoss w.r.t. [w0, b0, …] for `batch`. */
function tfjsGrads(predictor: Predictor, b: Batch): { loss: number; grads: Float32Array[] } {
  return tf.tidy(() => {
    const rows = b.s.length;
    const x = tf.tensor2d(b.x, [rows, predictor.spec.inputs]);
    const target = tf.tensor2d(b.t, [rows, 9]);
    const scale = tf.tensor2d(b.s, [rows, 1]);
    const mask = b.mask ? tf.tensor2d(b.mask, [rows, 9]) : null;
    const { value, grads } = tf.variableGrads(
      () => rmseLoss(predictor.apply(x), target, scale, mask, b.count),
      predictor.variables,
    );
    return {
      loss: value.dataSync()[0] ?? Number.NaN,
      grads: predictor.variables.map((v) => Float32Array.from((grads[v.name] as tf.Tensor).dataSync())),
    };
  });
}

/** Runs the raw graph once from zero moments and returns (1 − β1)⁻¹·m_new per parameter (= the gradient) and the loss. */
async function ortGrads(
  ort: OrtModuleLike,
  spec: PredictorSpec,
  predictor: Predictor,
  b: Batch,
): Promise<{ loss: number; grads: Float32Array[] }> {
  const model = buildTrainStepModel({
    spec,
    masked: b.mask !== null,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    l2: 0,
    decoupled: false,
  });
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  const rows = b.s.length;
  const T = ort.Tensor;
  const feeds: Record<string, OrtTensorLike> = {
    x: new T('float32', b.x, [rows, spec.inputs]),
    t: new T('float32', b.t, [rows, 9]),
    s: new T('float32', b.s, [rows, 1]),
    count: new T('float32', Float32Array.of(b.count), []),
    stepScale: new T('float32', Float32Array.of(1e-3 / 0.1), []),
    denomScale: new T('float32', Float32Array.of(1 / Math.sqrt(0.001)), []),
  };
  if (b.mask) feeds.mask = new T('float32', b.mask, [rows, 9]);
  const shapes = layerShapes(spec).flatMap(([i, o]) => [[i, o], [o]]);
  ortParamNames(spec).forEach((n, i) => {
    const v = predictor.variables[i];
    if (!v) throw new Error('variable missing');
    const dims = shapes[i] ?? [];
    feeds[n] = new T('float32', Float32Array.from(v.dataSync()), dims);
    feeds[`m_${n}`] = new T('float32', new Float32Array(v.size), dims);
    feeds[`v_${n}`] = new T('float32', new Float32Array(v.size), dims);
  });
  const out = await session.run(feeds);
  await session.release();
  const grads = ortParamNames(spec).map((n) => (out[`m_${n}_new`]?.data as Float32Array).map((m) => m / (1 - 0.9)));
  return { loss: (out.loss?.data as Float32Array)[0] ?? Number.NaN, grads };
}

async function check(ort: OrtModuleLike, hidden: number, rows: number, masked: boolean): Promise<boolean> {
  const spec = nernPredictorSpec(hidden, 240, 9);
  const predictor = Predictor.create(spec, 7);
  const b = makeBatch(rows, 240, masked, 11);
  const ref = tfjsGrads(predictor, b);
  const got = await ortGrads(ort, spec, predictor, b);
  const errs = ref.grads.map((g, i) => relErr(got.grads[i] ?? new Float32Array(0), g));
  const worst = Math.max(...errs);
  const lossErr = Math.abs(got.loss - ref.loss) / ref.loss;
  // Five Adam steps (lr 1e-3, cosine over 5) through OrtTrainer against NernOptimizer.
  const config = adamConfig(5, 1e-3);
  const trainer = await OrtTrainer.create(ort, predictor.weights(), config, { masked, threads: 1 });
  const optimizer = new NernOptimizer(predictor.variables, config);
  const names = predictor.variables.map((v) => v.name);
  for (let k = 0; k < 5; k++) {
    const bk = makeBatch(rows, 240, masked, 100 + k);
    await trainer.step(bk);
    tf.tidy(() => {
      const rowsK = bk.s.length;
      const mask = bk.mask ? tf.tensor2d(bk.mask, [rowsK, 9]) : null;
      const { grads } = tf.variableGrads(
        () =>
          rmseLoss(
            predictor.apply(tf.tensor2d(bk.x, [rowsK, 240])),
            tf.tensor2d(bk.t, [rowsK, 9]),
            tf.tensor2d(bk.s, [rowsK, 1]),
            mask,
            bk.count,
          ),
        predictor.variables,
      );
      optimizer.step(names.map((n) => grads[n] as tf.Tensor));
    });
  }
  const after = trainer.weights();
  const stepErrs = predictor.variables.map((v, i) => {
    const layer = after.layers[i >> 1];
    return relErr((i % 2 === 0 ? layer?.weight : layer?.bias) ?? new Float32Array(0), Float32Array.from(v.dataSync()));
  });
  await trainer.dispose();
  optimizer.dispose();
  predictor.dispose();
  const ok = worst < 1e-5 && lossErr < 1e-5;
  console.log(
    `check h=${hidden} B=${rows}${masked ? ' masked' : ''}: loss ${ref.loss.toPrecision(6)} vs ${got.loss.toPrecision(6)} (rel ${lossErr.toExponential(1)}); ` +
      `gradient rel. error per tensor max ${worst.toExponential(2)} [${errs.map((e) => e.toExponential(1)).join(' ')}]; ` +
      `parameters after 5 Adam steps max rel. diff ${Math.max(...stepErrs).toExponential(2)} → ${ok ? 'OK' : 'MISMATCH'}`,
  );
  return ok;
}

async function timeOrt(
  ort: OrtModuleLike,
  spec: PredictorSpec,
  rows: number,
  steps: number,
  threads: number,
): Promise<number> {
  const trainer = await OrtTrainer.create(ort, Predictor.create(spec, 1).weights(), adamConfig(steps + 3, 1e-3), {
    masked: false,
    threads,
  });
  const b = makeBatch(rows, spec.inputs, false, 2);
  for (let i = 0; i < 3; i++) await trainer.step(b);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await trainer.step(b);
  const s = (steps * 1000) / (performance.now() - t0);
  await trainer.dispose();
  return s;
}

function timeTfjs(spec: PredictorSpec, rows: number, steps: number): number {
  const predictor = Predictor.create(spec, 1);
  const optimizer = new NernOptimizer(predictor.variables, adamConfig(steps + 2, 1e-3));
  const b = makeBatch(rows, spec.inputs, false, 2);
  const x = tf.tensor2d(b.x, [rows, spec.inputs]);
  const t = tf.tensor2d(b.t, [rows, 9]);
  const s = tf.tensor2d(b.s, [rows, 1]);
  const names = predictor.variables.map((v) => v.name);
  const one = (): void => {
    const l = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () => rmseLoss(predictor.apply(x), t, s, null, b.count),
        predictor.variables,
      );
      optimizer.step(names.map((n) => grads[n] as tf.Tensor));
      return value;
    });
    l.dataSync();
    l.dispose();
  };
  one();
  one();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) one();
  const r = (steps * 1000) / (performance.now() - t0);
  [x, t, s].forEach((z) => {
    z.dispose();
  });
  optimizer.dispose();
  predictor.dispose();
  return r;
}

async function main(): Promise<void> {
  const hidden = Number(arg('hidden', '180'));
  const rows = Number(arg('batch', '4096'));
  const steps = Number(arg('steps', '40'));
  const threads = arg('threads', '1,2').split(',').map(Number);
  const loaded = loadOnnxRuntime();
  if (!loaded.ok) {
    console.log(`skipped: ${loaded.reason}`);
    return;
  }
  const spec = nernPredictorSpec(hidden, 240, 9);
  const write = arg('write', '');
  if (write)
    writeFileSync(
      write,
      buildTrainStepModel({ spec, masked: false, beta1: 0.9, beta2: 0.999, eps: 1e-8, l2: 0, decoupled: false }),
    );
  const backend = await initBackend('wasm');
  console.log(`tfjs backend ${backend.name}`);
  let ok = await check(loaded.ort, 24, 64, false);
  ok = (await check(loaded.ort, 24, 64, true)) && ok;
  ok = (await check(loaded.ort, hidden, 512, false)) && ok;
  const gflop = (6 * rows * predictorForwardMacs(spec)) / 1e9;
  const report = (name: string, s: number): void => {
    console.log(
      `${name.padEnd(34)} ${s.toFixed(1).padStart(6)} steps/s  ${(s * gflop).toFixed(0).padStart(4)} GFLOP/s`,
    );
  };
  console.log(`h=${hidden} batch ${rows}: ${gflop.toFixed(2)} GFLOP per step`);
  report('tfjs wasm', timeTfjs(spec, rows, Math.max(5, Math.round(steps / 5))));
  for (const n of threads)
    report(`onnxruntime, ${n} thread${n === 1 ? '' : 's'}`, await timeOrt(loaded.ort, spec, rows, steps, n));
  if (!ok) process.exitCode = 1;
}

void main();
