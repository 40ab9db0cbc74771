/**
 * TF.js LayersModel importer: turns a `model.json` (Keras `Sequential` or `Functional` topology, nested models
 * inlined) into the graph IR (`ir.ts`) plus a weights map, so `runGraph` can run it like an imported ONNX model.
 *
 * - Weights are read through the TF.js checkpoint reader (`formats/tfjs.ts`), so initializers carry exactly the
 *   reader's tensor names (the manifest names, e.g. `conv1/kernel`), stored shapes and layouts (Conv2D kernels stay
 *   HWIO [kh, kw, in, out]) and dequantised values. Compression artifacts bind to graphs by tensor name and shape,
 *   so nothing is renamed or re-laid-out.
 * - Graph inputs and outputs keep the model's own layout (NHWC for Keras). Inputs are named after their InputLayer
 *   (a Sequential without one: `<first layer>_input`, as tfjs-layers names it); every other value after the layer
 *   that produces it (`<layer>`, `<layer>:<call>` for later calls of a shared layer, `<model>/<layer>` inside a
 *   nested model).
 * - Layers become `tfjs.*` operators (`layersOps.ts`) carrying their Keras configuration as attributes. Classes are
 *   looked up in a registry of importers: the built-in Keras layers, the UpscalerJS ESRGAN custom layers
 *   (`MultiplyBeta`, `PixelShuffle<n>x`), and whatever `registerCustomLayer` adds. Any other class (and `Lambda`,
 *   whose Python code a model.json cannot carry) is refused at import, naming the class and the layer.
 */
import { FileByteSource, readAllBytes, siblingOpenerFor, type ByteSource } from '../io/byteSource';
import { CheckpointFormatError, throwIfAborted } from '../io/errors';
import { LIMITS } from '../io/limits';
import { tfjsFormat } from '../formats/tfjs';
import type { OpenContext } from '../formats/types';
import { readTensorValues, type TensorEntry } from '../tensors/tensor';
import type { AttrValue, Graph, InitializerInfo, Node, ValueInfo } from './ir';
import { LAYER_ACTIVATION_NAMES } from './layersOpNames';
import { SUPPORTED_OPS } from './supportedOps';

/** A LayersModel imported for execution: its graph and the float32 values of every initializer, by name. */
export interface LayersModelImport {
  readonly graph: Graph;
  /** Initializer values by the TF.js reader's tensor names (row-major, stored layout, dequantised to float32). */
  readonly weights: Map<string, Float32Array>;
}

/** Options of the importer. */
export interface LayersImportOptions {
  readonly signal?: AbortSignal;
}

/** What a layer importer sees for one call of a layer. */
export interface LayerImportContext {
  /** Keras class name (`Conv2D`, or a custom class such as `MultiplyBeta`). */
  readonly className: string;
  /** Layer name, qualified by enclosing nested models (`encoder/conv1`). Used in node names and messages. */
  readonly layerName: string;
  /** The layer's Keras `config` object as stored in model.json (snake_case keys). */
  readonly config: Readonly<Record<string, unknown>>;
  /** Names of the values this call consumes, in order. */
  readonly inputs: readonly string[];
  /** Name of the value this call must produce. */
  readonly output: string;
  /**
   * The initializer name of this layer's weight `name` (`kernel`, `bias`, `gamma`…), found in the weights manifest
   * as `<layer>/<name>` (or with a nested-model prefix). `shape`, when given, is checked (`null` = any size).
   * Throws `CheckpointFormatError` when the manifest lacks it or its shape differs.
   */
  weight(name: string, shape?: readonly (number | null)[]): string;
  /** A fresh value name for an intermediate result of a multi-node importer. */
  temp(suffix: string): string;
  /** Throws `CheckpointFormatError` "<file>: layer '<name>' (<class>) <message>". */
  fail(message: string): never;
}

/** One node an importer emits. `outputs` defaults to `[ctx.output]`; `op` must be an operator `runGraph` implements. */
export interface LayerNodeSpec {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs?: readonly string[];
  readonly attrs?: Readonly<Record<string, AttrValue>>;
}

/** Turns one call of a layer class into graph nodes (usually one `tfjs.*` node); one of them must produce `ctx.output`. */
export type LayerImporter = (ctx: LayerImportContext) => LayerNodeSpec | readonly LayerNodeSpec[];

const IMPORTERS = new Map<string, LayerImporter>();

/**
 * Registers (or replaces) the importer of a layer class, so models using it can be imported. `className` is the
 * `class_name` model.json stores. The importer may only emit operators `runGraph` implements (`tfjs.*` or ONNX ops);
 * constants go in attributes (the weights map holds the manifest's weights only).
 */
export function registerCustomLayer(className: string, importer: LayerImporter): void {
  if (className.length === 0) throw new Error('registerCustomLayer needs a class name.');
  IMPORTERS.set(className, importer);
}

/** Layer classes the importer accepts (built-in, UpscalerJS and registered ones), sorted. */
export function supportedLayerClasses(): string[] {
  return [...IMPORTERS.keys(), 'InputLayer', 'Sequential', 'Functional', 'Model'].sort((a, b) => a.localeCompare(b));
}

// ---------------------------------------------------------------------------------------------------------------
// Reading Keras configs

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A config value for a message (JSON, cut to 100 characters). */
function show(value: unknown): string {
  const text = value === undefined ? 'undefined' : JSON.stringify(value);
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

/** A whole number, or `fallback` when the key is absent or null. */
function int(ctx: LayerImportContext, key: string, fallback?: number): number {
  const v = ctx.config[key];
  if ((v === undefined || v === null) && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v)) ctx.fail(`has ${key} ${show(v)}, not an integer.`);
  return v;
}

/** A finite number, or `fallback` when the key is absent or null. */
function num(ctx: LayerImportContext, key: string, fallback: number): number {
  const v = ctx.config[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) ctx.fail(`has ${key} ${show(v)}, not a number.`);
  return v;
}

