// WeightWatcher's spectral metrics on real checkpoints (a torch.save ResNet-20 and a published TF.js ESRGAN), read by
// Weight Lens' readers, against test/fixtures/spectra/reference.json: NumPy's float64 SVD and WeightWatcher's
// definitions in NumPy/SciPy (test/fixtures/make/spectra.py), with its own readers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from '../../helpers/fixtures';
import { openCheckpoint } from '../../../src/core/formats/registry';
import { convLayoutFor } from '../../../src/core/nern/tiling';
import { readTensorValues } from '../../../src/core/tensors/tensor';
import { layerSpectrum, logHistogram, matrixPlan, planProblem } from '../../../src/core/analysis/spectra';
import { NativeSingularValues } from '../../../src/core/analysis/nativeLinalg';
import { loadOnnxRuntime } from '../../../src/core/backend/onnxRuntime';

interface ReferenceLayer {
  name: string;
  kind: 'dense' | 'conv';
  shape: number[];
  n: number;
  m: number;
  slices: number;
  singularValues: number[];
  alpha: number;
  xmin: number;
  ks: number;
  tail: number;
  alphaWeighted: number;
  stableRank: number;
  logSpectralNorm: number;
  logNorm: number;
  mpSoftRank: number;
}

const reference = JSON.parse(readFileSync(join(FIXTURES, 'spectra', 'reference.json'), 'utf8')) as {
  files: Record<string, ReferenceLayer[]>;
};

function close(actual: number, expected: number, rel: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= rel * Math.max(Math.abs(expected), 1e-30),
    `${what}: ${actual} vs reference ${expected} (relative tolerance ${rel})`,
  );
}

// Both engines: JavaScript alone, and the native route forced onto every matrix (minSide 0; by default it takes
// only sides ≥ 192, which these fixtures do not have).
for (const [file, layers] of Object.entries(reference.files))
  for (const engine of ['javascript', 'onnxruntime'] as const)
    void test(`spectra of ${file} on ${engine} match NumPy/SciPy with WeightWatcher's definitions`, async () => {
      const loaded = engine === 'onnxruntime' ? loadOnnxRuntime() : undefined;
      if (loaded && !loaded.ok) throw new Error(`onnxruntime-node is a dev dependency and must load: ${loaded.reason}`);
      const native = loaded?.ok ? await NativeSingularValues.create(loaded.ort, 2, 0) : undefined;
      const checkpoint = await openCheckpoint(join(FIXTURES, file));
      try {
        const layout = convLayoutFor(checkpoint.format);
        // Every tensor the reference analysed is analysed here, and no other.
        const analysed = checkpoint.tensors.filter((t) => {
          const plan = matrixPlan(t.shape, layout);
          return typeof plan !== 'string' && planProblem(plan) === undefined;
        });
        assert.deepEqual(analysed.map((t) => t.name).sort(), layers.map((l) => l.name).sort());
        for (const ref of layers) {
          const entry = checkpoint.tensors.find((t) => t.name === ref.name)!;
          const values = await readTensorValues(entry);
          const got = await layerSpectrum(entry.name, entry.shape, values, layout, {
            maxRank: 0,
            bins: 100,
            includeValues: true,
            ...(native ? { native } : {}),
          });
          const at = `${file} ${ref.name}`;
          assert.equal(got.kind, ref.kind, at);
          assert.deepEqual([got.n, got.m, got.slices], [ref.n, ref.m, ref.slices], at);
          assert.equal(got.method.kind, 'exact');
          const sv = got.singularValues!;
          assert.equal(sv.length, ref.singularValues.length, at);
          sv.forEach((s, i) => {
            close(s, ref.singularValues[i]!, 1e-4, `${at} σ[${i}]`);
          });
          assert.ok(got.alpha !== null, at);
          assert.ok(Math.abs(got.alpha - ref.alpha) <= 1e-3, `${at} α ${got.alpha} vs ${ref.alpha}`);
          close(got.xmin!, ref.xmin, 1e-4, `${at} xmin`);
          assert.equal(got.tail, ref.tail, `${at} tail`);
          close(got.ks!, ref.ks, 1e-3, `${at} KS distance`);
          close(got.alphaWeighted!, ref.alphaWeighted, 1e-3, `${at} α-weighted`);
          close(got.stableRank, ref.stableRank, 1e-6, `${at} stable rank`);
          close(got.logSpectralNorm, ref.logSpectralNorm, 1e-6, `${at} log spectral norm`);
          close(got.logNorm, ref.logNorm, 1e-6, `${at} log norm`);
          assert.ok(got.mpSoftRank !== null, at);
          close(got.mpSoftRank, ref.mpSoftRank, 1e-3, `${at} MP soft rank`);
          assert.equal(got.warning, ref.alpha < 2 ? 'over-trained' : ref.alpha > 6 ? 'under-trained' : undefined, at);
        }
      } finally {
        await checkpoint.close();
        await native?.release();
      }
    });

