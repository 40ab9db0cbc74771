/**
 * Functional executor of the graph IR on TensorFlow.js: `runGraph(graph, weights, inputs)` computes the graph's
 * outputs with the weights passed as *inputs* of the forward pass, so a forward can run on reconstructed or
 * perturbed weights and gradients flow back to them (`tf.grad`, `tf.variableGrads`).
 *
 * Conventions:
 * - ONNX layouts are kept at graph boundaries (NCHW). Convolutions and pools transpose to NHWC around the tfjs op.
 * - Every value is float32, including integer initializers and `Shape` results (exact for sizes below 2^24).
 *   Arguments that must be known numbers (Reshape's shape, Slice's starts, Pad's pads…) are read with `dataSync`.
 * - Gradients: `@tensorflow/tfjs-core` alone registers none. Callers that differentiate through `runGraph` must
 *   `import '@tensorflow/tfjs-core/dist/register_all_gradients'` once (this module does not, to keep inference-only
 *   bundles small).
 * - Everything runs inside `tf.tidy`: only the returned output tensors survive; the caller disposes them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointFormatError } from '../io/errors';
import { dilatedValid } from './dilation';
import { attrFloat, attrInt, attrInts, attrString, attrTensor, type Graph, type Node } from './ir';
import { LAYERS_OPS } from './layersOps';

/** What an operator implementation sees: the node, its inputs (undefined for missing optional ones), the opset. */
interface OpContext {
  readonly node: Node;
  readonly inputs: readonly (tf.Tensor | undefined)[];
  readonly opset: number;
}

type OpImpl = (ctx: OpContext) => tf.Tensor | tf.Tensor[];

function fail(node: Node, message: string): never {
  throw new CheckpointFormatError(`${node.op} node ${JSON.stringify(node.name)}: ${message}`);
}

function input(ctx: OpContext, i: number): tf.Tensor {
  const t = ctx.inputs[i];
  if (t === undefined) fail(ctx.node, `input ${i} is missing.`);
  return t;
}

/** The values of input `i` as plain numbers (shape-like arguments), or undefined when the input is absent. */
function numbers(ctx: OpContext, i: number): number[] | undefined {
  const t = ctx.inputs[i];
  if (t === undefined) return undefined;
  return Array.from(t.dataSync());
}

function normAxis(axis: number, rank: number, node: Node): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) fail(node, `axis ${axis} is out of range for rank ${rank}.`);
  return a;
}

/** ONNX Conv/Pool explicit pads for spatial dims: [[begin, end], ...]. Handles auto_pad. */
function spatialPads(node: Node, inSize: readonly number[], kernel: readonly number[], strides: readonly number[], dilations: readonly number[]): [number, number][] {
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  const n = inSize.length;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    return inSize.map((size, i) => {
      const s = strides[i] ?? 1;
      const k = ((kernel[i] ?? 1) - 1) * (dilations[i] ?? 1) + 1;
      const out = Math.ceil(size / s);
      const total = Math.max(0, (out - 1) * s + k - size);
      const small = Math.floor(total / 2);
      return autoPad === 'SAME_UPPER' ? [small, total - small] : [total - small, small];
    });
  }
  if (autoPad === 'VALID') return inSize.map(() => [0, 0]);
  const pads = attrInts(node, 'pads') ?? new Array<number>(2 * n).fill(0);
  if (pads.length !== 2 * n) fail(node, `pads has ${pads.length} values, expected ${2 * n}.`);
  return inSize.map((_, i) => [pads[i] ?? 0, pads[i + n] ?? 0]);
}

/** Lifts a 3-D (N, C, L) tensor to 4-D (N, C, 1, L) so 1-D convolutions and pools reuse the 2-D code. */
function as4d(x: tf.Tensor, node: Node): { x4: tf.Tensor4D; was3d: boolean } {
  if (x.rank === 4) return { x4: x as tf.Tensor4D, was3d: false };
  if (x.rank === 3) return { x4: tf.expandDims<tf.Tensor4D>(x, 2), was3d: true };
  return fail(node, `input of rank ${x.rank} is not supported (only 1-D and 2-D spatial inputs).`);
}

