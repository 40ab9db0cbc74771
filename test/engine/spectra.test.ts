// Spectra in the built engine worker (dist/worker.js in a real worker_threads Worker): the plan, per-layer events
// and the answer; cancel stops the job as `cancelled` and the worker keeps serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { answerOf, exchange } from '../helpers/engineWire';

const root = join(__dirname, '..', '..');
const workerPath = join(root, 'dist', 'worker.js');
const RESNET = join(root, 'test', 'fixtures', 'models', 'resnet20_fmnist.pt');

void test('spectra/start streams the plan, progress and each layer, then answers the report', async () => {
  const worker = new Worker(workerPath);
  try {
    const x = await exchange(
      worker,
      'spectra/start',
      1,
      { path: RESNET, options: { maxRank: 0, bins: 20 } },
      undefined,
      120_000,
    );
    const planned = x.events.find((e) => e.kind === 'spectra/planned');
    assert.ok(planned?.kind === 'spectra/planned');
    assert.equal(planned.layers.length, 19);
    assert.deepEqual(
      planned.skipped.map((s) => s.name),
      ['conv1.weight'],
    );
    const layers = x.events.flatMap((e) => (e.kind === 'spectra/layer' ? [e.layer.name] : []));
    assert.deepEqual(layers, planned.layers);
    assert.ok(x.events.some((e) => e.kind === 'spectra/progress'));
    const report = answerOf(x);
    assert.equal(report.layers.length, 19);
  } finally {
    await worker.terminate();
  }
});

void test('cancel stops a spectra job as cancelled, and the worker serves the next request', async () => {
  const worker = new Worker(workerPath);
  try {
    let cancelled = false;
    const x = await exchange(
      worker,
      'spectra/start',
      2,
      { path: RESNET, options: { maxRank: 0, bins: 20 } },
      (event) => {
        if (!cancelled && event.kind === 'spectra/layer') {
          cancelled = true;
          worker.postMessage({ kind: 'cancel', id: 2 });
        }
      },
      120_000,
    );
    assert.ok(x.end.kind === 'failed' && x.end.reason === 'cancelled', JSON.stringify(x.end));
    const layers = x.events.filter((e) => e.kind === 'spectra/layer').length;
    assert.ok(layers < 19, `stopped early (${layers} layers)`);
    const again = await exchange(
      worker,
      'spectra/start',
      3,
      { path: RESNET, options: { maxRank: 0, bins: 20, layers: ['linear.weight'] } },
      undefined,
      60_000,
    );
    assert.equal(answerOf(again).layers.length, 1);
  } finally {
    await worker.terminate();
  }
});
