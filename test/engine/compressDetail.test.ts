// The layer-detail request through the built engine worker (dist/worker.js): after a compression, `compress/detail`
// for any represented layer and filter is answered with that detail; a missing source or an out-of-range
// filter fails as `badInput` with a clear message.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { answerOf, exchange } from '../helpers/engineWire';

const root = join(__dirname, '..', '..');
const workerPath = join(root, 'dist', 'worker.js');
const RESNET = join(root, 'test', 'fixtures', 'pytorch', 'resnet_tiny.pt');
const dir = mkdtempSync(join(tmpdir(), 'wl-engine-detail-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

void test('compress/detail round trip: any layer, any filter; missing source and bad filter fail clearly', async () => {
  const worker = new Worker(workerPath, { workerData: { backend: 'wasm' } });
  try {
    const source = join(dir, 'resnet.pt');
    copyFileSync(RESNET, source);
    const artifact = join(dir, 'resnet.nern.safetensors');
    const options = {
      budget: { kind: 'hidden' as const, hidden: 16 },
      steps: 30,
      permutation: 'crossfilter' as const,
      seed: 0,
      represent: { conv: true, dense: false },
      backend: 'wasm' as const,
      rounds: 1,
      roundWidthScale: 1,
      out: artifact,
    };
    const report = answerOf(await exchange(worker, 'compress/start', 1, { path: source, options }));
    const layers = report.layers;
    assert.ok(layers.length >= 2);
    let id = 2;
    for (const layer of layers) {
      const params = { artifact, layer: layer.name, filter: 1 };
      const detail = answerOf(await exchange(worker, 'compress/detail', id++, params));
      assert.equal(detail.name, layer.name);
      assert.equal(detail.filter.index, 1);
      assert.equal(detail.filter.count, layer.shape[0]);
      assert.equal(
        detail.original.counts.reduce((s, c) => s + c, 0),
        layer.params,
      );
    }
    const first = layers[0]!.name;
    const bad = (await exchange(worker, 'compress/detail', id++, { artifact, layer: first, filter: 9999 })).end;
    assert.ok(
      bad.kind === 'failed' && bad.reason === 'badInput' && /Filter 9999 is out of range/.test(bad.message),
      JSON.stringify(bad),
    );
    const moved = join(dir, 'elsewhere.pt');
    renameSync(source, moved);
    const missing = (await exchange(worker, 'compress/detail', id++, { artifact, layer: first, filter: 0 })).end;
    assert.ok(
      missing.kind === 'failed' && missing.reason === 'badInput' && /not beside the artifact/.test(missing.message),
      JSON.stringify(missing),
    );
    const hinted = await exchange(worker, 'compress/detail', id++, {
      artifact,
      layer: first,
      filter: 0,
      source: moved,
    });
    assert.equal(hinted.end.kind, 'answer');
  } finally {
    await worker.terminate();
  }
});
