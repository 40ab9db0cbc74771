// Compression through the built engine worker (dist/worker.js) as the extension host drives it: a cancelled job
// fails as `cancelled` and leaves no file; a completed job streams plan, progress and evaluations, then its answer;
// the artifact can be reopened and decompressed by the same worker.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CompressOptionsDto } from '../../src/protocol/compress';
import { answerOf, exchange } from '../helpers/engineWire';

const root = join(__dirname, '..', '..');
const workerPath = join(root, 'dist', 'worker.js');
const RESNET = join(root, 'test', 'fixtures', 'pytorch', 'resnet_tiny.pt');
const dir = mkdtempSync(join(tmpdir(), 'wl-engine-compress-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const options = (out: string, steps: number): CompressOptionsDto => ({
  budget: { kind: 'hidden', hidden: 16 },
  steps,
  permutation: 'crossfilter',
  seed: 0,
  represent: { conv: true, dense: false },
  backend: 'wasm',
  rounds: 1,
  roundWidthScale: 1,
  out,
});

void test('the worker plans, cancels, completes, reopens and decompresses a compression', async () => {
  const worker = new Worker(workerPath, { workerData: { backend: 'wasm' } });
  try {
    const planOptions = options(join(dir, 'p.nern.safetensors'), 30);
    const planned = await exchange(worker, 'compress/plan', 1, { path: RESNET, options: planOptions });
    assert.equal(answerOf(planned).hidden, 16);

    const sub = mkdtempSync(join(dir, 'cancel-'));
    let cancelledAt = 0;
    const long = { path: RESNET, options: options(join(sub, 'c.nern.safetensors'), 100_000) };
    const cancelled = await exchange(worker, 'compress/start', 2, long, (e, w) => {
      if (e.kind === 'compress/progress' && cancelledAt === 0) {
        cancelledAt = performance.now();
        w.postMessage({ kind: 'cancel', id: 2 });
      }
    });
    assert.ok(cancelled.end.kind === 'failed' && cancelled.end.reason === 'cancelled', JSON.stringify(cancelled.end));
    assert.ok(performance.now() - cancelledAt < 1000, 'cancelled within a second');
    assert.deepEqual(readdirSync(sub), []);

    const out = join(dir, 'done.nern.safetensors');
    const run = await exchange(worker, 'compress/start', 3, { path: RESNET, options: options(out, 60) });
    const kinds = run.events.map((e) => e.kind);
    assert.equal(kinds[0], 'compress/planned');
    assert.ok(kinds.includes('compress/progress'));
    assert.ok(kinds.includes('compress/evaluation'));
    const report = answerOf(run);
    assert.equal(report.backend, 'wasm');
    assert.equal(report.artifact, out);
    const progress = run.events.find((e) => e.kind === 'compress/progress');
    assert.ok(progress?.kind === 'compress/progress' && progress.progress.backend === 'wasm');
    const evaluation = run.events.filter((e) => e.kind === 'compress/evaluation').at(-1);
    assert.ok(evaluation?.kind === 'compress/evaluation' && evaluation.evaluation.detail !== undefined);
    // The final whole-grid prediction reports its rows, the last event at all of them.
    const reconstructing = run.events.filter((e) => e.kind === 'compress/reconstructing');
    const last = reconstructing.at(-1);
    assert.ok(last?.kind === 'compress/reconstructing' && last.total > 0 && last.done === last.total);

    const opened = answerOf(await exchange(worker, 'compress/openArtifact', 4, { artifact: out }));
    assert.equal(opened.report.rmse, report.rmse);
    assert.equal(opened.plan.hidden, 16);

    const decoded = join(dir, 'done.safetensors');
    const d = answerOf(await exchange(worker, 'compress/decompress', 5, { artifact: out, out: decoded }));
    assert.deepEqual(d.outputs, [decoded]);

    const bad = await exchange(worker, 'compress/openArtifact', 6, { artifact: RESNET });
    assert.ok(bad.end.kind === 'failed' && bad.end.reason === 'badInput', JSON.stringify(bad.end));
  } finally {
    await worker.terminate();
  }
});
