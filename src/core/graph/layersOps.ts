/**
 * Operators of the TF.js LayersModel domain (`tfjs.*`, named in `layersOpNames.ts`): Keras layers computed the way
 * `@tensorflow/tfjs-layers` computes them, on the weights in their stored Keras layouts (Conv2D kernels HWIO
 * [kh, kw, in, out], Dense kernels [in, out], Conv2DTranspose kernels [kh, kw, out, in]) and on activations in the
 * model's own layout: NHWC for `channels_last` (every Keras default); `channels_first` layers transpose to NHWC around
 * the tfjs op and back.
 *
 * Every operator is written with plain tfjs ops that have registered gradients (no DepthToSpace, no StridedSlice, no
 * dilated convolution: dilation goes through space-to-batch instead), so `tf.grad` through `runGraph` reaches every
 * weight. `execute.ts` merges `LAYERS_OPS` into its operator table.
 *
 * Where tfjs-layers and Keras disagree: bilinear UpSampling2D follows tfjs-layers (no half-pixel centres), while
 * DepthwiseConv2D honours `dilation_rate` as Keras does (tfjs-layers 4.22 ignores it).
 */
import * as tf from '@tensorflow/tfjs-core';
import { dilatedValid } from './dilation';
import { CheckpointFormatError } from '../io/errors';
import { attrFloat, attrInt, attrInts, attrString, type Node } from './ir';
import { ownValue } from '../io/text';

/** What a layer operator sees: the node, its inputs (undefined for missing optional ones), the graph's opset. */
export interface LayerOpContext {
  readonly node: Node;
  readonly inputs: readonly (tf.Tensor | undefined)[];
  readonly opset: number;
}

/** One layer operator: computes the node's output from its inputs (all float32). */
export type LayerOpImpl = (ctx: LayerOpContext) => tf.Tensor | tf.Tensor[];

function fail(node: Node, message: string): never {
  throw new CheckpointFormatError(`${node.op} node ${JSON.stringify(node.name)}: ${message}`);
}

function input(ctx: LayerOpContext, i: number): tf.Tensor {
  const t = ctx.inputs[i];
  if (t === undefined) fail(ctx.node, `input ${i} is missing.`);
  return t;
}

/** Most elements an operator's result may have (1 GiB of float32): a larger one comes from a hostile config. */
const MAX_RESULT_ELEMENTS = 2 ** 28;

/** Refuses a result shape over `MAX_RESULT_ELEMENTS` before it is allocated. */
function checkResult(node: Node, shape: readonly number[]): void {
  const size = shape.reduce((a, b) => a * b, 1);
  if (size > MAX_RESULT_ELEMENTS)
    fail(node, `would produce [${shape.join(', ')}], over ${MAX_RESULT_ELEMENTS} values.`);
}

/** Refuses an input whose channel count (NHWC) differs from what the kernel was trained on. */
function checkChannels(node: Node, x: tf.Tensor4D, expected: number): void {
  if (x.shape[3] !== expected) fail(node, `the input has ${x.shape[3]} channels but the kernel expects ${expected}.`);
}

function input4d(ctx: LayerOpContext): tf.Tensor4D {
  const x = input(ctx, 0);
  if (x.rank !== 4) fail(ctx.node, `expects a 4-D input, got shape [${x.shape.join(', ')}].`);
  return x as tf.Tensor4D;
}

function pair(node: Node, name: string, fallback: [number, number]): [number, number] {
  const v = attrInts(node, name);
  if (v === undefined) return fallback;
  if (v.length !== 2) fail(node, `${name} should hold 2 values, not ${v.length}.`);
  return [v[0] ?? fallback[0], v[1] ?? fallback[1]];
}

function padding(node: Node): 'same' | 'valid' {
  const p = attrString(node, 'padding', 'valid');
  if (p !== 'same' && p !== 'valid') fail(node, `padding ${JSON.stringify(p)} is not supported (same or valid).`);
  return p;
}

