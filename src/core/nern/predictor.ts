/**
 * The NeRN predictor: an MLP `Linear(in, h) → ReLU → (depth−1) × [Linear(h, h) → ReLU] → Linear(h, out)` that maps a
 * kernel's positional encoding to its (3×3 = 9) weights. Dense layers are `tf.customGrad` ops whose backward pass uses
 * plain matMul on explicitly transposed tensors: on the wasm backend that is the XNNPACK path, 7.7× faster than the
 * transposed-matMul forms tfjs' built-in gradient uses. Weights are stored [in, out] row-major (tfjs layout; the
 * transpose of PyTorch's `Linear.weight`). Quantisation-aware training runs the same layers on fake-quantised weights
 * (`fakeQuantize`: the int8/int4 rule of tensors/quantize.ts in the forward pass, a straight-through gradient).
 */
import * as tf from '@tensorflow/tfjs-core';
import { dequantizeMatrix, quantizeMatrix, quantMax, type QuantBits } from '../tensors/quantize';
import type { PredictorDtype } from '../../protocol/vocabulary';
import { throwIfAborted } from '../io/errors';
import { Rng } from './rng';

/** Architecture of a predictor. */
export interface PredictorSpec {
  /** Input width (encoding width; 240 for NeRN's encoding). */
  inputs: number;
  /** Hidden width h. */
  hidden: number;
  /** Output width (9 for a 3×3 kernel). */
  outputs: number;
  /** Number of Linear→ReLU layers before the output layer (NeRN: 4, i.e. input layer + 3 hidden). */
  depth: number;
}

/** One dense layer's parameters as plain data. */
export interface DenseWeights {
  /** Row-major [fanIn, fanOut]. */
  weight: Float32Array;
  /** [fanOut]. */
  bias: Float32Array;
}

/** A predictor's parameters as plain data (transferable, serialisable). `layers.length === spec.depth + 1`. */
export interface PredictorWeights {
  spec: PredictorSpec;
  layers: DenseWeights[];
}

/** NeRN's predictor for a given width: 240 inputs, 4 ReLU layers, 9 outputs. */
export function nernPredictorSpec(hidden: number, inputs = 240, outputs = 9): PredictorSpec {
  return { inputs, hidden, outputs, depth: 4 };
}

/** [fanIn, fanOut] of each dense layer, in order. */
export function layerShapes(spec: PredictorSpec): [number, number][] {
  const shapes: [number, number][] = [[spec.inputs, spec.hidden]];
  for (let i = 1; i < spec.depth; i++) shapes.push([spec.hidden, spec.hidden]);
  shapes.push([spec.hidden, spec.outputs]);
  return shapes;
}

/** Total trainable parameters. For NeRN (240 in, depth 4, 9 out): 3h² + 253h + 9. */
export function predictorParameterCount(spec: PredictorSpec): number {
  return layerShapes(spec).reduce((n, [i, o]) => n + i * o + o, 0);
}

/** Multiply-adds of one forward pass for one input row (for GFLOP/s figures: a training step is ≈ 3× forward). */
export function predictorForwardMacs(spec: PredictorSpec): number {
  return layerShapes(spec).reduce((n, [i, o]) => n + i * o, 0);
}

function checkSpec(spec: PredictorSpec): void {
  for (const [key, value] of Object.entries(spec)) {
    if (!Number.isInteger(value) || value < 1)
      throw new RangeError(`predictor ${key} must be a positive integer, got ${String(value)}`);
  }
}

/**
 * PyTorch-default initialisation (`nn.Linear.reset_parameters`): weights and biases uniform in ±1/√fanIn, drawn from
 * a seeded generator (layer by layer, weight then bias), so the same seed gives the same predictor.
 */
export function initPredictorWeights(spec: PredictorSpec, seed: number): PredictorWeights {
  checkSpec(spec);
  const rng = new Rng(seed);
  return {
    spec: { ...spec },
    layers: layerShapes(spec).map(([fanIn, fanOut]) => {
      const bound = 1 / Math.sqrt(fanIn);
      return {
        weight: rng.fillUniform(new Float32Array(fanIn * fanOut), bound),
        bias: rng.fillUniform(new Float32Array(fanOut), bound),
      };
    }),
  };
}