function bool(ctx: LayerImportContext, key: string, fallback: boolean): boolean {
  const v = ctx.config[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') ctx.fail(`has ${key} ${show(v)}, not true or false.`);
  return v;
}

/** Whole numbers as a list of `n`: one integer is repeated (Keras accepts `3` for `[3, 3]`). */
function ints(ctx: LayerImportContext, key: string, n: number, fallback?: readonly number[]): number[] {
  const v = ctx.config[key];
  if ((v === undefined || v === null) && fallback !== undefined) return fallback.slice();
  const list = typeof v === 'number' ? new Array<unknown>(n).fill(v) : v;
  if (
    !Array.isArray(list) ||
    list.length !== n ||
    list.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 1)
  ) {
    ctx.fail(`has ${key} ${show(v)}, not ${n === 1 ? 'a positive integer' : `${n} positive integers`}.`);
  }
  return list as number[];
}

/** A spatial padding/cropping spec (`p`, `[h, w]` or `[[top, bottom], [left, right]]`) as [top, bottom, left, right]. */
function quad(ctx: LayerImportContext, key: string): number[] {
  const v = ctx.config[key] ?? 0;
  const ok = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;
  if (ok(v)) return [v, v, v, v];
  if (Array.isArray(v) && v.length === 2) {
    const [a, b] = v as unknown[];
    if (ok(a) && ok(b)) return [a, a, b, b];
    if (Array.isArray(a) && Array.isArray(b)) {
      const flat: unknown[] = [...(a as unknown[]), ...(b as unknown[])];
      if (a.length === 2 && b.length === 2 && flat.every(ok)) return flat;
    }
  }
  return ctx.fail(`has ${key} ${show(v)}, which is not a 2-D padding specification.`);
}

/** `same` or `valid` (`causal` and others are refused). */
function paddingOf(ctx: LayerImportContext): string {
  const v = ctx.config.padding ?? 'valid';
  if (v !== 'same' && v !== 'valid') ctx.fail(`has padding ${show(v)}; only "same" and "valid" are supported.`);
  return v;
}

/** `channels_last` or `channels_first` (tfjs-layers also writes `channelsLast`). */
function dataFormat(ctx: LayerImportContext): string {
  const v = ctx.config.data_format ?? 'channels_last';
  if (v === 'channels_last' || v === 'channelsLast') return 'channels_last';
  if (v === 'channels_first' || v === 'channelsFirst') return 'channels_first';
  return ctx.fail(`has data_format ${show(v)}, not channels_last or channels_first.`);
}

/** Spellings of activation names across Keras 2, Keras 3 and tfjs-layers, mapped to the operators' names. */
const ACTIVATION_ALIASES: Readonly<Record<string, string>> = {
  hardSigmoid: 'hard_sigmoid',
  logSoftmax: 'log_softmax',
  silu: 'swish',
  leakyrelu: 'leaky_relu',
  leakyRelu: 'leaky_relu',
  geluNew: 'gelu_new',
};

/** The layer's activation (`linear` when absent), normalised and checked against what the operators implement. */
function activationOf(ctx: LayerImportContext, key = 'activation'): string {
  let v = ctx.config[key];
  // Keras 3 may serialise `{"class_name": "function", "config": "relu"}` or `{"class_name": "relu"}`.
  if (isRecord(v)) v = typeof v.config === 'string' ? v.config : v.class_name;
  if (v === undefined || v === null) return 'linear';
  if (typeof v !== 'string') return ctx.fail(`has activation ${show(v)}, not a name.`);
  const name = ACTIVATION_ALIASES[v] ?? v;
  if (!LAYER_ACTIVATION_NAMES.includes(name)) {
    ctx.fail(
      `uses activation ${JSON.stringify(v)}, which is not supported; supported: ${LAYER_ACTIVATION_NAMES.join(', ')}.`,
    );
  }
  return name;
}

/** The `axis` of a layer that normalises along one axis (Keras 2 saves BatchNormalization's as `[3]`); default −1. */
function singleAxis(ctx: LayerImportContext): number {
  const raw = ctx.config.axis ?? -1;
  const axis: unknown = Array.isArray(raw) && raw.length === 1 ? (raw as unknown[])[0] : raw;
  if (typeof axis !== 'number' || !Number.isInteger(axis))
    return ctx.fail(`works along axes ${show(raw)}; only one axis is supported.`);
  return axis;
}

function oneInput(ctx: LayerImportContext): string {
  const [x] = ctx.inputs;
  if (ctx.inputs.length !== 1 || x === undefined) ctx.fail(`takes 1 input, but is called on ${ctx.inputs.length}.`);
  return x;
}

function withBias(ctx: LayerImportContext, inputs: string[], size: number | null): string[] {
  return bool(ctx, 'use_bias', true) ? [...inputs, ctx.weight('bias', [size])] : inputs;
}

/** Refuses a stride and a dilation both above 1 (Keras refuses it too; tfjs cannot compute it). */
function checkStridesDilation(ctx: LayerImportContext, strides: readonly number[], dilation: readonly number[]): void {
  if (strides.some((s) => s > 1) && dilation.some((d) => d > 1))
    ctx.fail('combines strides and a dilation rate above 1, which Keras does not allow.');
}

// ---------------------------------------------------------------------------------------------------------------
// Built-in layer importers

function conv2d(ctx: LayerImportContext): LayerNodeSpec {
  const x = oneInput(ctx);
  const [kh, kw] = ints(ctx, 'kernel_size', 2);
  const filters = int(ctx, 'filters');
  const strides = ints(ctx, 'strides', 2, [1, 1]);
  const dilation = ints(ctx, 'dilation_rate', 2, [1, 1]);
  if (int(ctx, 'groups', 1) !== 1) ctx.fail('uses grouped convolution (groups above 1), which is not supported.');
  checkStridesDilation(ctx, strides, dilation);
  const inputs = withBias(ctx, [x, ctx.weight('kernel', [kh ?? null, kw ?? null, null, filters])], filters);
  return {
    op: 'tfjs.Conv2D',
    inputs,
    attrs: {
      strides,
      dilation_rate: dilation,
      padding: paddingOf(ctx),
      data_format: dataFormat(ctx),
      activation: activationOf(ctx),
    },
  };
}