function channelsFirst(node: Node): boolean {
  return attrString(node, 'data_format', 'channels_last') === 'channels_first';
}

/** The input in NHWC: transposed from NCHW for a `channels_first` layer. */
function toNhwc(x: tf.Tensor4D, node: Node): tf.Tensor4D {
  return channelsFirst(node) ? tf.transpose(x, [0, 2, 3, 1]) : x;
}

/** An NHWC result back in the layer's layout. */
function fromNhwc(y: tf.Tensor4D, node: Node): tf.Tensor4D {
  return channelsFirst(node) ? tf.transpose(y, [0, 3, 1, 2]) : y;
}

/** Adds a per-channel bias (last axis of an NHWC or N…C tensor) when the node has one. */
function addBias(y: tf.Tensor, bias: tf.Tensor | undefined): tf.Tensor {
  return bias === undefined ? y : tf.add(y, bias);
}

/** Softmax over `axis` (tfjs computes it over the last axis only). */
function softmaxAxis(x: tf.Tensor, axis: number, node: Node): tf.Tensor {
  const a = axis < 0 ? axis + x.rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= x.rank) fail(node, `axis ${axis} is out of range for rank ${x.rank}.`);
  if (a === x.rank - 1) return tf.softmax(x);
  const perm = Array.from({ length: x.rank }, (_, i) => i);
  perm[a] = x.rank - 1;
  perm[x.rank - 1] = a;
  return tf.transpose(tf.softmax(tf.transpose(x, perm)), perm);
}

/**
 * Keras activation functions by the name the importer normalises them to, computed as tfjs-layers does
 * (`hard_sigmoid` is 0.2·x + 0.5 clipped, `gelu` the erf form, `gelu_new` the tanh approximation, `swish` x·σ(x),
 * `leaky_relu` slope 0.2 as in Keras 3).
 */
const ACTIVATIONS: Readonly<Record<string, (x: tf.Tensor) => tf.Tensor>> = {
  linear: (x) => tf.clone(x),
  relu: (x) => tf.relu(x),
  relu6: (x) => tf.relu6(x),
  elu: (x) => tf.elu(x),
  selu: (x) => tf.selu(x),
  sigmoid: (x) => tf.sigmoid(x),
  hard_sigmoid: (x) => tf.clipByValue(tf.add(tf.mul(x, 0.2), 0.5), 0, 1),
  tanh: (x) => tf.tanh(x),
  softmax: (x) => tf.softmax(x),
  log_softmax: (x) => tf.logSoftmax(x),
  softplus: (x) => tf.softplus(x),
  softsign: (x) => tf.div(x, tf.add(tf.abs(x), 1)),
  swish: (x) => tf.mul(tf.sigmoid(x), x),
  gelu: (x) => tf.mul(x, tf.mul(0.5, tf.add(1, tf.erf(tf.div(x, Math.SQRT2))))),
  gelu_new: (x) =>
    tf.mul(
      0.5,
      tf.mul(x, tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))))))),
    ),
  mish: (x) => tf.mul(x, tf.tanh(tf.softplus(x))),
  leaky_relu: (x) => tf.leakyRelu(x, 0.2),
  exponential: (x) => tf.exp(x),
};

/** Activation names the operators implement (after the importer's normalisation). */
export const LAYER_ACTIVATIONS: readonly string[] = Object.keys(ACTIVATIONS);

/** Applies the node's `activation` attribute (linear when absent); returns `y` itself for linear. */
function activate(y: tf.Tensor, node: Node): tf.Tensor {
  const name = attrString(node, 'activation', 'linear');
  if (name === 'linear') return y;
  const fn = ownValue(ACTIVATIONS, name);
  if (fn === undefined) fail(node, `activation ${JSON.stringify(name)} is not supported.`);
  return fn(y);
}