function lift(values: number[] | undefined, was3d: boolean, fill: number): number[] | undefined {
  if (values === undefined || !was3d) return values;
  return [fill, ...values];
}

function liftPads(pads: number[] | undefined, was3d: boolean): number[] | undefined {
  if (pads === undefined || !was3d) return pads;
  return [0, pads[0] ?? 0, 0, pads[1] ?? 0];
}

/** ONNX conv weight [M, C, kh, kw] → tfjs filter [kh, kw, C, M]. */
function toHwio(w: tf.Tensor): tf.Tensor4D {
  return tf.transpose(w as tf.Tensor4D, [2, 3, 1, 0]);
}

function conv(ctx: OpContext): tf.Tensor {
  const { node } = ctx;
  const { x4, was3d } = as4d(input(ctx, 0), node);
  let w = input(ctx, 1);
  if (was3d) w = tf.expandDims(w, 2);
  const bias = ctx.inputs[2];
  const group = attrInt(node, 'group', 1);
  const [n, c, h, wd] = x4.shape;
  const [m, cg, kh, kw] = w.shape as [number, number, number, number];
  if (w.rank !== 4) fail(node, `weight of rank ${w.rank} is not supported.`);
  if (cg * group !== c) fail(node, `weight expects ${cg * group} input channels but the input has ${c}.`);
  const strides = lift(attrInts(node, 'strides'), was3d, 1) ?? [1, 1];
  const dilations = lift(attrInts(node, 'dilations'), was3d, 1) ?? [1, 1];
  const padNode: Node = { ...node, attrs: { ...node.attrs, ...(was3d && attrInts(node, 'pads') ? { pads: liftPads(attrInts(node, 'pads'), true) ?? [] } : {}) } };
  const pads = spatialPads(padNode, [h, wd], [kh, kw], strides, dilations);
  let x: tf.Tensor4D = tf.transpose(x4, [0, 2, 3, 1]);
  if (pads.some(([a, b]) => a !== 0 || b !== 0)) x = tf.pad(x, [[0, 0], pads[0] ?? [0, 0], pads[1] ?? [0, 0], [0, 0]]);
  const [sh, sw] = [strides[0] ?? 1, strides[1] ?? 1];
  const [dh, dw] = [dilations[0] ?? 1, dilations[1] ?? 1];
  // tfjs refuses strides and dilations both above 1: convolve densely, then subsample. Dilation goes through
  // space-to-batch (dilation.ts) so that it has a gradient; `s` is [1, 1] whenever the dilation is above 1.
  const subsample = (sh > 1 || sw > 1) && (dh > 1 || dw > 1);
  const s: [number, number] = subsample ? [1, 1] : [sh, sw];
  const d: [number, number] = [dh, dw];
  let y: tf.Tensor4D;
  if (group === 1) {
    y = dilatedValid(x, d, (t) => tf.conv2d(t, toHwio(w), s, 'valid', 'NHWC'));
  } else if (cg === 1 && m % group === 0) {
    // Depthwise: ONNX weight [C·k, 1, kh, kw] → tfjs [kh, kw, C, k]; output channel c·k + q in both.
    const k = m / group;
    const filter = tf.transpose<tf.Tensor4D>(tf.reshape(w, [group, k, kh, kw]), [2, 3, 0, 1]);
    y = dilatedValid(x, d, (t) => tf.depthwiseConv2d(t, filter, s, 'valid', 'NHWC'));
  } else {
    if (m % group !== 0) fail(node, `${m} output channels do not divide into ${group} groups.`);
    const xs = tf.split(x, group, 3);
    const ws = tf.split(w, group, 0);
    y = tf.concat(xs.map((xi) => xi as tf.Tensor4D).map((xi, g) => dilatedValid(xi, d, (t) => tf.conv2d(t, toHwio(ws[g] ?? w), s, 'valid', 'NHWC'))), 3);
  }
  if (subsample) {
    const [, oh, ow] = y.shape;
    y = tf.stridedSlice(y, [0, 0, 0, 0], [n, oh, ow, m], [1, sh, sw, 1]) as tf.Tensor4D;
  }
  if (bias !== undefined) y = tf.add(y, tf.reshape(bias, [1, 1, 1, m]));
  const out = tf.transpose(y, [0, 3, 1, 2]);
  return was3d ? tf.squeeze(out, [2]) : out;
}

