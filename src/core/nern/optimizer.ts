/**
 * Optimisers for the predictor, on tfjs variables with in-place `assign`: Adam (PyTorch's formula), RAdam (PyTorch
 * 1.13's `torch.optim.RAdam`, which is also the rectified step inside NeRN's Ranger), and Ranger = RAdam + Lookahead.
 * All share a per-step learning-rate schedule (linear warm-up, then cosine decay to a floor). Every step runs in one
 * tf.tidy: the only tensors that survive a step are the variables themselves.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Optimiser family. */
export type OptimizerKind = 'adam' | 'radam' | 'ranger';

/** Learning-rate schedule, evaluated per step. */
export interface ScheduleConfig {
  /** 'cosine': warm-up then cosine decay from `lr` to `minLr` at `totalSteps`; 'constant': warm-up then `lr`. */
  kind: 'cosine' | 'constant';
  /** Steps over which the cosine runs (the training length); beyond it the rate stays at `minLr`. */
  totalSteps: number;
  /** Floor of the cosine decay (NeRN: 1e-6). */
  minLr: number;
  /** Linear warm-up from lr/warmupSteps to lr over this many steps (0 = none). */
  warmupSteps: number;
}

/** Full optimiser configuration. */
export interface OptimizerConfig {
  kind: OptimizerKind;
  /** Peak learning rate. */
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Weight-decay coefficient (0 = none). */
  weightDecay: number;
  /**
   * 'l2': added to the gradient (PyTorch Adam/RAdam); 'decoupled': p ← p·(1 − lr·wd) before the step (AdamW, and the
   * Ranger implementation NeRN's code uses).
   */
  weightDecayMode: 'l2' | 'decoupled';
  /** Lookahead: every k steps slow ← slow + α(fast − slow), fast ← slow. Ranger: k = 6, α = 0.5. Null = off. */
  lookahead: { k: number; alpha: number } | null;
  /** Gradient centralisation (Ranger 2020's `use_gc`): subtract each weight column's mean over fan-in. */
  gradientCentralization: boolean;
  schedule: ScheduleConfig;
}

/** NeRN's reference settings: Ranger, lr 5e-3, β (0.5, 0.999), eps 1e-5, wd 1e-3, cosine to 1e-6. */
export function nernRangerConfig(totalSteps: number): OptimizerConfig {
  return {
    kind: 'ranger',
    lr: 5e-3,
    beta1: 0.5,
    beta2: 0.999,
    eps: 1e-5,
    weightDecay: 1e-3,
    weightDecayMode: 'decoupled',
    lookahead: { k: 6, alpha: 0.5 },
    gradientCentralization: false,
    schedule: { kind: 'cosine', totalSteps, minLr: 1e-6, warmupSteps: 0 },
  };
}

/** Plain Adam with PyTorch defaults for β and eps, cosine decay. */
export function adamConfig(totalSteps: number, lr = 1e-3): OptimizerConfig {
  return {
    kind: 'adam',
    lr,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0,
    weightDecayMode: 'l2',
    lookahead: null,
    gradientCentralization: false,
    schedule: { kind: 'cosine', totalSteps, minLr: 0, warmupSteps: 0 },
  };
}

/** Learning rate at 0-based `step` (the step about to be taken) for peak `lr`. */
export function learningRateAt(schedule: ScheduleConfig, lr: number, step: number): number {
  const warm = Math.max(0, Math.floor(schedule.warmupSteps));
  if (step < warm) return (lr * (step + 1)) / warm;
  if (schedule.kind === 'constant') return lr;
  const span = Math.max(1, schedule.totalSteps - warm);
  const t = Math.min(1, (step - warm) / span);
  return schedule.minLr + 0.5 * (lr - schedule.minLr) * (1 + Math.cos(Math.PI * t));
}

