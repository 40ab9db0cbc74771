/**
 * The extension host's client for the engine worker: one long-lived `worker_threads` Worker (dist/worker.js), started
 * lazily on the first request, that owns all tensor work. Requests get ids; events the worker streams for a request
 * are handed to that request's callback until its terminal event (`…/done` resolves, `failed` rejects). Cancellation
 * tokens send a `cancel` message and settle the request at once. If the worker crashes or exits, every pending
 * request fails with reason `workerCrashed` and the next request starts a fresh worker. `log` events go to the log.
 * It imports no `vscode` values (tokens and the log are structural), so it is unit-tested with a fake worker.
 */
import { Worker } from 'node:worker_threads';
import { hasKind, type FailureReason } from '../../protocol/common';
import type {
  CompressEvent,
  CompressRequest,
  RunEvent,
  RunRequest,
  WorkerEvent,
  WorkerInitData,
  WorkerRequest,
} from '../../protocol/engine';

/** Where log lines go (a `vscode.LogOutputChannel` fits). */
export interface EngineLog {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** A cancellation token (a `vscode.CancellationToken` fits). */
export interface CancellationLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): unknown };
}

/** Callbacks a worker port reports to. */
export interface WorkerHandlers {
  message(value: unknown): void;
  error(error: Error): void;
  exit(code: number): void;
}

/** The two things the client does to a worker. */
export interface WorkerPort {
  post(message: EngineMessage): void;
  terminate(): Promise<void>;
}

/** Starts a worker wired to `handlers`; may throw if the worker cannot be created. */
export type WorkerFactory = (handlers: WorkerHandlers) => WorkerPort;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Every message the host posts to the worker: inspection, compression and run requests, and `cancel`. */
export type EngineMessage = WorkerRequest | CompressRequest | RunRequest;

/** A request as callers write it: any worker request except `cancel`, without the `id` (the client assigns it). */
export type EngineRequest = DistributiveOmit<Exclude<EngineMessage, { kind: 'cancel' }>, 'id'>;

/** Events that belong to one request (everything except `log`). */
export type RequestEvent = Exclude<WorkerEvent | CompressEvent | RunEvent, { kind: 'log' }>;

/**
 * Requests answered by one event other than `…/done`, with that event's kind. (`compress/start` also streams a
 * `compress/planned` event, which completes only a `compress/plan` request.)
 */
const ANSWER_KINDS: Readonly<Record<string, string>> = {
  'compress/plan': 'compress/planned',
  'compress/decompress': 'compress/decompressed',
  'compress/openArtifact': 'compress/artifact',
  'compress/detail': 'compress/layerDetail',
};

/**
 * The event that completes a request successfully: kinds ending in `/done`, or the single answer of a question-like
 * request (`compress/planned`, `compress/decompressed`, `compress/artifact`, `compress/layerDetail`).
 */
export type DoneEvent = Extract<
  RequestEvent,
  { kind: `${string}/done` | 'compress/planned' | 'compress/decompressed' | 'compress/artifact' | 'compress/layerDetail' }
>;

