// Detail of any layer and filter of an artifact (artifactLayerDetail): histograms count every weight of the layer, the
// requested filter is the original checkpoint's weights at that filter, the one-layer decode matches the full decode,
// and an out-of-range filter, an unknown layer, a missing or a changed source each fail with a clear error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS, ensureBackend } from '../../src/core/jobs/compress';
import { openCheckpoint } from '../../src/core/formats/registry';
import { BadInputError } from '../../src/core/io/errors';
import { readArtifact } from '../../src/core/nern/artifact';
import { reconstructLayer, reconstructLayers } from '../../src/core/nern/kernelMap';
import { readTensorValues } from '../../src/core/tensors/tensor';
import type { CompressOptionsDto } from '../../src/protocol/compress';
import { FIXTURES } from '../helpers/fixtures';

import { layerDetail } from '../../src/core/nern/layerDetail';
import { artifactLayerDetail } from '../../src/core/jobs/artifactDetail';
const RESNET = join(FIXTURES, 'pytorch', 'resnet_tiny.pt');
const FAST: CompressOptionsDto = {
  ...DEFAULT_COMPRESS_OPTIONS,
  budget: { kind: 'hidden', hidden: 16 },
  steps: 30,
  backend: 'wasm',
};
let dir = '';
let source = '';
let artifact = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wl-detail-'));
  await ensureBackend('wasm');
  source = join(dir, 'resnet.pt');
  copyFileSync(RESNET, source);
  artifact = join(dir, 'resnet.nern.safetensors');
  await compressCheckpoint(source, { ...FAST, out: artifact });
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function originalOf(name: string): Promise<Float32Array> {
  const c = await openCheckpoint(source);
  try {
    const entry = c.tensors.find((t) => t.name === name);
    assert.ok(entry, name);
    return await readTensorValues(entry);
  } finally {
    await c.close();
  }
}

const isClear =
  (pattern: RegExp) =>
  (e: unknown): boolean =>
    e instanceof BadInputError && pattern.test(e.message);

void test('the detail of any layer and filter: histograms count the layer, the filter is the original one', async () => {
  const name = 'layer2.0.conv2.weight';
  const original = await originalOf(name);
  const a = await readArtifact(artifact);
  const shape = a.meta.layers.find((l) => l.name === name)?.shape ?? [];
  await a.close();
  const [cout = 0, cin = 0, kh = 0, kw = 0] = shape;
  assert.ok(cout >= 3, `${name} has ${cout} filters`);
  const tensorsBefore = tf.memory().numTensors;
  for (const f of [0, 2, cout - 1]) {
    const d = await artifactLayerDetail(artifact, name, f);
    assert.equal(d.name, name);
    assert.equal(d.filter.index, f);
    assert.equal(d.filter.count, cout);
    assert.equal(d.filter.kh, kh);
    assert.equal(d.filter.kw, kw);
    const sum = (counts: number[]): number => counts.reduce((s, c) => s + c, 0);
    assert.equal(sum(d.original.counts), original.length);
    assert.equal(sum(d.reconstructed.counts), original.length);
    assert.equal(d.filter.original.length, Math.min(cin, 64));
    const k = kh * kw;
    d.filter.original.forEach((row, c) => {
      assert.deepEqual(
        row,
        Array.from(original.subarray(f * cin * k + c * k, f * cin * k + (c + 1) * k)),
        `filter ${f} channel ${c}`,
      );
    });
    assert.ok(d.filter.reconstructed.every((row) => row.length === k && row.every((v) => Number.isFinite(v))));
  }
  assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensors leak');
});

void test('decoding one layer gives the full decode of that layer', async () => {
  const a = await readArtifact(artifact);
  try {
    const all = reconstructLayers(a.predictor, a.kernelMap);
    a.kernelMap.layers.forEach((_, l) => {
      const one = reconstructLayer(a.predictor, a.kernelMap, l);
      const full = all[l] ?? new Float32Array(0);
      assert.equal(one.length, full.length);
      for (let i = 0; i < one.length; i++)
        assert.ok(
          Math.abs((one[i] ?? 0) - (full[i] ?? 0)) <= 1e-6 * (1 + Math.abs(full[i] ?? 0)),
          `layer ${l} value ${i}`,
        );
    });
    assert.throws(() => reconstructLayer(a.predictor, a.kernelMap, a.kernelMap.layers.length), RangeError);
  } finally {
    await a.close();
  }
});

void test('layerDetail: the worst filter by default, a chosen one when asked, out of range → clear error', () => {
  const shape = [2, 1, 3, 3];
  const o = Float32Array.from({ length: 18 }, (_, i) => i / 10);
  const r = Float32Array.from(o, (v, i) => (i >= 9 ? v + 1 : v));
  assert.equal(layerDetail('w', shape, { kind: 'conv', k: 3, layout: 'oihw' }, o, r, 8).filter.index, 1);
  assert.equal(layerDetail('w', shape, { kind: 'conv', k: 3, layout: 'oihw' }, o, r, 8, 'oihw', 0).filter.index, 0);
  assert.throws(
    () => layerDetail('w', shape, { kind: 'conv', k: 3, layout: 'oihw' }, o, r, 8, 'oihw', 2),
    isClear(/Filter 2 is out of range: layer w has 2 filters \(0–1\)/),
  );
  assert.throws(
    () => layerDetail('w', shape, { kind: 'conv', k: 3, layout: 'oihw' }, o, r, 8, 'oihw', 0.5),
    isClear(/Filter 0\.5 is out of range/),
  );
});

void test('out-of-range filter, unknown layer, missing or changed source → clear errors', async () => {
  await assert.rejects(
    artifactLayerDetail(artifact, 'layer2.0.conv1.weight', 10_000),
    isClear(/Filter 10000 is out of range: layer layer2\.0\.conv1\.weight has \d+ filters/),
  );
  await assert.rejects(
    artifactLayerDetail(artifact, 'layer2.0.conv1.weight', -1),
    isClear(/Filter -1 is out of range/),
  );
  await assert.rejects(artifactLayerDetail(artifact, 'fc.weight', 0), isClear(/has no represented layer "fc\.weight"/));

  const moved = join(dir, 'moved.pt');
  renameSync(source, moved);
  try {
    await assert.rejects(
      artifactLayerDetail(artifact, 'layer2.0.conv1.weight', 0),
      isClear(
        /The source resnet\.pt is not beside the artifact resnet\.nern\.safetensors; original-vs-reconstructed needs it/,
      ),
    );
    // An explicit source path is tried first.
    const d = await artifactLayerDetail(artifact, 'layer2.0.conv1.weight', 1, 16, { source: moved });
    assert.equal(d.filter.index, 1);
    assert.equal(d.original.counts.length, 16);
  } finally {
    renameSync(moved, source);
  }

  const sub = mkdtempSync(join(dir, 'changed-'));
  copyFileSync(artifact, join(sub, 'resnet.nern.safetensors'));
  copyFileSync(source, join(sub, 'resnet.pt'));
  appendFileSync(join(sub, 'resnet.pt'), Buffer.from([0]));
  await assert.rejects(
    artifactLayerDetail(join(sub, 'resnet.nern.safetensors'), 'layer2.0.conv1.weight', 0),
    isClear(/The source resnet\.pt beside the artifact has changed since it was compressed/),
  );
});
