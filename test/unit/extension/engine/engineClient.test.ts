// The engine client against a fake worker: request ids, streamed events, done/failed settling, cancellation,
// crash handling (all pending fail with workerCrashed, the next request starts a new worker), logs, restart, dispose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WorkerEvent } from '../../../../src/protocol/engine';
import { EngineClient, EngineError, type EngineLog, type EngineMessage, type RequestEvent, type WorkerHandlers } from '../../../../src/extension/engine/engineClient';

interface FakeWorker {
  posted: EngineMessage[];
  handlers: WorkerHandlers;
  terminated: boolean;
  emit(event: WorkerEvent): void;
}

function setup(opts: { failStart?: boolean } = {}) {
  const workers: FakeWorker[] = [];
  const lines: string[] = [];
  const log: EngineLog = {
    debug: (m) => lines.push(`debug ${m}`),
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
  };
  const client = new EngineClient((handlers) => {
    if (opts.failStart === true) throw new Error('no such file dist/worker.js');
    const w: FakeWorker = {
      posted: [],
      handlers,
      terminated: false,
      emit: (event) => {
        handlers.message(event);
      },
    };
    workers.push(w);
    return {
      post: (m) => w.posted.push(m),
      terminate: () => {
        w.terminated = true;
        return Promise.resolve();
      },
    };
  }, log);
  return { client, workers, lines };
}

/** A hand-made cancellation token. */
function tokenSource() {
  const listeners: (() => void)[] = [];
  let cancelled = false;
  return {
    token: {
      get isCancellationRequested() {
        return cancelled;
      },
      onCancellationRequested(listener: () => void) {
        listeners.push(listener);
        return { dispose: () => listeners.splice(listeners.indexOf(listener), 1) };
      },
    },
    cancel() {
      cancelled = true;
      for (const l of [...listeners]) l();
    },
    listeners,
  };
}

const header = { format: 'safetensors', description: '', file: '/x', fileBytes: 1, metadata: {}, tensors: [], totals: { tensors: 0, params: 0, bytes: 0 }, byDtype: {}, byKind: {} };

void test('the worker starts lazily, once, and events stream to the request until done', async () => {
  const { client, workers } = setup();
  assert.equal(client.running, false);
  const seen: RequestEvent[] = [];
  const p = client.request({ kind: 'inspect/open', path: '/x', histogramBins: 64 }, (e) => seen.push(e));
  assert.equal(workers.length, 1);
  const w = workers[0]!;
  assert.deepEqual(w.posted, [{ kind: 'inspect/open', path: '/x', histogramBins: 64, id: 1 }]);
  w.emit({ kind: 'inspect/header', id: 1, header });
  w.emit({ kind: 'inspect/tensorError', id: 1, index: 0, message: 'bad' });
  w.emit({ kind: 'inspect/done', id: 1, seconds: 0.5 });
  const done = await p;
  assert.equal(done.kind, 'inspect/done');
  assert.deepEqual(seen.map((e) => e.kind), ['inspect/header', 'inspect/tensorError', 'inspect/done']);
  assert.equal(client.pendingCount, 0);
  const p2 = client.request({ kind: 'inspect/open', path: '/y', histogramBins: 8 }, () => undefined);
  assert.equal(workers.length, 1, 'the same worker serves the next request');
  w.emit({ kind: 'inspect/done', id: 2, seconds: 0 });
  await p2;
});

void test('events are routed by id; failed rejects with its reason', async () => {
  const { client, workers } = setup();
  const a: string[] = [];
  const b: string[] = [];
  const pa = client.request({ kind: 'inspect/open', path: '/a', histogramBins: 64 }, (e) => a.push(e.kind));
  const pb = client.request({ kind: 'inspect/open', path: '/b', histogramBins: 64 }, (e) => b.push(e.kind));
  const w = workers[0]!;
  w.emit({ kind: 'failed', id: 2, reason: 'badInput', message: 'header length 9.2 GB exceeds file size 1.1 MB' });
  w.emit({ kind: 'inspect/header', id: 1, header });
  w.emit({ kind: 'inspect/done', id: 1, seconds: 0 });
  await pa;
  await assert.rejects(pb, (e: unknown) => e instanceof EngineError && e.reason === 'badInput' && /9\.2 GB/.test(e.message));
  assert.deepEqual(a, ['inspect/header', 'inspect/done']);
  assert.deepEqual(b, ['failed']);
});

