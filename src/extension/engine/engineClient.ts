/**
 * The extension host's client for the engine worker: one long-lived `worker_threads` Worker (dist/worker.js), started
 * lazily on the first request, that owns all tensor work. `call(kind, params, onEvent)` sends a request typed by the
 * protocol's call map (`EngineCalls`): the events the worker streams for it go to `onEvent`, typed to that request's
 * events, and the promise resolves with its typed answer (`answer`) or rejects with an `EngineError` (`failed`).
 * Cancellation tokens send a `cancel` message and settle the request at once. If the worker crashes or exits, every
 * pending request fails with reason `workerCrashed` and the next request starts a fresh worker. `log` messages go to
 * the log. It imports no `vscode` values (tokens and the log are structural), so it is unit-tested with a fake worker.
 */
import { Worker } from 'node:worker_threads';
import { hasKind, type FailureReason } from '../../protocol/common';
import type {
  EngineAnswer,
  EngineCallKind,
  EngineEvent,
  EngineInbound,
  EngineOutbound,
  EngineParams,
  EngineRequest,
  WorkerInitData,
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
  post(message: EngineInbound): void;
  terminate(): Promise<void>;
}

/** Starts a worker wired to `handlers`; may throw if the worker cannot be created. */
export type WorkerFactory = (handlers: WorkerHandlers) => WorkerPort;

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
  readonly kind: EngineCallKind;
  readonly started: number;
  /** The caller's handler, typed to this request's events (the worker sends only those for its id). */
  readonly onEvent: ((event: EngineEvent) => void) | undefined;
  /** The caller's resolve, typed to this request's answer (the worker answers its id with that). */
  readonly resolve: (answer: EngineAnswer<EngineCallKind>) => void;
  readonly reject: (error: EngineError) => void;
  readonly unsubscribe: () => void;
}

interface LiveWorker {
  readonly port: WorkerPort;
  readonly generation: number;
}

/** The message of a thrown value: an Error's message, else its string form. */
export function errorMessage(error: unknown): string {
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

  /** Number of requests awaiting their answer or failure. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Sends request `kind` with `params` to the worker (starting it if needed). Each event the worker streams for it is
   * passed to `onEvent`; the promise resolves with its answer or rejects with an `EngineError` (`failed` from the
   * worker, `cancelled` when `token` fires, `workerCrashed` when the worker dies or cannot start). When `stop` fires,
   * the worker is asked to stop the job early and save (Stop and Save); the request then answers as usual.
   */
  call<K extends EngineCallKind>(
    kind: K,
    params: EngineParams<K>,
    onEvent?: (event: EngineEvent<K>) => void,
    token?: CancellationLike,
    stop?: CancellationLike,
  ): Promise<EngineAnswer<K>> {
    if (this.disposed) return Promise.reject(new EngineError('cancelled', 'Weight Lens is shutting down.'));
    if (token?.isCancellationRequested === true) return Promise.reject(new EngineError('cancelled', 'Cancelled.'));
    const id = this.nextId++;
    return new Promise<EngineAnswer<K>>((resolve, reject) => {
      let port: WorkerPort;
      try {
        port = this.ensureWorker();
      } catch (e) {
        this.log.error(`Engine worker could not start: ${errorMessage(e)}`);
        reject(new EngineError('workerCrashed', `The Weight Lens engine could not start: ${errorMessage(e)}`));
        return;
      }
      const subscription = token?.onCancellationRequested(() => {
        this.cancel(id);
      });
      const stopping = stop?.onCancellationRequested(() => {
        if (!this.pending.has(id)) return;
        try {
          this.worker?.port.post({ kind: 'stop', id });
        } catch (e) {
          this.log.warn(`Could not send stop #${id}: ${errorMessage(e)}`);
        }
      });
      this.pending.set(id, {
        kind,
        started: Date.now(),
        // The worker streams for `id` only the events and the answer of request `kind` (the call map's pairing).
        onEvent,
        resolve,
        reject,
        unsubscribe: () => {
          subscription?.dispose();
          stopping?.dispose();
        },
      });
      this.log.debug(`→ ${kind} #${id}`);
      try {
        const request: EngineRequest<K> = { kind, id, params };
        port.post(request as EngineRequest); // (TypeScript does not widen a generic request to the union by itself)
      } catch (e) {
        this.settle(id, new EngineError('internal', `Could not send ${kind} to the engine: ${errorMessage(e)}`));
      }
    });
  }

  /** Cancels request `id`: tells the worker and rejects the request with reason `cancelled` at once. */
  cancel(id: number): void {
    if (!this.pending.has(id)) return;
    try {
      this.worker?.port.post({ kind: 'cancel', id });
    } catch (e) {
      this.log.warn(`Could not send cancel #${id}: ${errorMessage(e)}`);
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
    const message = value as EngineOutbound;
    if (message.kind === 'log') {
      const text = `[engine] ${message.message}`;
      if (message.level === 'error') this.log.error(text);
      else if (message.level === 'warn') this.log.warn(text);
      else this.log.info(text);
      return;
    }
    const entry = this.pending.get(message.id);
    if (!entry) return; // cancelled or already settled: late messages are dropped
    switch (message.kind) {
      case 'event':
        try {
          entry.onEvent?.(message.event);
        } catch (e) {
          this.log.error(`Handler for ${message.event.kind} #${message.id} threw: ${errorMessage(e)}`);
        }
        break;
      case 'answer':
        this.settle(message.id, { answer: message.answer });
        break;
      case 'failed':
        this.settle(message.id, new EngineError(message.reason, message.message));
        break;
    }
  }

  private onCrash(generation: number, message: string): void {
    if (generation !== this.worker?.generation) return; // an old worker we stopped on purpose
    this.log.error(message);
    const port = this.worker.port;
    this.worker = undefined;
    port.terminate().catch((e: unknown) => {
      this.log.debug(`Terminating the crashed worker: ${errorMessage(e)}`);
    });
    this.failAll('workerCrashed', message);
  }

  private settle(id: number, outcome: { answer: EngineAnswer<EngineCallKind> } | EngineError): void {
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
      entry.resolve(outcome.answer);
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
      this.log.warn(`Stopping the engine worker failed: ${errorMessage(e)}`);
    });
  }
}