/** A failed request: `reason` says whether it was cancelled, bad input, a worker crash or an internal error. */
export class EngineError extends Error {
  constructor(
    readonly reason: FailureReason,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

/** Creates real `worker_threads` workers running `scriptPath`, with `init()` as their `workerData`. */
export function nodeWorkerFactory(scriptPath: string, init: () => WorkerInitData): WorkerFactory {
  return (handlers) => {
    const worker = new Worker(scriptPath, { workerData: init(), execArgv: [] });
    worker.on('message', (value: unknown) => {
      handlers.message(value);
    });
    worker.on('error', (error: Error) => {
      handlers.error(error);
    });
    worker.on('messageerror', (error: Error) => {
      handlers.error(error);
    });
    worker.on('exit', (code: number) => {
      handlers.exit(code);
    });
    return {
      post: (message) => {
        worker.postMessage(message);
      },
      terminate: async () => {
        await worker.terminate();
      },
    };
  };
}

interface Pending {
  readonly kind: string;
  readonly started: number;
  readonly onEvent: (event: RequestEvent) => void;
  readonly resolve: (event: DoneEvent) => void;
  readonly reject: (error: EngineError) => void;
  readonly unsubscribe: () => void;
}

interface LiveWorker {
  readonly port: WorkerPort;
  readonly generation: number;
}

/** True if `event` completes a request of kind `requestKind`. */
function isDone(requestKind: string, event: RequestEvent): event is DoneEvent {
  const answer = ANSWER_KINDS[requestKind];
  return answer === undefined ? event.kind.endsWith('/done') : event.kind === answer;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Client for the engine worker. Disposable; after `dispose` every request fails with reason `cancelled`. */
export class EngineClient {
  private worker: LiveWorker | undefined;
  private generation = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private restartWhenIdle = false;
  private disposed = false;

  constructor(
    private readonly factory: WorkerFactory,
    private readonly log: EngineLog,
  ) {}

  /** True while a worker is running. */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** Number of requests awaiting their terminal event. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Sends `request` to the worker (starting it if needed). Every event for this request, including the terminal one,
   * is passed to `onEvent` first; the promise then resolves with the `…/done` event or rejects with an `EngineError`
   * (`failed` from the worker, `cancelled` when `token` fires, `workerCrashed` when the worker dies or cannot start).
   */
  request(request: EngineRequest, onEvent: (event: RequestEvent) => void, token?: CancellationLike): Promise<DoneEvent> {
    if (this.disposed) return Promise.reject(new EngineError('cancelled', 'Weight Lens is shutting down.'));
    if (token?.isCancellationRequested === true) return Promise.reject(new EngineError('cancelled', 'Cancelled.'));
    const id = this.nextId++;
    return new Promise<DoneEvent>((resolve, reject) => {
      let port: WorkerPort;
      try {
        port = this.ensureWorker();
      } catch (e) {
        this.log.error(`Engine worker could not start: ${describe(e)}`);
        reject(new EngineError('workerCrashed', `The Weight Lens engine could not start: ${describe(e)}`));
        return;
      }
      const subscription = token?.onCancellationRequested(() => {
        this.cancel(id);
      });
      this.pending.set(id, {
        kind: request.kind,
        started: Date.now(),
        onEvent,
        resolve,
        reject,
        unsubscribe: () => subscription?.dispose(),
      });
      this.log.debug(`→ ${request.kind} #${id}`);
      try {
        port.post({ ...request, id });
      } catch (e) {
        this.settle(id, new EngineError('internal', `Could not send ${request.kind} to the engine: ${describe(e)}`));
      }
    });
  }

  /** Cancels request `id`: tells the worker and rejects the request with reason `cancelled` at once. */
  cancel(id: number): void {
    if (!this.pending.has(id)) return;
    try {
      this.worker?.port.post({ kind: 'cancel', id });
    } catch (e) {
      this.log.warn(`Could not send cancel #${id}: ${describe(e)}`);
    }
    this.settle(id, new EngineError('cancelled', 'Cancelled.'));
  }

  /** Stops the worker so that the next request starts a fresh one (e.g. after a backend change); waits for idle. */
  restart(): void {
    if (this.pending.size > 0) {
      this.restartWhenIdle = true;
      return;
    }
    this.stopWorker('restart requested');
  }

  /** Fails every pending request with `cancelled` and terminates the worker. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.failAll('cancelled', 'Weight Lens is shutting down.');
    this.stopWorker('disposed');
  }

  private ensureWorker(): WorkerPort {
    if (this.worker) return this.worker.port;
    const generation = ++this.generation;
    this.log.info('Starting the engine worker.');
    const port = this.factory({
      message: (value) => {
        this.onMessage(generation, value);
      },
      error: (error) => {
        this.onCrash(generation, `The Weight Lens engine crashed: ${error.message}`);
      },
      exit: (code) => {
        this.onCrash(generation, `The Weight Lens engine stopped unexpectedly (exit code ${code}).`);
      },
    });
    this.worker = { port, generation };
    return port;
  }

  private onMessage(generation: number, value: unknown): void {
    if (generation !== this.worker?.generation) return;
    if (!hasKind(value)) {
      this.log.warn('Ignored a malformed message from the engine worker.');
      return;
    }
    const event = value as WorkerEvent | CompressEvent | RunEvent;
    if (event.kind === 'log') {
      const text = `[engine] ${event.message}`;
      if (event.level === 'error') this.log.error(text);
      else if (event.level === 'warn') this.log.warn(text);
      else this.log.info(text);
      return;
    }
    const entry = this.pending.get(event.id);
    if (!entry) return; // cancelled or already settled: late events are dropped
    try {
      entry.onEvent(event);
    } catch (e) {
      this.log.error(`Handler for ${event.kind} #${event.id} threw: ${describe(e)}`);
    }
    if (event.kind === 'failed') this.settle(event.id, new EngineError(event.reason, event.message));
    else if (isDone(entry.kind, event)) this.settle(event.id, event);
  }

  private onCrash(generation: number, message: string): void {
    if (generation !== this.worker?.generation) return; // an old worker we stopped on purpose
    this.log.error(message);
    const port = this.worker.port;
    this.worker = undefined;
    port.terminate().catch((e: unknown) => {
      this.log.debug(`Terminating the crashed worker: ${describe(e)}`);
    });
    this.failAll('workerCrashed', message);
  }

  private settle(id: number, outcome: DoneEvent | EngineError): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    entry.unsubscribe();
    const ms = Date.now() - entry.started;
    if (outcome instanceof EngineError) {
      this.log.debug(`✗ ${entry.kind} #${id} ${outcome.reason} after ${ms} ms`);
      entry.reject(outcome);
    } else {
      this.log.debug(`✓ ${entry.kind} #${id} in ${ms} ms`);
      entry.resolve(outcome);
    }
    if (this.pending.size === 0 && this.restartWhenIdle) {
      this.restartWhenIdle = false;
      this.stopWorker('restart requested');
    }
  }

  private failAll(reason: FailureReason, message: string): void {
    for (const id of [...this.pending.keys()]) this.settle(id, new EngineError(reason, message));
  }

  private stopWorker(why: string): void {
    const live = this.worker;
    if (!live) return;
    this.worker = undefined;
    this.log.info(`Stopping the engine worker (${why}).`);
    live.port.terminate().catch((e: unknown) => {
      this.log.warn(`Stopping the engine worker failed: ${describe(e)}`);
    });
  }
}