function depthwiseConv2d(ctx: LayerImportContext): LayerNodeSpec {
  const x = oneInput(ctx);
  const [kh, kw] = ints(ctx, 'kernel_size', 2);
  const multiplier = int(ctx, 'depth_multiplier', 1);
  const strides = ints(ctx, 'strides', 2, [1, 1]);
  const dilation = ints(ctx, 'dilation_rate', 2, [1, 1]);
  checkStridesDilation(ctx, strides, dilation);
  const inputs = withBias(ctx, [x, ctx.weight('depthwise_kernel', [kh ?? null, kw ?? null, null, multiplier])], null);
  return {
    op: 'tfjs.DepthwiseConv2D',
    inputs,
    attrs: {
      strides,
      dilation_rate: dilation,
      padding: paddingOf(ctx),
      data_format: dataFormat(ctx),
      activation: activationOf(ctx),
    },
  };
}

function separableConv2d(ctx: LayerImportContext): LayerNodeSpec {
  const x = oneInput(ctx);
  const [kh, kw] = ints(ctx, 'kernel_size', 2);
  const filters = int(ctx, 'filters');
  const multiplier = int(ctx, 'depth_multiplier', 1);
  const strides = ints(ctx, 'strides', 2, [1, 1]);
  const dilation = ints(ctx, 'dilation_rate', 2, [1, 1]);
  checkStridesDilation(ctx, strides, dilation);
  const depthwise = ctx.weight('depthwise_kernel', [kh ?? null, kw ?? null, null, multiplier]);
  const pointwise = ctx.weight('pointwise_kernel', [1, 1, null, filters]);
  return {
    op: 'tfjs.SeparableConv2D',
    inputs: withBias(ctx, [x, depthwise, pointwise], filters),
    attrs: {
      strides,
      dilation_rate: dilation,
      padding: paddingOf(ctx),
      data_format: dataFormat(ctx),
      activation: activationOf(ctx),
    },
  };
}

function conv2dTranspose(ctx: LayerImportContext): LayerNodeSpec {
  const x = oneInput(ctx);
  const [kh, kw] = ints(ctx, 'kernel_size', 2);
  const filters = int(ctx, 'filters');
  const strides = ints(ctx, 'strides', 2, [1, 1]);
  if (ints(ctx, 'dilation_rate', 2, [1, 1]).some((d) => d !== 1))
    ctx.fail('uses a dilation rate, which TF.js transposed convolutions do not support.');
  if (ctx.config.output_padding !== undefined && ctx.config.output_padding !== null)
    ctx.fail('sets output_padding, which TF.js does not support.');
  const inputs = withBias(ctx, [x, ctx.weight('kernel', [kh ?? null, kw ?? null, filters, null])], filters);
  return {
    op: 'tfjs.Conv2DTranspose',
    inputs,
    attrs: { strides, padding: paddingOf(ctx), data_format: dataFormat(ctx), activation: activationOf(ctx) },
  };
}

function dense(ctx: LayerImportContext): LayerNodeSpec {
  const x = oneInput(ctx);
  const units = int(ctx, 'units');
  return {
    op: 'tfjs.Dense',
    inputs: withBias(ctx, [x, ctx.weight('kernel', [null, units])], units),
    attrs: { activation: activationOf(ctx) },
  };
}

function batchNorm(ctx: LayerImportContext): LayerNodeSpec {
  const x = oneInput(ctx);
  const axis = singleAxis(ctx);
  const gamma = bool(ctx, 'scale', true) ? ctx.weight('gamma', [null]) : '';
  const beta = bool(ctx, 'center', true) ? ctx.weight('beta', [null]) : '';
  const inputs = [x, gamma, beta, ctx.weight('moving_mean', [null]), ctx.weight('moving_variance', [null])];
  return { op: 'tfjs.BatchNormalization', inputs, attrs: { axis, epsilon: num(ctx, 'epsilon', 1e-3) } };
}

function layerNorm(ctx: LayerImportContext): LayerNodeSpec {
  const x = oneInput(ctx);
  const raw = ctx.config.axis ?? -1;
  const axes = typeof raw === 'number' ? [raw] : raw;
  if (!Array.isArray(axes) || axes.length === 0 || axes.some((a) => typeof a !== 'number' || !Number.isInteger(a))) {
    ctx.fail(`has axis ${show(raw)}, not an integer or a list of integers.`);
  }
  const inputs = [
    x,
    bool(ctx, 'scale', true) ? ctx.weight('gamma') : '',
    bool(ctx, 'center', true) ? ctx.weight('beta') : '',
  ];
  return {
    op: 'tfjs.LayerNormalization',
    inputs,
    attrs: { axis: axes as number[], epsilon: num(ctx, 'epsilon', 1e-3) },
  };
}

function merge(op: string, exactlyTwo = false): LayerImporter {
  return (ctx) => {
    if (exactlyTwo ? ctx.inputs.length !== 2 : ctx.inputs.length < 2) {
      ctx.fail(`merges ${exactlyTwo ? 'exactly 2' : 'at least 2'} inputs, but is called on ${ctx.inputs.length}.`);
    }
    return { op, inputs: ctx.inputs };
  };
}

function pooling(op: string): LayerImporter {
  return (ctx) => {
    const pool = ints(ctx, 'pool_size', 2, [2, 2]);
    const strides = ints(ctx, 'strides', 2, pool);
    return {
      op,
      inputs: [oneInput(ctx)],
      attrs: { pool_size: pool, strides, padding: paddingOf(ctx), data_format: dataFormat(ctx) },
    };
  };
}

