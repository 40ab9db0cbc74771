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
import { LOGIC_OPS } from './logicOps';
import { broadcastShapes, checkResult, fail, input, normAxis, numbers, type OpContext, type OpImpl } from './opContext';
import { ownValue, setOwn } from '../io/text';

/** ONNX Conv/Pool explicit pads for spatial dims: [[begin, end], ...]. Handles auto_pad. */
function spatialPads(
  node: Node,
  inSize: readonly number[],
  kernel: readonly number[],
  strides: readonly number[],
  dilations: readonly number[],
): [number, number][] {
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

/**
 * A 'valid' convolution of `x` (NHWC, already padded) with the ONNX weight `w` ([M, C/group, kh, kw]) at `strides`
 * and `dilations`, without bias: [n, oh, ow, M]. Grouped weights split into groups, depthwise ones (C/group = 1)
 * use tfjs's depthwise op. Every path has tfjs gradients (dilation goes through space-to-batch, `dilation.ts`).
 */
function convValid(
  node: Node,
  x: tf.Tensor4D,
  w: tf.Tensor,
  group: number,
  strides: readonly [number, number],
  dilations: readonly [number, number],
): tf.Tensor4D {
  const [n, h, wd, c] = x.shape;
  if (w.rank !== 4) fail(node, `weight of rank ${w.rank} is not supported.`);
  const [m, cg, kh, kw] = w.shape as [number, number, number, number];
  if (cg * group !== c) fail(node, `weight expects ${cg * group} input channels but the input has ${c}.`);
  const [sh, sw] = strides;
  const [dh, dw] = dilations;
  if (h < (kh - 1) * dh + 1 || wd < (kw - 1) * dw + 1)
    fail(node, `the padded input ${h}×${wd} is smaller than the ${kh}×${kw} kernel.`);
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
    y = tf.concat(
      xs
        .map((xi) => xi as tf.Tensor4D)
        .map((xi, g) => dilatedValid(xi, d, (t) => tf.conv2d(t, toHwio(ws[g] ?? w), s, 'valid', 'NHWC'))),
      3,
    );
  }
  if (subsample) {
    const [, oh, ow] = y.shape;
    y = tf.stridedSlice(y, [0, 0, 0, 0], [n, oh, ow, m], [1, sh, sw, 1]) as tf.Tensor4D;
  }
  return y;
}

function conv(ctx: OpContext): tf.Tensor {
  const { node } = ctx;
  const { x4, was3d } = as4d(input(ctx, 0), node);
  let w = input(ctx, 1);
  if (was3d) w = tf.expandDims(w, 2);
  const bias = ctx.inputs[2];
  const group = attrInt(node, 'group', 1);
  const [, , h, wd] = x4.shape;
  const [m, , kh, kw] = w.shape as [number, number, number, number];
  const strides = lift(attrInts(node, 'strides'), was3d, 1) ?? [1, 1];
  const dilations = lift(attrInts(node, 'dilations'), was3d, 1) ?? [1, 1];
  const padNode: Node = {
    ...node,
    attrs: {
      ...node.attrs,
      ...(was3d && attrInts(node, 'pads') ? { pads: liftPads(attrInts(node, 'pads'), true) ?? [] } : {}),
    },
  };
  const pads = spatialPads(padNode, [h, wd], [kh, kw], strides, dilations);
  let x: tf.Tensor4D = tf.transpose(x4, [0, 2, 3, 1]);
  if (pads.some(([a, b]) => a !== 0 || b !== 0)) x = tf.pad(x, [[0, 0], pads[0] ?? [0, 0], pads[1] ?? [0, 0], [0, 0]]);
  let y = convValid(node, x, w, group, [strides[0] ?? 1, strides[1] ?? 1], [dilations[0] ?? 1, dilations[1] ?? 1]);
  if (bias !== undefined) y = tf.add(y, tf.reshape(bias, [1, 1, 1, m]));
  const out = tf.transpose(y, [0, 3, 1, 2]);
  return was3d ? tf.squeeze(out, [2]) : out;
}

