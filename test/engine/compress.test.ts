// Compression through the built engine worker (dist/worker.js) as the extension host drives it: a cancelled job
// fails as `cancelled` and leaves no file; a completed job streams plan, progress and evaluations, then `done`;
// the artifact can be reopened and decompressed by the same worker.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CompressOptionsDto } from '../../src/protocol/compress';
import type { CompressEvent, CompressRequest, WorkerEvent } from '../../src/protocol/engine';

const root = join(__dirname, '..', '..');
const workerPath = join(root, 'dist', 'worker.js');
const RESNET = join(root, 'test', 'fixtures', 'pytorch', 'resnet_tiny.pt');
const dir = mkdtempSync(join(tmpdir(), 'wl-engine-compress-'));
after(() => { rmSync(dir, { recursive: true, force: true }); });

type Event = CompressEvent | WorkerEvent;
const FINAL = new Set(['compress/done', 'compress/planned', 'compress/decompressed', 'compress/artifact', 'failed']);

function exchange(worker: Worker, request: CompressRequest, onEvent?: (e: Event) => void, endOnPlan = false): Promise<Event[]> {
  return new Promise((resolve, reject) => {
    const events: Event[] = [];
    const timer = setTimeout(() => { reject(new Error(`no answer in 60 s; got ${events.map((e) => e.kind).join(', ')}`)); }, 60_000);
    const onMessage = (event: Event): void => {
      if (!('id' in event) || event.id !== request.id) return;
      events.push(event);
      onEvent?.(event);
      if (FINAL.has(event.kind) && (event.kind !== 'compress/planned' || endOnPlan)) {
        clearTimeout(timer);
        worker.off('message', onMessage);
        resolve(events);
      }
    };
    worker.on('message', onMessage);
    worker.postMessage(request);
  });
}

const options = (out: string, steps: number): CompressOptionsDto => ({
  budget: { kind: 'hidden', hidden: 16 }, steps, permutation: 'crossfilter', seed: 0, represent: { conv: true, dense: false },
  backend: 'wasm', rounds: 1, roundWidthScale: 1, out,
});

void test('the worker plans, cancels, completes, reopens and decompresses a compression', async () => {
  const worker = new Worker(workerPath, { workerData: { backend: 'wasm' } });
  try {
    const planned = await exchange(worker, { kind: 'compress/plan', id: 1, path: RESNET, options: options(join(dir, 'p.nern.safetensors'), 30) }, undefined, true);
    assert.equal(planned.at(-1)?.kind, 'compress/planned');

    const sub = mkdtempSync(join(dir, 'cancel-'));
    let cancelledAt = 0;
    const cancelled = await exchange(worker, { kind: 'compress/start', id: 2, path: RESNET, options: options(join(sub, 'c.nern.safetensors'), 100_000) }, (e) => {
      if (e.kind === 'compress/progress' && cancelledAt === 0) {
        cancelledAt = performance.now();
        worker.postMessage({ kind: 'cancel', id: 2 });
      }
    });
    const last = cancelled.at(-1);
    assert.ok(last?.kind === 'failed' && last.reason === 'cancelled', JSON.stringify(last));
    assert.ok(performance.now() - cancelledAt < 1000, 'cancelled within a second');
    assert.deepEqual(readdirSync(sub), []);

    const out = join(dir, 'done.nern.safetensors');
    const events = await exchange(worker, { kind: 'compress/start', id: 3, path: RESNET, options: options(out, 60) });
    const kinds = events.map((e) => e.kind);
    assert.equal(kinds[0], 'compress/planned');
    assert.ok(kinds.includes('compress/progress'));
    assert.ok(kinds.includes('compress/evaluation'));
    const done = events.at(-1);
    assert.ok(done?.kind === 'compress/done', JSON.stringify(done));
    assert.equal(done.report.backend, 'wasm');
    assert.equal(done.report.artifact, out);
    const progress = events.find((e) => e.kind === 'compress/progress');
    assert.ok(progress?.kind === 'compress/progress' && progress.progress.backend === 'wasm');
    const evaluation = events.filter((e) => e.kind === 'compress/evaluation').at(-1);
    assert.ok(evaluation?.kind === 'compress/evaluation' && evaluation.evaluation.detail !== undefined);

    const opened = await exchange(worker, { kind: 'compress/openArtifact', id: 4, artifact: out });
    const a = opened.at(-1);
    assert.ok(a?.kind === 'compress/artifact');
    assert.equal(a.report.rmse, done.report.rmse);
    assert.equal(a.plan.hidden, 16);

    const decoded = join(dir, 'done.safetensors');
    const d = await exchange(worker, { kind: 'compress/decompress', id: 5, artifact: out, out: decoded });
    const dd = d.at(-1);
    assert.ok(dd?.kind === 'compress/decompressed', JSON.stringify(dd));
    assert.deepEqual(dd.outputs, [decoded]);

    const bad = await exchange(worker, { kind: 'compress/openArtifact', id: 6, artifact: RESNET });
    const b = bad.at(-1);
    assert.ok(b?.kind === 'failed' && b.reason === 'badInput', JSON.stringify(b));
  } finally {
    await worker.terminate();
  }
});
