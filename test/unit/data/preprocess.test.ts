import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import {
  applyPreprocessing,
  centreCrop,
  fromNCHW,
  normalize,
  pad,
  parsePreprocessSidecar,
  preprocessedShape,
  resizeBilinear,
  scale,
  toNCHW,
  type ImageBatch,
} from '../../../src/core/data/preprocess';

function batch(values: number[], n: number, h: number, w: number, c: number): ImageBatch {
  return { data: Float32Array.from(values), n, h, w, c };
}

function close(actual: ArrayLike<number>, expected: readonly number[], tol = 1e-5): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++)
    assert.ok(Math.abs((actual[i] ?? NaN) - (expected[i] ?? NaN)) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
}

test('bilinear 2×2 → 4×4 matches the half-pixel-centre values computed by hand', () => {
  // Source coordinates (i + 0.5)·0.5 − 0.5 = −0.25, 0.25, 0.75, 1.25 → weights of the second row/column 0, .25, .75, 1.
  const out = resizeBilinear(batch([0, 10, 20, 30], 1, 2, 2, 1), 4, 4);
  assert.deepEqual([out.n, out.h, out.w, out.c], [1, 4, 4, 1]);
  close(out.data, [0, 2.5, 7.5, 10, 5, 7.5, 12.5, 15, 15, 17.5, 22.5, 25, 20, 22.5, 27.5, 30]);
});

test('bilinear downsampling 4×4 → 2×2 averages the central 2×2 of each quadrant (half-pixel, no antialias)', () => {
  const values = Array.from({ length: 16 }, (_, i) => i);
  // Source coordinates (i + 0.5)·2 − 0.5 = 0.5, 2.5: midway between rows/columns 0,1 and 2,3.
  const out = resizeBilinear(batch(values, 1, 4, 4, 1), 2, 2);
  close(out.data, [2.5, 4.5, 10.5, 12.5]);
});

test('bilinear resize keeps channels separate and identity size is exact', () => {
  const values = [1, 100, 2, 200, 3, 300, 4, 400];
  const same = resizeBilinear(batch(values, 1, 2, 2, 2), 2, 2);
  close(same.data, values);
  const up = resizeBilinear(batch(values, 1, 2, 2, 2), 1, 1);
  close(up.data, [2.5, 250]);
});

test('scale, normalize, pad, crop and layout', () => {
  const b = batch([0, 51, 102, 153, 204, 255], 1, 1, 2, 3);
  close(scale(b, 1 / 255).data, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  close(normalize(b, [0, 51, 102], [1, 51, 102]).data, [0, 0, 0, 153, 3, 1.5]);
  const padded = pad(batch([1, 2, 3, 4], 1, 2, 2, 1), 1, 0, 0, 2, -1);
  assert.deepEqual([padded.h, padded.w], [3, 4]);
  close(padded.data, [-1, -1, -1, -1, 1, 2, -1, -1, 3, 4, -1, -1]);
  const cropped = centreCrop(
    batch(
      Array.from({ length: 25 }, (_, i) => i),
      1,
      5,
      5,
      1,
    ),
    3,
    2,
  );
  close(cropped.data, [6, 7, 11, 12, 16, 17]);
  const nchw = toNCHW(b);
  close(nchw, [0, 153, 51, 204, 102, 255]);
  close(fromNCHW(nchw, 1, 3, 1, 2).data, Array.from(b.data));
});

test('sidecar parsing validates fields and applies in order', () => {
  const spec = parsePreprocessSidecar(
    '{"resize": [1, 1], "crop": [2, 2], "pad": 1, "std": 2, "mean": [1], "scale": 0.5, "layout": "NCHW"}',
    'm.weightlens.json',
  );
  assert.deepEqual(spec, {
    layout: 'NCHW',
    scale: 0.5,
    mean: [1],
    std: [2],
    pad: [1, 1, 1, 1],
    resize: [1, 1],
    crop: [2, 2],
  });
  const out = applyPreprocessing(batch([2, 4, 6, 8], 1, 2, 2, 1), spec);
  assert.deepEqual(out.shape, [1, 1, 1, 1]);
  // Whatever order the file lists them in: scale → [1, 2, 3, 4], normalise (x − 1) / 2 → [0, 0.5, 1, 1.5], pad with
  // zeros to 4×4, centre crop 2×2 → the normalised image again, resize to 1×1 → its mean 0.75.
  close(out.data, [0.75]);
  assert.deepEqual(preprocessedShape(28, 28, 1, { layout: 'NCHW', pad: [2, 2, 2, 2] }), [32, 32, 1]);
  assert.deepEqual(
    preprocessedShape(28, 28, 3, { layout: 'NHWC', pad: [2, 2, 2, 2], crop: [30, 30], resize: [224, 224] }),
    [224, 224, 3],
  );
  assert.deepEqual(parsePreprocessSidecar('{}'), { layout: 'NHWC' });
  for (const [text, pattern] of [
    ['not json', /not valid JSON/],
    ['[1]', /must be a JSON object/],
    ['{"sclae": 1}', /unknown field\(s\) "sclae"/],
    ['{"std": [0, 1, 1]}', /"std" entries must be positive/],
    ['{"pad": -1}', /"pad" must be/],
    ['{"resize": [224]}', /"resize" must be a list of 2 numbers/],
    ['{"layout": "CHW"}', /"layout" must be "NHWC" or "NCHW"/],
    ['{"scale": "1/255"}', /"scale" must be a finite non-zero number/],
  ] as const) {
    assert.throws(
      () => parsePreprocessSidecar(text, 'm.weightlens.json'),
      (e: unknown) => e instanceof CheckpointFormatError && pattern.test(e.message),
      text,
    );
  }
  assert.throws(
    () => applyPreprocessing(batch([1, 2], 1, 1, 2, 1), parsePreprocessSidecar('{"mean": [1, 2, 3]}')),
    (e: unknown) => e instanceof CheckpointFormatError && /mean has 3 entries; expected 1 or 1/.test(e.message),
  );
});

test('bilinear resize matches PyTorch interpolate(align_corners=False) on real pixels', () => {
  const manifest = JSON.parse(
    readFileSync(join(__dirname, '..', '..', 'fixtures', 'data', 'manifest.json'), 'utf8'),
  ) as {
    resize: { input: number[]; shape: [number, number, number]; cases: { size: [number, number]; nhwc: number[] }[] };
  };
  const { input, shape, cases } = manifest.resize;
  assert.ok(cases.length >= 4);
  for (const { size, nhwc } of cases) {
    const out = resizeBilinear(batch(input, 1, shape[0], shape[1], shape[2]), size[0], size[1]);
    close(out.data, nhwc, 1e-3);
  }
});