/** Pads (positive) or crops (negative) the two spatial axes of an NHWC tensor by [[top, bottom], [left, right]]. */
function padOrCrop(x: tf.Tensor4D, spec: readonly [number, number][]): tf.Tensor4D {
  const grow: [number, number][] = [
    [0, 0],
    ...spec.map(([a, b]): [number, number] => [Math.max(a, 0), Math.max(b, 0)]),
    [0, 0],
  ];
  let y = grow.some(([a, b]) => a > 0 || b > 0) ? tf.pad(x, grow) : x;
  if (spec.some(([a, b]) => a < 0 || b < 0)) {
    const begin = [0, ...spec.map(([a]) => Math.max(-a, 0)), 0];
    const size = y.shape.map((d, i) =>
      i === 0 || i === 3 ? d : d - Math.max(-(spec[i - 1]?.[0] ?? 0), 0) - Math.max(-(spec[i - 1]?.[1] ?? 0), 0),
    );
    y = tf.slice(y, begin, size);
  }
  return y;
}

/** Inserts `stride − 1` zeros between neighbouring elements of one axis of `x` (size n → (n − 1)·stride + 1). */
function zeroInsert(x: tf.Tensor4D, axis: 1 | 2, stride: number): tf.Tensor4D {
  if (stride === 1) return x;
  const n = x.shape[axis];
  const spread: [number, number][] = [
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 0],
  ];
  spread[axis + 1] = [0, stride - 1];
  const wide = tf.pad(tf.expandDims(x, axis + 1), spread);
  const shape: [number, number, number, number] = [...x.shape];
  shape[axis] = n * stride;
  const merged = tf.reshape<tf.Rank.R4>(wide, shape);
  const size = shape.slice();
  size[axis] = (n - 1) * stride + 1;
  return tf.slice(merged, [0, 0, 0, 0], size);
}

/**
 * ONNX ConvTranspose, 1-D or 2-D, as the ONNX specification defines it: every input element scatters the kernel
 * (dilated by `dilations`) into the output at `strides`; `pads` crop the result, `output_padding` extends its end, and
 * `output_shape` or `auto_pad` (SAME_UPPER/SAME_LOWER: output = input · stride) derive the pads, the odd one at the end
 * for SAME_UPPER and at the start otherwise. Computed as a stride-1 convolution of the zero-inserted, padded input with
 * the kernel flipped in space and its channel axes swapped per group, so the weight, bias and input all have tfjs
 * gradients (the same ops as Conv).
 */