void test('cancellation sends cancel, rejects at once and drops late events', async () => {
  const { client, workers } = setup();
  const src = tokenSource();
  const seen: string[] = [];
  const p = client.request({ kind: 'inspect/open', path: '/a', histogramBins: 64 }, (e) => seen.push(e.kind), src.token);
  src.cancel();
  await assert.rejects(p, (e: unknown) => e instanceof EngineError && e.reason === 'cancelled');
  const w = workers[0]!;
  assert.deepEqual(w.posted.at(-1), { kind: 'cancel', id: 1 });
  w.emit({ kind: 'inspect/header', id: 1, header });
  assert.deepEqual(seen, []);
  assert.equal(src.listeners.length, 0, 'the cancellation listener is removed');
});

void test('an already-cancelled token never reaches the worker', async () => {
  const { client, workers } = setup();
  const src = tokenSource();
  src.cancel();
  await assert.rejects(client.request({ kind: 'inspect/open', path: '/a', histogramBins: 64 }, () => undefined, src.token), /Cancelled/);
  assert.equal(workers.length, 0);
});

void test('a crash fails every pending request with workerCrashed; the next request starts a fresh worker', async () => {
  const { client, workers, lines } = setup();
  const p1 = client.request({ kind: 'inspect/open', path: '/a', histogramBins: 64 }, () => undefined);
  const p2 = client.request({ kind: 'inspect/open', path: '/b', histogramBins: 64 }, () => undefined);
  workers[0]!.handlers.error(new Error('out of memory'));
  workers[0]!.handlers.exit(1); // the exit that follows an error is not a second crash
  await assert.rejects(p1, (e: unknown) => e instanceof EngineError && e.reason === 'workerCrashed' && /out of memory/.test(e.message));
  await assert.rejects(p2, (e: unknown) => e instanceof EngineError && e.reason === 'workerCrashed');
  assert.equal(lines.filter((l) => l.startsWith('error')).length, 1);
  assert.equal(client.running, false);
  const p3 = client.request({ kind: 'inspect/open', path: '/c', histogramBins: 64 }, () => undefined);
  assert.equal(workers.length, 2);
  workers[1]!.emit({ kind: 'inspect/done', id: 3, seconds: 0 });
  await p3;
  // Messages from the dead worker are ignored.
  workers[0]!.emit({ kind: 'inspect/done', id: 3, seconds: 0 });
});

void test('an unexpected exit is a crash too', async () => {
  const { client, workers } = setup();
  const p = client.request({ kind: 'inspect/open', path: '/a', histogramBins: 64 }, () => undefined);
  workers[0]!.handlers.exit(0);
  await assert.rejects(p, (e: unknown) => e instanceof EngineError && e.reason === 'workerCrashed' && /exit code 0/.test(e.message));
});

void test('a worker that cannot start fails the request with workerCrashed', async () => {
  const { client } = setup({ failStart: true });
  await assert.rejects(
    client.request({ kind: 'inspect/open', path: '/a', histogramBins: 64 }, () => undefined),
    (e: unknown) => e instanceof EngineError && e.reason === 'workerCrashed' && /dist\/worker\.js/.test(e.message),
  );
});

void test('log events go to the log at their level; malformed messages are ignored', () => {
  const { client, workers, lines } = setup();
  void client.request({ kind: 'inspect/open', path: '/a', histogramBins: 64 }, () => undefined).catch(() => undefined);
  const w = workers[0]!;
  w.emit({ kind: 'log', level: 'warn', message: 'slow disk' });
  w.emit({ kind: 'log', level: 'error', message: 'boom' });
  w.handlers.message(42);
  assert.ok(lines.includes('warn [engine] slow disk'));
  assert.ok(lines.includes('error [engine] boom'));
  assert.ok(lines.some((l) => l.startsWith('warn Ignored a malformed message')));
  client.dispose();
});