function globalPooling(op: string): LayerImporter {
  return (ctx) => ({
    op,
    inputs: [oneInput(ctx)],
    attrs: { data_format: dataFormat(ctx), keepdims: bool(ctx, 'keepdims', false) ? 1 : 0 },
  });
}

const identity: LayerImporter = (ctx) => ({ op: 'tfjs.Identity', inputs: [oneInput(ctx)] });

const BUILT_IN: Readonly<Record<string, LayerImporter>> = {
  Conv2D: conv2d,
  Convolution2D: conv2d,
  DepthwiseConv2D: depthwiseConv2d,
  SeparableConv2D: separableConv2d,
  SeparableConvolution2D: separableConv2d,
  Conv2DTranspose: conv2dTranspose,
  Convolution2DTranspose: conv2dTranspose,
  Dense: dense,
  Activation: (ctx) => ({ op: 'tfjs.Activation', inputs: [oneInput(ctx)], attrs: { activation: activationOf(ctx) } }),
  LeakyReLU: (ctx) => {
    // Keras 2 and tfjs-layers store `alpha` (default 0.3); Keras 3 stores `negative_slope`.
    const alpha = ctx.config.alpha ?? ctx.config.negative_slope;
    return {
      op: 'tfjs.LeakyReLU',
      inputs: [oneInput(ctx)],
      attrs: { alpha: typeof alpha === 'number' ? alpha : num(ctx, 'alpha', 0.3) },
    };
  },
  PReLU: (ctx) => ({ op: 'tfjs.PReLU', inputs: [oneInput(ctx), ctx.weight('alpha')] }),
  ReLU: (ctx) => {
    const attrs: Record<string, AttrValue> = {
      negative_slope: num(ctx, 'negative_slope', 0),
      threshold: num(ctx, 'threshold', 0),
    };
    if (ctx.config.max_value !== undefined && ctx.config.max_value !== null) attrs.max_value = num(ctx, 'max_value', 0);
    return { op: 'tfjs.ReLU', inputs: [oneInput(ctx)], attrs };
  },
  ELU: (ctx) => ({ op: 'tfjs.ELU', inputs: [oneInput(ctx)], attrs: { alpha: num(ctx, 'alpha', 1) } }),
  Softmax: (ctx) => {
    return { op: 'tfjs.Softmax', inputs: [oneInput(ctx)], attrs: { axis: singleAxis(ctx) } };
  },
  Add: merge('tfjs.Add'),
  Multiply: merge('tfjs.Multiply'),
  Subtract: merge('tfjs.Subtract', true),
  Average: merge('tfjs.Average'),
  Maximum: merge('tfjs.Maximum'),
  Minimum: merge('tfjs.Minimum'),
  Concatenate: (ctx) => {
    if (ctx.inputs.length < 2) ctx.fail(`merges at least 2 inputs, but is called on ${ctx.inputs.length}.`);
    return { op: 'tfjs.Concatenate', inputs: ctx.inputs, attrs: { axis: int(ctx, 'axis', -1) } };
  },
  UpSampling2D: (ctx) => {
    const interpolation = ctx.config.interpolation ?? 'nearest';
    if (interpolation !== 'nearest' && interpolation !== 'bilinear')
      return ctx.fail(`uses interpolation ${show(interpolation)}; only nearest and bilinear are supported.`);
    return {
      op: 'tfjs.UpSampling2D',
      inputs: [oneInput(ctx)],
      attrs: { size: ints(ctx, 'size', 2, [2, 2]), interpolation, data_format: dataFormat(ctx) },
    };
  },
  ZeroPadding2D: (ctx) => ({
    op: 'tfjs.ZeroPadding2D',
    inputs: [oneInput(ctx)],
    attrs: { padding: quad(ctx, 'padding'), data_format: dataFormat(ctx) },
  }),
  Cropping2D: (ctx) => ({
    op: 'tfjs.Cropping2D',
    inputs: [oneInput(ctx)],
    attrs: { cropping: quad(ctx, 'cropping'), data_format: dataFormat(ctx) },
  }),
  MaxPooling2D: pooling('tfjs.MaxPooling2D'),
  MaxPool2D: pooling('tfjs.MaxPooling2D'),
  AveragePooling2D: pooling('tfjs.AveragePooling2D'),
  AvgPool2D: pooling('tfjs.AveragePooling2D'),
  GlobalAveragePooling2D: globalPooling('tfjs.GlobalAveragePooling2D'),
  GlobalAvgPool2D: globalPooling('tfjs.GlobalAveragePooling2D'),
  GlobalMaxPooling2D: globalPooling('tfjs.GlobalMaxPooling2D'),
  GlobalMaxPool2D: globalPooling('tfjs.GlobalMaxPooling2D'),
  BatchNormalization: batchNorm,
  LayerNormalization: layerNorm,
  Flatten: (ctx) => ({ op: 'tfjs.Flatten', inputs: [oneInput(ctx)], attrs: { data_format: dataFormat(ctx) } }),
  Reshape: (ctx) => {
    const target = ctx.config.target_shape;
    if (
      !Array.isArray(target) ||
      target.length > LIMITS.maxRank ||
      target.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < -1)
    ) {
      ctx.fail(`has target_shape ${show(target)}, not a list of sizes.`);
    }
    return { op: 'tfjs.Reshape', inputs: [oneInput(ctx)], attrs: { target_shape: target as number[] } };
  },
  Permute: (ctx) => {
    const dims = ctx.config.dims;
    if (
      !Array.isArray(dims) ||
      dims.length > LIMITS.maxRank ||
      dims.some((d) => typeof d !== 'number' || !Number.isInteger(d))
    ) {
      ctx.fail(`has dims ${show(dims)}, not a list of axes.`);
    }
    return { op: 'tfjs.Permute', inputs: [oneInput(ctx)], attrs: { dims: dims as number[] } };
  },
  // Inference: noise and dropout layers pass their input through.
  Dropout: identity,
  SpatialDropout1D: identity,
  SpatialDropout2D: identity,
  SpatialDropout3D: identity,
  GaussianNoise: identity,
  GaussianDropout: identity,
  AlphaDropout: identity,
  ActivityRegularization: identity,
};

