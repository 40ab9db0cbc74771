/**
 * A pool of statistics threads, so inspection uses every core: each thread opens the checkpoint by path and computes
 * whole tensors. Used by the engine worker and the CLI through `inspectFile`'s `statistics` runner.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CancelledError, CheckpointFormatError } from '../core/io/errors';
import type { StatisticsRunner } from '../core/jobs/inspect';
import type { CheckpointHeaderDto, HistogramDto, TensorStatsDto } from '../protocol/inspect';
import type { StatsThreadReply, StatsThreadRequest } from '../protocol/statsThread';

/** Checkpoints whose decodable tensors total fewer bytes than this are inspected in one thread: starting threads costs more. */
export const POOL_MIN_BYTES = 64 * 1024 * 1024;

interface Pending {
  resolve(value: { stats: TensorStatsDto; histogram: HistogramDto }): void;
  reject(error: Error): void;
}

/**
 * `inspectFile`'s `parallel` option for a pool: use it when the header's decodable tensors are large enough to be
 * worth the threads, else compute in the calling thread.
 */
export function parallelWith(
  pool: () => StatisticsPool,
  path: string,
): (header: CheckpointHeaderDto) => { run: StatisticsRunner; concurrency: number } | undefined {
  return (header) => {
    const bytes = header.tensors.reduce((sum, t) => sum + (t.notDecoded === undefined ? t.bytes : 0), 0);
    if (bytes < POOL_MIN_BYTES || header.tensors.length < 2) return undefined;
    const p = pool();
    return { run: p.runner(path), concurrency: p.size };
  };
}

/** A fixed set of statistics threads; `runner` hands each tensor to an idle one. */
export class StatisticsPool {
  private readonly threads: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly waiting: ((worker: Worker) => void)[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  /**
   * Starts `size` threads (default: one per core, at most 4) running `script` (default: `stats-thread.js` beside
   * this bundle).
   */
  constructor(
    readonly size: number = Math.min(4, Math.max(1, availableParallelism())),
    script: string = join(__dirname, 'stats-thread.js'),
  ) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(script);
      worker.on('message', (reply: StatsThreadReply) => {
        this.settle(reply);
      });
      worker.on('error', (error) => {
        this.failAll(error);
      });
      this.threads.push(worker);
      this.idle.push(worker);
    }
  }

  /** The runner to pass as `inspectFile`'s `statistics` option for the checkpoint at `path`. */
  runner(path: string): StatisticsRunner {
    return async (index, _entry, bins, signal) => {
      const worker = await this.acquire();
      try {
        return await this.request(worker, path, index, bins, signal);
      } finally {
        this.release(worker);
      }
    };
  }

  /** Stops every thread. Pending requests fail as cancelled. */
  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new CancelledError());
    await Promise.all(this.threads.map((t) => t.terminate()));
  }

  private acquire(): Promise<Worker> {
    const worker = this.idle.pop();
    if (worker) return Promise.resolve(worker);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(worker: Worker): void {
    const waiter = this.waiting.shift();
    if (waiter) waiter(worker);
    else this.idle.push(worker);
  }

  private request(
    worker: Worker,
    path: string,
    index: number,
    bins: number,
    signal?: AbortSignal,
  ): Promise<{ stats: TensorStatsDto; histogram: HistogramDto }> {
    if (this.closed) return Promise.reject(new CancelledError());
    if (signal?.aborted) return Promise.reject(new CancelledError());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        worker.postMessage({ kind: 'cancel', id } satisfies StatsThreadRequest);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: (value) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(value);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      });
      worker.postMessage({ kind: 'stats/compute', id, path, index, bins } satisfies StatsThreadRequest);
    });
  }

  private settle(reply: StatsThreadReply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    if (reply.kind === 'stats/result') pending.resolve({ stats: reply.stats, histogram: reply.histogram });
    else if (reply.reason === 'badInput') pending.reject(new CheckpointFormatError(reply.message));
    else if (reply.reason === 'cancelled') pending.reject(new CancelledError());
    else pending.reject(new Error(reply.message));
  }

  private failAll(error: Error): void {
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.reject(error);
    }
  }
}
