/**
 * ONNX operators whose results are booleans or indices: comparisons, logical operators, `Where`, `ArgMax`/`ArgMin`
 * and `TopK`. The executor holds every value as float32, so a boolean is 0 or 1 and an index (ONNX int64) is a
 * float32 integer, exact below 2^24; a boolean input is true where it is non-zero. `execute.ts` merges `LOGIC_OPS`
 * into its operator table. Comparisons and `ArgMax` have zero gradients, `Where` passes gradients to the branch it
 * selects (tfjs Select), and `TopK`'s values have none in tfjs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { attrInt } from './ir';
import { broadcastShapes, checkResult, fail, input, normAxis, numbers, type OpContext, type OpImpl } from './opContext';

/** A comparison of two broadcast inputs as a 0/1 float32 tensor. */
const compare =
  (fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): OpImpl =>
  (ctx) =>
    tf.cast(fn(input(ctx, 0), input(ctx, 1)), 'float32');

/** A logical operator over the truth (non-zero) of its broadcast inputs, as a 0/1 float32 tensor. */
const logical =
  (fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): OpImpl =>
  (ctx) =>
    tf.cast(fn(truth(input(ctx, 0)), truth(input(ctx, 1))), 'float32');

/** Where a value is non-zero, as a bool tensor. */
function truth(x: tf.Tensor): tf.Tensor {
  return x.dtype === 'bool' ? x : tf.notEqual(x, 0);
}

/**
 * `ArgMax`/`ArgMin`: the index of the first (or with `select_last_index`, the last) extreme value along `axis`,
 * keeping the reduced axis as size 1 unless `keepdims` is 0.
 */
function argExtreme(ctx: OpContext, kind: 'max' | 'min'): tf.Tensor {
  const x = input(ctx, 0);
  if (x.rank === 0) fail(ctx.node, 'the input is a scalar, which has no axis to reduce.');
  const axis = normAxis(attrInt(ctx.node, 'axis', 0), x.rank, ctx.node);
  const dim = x.shape[axis] ?? 0;
  if (dim === 0) fail(ctx.node, `axis ${axis} has no elements to choose from.`);
  const last = ctx.opset >= 12 && attrInt(ctx.node, 'select_last_index', 0) === 1;
  const fn = kind === 'max' ? tf.argMax : tf.argMin;
  // tfjs returns the first extreme; the last one is the first of the reversed axis, counted from the end.
  let index: tf.Tensor = last ? tf.sub(dim - 1, fn(tf.reverse(x, [axis]), axis)) : fn(x, axis);
  index = tf.cast(index, 'float32');
  return attrInt(ctx.node, 'keepdims', 1) === 1 ? tf.expandDims(index, axis) : index;
}

/**
 * `TopK`: the `k` largest (or with `largest` 0, smallest) values along `axis` and their indices, sorted, equal
 * values in index order (the order ONNX specifies; a `sorted` 0 result may be in any order, so sorted is valid).
 * `k` is an attribute before opset 10 and a one-element input from then on.
 */
function topK(ctx: OpContext): tf.Tensor[] {
  const { node } = ctx;
  const x = input(ctx, 0);
  if (x.rank === 0) fail(node, 'the input is a scalar, which has no axis to select from.');
  let k: number;
  if (ctx.opset >= 10) {
    const kIn = numbers(ctx, 1) ?? fail(node, 'the K input is missing.');
    if (kIn.length !== 1) fail(node, `K should hold one value, not ${kIn.length}.`);
    k = kIn[0] ?? 0;
  } else k = attrInt(node, 'k', -1);
  const axis = normAxis(attrInt(node, 'axis', -1), x.rank, node);
  const dim = x.shape[axis] ?? 0;
  if (!Number.isInteger(k) || k < 0 || k > dim) fail(node, `K = ${k} is outside 0…${dim}, the size of axis ${axis}.`);
  const largest = ctx.opset < 11 || attrInt(node, 'largest', 1) === 1;
  // tfjs selects along the last axis only: move `axis` last and back.
  const perm = Array.from({ length: x.rank }, (_, i) => i);
  perm[axis] = x.rank - 1;
  perm[x.rank - 1] = axis;
  const moved = axis === x.rank - 1 ? x : tf.transpose(x, perm);
  const { values, indices } = tf.topk(largest ? moved : tf.neg(moved), k, true);
  const v = largest ? values : tf.neg(values);
  const i = tf.cast(indices, 'float32');
  return axis === x.rank - 1 ? [v, i] : [tf.transpose(v, perm), tf.transpose(i, perm)];
}

/** Operator implementations of this module, by ONNX op type (merged into `OPS`). */
export const LOGIC_OPS: Readonly<Record<string, OpImpl>> = {
  Equal: compare((a, b) => tf.equal(a, b)),
  Greater: compare((a, b) => tf.greater(a, b)),
  Less: compare((a, b) => tf.less(a, b)),
  GreaterOrEqual: compare((a, b) => tf.greaterEqual(a, b)),
  LessOrEqual: compare((a, b) => tf.lessEqual(a, b)),
  Not: (ctx) => tf.cast(tf.logicalNot(truth(input(ctx, 0))), 'float32'),
  And: logical((a, b) => tf.logicalAnd(a, b)),
  Or: logical((a, b) => tf.logicalOr(a, b)),
  Xor: logical((a, b) => tf.logicalXor(a, b)),
  Where: (ctx) => {
    const [cond, a, b] = [input(ctx, 0), input(ctx, 1), input(ctx, 2)];
    checkResult(ctx.node, broadcastShapes(ctx.node, broadcastShapes(ctx.node, cond.shape, a.shape), b.shape));
    return tf.where(truth(cond), a, b);
  },
  ArgMax: (ctx) => argExtreme(ctx, 'max'),
  ArgMin: (ctx) => argExtreme(ctx, 'min'),
  TopK: topK,
};
