// The engine client against a fake worker: request ids, streamed events, answer/failed settling, cancellation,
// crash handling (all pending fail with workerCrashed, the next request starts a new worker), logs, restart, dispose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EngineInbound, EngineOutbound, InspectEvent } from '../../../../src/protocol/engine';
import {
  EngineClient,
  EngineError,
  type EngineLog,
  type WorkerHandlers,
} from '../../../../src/extension/engine/engineClient';

interface FakeWorker {
  posted: EngineInbound[];
  handlers: WorkerHandlers;
  terminated: boolean;
  emit(message: EngineOutbound): void;
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
      emit: (message) => {
        handlers.message(message);
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

const header = {
  format: 'safetensors',
  description: '',
  file: '/x',
  fileBytes: 1,
  metadata: {},
  tensors: [],
  totals: { tensors: 0, params: 0, bytes: 0 },
  byDtype: {},
  byKind: {},
};

void test('the worker starts lazily, once; events stream to the request, then its answer resolves it', async () => {
  const { client, workers } = setup();
  assert.equal(client.running, false);
  const seen: InspectEvent[] = [];
  const p = client.call('inspect/open', { path: '/x', histogramBins: 64 }, (e) => seen.push(e));
  assert.equal(workers.length, 1);
  const w = workers[0]!;
  assert.deepEqual(w.posted, [{ kind: 'inspect/open', id: 1, params: { path: '/x', histogramBins: 64 } }]);
  w.emit({ kind: 'event', id: 1, event: { kind: 'inspect/header', header } });
  w.emit({ kind: 'event', id: 1, event: { kind: 'inspect/tensorError', index: 0, message: 'bad' } });
  assert.equal(client.pendingCount, 1, 'events do not settle the request');
  w.emit({ kind: 'answer', id: 1, answer: { seconds: 0.5 } });
  const answer = await p;
  assert.equal(answer.seconds, 0.5);
  assert.deepEqual(
    seen.map((e) => e.kind),
    ['inspect/header', 'inspect/tensorError'],
  );
  assert.equal(client.pendingCount, 0);
  const p2 = client.call('inspect/open', { path: '/y', histogramBins: 8 });
  assert.equal(workers.length, 1, 'the same worker serves the next request');
  w.emit({ kind: 'answer', id: 2, answer: { seconds: 0 } });
  await p2;
});

void test('events are routed by id; failed rejects with its reason', async () => {
  const { client, workers } = setup();
  const a: string[] = [];
  const b: string[] = [];
  const pa = client.call('inspect/open', { path: '/a', histogramBins: 64 }, (e) => a.push(e.kind));
  const pb = client.call('inspect/open', { path: '/b', histogramBins: 64 }, (e) => b.push(e.kind));
  const w = workers[0]!;
  w.emit({ kind: 'failed', id: 2, reason: 'badInput', message: 'header length 9.2 GB exceeds file size 1.1 MB' });
  w.emit({ kind: 'event', id: 1, event: { kind: 'inspect/header', header } });
  w.emit({ kind: 'answer', id: 1, answer: { seconds: 0 } });
  await pa;
  await assert.rejects(
    pb,
    (e: unknown) => e instanceof EngineError && e.reason === 'badInput' && /9\.2 GB/.test(e.message),
  );
  assert.deepEqual(a, ['inspect/header']);
  assert.deepEqual(b, []);
});

void test('cancellation sends cancel, rejects at once and drops late events', async () => {
  const { client, workers } = setup();
  const src = tokenSource();
  const seen: string[] = [];
  const p = client.call('inspect/open', { path: '/a', histogramBins: 64 }, (e) => seen.push(e.kind), src.token);
  src.cancel();
  await assert.rejects(p, (e: unknown) => e instanceof EngineError && e.reason === 'cancelled');
  const w = workers[0]!;
  assert.deepEqual(w.posted.at(-1), { kind: 'cancel', id: 1 });
  w.emit({ kind: 'event', id: 1, event: { kind: 'inspect/header', header } });
  assert.deepEqual(seen, []);
  assert.equal(src.listeners.length, 0, 'the cancellation listener is removed');
});

void test('an already-cancelled token never reaches the worker', async () => {
  const { client, workers } = setup();
  const src = tokenSource();
  src.cancel();
  const p = client.call('inspect/open', { path: '/a', histogramBins: 64 }, undefined, src.token);
  await assert.rejects(p, /Cancelled/);
  assert.equal(workers.length, 0);
});

void test('a crash fails every pending request with workerCrashed; the next request starts a fresh worker', async () => {
  const { client, workers, lines } = setup();
  const p1 = client.call('inspect/open', { path: '/a', histogramBins: 64 });
  const p2 = client.call('inspect/open', { path: '/b', histogramBins: 64 });
  workers[0]!.handlers.error(new Error('out of memory'));
  workers[0]!.handlers.exit(1); // the exit that follows an error is not a second crash
  await assert.rejects(
    p1,
    (e: unknown) => e instanceof EngineError && e.reason === 'workerCrashed' && /out of memory/.test(e.message),
  );
  await assert.rejects(p2, (e: unknown) => e instanceof EngineError && e.reason === 'workerCrashed');
  assert.equal(lines.filter((l) => l.startsWith('error')).length, 1);
  assert.equal(client.running, false);
  const p3 = client.call('inspect/open', { path: '/c', histogramBins: 64 });
  assert.equal(workers.length, 2);
  workers[1]!.emit({ kind: 'answer', id: 3, answer: { seconds: 0 } });
  await p3;
  // Messages from the dead worker are ignored.
  workers[0]!.emit({ kind: 'answer', id: 3, answer: { seconds: 0 } });
});

void test('an unexpected exit is a crash too', async () => {
  const { client, workers } = setup();
  const p = client.call('inspect/open', { path: '/a', histogramBins: 64 });
  workers[0]!.handlers.exit(0);
  await assert.rejects(
    p,
    (e: unknown) => e instanceof EngineError && e.reason === 'workerCrashed' && /exit code 0/.test(e.message),
  );
});

void test('a worker that cannot start fails the request with workerCrashed', async () => {
  const { client } = setup({ failStart: true });
  await assert.rejects(
    client.call('inspect/open', { path: '/a', histogramBins: 64 }),
    (e: unknown) => e instanceof EngineError && e.reason === 'workerCrashed' && /dist\/worker\.js/.test(e.message),
  );
});

void test('log events go to the log at their level; malformed messages are ignored', () => {
  const { client, workers, lines } = setup();
  void client.call('inspect/open', { path: '/a', histogramBins: 64 }).catch(() => undefined);
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
  const p = client.call('inspect/open', { path: '/a', histogramBins: 64 }, () => {
    throw new Error('handler bug');
  });
  workers[0]!.emit({ kind: 'event', id: 1, event: { kind: 'inspect/header', header } });
  workers[0]!.emit({ kind: 'answer', id: 1, answer: { seconds: 0 } });
  await p;
  assert.ok(lines.some((l) => l.includes('handler bug')));
});

void test('restart waits for idle; dispose rejects pending requests and terminates the worker', async () => {
  const { client, workers } = setup();
  const p = client.call('inspect/open', { path: '/a', histogramBins: 64 });
  client.restart();
  assert.equal(workers[0]!.terminated, false);
  workers[0]!.emit({ kind: 'answer', id: 1, answer: { seconds: 0 } });
  await p;
  assert.equal(workers[0]!.terminated, true);
  assert.equal(client.running, false);
  const q = client.call('inspect/open', { path: '/b', histogramBins: 64 });
  assert.equal(workers.length, 2);
  client.dispose();
  await assert.rejects(q, (e: unknown) => e instanceof EngineError && e.reason === 'cancelled');
  assert.equal(workers[1]!.terminated, true);
  await assert.rejects(client.call('inspect/open', { path: '/c', histogramBins: 64 }), /shutting down/);
});

void test('compression answers settle their requests; streamed compression events reach the handler', async () => {
  const { client, workers } = setup();
  const plan = {
    hidden: 8,
    predictorParams: 10,
    representedParams: 100,
    verbatimParams: 5,
    fractionOfRepresented: 0.1,
    artifactBytes: 200,
    sourceBytes: 420,
    represented: [],
    verbatim: [],
  };
  const options = {
    budget: { kind: 'hidden' as const, hidden: 8 },
    steps: 10,
    permutation: 'none' as const,
    seed: 0,
    represent: { conv: true, dense: false },
    backend: 'cpu' as const,
    rounds: 1,
    roundWidthScale: 1,
  };
  const planned = client.call('compress/plan', { path: '/a', options });
  const w = workers[0]!;
  assert.deepEqual(w.posted[0], { kind: 'compress/plan', id: 1, params: { path: '/a', options } });
  w.emit({ kind: 'answer', id: 1, answer: plan });
  assert.equal((await planned).hidden, 8);
  const seen: string[] = [];
  const started = client.call('compress/start', { path: '/a', options }, (e) => seen.push(e.kind));
  w.emit({ kind: 'event', id: 2, event: { kind: 'compress/planned', plan } });
  const progress = { step: 1, steps: 10, round: 1, loss: 1, lr: 0.1, stepsPerSecond: 5, backend: 'cpu' };
  w.emit({ kind: 'event', id: 2, event: { kind: 'compress/progress', progress } });
  assert.equal(client.pendingCount, 1, 'streamed events do not complete compress/start');
  w.emit({ kind: 'failed', id: 2, reason: 'badInput', message: 'no convolutions' });
  await assert.rejects(started, (e: unknown) => e instanceof EngineError && e.reason === 'badInput');
  assert.deepEqual(seen, ['compress/planned', 'compress/progress']);
  client.dispose();
});

void test('a layer detail request settles on its answer', async () => {
  const { client, workers } = setup();
  const params = { artifact: '/a.nern.safetensors', layer: 'conv.weight', filter: 3 };
  const answer = client.call('compress/detail', params);
  const w = workers[0]!;
  assert.deepEqual(w.posted[0], { kind: 'compress/detail', id: 1, params });
  const detail = {
    name: 'conv.weight',
    original: { edges: [0, 1], counts: [9] },
    reconstructed: { edges: [0, 1], counts: [9] },
    filter: { index: 3, count: 4, kh: 3, kw: 3, original: [[1]], reconstructed: [[1]] },
  };
  w.emit({ kind: 'answer', id: 1, answer: detail });
  assert.equal((await answer).filter.index, 3);
  assert.equal(client.pendingCount, 0);
  client.dispose();
});

void test('messages for unknown or settled ids are dropped', async () => {
  const { client, workers, lines } = setup();
  const seen: string[] = [];
  const p = client.call('eval/start', { model: '/m.onnx', data: '/d', options: {} }, (e) => seen.push(e.kind));
  const w = workers[0]!;
  w.emit({ kind: 'event', id: 9, event: { kind: 'eval/progress', done: 1, total: 2 } });
  w.emit({ kind: 'answer', id: 9, answer: { seconds: 1 } });
  w.emit({ kind: 'failed', id: 1, reason: 'internal', message: 'boom' });
  await assert.rejects(p, /boom/);
  w.emit({ kind: 'event', id: 1, event: { kind: 'eval/progress', done: 2, total: 2 } });
  assert.deepEqual(seen, []);
  assert.equal(client.pendingCount, 0);
  assert.ok(!lines.some((l) => l.startsWith('error')), lines.join('\n'));
  client.dispose();
});