function convTranspose(ctx: OpContext): tf.Tensor {
  const { node } = ctx;
  const { x4, was3d } = as4d(input(ctx, 0), node);
  let w = input(ctx, 1);
  if (was3d) w = tf.expandDims(w, 2);
  if (w.rank !== 4) fail(node, `weight of rank ${w.rank} is not supported.`);
  const bias = ctx.inputs[2];
  const group = attrInt(node, 'group', 1);
  const [n, c, h, wd] = x4.shape;
  const [wc, mg, kh, kw] = w.shape as [number, number, number, number];
  if (wc !== c) fail(node, `weight expects ${wc} input channels but the input has ${c}.`);
  if (group < 1 || c % group !== 0) fail(node, `${c} input channels do not divide into ${group} groups.`);
  const m = mg * group;
  const spatial = was3d ? 1 : 2;
  const listAttr = (name: string, fill: number): number[] => {
    const v = attrInts(node, name);
    if (v !== undefined && v.length !== spatial) fail(node, `${name} has ${v.length} values, expected ${spatial}.`);
    return lift(v, was3d, fill) ?? [fill, fill];
  };
  const strides = listAttr('strides', 1);
  const dilations = listAttr('dilations', 1);
  const outPadding = listAttr('output_padding', 0);
  const kernel = attrInts(node, 'kernel_shape');
  if (kernel !== undefined && kernel.join() !== (was3d ? [kw] : [kh, kw]).join()) {
    fail(
      node,
      `kernel_shape [${kernel.join(', ')}] does not match the weight's [${w.shape.slice(was3d ? 3 : 2).join(', ')}].`,
    );
  }
  if (
    [...strides, ...dilations].some((v) => !Number.isInteger(v) || v < 1) ||
    outPadding.some((v) => !Number.isInteger(v) || v < 0)
  ) {
    fail(node, 'strides and dilations must be positive and output_padding non-negative.');
  }
  const inSize = [h, wd];
  const kSize = [kh, kw];
  const full = inSize.map(
    (size, i) =>
      (strides[i] ?? 1) * (size - 1) + (outPadding[i] ?? 0) + ((kSize[i] ?? 1) - 1) * (dilations[i] ?? 1) + 1,
  );
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  // output_shape lists the spatial sizes of the output (onnxruntime refuses one that includes N and C).
  const outputShape = attrInts(node, 'output_shape');
  if (outputShape !== undefined && outputShape.length !== spatial)
    fail(node, `output_shape has ${outputShape.length} values, expected ${spatial}.`);
  let pads: [number, number][];
  const split = (total: number): [number, number] => {
    const small = Math.floor(total / 2);
    return autoPad === 'SAME_UPPER' ? [small, total - small] : [total - small, small];
  };
  if (outputShape !== undefined) {
    const target = lift(outputShape, was3d, 1) ?? [];
    pads = full.map((f, i) => split(f - (target[i] ?? f)));
  } else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = full.map((f, i) => split(f - (inSize[i] ?? 0) * (strides[i] ?? 1)));
  } else if (autoPad === 'VALID') {
    pads = inSize.map(() => [0, 0]);
  } else {
    const given = attrInts(node, 'pads');
    if (given !== undefined && given.length !== 2 * spatial)
      fail(node, `pads has ${given.length} values, expected ${2 * spatial}.`);
    if (given?.some((p) => p < 0) === true) fail(node, 'negative pads are not supported.');
    const raw = liftPads(given, was3d) ?? [0, 0, 0, 0];
    pads = inSize.map((_, i) => [raw[i] ?? 0, raw[i + 2] ?? 0]);
  }
  const outSize = full.map((f, i) => f - (pads[i]?.[0] ?? 0) - (pads[i]?.[1] ?? 0));
  checkResult(node, [n, m, ...outSize]);
  checkResult(node, [n, c, ...inSize.map((size, i) => (size - 1) * (strides[i] ?? 1) + 1)]);
  if (outSize.some((o) => o < 1)) fail(node, `the output would have spatial size [${outSize.join(', ')}].`);

  // Conv weight [M, C/group, kh, kw]: out channel g·M/group + q reads in channel g·C/group + c′ through
  // W[g·C/group + c′, q] flipped in space.
  const cg = c / group;
  const flipped = tf.reverse(
    tf.reshape(tf.transpose(tf.reshape(w, [group, cg, mg, kh, kw]), [0, 2, 1, 3, 4]), [m, cg, kh, kw]),
    [2, 3],
  );
  let x: tf.Tensor4D = tf.transpose(x4, [0, 2, 3, 1]);
  x = zeroInsert(zeroInsert(x, 1, strides[0] ?? 1), 2, strides[1] ?? 1);
  const reach = kSize.map((k, i) => (k - 1) * (dilations[i] ?? 1));
  x = padOrCrop(
    x,
    pads.map(([b, e], i): [number, number] => [(reach[i] ?? 0) - b, (reach[i] ?? 0) - e + (outPadding[i] ?? 0)]),
  );
  let y = convValid(node, x, flipped, group, [1, 1], [dilations[0] ?? 1, dilations[1] ?? 1]);
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
  const padNode: Node = {
    ...node,
    attrs: {
      ...node.attrs,
      ...(was3d && attrInts(node, 'pads') ? { pads: liftPads(attrInts(node, 'pads'), true) ?? [] } : {}),
    },
  };
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
  if (scale === undefined || bias === undefined || mean === undefined || variance === undefined)
    return fail(ctx.node, 'inputs are missing.');
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

