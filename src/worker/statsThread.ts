/**
 * A statistics thread: computes one tensor's statistics and histogram per request, for the `StatisticsPool`. It
 * opens checkpoints by path itself (keeping the last one open), so only summaries cross `postMessage`.
 */
import { parentPort } from 'node:worker_threads';
import { failureOf } from '../core/io/failure';
import { openCheckpoint } from '../core/formats/registry';
import type { Checkpoint } from '../core/formats/types';
import { CheckpointFormatError } from '../core/io/errors';
import { tensorStatistics } from '../core/tensors/stats';
import { hasKind } from '../protocol/common';
import type { StatsThreadReply, StatsThreadRequest } from '../protocol/statsThread';

if (!parentPort) throw new Error('statsThread.ts must run inside a worker_threads Worker');
const port = parentPort;

let open: { path: string; checkpoint: Promise<Checkpoint> } | undefined;
const running = new Map<number, AbortController>();

async function checkpointFor(path: string): Promise<Checkpoint> {
  if (open?.path !== path) {
    const previous = open;
    open = { path, checkpoint: openCheckpoint(path) };
    if (previous)
      await previous.checkpoint.then(
        (c) => c.close(),
        () => undefined,
      );
  }
  return open.checkpoint;
}

async function compute(request: Extract<StatsThreadRequest, { kind: 'stats/compute' }>): Promise<void> {
  const controller = new AbortController();
  running.set(request.id, controller);
  let reply: StatsThreadReply;
  try {
    const checkpoint = await checkpointFor(request.path);
    const entry = checkpoint.tensors[request.index];
    if (!entry)
      throw new CheckpointFormatError(
        `${request.path} changed while being inspected (tensor ${request.index} is gone).`,
      );
    const { stats, histogram } = await tensorStatistics(entry, request.bins, controller.signal);
    reply = { kind: 'stats/result', id: request.id, stats, histogram };
  } catch (error) {
    if (open?.path === request.path && !(error instanceof CheckpointFormatError)) open = undefined;
    reply = { kind: 'stats/failed', id: request.id, ...failureOf(error) };
  } finally {
    running.delete(request.id);
  }
  port.postMessage(reply);
}

port.on('message', (message: unknown) => {
  if (!hasKind(message)) return;
  const request = message as StatsThreadRequest;
  if (request.kind === 'cancel') running.get(request.id)?.abort();
  else void compute(request);
});