function pool(ctx: OpContext, kind: 'max' | 'avg'): tf.Tensor {
  const { node } = ctx;
  const { x4, was3d } = as4d(input(ctx, 0), node);
  const kernel = lift(attrInts(node, 'kernel_shape'), was3d, 1);
  if (kernel === undefined) fail(node, 'kernel_shape is missing.');
  const strides = lift(attrInts(node, 'strides'), was3d, 1) ?? [1, 1];
  const dilations = lift(attrInts(node, 'dilations'), was3d, 1) ?? [1, 1];
  if (dilations.some((v) => v !== 1)) fail(node, 'dilated pooling is not supported.');
  const [, , h, w] = x4.shape;
  const padNode: Node = { ...node, attrs: { ...node.attrs, ...(was3d && attrInts(node, 'pads') ? { pads: liftPads(attrInts(node, 'pads'), true) ?? [] } : {}) } };
  const pads = spatialPads(padNode, [h, w], kernel, strides, dilations);
  if (attrInt(node, 'ceil_mode', 0) === 1) {
    // Extra end padding so the last partial window is computed (it never starts inside the end padding).
    [h, w].forEach((size, i) => {
      const p = pads[i] ?? [0, 0];
      const k = kernel[i] ?? 1;
      const st = strides[i] ?? 1;
      const span = size + p[0] + p[1] - k;
      const outCeil = Math.ceil(span / st) + 1;
      const adjusted = (outCeil - 1) * st >= size + p[0] ? outCeil - 1 : outCeil;
      p[1] += Math.max(0, (adjusted - 1) * st + k - (size + p[0] + p[1]));
    });
  }
  const padSpec: [number, number][] = [[0, 0], pads[0] ?? [0, 0], pads[1] ?? [0, 0], [0, 0]];
  const padded = pads.some(([a, b]) => a !== 0 || b !== 0);
  const x = tf.transpose<tf.Tensor4D>(x4, [0, 2, 3, 1]);
  const k: [number, number] = [kernel[0] ?? 1, kernel[1] ?? 1];
  const s: [number, number] = [strides[0] ?? 1, strides[1] ?? 1];
  let y: tf.Tensor4D;
  if (kind === 'max') {
    y = tf.maxPool(padded ? tf.pad(x, padSpec, -3.4e38) : x, k, s, 'valid');
  } else {
    const includePad = attrInt(node, 'count_include_pad', 0) === 1;
    y = tf.avgPool(padded ? tf.pad(x, padSpec) : x, k, s, 'valid');
    if (padded && !includePad) {
      // Average over real elements only: divide by the fraction of each window that is not padding.
      const ones = tf.pad(tf.ones([1, x.shape[1], x.shape[2], 1]), padSpec);
      y = tf.div(y, tf.avgPool(ones as tf.Tensor4D, k, s, 'valid'));
    }
  }
  const out = tf.transpose(y, [0, 3, 1, 2]);
  return was3d ? tf.squeeze(out, [2]) : out;
}

function gemm(ctx: OpContext): tf.Tensor {
  const { node } = ctx;
  const a = input(ctx, 0) as tf.Tensor2D;
  const b = input(ctx, 1) as tf.Tensor2D;
  const c = ctx.inputs[2];
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  let y: tf.Tensor = tf.matMul(a, b, attrInt(node, 'transA', 0) === 1, attrInt(node, 'transB', 0) === 1);
  if (alpha !== 1) y = tf.mul(y, alpha);
  if (c !== undefined && beta !== 0) y = tf.add(y, beta === 1 ? c : tf.mul(c, beta));
  return y;
}

function matmul(ctx: OpContext): tf.Tensor {
  let a = input(ctx, 0);
  let b = input(ctx, 1);
  const aVec = a.rank === 1;
  const bVec = b.rank === 1;
  if (aVec) a = tf.expandDims(a, 0);
  if (bVec) b = tf.expandDims(b, 1);
  let y: tf.Tensor = tf.matMul(a, b);
  if (aVec) y = tf.squeeze(y, [y.rank - 2]);
  if (bVec) y = tf.squeeze(y, [y.rank - 1]);
  return y;
}

