/**
 * Metrics comparing a candidate's outputs with the original's: top-1 accuracy against labels, agreement of the
 * predicted classes, relative output error, and PSNR for image outputs, accumulated batch by batch.
 */
import type { EvalMetricsDto } from '../../protocol/evaluate';

/** PSNR reported when the outputs are bit-identical (the value is otherwise unbounded). */
export const PSNR_IDENTICAL_DB = 300;

/**
 * Whether a model's outputs (shapes with the batch dimension, as `forwardBatch` reports them) are a classifier's
 * logits: a single [N, K] output with K ≥ 2. Image-like outputs ([N, H, W, C], [N, C, H, W]…) are not.
 */
export function isClassifier(shapes: readonly (readonly number[])[]): boolean {
  const [only, ...rest] = shapes;
  return only !== undefined && rest.length === 0 && only.length === 2 && (only[1] ?? 0) >= 2;
}

function argmax(values: Float32Array, row: number, k: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let j = 0; j < k; j++) {
    const v = values[row * k + j] ?? -Infinity;
    if (v > bestValue) {
      bestValue = v;
      best = j;
    }
  }
  return best;
}

/** Accumulates metrics of candidate outputs against original outputs (and labels) over batches. */
export class MetricsAccumulator {
  private n = 0;
  private correct = 0;
  private originalCorrect = 0;
  private labelled = 0;
  private agree = 0;
  private se = 0;
  private ss = 0;
  private min = Infinity;
  private max = -Infinity;
  private values = 0;
  /** confusion[i][j]: original class i, candidate class j (classifiers). */
  readonly confusion: number[][];

  /** `classes` = outputs per sample when the model is a classifier, else 0. */
  constructor(readonly classes: number) {
    this.confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  }

  /** Adds a batch: `candidate` and `original` are [n, perSample] row-major; `labels` optional. */
  add(candidate: Float32Array, original: Float32Array, n: number, labels?: Int32Array): void {
    const k = this.classes;
    for (let i = 0; i < candidate.length; i++) {
      const o = original[i] ?? 0;
      const d = (candidate[i] ?? 0) - o;
      this.se += d * d;
      this.ss += o * o;
      if (o < this.min) this.min = o;
      if (o > this.max) this.max = o;
    }
    this.values += candidate.length;
    for (let s = 0; s < n; s++) {
      if (k > 0) {
        const c = argmax(candidate, s, k);
        const o = argmax(original, s, k);
        if (c === o) this.agree += 1;
        const row = this.confusion[o];
        if (row) row[c] = (row[c] ?? 0) + 1;
        const label = labels?.[s];
        if (label !== undefined) {
          this.labelled += 1;
          if (c === label) this.correct += 1;
          if (o === label) this.originalCorrect += 1;
        }
      } else {
        this.agree += 1;
      }
    }
    this.n += n;
  }

  /** Top-1 accuracy of the original outputs against the labels, when there were labels. */
  originalAccuracy(): number | undefined {
    return this.classes > 0 && this.labelled > 0 ? this.originalCorrect / this.labelled : undefined;
  }

  /** The metrics so far. */
  result(): EvalMetricsDto {
    const out: EvalMetricsDto = {
      n: this.n,
      agreement: this.n > 0 ? this.agree / this.n : 1,
      relativeError: this.ss > 0 ? Math.sqrt(this.se / this.ss) : this.se > 0 ? Infinity : 0,
    };
    if (this.classes > 0 && this.labelled > 0) out.accuracy = this.correct / this.labelled;
    if (this.classes === 0) {
      const mse = this.values > 0 ? this.se / this.values : 0;
      const peak = this.max - this.min;
      out.psnr =
        mse === 0
          ? PSNR_IDENTICAL_DB
          : peak > 0
            ? Math.min(PSNR_IDENTICAL_DB, 10 * Math.log10((peak * peak) / mse))
            : 0;
    }
    return out;
  }
}