/** RAdam's rectification at 1-based step t: null while the variance estimate is untrustworthy (ρ_t ≤ 5). */
export function radamRectification(beta2: number, t: number): number | null {
  const rhoInf = 2 / (1 - beta2) - 1;
  const b2t = Math.pow(beta2, t);
  const rho = rhoInf - (2 * t * b2t) / (1 - b2t);
  if (rho <= 5) return null;
  return Math.sqrt(((rho - 4) * (rho - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rho));
}

function checkConfig(c: OptimizerConfig): void {
  const bad = (what: string): never => {
    throw new RangeError(`optimizer ${what}`);
  };
  if (!(c.lr > 0) || !Number.isFinite(c.lr)) bad(`learning rate must be positive, got ${c.lr}`);
  if (!(c.beta1 >= 0 && c.beta1 < 1)) bad(`beta1 must be in [0, 1), got ${c.beta1}`);
  if (!(c.beta2 >= 0 && c.beta2 < 1)) bad(`beta2 must be in [0, 1), got ${c.beta2}`);
  if (!(c.eps >= 0)) bad(`eps must be ≥ 0, got ${c.eps}`);
  if (!(c.weightDecay >= 0)) bad(`weight decay must be ≥ 0, got ${c.weightDecay}`);
  if (c.lookahead && (!(c.lookahead.k >= 1) || !(c.lookahead.alpha >= 0 && c.lookahead.alpha <= 1))) {
    bad(`lookahead needs k ≥ 1 and α in [0, 1]`);
  }
}

/**
 * An optimiser bound to a fixed list of variables. `step(grads)` applies one update in place; it does not dispose the
 * gradients (the caller's tidy does). State (moments, lookahead slow weights) lives in tfjs variables; `dispose()`
 * frees it.
 */
export class NernOptimizer {
  readonly config: OptimizerConfig;
  private readonly params: tf.Variable[];
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private readonly slow: tf.Variable[];
  /** Steps taken (schedule position). */
  private t = 0;
  /** Steps since the moments were last reset (bias correction, rectification, lookahead period). */
  private tm = 0;
  private lastLr = 0;
  /** Multiplies the scheduled learning rate (the collapse guard lowers it after a rollback). */
  lrScale = 1;

  constructor(params: tf.Variable[], config: OptimizerConfig) {
    checkConfig(config);
    this.config = {
      ...config,
      lookahead: config.lookahead ? { ...config.lookahead } : null,
      schedule: { ...config.schedule },
    };
    this.params = params;
    // Variables are not tracked by tidy; the zerosLike/clone temporaries are.
    this.m = tf.tidy(() => params.map((p) => tf.variable(tf.zerosLike(p), false)));
    this.v = tf.tidy(() => params.map((p) => tf.variable(tf.zerosLike(p), false)));
    this.slow = config.lookahead ? tf.tidy(() => params.map((p) => tf.variable(tf.clone(p), false))) : [];
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.t;
  }

  /** Learning rate the next step will use. */
  get nextLr(): number {
    return learningRateAt(this.config.schedule, this.config.lr, this.t) * this.lrScale;
  }

  /** Learning rate used by the last step (0 before the first). */
  get lr(): number {
    return this.lastLr;
  }

  /** Applies one update from `grads` (same order and shapes as the variables). */
  step(grads: readonly tf.Tensor[]): void {
    if (grads.length !== this.params.length) {
      throw new RangeError(`optimizer got ${grads.length} gradients for ${this.params.length} variables`);
    }
    const c = this.config;
    const lr = learningRateAt(c.schedule, c.lr, this.t) * this.lrScale;
    this.t += 1;
    this.tm += 1;
    this.lastLr = lr;
    const t = this.tm;
    const bc1 = 1 - Math.pow(c.beta1, t);
    const bc2 = 1 - Math.pow(c.beta2, t);
    const rect = c.kind === 'adam' ? null : radamRectification(c.beta2, t);
    tf.tidy(() => {
      const b1 = tf.scalar(c.beta1);
      const oneMinusB1 = tf.scalar(1 - c.beta1);
      const b2 = tf.scalar(c.beta2);
      const oneMinusB2 = tf.scalar(1 - c.beta2);
      const eps = tf.scalar(c.eps);
      const decay = c.weightDecay > 0 && c.weightDecayMode === 'decoupled' ? tf.scalar(1 - lr * c.weightDecay) : null;
      const l2 = c.weightDecay > 0 && c.weightDecayMode === 'l2' ? tf.scalar(c.weightDecay) : null;
      let stepScale: tf.Scalar;
      let denomScale: tf.Scalar | null = null;
      if (c.kind === 'adam') {
        stepScale = tf.scalar(lr / bc1);
        denomScale = tf.scalar(1 / Math.sqrt(bc2));
      } else if (rect !== null) {
        stepScale = tf.scalar((lr * rect * Math.sqrt(bc2)) / bc1);
      } else {
        stepScale = tf.scalar(lr / bc1);
      }
      this.params.forEach((p, i) => {
        const m = this.m[i] as tf.Variable;
        const v = this.v[i] as tf.Variable;
        let g = grads[i] as tf.Tensor;
        if (c.gradientCentralization && g.rank > 1) g = tf.sub(g, tf.mean(g, 0, true));
        if (l2) g = tf.add(g, tf.mul(p, l2));
        const m1 = tf.add(tf.mul(m, b1), tf.mul(g, oneMinusB1));
        const v1 = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), oneMinusB2));
        m.assign(m1);
        v.assign(v1);
        let update: tf.Tensor;
        if (c.kind === 'adam') {
          update = tf.div(tf.mul(m1, stepScale), tf.add(tf.mul(tf.sqrt(v1), denomScale ?? 1), eps));
        } else if (rect !== null) {
          update = tf.div(tf.mul(m1, stepScale), tf.add(tf.sqrt(v1), eps));
        } else {
          update = tf.mul(m1, stepScale);
        }
        const base = decay ? tf.mul(p, decay) : p;
        p.assign(tf.sub(base, update));
      });
      if (c.lookahead && t % c.lookahead.k === 0) {
        const alpha = tf.scalar(c.lookahead.alpha);
        this.params.forEach((p, i) => {
          const s = this.slow[i] as tf.Variable;
          const s1 = tf.add(s, tf.mul(tf.sub(p, s), alpha));
          s.assign(s1);
          p.assign(s1);
        });
      }
    });
  }

  /**
   * Flushes values below `threshold` in magnitude to zero in the optimiser state and parameters. Denormal floats make
   * wasm arithmetic ~10× slower, and a stalled run drives the second moments towards them. Cheap; call every few
   * hundred steps.
   */
  flushDenormals(threshold = 1e-30): void {
    tf.tidy(() => {
      const th = tf.scalar(threshold);
      for (const x of [...this.params, ...this.m, ...this.v, ...this.slow]) {
        x.assign(tf.where(tf.less(tf.abs(x), th), tf.zerosLike(x), x));
      }
    });
  }

  /** Resets moments and lookahead weights (after the caller restores parameters); the schedule position is kept. */
  reset(): void {
    this.tm = 0;
    tf.tidy(() => {
      this.m.forEach((m) => {
        m.assign(tf.zerosLike(m));
      });
      this.v.forEach((v) => {
        v.assign(tf.zerosLike(v));
      });
      this.slow.forEach((s, i) => {
        s.assign(this.params[i] as tf.Variable);
      });
    });
  }

  /** Frees the optimiser state (not the parameters). */
  dispose(): void {
    for (const x of [...this.m, ...this.v, ...this.slow]) x.dispose();
  }
}