void test('a throwing event handler is logged and does not break the request', async () => {
  const { client, workers, lines } = setup();
  const p = client.request({ kind: 'inspect/open', path: '/a', histogramBins: 64 }, () => {
    throw new Error('handler bug');
  });
  workers[0]!.emit({ kind: 'inspect/done', id: 1, seconds: 0 });
  await p;
  assert.ok(lines.some((l) => l.includes('handler bug')));
});

void test('restart waits for idle; dispose rejects pending requests and terminates the worker', async () => {
  const { client, workers } = setup();
  const p = client.request({ kind: 'inspect/open', path: '/a', histogramBins: 64 }, () => undefined);
  client.restart();
  assert.equal(workers[0]!.terminated, false);
  workers[0]!.emit({ kind: 'inspect/done', id: 1, seconds: 0 });
  await p;
  assert.equal(workers[0]!.terminated, true);
  assert.equal(client.running, false);
  const q = client.request({ kind: 'inspect/open', path: '/b', histogramBins: 64 }, () => undefined);
  assert.equal(workers.length, 2);
  client.dispose();
  await assert.rejects(q, (e: unknown) => e instanceof EngineError && e.reason === 'cancelled');
  assert.equal(workers[1]!.terminated, true);
  await assert.rejects(client.request({ kind: 'inspect/open', path: '/c', histogramBins: 64 }, () => undefined), /shutting down/);
});

void test('compression answers settle their requests; streamed compression events reach the handler first', async () => {
  const { client, workers } = setup();
  const plan = {
    hidden: 8, predictorParams: 10, representedParams: 100, verbatimParams: 5, fractionOfRepresented: 0.1,
    artifactBytes: 200, sourceBytes: 420, represented: [], verbatim: [],
  };
  const options = {
    budget: { kind: 'hidden' as const, hidden: 8 }, steps: 10, permutation: 'none' as const, seed: 0,
    represent: { conv: true, dense: false }, backend: 'cpu' as const, rounds: 1, roundWidthScale: 1,
  };
  const planned = client.request({ kind: 'compress/plan', path: '/a', options }, () => undefined);
  const w = workers[0]!;
  assert.deepEqual(w.posted[0], { kind: 'compress/plan', path: '/a', options, id: 1 });
  w.handlers.message({ kind: 'compress/planned', id: 1, plan });
  const answer = await planned;
  assert.equal(answer.kind, 'compress/planned');
  const seen: string[] = [];
  const started = client.request({ kind: 'compress/start', path: '/a', options }, (e) => seen.push(e.kind));
  w.handlers.message({ kind: 'compress/planned', id: 2, plan });
  assert.equal(client.pendingCount, 1, 'a plan streamed by compress/start does not complete it');
  w.handlers.message({ kind: 'compress/progress', id: 2, progress: { step: 1, steps: 10, round: 1, loss: 1, lr: 0.1, stepsPerSecond: 5, backend: 'cpu' } });
  assert.equal(client.pendingCount, 1);
  w.handlers.message({ kind: 'failed', id: 2, reason: 'badInput', message: 'no convolutions' });
  await assert.rejects(started, (e: unknown) => e instanceof EngineError && e.reason === 'badInput');
  assert.deepEqual(seen, ['compress/planned', 'compress/progress', 'failed']);
  client.dispose();
});

void test('a layer detail request settles on its compress/layerDetail answer', async () => {
  const { client, workers } = setup();
  const answer = client.request({ kind: 'compress/detail', artifact: '/a.nern.safetensors', layer: 'conv.weight', filter: 3 }, () => undefined);
  const w = workers[0]!;
  assert.deepEqual(w.posted[0], { kind: 'compress/detail', artifact: '/a.nern.safetensors', layer: 'conv.weight', filter: 3, id: 1 });
  const detail = {
    name: 'conv.weight', original: { edges: [0, 1], counts: [9] }, reconstructed: { edges: [0, 1], counts: [9] },
    filter: { index: 3, count: 4, kh: 3, kw: 3, original: [[1]], reconstructed: [[1]] },
  };
  w.handlers.message({ kind: 'compress/layerDetail', id: 1, detail });
  const done = await answer;
  assert.ok(done.kind === 'compress/layerDetail' && done.detail.filter.index === 3);
  assert.equal(client.pendingCount, 0);
  client.dispose();
});
