/**
 * Micro benchmark of one NeRN predictor training step (forward, customGrad backward, Adam update) on the chosen tfjs
 * backend: prints steps/s and GFLOP/s. Run: node --import tsx bench/nern-step.ts [--hidden 180] [--batch 4096]
 * [--steps 20] [--backend wasm] [--plain] (--plain: separate dense + relu ops instead of the fused dense-ReLU op).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendPreference } from '../src/core/backend/tfjsBackend';
import { encodingWidth } from '../src/core/nern/encoding';
import { adamConfig, NernOptimizer } from '../src/core/nern/optimizer';
import {
  dense,
  rmseLoss,
  nernPredictorSpec,
  Predictor,
  predictorForwardMacs,
  predictorParameterCount,
} from '../src/core/nern/predictor';
import { Rng } from '../src/core/nern/rng';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

async function main(): Promise<void> {
  const hidden = Number(arg('hidden', '180'));
  const batch = Number(arg('batch', '4096'));
  const steps = Number(arg('steps', '20'));
  const plain = process.argv.includes('--plain');
  const choice = await initBackend(arg('backend', 'wasm') as BackendPreference);
  const width = encodingWidth();
  const spec = nernPredictorSpec(hidden, width, 9);
  const predictor = Predictor.create(spec, 1);
  const optimizer = new NernOptimizer(predictor.variables, adamConfig(steps));
  const rng = new Rng(2);
  const x = tf.tensor2d(rng.fillUniform(new Float32Array(batch * width), 1), [batch, width]);
  const y = tf.tensor2d(rng.fillUniform(new Float32Array(batch * 9), 0.05), [batch, 9]);
  const names = predictor.variables.map((v) => v.name);
  // tfjs-core registers no gradients, so the unfused variant needs its own ReLU gradient too.
  const relu = tf.customGrad((h, save) => {
    const out = tf.relu(h as tf.Tensor2D);
    (save as tf.GradSaveFunc)([out]);
    return { value: out, gradFunc: (dy, saved) => tf.mul(dy, tf.step(saved[0] as tf.Tensor)) };
  }) as (h: tf.Tensor2D) => tf.Tensor2D;
  const forward = (input: tf.Tensor2D): tf.Tensor2D => {
    if (!plain) return predictor.apply(input);
    const v = predictor.variables;
    let h = input;
    for (let i = 0; i < v.length / 2 - 1; i++) h = relu(dense(h, v[2 * i] as tf.Tensor2D, v[2 * i + 1] as tf.Tensor1D));
    return dense(h, v.at(-2) as tf.Tensor2D, v.at(-1) as tf.Tensor1D);
  };
  const step = (): number =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () => rmseLoss(forward(x), y, null, null, batch * 9),
        predictor.variables,
      );
      optimizer.step(names.map((n) => grads[n] as tf.Tensor));
      return value.dataSync()[0] ?? Number.NaN;
    });
  step(); // warm-up (kernel compilation, allocation)
  const before = tf.memory().numTensors;
  const start = performance.now();
  let loss = 0;
  for (let i = 0; i < steps; i++) loss = step();
  const seconds = (performance.now() - start) / 1000;
  const flops = 6 * batch * predictorForwardMacs(spec); // 2 (mul+add) × 3 (forward + two backward matmuls)
  console.log(
    `backend ${choice.name}${choice.fallbackReason ? ` (${choice.fallbackReason})` : ''}, h=${hidden}, ` +
      `${predictorParameterCount(spec)} params, batch ${batch}, ${plain ? 'dense+relu' : 'fused dense-ReLU'}`,
  );
  console.log(
    `steps/s ${(steps / seconds).toFixed(2)}  GFLOP/s ${((steps * flops) / seconds / 1e9).toFixed(1)}  ` +
      `(${steps} steps in ${seconds.toFixed(1)} s, last loss ${loss.toFixed(5)}, tensors ${before} → ${tf.memory().numTensors})`,
  );
  x.dispose();
  y.dispose();
  optimizer.dispose();
  predictor.dispose();
}

void main();
