/**
 * The wasm gradients (src/core/backend/wasmGradients.ts) and the StridedSlice gradient (src/core/graph/gradients.ts)
 * against tfjs's pure-JS cpu backend, whose kernels are direct loops over the definitions: convolution weight and
 * input gradients over strides, paddings, dilations and odd shapes, depthwise gradients, and strided slices.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../../src/core/backend/tfjsBackend';
import { dilatedValid } from '../../../src/core/graph/dilation';
import { stridedSliceGradient } from '../../../src/core/graph/gradients';
import { relativeMaxError, seededRandom } from '../graph/helpers';

function random(shape: number[], seed: number): Float32Array {
  return seededRandom(
    seed,
    shape.reduce((a, b) => a * b, 1),
  );
}

/** Runs `f` on `backend` with fresh tensors from `values` and returns the gradients' values. */
async function gradsOn(
  backend: string,
  values: { shape: number[]; data: Float32Array }[],
  f: (...xs: tf.Tensor[]) => tf.Scalar,
): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const xs = values.map((v) => tf.tensor(v.data, v.shape));
  const grads = tf.grads(f)(xs);
  const out = grads.map((g) => g.dataSync() as Float32Array);
  tf.dispose([...xs, ...grads]);
  return out;
}

async function compare(
  name: string,
  values: { shape: number[]; data: Float32Array }[],
  f: (...xs: tf.Tensor[]) => tf.Scalar,
): Promise<void> {
  const before = tf.memory().numTensors;
  const wasm = await gradsOn('wasm', values, f);
  assert.equal(tf.memory().numTensors, before, `${name}: tensors leaked`);
  const cpu = await gradsOn('cpu', values, f);
  await tf.setBackend('wasm');
  wasm.forEach((g, i) => {
    assert.ok(
      relativeMaxError(g, cpu[i]!) < 1e-5,
      `${name}: gradient ${i} differs from the cpu backend by ${relativeMaxError(g, cpu[i]!)}`,
    );
  });
}

test('wasm convolution gradients match the cpu backend', async () => {
  await initBackend('wasm');
  const cases: {
    x: [number, number, number, number];
    w: [number, number, number, number];
    strides: [number, number];
    pad: 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
    dil: [number, number];
  }[] = [
    { x: [2, 9, 9, 3], w: [3, 3, 3, 4], strides: [1, 1], pad: 'same', dil: [1, 1] },
    { x: [2, 9, 8, 3], w: [3, 3, 3, 5], strides: [2, 2], pad: 'same', dil: [1, 1] },
    { x: [1, 10, 10, 2], w: [3, 3, 2, 3], strides: [2, 1], pad: 'valid', dil: [1, 1] },
    { x: [2, 11, 7, 2], w: [3, 2, 2, 3], strides: [1, 1], pad: 'valid', dil: [1, 1] },
    { x: [1, 12, 12, 4], w: [1, 1, 4, 6], strides: [2, 2], pad: 'valid', dil: [1, 1] },
    {
      x: [1, 8, 8, 2],
      w: [5, 5, 2, 2],
      strides: [3, 3],
      pad: [
        [0, 0],
        [2, 1],
        [1, 2],
        [0, 0],
      ],
      dil: [1, 1],
    },
  ];
  for (const [i, c] of cases.entries()) {
    const y = tf.tidy(() =>
      tf.conv2d(tf.zeros<tf.Rank.R4>(c.x), tf.zeros<tf.Rank.R4>(c.w), c.strides, c.pad, 'NHWC', c.dil),
    );
    const dyShape = y.shape;
    y.dispose();
    const values = [
      { shape: c.x, data: random(c.x, 10 + i) },
      { shape: c.w, data: random(c.w, 20 + i) },
      { shape: dyShape, data: random(dyShape, 30 + i) },
    ];
    await compare(`conv case ${i}`, values, (x, w, dy) =>
      tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.strides, c.pad, 'NHWC', c.dil), dy)),
    );
  }
});

