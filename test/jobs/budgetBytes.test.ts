// The budget planner plans in bytes: for each stored predictor dtype and each verbatim dtype, a target artifact size
// gives the widest predictor whose written file fits, with the planner's estimate an upper bound that is off by less
// than one width.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CompressOptionsDto } from '../../src/protocol/compress';
import { PREDICTOR_DTYPES, VERBATIM_DTYPES } from '../../src/protocol/vocabulary';
import {
  compressCheckpoint,
  DEFAULT_COMPRESS_OPTIONS,
  ensureBackend,
  planCompression,
} from '../../src/core/jobs/compress';
import { measureArtifactBytes, predictorStoredBytes } from '../../src/core/nern/artifactSize';
import { predictorParamsFor } from '../../src/core/nern/budget';
import { FIXTURES } from '../helpers/fixtures';

const RESNET = join(FIXTURES, 'pytorch', 'resnet_tiny.pt');
let dir = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wl-budget-'));
  await ensureBackend('wasm');
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

void test('stored predictor bytes per dtype: f32 4 B, f16 2 B, int8 1 B + scales, int4 ½ B + scales (+ F32 biases)', () => {
  const h = 20;
  const params = predictorParamsFor(h);
  const biases = 3 * h + 9 + h; // four hidden-layer biases of h, the output layer's 9
  const weights = params - biases;
  assert.equal(predictorStoredBytes(h, 240, 'f32'), 4 * params);
  assert.equal(predictorStoredBytes(h, 240, 'f16'), 2 * weights + 4 * biases);
  assert.equal(predictorStoredBytes(h, 240, 'int8'), weights + 8 * biases);
  // int4: each layer's codes round up to whole bytes.
  const int4Codes = [240 * h, h * h, h * h, h * h, h * 9].reduce((n, c) => n + Math.ceil(c / 2), 0);
  assert.equal(predictorStoredBytes(h, 240, 'int4'), int4Codes + 8 * biases);
});

for (const lean of [false, true]) {
  void test(`--size-bytes X gives the widest predictor whose artifact fits, for every dtype${lean ? ' (lean)' : ''}`, async () => {
    for (const predictorDtype of PREDICTOR_DTYPES) {
      const base: CompressOptionsDto = {
        ...DEFAULT_COMPRESS_OPTIONS,
        steps: 10,
        backend: 'wasm',
        predictorDtype,
        lean,
      };
      const at = (hidden: number) => planCompression(RESNET, { ...base, budget: { kind: 'hidden', hidden } });
      // A target between the planned sizes of widths 20 and 21.
      const [p20, p21] = [await at(20), await at(21)];
      assert.ok(p20.bytes !== undefined && p21.bytes !== undefined);
      assert.equal(
        p21.bytes.predictor - p20.bytes.predictor,
        predictorStoredBytes(21, 240, predictorDtype) - predictorStoredBytes(20, 240, predictorDtype),
      );
      const X = Math.floor((p20.artifactBytes + p21.artifactBytes) / 2);
      const out = join(dir, `${predictorDtype}-${lean}.nern.safetensors`);
      const report = await compressCheckpoint(RESNET, { ...base, budget: { kind: 'bytes', bytes: X }, out });
      const written = statSync(out).size;
      const what = `${predictorDtype}${lean ? ' lean' : ''}: X ${X}, h ${report.hidden}, file ${written}`;
      assert.equal(report.hidden, 20, what);
      assert.ok(written <= X, what);
      assert.equal(report.artifactBytes, written);
      // The estimate is an upper bound, and off by less than one width step (the planner's granularity).
      const margin = p20.artifactBytes - written;
      const step = p21.artifactBytes - p20.artifactBytes;
      assert.ok(margin >= 0 && margin < step, `${what}: margin ${margin}, step ${step}`);
      // One width wider, written for real, does not fit in X less that margin.
      const wider = join(dir, `${predictorDtype}-${lean}-21.nern.safetensors`);
      await compressCheckpoint(RESNET, { ...base, budget: { kind: 'hidden', hidden: 21 }, out: wider });
      assert.ok(statSync(wider).size > X - margin, `${what}: width 21 writes ${statSync(wider).size}`);
      assert.ok(statSync(wider).size <= p21.artifactBytes);
    }
  });
}

for (const lean of [false, true]) {
  void test(`--size-bytes X gives the widest predictor whose artifact fits, per verbatim dtype${lean ? ' (lean)' : ''}`, async () => {
    for (const verbatimDtype of VERBATIM_DTYPES) {
      const base: CompressOptionsDto = {
        ...DEFAULT_COMPRESS_OPTIONS,
        steps: 10,
        backend: 'wasm',
        predictorDtype: 'int8',
        verbatimDtype,
        lean,
      };
      const at = (hidden: number) => planCompression(RESNET, { ...base, budget: { kind: 'hidden', hidden } });
      const [p20, p21] = [await at(20), await at(21)];
      assert.ok(p20.bytes !== undefined);
      const X = Math.floor((p20.artifactBytes + p21.artifactBytes) / 2);
      const out = join(dir, `v${verbatimDtype}-${lean}.nern.safetensors`);
      const report = await compressCheckpoint(RESNET, { ...base, budget: { kind: 'bytes', bytes: X }, out });
      const written = statSync(out).size;
      const what = `verbatim ${verbatimDtype}${lean ? ' lean' : ''}: X ${X}, h ${report.hidden}, file ${written}`;
      assert.equal(report.hidden, 20, what);
      assert.ok(written <= X, what);
      // The verbatim bytes are planned exactly, and shrink with the dtype.
      assert.equal(p20.bytes.verbatim, (await measureArtifactBytes(out)).verbatim, what);
      const margin = p20.artifactBytes - written;
      const step = p21.artifactBytes - p20.artifactBytes;
      assert.ok(margin >= 0 && margin < step, `${what}: margin ${margin}, step ${step}`);
      const wider = join(dir, `v${verbatimDtype}-${lean}-21.nern.safetensors`);
      await compressCheckpoint(RESNET, { ...base, budget: { kind: 'hidden', hidden: 21 }, out: wider });
      assert.ok(statSync(wider).size > X - margin, `${what}: width 21 writes ${statSync(wider).size}`);
      assert.ok(statSync(wider).size <= p21.artifactBytes);
    }
    const verbatim = await Promise.all(
      VERBATIM_DTYPES.map(
        async (d) => (await measureArtifactBytes(join(dir, `v${d}-${lean}.nern.safetensors`))).verbatim,
      ),
    );
    assert.ok(verbatim[0]! > verbatim[1]! && verbatim[1]! > verbatim[2]!, verbatim.join(' > '));
  });
}
