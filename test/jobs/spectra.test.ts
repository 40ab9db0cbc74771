// The spectra job on the project's real checkpoints: every matrix and convolution analysed in file order with
// progress, the skipped tensors with reasons, a subset by name, randomized spectra when a side exceeds the largest
// exact rank (stated in the result), cancellation, and the original-vs-reconstructed spectra of an artifact's layer.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from '../helpers/fixtures';
import { artifactLayerSpectra, spectraOfFile } from '../../src/core/jobs/spectra';
import { compressCheckpoint } from '../../src/core/jobs/compress';
import { BadInputError, CancelledError } from '../../src/core/io/errors';
import type { SpectraProgressDto } from '../../src/protocol/spectra';

const RESNET = join(FIXTURES, 'models', 'resnet20_fmnist.pt');
const ESRGAN = join(FIXTURES, 'published', 'esrgan-medium', 'x2', 'model.json');
const reference = JSON.parse(readFileSync(join(FIXTURES, 'spectra', 'reference.json'), 'utf8')) as {
  files: Record<string, { name: string; alpha: number; stableRank: number }[]>;
};
const dir = mkdtempSync(join(tmpdir(), 'wl-spectra-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

void test('every conv and dense layer of the ResNet-20, in order, with progress and the skipped stem', async () => {
  const progress: SpectraProgressDto[] = [];
  const seen: string[] = [];
  let planned: string[] = [];
  const report = await spectraOfFile(
    RESNET,
    { maxRank: 1024, bins: 50 },
    {
      onPlan: (layers) => (planned = layers),
      onProgress: (p) => progress.push(p),
      onLayer: (_i, l) => seen.push(l.name),
    },
  );
  const ref = reference.files['models/resnet20_fmnist.pt']!;
  assert.deepEqual(
    planned,
    ref.map((l) => l.name),
  );
  assert.deepEqual(seen, planned);
  assert.deepEqual(
    report.skipped.map((s) => s.name),
    ['conv1.weight'],
  );
  assert.match(report.skipped[0]!.reason, /9 eigenvalues/);
  for (const [i, l] of report.layers.entries()) {
    assert.equal(l.method.kind, 'exact');
    assert.ok(Math.abs(l.alpha! - ref[i]!.alpha) < 1e-3, l.name);
    assert.equal(l.esd.density.length, 50);
    assert.equal(l.singularValues, undefined, 'singular values only when asked for');
  }
  // A progress call opens every layer, with its index of the total.
  for (let i = 0; i < report.layers.length; i++)
    assert.ok(progress.some((p) => p.index === i && p.fraction === 0 && p.total === report.layers.length));
});

void test('a side above maxRank gets a randomized spectrum of that many values per slice, and no MP soft rank', async () => {
  const report = await spectraOfFile(ESRGAN, { maxRank: 32, bins: 20, layers: ['F_0/kernel', 'LFF_1/kernel'] });
  const [f0, lff] = report.layers;
  assert.deepEqual(f0!.method, { kind: 'randomized', rank: 32, powerIterations: 4 });
  assert.equal(f0!.evalCount, 9 * 32);
  assert.equal(f0!.mpSoftRank, null);
  // The Frobenius norm stays exact, and the top of the spectrum is accurate, so the stable rank is close.
  const exact = reference.files['published/esrgan-medium/x2/model.json']!.find((l) => l.name === 'F_0/kernel')!;
  assert.ok(Math.abs(f0!.stableRank - exact.stableRank) / exact.stableRank < 1e-2);
  assert.equal(lff!.method.kind, 'randomized');
  const exactRun = await spectraOfFile(ESRGAN, { maxRank: 0, bins: 20, layers: ['F_0/kernel'] });
  assert.equal(exactRun.layers[0]!.method.kind, 'exact');
  assert.ok(Math.abs(exactRun.layers[0]!.alpha! - exact.alpha) < 1e-3);
});

void test('bad options and unknown layers are bad input; an abort stops the job', async () => {
  await assert.rejects(spectraOfFile(RESNET, { maxRank: -1, bins: 10 }), (e: unknown) => {
    assert.ok(e instanceof BadInputError);
    assert.equal(e.option, 'maxRank');
    return true;
  });
  await assert.rejects(spectraOfFile(RESNET, { maxRank: 0, bins: 10, layers: ['nope'] }), /no tensor "nope"/);
  const controller = new AbortController();
  await assert.rejects(
    spectraOfFile(
      RESNET,
      { maxRank: 0, bins: 10 },
      {
        signal: controller.signal,
        onLayer: (i) => {
          if (i === 2) controller.abort();
        },
      },
    ),
    CancelledError,
  );
});

void test("an artifact layer's original and reconstructed spectra, from the source beside it", async () => {
  const source = join(dir, 'resnet20_fmnist.pt');
  copyFileSync(RESNET, source);
  const out = join(dir, 'r.nern.safetensors');
  await compressCheckpoint(source, {
    budget: { kind: 'hidden', hidden: 8 },
    steps: 20,
    permutation: 'none',
    seed: 0,
    represent: { conv: true, dense: false },
    backend: 'wasm',
    rounds: 1,
    roundWidthScale: 1,
    out,
  });
  const layer = 'layer3.0.conv2.weight';
  const cmp = await artifactLayerSpectra(out, layer, { maxRank: 0, bins: 30 });
  const ref = reference.files['models/resnet20_fmnist.pt']!.find((l) => l.name === layer)!;
  assert.equal(cmp.layer, layer);
  assert.ok(Math.abs(cmp.original.alpha! - ref.alpha) < 1e-3);
  // A 20-step predictor of width 8 does not reproduce the layer: its spectrum differs.
  assert.notEqual(cmp.reconstructed.stableRank.toFixed(3), cmp.original.stableRank.toFixed(3));
  await assert.rejects(artifactLayerSpectra(out, 'linear.weight', { maxRank: 0, bins: 30 }), /no represented layer/);
});