test('wasm depthwise convolution gradients (borrowed cpu kernels) match the cpu backend', async () => {
  await initBackend('wasm');
  const values = [
    { shape: [2, 8, 8, 3], data: random([2, 8, 8, 3], 1) },
    { shape: [3, 3, 3, 2], data: random([3, 3, 3, 2], 2) },
  ];
  await compare('depthwise', values, (x, w) =>
    tf.sum(tf.square(tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'))),
  );
});

test('StridedSlice has a gradient equal to the cpu backend and to a direct scatter', async () => {
  await initBackend('wasm');
  const values = [{ shape: [2, 3, 9, 8], data: random([2, 3, 9, 8], 5) }];
  await compare('strided slice', values, (x) =>
    tf.sum(tf.square(tf.stridedSlice(x, [0, 1, 1, 0], [2, 3, 9, 7], [1, 1, 2, 3]))),
  );
  // Direct check: the gradient of sum(slice) is 1 exactly at the selected positions.
  const g = tf.tidy(() =>
    stridedSliceGradient(tf.ones([1, 3]), [1, 7], { begin: [0, 1], end: [1, 7], strides: [1, 2] }),
  );
  assert.deepEqual(Array.from(g.dataSync()), [0, 1, 0, 1, 0, 1, 0]);
  g.dispose();
  assert.throws(
    () => stridedSliceGradient(tf.ones([1]), [3], { begin: [0], end: [3], strides: [2], shrinkAxisMask: 1 }),
    /positive-stride/,
  );
});

test('dilated convolutions through space-to-batch equal a convolution with the kernel spread by zeros, gradients included', async () => {
  await initBackend('wasm');
  const x = tf.tensor4d(random([2, 11, 10, 3], 40), [2, 11, 10, 3]);
  const w = tf.tensor4d(random([3, 3, 3, 4], 41), [3, 3, 3, 4]);
  const d: [number, number] = [2, 3];
  // The same kernel with (d − 1) zeros between taps: an undilated 5×7 convolution, which tfjs differentiates.
  const spread = (k: tf.Tensor4D): tf.Tensor4D => {
    const values = k.arraySync();
    const out = Array.from({ length: 5 }, () =>
      Array.from({ length: 7 }, () => Array.from({ length: 3 }, () => new Array<number>(4).fill(0))),
    );
    values.forEach((row, i) => {
      row.forEach((taps, j) => {
        out[i * d[0]]![j * d[1]] = taps;
      });
    });
    return tf.tensor4d(out);
  };
  const viaSpaceToBatch = (k: tf.Tensor): tf.Scalar =>
    tf.sum(tf.square(dilatedValid(x, d, (t) => tf.conv2d(t, k as tf.Tensor4D, 1, 'valid', 'NHWC'))));
  const before = tf.memory().numTensors;
  const [a, ga] = tf.tidy(() => [viaSpaceToBatch(w), tf.grad(viaSpaceToBatch)(w)]);
  const wide = spread(w);
  const [b, gb] = tf.tidy(() => {
    const f = (k: tf.Tensor): tf.Scalar => tf.sum(tf.square(tf.conv2d(x, k as tf.Tensor4D, 1, 'valid', 'NHWC')));
    return [f(wide), tf.grad(f)(wide)];
  });
  assert.ok(relativeMaxError(a.dataSync(), b.dataSync()) < 1e-5);
  // Gradient w.r.t. the 3×3 taps = the spread kernel's gradient at the tap positions.
  const gWide = gb.arraySync() as number[][][][];
  const gTaps = (ga.arraySync() as number[][][][]).flatMap((row, i) =>
    row.flatMap((taps, j) => taps.flat().map((v, t) => [v, gWide[i * d[0]]![j * d[1]]!.flat()[t]!])),
  );
  for (const [v, ref] of gTaps) assert.ok(Math.abs(v! - ref!) <= 1e-4 * Math.max(1, Math.abs(ref!)), `${v} vs ${ref}`);
  tf.dispose([a, ga, b, gb, wide]);
  assert.equal(tf.memory().numTensors, before, 'no tensors leak');
  tf.dispose([x, w]);
});
