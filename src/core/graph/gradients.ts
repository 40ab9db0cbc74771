/**
 * Gradients for differentiating through `runGraph`: all of tfjs's registered gradients, plus the one tfjs lacks that
 * the executor uses, StridedSlice (ONNX `Slice` with steps, and strided-and-dilated convolutions). Import this module
 * once before `tf.grad`/`tf.variableGrads` over a graph; inference-only code does not need it.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';

interface StridedSliceAttrs {
  begin: number[];
  end: number[];
  strides: number[];
  beginMask?: number;
  endMask?: number;
  ellipsisMask?: number;
  newAxisMask?: number;
  shrinkAxisMask?: number;
}

/**
 * The gradient of a StridedSlice with positive strides, in-range `begin`/`end` and no masks (the only form the
 * executor emits): dy is spread back to every `stride`-th position by padding each strided axis with stride−1 zeros
 * after each element, then padded out to the input's shape. Throws for other forms.
 */
export function stridedSliceGradient(dy: tf.Tensor, xShape: readonly number[], attrs: StridedSliceAttrs): tf.Tensor {
  const masks =
    (attrs.beginMask ?? 0) |
    (attrs.endMask ?? 0) |
    (attrs.ellipsisMask ?? 0) |
    (attrs.newAxisMask ?? 0) |
    (attrs.shrinkAxisMask ?? 0);
  if (masks !== 0 || attrs.strides.some((s) => s < 1) || attrs.begin.length !== xShape.length) {
    throw new Error('Only masked-free, positive-stride StridedSlice has a gradient here.');
  }
  let g = dy;
  attrs.strides.forEach((step, axis) => {
    if (step === 1) return;
    const span = (attrs.end[axis] ?? 0) - (attrs.begin[axis] ?? 0);
    const count = g.shape[axis] ?? 0;
    const spread = g.shape.map((): [number, number] => [0, 0]);
    spread.splice(axis + 1, 0, [0, step - 1]);
    const widened = tf.pad(tf.expandDims(g, axis + 1), spread);
    const merged = tf.reshape(widened, [...g.shape.slice(0, axis), count * step, ...g.shape.slice(axis + 1)]);
    g = tf.slice(
      merged,
      merged.shape.map(() => 0),
      merged.shape.map((d, i) => (i === axis ? span : d)),
    );
  });
  const outer = xShape.map((d, i): [number, number] => [attrs.begin[i] ?? 0, d - (attrs.end[i] ?? d)]);
  return outer.some(([a, b]) => a !== 0 || b !== 0) ? tf.pad(g, outer) : g;
}

tf.registerGradient({
  kernelName: 'StridedSlice',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    if (x === undefined || Array.isArray(dy)) throw new Error('StridedSlice gradient: unexpected inputs.');
    const shape = x.shape;
    return { x: () => stridedSliceGradient(dy, shape, attrs as unknown as StridedSliceAttrs) };
  },
});
