/**
 * The engine worker: a long-lived `worker_threads` thread that owns all heavy work (file parsing, statistics,
 * compression, evaluation, distillation). It dispatches each request through the handler table keyed by request kind
 * (`EngineHandlers`, typed by the protocol's call map), posts the handler's events as `event` messages and its result
 * as one `answer`, or one `failed` when it throws, aborts a request when it receives `cancel` for its id and stops it
 * early (Stop and Save) on `stop`. Files are
 * opened here by path, so weights never cross `postMessage`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { inspectFile } from '../core/jobs/inspect';
import { hasKind } from '../protocol/common';
import type { EngineCallKind, EngineInbound, EngineOutbound, EngineRequest, WorkerInitData } from '../protocol/engine';
import { failureOf } from '../core/io/failure';
import { parallelWith, StatisticsPool } from './statsPool';
import { compressHandlers } from './compressJobs';
import { diffHandlers } from './diffJobs';
import type { EngineHandler, EngineHandlers } from './handlers';
import { modelHandlers } from './modelJobs';
import { spectraHandlers } from './spectraJobs';
import { exportHandlers } from './exportJobs';

if (!parentPort) throw new Error('worker.ts must run inside a worker_threads Worker');
const port = parentPort;

/** Statistics threads, started on the first large checkpoint and kept for the worker's life. */
let pool: StatisticsPool | undefined;

/** Running jobs by request id, so `cancel` can abort them and `stop` can stop them early. */
const running = new Map<number, { cancel: AbortController; stop: AbortController }>();

/** Backend requested by the host (compression jobs may name their own). */
const backend = (workerData as Partial<WorkerInitData> | undefined)?.backend ?? 'auto';

function post(message: EngineOutbound): void {
  port.postMessage(message);
}

/** Every request kind's handler. */
const handlers: EngineHandlers = {
  'inspect/open': async (params, job) => {
    const started = performance.now();
    const parallel = parallelWith(() => (pool ??= new StatisticsPool()), params.path);
    await inspectFile(
      params.path,
      { bins: params.histogramBins, signal: job.signal, parallel },
      {
        onHeader: (header) => {
          job.emit({ kind: 'inspect/header', header });
        },
        onTensorStats: (index, stats, histogram) => {
          job.emit({ kind: 'inspect/tensorStats', index, stats, histogram });
        },
        onTensorError: (index, message) => {
          job.emit({ kind: 'inspect/tensorError', index, message });
        },
      },
    );
    return { seconds: (performance.now() - started) / 1000 };
  },
  ...compressHandlers,
  ...modelHandlers,
  ...spectraHandlers,
  ...exportHandlers,
  ...diffHandlers,
};

/** True if `kind` names a request this worker serves. */
function isCallKind(kind: string): kind is EngineCallKind {
  return Object.hasOwn(handlers, kind);
}

/** Runs `request` through its handler and posts its answer; rejects with the handler's error. */
async function serve<K extends EngineCallKind>(
  request: EngineRequest<K>,
  signal: AbortSignal,
  stop: AbortSignal,
): Promise<void> {
  const handler: EngineHandler<K> = handlers[request.kind];
  const id = request.id;
  const answer = await handler(request.params, {
    signal,
    stop,
    backend,
    emit: (event) => {
      post({ kind: 'event', id, event });
    },
    log: (level, message) => {
      post({ kind: 'log', level, message });
    },
  });
  post({ kind: 'answer', id, answer });
}

/** Serves `request` to its end: the answer, or one `failed` (and, for a bug, its stack in the log). */
async function handle(request: EngineRequest): Promise<void> {
  const controller = new AbortController();
  const stop = new AbortController();
  running.set(request.id, { cancel: controller, stop });
  try {
    await serve(request, controller.signal, stop.signal);
  } catch (error) {
    const { reason, message } = failureOf(error);
    post({ kind: 'failed', id: request.id, reason, message });
    if (reason === 'internal') {
      const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
      post({ kind: 'log', level: 'error', message: stack });
    }
  } finally {
    running.delete(request.id);
  }
}

port.on('message', (message: unknown) => {
  if (!hasKind(message)) return;
  const inbound = message as EngineInbound;
  if (inbound.kind === 'cancel') {
    running.get(inbound.id)?.cancel.abort();
    return;
  }
  if (inbound.kind === 'stop') {
    running.get(inbound.id)?.stop.abort();
    return;
  }
  if (!isCallKind(inbound.kind)) {
    const message = `The engine has no request ${String(inbound.kind)}.`;
    post({ kind: 'failed', id: inbound.id, reason: 'internal', message });
    return;
  }
  void handle(inbound);
});
