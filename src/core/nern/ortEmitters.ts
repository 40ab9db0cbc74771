/**
 * ONNX emitters shared by the native training graphs (the reconstruction step, nern/ortStep.ts, and the distillation
 * step, nern/ortDistill.ts): the in-graph fake quantisation of a predictor weight (the int8/int4 rule of
 * tensors/quantize.ts) and one Adam update exactly as `NernOptimizer` makes it, with the host-side scalars it reads.
 */
import type { NodeEmitter } from '../backend/onnxGraph';
import { quantMax, type QuantBits } from '../tensors/quantize';
import { learningRateAt, type OptimizerConfig } from './optimizer';

/** Names of the scalar constants `emitFakeQuant` reads, with their values for `bits`. */
export function fakeQuantConstants(bits: QuantBits): [string, number][] {
  return [
    ['c_qmax', quantMax(bits)],
    ['c_nqmax', -quantMax(bits)],
    ['c_fq_zero', 0],
    ['c_fq_one', 1],
  ];
}

/**
 * Emits the fake quantisation of weight `w` [fanIn, fanOut] into `out`, exactly the rule of tensors/quantize.ts per
 * column: scale = ReduceMax(|w|, axis 0) / qmax (float32 division, as `fround`), codes = Clip(Round(w / scale),
 * −qmax, qmax) (Round is half-to-even), value = codes · scale; a zero column divides by 1 instead of 0 and stays 0.
 * Reads the constants of `fakeQuantConstants`.
 */
export function emitFakeQuant(node: NodeEmitter, w: string, out: string): void {
  node('Abs', [w], [`${out}_abs`]);
  node(
    'ReduceMax',
    [`${out}_abs`],
    [`${out}_max`],
    [
      { name: 'axes', ints: [0] },
      { name: 'keepdims', i: 1 },
    ],
  );
  node('Div', [`${out}_max`, 'c_qmax'], [`${out}_scale`]);
  node('Equal', [`${out}_scale`, 'c_fq_zero'], [`${out}_iszero`]);
  node('Where', [`${out}_iszero`, 'c_fq_one', `${out}_scale`], [`${out}_divisor`]);
  node('Div', [w, `${out}_divisor`], [`${out}_ratio`]);
  node('Round', [`${out}_ratio`], [`${out}_round`]);
  node('Clip', [`${out}_round`, 'c_nqmax', 'c_qmax'], [`${out}_codes`]);
  node('Mul', [`${out}_codes`, `${out}_scale`], [out]);
}

/** Names of the scalar constants `emitAdam` reads, with their values. */
export function adamConstants(beta1: number, beta2: number, eps: number): [string, number][] {
  return [
    ['c_beta1', beta1],
    ['c_1mbeta1', 1 - beta1],
    ['c_beta2', beta2],
    ['c_1mbeta2', 1 - beta2],
    ['c_eps', eps],
  ];
}

/**
 * Emits one Adam update of parameter `p` from its gradient `grad`, exactly `NernOptimizer`'s: m' = m·β1 + g·(1−β1);
 * v' = v·β2 + g²·(1−β2); p' = [p·decay] − m'·stepScale / (√v'·denomScale + eps), with g = grad [+ p·c_l2]. Reads
 * `m_<p>`, `v_<p>`, the graph inputs `stepScale`, `denomScale` (and `decay` when decoupled), the constants of
 * `adamConstants` (and `c_l2` with `l2`); writes `<p>_new`, `m_<p>_new`, `v_<p>_new`.
 */
export function emitAdam(
  node: NodeEmitter,
  p: string,
  gradient: string,
  options: { l2: boolean; decoupled: boolean },
): void {
  let grad = gradient;
  if (options.l2) {
    node('Mul', [p, 'c_l2'], [`${p}_l2`]);
    node('Add', [grad, `${p}_l2`], [`${p}_gl2`]);
    grad = `${p}_gl2`;
  }
  node('Mul', [`m_${p}`, 'c_beta1'], [`${p}_ma`]);
  node('Mul', [grad, 'c_1mbeta1'], [`${p}_mb`]);
  node('Add', [`${p}_ma`, `${p}_mb`], [`m_${p}_new`]);
  node('Mul', [grad, grad], [`${p}_g2`]);
  node('Mul', [`v_${p}`, 'c_beta2'], [`${p}_va`]);
  node('Mul', [`${p}_g2`, 'c_1mbeta2'], [`${p}_vb`]);
  node('Add', [`${p}_va`, `${p}_vb`], [`v_${p}_new`]);
  node('Sqrt', [`v_${p}_new`], [`${p}_sq`]);
  node('Mul', [`${p}_sq`, 'denomScale'], [`${p}_sqd`]);
  node('Add', [`${p}_sqd`, 'c_eps'], [`${p}_den`]);
  node('Mul', [`m_${p}_new`, 'stepScale'], [`${p}_num`]);
  node('Div', [`${p}_num`, `${p}_den`], [`${p}_upd`]);
  let base = p;
  if (options.decoupled) {
    node('Mul', [p, 'decay'], [`${p}_dec`]);
    base = `${p}_dec`;
  }
  node('Sub', [base, `${p}_upd`], [`${p}_new`]);
}

/** The host-side scalars of one Adam step: the scheduled rate and the values of `emitAdam`'s scalar inputs. */
export interface AdamScalars {
  readonly lr: number;
  readonly stepScale: number;
  readonly denomScale: number;
  /** 1 − lr·weightDecay, when the decay is decoupled. */
  readonly decay?: number;
}

/**
 * The scalars of the step about to be taken, exactly as `NernOptimizer.step` computes them: `t` steps taken so far
 * (the schedule position), `tm` steps since the moments were last reset, both before this step; `lrScale` multiplies
 * the scheduled rate.
 */
export function adamScalars(config: OptimizerConfig, t: number, tm: number, lrScale = 1): AdamScalars {
  const lr = learningRateAt(config.schedule, config.lr, t) * lrScale;
  const bc1 = 1 - Math.pow(config.beta1, tm + 1);
  const bc2 = 1 - Math.pow(config.beta2, tm + 1);
  return {
    lr,
    stepScale: lr / bc1,
    denomScale: 1 / Math.sqrt(bc2),
    ...(config.weightDecay > 0 && config.weightDecayMode === 'decoupled' ? { decay: 1 - lr * config.weightDecay } : {}),
  };
}