/** Shape [1, C, 1, …] that broadcasts a per-channel vector over an NC… tensor of `rank`. */
function channelShape(c: number, rank: number): number[] {
  return [1, c, ...new Array<number>(Math.max(0, rank - 2)).fill(1)];
}

function batchNorm(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const c = x.shape[1] ?? 1;
  const shape = channelShape(c, x.rank);
  const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
  const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => tf.reshape(input(ctx, i), shape));
  if (scale === undefined || bias === undefined || mean === undefined || variance === undefined) return fail(ctx.node, 'inputs are missing.');
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), scale), bias);
}

function layerNorm(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const axis = normAxis(attrInt(ctx.node, 'axis', -1), x.rank, ctx.node);
  const axes = Array.from({ length: x.rank - axis }, (_, i) => axis + i);
  const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
  const mean = tf.mean(x, axes, true);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), axes, true);
  let y: tf.Tensor = tf.div(centred, tf.sqrt(tf.add(variance, eps)));
  y = tf.mul(y, input(ctx, 1));
  const b = ctx.inputs[2];
  return b !== undefined ? tf.add(y, b) : y;
}

function reduce(ctx: OpContext, fn: (x: tf.Tensor, axes: number[], keep: boolean) => tf.Tensor, axesAsInputFrom: number): tf.Tensor {
  const x = input(ctx, 0);
  const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
  const axes = ctx.opset >= axesAsInputFrom ? numbers(ctx, 1) : attrInts(ctx.node, 'axes');
  if (axes === undefined || axes.length === 0) {
    if (attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1) return tf.clone(x);
    return fn(x, Array.from({ length: x.rank }, (_, i) => i), keep);
  }
  return fn(x, axes.map((a) => normAxis(a, x.rank, ctx.node)), keep);
}

function flatten(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const axis = attrInt(ctx.node, 'axis', 1);
  const a = axis < 0 ? axis + x.rank : axis;
  const outer = x.shape.slice(0, a).reduce((p, d) => p * d, 1);
  return tf.reshape(x, [outer, x.size / Math.max(outer, 1)]);
}

function reshape(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const shape = numbers(ctx, 1) ?? fail(ctx.node, 'shape input is missing.');
  const allowZero = attrInt(ctx.node, 'allowzero', 0) === 1;
  const target = shape.map((d, i) => (d === 0 && !allowZero ? (x.shape[i] ?? fail(ctx.node, `dimension ${i} copies a dimension the input lacks.`)) : d));
  return tf.reshape(x, target);
}

function transpose(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const perm = attrInts(ctx.node, 'perm') ?? Array.from({ length: x.rank }, (_, i) => x.rank - 1 - i);
  return tf.transpose(x, perm);
}

function concat(ctx: OpContext): tf.Tensor {
  const xs = ctx.inputs.filter((t): t is tf.Tensor => t !== undefined && t.size > 0);
  const first = xs[0] ?? input(ctx, 0);
  const axis = normAxis(attrInt(ctx.node, 'axis', 0), first.rank, ctx.node);
  return xs.length === 1 ? tf.clone(first) : tf.concat(xs, axis);
}

function pad(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const mode = attrString(ctx.node, 'mode', 'constant');
  const pads = (ctx.opset >= 11 ? numbers(ctx, 1) : attrInts(ctx.node, 'pads')) ?? fail(ctx.node, 'pads are missing.');
  const value = ctx.opset >= 11 ? (numbers(ctx, 2)?.[0] ?? 0) : attrFloat(ctx.node, 'value', 0);
  let spec: [number, number][] = Array.from({ length: x.rank }, () => [0, 0] as [number, number]);
  const axesIn = ctx.opset >= 18 ? numbers(ctx, 3) : undefined;
  const axes = axesIn?.map((a) => normAxis(a, x.rank, ctx.node)) ?? spec.map((_, i) => i);
  if (pads.length !== 2 * axes.length) fail(ctx.node, `pads has ${pads.length} values, expected ${2 * axes.length}.`);
  spec = spec.map((p, i) => {
    const k = axes.indexOf(i);
    return k < 0 ? p : [pads[k] ?? 0, pads[k + axes.length] ?? 0];
  });
  if (spec.some(([a, b]) => a < 0 || b < 0)) fail(ctx.node, 'negative pads are not supported.');
  if (mode === 'constant') return tf.pad(x, spec, value);
  if (mode === 'reflect') return tf.mirrorPad(x, spec, 'reflect');
  return fail(ctx.node, `pad mode ${mode} is not supported.`);
}