function reduce(
  ctx: OpContext,
  fn: (x: tf.Tensor, axes: number[], keep: boolean) => tf.Tensor,
  axesAsInputFrom: number,
): tf.Tensor {
  const x = input(ctx, 0);
  const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
  const axes = ctx.opset >= axesAsInputFrom ? numbers(ctx, 1) : attrInts(ctx.node, 'axes');
  if (axes === undefined || axes.length === 0) {
    if (attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1) return tf.clone(x);
    return fn(
      x,
      Array.from({ length: x.rank }, (_, i) => i),
      keep,
    );
  }
  return fn(
    x,
    axes.map((a) => normAxis(a, x.rank, ctx.node)),
    keep,
  );
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
  const target = shape.map((d, i) =>
    d === 0 && !allowZero ? (x.shape[i] ?? fail(ctx.node, `dimension ${i} copies a dimension the input lacks.`)) : d,
  );
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
  return axes === undefined
    ? tf.squeeze(x)
    : tf.squeeze(
        x,
        axes.map((a) => normAxis(a, x.rank, ctx.node)),
      );
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
  const starts =
    (ctx.opset >= 10 ? numbers(ctx, 1) : attrInts(ctx.node, 'starts')) ?? fail(ctx.node, 'starts are missing.');
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
  if (end.some((e, i) => e <= (begin[i] ?? 0)))
    return tf.zeros(end.map((e, i) => Math.max(0, Math.ceil((e - (begin[i] ?? 0)) / (stride[i] ?? 1)))));
  return tf.stridedSlice(x, begin, end, stride);
}

function depthToSpace(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const b = attrInt(ctx.node, 'blocksize', 0);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  if (x.rank !== 4 || b < 1 || c % (b * b) !== 0)
    fail(ctx.node, `cannot rearrange shape [${x.shape.join(', ')}] with block size ${b}.`);
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
  if (sizes?.length === 4 && (sizes[0] !== n || sizes[1] !== c))
    fail(node, 'resizing the batch or channel dimension is not supported.');
  const mode = attrString(node, 'mode', 'nearest');
  const coord = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  const nhwc = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
  let y: tf.Tensor4D;
  if (mode === 'nearest') {
    const nearest = attrString(node, 'nearest_mode', 'round_prefer_floor');
    if (coord !== 'asymmetric' || nearest !== 'floor')
      fail(
        node,
        `nearest resizing with ${coord} coordinates and ${nearest} rounding is not supported (only asymmetric + floor).`,
      );
    y = tf.image.resizeNearestNeighbor(nhwc, [oh, ow], false, false);
  } else if (mode === 'linear') {
    if (coord === 'align_corners') y = tf.image.resizeBilinear(nhwc, [oh, ow], true, false);
    else if (coord === 'asymmetric') y = tf.image.resizeBilinear(nhwc, [oh, ow], false, false);
    else if (coord === 'half_pixel' || coord === 'pytorch_half_pixel')
      y = tf.image.resizeBilinear(nhwc, [oh, ow], false, true);
    else return fail(node, `linear resizing with ${coord} coordinates is not supported.`);
  } else return fail(node, `resize mode ${mode} is not supported.`);
  return tf.transpose(y, [0, 3, 1, 2]);
}

