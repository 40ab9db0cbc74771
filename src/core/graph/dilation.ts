/**
 * Dilated convolutions that TensorFlow.js can differentiate. tfjs registers no gradient for `conv2d` or
 * `depthwiseConv2d` with dilation above 1, but SpaceToBatchND and BatchToSpaceND have gradients; TensorFlow itself
 * implements dilation this way (space-to-batch by the dilation, an undilated op, batch-to-space back), at no extra
 * multiplications. Shared by the ONNX and the TF.js LayersModel operators.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * Applies `valid` (an undilated, stride-1, 'valid' convolution-like op on NHWC) with dilation [dh, dw] to `x`, which
 * must already be padded: the result is exactly a dilated 'valid' convolution, [n, h − (kh−1)·dh, w − (kw−1)·dw, c'].
 * The caller checks that `x` is at least as large as the dilated kernel.
 */
export function dilatedValid(
  x: tf.Tensor4D,
  [dh, dw]: readonly [number, number],
  valid: (x: tf.Tensor4D) => tf.Tensor4D,
): tf.Tensor4D {
  if (dh === 1 && dw === 1) return valid(x);
  const [, h, w] = x.shape;
  const extra: [number, number][] = [
    [0, (dh - (h % dh)) % dh],
    [0, (dw - (w % dw)) % dw],
  ];
  return tf.batchToSpaceND(valid(tf.spaceToBatchND(x, [dh, dw], extra)), [dh, dw], extra);
}