/** UpscalerJS multiplies by this in `MultiplyBeta` (its class ignores the saved `beta`; published models save 0.2). */
const UPSCALER_BETA = 0.2;

for (const [name, importer] of Object.entries(BUILT_IN)) registerCustomLayer(name, importer);
// UpscalerJS ESRGAN custom layers (@upscalerjs/esrgan-thick, esrgan-legacy "gans"): MultiplyBeta is x·0.2;
// PixelShuffle<n>x is tf.depthToSpace(x, n, 'NHWC').
registerCustomLayer('MultiplyBeta', (ctx) => ({
  op: 'tfjs.Scale',
  inputs: [oneInput(ctx)],
  attrs: { factor: UPSCALER_BETA },
}));
for (const scale of [2, 3, 4, 5, 6, 7, 8]) {
  registerCustomLayer(`PixelShuffle${scale}x`, (ctx) => ({
    op: 'tfjs.DepthToSpace',
    inputs: [oneInput(ctx)],
    attrs: { block_size: scale },
  }));
}

// ---------------------------------------------------------------------------------------------------------------
// Building the graph

/** Deepest nesting of models inside models. */
const MAX_MODEL_NESTING = 64;
/** Classes that are models, inlined when used as a layer. */
const MODEL_CLASSES = new Set(['Sequential', 'Functional', 'Model']);
/** Keras dtypes of inputs, as the IR labels them. */
const INPUT_DTYPES: Readonly<Record<string, string>> = { float32: 'F32', int32: 'I32', bool: 'BOOL' };

/** A reference to a layer call's output: layer name, call (node) index, tensor index. */
type Ref = readonly [string, number, number];

function refKey(ref: Ref): string {
  return `${ref[0]}\u0000${ref[1]}\u0000${ref[2]}`;
}

function parseRef(value: unknown): Ref | undefined {
  if (!Array.isArray(value) || value.length < 3) return undefined;
  const [layer, node, tensor] = value as unknown[];
  if (typeof layer !== 'string' || typeof node !== 'number' || typeof tensor !== 'number') return undefined;
  return [layer, node, tensor];
}

/** `[[name, node, tensor], …]` or one `[name, node, tensor]` (Keras 3 with a single input). */
function parseRefList(value: unknown, what: string, where: string): Ref[] {
  if (!Array.isArray(value)) throw new CheckpointFormatError(`${where}: the model's ${what} are missing.`);
  const single = parseRef(value);
  if (single !== undefined && typeof value[0] === 'string') return [single];
  const refs: Ref[] = [];
  for (const v of value) {
    const ref = parseRef(v);
    if (ref === undefined)
      throw new CheckpointFormatError(
        `${where}: the model's ${what} hold ${show(v)}, not a [layer, node, tensor] reference.`,
      );
    refs.push(ref);
  }
  return refs;
}

/** The tensor references of one inbound node: Keras 2 `[[layer, node, tensor, kwargs], …]` or Keras 3 `{args, kwargs}`. */
function inboundRefs(node: unknown, where: string, layer: string): Ref[] {
  if (Array.isArray(node)) {
    const refs: Ref[] = [];
    for (const r of node) {
      const ref = parseRef(r);
      if (ref === undefined)
        throw new CheckpointFormatError(
          `${where}: layer '${layer}' has an inbound reference ${show(r)} that is not [layer, node, tensor].`,
        );
      refs.push(ref);
    }
    return refs;
  }
  if (isRecord(node) && Array.isArray(node.args)) {
    const refs: Ref[] = [];
    const visit = (v: unknown, depth: number): void => {
      if (depth > 8) return;
      if (Array.isArray(v)) for (const x of v) visit(x, depth + 1);
      else if (isRecord(v) && v.class_name === '__keras_tensor__' && isRecord(v.config)) {
        const ref = parseRef(v.config.keras_history);
        if (ref === undefined)
          throw new CheckpointFormatError(`${where}: layer '${layer}' reads a tensor without a keras_history.`);
        refs.push(ref);
      }
    };
    visit(node.args, 0);
    return refs;
  }
  throw new CheckpointFormatError(
    `${where}: layer '${layer}' has an inbound node ${show(node)} in no known Keras format.`,
  );
}

/** Batch shape of an InputLayer (or first Sequential layer): `batch_input_shape`, `batch_shape` or `input_shape`. */
function declaredShape(config: Readonly<Record<string, unknown>>): (number | null)[] | undefined {
  const batch = config.batch_input_shape ?? config.batch_shape;
  const raw = Array.isArray(batch)
    ? batch
    : Array.isArray(config.input_shape)
      ? [null, ...(config.input_shape as unknown[])]
      : undefined;
  if (raw === undefined || raw.length > LIMITS.maxRank) return undefined;
  if (raw.some((d) => d !== null && (typeof d !== 'number' || !Number.isInteger(d) || d < 0))) return undefined;
  return raw as (number | null)[];
}

/**
 * Index of a layer's first call in the model's references. A nested model built with an input shape owns a call
 * (node) of its own, linking its inputs to its outputs, that the config leaves out; Keras and tfjs-layers still count
 * it, so such a model's first listed call is call 1.
 */
function firstCallIndex(layer: LayerSpec): number {
  if (layer.className === 'Functional' || layer.className === 'Model') return 1;
  if (layer.className !== 'Sequential') return 0;
  const raw = layer.rawConfig;
  const list: unknown[] = Array.isArray(raw) ? raw : isRecord(raw) && Array.isArray(raw.layers) ? raw.layers : [];
  const first: unknown = list[0];
  if (!isRecord(first)) return 0;
  return first.class_name === 'InputLayer' || (isRecord(first.config) && declaredShape(first.config) !== undefined)
    ? 1
    : 0;
}