function clip(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const lo =
    ctx.opset >= 11
      ? ctx.inputs[1]
      : ctx.node.attrs.min !== undefined
        ? tf.scalar(attrFloat(ctx.node, 'min', 0))
        : undefined;
  const hi =
    ctx.opset >= 11
      ? ctx.inputs[2]
      : ctx.node.attrs.max !== undefined
        ? tf.scalar(attrFloat(ctx.node, 'max', 0))
        : undefined;
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

/**
 * ONNX Split: sizes from the `split` input (opset 13 on, and opset 1's optional second input) or attribute (opsets
 * 1–12); without them, equal parts, one per output, or from opset 18 `num_outputs` parts of ⌈dim / num_outputs⌉
 * with a smaller last part.
 */
function splitOp(ctx: OpContext): tf.Tensor[] {
  const { node } = ctx;
  const x = input(ctx, 0);
  const axis = normAxis(attrInt(node, 'axis', 0), x.rank, node);
  const dim = x.shape[axis] ?? 0;
  const sizesIn = ctx.opset >= 13 || ctx.opset < 2 ? numbers(ctx, 1) : undefined;
  let sizes =
    sizesIn !== undefined && sizesIn.length > 0 ? sizesIn : ctx.opset < 13 ? attrInts(node, 'split') : undefined;
  if (sizes === undefined) {
    const count =
      ctx.opset >= 18 && node.attrs.num_outputs !== undefined ? attrInt(node, 'num_outputs', 0) : node.outputs.length;
    if (!Number.isInteger(count) || count < 1) fail(node, `cannot split into ${count} parts.`);
    if (dim % count === 0) sizes = new Array<number>(count).fill(dim / count);
    else if (ctx.opset >= 18) {
      const chunk = Math.ceil(dim / count);
      sizes = Array.from({ length: count }, (_, i) => Math.max(0, Math.min(chunk, dim - i * chunk)));
    } else fail(node, `axis ${axis} of size ${dim} does not split evenly into ${count} outputs.`);
  }
  if (sizes.length !== node.outputs.length)
    fail(node, `split gives ${sizes.length} sizes for ${node.outputs.length} outputs.`);
  if (sizes.some((v) => !Number.isInteger(v) || v < 0) || sizes.reduce((a, b) => a + b, 0) !== dim) {
    fail(node, `split sizes [${sizes.join(', ')}] do not add up to ${dim}, the size of axis ${axis}.`);
  }
  let offset = 0;
  return sizes.map((size) => {
    const begin = x.shape.map((_, i) => (i === axis ? offset : 0));
    offset += size;
    return tf.slice(
      x,
      begin,
      x.shape.map((d, i) => (i === axis ? size : d)),
    );
  });
}

/** ONNX Expand: broadcasts the input and the `shape` input against each other (a 1 in either keeps the other). */
function expand(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const shape = numbers(ctx, 1) ?? fail(ctx.node, 'the shape input is missing.');
  const out = broadcastShapes(ctx.node, x.shape, shape);
  checkResult(ctx.node, out);
  const lifted =
    x.rank < out.length ? tf.reshape(x, [...new Array<number>(out.length - x.rank).fill(1), ...x.shape]) : x;
  return out.every((d, i) => d === lifted.shape[i]) ? tf.clone(lifted) : tf.broadcastTo(lifted, out);
}

/** ONNX Tile (opset 6 on): repeats the input `repeats[i]` times along each axis i. */
function tile(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  if (ctx.opset < 6) fail(ctx.node, 'Tile before opset 6 (tiles and axis inputs) is not supported.');
  const repeats = numbers(ctx, 1) ?? fail(ctx.node, 'the repeats input is missing.');
  if (repeats.length !== x.rank) fail(ctx.node, `repeats has ${repeats.length} values for an input of rank ${x.rank}.`);
  if (repeats.some((r) => !Number.isInteger(r) || r < 0))
    fail(ctx.node, `repeats [${repeats.join(', ')}] must be non-negative integers.`);
  checkResult(
    ctx.node,
    x.shape.map((d, i) => d * (repeats[i] ?? 1)),
  );
  if (x.rank === 0) return tf.clone(x);
  return tf.tile(x, repeats);
}

/** ONNX InstanceNormalization: normalises each (sample, channel) over its spatial axes, then scale and bias per channel. */
function instanceNorm(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  if (x.rank < 3)
    fail(ctx.node, `expects an input of rank 3 or more (N, C, spatial…), got shape [${x.shape.join(', ')}].`);
  const shape = channelShape(x.shape[1] ?? 1, x.rank);
  const axes = Array.from({ length: x.rank - 2 }, (_, i) => i + 2);
  const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
  const mean = tf.mean(x, axes, true);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), axes, true);
  const y = tf.div(centred, tf.sqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(y, tf.reshape(input(ctx, 1), shape)), tf.reshape(input(ctx, 2), shape));
}