/**
 * A stride-1 convolution-like op (`valid`: an undilated, 'valid', stride-1 convolution of its input) applied with
 * dilation `d`, the way TensorFlow implements dilation: space-to-batch by `d`, the undilated op, batch-to-space back.
 * tfjs has no gradient for dilated convolutions, while SpaceToBatchND and BatchToSpaceND have one; and unlike zeros
 * spread into the kernel it costs no extra multiplications. 'same' pads as TF does for the dilated extent
 * (k − 1)·d + 1.
 */
function dilated(
  node: Node,
  x: tf.Tensor4D,
  [dh, dw]: readonly [number, number],
  [kh, kw]: readonly [number, number],
  pad: 'same' | 'valid',
  valid: (x: tf.Tensor4D) => tf.Tensor4D,
): tf.Tensor4D {
  const [eh, ew] = [(kh - 1) * dh + 1, (kw - 1) * dw + 1];
  let xp = x;
  if (pad === 'same') {
    checkResult(node, [x.shape[0], x.shape[1] + eh - 1, x.shape[2] + ew - 1, x.shape[3]]);
    const [th, tw] = [Math.floor((eh - 1) / 2), Math.floor((ew - 1) / 2)];
    xp = tf.pad(x, [
      [0, 0],
      [th, eh - 1 - th],
      [tw, ew - 1 - tw],
      [0, 0],
    ]);
  }
  const [, hp, wp] = xp.shape;
  if (hp < eh || wp < ew) fail(node, `a ${hp}×${wp} input is smaller than the ${eh}×${ew} dilated kernel.`);
  return dilatedValid(xp, [dh, dw], valid);
}

/** Kernel height and width of a [kh, kw, …] kernel. */
function spatial(kernel: tf.Tensor4D): [number, number] {
  return [kernel.shape[0], kernel.shape[1]];
}

function conv2d(ctx: LayerOpContext): tf.Tensor {
  const { node } = ctx;
  const x = toNhwc(input4d(ctx), node);
  const kernel = input(ctx, 1) as tf.Tensor4D;
  checkChannels(node, x, kernel.shape[2]);
  const strides = pair(node, 'strides', [1, 1]);
  const dilation = pair(node, 'dilation_rate', [1, 1]);
  const pad = padding(node);
  const conv =
    dilation[0] === 1 && dilation[1] === 1
      ? tf.conv2d(x, kernel, strides, pad, 'NHWC')
      : dilated(node, x, dilation, spatial(kernel), pad, (t) => tf.conv2d(t, kernel, 1, 'valid', 'NHWC'));
  return fromNhwc(activate(addBias(conv, ctx.inputs[2]), node) as tf.Tensor4D, node);
}

/** Depthwise convolution, dilated when the node says so. */
function depthwise(node: Node, x: tf.Tensor4D, kernel: tf.Tensor4D): tf.Tensor4D {
  checkChannels(node, x, kernel.shape[2]);
  const strides = pair(node, 'strides', [1, 1]);
  const dilation = pair(node, 'dilation_rate', [1, 1]);
  const pad = padding(node);
  return dilation[0] === 1 && dilation[1] === 1
    ? tf.depthwiseConv2d(x, kernel, strides, pad, 'NHWC')
    : dilated(node, x, dilation, spatial(kernel), pad, (t) => tf.depthwiseConv2d(t, kernel, 1, 'valid', 'NHWC'));
}

function depthwiseConv2d(ctx: LayerOpContext): tf.Tensor {
  const { node } = ctx;
  const y = depthwise(node, toNhwc(input4d(ctx), node), input(ctx, 1) as tf.Tensor4D);
  return fromNhwc(activate(addBias(y, ctx.inputs[2]), node) as tf.Tensor4D, node);
}

function separableConv2d(ctx: LayerOpContext): tf.Tensor {
  const { node } = ctx;
  const y = depthwise(node, toNhwc(input4d(ctx), node), input(ctx, 1) as tf.Tensor4D);
  const pointwiseKernel = input(ctx, 2) as tf.Tensor4D;
  checkChannels(node, y, pointwiseKernel.shape[2]);
  const pointwise = tf.conv2d(y, pointwiseKernel, 1, 'valid', 'NHWC');
  return fromNhwc(activate(addBias(pointwise, ctx.inputs[3]), node) as tf.Tensor4D, node);
}