interface LayerSpec {
  readonly className: string;
  readonly name: string;
  readonly config: Readonly<Record<string, unknown>>;
  /** `config` as stored (an old Sequential stores its layer list directly). */
  readonly rawConfig: unknown;
  readonly inbound: readonly unknown[];
}

function parseLayer(value: unknown, where: string, index: number): LayerSpec {
  if (!isRecord(value) || typeof value.class_name !== 'string')
    throw new CheckpointFormatError(`${where}: layer ${index + 1} of the model has no class_name.`);
  const config = isRecord(value.config) ? value.config : {};
  const name =
    typeof value.name === 'string'
      ? value.name
      : typeof config.name === 'string'
        ? config.name
        : `${value.class_name}_${index}`;
  return {
    className: value.class_name,
    name,
    config,
    rawConfig: value.config,
    inbound: Array.isArray(value.inbound_nodes) ? value.inbound_nodes : [],
  };
}

class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly initializers = new Map<string, InitializerInfo>();
  private readonly used = new Set<string>();
  /** Values a node may read: graph inputs, initializers and earlier nodes' outputs. */
  private readonly available = new Set<string>();

  constructor(
    private readonly where: string,
    /** Weights by the reader's names, with the manifest dtype where known. */
    private readonly entries: ReadonlyMap<string, { readonly shape: readonly number[]; readonly dtype: string }>,
    private readonly signal: AbortSignal | undefined,
  ) {
    for (const name of entries.keys()) this.used.add(name);
  }

  /** `base`, or `base#k` when taken (a value never shadows a weight or another value). */
  fresh(base: string): string {
    let name = base;
    for (let k = 2; this.used.has(name); k++) name = `${base}#${k}`;
    this.used.add(name);
    return name;
  }

  /** Imports a model (top level: `bound` undefined, its inputs become graph inputs) and returns its output values. */
  model(className: string, config: unknown, scope: readonly string[], bound: readonly string[] | undefined): string[] {
    if (scope.length > MAX_MODEL_NESTING)
      throw new CheckpointFormatError(`${this.where} nests models more than ${MAX_MODEL_NESTING} deep.`);
    if (className === 'Sequential') return this.sequential(config, scope, bound);
    if (className === 'Functional' || className === 'Model') return this.functional(config, scope, bound);
    throw new CheckpointFormatError(
      `${this.where}: the model class ${JSON.stringify(className)} is not Sequential or Functional, so it is not a TF.js LayersModel.`,
    );
  }

  private sequential(config: unknown, scope: readonly string[], bound: readonly string[] | undefined): string[] {
    const list = Array.isArray(config)
      ? config
      : isRecord(config) && Array.isArray(config.layers)
        ? config.layers
        : undefined;
    if (list === undefined) throw new CheckpointFormatError(`${this.where}: a Sequential model has no "layers" list.`);
    if (list.length > LIMITS.maxTensors)
      throw new CheckpointFormatError(`${this.where}: a model has more than ${LIMITS.maxTensors} layers.`);
    const layers = list.map((l, i) => parseLayer(l, this.where, i));
    const first = layers[0];
    if (first === undefined) throw new CheckpointFormatError(`${this.where}: a Sequential model has no layers.`);
    let current: string;
    let start = 0;
    if (first.className === 'InputLayer') start = 1;
    if (bound !== undefined) {
      const [x] = bound;
      if (bound.length !== 1 || x === undefined)
        throw new CheckpointFormatError(
          `${this.where}: nested Sequential model '${scope.join('/')}' is called on ${bound.length} inputs instead of 1.`,
        );
      current = x;
    } else {
      const shape = declaredShape(first.config);
      if (shape === undefined)
        throw new CheckpointFormatError(
          `${this.where}: the first layer '${first.name}' of the Sequential model declares no input shape.`,
        );
      const name = first.className === 'InputLayer' ? first.name : `${first.name}_input`;
      current = this.graphInput(name, shape, first.config.dtype);
    }
    for (const layer of layers.slice(start)) {
      if (layer.className === 'InputLayer')
        throw new CheckpointFormatError(
          `${this.where}: the Sequential model has an InputLayer '${layer.name}' after its first layer.`,
        );
      const [out] = this.call(layer, [current], scope, 0);
      if (out === undefined)
        throw new CheckpointFormatError(`${this.where}: layer '${layer.name}' produces no output.`);
      current = out;
    }
    return [current];
  }

  private functional(config: unknown, scope: readonly string[], bound: readonly string[] | undefined): string[] {
    if (!isRecord(config) || !Array.isArray(config.layers))
      throw new CheckpointFormatError(`${this.where}: a Functional model has no "layers" list.`);
    if (config.layers.length > LIMITS.maxTensors)
      throw new CheckpointFormatError(`${this.where}: a model has more than ${LIMITS.maxTensors} layers.`);
    const layers = config.layers.map((l, i) => parseLayer(l, this.where, i));
    const byName = new Map<string, LayerSpec>();
    for (const l of layers) {
      if (byName.has(l.name))
        throw new CheckpointFormatError(`${this.where}: two layers of the model are named '${l.name}'.`);
      byName.set(l.name, l);
    }
    const produced = new Map<string, string>();
    const inputRefs = parseRefList(config.input_layers, 'input_layers', this.where);
    if (bound !== undefined && bound.length !== inputRefs.length) {
      throw new CheckpointFormatError(
        `${this.where}: nested model '${scope.join('/')}' takes ${inputRefs.length} inputs but is called on ${bound.length}.`,
      );
    }
    inputRefs.forEach((ref, i) => {
      const layer = byName.get(ref[0]);
      if (layer?.className !== 'InputLayer')
        throw new CheckpointFormatError(
          `${this.where}: the model input '${ref[0]}' is not an InputLayer of the model.`,
        );
      let value = bound?.[i];
      if (value === undefined) {
        const shape = declaredShape(layer.config);
        if (shape === undefined)
          throw new CheckpointFormatError(`${this.where}: InputLayer '${layer.name}' declares no batch_input_shape.`);
        value = this.graphInput(layer.name, shape, layer.config.dtype);
      }
      produced.set(refKey([ref[0], 0, 0]), value);
    });

    // Kahn's algorithm over layer calls: a call runs once every tensor it reads is produced.
    interface Call {
      readonly layer: LayerSpec;
      readonly index: number;
      readonly refs: readonly Ref[];
      missing: number;
    }
    const waiting = new Map<string, Call[]>();
    const ready: Call[] = [];
    let pending = 0;
    for (const layer of layers) {
      if (layer.className === 'InputLayer') continue;
      const offset = firstCallIndex(layer);
      layer.inbound.forEach((node, position) => {
        const refs = inboundRefs(node, this.where, layer.name);
        const call: Call = { layer, index: position + offset, refs, missing: 0 };
        for (const ref of refs) {
          if (produced.has(refKey(ref))) continue;
          call.missing++;
          const list = waiting.get(refKey(ref)) ?? [];
          list.push(call);
          waiting.set(refKey(ref), list);
        }
        pending++;
        if (call.missing === 0) ready.push(call);
      });
    }
    for (let call = ready.shift(); call !== undefined; call = ready.shift()) {
      throwIfAborted(this.signal);
      pending--;
      const inputs = call.refs.map((r) => produced.get(refKey(r)) ?? '');
      const outs = this.call(call.layer, inputs, scope, call.index);
      outs.forEach((value, k) => {
        const key = refKey([call.layer.name, call.index, k]);
        produced.set(key, value);
        for (const waiter of waiting.get(key) ?? []) if (--waiter.missing === 0) ready.push(waiter);
        waiting.delete(key);
      });
    }
    if (pending > 0) {
      const [key] = waiting.keys();
      const [layer, node, tensor] = (key ?? '?').split('\u0000');
      const reader = key !== undefined ? waiting.get(key)?.[0]?.layer.name : undefined;
      throw new CheckpointFormatError(
        `${this.where}: layer '${reader ?? '?'}' reads output ${tensor ?? '?'} of call ${node ?? '?'} of '${layer ?? '?'}', which the model never computes (or the layers form a cycle).`,
      );
    }
    return parseRefList(config.output_layers, 'output_layers', this.where).map((ref) => {
      const value = produced.get(refKey(ref));
      if (value === undefined)
        throw new CheckpointFormatError(
          `${this.where}: the model output '${ref[0]}' (call ${ref[1]}, output ${ref[2]}) is never computed.`,
        );
      return value;
    });
  }

  private graphInput(name: string, shape: (number | null)[], dtype: unknown): string {
    const value = this.fresh(name);
    this.available.add(value);
    this.inputs.push({ name: value, dtype: typeof dtype === 'string' ? (INPUT_DTYPES[dtype] ?? dtype) : 'F32', shape });
    return value;
  }

  /** Emits one call of `layer` on `inputs`; returns its output values. */
  private call(layer: LayerSpec, inputs: readonly string[], scope: readonly string[], index: number): string[] {
    const qualified = [...scope, layer.name].join('/');
    if (MODEL_CLASSES.has(layer.className))
      return this.model(layer.className, layer.rawConfig, [...scope, layer.name], inputs);
    const fail = (message: string): never => {
      throw new CheckpointFormatError(`${this.where}: layer '${qualified}' (${layer.className}) ${message}`);
    };
    if (layer.className === 'Lambda') {
      fail('is not supported: a Lambda layer wraps Python code, which model.json does not carry.');
    }
    const importer = IMPORTERS.get(layer.className);
    if (importer === undefined) {
      throw new CheckpointFormatError(
        `${this.where}: TF.js layer class '${layer.className}' (layer '${qualified}') is not supported; supported: ${supportedLayerClasses().join(', ')}.`,
      );
    }
    const nodeName = index > 0 ? `${qualified}:${index}` : qualified;
    const output = this.fresh(nodeName);
    const ctx: LayerImportContext = {
      className: layer.className,
      layerName: qualified,
      config: layer.config,
      inputs,
      output,
      weight: (name, shape) => this.weight(layer.name, scope, name, shape, fail),
      temp: (suffix) => this.fresh(`${nodeName}/${suffix}`),
      fail,
    };
    const result = importer(ctx);
    const specs: readonly LayerNodeSpec[] = Array.isArray(result) ? result : [result as LayerNodeSpec];
    if (specs.length === 0) fail('was imported as no operation.');
    specs.forEach((spec, i) => {
      if (!SUPPORTED_OPS.has(spec.op))
        fail(`was imported as operator ${spec.op}, which the graph executor does not implement.`);
      const unknown = spec.inputs.find((v) => v !== '' && !this.available.has(v));
      if (unknown !== undefined)
        fail(
          `was imported as a node reading ${JSON.stringify(unknown)}, which no input, weight or earlier node provides.`,
        );
      const outputs = spec.outputs ?? [output];
      for (const o of outputs) this.available.add(o);
      this.nodes.push({
        op: spec.op,
        name: specs.length > 1 ? `${nodeName}#${i + 1}` : nodeName,
        inputs: spec.inputs.slice(),
        outputs: outputs.slice(),
        attrs: { ...(spec.attrs ?? {}) },
      });
    });
    if (!specs.some((s) => (s.outputs ?? [output]).includes(output)))
      fail(`was imported without producing its output ${JSON.stringify(output)}.`);
    return [output];
  }

  /** Finds the manifest weight `<layer>/<short>` (see `LayerImportContext.weight`) and records it as an initializer. */
  private weight(
    layer: string,
    scope: readonly string[],
    short: string,
    shape: readonly (number | null)[] | undefined,
    fail: (m: string) => never,
  ): string {
    const exact = `${layer}/${short}`;
    const candidates = [exact, [...scope, layer, short].join('/')];
    let name = candidates.find((c) => this.entries.has(c));
    if (name === undefined) {
      // Prefixed by an enclosing model (`model/layer/kernel`), or with one extra scope (`layer/cell/kernel`), the two
      // forms tfjs-layers also accepts.
      const depth = layer.split('/').length;
      const matches = [...this.entries.keys()].filter((n) => {
        if (n.endsWith(`/${exact}`)) return true;
        const parts = n.split('/');
        return parts.length === depth + 2 && n.startsWith(`${layer}/`) && parts[parts.length - 1] === short;
      });
      if (matches.length > 1)
        fail(`needs weight '${exact}', which several manifest weights could be: ${matches.slice(0, 5).join(', ')}.`);
      name = matches[0];
    }
    if (name === undefined) return fail(`needs weight '${exact}', which the weights manifest does not list.`);
    const entry = this.entries.get(name);
    if (entry === undefined) return fail(`needs weight '${exact}', which the weights manifest does not list.`);
    if (
      shape !== undefined &&
      (entry.shape.length !== shape.length || shape.some((d, i) => d !== null && d !== entry.shape[i]))
    ) {
      fail(
        `expects weight '${name}' of shape [${shape.map((d) => d ?? '?').join(', ')}], but the manifest gives [${entry.shape.join(', ')}].`,
      );
    }
    this.initializers.set(name, { dtype: entry.dtype, shape: entry.shape.slice() });
    this.available.add(name);
    return name;
  }
}