/** ONNX Cast: to an integer type truncates toward zero, to BOOL tests for non-zero, to a float type keeps the value. */
function cast(ctx: OpContext): tf.Tensor {
  const x = input(ctx, 0);
  const to = attrInt(ctx.node, 'to', 1);
  // TensorProto.DataType: 2 UINT8, 3 INT8, 4 UINT16, 5 INT16, 6 INT32, 7 INT64, 9 BOOL, 12 UINT32, 13 UINT64.
  if (to === 9) return tf.cast(tf.notEqual(x, 0), 'float32');
  // Truncation; adding 0 turns the −0 of a negative fraction into the 0 an integer holds.
  if ([2, 3, 4, 5, 6, 7, 12, 13].includes(to)) return tf.add(tf.mul(tf.sign(x), tf.floor(tf.abs(x))), 0);
  return tf.clone(x);
}

/** ONNX Shape: the input's dimensions, from opset 15 only those in [start, end) (negative counts from the end, clamped). */
function shape(ctx: OpContext): tf.Tensor {
  const dims = input(ctx, 0).shape;
  const rank = dims.length;
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const start = ctx.opset >= 15 ? clamp(attrInt(ctx.node, 'start', 0)) : 0;
  const end = ctx.opset >= 15 ? clamp(attrInt(ctx.node, 'end', rank)) : rank;
  return tf.tensor1d(dims.slice(start, Math.max(start, end)), 'float32');
}

/** ONNX Range: start, start + delta, … up to (not including) limit, ⌈(limit − start) / delta⌉ values or none. */
function range(ctx: OpContext): tf.Tensor {
  const [start, limit, delta] = [0, 1, 2].map((i) => {
    const v = numbers(ctx, i) ?? fail(ctx.node, `input ${i} is missing.`);
    if (v.length !== 1) fail(ctx.node, `input ${i} should be a scalar, not ${v.length} values.`);
    return v[0] ?? 0;
  }) as [number, number, number];
  if (delta === 0) fail(ctx.node, 'a delta of 0 never reaches the limit.');
  const count = Math.max(0, Math.ceil((limit - start) / delta));
  checkResult(ctx.node, [count]);
  return tf.tensor1d(
    Float32Array.from({ length: count }, (_, i) => start + i * delta),
    'float32',
  );
}

const unary =
  (fn: (x: tf.Tensor) => tf.Tensor): OpImpl =>
  (ctx) =>
    fn(input(ctx, 0));
const binary =
  (fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): OpImpl =>
  (ctx) =>
    fn(input(ctx, 0), input(ctx, 1));
const variadic =
  (fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): OpImpl =>
  (ctx) => {
    const xs = ctx.inputs.filter((t): t is tf.Tensor => t !== undefined);
    return xs.slice(1).reduce<tf.Tensor>((acc, t) => fn(acc, t), xs[0] ?? input(ctx, 0));
  };