/** Output length of a transposed convolution (tfjs-layers `deconvLength`). */
function deconvLength(size: number, stride: number, kernel: number, pad: 'same' | 'valid'): number {
  return pad === 'valid' ? size * stride + Math.max(kernel - stride, 0) : size * stride;
}

function conv2dTranspose(ctx: LayerOpContext): tf.Tensor {
  const { node } = ctx;
  const x = toNhwc(input4d(ctx), node);
  const kernel = input(ctx, 1) as tf.Tensor4D;
  const [kh, kw, filters, inputs] = kernel.shape;
  checkChannels(node, x, inputs);
  const strides = pair(node, 'strides', [1, 1]);
  const pad = padding(node);
  const [n, h, w] = x.shape;
  const out: [number, number, number, number] = [
    n,
    deconvLength(h, strides[0], kh, pad),
    deconvLength(w, strides[1], kw, pad),
    filters,
  ];
  checkResult(node, out);
  const y = addBias(tf.conv2dTranspose(x, kernel, out, strides, pad), ctx.inputs[2]);
  return fromNhwc(activate(y, node) as tf.Tensor4D, node);
}

function dense(ctx: LayerOpContext): tf.Tensor {
  const x = input(ctx, 0);
  const kernel = input(ctx, 1) as tf.Tensor2D;
  const [inDim, units] = kernel.shape;
  if (x.shape[x.rank - 1] !== inDim)
    fail(ctx.node, `the input has ${x.shape[x.rank - 1] ?? 0} features but the kernel expects ${inDim}.`);
  let y: tf.Tensor;
  if (x.rank === 2) y = tf.matMul(x, kernel);
  else {
    const lead = x.shape.slice(0, -1);
    y = tf.reshape(tf.matMul(tf.reshape(x, [-1, inDim]), kernel), [...lead, units]);
  }
  return activate(addBias(y, ctx.inputs[2]), ctx.node);
}

function relu(ctx: LayerOpContext): tf.Tensor {
  const { node } = ctx;
  const x = input(ctx, 0);
  const slope = attrFloat(node, 'negative_slope', 0);
  const threshold = attrFloat(node, 'threshold', 0);
  let y: tf.Tensor =
    slope === 0 && threshold === 0
      ? tf.relu(x)
      : tf.where(tf.greaterEqual(x, threshold), x, tf.mul(tf.sub(x, threshold), slope));
  if (node.attrs.max_value !== undefined) y = tf.minimum(y, attrFloat(node, 'max_value', 0));
  return y;
}

function elu(ctx: LayerOpContext): tf.Tensor {
  const x = input(ctx, 0);
  const alpha = attrFloat(ctx.node, 'alpha', 1);
  return alpha === 1 ? tf.elu(x) : tf.where(tf.greater(x, 0), x, tf.mul(tf.sub(tf.exp(x), 1), alpha));
}

function inputsOf(ctx: LayerOpContext): tf.Tensor[] {
  const xs = ctx.inputs.filter((t): t is tf.Tensor => t !== undefined);
  if (xs.length === 0) fail(ctx.node, 'has no inputs.');
  return xs;
}

const merge =
  (fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): LayerOpImpl =>
  (ctx) => {
    const [first, ...rest] = inputsOf(ctx);
    if (first === undefined) return fail(ctx.node, 'has no inputs.');
    return rest.length === 0 ? tf.clone(first) : rest.reduce<tf.Tensor>((acc, t) => fn(acc, t), first);
  };

function average(ctx: LayerOpContext): tf.Tensor {
  const xs = inputsOf(ctx);
  const sum = xs.slice(1).reduce<tf.Tensor>((acc, t) => tf.add(acc, t), xs[0] ?? input(ctx, 0));
  return tf.div(sum, xs.length);
}