function squeeze(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const axes = ctx.opset >= 13 ? numbers(ctx, 1) : attrInts(ctx.node, 'axes');
  return axes === undefined ? tf.squeeze(x) : tf.squeeze(x, axes.map((a) => normAxis(a, x.rank, ctx.node)));
}

function unsqueeze(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const axes = (ctx.opset >= 13 ? numbers(ctx, 1) : attrInts(ctx.node, 'axes')) ?? fail(ctx.node, 'axes are missing.');
  const rank = x.rank + axes.length;
  const sorted = axes.map((a) => normAxis(a, rank, ctx.node)).sort((a, b) => a - b);
  const shape = x.shape.slice();
  for (const a of sorted) shape.splice(a, 0, 1);
  return tf.reshape(x, shape);
}

function softmax(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  if (ctx.opset >= 13) {
    const axis = normAxis(attrInt(ctx.node, 'axis', -1), x.rank, ctx.node);
    if (axis === x.rank - 1) return tf.softmax(x);
    const perm = Array.from({ length: x.rank }, (_, i) => i);
    perm[axis] = x.rank - 1;
    perm[x.rank - 1] = axis;
    return tf.transpose(tf.softmax(tf.transpose(x, perm)), perm);
  }
  // Before opset 13: softmax over the flattened dimensions from `axis` on.
  const axis = normAxis(attrInt(ctx.node, 'axis', 1), x.rank, ctx.node);
  const outer = x.shape.slice(0, axis).reduce((p, d) => p * d, 1);
  return tf.reshape(tf.softmax(tf.reshape(x, [outer, x.size / Math.max(outer, 1)])), x.shape);
}

function slice(ctx: OpContext): tf.Tensor {
  let x = input(ctx, 0);
  const starts = (ctx.opset >= 10 ? numbers(ctx, 1) : attrInts(ctx.node, 'starts')) ?? fail(ctx.node, 'starts are missing.');
  const ends = (ctx.opset >= 10 ? numbers(ctx, 2) : attrInts(ctx.node, 'ends')) ?? fail(ctx.node, 'ends are missing.');
  const axes = (ctx.opset >= 10 ? numbers(ctx, 3) : attrInts(ctx.node, 'axes')) ?? starts.map((_, i) => i);
  const steps = (ctx.opset >= 10 ? numbers(ctx, 4) : undefined) ?? starts.map(() => 1);
  const begin = x.shape.map(() => 0);
  const end = x.shape.slice();
  const stride = x.shape.map(() => 1);
  const reversed: number[] = [];
  axes.forEach((rawAxis, i) => {
    const a = normAxis(rawAxis, x.rank, ctx.node);
    const dim = x.shape[a] ?? 0;
    const step = steps[i] ?? 1;
    if (step === 0) fail(ctx.node, 'a step of 0 is not allowed.');
    let s = starts[i] ?? 0;
    let e = ends[i] ?? dim;
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
      begin[a] = Math.min(Math.max(s, 0), dim);
      end[a] = Math.min(Math.max(e, 0), dim);
      stride[a] = step;
    } else {
      // Negative step: slice the reversed axis with a positive step.
      s = Math.min(Math.max(s, 0), dim - 1);
      e = Math.min(Math.max(e, -1), dim - 1);
      reversed.push(a);
      begin[a] = dim - 1 - s;
      end[a] = dim - 1 - e;
      stride[a] = -step;
    }
  });
  if (reversed.length > 0) x = tf.reverse(x, reversed);
  if (end.some((e, i) => e <= (begin[i] ?? 0))) return tf.zeros(end.map((e, i) => Math.max(0, Math.ceil((e - (begin[i] ?? 0)) / (stride[i] ?? 1)))));
  return tf.stridedSlice(x, begin, end, stride);
}