/** Manifest dtypes (`float32` → `F32`…) of the weights, by manifest name; quantised weights keep their original type. */
function manifestDtypes(doc: Record<string, unknown>): Map<string, string> {
  const out = new Map<string, string>();
  const groups = Array.isArray(doc.weightsManifest) ? doc.weightsManifest : [];
  for (const g of groups) {
    if (!isRecord(g) || !Array.isArray(g.weights)) continue;
    for (const w of g.weights) {
      if (!isRecord(w) || typeof w.name !== 'string' || out.has(w.name)) continue;
      const original =
        isRecord(w.quantization) && typeof w.quantization.original_dtype === 'string'
          ? w.quantization.original_dtype
          : w.dtype;
      if (typeof original === 'string') out.set(w.name, INPUT_DTYPES[original] ?? original);
    }
  }
  return out;
}

/**
 * Imports the TF.js LayersModel in `source` (a model.json): its graph and the float32 values of the weights the graph
 * uses. Shards are read through `context.siblings`. Takes ownership of `source` and closes it. Throws
 * `CheckpointFormatError` for a malformed model, a GraphModel, or a layer class that is not supported.
 */
export async function importLayersModel(
  source: ByteSource,
  context: OpenContext,
  options?: LayersImportOptions,
): Promise<LayersModelImport> {
  const where = source.name;
  let owned = true;
  try {
    const bytes = await readAllBytes(source, LIMITS.maxHeaderBytes);
    let doc: unknown;
    try {
      doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch {
      throw new CheckpointFormatError(`${where} is not a TF.js model.json: it is not valid UTF-8 JSON.`);
    }
    if (!isRecord(doc) || !isRecord(doc.modelTopology))
      throw new CheckpointFormatError(`${where} is not a TF.js LayersModel: it has no "modelTopology".`);
    const topology = doc.modelTopology;
    if (doc.format === 'graph-model' || Array.isArray(topology.node)) {
      throw new CheckpointFormatError(
        `${where} is a TF.js GraphModel, which cannot be run; only LayersModels (Keras topologies) and ONNX models can.`,
      );
    }
    const modelConfig = isRecord(topology.model_config) ? topology.model_config : topology;
    if (typeof modelConfig.class_name !== 'string')
      throw new CheckpointFormatError(`${where}: the model topology has no class_name.`);

    const checkpoint = await tfjsFormat.open(source, context);
    owned = false; // the checkpoint owns the source now
    try {
      const dtypes = manifestDtypes(doc);
      const byName = new Map<string, TensorEntry>(checkpoint.tensors.map((t) => [t.name, t]));
      const entries = new Map(
        [...byName].map(([name, t]) => [name, { shape: t.shape, dtype: dtypes.get(name) ?? t.dtype }]),
      );
      const builder = new GraphBuilder(where, entries, options?.signal);
      const outputs = builder.model(modelConfig.class_name, modelConfig.config, [], undefined);
      const weights = new Map<string, Float32Array>();
      for (const name of builder.initializers.keys()) {
        throwIfAborted(options?.signal);
        const entry = byName.get(name);
        if (entry === undefined)
          throw new CheckpointFormatError(`${where}: the values of ${JSON.stringify(name)} could not be found.`);
        weights.set(name, await readTensorValues(entry, options?.signal ? { signal: options.signal } : {}));
      }
      // The IR's default-domain opset: LayersModel graphs use tfjs.* operators, but an importer may emit ONNX ones.
      const graph: Graph = {
        inputs: builder.inputs,
        outputs,
        nodes: builder.nodes,
        initializers: builder.initializers,
        opset: 17,
      };
      return { graph, weights };
    } finally {
      await checkpoint.close();
    }
  } finally {
    if (owned) await source.close();
  }
}

/** Imports the TF.js LayersModel at `path` (a model.json; see `importLayersModel`), reading shards from its folder. */
export async function loadLayersModel(path: string, options?: LayersImportOptions): Promise<LayersModelImport> {
  const source = await FileByteSource.open(path);
  return importLayersModel(
    source,
    { path, siblings: siblingOpenerFor(path), ...(options?.signal ? { signal: options.signal } : {}) },
    options,
  );
}
