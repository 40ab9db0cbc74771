/**
 * The engine worker's handler table, typed by the protocol's call map: one handler per request kind gets that
 * request's params and a job context whose `emit` takes only that request's events, and resolves to that request's
 * answer. worker.ts owns the table and the wire; compressJobs.ts and modelJobs.ts contribute their handlers.
 */
import type { BackendName } from '../protocol/compress';
import type { EngineAnswer, EngineCallKind, EngineEvent, EngineLogLevel, EngineParams } from '../protocol/engine';

/** What a running handler may use besides its params. */
export interface JobContext<K extends EngineCallKind> {
  /** Aborted when the host cancels the request; the handler then rejects (a CancelledError: `cancelled`). */
  readonly signal: AbortSignal;
  /** Aborted when the host asks to stop and save (see `EngineInbound`); jobs that cannot keep partial work ignore it. */
  readonly stop: AbortSignal;
  /** The backend the host asked for when it started the worker (a request's own options may name another). */
  readonly backend: BackendName;
  /** Streams one event of this request to the host. */
  emit(event: EngineEvent<K>): void;
  /** Sends a log line to the host's log (it belongs to no request). */
  log(level: EngineLogLevel, message: string): void;
}

/**
 * Serves requests of kind `K`: resolves to the answer, or rejects with the job's error (bad input, cancellation or
 * a bug), which the worker turns into one `failed` message.
 */
export type EngineHandler<K extends EngineCallKind> = (
  params: EngineParams<K>,
  job: JobContext<K>,
) => Promise<EngineAnswer<K>>;

/** Handlers for the request kinds `K` (default: all of them, which the worker's table must have). */
export type EngineHandlers<K extends EngineCallKind = EngineCallKind> = { [P in K]: EngineHandler<P> };
