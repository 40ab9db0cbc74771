// Drives the built engine worker (dist/worker.js) over its raw wire protocol, typed by the call map: one request in,
// its events and its one answer or failure out. The engine tests use it to see exactly what the worker posts.
import type { Worker } from 'node:worker_threads';
import type { FailureReason } from '../../src/protocol/common';
import type {
  EngineAnswer,
  EngineCallKind,
  EngineEvent,
  EngineOutbound,
  EngineParams,
  EngineRequest,
} from '../../src/protocol/engine';

/** How a request ended: its answer, or its failure. */
export type ExchangeEnd<K extends EngineCallKind> =
  { kind: 'answer'; answer: EngineAnswer<K> } | { kind: 'failed'; reason: FailureReason; message: string };

/** What the worker posted for one request: its events in order, then how it ended. */
export interface Exchange<K extends EngineCallKind> {
  events: EngineEvent<K>[];
  end: ExchangeEnd<K>;
}

/**
 * Posts request `kind` #`id` with `params` to `worker` and collects what it posts for that id until the answer or the
 * failure. `onEvent` sees each event as it arrives (e.g. to send `cancel`). Rejects after `timeoutMs`.
 */
export function exchange<K extends EngineCallKind>(
  worker: Worker,
  kind: K,
  id: number,
  params: EngineParams<K>,
  onEvent?: (event: EngineEvent<K>, worker: Worker) => void,
  timeoutMs = 60_000,
): Promise<Exchange<K>> {
  return new Promise((resolve, reject) => {
    const events: EngineEvent<K>[] = [];
    const timer = setTimeout(() => {
      reject(new Error(`no answer to ${kind} in ${timeoutMs} ms; got ${events.map((e) => e.kind).join(', ')}`));
    }, timeoutMs);
    const finish = (end: ExchangeEnd<K>): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      resolve({ events, end });
    };
    const onMessage = (message: EngineOutbound): void => {
      if (message.kind === 'log' || message.id !== id) return;
      if (message.kind === 'event') {
        const event = message.event as EngineEvent<K>;
        events.push(event);
        onEvent?.(event, worker);
      } else if (message.kind === 'answer') {
        finish({ kind: 'answer', answer: message.answer });
      } else {
        finish({ kind: 'failed', reason: message.reason, message: message.message });
      }
    };
    worker.on('message', onMessage);
    const request: EngineRequest<K> = { kind, id, params };
    worker.postMessage(request);
  });
}

/** The answer of `x`, or an assertion-style Error naming how it failed instead. */
export function answerOf<K extends EngineCallKind>(x: Exchange<K>): EngineAnswer<K> {
  if (x.end.kind !== 'answer') throw new Error(`expected an answer, got ${x.end.reason}: ${x.end.message}`);
  return x.end.answer;
}