function concatenate(ctx: LayerOpContext): tf.Tensor {
  const xs = inputsOf(ctx);
  const rank = xs[0]?.rank ?? 0;
  const raw = attrInt(ctx.node, 'axis', -1);
  const axis = raw < 0 ? raw + rank : raw;
  if (axis < 0 || axis >= rank) fail(ctx.node, `axis ${raw} is out of range for rank ${rank}.`);
  return xs.length === 1 ? tf.clone(xs[0] ?? input(ctx, 0)) : tf.concat(xs, axis);
}

function upSampling2d(ctx: LayerOpContext): tf.Tensor {
  const { node } = ctx;
  const x = toNhwc(input4d(ctx), node);
  const [sh, sw] = pair(node, 'size', [2, 2]);
  const [n, h, w, c] = x.shape;
  const size: [number, number] = [h * sh, w * sw];
  checkResult(node, [n, ...size, c]);
  // tfjs-layers resizes with align_corners and half_pixel_centers both off (Keras in Python uses half-pixel centres
  // for bilinear); for nearest at integer factors both repeat each pixel.
  const y =
    attrString(node, 'interpolation', 'nearest') === 'bilinear'
      ? tf.image.resizeBilinear(x, size, false, false)
      : tf.image.resizeNearestNeighbor(x, size, false, false);
  return fromNhwc(y, node);
}

/** [top, bottom, left, right] from a 4-value attribute. */
function quad(node: Node, name: string): [number, number, number, number] {
  const v = attrInts(node, name) ?? [0, 0, 0, 0];
  if (v.length !== 4 || v.some((d) => !Number.isInteger(d) || d < 0))
    fail(node, `${name} should be 4 non-negative integers.`);
  return [v[0] ?? 0, v[1] ?? 0, v[2] ?? 0, v[3] ?? 0];
}

function zeroPadding2d(ctx: LayerOpContext): tf.Tensor {
  const { node } = ctx;
  const x = toNhwc(input4d(ctx), node);
  const [t, b, l, r] = quad(node, 'padding');
  checkResult(node, [x.shape[0], x.shape[1] + t + b, x.shape[2] + l + r, x.shape[3]]);
  return fromNhwc(
    tf.pad(x, [
      [0, 0],
      [t, b],
      [l, r],
      [0, 0],
    ]),
    node,
  );
}

function cropping2d(ctx: LayerOpContext): tf.Tensor {
  const { node } = ctx;
  const x = toNhwc(input4d(ctx), node);
  const [t, b, l, r] = quad(node, 'cropping');
  const [n, h, w, c] = x.shape;
  if (t + b >= h || l + r >= w) fail(node, `cropping [${t}, ${b}, ${l}, ${r}] leaves nothing of a ${h}×${w} input.`);
  return fromNhwc(tf.slice(x, [0, t, l, 0], [n, h - t - b, w - l - r, c]), node);
}

function pooling2d(ctx: LayerOpContext, kind: 'max' | 'avg'): tf.Tensor {
  const { node } = ctx;
  const x = toNhwc(input4d(ctx), node);
  const pool = pair(node, 'pool_size', [2, 2]);
  const strides = pair(node, 'strides', pool);
  const pad = padding(node);
  if (pad === 'valid' && (pool[0] > x.shape[1] || pool[1] > x.shape[2]))
    fail(node, `a ${pool[0]}×${pool[1]} window does not fit a ${x.shape[1]}×${x.shape[2]} input.`);
  return fromNhwc(kind === 'max' ? tf.maxPool(x, pool, strides, pad) : tf.avgPool(x, pool, strides, pad), node);
}

function globalPooling2d(ctx: LayerOpContext, kind: 'max' | 'avg'): tf.Tensor {
  const { node } = ctx;
  const x = input4d(ctx);
  const axes = channelsFirst(node) ? [2, 3] : [1, 2];
  const keep = attrInt(node, 'keepdims', 0) === 1;
  return kind === 'max' ? tf.max(x, axes, keep) : tf.mean(x, axes, keep);
}

