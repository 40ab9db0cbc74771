/**
 * The Reconstruction panel's cache of layer details asked from the written artifact, by (layer, filter): answers,
 * requests in flight and failures, with the "worst filter" answer (asked without a filter) remembered under the filter
 * it turned out to be. Pure data (no DOM), unit-tested under Node.
 */
import type { LayerDetailDto } from '../../src/protocol/compress';

/** Cache key of a (layer, filter) pair; `undefined` filter = "the worst filter". */
export function detailKey(layer: string, filter: number | undefined): string {
  return `${layer}\u0000${filter === undefined ? 'worst' : String(filter)}`;
}

/**
 * A filter index typed by the user, made valid for a layer of `count` filters: rounded toward zero and clamped to
 * 0…count−1 (when `count` is unknown only to ≥ 0); undefined for text that is not a number.
 */
export function clampFilter(text: string, count: number | undefined): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  const value = Number(trimmed);
  if (!Number.isFinite(value)) return undefined;
  const whole = Math.trunc(value);
  const max = count === undefined ? Number.MAX_SAFE_INTEGER : Math.max(0, count - 1);
  return Math.min(max, Math.max(0, whole));
}

/** Details by (layer, filter), at most `limit` answers (the oldest are dropped first). */
export class DetailCache {
  private readonly answers = new Map<string, LayerDetailDto>();
  private readonly worst = new Map<string, number>();
  private readonly pending = new Set<string>();
  private readonly failures = new Map<string, string>();

  constructor(private readonly limit = 256) {}

  /** Forgets everything (a new run or another artifact). */
  clear(): void {
    this.answers.clear();
    this.worst.clear();
    this.pending.clear();
    this.failures.clear();
  }

  /** Number of cached answers. */
  get size(): number {
    return this.answers.size;
  }

  /** The detail of `layer` at `filter` (undefined: the worst filter, once an answer said which one it is). */
  get(layer: string, filter: number | undefined): LayerDetailDto | undefined {
    const f = filter ?? this.worst.get(layer);
    return f === undefined ? undefined : this.answers.get(detailKey(layer, f));
  }

  /** Stores the answer to a request for (`layer`, `requested`); clears its pending mark and any failure. */
  put(layer: string, requested: number | undefined, detail: LayerDetailDto): void {
    this.pending.delete(detailKey(layer, requested));
    this.failures.delete(detailKey(layer, requested));
    if (requested === undefined) this.worst.set(layer, detail.filter.index);
    const key = detailKey(layer, detail.filter.index);
    this.answers.delete(key);
    this.answers.set(key, detail);
    while (this.answers.size > this.limit) {
      const oldest = this.answers.keys().next().value;
      if (oldest === undefined) break;
      this.answers.delete(oldest);
    }
  }

  /** Records that the request for (`layer`, `filter`) failed with `message`. */
  fail(layer: string, filter: number | undefined, message: string): void {
    this.pending.delete(detailKey(layer, filter));
    this.failures.set(detailKey(layer, filter), message);
  }

  /** Forgets failures, so the next ask retries (e.g. after the user clicks again: the source may be back). */
  clearFailures(): void {
    this.failures.clear();
  }

  /** Why the request for (`layer`, `filter`) failed, if it did. */
  failure(layer: string, filter: number | undefined): string | undefined {
    return this.failures.get(detailKey(layer, filter));
  }

  /** True while a request for (`layer`, `filter`) is in flight. */
  isPending(layer: string, filter: number | undefined): boolean {
    return this.pending.has(detailKey(layer, filter));
  }

  /** Marks a request for (`layer`, `filter`) as sent. */
  markPending(layer: string, filter: number | undefined): void {
    this.pending.add(detailKey(layer, filter));
  }
}
