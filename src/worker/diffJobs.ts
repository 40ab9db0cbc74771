/**
 * Weight-comparison handlers of the engine worker: `diff/start` compares two checkpoints over src/core/jobs/diff.ts,
 * streaming throttled `diff/progress` events (pairs, and elements within big tensors); `diff/histogram` answers the Δ histogram of one pair
 * (src/core/jobs/diffHistogram.ts). Failures and cancellation are reported by worker.ts.
 */
import { diffFiles } from '../core/jobs/diff';
import { deltaHistogram } from '../core/jobs/diffHistogram';
import type { EngineCallKind } from '../protocol/engine';
import type { EngineHandlers } from './handlers';

/** Least time between two `diff/progress` events, ms (the first pair's is always sent). */
const DIFF_PROGRESS_MS = 100;

/** The diff request kinds. */
type DiffCallKind = Extract<EngineCallKind, `diff/${string}`>;

/** Handlers of the diff requests. */
export const diffHandlers: EngineHandlers<DiffCallKind> = {
  'diff/start': (params, job) => {
    let last = -Infinity;
    const progress = { done: 0, total: 0, name: '', elementsDone: 0, elementsTotal: 0 };
    const emit = (force: boolean): void => {
      const now = performance.now();
      if (!force && now - last < DIFF_PROGRESS_MS) return;
      last = now;
      job.emit({ kind: 'diff/progress', progress: { ...progress } });
    };
    const { match, includeIntegers, map } = params.options;
    return diffFiles(
      params.a,
      params.b,
      {
        ...(match !== undefined ? { match } : {}),
        ...(includeIntegers !== undefined ? { includeIntegers } : {}),
        ...(map !== undefined ? { map } : {}),
      },
      {
        signal: job.signal,
        onPair: (index, total, name) => {
          progress.done = index;
          progress.total = total;
          progress.name = name;
          emit(index === 0);
        },
        onValues: (done, total) => {
          progress.elementsDone = done;
          progress.elementsTotal = total;
          emit(false);
        },
      },
    );
  },
  'diff/histogram': (params, job) =>
    deltaHistogram(
      { a: params.a, tensorA: params.tensorA, b: params.b, tensorB: params.tensorB, bins: params.bins },
      job.signal,
    ),
};