/** NHWC DepthToSpace (DCR order, as `tf.depthToSpace`), written as reshape + transpose so it has a gradient. */
function depthToSpace(ctx: LayerOpContext): tf.Tensor {
  const { node } = ctx;
  const x = toNhwc(input4d(ctx), node);
  const b = attrInt(node, 'block_size', 2);
  const [n, h, w, c] = x.shape;
  if (!Number.isInteger(b) || b < 1 || c % (b * b) !== 0)
    fail(node, `cannot rearrange ${c} channels into ${b}×${b} blocks.`);
  const co = c / (b * b);
  const y = tf.reshape(tf.transpose(tf.reshape(x, [n, h, w, b, b, co]), [0, 1, 3, 2, 4, 5]), [n, h * b, w * b, co]);
  return fromNhwc(y as tf.Tensor4D, node);
}

/** Shape that broadcasts a vector along `axis` of a rank-`rank` tensor. */
function alongAxis(size: number, axis: number, rank: number): number[] {
  return Array.from({ length: rank }, (_, i) => (i === axis ? size : 1));
}

function batchNorm(ctx: LayerOpContext): tf.Tensor {
  const { node } = ctx;
  const x = input(ctx, 0);
  const raw = attrInt(node, 'axis', -1);
  const axis = raw < 0 ? raw + x.rank : raw;
  if (axis < 0 || axis >= x.rank) fail(node, `axis ${raw} is out of range for rank ${x.rank}.`);
  const c = x.shape[axis] ?? 1;
  const shape = alongAxis(c, axis, x.rank);
  const vec = (i: number): tf.Tensor | undefined => {
    const t = ctx.inputs[i];
    if (t === undefined) return undefined;
    if (t.size !== c) fail(node, `a ${t.size}-value statistic does not match ${c} channels.`);
    return tf.reshape(t, shape);
  };
  const gamma = vec(1);
  const beta = vec(2);
  const mean = vec(3) ?? fail(node, 'the moving mean is missing.');
  const variance = vec(4) ?? fail(node, 'the moving variance is missing.');
  let y: tf.Tensor = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, attrFloat(node, 'epsilon', 1e-3))));
  if (gamma !== undefined) y = tf.mul(y, gamma);
  return beta !== undefined ? tf.add(y, beta) : y;
}

function layerNorm(ctx: LayerOpContext): tf.Tensor {
  const { node } = ctx;
  const x = input(ctx, 0);
  const axes = (attrInts(node, 'axis') ?? [-1]).map((a) => {
    const n = a < 0 ? a + x.rank : a;
    if (n < 0 || n >= x.rank) fail(node, `axis ${a} is out of range for rank ${x.rank}.`);
    return n;
  });
  const shape = x.shape.map((d, i) => (axes.includes(i) ? d : 1));
  const { mean, variance } = tf.moments(x, axes, true);
  let y: tf.Tensor = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, attrFloat(node, 'epsilon', 1e-3))));
  const gamma = ctx.inputs[1];
  const beta = ctx.inputs[2];
  if (gamma !== undefined) y = tf.mul(y, tf.reshape(gamma, shape));
  return beta !== undefined ? tf.add(y, tf.reshape(beta, shape)) : y;
}

function flatten(ctx: LayerOpContext): tf.Tensor {
  let x = input(ctx, 0);
  if (channelsFirst(ctx.node) && x.rank > 2)
    x = tf.transpose(x, [0, ...Array.from({ length: x.rank - 2 }, (_, i) => i + 2), 1]);
  return tf.reshape(x, [x.shape[0], -1]);
}