void test('a convolution is its kh·kw slices pooled, in either layout, with evals scaled by ½', async () => {
  // 2 × 3 × 2 × 2 (oihw) and the same kernel as hwio: the same pooled spectrum.
  const oihw = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i + 1));
  const hwio = new Float32Array(24);
  for (let o = 0; o < 2; o++)
    for (let c = 0; c < 3; c++) for (let s = 0; s < 4; s++) hwio[(s * 3 + c) * 2 + o] = oihw[(o * 3 + c) * 4 + s]!;
  const options = { maxRank: 0, bins: 10, includeValues: true };
  const a = await layerSpectrum('k', [2, 3, 2, 2], oihw, 'oihw', options);
  const b = await layerSpectrum('k', [2, 2, 3, 2], hwio, 'hwio', options);
  assert.deepEqual([a.n, a.m, a.slices, a.evalCount, a.evalScale], [3, 2, 4, 8, 0.5]);
  a.singularValues!.forEach((s, i) => {
    close(s, b.singularValues![i]!, 1e-12, `σ[${i}]`);
  });
  // Σσ² is the squared Frobenius norm; the metrics use ½ of it.
  const f2 = oihw.reduce((s, v) => s + v * v, 0);
  close(
    a.singularValues!.reduce((s, v) => s + v * v, 0),
    f2,
    1e-9,
    'Σσ²',
  );
  close(10 ** a.logNorm, f2 / 2, 1e-9, 'log norm');
});

void test('tensors without a spectrum say why', () => {
  const rank3 = matrixPlan([3, 4, 5], 'oihw');
  assert.ok(typeof rank3 === 'string' && /3-D tensor/.test(rank3));
  const small = matrixPlan([16, 1, 3, 3], 'oihw');
  assert.ok(typeof small !== 'string');
  assert.match(planProblem(small) ?? '', /9 eigenvalues, fewer than the 10/);
  const wide = matrixPlan([60_000, 16], 'oihw');
  assert.ok(typeof wide !== 'string');
  assert.match(planProblem(wide) ?? '', /side of 60000/);
});

void test('non-finite weights are a format error, not a spectrum of NaN', async () => {
  const w = new Float32Array(40).fill(0.5);
  w[7] = NaN;
  await assert.rejects(
    layerSpectrum('w', [10, 4], w, 'oihw', { maxRank: 0, bins: 10 }),
    /NaN or infinite values at index 7/,
  );
});

void test('the log histogram is a density over log bins', () => {
  const values = Array.from({ length: 1000 }, (_, i) => 10 ** (-2 + (4 * i) / 999));
  const h = logHistogram(values, 0, 20);
  assert.equal(h.edges.length, 21);
  assert.equal(h.edges[0], values[0]);
  assert.equal(h.edges[20], values[999]);
  const mass = h.density.reduce((s, d, i) => s + d * (h.edges[i + 1]! - h.edges[i]!), 0);
  close(mass, 1, 1e-12, 'total mass');
  assert.deepEqual(logHistogram([0, 1e-9], 1e-6, 10), { edges: [], density: [] });
});