/** Operator implementations, by ONNX op type. Keys must match `SUPPORTED_OPS`. */
export const OPS: Readonly<Record<string, OpImpl>> = {
  Conv: conv,
  MaxPool: (ctx) => pool(ctx, 'max'),
  AveragePool: (ctx) => pool(ctx, 'avg'),
  GlobalAveragePool: unary((x) =>
    tf.mean(
      x,
      Array.from({ length: x.rank - 2 }, (_, i) => i + 2),
      true,
    ),
  ),
  GlobalMaxPool: unary((x) =>
    tf.max(
      x,
      Array.from({ length: x.rank - 2 }, (_, i) => i + 2),
      true,
    ),
  ),
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
  HardSigmoid: (ctx) =>
    tf.clipByValue(
      tf.add(tf.mul(input(ctx, 0), attrFloat(ctx.node, 'alpha', 0.2)), attrFloat(ctx.node, 'beta', 0.5)),
      0,
      1,
    ),
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
  Shape: shape,
  Gather: gather,
  Cast: cast,
  Split: splitOp,
  Expand: expand,
  Tile: tile,
  ConvTranspose: convTranspose,
  InstanceNormalization: instanceNorm,
  PRelu: binary((x, slope) => tf.prelu(x, slope)),
  Sum: variadic((a, b) => tf.add(a, b)),
  Mean: (ctx) => {
    const xs = ctx.inputs.filter((t): t is tf.Tensor => t !== undefined);
    return tf.div(
      xs.slice(1).reduce<tf.Tensor>((acc, t) => tf.add(acc, t), xs[0] ?? input(ctx, 0)),
      xs.length,
    );
  },
  Floor: unary((x) => tf.floor(x)),
  Ceil: unary((x) => tf.ceil(x)),
  Round: unary((x) => tf.round(x)),
  Sign: unary((x) => tf.sign(x)),
  Range: range,
  ...LOGIC_OPS,
  ...LAYERS_OPS,
};

/**
 * Runs `graph` forward. `weights` holds a float32 tensor for every initializer (by name); `inputs` one for every
 * graph input. Returns one tensor per graph output, by name; the caller owns (and must dispose) them. Intermediate
 * tensors are released (the whole run is inside `tf.tidy`). Differentiable in `weights` and `inputs` once the tfjs
 * gradients are registered (see the module comment). Throws `CheckpointFormatError` for a missing input or weight,
 * an unsupported operator, or attributes the executor cannot honour.
 */
export function executeGraph(
  graph: Graph,
  weights: Readonly<Record<string, tf.Tensor>>,
  inputs: Readonly<Record<string, tf.Tensor>>,
): Record<string, tf.Tensor> {
  return tf.tidy(() => {
    const values = new Map<string, tf.Tensor>();
    for (const name of graph.initializers.keys()) {
      const w = ownValue(weights, name);
      if (w === undefined)
        throw new CheckpointFormatError(`The weight ${JSON.stringify(name)} the graph needs was not provided.`);
      values.set(name, w);
    }
    for (const info of graph.inputs) {
      const x = ownValue(inputs, info.name);
      if (x === undefined)
        throw new CheckpointFormatError(`The graph input ${JSON.stringify(info.name)} was not provided.`);
      values.set(info.name, x);
    }
    for (const node of graph.nodes) {
      const impl = ownValue(OPS, node.op);
      if (impl === undefined)
        throw new CheckpointFormatError(
          `ONNX operator ${node.op} (node ${node.name}) is not supported by the graph executor.`,
        );
      const args = node.inputs.map((name) => {
        if (name === '') return undefined;
        const v = values.get(name);
        if (v === undefined)
          throw new CheckpointFormatError(
            `${node.op} node ${JSON.stringify(node.name)} reads ${JSON.stringify(name)}, which has not been computed.`,
          );
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
      if (v === undefined)
        throw new CheckpointFormatError(`The graph output ${JSON.stringify(name)} was not computed.`);
      // A graph output that is a weight or input itself must be copied, or tidy would hand out the caller's tensor.
      setOwn(result, name, graph.initializers.has(name) || graph.inputs.some((i) => i.name === name) ? tf.clone(v) : v);
    }
    return result;
  });
}

/** Wraps a weights map (as `importOnnx` returns it) into float32 tensors shaped as the graph's initializers. */
export function weightTensors(graph: Graph, weights: ReadonlyMap<string, Float32Array>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, info] of graph.initializers) {
    const values = weights.get(name);
    if (values === undefined)
      throw new CheckpointFormatError(`The weight ${JSON.stringify(name)} the graph needs was not provided.`);
    setOwn(out, name, tf.tensor(values, info.shape.slice(), 'float32'));
  }
  return out;
}
