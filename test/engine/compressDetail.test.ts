// The layer-detail request through the built engine worker (dist/worker.js): after a compression, `compress/detail`
// for any represented layer and filter is answered by `compress/layerDetail`; a missing source or an out-of-range
// filter fails as `badInput` with a clear message.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CompressEvent, CompressRequest, WorkerEvent } from '../../src/protocol/engine';

const root = join(__dirname, '..', '..');
const workerPath = join(root, 'dist', 'worker.js');
const RESNET = join(root, 'test', 'fixtures', 'pytorch', 'resnet_tiny.pt');
const dir = mkdtempSync(join(tmpdir(), 'wl-engine-detail-'));
after(() => { rmSync(dir, { recursive: true, force: true }); });

type Event = CompressEvent | WorkerEvent;
const FINAL = new Set(['compress/done', 'compress/layerDetail', 'failed']);

function exchange(worker: Worker, request: CompressRequest): Promise<Event> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no answer to ${request.kind} in 60 s`)); }, 60_000);
    const onMessage = (event: Event): void => {
      if (!('id' in event) || event.id !== request.id || !FINAL.has(event.kind)) return;
      clearTimeout(timer);
      worker.off('message', onMessage);
      resolve(event);
    };
    worker.on('message', onMessage);
    worker.postMessage(request);
  });
}

void test('compress/detail round trip: any layer, any filter; missing source and bad filter fail clearly', async () => {
  const worker = new Worker(workerPath, { workerData: { backend: 'wasm' } });
  try {
    const source = join(dir, 'resnet.pt');
    copyFileSync(RESNET, source);
    const artifact = join(dir, 'resnet.nern.safetensors');
    const done = await exchange(worker, {
      kind: 'compress/start', id: 1, path: source,
      options: { budget: { kind: 'hidden', hidden: 16 }, steps: 30, permutation: 'crossfilter', seed: 0, represent: { conv: true, dense: false }, backend: 'wasm', rounds: 1, roundWidthScale: 1, out: artifact },
    });
    assert.ok(done.kind === 'compress/done', JSON.stringify(done));
    const layers = done.report.layers;
    assert.ok(layers.length >= 2);
    let id = 2;
    for (const layer of layers) {
      const answer = await exchange(worker, { kind: 'compress/detail', id: id++, artifact, layer: layer.name, filter: 1 });
      assert.ok(answer.kind === 'compress/layerDetail', JSON.stringify(answer));
      assert.equal(answer.detail.name, layer.name);
      assert.equal(answer.detail.filter.index, 1);
      assert.equal(answer.detail.filter.count, layer.shape[0]);
      assert.equal(answer.detail.original.counts.reduce((s, c) => s + c, 0), layer.params);
    }
    const bad = await exchange(worker, { kind: 'compress/detail', id: id++, artifact, layer: layers[0]!.name, filter: 9999 });
    assert.ok(bad.kind === 'failed' && bad.reason === 'badInput' && /Filter 9999 is out of range/.test(bad.message), JSON.stringify(bad));
    renameSync(source, join(dir, 'elsewhere.pt'));
    const missing = await exchange(worker, { kind: 'compress/detail', id: id++, artifact, layer: layers[0]!.name, filter: 0 });
    assert.ok(missing.kind === 'failed' && missing.reason === 'badInput' && /not beside the artifact/.test(missing.message), JSON.stringify(missing));
    const hinted = await exchange(worker, { kind: 'compress/detail', id: id++, artifact, layer: layers[0]!.name, filter: 0, source: join(dir, 'elsewhere.pt') });
    assert.equal(hinted.kind, 'compress/layerDetail');
  } finally {
    await worker.terminate();
  }
});