function depthToSpace(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const b = attrInt(ctx.node, 'blocksize', 0);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  if (x.rank !== 4 || b < 1 || c % (b * b) !== 0) fail(ctx.node, `cannot rearrange shape [${x.shape.join(', ')}] with block size ${b}.`);
  const co = c / (b * b);
  if (attrString(ctx.node, 'mode', 'DCR') === 'CRD') {
    return tf.reshape(tf.transpose(tf.reshape(x, [n, co, b, b, h, w]), [0, 1, 4, 2, 5, 3]), [n, co, h * b, w * b]);
  }
  return tf.reshape(tf.transpose(tf.reshape(x, [n, b, b, co, h, w]), [0, 3, 4, 1, 5, 2]), [n, co, h * b, w * b]);
}

function resize(ctx: OpContext): tf.Tensor {
  const { node } = ctx;
  const x = input(ctx, 0);
  if (x.rank !== 4) fail(node, `only 4-D (NCHW) inputs are supported, not rank ${x.rank}.`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const scales = numbers(ctx, ctx.opset >= 11 ? 2 : 1);
  const sizes = ctx.opset >= 11 ? numbers(ctx, 3) : undefined;
  let oh: number;
  let ow: number;
  if (sizes !== undefined && sizes.length === 4) [oh, ow] = [sizes[2] ?? h, sizes[3] ?? w];
  else if (scales !== undefined && scales.length === 4) {
    if (scales[0] !== 1 || scales[1] !== 1) fail(node, 'resizing the batch or channel dimension is not supported.');
    [oh, ow] = [Math.floor(h * (scales[2] ?? 1)), Math.floor(w * (scales[3] ?? 1))];
  } else return fail(node, 'neither scales nor sizes give 4 values.');
  if (sizes?.length === 4 && (sizes[0] !== n || sizes[1] !== c)) fail(node, 'resizing the batch or channel dimension is not supported.');
  const mode = attrString(node, 'mode', 'nearest');
  const coord = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  const nhwc = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
  let y: tf.Tensor4D;
  if (mode === 'nearest') {
    const nearest = attrString(node, 'nearest_mode', 'round_prefer_floor');
    if (coord !== 'asymmetric' || nearest !== 'floor') fail(node, `nearest resizing with ${coord} coordinates and ${nearest} rounding is not supported (only asymmetric + floor).`);
    y = tf.image.resizeNearestNeighbor(nhwc, [oh, ow], false, false);
  } else if (mode === 'linear') {
    if (coord === 'align_corners') y = tf.image.resizeBilinear(nhwc, [oh, ow], true, false);
    else if (coord === 'asymmetric') y = tf.image.resizeBilinear(nhwc, [oh, ow], false, false);
    else if (coord === 'half_pixel' || coord === 'pytorch_half_pixel') y = tf.image.resizeBilinear(nhwc, [oh, ow], false, true);
    else return fail(node, `linear resizing with ${coord} coordinates is not supported.`);
  } else return fail(node, `resize mode ${mode} is not supported.`);
  return tf.transpose(y, [0, 3, 1, 2]);
}

function clip(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const lo = ctx.opset >= 11 ? ctx.inputs[1] : ctx.node.attrs.min !== undefined ? tf.scalar(attrFloat(ctx.node, 'min', 0)) : undefined;
  const hi = ctx.opset >= 11 ? ctx.inputs[2] : ctx.node.attrs.max !== undefined ? tf.scalar(attrFloat(ctx.node, 'max', 0)) : undefined;
  let y = x;
  if (lo !== undefined) y = tf.maximum(y, lo);
  if (hi !== undefined) y = tf.minimum(y, hi);
  return y === x ? tf.clone(x) : y;
}

function constantOfShape(ctx: OpContext): tf.Tensor {
  const shape = numbers(ctx, 0) ?? fail(ctx.node, 'shape input is missing.');
  const value = attrTensor(ctx.node, 'value')?.values[0] ?? 0;
  return tf.fill(shape, value);
}

function gather(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const axis = normAxis(attrInt(ctx.node, 'axis', 0), x.rank, ctx.node);
  const idx = input(ctx, 1);
  const dim = x.shape[axis] ?? 0;
  const fixed = tf.cast(tf.where(tf.less(idx, 0), tf.add(idx, dim), idx), 'int32');
  return tf.gather(x, fixed, axis);
}

const unary = (fn: (x: tf.Tensor) => tf.Tensor): OpImpl => (ctx) => fn(input(ctx, 0));
const binary = (fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): OpImpl => (ctx) => fn(input(ctx, 0), input(ctx, 1));
const variadic = (fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): OpImpl => (ctx) => {
  const xs = ctx.inputs.filter((t): t is tf.Tensor => t !== undefined);
  return xs.slice(1).reduce<tf.Tensor>((acc, t) => fn(acc, t), xs[0] ?? input(ctx, 0));
};

/** Operator implementations, by ONNX op type. Keys must match `SUPPORTED_OPS`. */
export const OPS: Readonly<Record<string, OpImpl>> = {
  Conv: conv,
  MaxPool: (ctx) => pool(ctx, 'max'),
  AveragePool: (ctx) => pool(ctx, 'avg'),
  GlobalAveragePool: unary((x) => tf.mean(x, Array.from({ length: x.rank - 2 }, (_, i) => i + 2), true)),
  GlobalMaxPool: unary((x) => tf.max(x, Array.from({ length: x.rank - 2 }, (_, i) => i + 2), true)),
  BatchNormalization: batchNorm,
  LayerNormalization: layerNorm,
  Gemm: gemm,
  MatMul: matmul,
  Relu: unary((x) => tf.relu(x)),
  Clip: clip,
  LeakyRelu: (ctx) => tf.leakyRelu(input(ctx, 0), attrFloat(ctx.node, 'alpha', 0.01)),
  Sigmoid: unary((x) => tf.sigmoid(x)),
  Tanh: unary((x) => tf.tanh(x)),
  HardSwish: unary((x) => tf.mul(x, tf.div(tf.relu6(tf.add(x, 3)), 6))),
  HardSigmoid: (ctx) => tf.clipByValue(tf.add(tf.mul(input(ctx, 0), attrFloat(ctx.node, 'alpha', 0.2)), attrFloat(ctx.node, 'beta', 0.5)), 0, 1),
  Elu: (ctx) => {
    const alpha = attrFloat(ctx.node, 'alpha', 1);
    const x = input(ctx, 0);
    return alpha === 1 ? tf.elu(x) : tf.where(tf.greater(x, 0), x, tf.mul(tf.sub(tf.exp(x), 1), alpha));
  },
  Softmax: softmax,
  Gelu: (ctx) => {
    const x = input(ctx, 0);
    if (attrString(ctx.node, 'approximate', 'none') === 'tanh') {
      const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
    }
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.div(x, Math.SQRT2)), 1));
  },
  Softplus: unary((x) => tf.softplus(x)),
  Add: binary((a, b) => tf.add(a, b)),
  Mul: binary((a, b) => tf.mul(a, b)),
  Sub: binary((a, b) => tf.sub(a, b)),
  Div: binary((a, b) => tf.div(a, b)),
  Pow: binary((a, b) => tf.pow(a, b)),
  Sqrt: unary((x) => tf.sqrt(x)),
  Exp: unary((x) => tf.exp(x)),
  Log: unary((x) => tf.log(x)),
  Neg: unary((x) => tf.neg(x)),
  Abs: unary((x) => tf.abs(x)),
  Reciprocal: unary((x) => tf.reciprocal(x)),
  Erf: unary((x) => tf.erf(x)),
  Max: variadic((a, b) => tf.maximum(a, b)),
  Min: variadic((a, b) => tf.minimum(a, b)),
  ReduceMean: (ctx) => reduce(ctx, (x, a, k) => tf.mean(x, a, k), 18),
  ReduceSum: (ctx) => reduce(ctx, (x, a, k) => tf.sum(x, a, k), 13),
  ReduceMax: (ctx) => reduce(ctx, (x, a, k) => tf.max(x, a, k), 18),
  ReduceMin: (ctx) => reduce(ctx, (x, a, k) => tf.min(x, a, k), 18),
  Flatten: flatten,
  Reshape: reshape,
  Transpose: transpose,
  Concat: concat,
  Pad: pad,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Slice: slice,
  DepthToSpace: depthToSpace,
  Resize: resize,
  Identity: unary((x) => tf.clone(x)),
  Dropout: unary((x) => tf.clone(x)),
  Constant: (ctx) => {
    const t = attrTensor(ctx.node, 'value') ?? fail(ctx.node, 'only tensor values are supported.');
    return tf.tensor(Float32Array.from(t.values), t.shape.slice(), 'float32');
  },
  ConstantOfShape: constantOfShape,
  Shape: unary((x) => tf.tensor1d(x.shape, 'float32')),
  Gather: gather,
  Cast: unary((x) => tf.clone(x)),
  ...LAYERS_OPS,
};