function reshape(ctx: LayerOpContext): tf.Tensor {
  const x = input(ctx, 0);
  const target = attrInts(ctx.node, 'target_shape') ?? fail(ctx.node, 'target_shape is missing.');
  const shape = [x.shape[0], ...target];
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const unknown = shape.filter((d) => d === -1).length;
  if (unknown > 1 || (unknown === 0 ? known !== x.size : known === 0 || x.size % known !== 0)) {
    fail(ctx.node, `cannot reshape [${x.shape.join(', ')}] to [${['batch', ...target].join(', ')}].`);
  }
  return tf.reshape(x, shape);
}

function permute(ctx: LayerOpContext): tf.Tensor {
  const x = input(ctx, 0);
  const dims = attrInts(ctx.node, 'dims') ?? fail(ctx.node, 'dims are missing.');
  if (dims.length !== x.rank - 1 || [...dims].sort((a, b) => a - b).some((d, i) => d !== i + 1)) {
    fail(ctx.node, `dims [${dims.join(', ')}] are not a permutation of 1…${x.rank - 1}.`);
  }
  return tf.transpose(x, [0, ...dims]);
}

/** Operator implementations of the `tfjs` domain, by full op name. Keys must match `LAYERS_OP_NAMES`. */
export const LAYERS_OPS: Readonly<Record<string, LayerOpImpl>> = {
  'tfjs.Conv2D': conv2d,
  'tfjs.DepthwiseConv2D': depthwiseConv2d,
  'tfjs.SeparableConv2D': separableConv2d,
  'tfjs.Conv2DTranspose': conv2dTranspose,
  'tfjs.Dense': dense,
  'tfjs.Activation': (ctx) => {
    const y = activate(input(ctx, 0), ctx.node);
    return y === ctx.inputs[0] ? tf.clone(y) : y;
  },
  'tfjs.LeakyReLU': (ctx) => tf.leakyRelu(input(ctx, 0), attrFloat(ctx.node, 'alpha', 0.3)),
  'tfjs.PReLU': (ctx) => tf.prelu(input(ctx, 0), input(ctx, 1)),
  'tfjs.ReLU': relu,
  'tfjs.ELU': elu,
  'tfjs.Softmax': (ctx) => softmaxAxis(input(ctx, 0), attrInt(ctx.node, 'axis', -1), ctx.node),
  'tfjs.Scale': (ctx) => tf.mul(input(ctx, 0), attrFloat(ctx.node, 'factor', 1)),
  'tfjs.Add': merge((a, b) => tf.add(a, b)),
  'tfjs.Multiply': merge((a, b) => tf.mul(a, b)),
  'tfjs.Subtract': (ctx) => {
    if (ctx.inputs.length !== 2) fail(ctx.node, `subtracts exactly 2 inputs, not ${ctx.inputs.length}.`);
    return tf.sub(input(ctx, 0), input(ctx, 1));
  },
  'tfjs.Average': average,
  'tfjs.Maximum': merge((a, b) => tf.maximum(a, b)),
  'tfjs.Minimum': merge((a, b) => tf.minimum(a, b)),
  'tfjs.Concatenate': concatenate,
  'tfjs.UpSampling2D': upSampling2d,
  'tfjs.ZeroPadding2D': zeroPadding2d,
  'tfjs.Cropping2D': cropping2d,
  'tfjs.MaxPooling2D': (ctx) => pooling2d(ctx, 'max'),
  'tfjs.AveragePooling2D': (ctx) => pooling2d(ctx, 'avg'),
  'tfjs.GlobalAveragePooling2D': (ctx) => globalPooling2d(ctx, 'avg'),
  'tfjs.GlobalMaxPooling2D': (ctx) => globalPooling2d(ctx, 'max'),
  'tfjs.DepthToSpace': depthToSpace,
  'tfjs.BatchNormalization': batchNorm,
  'tfjs.LayerNormalization': layerNorm,
  'tfjs.Flatten': flatten,
  'tfjs.Reshape': reshape,
  'tfjs.Permute': permute,
  'tfjs.Identity': (ctx) => tf.clone(input(ctx, 0)),
};
