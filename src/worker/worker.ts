/**
 * The engine worker: a long-lived `worker_threads` thread that owns all heavy work (file parsing, statistics, and
 * later all tfjs state). It receives `WorkerRequest`s, runs core jobs, streams `WorkerEvent`s back, and aborts a job
 * when it receives `cancel` for its id. Files are opened here by path, so weights never cross `postMessage`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { inspectFile } from '../core/jobs/inspect';
import type { CompressEvent, CompressRequest, RunEvent, RunRequest, WorkerEvent, WorkerInitData, WorkerRequest } from '../protocol/engine';
import { hasKind } from '../protocol/common';
import { failureOf } from '../core/io/failure';
import { parallelWith, StatisticsPool } from './statsPool';
import { isCompressRequest, runCompressJob } from './compressJobs';
import { isRunRequest, runRunJob } from './modelJobs';

if (!parentPort) throw new Error('worker.ts must run inside a worker_threads Worker');
const port = parentPort;

/** Statistics threads, started on the first large checkpoint and kept for the worker's life. */
let pool: StatisticsPool | undefined;

/** Running jobs by request id, so `cancel` can abort them. */
const running = new Map<number, AbortController>();

/** Backend requested by the host (compression jobs may name their own). */
const backend = (workerData as Partial<WorkerInitData> | undefined)?.backend ?? 'auto';

function post(event: WorkerEvent | CompressEvent | RunEvent): void {
  port.postMessage(event);
}

async function runInspect(request: Extract<WorkerRequest, { kind: 'inspect/open' }>, signal: AbortSignal): Promise<void> {
  const started = performance.now();
  await inspectFile(
    request.path,
    { bins: request.histogramBins, signal, parallel: parallelWith(() => (pool ??= new StatisticsPool()), request.path) },
    {
      onHeader: (header) => { post({ kind: 'inspect/header', id: request.id, header }); },
      onTensorStats: (index, stats, histogram) => { post({ kind: 'inspect/tensorStats', id: request.id, index, stats, histogram }); },
      onTensorError: (index, message) => { post({ kind: 'inspect/tensorError', id: request.id, index, message }); },
    },
  );
  post({ kind: 'inspect/done', id: request.id, seconds: (performance.now() - started) / 1000 });
}

async function handle(request: WorkerRequest | CompressRequest | RunRequest): Promise<void> {
  if (request.kind === 'cancel') {
    running.get(request.id)?.abort();
    return;
  }
  const controller = new AbortController();
  running.set(request.id, controller);
  try {
    if (isCompressRequest(request)) await runCompressJob(request, controller.signal, post, backend);
    else if (isRunRequest(request)) await runRunJob(request, controller.signal, post, backend);
    else await runInspect(request, controller.signal);
  } catch (error) {
    const { reason, message } = failureOf(error);
    post({ kind: 'failed', id: request.id, reason, message });
    if (reason === 'internal') post({ kind: 'log', level: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  } finally {
    running.delete(request.id);
  }
}

port.on('message', (message: unknown) => {
  if (!hasKind(message)) return;
  void handle(message as WorkerRequest | CompressRequest | RunRequest);
});