/**
 * Runs `graph` forward. `weights` holds a float32 tensor for every initializer (by name); `inputs` one for every
 * graph input. Returns one tensor per graph output, by name; the caller owns (and must dispose) them. Intermediate
 * tensors are released (the whole run is inside `tf.tidy`). Differentiable in `weights` and `inputs` once the tfjs
 * gradients are registered (see the module comment). Throws `CheckpointFormatError` for a missing input or weight,
 * an unsupported operator, or attributes the executor cannot honour.
 */
export function runGraph(graph: Graph, weights: Readonly<Record<string, tf.Tensor>>, inputs: Readonly<Record<string, tf.Tensor>>): Record<string, tf.Tensor> {
  return tf.tidy(() => {
    const values = new Map<string, tf.Tensor>();
    for (const name of graph.initializers.keys()) {
      const w = weights[name];
      if (w === undefined) throw new CheckpointFormatError(`The weight ${JSON.stringify(name)} the graph needs was not provided.`);
      values.set(name, w);
    }
    for (const info of graph.inputs) {
      const x = inputs[info.name];
      if (x === undefined) throw new CheckpointFormatError(`The graph input ${JSON.stringify(info.name)} was not provided.`);
      values.set(info.name, x);
    }
    for (const node of graph.nodes) {
      const impl = OPS[node.op];
      if (impl === undefined) throw new CheckpointFormatError(`ONNX operator ${node.op} (node ${node.name}) is not supported by the graph executor.`);
      const args = node.inputs.map((name) => {
        if (name === '') return undefined;
        const v = values.get(name);
        if (v === undefined) throw new CheckpointFormatError(`${node.op} node ${JSON.stringify(node.name)} reads ${JSON.stringify(name)}, which has not been computed.`);
        return v;
      });
      const result = impl({ node, inputs: args, opset: graph.opset });
      const outs = Array.isArray(result) ? result : [result];
      node.outputs.forEach((name, i) => {
        const t = outs[i];
        if (name !== '' && t !== undefined) values.set(name, t);
      });
    }
    const result: Record<string, tf.Tensor> = {};
    for (const name of graph.outputs) {
      const v = values.get(name);
      if (v === undefined) throw new CheckpointFormatError(`The graph output ${JSON.stringify(name)} was not computed.`);
      // A graph output that is a weight or input itself must be copied, or tidy would hand out the caller's tensor.
      result[name] = graph.initializers.has(name) || graph.inputs.some((i) => i.name === name) ? tf.clone(v) : v;
    }
    return result;
  });
}

/** Wraps a weights map (as `importOnnx` returns it) into float32 tensors shaped as the graph's initializers. */
export function weightTensors(graph: Graph, weights: ReadonlyMap<string, Float32Array>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, info] of graph.initializers) {
    const values = weights.get(name);
    if (values === undefined) throw new CheckpointFormatError(`The weight ${JSON.stringify(name)} the graph needs was not provided.`);
    out[name] = tf.tensor(values, info.shape.slice(), 'float32');
  }
  return out;
}