/** y = x·w + b, with the fast-on-wasm gradient. x [B, in], w [in, out], b [out]. */
export const dense = tf.customGrad((x, w, b, save) => {
  const [xt, wt, bt] = [x, w, b] as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
  (save as tf.GradSaveFunc)([xt, wt]);
  return {
    value: tf.add(tf.matMul(xt, wt), bt),
    gradFunc: (dy, saved) => {
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(dy, tf.transpose(sw)), tf.matMul(tf.transpose(sx), dy), tf.sum(dy, 0)];
    },
  };
}) as (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

/** y = relu(x·w + b) as one op (fused matMul+bias+ReLU forward), with the fast-on-wasm gradient. */
export const denseRelu = tf.customGrad((x, w, b, save) => {
  const [xt, wt, bt] = [x, w, b] as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
  const y = tf.fused.matMul({ a: xt, b: wt, bias: bt, activation: 'relu' }) as tf.Tensor2D;
  (save as tf.GradSaveFunc)([xt, wt, y]);
  return {
    value: y,
    gradFunc: (dy, saved) => {
      const [sx, sw, sy] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      const dz = tf.mul<tf.Tensor2D>(dy, tf.step(sy));
      return [tf.matMul(dz, tf.transpose(sw)), tf.matMul(tf.transpose(sx), dz), tf.sum(dz, 0)];
    },
  };
}) as (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

/**
 * RMSE loss sqrt(Σ (m ⊙ (ŷ·s − t))² / count) with a hand-written gradient with respect to ŷ only: tfjs-core registers
 * no gradients by itself (only the `@tensorflow/tfjs` union package does), so the loss must not rely on them.
 * `pred` [B, k]; `target` [B, k]; `scale` [B, 1] or null (= 1); `mask` [B, k] 0/1 or null (= 1); `count` = number of
 * represented entries (Σ mask), > 0.
 */
export function rmseLoss(
  pred: tf.Tensor2D,
  target: tf.Tensor2D,
  scale: tf.Tensor2D | null,
  mask: tf.Tensor2D | null,
  count: number,
): tf.Scalar {
  const op = tf.customGrad((p, save) => {
    const pt = p as tf.Tensor2D;
    let diff = tf.sub(scale ? tf.mul(pt, scale) : pt, target);
    if (mask) diff = tf.mul(diff, mask);
    const loss = tf.sqrt(tf.div(tf.sum(tf.square(diff)), count)) as tf.Scalar;
    // Everything the gradient reads is saved: tensors made inside a gradient's forward pass are freed before backward.
    (save as tf.GradSaveFunc)(scale ? [diff, loss, scale] : [diff, loss]);
    return {
      value: loss,
      gradFunc: (dy, saved) => {
        const [d, l, s] = saved as [tf.Tensor2D, tf.Scalar, tf.Tensor2D | undefined];
        // dL/dŷ = s·m·d / (count·L); d is already masked.
        const denom = tf.maximum(tf.mul(l, count), 1e-30);
        const g = tf.div(tf.mul(d, dy), denom);
        return s ? tf.mul(g, s) : g;
      },
    };
  });
  return op(pred) as tf.Scalar;
}

/**
 * relu(x·w + b) for an input that needs no gradient (the encodings): only [dw, db] are computed, saving the
 * [B, h] × [h, in] matMul of the input gradient (≈ 10 % of a NeRN training step at h = 180).
 */
export function denseReluConstantInput(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  const op = tf.customGrad((wi, bi, save) => {
    const y = tf.fused.matMul({
      a: x,
      b: wi as tf.Tensor2D,
      bias: bi as tf.Tensor1D,
      activation: 'relu',
    }) as tf.Tensor2D;
    (save as tf.GradSaveFunc)([x, y]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [sx, sy] = saved as [tf.Tensor2D, tf.Tensor2D];
        const dz = tf.mul<tf.Tensor2D>(dy, tf.step(sy));
        return [tf.matMul(tf.transpose(sx), dz), tf.sum(dz, 0)];
      },
    };
  }) as (w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;
  return op(w, b);
}

/**
 * Integer bits of a predictor dtype that stores codes (int8 → 8, int4 → 4), or undefined for the float dtypes (f32,
 * f16), whose rounding quantisation-aware training does not fake: f16 keeps 11 significant bits, far below the
 * reconstruction error of a predictor.
 */
export function predictorQuantBits(dtype: PredictorDtype): QuantBits | undefined {
  if (dtype === 'int8') return 8;
  if (dtype === 'int4') return 4;
  return undefined;
}

/**
 * Fake quantisation of a dense weight [fanIn, fanOut] for quantisation-aware training: the forward value is
 * dequantizeMatrix(quantizeMatrix(w, fanIn, fanOut, bits, 'column')) (one scale per output unit, tensors/quantize.ts),
 * computed with float32 tfjs ops that round exactly as that rule does: scale = max|w| / qmax over each column,
 * code = clip(round(w / scale), ±qmax) with half-to-even `tf.round`, value = code · scale; an all-zero column stays
 * zero. The backward pass is the straight-through estimator: the gradient reaches `w` unchanged (dL/dw = dL/dŵ), so
 * the optimiser keeps updating the float weights while the loss sees the quantised ones. Tidy-safe: returns one tensor.
 */
export function fakeQuantize(w: tf.Tensor2D, bits: QuantBits): tf.Tensor2D {
  const op = tf.customGrad((wi) => ({
    value: fakeQuantValue(wi as tf.Tensor2D, bits),
    gradFunc: (dy) => tf.clone(dy),
  })) as (w: tf.Tensor2D) => tf.Tensor2D;
  return op(w);
}

/** The forward value of `fakeQuantize` (no gradient): dequant(quant(w)) per column, in float32 tfjs ops. */
export function fakeQuantValue(w: tf.Tensor2D, bits: QuantBits): tf.Tensor2D {
  return tf.tidy(() => {
    const qmax = quantMax(bits);
    const scale = tf.div(tf.max(tf.abs(w), 0, true), qmax);
    // A zero column has scale 0 and codes 0; dividing by 1 there keeps 0 / 0 out of the graph.
    const divisor = tf.where(tf.equal(scale, 0), tf.onesLike(scale), scale);
    const codes = tf.clipByValue(tf.round(tf.div(w, divisor)), -qmax, qmax);
    return tf.mul(codes, scale);
  });
}

/**
 * The weights a quantised predictor stores and decodes to: every layer's weight through
 * dequantizeMatrix(quantizeMatrix(·, fanIn, fanOut, bits, 'column')), biases unchanged (they are stored float32).
 * What a predictor trained with `fakeQuantize` saw in its forward pass, exactly (tested).
 */
export function quantizedPredictorWeights(weights: PredictorWeights, bits: QuantBits): PredictorWeights {
  const shapes = layerShapes(weights.spec);
  return {
    spec: { ...weights.spec },
    layers: weights.layers.map((layer, i) => {
      const [fanIn, fanOut] = shapes[i] ?? [0, 0];
      return {
        weight: dequantizeMatrix(quantizeMatrix(layer.weight, fanIn, fanOut, bits, 'column')),
        bias: Float32Array.from(layer.bias),
      };
    }),
  };
}

let instanceCounter = 0;

/** A predictor whose parameters live in tfjs variables (trainable). Call `dispose()` when done. */
export class Predictor {
  readonly spec: PredictorSpec;
  /** [w0, b0, w1, b1, …]: weights [in, out], biases [out]. */
  readonly variables: tf.Variable[];

  private constructor(weights: PredictorWeights) {
    checkSpec(weights.spec);
    this.spec = { ...weights.spec };
    const shapes = layerShapes(this.spec);
    if (weights.layers.length !== shapes.length) {
      throw new RangeError(`predictor weights have ${weights.layers.length} layers, expected ${shapes.length}`);
    }
    // Validate everything before creating any variable: variables escape tidy, so a half-built predictor would leak.
    const layers = shapes.map(([fanIn, fanOut], i) => {
      const layer = weights.layers[i];
      if (layer?.weight.length !== fanIn * fanOut || layer.bias.length !== fanOut) {
        throw new RangeError(`predictor layer ${i} must be [${fanIn}, ${fanOut}] with ${fanOut} biases`);
      }
      return layer;
    });
    const id = instanceCounter++;
    this.variables = [];
    shapes.forEach(([fanIn, fanOut], i) => {
      const layer = layers[i] as DenseWeights;
      // The initial-value tensors are freed by the tidy in the factories; the variables keep the data.
      this.variables.push(tf.variable(tf.tensor2d(layer.weight, [fanIn, fanOut]), true, `nern${id}_w${i}`));
      this.variables.push(tf.variable(tf.tensor1d(layer.bias), true, `nern${id}_b${i}`));
    });
  }

  /** A freshly initialised predictor (PyTorch-default init from `seed`). */
  static create(spec: PredictorSpec, seed: number): Predictor {
    return Predictor.fromWeights(initPredictorWeights(spec, seed));
  }

  /** A predictor holding a copy of `weights`. */
  static fromWeights(weights: PredictorWeights): Predictor {
    let p: Predictor | undefined;
    tf.tidy(() => {
      p = new Predictor(weights);
      p.variables.forEach((v) => tf.keep(v));
    });
    if (p === undefined) throw new Error('unreachable');
    return p;
  }

  /**
   * Differentiable forward pass: [B, inputs] → [B, outputs]. Call inside a tidy / gradient scope. Gradients flow to
   * the variables only, never to `x` (the encodings are constants). With `quantBits`, every layer's weight goes
   * through `fakeQuantize` first (quantisation-aware training; biases stay float).
   */
  apply(x: tf.Tensor2D, quantBits?: QuantBits): tf.Tensor2D {
    const v = this.variables;
    const last = v.length / 2 - 1;
    const w = (i: number): tf.Tensor2D => {
      const raw = v[2 * i] as tf.Tensor2D;
      return quantBits === undefined ? raw : fakeQuantize(raw, quantBits);
    };
    let h = denseReluConstantInput(x, w(0), v[1] as tf.Tensor1D);
    for (let i = 1; i < last; i++) h = denseRelu(h, w(i), v[2 * i + 1] as tf.Tensor1D);
    return dense(h, w(last), v[2 * last + 1] as tf.Tensor1D);
  }

  /**
   * Inference-only forward pass (fused ops, no gradient bookkeeping): [B, inputs] → [B, outputs]. With `quantBits`,
   * on the fake-quantised weights (what the predictor stored as int8/int4 regenerates).
   */
  forward(x: tf.Tensor2D, quantBits?: QuantBits): tf.Tensor2D {
    return tf.tidy(() => {
      const v = this.variables;
      const last = v.length / 2 - 1;
      const w = (i: number): tf.Tensor2D => {
        const raw = v[2 * i] as tf.Tensor2D;
        return quantBits === undefined ? raw : fakeQuantValue(raw, quantBits);
      };
      let h = x;
      for (let i = 0; i < last; i++) {
        h = tf.fused.matMul({
          a: h,
          b: w(i),
          bias: v[2 * i + 1],
          activation: 'relu',
        }) as tf.Tensor2D;
      }
      return tf.fused.matMul({ a: h, b: w(last), bias: v[2 * last + 1] }) as tf.Tensor2D;
    });
  }

  /**
   * Predicts outputs for `rows` input rows in batches of `batchSize`, without leaking tensors. `inputs` is either a
   * [rows, inputs] tensor (sliced, not copied) or a row-major Float32Array. Returns row-major [rows, outputs]. With
   * `quantBits`, predicts with the fake-quantised weights (see `forward`).
   */
  predict(inputs: tf.Tensor2D | Float32Array, batchSize = 8192, quantBits?: QuantBits): Float32Array {
    const width = this.spec.inputs;
    const rows = inputs instanceof Float32Array ? inputs.length / width : inputs.shape[0];
    if (!Number.isInteger(rows))
      throw new RangeError(
        `input length ${inputs instanceof Float32Array ? inputs.length : 0} is not a multiple of ${width}`,
      );
    if (!(inputs instanceof Float32Array) && inputs.shape[1] !== width) {
      throw new RangeError(`inputs have ${inputs.shape[1]} columns, the predictor takes ${width}`);
    }
    const out = new Float32Array(rows * this.spec.outputs);
    for (let start = 0; start < rows; start += batchSize) {
      const n = Math.min(batchSize, rows - start);
      const values = tf.tidy(() => {
        const x =
          inputs instanceof Float32Array
            ? tf.tensor2d(inputs.subarray(start * width, (start + n) * width), [n, width])
            : tf.slice(inputs, [start, 0], [n, width]);
        return this.forward(x, quantBits).dataSync();
      });
      out.set(values, start * this.spec.outputs);
    }
    return out;
  }

  /**
   * `predict`, batch by batch with the event loop let in between: the same batches, so the same values. A cancel
   * (`signal`) is seen within one batch and rejects with CancelledError; `onRows` gets the rows done after each batch.
   */
  async predictAsync(
    inputs: tf.Tensor2D | Float32Array,
    options: { batchSize?: number; quantBits?: QuantBits; signal?: AbortSignal; onRows?: (done: number) => void } = {},
  ): Promise<Float32Array> {
    const batchSize = options.batchSize ?? 8192;
    const width = this.spec.inputs;
    const rows = inputs instanceof Float32Array ? inputs.length / width : inputs.shape[0];
    const out = new Float32Array(rows * this.spec.outputs);
    for (let start = 0; start < rows; start += batchSize) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      throwIfAborted(options.signal);
      const n = Math.min(batchSize, rows - start);
      let part: Float32Array;
      if (inputs instanceof Float32Array)
        part = this.predict(inputs.subarray(start * width, (start + n) * width), batchSize, options.quantBits);
      else {
        const tensor = inputs;
        part = tf.tidy(() => this.predict(tf.slice(tensor, [start, 0], [n, width]), batchSize, options.quantBits));
      }
      out.set(part, start * this.spec.outputs);
      options.onRows?.(start + n);
    }
    return out;
  }

  /** Copies the current parameters out as plain data. */
  weights(): PredictorWeights {
    const shapes = layerShapes(this.spec);
    return {
      spec: { ...this.spec },
      layers: shapes.map((_, i) => ({
        weight: Float32Array.from((this.variables[2 * i] as tf.Variable).dataSync()),
        bias: Float32Array.from((this.variables[2 * i + 1] as tf.Variable).dataSync()),
      })),
    };
  }

  /** Frees the variables. The predictor must not be used afterwards. */
  dispose(): void {
    for (const v of this.variables) v.dispose();
  }
}
