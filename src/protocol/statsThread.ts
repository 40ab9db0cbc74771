/**
 * Messages between the engine worker (or the CLI) and its statistics threads, helper threads that each compute one
 * tensor's statistics and histogram per request from a checkpoint they open by path. Plain types only.
 */
import type { FailureReason } from './common';
import type { HistogramDto, TensorStatsDto } from './inspect';

/** Requests to a statistics thread: compute tensor `index` of the checkpoint at `path` (`bins` bins), or stop `id`. */
export type StatsThreadRequest =
  { kind: 'stats/compute'; id: number; path: string; index: number; bins: number } | { kind: 'cancel'; id: number };

/** Replies of a statistics thread, one per `stats/compute`. */
export type StatsThreadReply =
  | { kind: 'stats/result'; id: number; stats: TensorStatsDto; histogram: HistogramDto }
  | { kind: 'stats/failed'; id: number; reason: FailureReason; message: string };
