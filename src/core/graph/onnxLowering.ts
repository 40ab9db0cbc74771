/**
 * Lowering of the graph IR (`ir.ts`) to ONNX, for onnxruntime: default-domain ONNX nodes are re-emitted as they are
 * (attributes re-typed from the ONNX operator schemas), and each TF.js layers operator (`tfjs.*`, `layersOps.ts`)
 * gets its ONNX form computing what the tfjs operator computes. Activations stay in the model's own layout (NHWC for
 * Keras); each convolution, pooling, resize and depth-to-space is wrapped in Transposes to and from NCHW, which
 * onnxruntime's transpose optimiser cancels between neighbouring operators. Kernels keep their stored Keras layouts
 * (HWIO…) and are transposed inside the graph, so weights bind by their own names and shapes; onnxruntime folds those
 * Transposes when the weight is an initializer.
 *
 * Each weight (`isWeight` initializer) becomes either a float32 graph input fed per run or an initializer of given
 * values, as `onnxRebind.ts` does for ONNX files; other initializers (shapes, indices, operator constants) are
 * written with their own element types. An operator with no ONNX form makes the lowering return a refusal naming the
 * operator and the node instead of a model.
 *
 * `lowerGraphNodes` returns the encoded pieces (nodes, initializers, inputs, outputs, the value names in use), so
 * another graph (a training step's backward nodes) can be appended to the forward pass; `lowerGraph` wraps them into
 * a ModelProto.
 */
import {
  floatTensorProto,
  int64TensorProto,
  modelProto,
  nodeEmitter,
  ONNX_FLOAT,
  tensorProto,
  valueInfoProto,
  type NodeAttr,
  type NodeEmitter,
} from '../backend/onnxGraph';
import { BadInputError } from '../io/errors';
import { ownValue } from '../io/text';
import { FLOAT32_FEED_SUFFIX } from './onnxRebind';
import {
  attrFloat,
  attrInt,
  attrInts,
  attrString,
  isWeight,
  type AttrTensor,
  type AttrValue,
  type Graph,
  type Node,
} from './ir';

/** Options of the lowering. */
export interface LoweringOptions {
  /**
   * Weights (floating-point initializers) that become float32 graph inputs, fed per run; every other initializer
   * is written with its values from the weights map.
   */
  readonly weightsAsInputs?: readonly string[];
  /** Prefix of the lowered nodes' names (default `fwd`): `<prefix>0`, `<prefix>1`, … */
  readonly nodePrefix?: string;
}

/** A weight the lowered graph takes as an input. */
export interface LoweredWeightInput {
  /** The weight's name in the IR graph (the value the lowered nodes read). */
  readonly name: string;
  /** The float32 graph input that feeds it: `name`, or `name::f32` when a Cast restores its stored type. */
  readonly feed: string;
  readonly shape: readonly number[];
}

/** The lowered forward pass, as encoded ONNX pieces. */
export interface LoweredNodes {
  /** NodeProtos in topological order (the IR graph's, with the lowerings' extra nodes in place). */
  readonly nodes: Uint8Array[];
  /** TensorProtos of every initializer not taken as an input, and of the lowerings' constants. */
  readonly inits: Uint8Array[];
  /** ValueInfoProtos of the graph inputs: the IR graph's inputs (its order), then the weight inputs (given order). */
  readonly inputs: Uint8Array[];
  /** ValueInfoProtos of the IR graph's outputs, in order (element type left to onnxruntime's inference). */
  readonly outputs: Uint8Array[];
  /** The weights taken as inputs, in the order given. */
  readonly weightInputs: readonly LoweredWeightInput[];
  /**
   * Every value name the pieces use (inputs, initializers, node outputs): IR values keep their IR names, so a graph
   * appended to these pieces reads the forward values by those names and must pick new names outside this set.
   */
  readonly valueNames: ReadonlySet<string>;
  /** Default-domain operator-set version the nodes are written for (the IR graph's). */
  readonly opset: number;
}

/** Why a graph has no ONNX form: the first operator that has none, and the node that uses it. */
export interface LoweringRefusal {
  /** `layer` in a TF.js LayersModel graph (its nodes are its layers), `node` in an ONNX one. */
  readonly kind: 'layer' | 'node';
  readonly op: string;
  /** The node's name (a TF.js layer's qualified name for `tfjs.*` nodes). */
  readonly node: string;
  /** What is missing, one clause ("opset 17 has no Gelu"). */
  readonly detail: string;
}

/** A lowering's outcome: the pieces, or the refusal. */
export type LoweringResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly refusal: LoweringRefusal };

/** A lowered model: ModelProto bytes ready for `InferenceSession.create`, and the weights it takes as inputs. */
export interface LoweredModel {
  readonly bytes: Uint8Array;
  readonly weightInputs: readonly LoweredWeightInput[];
}

/** A refusal as a clause: `layer "X" (op Y): …` in a TF.js LayersModel, `node "X" (op Y): …` in an ONNX graph. */
export function describeRefusal(r: LoweringRefusal): string {
  return `${r.kind} ${JSON.stringify(r.node)} (op ${r.op}): ${r.detail}`;
}

class Refused extends Error {
  constructor(readonly refusal: Omit<LoweringRefusal, 'kind'>) {
    super(refusal.detail);
  }
}

/** ONNX TensorProto.DataType codes of the IR's dtype labels. */
const TYPE_CODES: ReadonlyMap<string, number> = new Map([
  ['F32', 1],
  ['U8', 2],
  ['I8', 3],
  ['U16', 4],
  ['I16', 5],
  ['I32', 6],
  ['I64', 7],
  ['BOOL', 9],
  ['F16', 10],
  ['F64', 11],
  ['U32', 12],
  ['U64', 13],
  ['BF16', 16],
]);

/** Float-typed attributes of default-domain operators, by operator (ONNX schemas); every other number is an INT. */
const FLOAT_ATTRS: Readonly<Record<string, readonly string[]>> = {
  BatchNormalization: ['epsilon', 'momentum'],
  InstanceNormalization: ['epsilon'],
  LayerNormalization: ['epsilon'],
  Gemm: ['alpha', 'beta'],
  LeakyRelu: ['alpha'],
  Elu: ['alpha'],
  Selu: ['alpha', 'gamma'],
  HardSigmoid: ['alpha', 'beta'],
  Clip: ['min', 'max'],
  Dropout: ['ratio'],
  Pad: ['value'],
  Resize: ['cubic_coeff_a', 'extrapolation_value'],
  Constant: ['value_float', 'value_floats'],
};

/** Default-domain operators newer than some operator sets: the version that introduced them. */
const INTRODUCED_IN: Readonly<Record<string, number>> = { HardSwish: 14, LayerNormalization: 17, Gelu: 20 };

/** Value ranges of the integer element types (the weights map holds every initializer as float32). */
const INT_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  U8: [0, 255],
  I8: [-128, 127],
  U16: [0, 65535],
  I16: [-32768, 32767],
  I32: [-2147483648, 2147483647],
  U32: [0, 4294967295],
};

/** Row-major little-endian bytes of `values` as element type `dtype`, or undefined for a type not written here. */
function encodeValues(dtype: string, values: ArrayLike<number>): Uint8Array | undefined {
  const n = values.length;
  const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (dtype) {
    case 'F32':
      return bytes(Float32Array.from(values));
    case 'F64':
      return bytes(Float64Array.from(values));
    case 'BOOL':
      return Uint8Array.from(values, (v) => (v !== 0 ? 1 : 0));
    case 'I64':
    case 'U64': {
      // Float32 rounds INT64_MAX (Slice's "to the end") up to 2^63; it is clamped back into range.
      const [lo, hi] = dtype === 'I64' ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
      const out = dtype === 'I64' ? new BigInt64Array(n) : new BigUint64Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i] ?? 0;
        const b = Number.isFinite(v) ? BigInt(Math.round(v)) : v > 0 ? hi : lo;
        out[i] = b < lo ? lo : b > hi ? hi : b;
      }
      return bytes(out);
    }
    default: {
      const range = ownValue(INT_RANGES, dtype);
      if (range === undefined) return undefined;
      const clamped = Array.from(values, (v) => Math.min(range[1], Math.max(range[0], Math.round(v))));
      const arrays: Record<string, (v: number[]) => ArrayBufferView> = {
        U8: (v) => Uint8Array.from(v),
        I8: (v) => Int8Array.from(v),
        U16: (v) => Uint16Array.from(v),
        I16: (v) => Int16Array.from(v),
        I32: (v) => Int32Array.from(v),
        U32: (v) => Uint32Array.from(v),
      };
      const make = ownValue(arrays, dtype);
      return make === undefined ? undefined : bytes(make(clamped));
    }
  }
}

/** What one lowering function works with. */
class Lowerer {
  readonly nodes: Uint8Array[] = [];
  readonly inits: Uint8Array[] = [];
  readonly names = new Set<string>();
  /** Known ranks of values (graph inputs, `tfjs.*` results); absent where unknown. */
  readonly ranks = new Map<string, number>();
  readonly emit: NodeEmitter;
  private counter = 0;

  constructor(
    readonly graph: Graph,
    prefix: string,
  ) {
    this.emit = nodeEmitter(this.nodes, prefix);
    for (const i of graph.inputs) this.names.add(i.name);
    for (const name of graph.initializers.keys()) this.names.add(name);
    for (const n of graph.nodes) for (const o of n.outputs) this.names.add(o);
  }

  /** A new value name derived from `base`, unused by the graph. */
  temp(base: string): string {
    let name = `${base}::${this.counter++}`;
    while (this.names.has(name)) name = `${base}::${this.counter++}`;
    this.names.add(name);
    return name;
  }

  /** A float32 constant initializer. */
  constF(node: Node, values: readonly number[], dims: readonly number[] = []): string {
    const name = this.temp(`${node.name}/const`);
    this.inits.push(floatTensorProto(name, dims, Float32Array.from(values)));
    return name;
  }

  /** An int64 constant initializer (a 1-D list unless `dims` say otherwise). */
  constI64(node: Node, values: readonly number[], dims: readonly number[] = [values.length]): string {
    const name = this.temp(`${node.name}/const`);
    this.inits.push(int64TensorProto(name, dims, values));
    return name;
  }

  /** Emits `op` on `ins` into a fresh value (or `out`), returning its name. */
  op(node: Node, op: string, ins: string[], attrs: NodeAttr[] = [], out?: string): string {
    const y = out ?? this.temp(`${node.name}/${op}`);
    this.emit(op, ins, [y], attrs);
    return y;
  }
}

function refuse(node: Node, detail: string): never {
  throw new Refused({ op: node.op, node: node.name, detail });
}

/**
 * An IR attribute of `node` as an ONNX NodeAttr, typed from the operator's schema (the IR keeps numbers untyped).
 * Throws for a tensor attribute of an element type not written here (a refusal, which `lowerGraphNodes` returns).
 */
export function onnxAttr(node: Node, name: string, value: AttrValue): NodeAttr {
  const floats = FLOAT_ATTRS[node.op]?.includes(name) === true;
  if (typeof value === 'number') return floats || !Number.isInteger(value) ? { name, f: value } : { name, i: value };
  if (typeof value === 'string') return { name, s: value };
  if (Array.isArray(value)) {
    const list = value as readonly (number | string)[];
    if (list.length > 0 && typeof list[0] === 'string') return { name, strings: list as readonly string[] };
    const nums = list as readonly number[];
    return floats || nums.some((v) => !Number.isInteger(v)) ? { name, floats: nums } : { name, ints: nums };
  }
  const t = value as AttrTensor;
  const code = TYPE_CODES.get(t.dtype);
  const raw = code === undefined ? undefined : encodeValues(t.dtype, t.values);
  if (code === undefined || raw === undefined)
    refuse(node, `its ${name} attribute is a ${t.dtype} tensor, which is not written to ONNX here`);
  return { name, t: tensorProto('', t.shape, code, raw) };
}

/** Re-emits a default-domain ONNX node as it is. */
function lowerOnnxNode(l: Lowerer, node: Node): void {
  if (node.op.includes('.')) refuse(node, 'the operator has no ONNX form yet');
  const since = ownValue(INTRODUCED_IN, node.op);
  if (since !== undefined && l.graph.opset < since)
    refuse(node, `ONNX opset ${l.graph.opset} has no ${node.op} (it came in opset ${since})`);
  const attrs = Object.entries(node.attrs).map(([k, v]) => onnxAttr(node, k, v));
  l.emit(node.op, [...node.inputs], [...node.outputs], attrs);
}

// ---------------------------------------------------------------------------------------------------------------
// TF.js layers operators

/** Inputs of a node that are present (merges), refusing none. */
function present(node: Node): string[] {
  const xs = node.inputs.filter((v) => v !== '');
  if (xs.length === 0) refuse(node, 'it has no inputs');
  return xs;
}

function in0(node: Node): string {
  const x = node.inputs[0];
  if (x === undefined || x === '') refuse(node, 'its input is missing');
  return x;
}

function out0(node: Node): string {
  const y = node.outputs[0];
  if (y === undefined || y === '') refuse(node, 'it has no output');
  return y;
}

function channelsFirst(node: Node): boolean {
  return attrString(node, 'data_format', 'channels_last') === 'channels_first';
}

function pairAttr(node: Node, name: string, fallback: [number, number]): [number, number] {
  const v = attrInts(node, name);
  if (v === undefined) return fallback;
  if (v.length !== 2) refuse(node, `${name} should hold 2 values`);
  return [v[0] ?? fallback[0], v[1] ?? fallback[1]];
}

/** The padding attrs of a TF-style window op: TF's 'same' puts the odd pixel at the end, as ONNX SAME_UPPER. */
function padAttr(node: Node): NodeAttr {
  const p = attrString(node, 'padding', 'valid');
  if (p !== 'same' && p !== 'valid') refuse(node, `padding ${JSON.stringify(p)} has no ONNX form`);
  return { name: 'auto_pad', s: p === 'same' ? 'SAME_UPPER' : 'VALID' };
}

/** The node's 4-D input in NCHW: transposed from NHWC unless the layer is channels_first. */
function toNchw(l: Lowerer, node: Node, x: string): string {
  return channelsFirst(node) ? x : l.op(node, 'Transpose', [x], [{ name: 'perm', ints: [0, 3, 1, 2] }]);
}

/** An NCHW result back in the layer's layout, into `out` when given. */
function fromNchw(l: Lowerer, node: Node, y: string, out?: string): string {
  if (channelsFirst(node)) return out === undefined ? y : l.op(node, 'Identity', [y], [], out);
  return l.op(node, 'Transpose', [y], [{ name: 'perm', ints: [0, 2, 3, 1] }], out);
}

/** Shape of an initializer the node reads as input `i` (kernels): refuses a kernel computed by the graph. */
function kernelShape(l: Lowerer, node: Node, i: number): readonly number[] {
  const name = node.inputs[i] ?? '';
  const info = l.graph.initializers.get(name);
  if (info === undefined) refuse(node, `its kernel ${JSON.stringify(name)} is not a weight of the model`);
  return info.shape;
}

/** Applies a Keras activation by name to `x`, into `out` (or a fresh value); returns the result's name. */
function activation(l: Lowerer, node: Node, name: string, x: string, out?: string): string {
  const c = (v: number): string => l.constF(node, [v]);
  const un = (op: string, attrs: NodeAttr[] = []): string => l.op(node, op, [x], attrs, out);
  switch (name) {
    case 'linear':
      return out === undefined ? x : l.op(node, 'Identity', [x], [], out);
    case 'relu':
      return un('Relu');
    case 'relu6':
      return l.op(node, 'Clip', [x, c(0), c(6)], [], out);
    case 'elu':
      return un('Elu', [{ name: 'alpha', f: 1 }]);
    case 'selu':
      return un('Selu');
    case 'sigmoid':
      return un('Sigmoid');
    case 'hard_sigmoid':
      return un('HardSigmoid', [
        { name: 'alpha', f: 0.2 },
        { name: 'beta', f: 0.5 },
      ]);
    case 'tanh':
      return un('Tanh');
    case 'softmax':
      return un('Softmax', [{ name: 'axis', i: -1 }]);
    case 'log_softmax':
      return un('LogSoftmax', [{ name: 'axis', i: -1 }]);
    case 'softplus':
      return un('Softplus');
    case 'softsign':
      return un('Softsign');
    case 'swish':
      return l.op(node, 'Mul', [l.op(node, 'Sigmoid', [x]), x], [], out);
    case 'gelu': {
      const erf = l.op(node, 'Erf', [l.op(node, 'Div', [x, c(Math.SQRT2)])]);
      const half = l.op(node, 'Mul', [c(0.5), l.op(node, 'Add', [c(1), erf])]);
      return l.op(node, 'Mul', [x, half], [], out);
    }
    case 'gelu_new': {
      const cube = l.op(node, 'Mul', [c(0.044715), l.op(node, 'Pow', [x, c(3)])]);
      const inner = l.op(node, 'Mul', [c(Math.sqrt(2 / Math.PI)), l.op(node, 'Add', [x, cube])]);
      const t = l.op(node, 'Add', [c(1), l.op(node, 'Tanh', [inner])]);
      return l.op(node, 'Mul', [c(0.5), l.op(node, 'Mul', [x, t])], [], out);
    }
    case 'mish':
      return l.op(node, 'Mul', [x, l.op(node, 'Tanh', [l.op(node, 'Softplus', [x])])], [], out);
    case 'leaky_relu':
      return un('LeakyRelu', [{ name: 'alpha', f: 0.2 }]);
    case 'exponential':
      return un('Exp');
    default:
      return refuse(node, `activation ${JSON.stringify(name)} has no ONNX form yet`);
  }
}

/** A convolution result (NCHW) with the node's activation, back in the layer's layout as the node's output. */
function finishConv(l: Lowerer, node: Node, y: string): void {
  const act = attrString(node, 'activation', 'linear');
  if (channelsFirst(node)) {
    activation(l, node, act, y, out0(node));
    return;
  }
  activation(l, node, act, fromNchw(l, node, y), out0(node));
}

/** A kernel [kh, kw, a, b] transposed to [b, a, kh, kw] (ONNX OIHW from Keras HWIO). */
function hwioToOihw(l: Lowerer, node: Node, kernel: string): string {
  return l.op(node, 'Transpose', [kernel], [{ name: 'perm', ints: [3, 2, 0, 1] }]);
}

/** Optional bias input `i`, as a list of 0 or 1 names. */
function biasOf(node: Node, i: number): string[] {
  const b = node.inputs[i];
  return b === undefined || b === '' ? [] : [b];
}

/**
 * Strides, dilations and padding of a convolution whose kernel is input 1. A dilated 'same' convolution (stride 1,
 * as Keras requires) gets explicit pads of the dilated extent, (k − 1)·d, the odd pixel at the end: onnxruntime
 * refuses SAME_UPPER with dilations.
 */
function convAttrs(l: Lowerer, node: Node): NodeAttr[] {
  const strides = pairAttr(node, 'strides', [1, 1]);
  const dilations = pairAttr(node, 'dilation_rate', [1, 1]);
  const pad = padAttr(node);
  const attrs: NodeAttr[] = [
    { name: 'strides', ints: strides },
    { name: 'dilations', ints: dilations },
  ];
  if (pad.s !== 'SAME_UPPER' || dilations.every((d) => d === 1)) return [...attrs, pad];
  if (strides.some((s) => s !== 1)) refuse(node, "a dilated 'same' convolution with strides has no ONNX form");
  const [kh = 1, kw = 1] = kernelShape(l, node, 1);
  const total = [kh, kw].map((k, i) => (k - 1) * (dilations[i] ?? 1));
  const begin = total.map((t) => Math.floor(t / 2));
  return [...attrs, { name: 'pads', ints: [...begin, ...total.map((t, i) => t - (begin[i] ?? 0))] }];
}

/** A depthwise convolution (NCHW in and out): a grouped Conv whose kernel [kh, kw, c, m] becomes [c·m, 1, kh, kw]. */
function depthwise(l: Lowerer, node: Node, x: string, bias: string[]): string {
  const [kh = 0, kw = 0, c = 0, m = 0] = kernelShape(l, node, 1);
  const kernel = node.inputs[1] ?? '';
  const flat = l.op(node, 'Reshape', [kernel, l.constI64(node, [kh, kw, 1, c * m])]);
  return l.op(node, 'Conv', [x, hwioToOihw(l, node, flat), ...bias], [...convAttrs(l, node), { name: 'group', i: c }]);
}

function lowerConv2d(l: Lowerer, node: Node): void {
  const x = toNchw(l, node, in0(node));
  const w = hwioToOihw(l, node, node.inputs[1] ?? refuse(node, 'its kernel is missing'));
  finishConv(l, node, l.op(node, 'Conv', [x, w, ...biasOf(node, 2)], convAttrs(l, node)));
}

function lowerDepthwise(l: Lowerer, node: Node): void {
  finishConv(l, node, depthwise(l, node, toNchw(l, node, in0(node)), biasOf(node, 2)));
}

function lowerSeparable(l: Lowerer, node: Node): void {
  const y = depthwise(l, node, toNchw(l, node, in0(node)), []);
  const pw = hwioToOihw(l, node, node.inputs[2] ?? refuse(node, 'its pointwise kernel is missing'));
  finishConv(l, node, l.op(node, 'Conv', [y, pw, ...biasOf(node, 3)]));
}

function lowerConvTranspose(l: Lowerer, node: Node): void {
  const [kh = 1, kw = 1] = kernelShape(l, node, 1);
  const strides = pairAttr(node, 'strides', [1, 1]);
  const same = padAttr(node).s === 'SAME_UPPER';
  // TF's transposed convolution is the gradient of a convolution of its output: 'same' crops max(k − s, 0) pixels
  // (the odd one at the end), and a kernel smaller than the stride leaves s − k output pixels beyond the last tap.
  const begin: number[] = [];
  const end: number[] = [];
  const outPad: number[] = [];
  [kh, kw].forEach((k, i) => {
    const s = strides[i] ?? 1;
    const total = same ? Math.max(k - s, 0) : 0;
    begin.push(Math.floor(total / 2));
    end.push(total - Math.floor(total / 2));
    outPad.push(Math.max(s - k, 0));
  });
  const x = toNchw(l, node, in0(node));
  const w = hwioToOihw(l, node, node.inputs[1] ?? refuse(node, 'its kernel is missing'));
  const y = l.op(
    node,
    'ConvTranspose',
    [x, w, ...biasOf(node, 2)],
    [
      { name: 'strides', ints: strides },
      { name: 'pads', ints: [...begin, ...end] },
      { name: 'output_padding', ints: outPad },
    ],
  );
  finishConv(l, node, y);
}

function lowerDense(l: Lowerer, node: Node): void {
  const y = l.op(node, 'MatMul', [in0(node), node.inputs[1] ?? refuse(node, 'its kernel is missing')]);
  const b = biasOf(node, 2);
  const z = b.length === 0 ? y : l.op(node, 'Add', [y, ...b]);
  activation(l, node, attrString(node, 'activation', 'linear'), z, out0(node));
}

function lowerRelu(l: Lowerer, node: Node): void {
  const x = in0(node);
  const slope = attrFloat(node, 'negative_slope', 0);
  const threshold = attrFloat(node, 'threshold', 0);
  const capped = node.attrs.max_value !== undefined;
  const out = capped ? undefined : out0(node);
  let y: string;
  if (slope === 0 && threshold === 0) y = l.op(node, 'Relu', [x], [], out);
  else {
    const t = l.constF(node, [threshold]);
    const keep = l.op(node, 'GreaterOrEqual', [x, t]);
    const below = l.op(node, 'Mul', [l.op(node, 'Sub', [x, t]), l.constF(node, [slope])]);
    y = l.op(node, 'Where', [keep, x, below], [], out);
  }
  if (capped) l.op(node, 'Min', [y, l.constF(node, [attrFloat(node, 'max_value', 0)])], [], out0(node));
}

/** A chain of binary `op`s over the node's inputs, left to right (as tfjs-layers merges them). */
function lowerMerge(op: string): (l: Lowerer, node: Node) => void {
  return (l, node) => {
    const [first = '', ...rest] = present(node);
    if (rest.length === 0) {
      l.op(node, 'Identity', [first], [], out0(node));
      return;
    }
    let acc = first;
    rest.forEach((x, i) => {
      acc = l.op(node, op, [acc, x], [], i === rest.length - 1 ? out0(node) : undefined);
    });
  };
}

function lowerAverage(l: Lowerer, node: Node): void {
  const xs = present(node);
  let acc = xs[0] ?? '';
  for (const x of xs.slice(1)) acc = l.op(node, 'Add', [acc, x]);
  l.op(node, 'Div', [acc, l.constF(node, [xs.length])], [], out0(node));
}

function lowerConcat(l: Lowerer, node: Node): void {
  const xs = present(node);
  if (xs.length === 1) l.op(node, 'Identity', xs, [], out0(node));
  else l.op(node, 'Concat', xs, [{ name: 'axis', i: attrInt(node, 'axis', -1) }], out0(node));
}

function lowerUpSampling(l: Lowerer, node: Node): void {
  const [sh, sw] = pairAttr(node, 'size', [2, 2]);
  const bilinear = attrString(node, 'interpolation', 'nearest') === 'bilinear';
  // tfjs-layers resizes with align_corners and half_pixel_centers off: source = destination · in / out.
  const y = l.op(
    node,
    'Resize',
    [toNchw(l, node, in0(node)), '', l.constF(node, [1, 1, sh, sw], [4])],
    [
      { name: 'mode', s: bilinear ? 'linear' : 'nearest' },
      { name: 'coordinate_transformation_mode', s: 'asymmetric' },
      { name: 'nearest_mode', s: 'floor' },
    ],
  );
  fromNchw(l, node, y, out0(node));
}

/** [top, bottom, left, right] of a 4-value attribute. */
function quadAttr(node: Node, name: string): [number, number, number, number] {
  const v = attrInts(node, name) ?? [0, 0, 0, 0];
  if (v.length !== 4 || v.some((d) => !Number.isInteger(d) || d < 0)) refuse(node, `${name} should be 4 integers`);
  return [v[0] ?? 0, v[1] ?? 0, v[2] ?? 0, v[3] ?? 0];
}

function lowerZeroPadding(l: Lowerer, node: Node): void {
  const [t, b, le, r] = quadAttr(node, 'padding');
  const pads = channelsFirst(node) ? [0, 0, t, le, 0, 0, b, r] : [0, t, le, 0, 0, b, r, 0];
  l.op(node, 'Pad', [in0(node), l.constI64(node, pads)], [{ name: 'mode', s: 'constant' }], out0(node));
}

function lowerCropping(l: Lowerer, node: Node): void {
  const [t, b, le, r] = quadAttr(node, 'cropping');
  const axes = channelsFirst(node) ? [2, 3] : [1, 2];
  const end = (crop: number): number => (crop > 0 ? -crop : Number.MAX_SAFE_INTEGER);
  l.op(
    node,
    'Slice',
    [in0(node), l.constI64(node, [t, le]), l.constI64(node, [end(b), end(r)]), l.constI64(node, axes)],
    [],
    out0(node),
  );
}

function lowerPooling(op: 'MaxPool' | 'AveragePool'): (l: Lowerer, node: Node) => void {
  return (l, node) => {
    const pool = pairAttr(node, 'pool_size', [2, 2]);
    const attrs: NodeAttr[] = [
      { name: 'kernel_shape', ints: pool },
      { name: 'strides', ints: pairAttr(node, 'strides', pool) },
      padAttr(node),
    ];
    // TF's 'same' average excludes the padding from the count, as ONNX's default count_include_pad = 0.
    fromNchw(l, node, l.op(node, op, [toNchw(l, node, in0(node))], attrs), out0(node));
  };
}

function lowerGlobalPooling(op: 'ReduceMean' | 'ReduceMax'): (l: Lowerer, node: Node) => void {
  return (l, node) => {
    const attrs: NodeAttr[] = [
      { name: 'axes', ints: channelsFirst(node) ? [2, 3] : [1, 2] },
      { name: 'keepdims', i: attrInt(node, 'keepdims', 0) === 1 ? 1 : 0 },
    ];
    l.op(node, op, [in0(node)], attrs, out0(node));
  };
}

function lowerDepthToSpace(l: Lowerer, node: Node): void {
  // tfjs's NHWC depth-to-space is ONNX's DCR order on NCHW.
  const attrs: NodeAttr[] = [
    { name: 'blocksize', i: attrInt(node, 'block_size', 2) },
    { name: 'mode', s: 'DCR' },
  ];
  fromNchw(l, node, l.op(node, 'DepthToSpace', [toNchw(l, node, in0(node))], attrs), out0(node));
}

/** The node's input rank, refusing when it is not known. */
function rankOf(l: Lowerer, node: Node, what: string): number {
  const r = l.ranks.get(in0(node));
  if (r === undefined) refuse(node, `${what} needs its input's rank, which the graph does not fix`);
  return r;
}

function lowerBatchNorm(l: Lowerer, node: Node): void {
  const x = in0(node);
  const raw = attrInt(node, 'axis', -1);
  const rank = raw === -1 ? undefined : rankOf(l, node, `normalising along axis ${raw}`);
  const axis = rank === undefined ? -1 : raw < 0 ? raw + rank : raw;
  // Statistics broadcast along the last axis as they are, along another one once reshaped to [1, …, C, …, 1].
  const vec = (i: number): string | undefined => {
    const v = node.inputs[i];
    if (v === undefined || v === '') return undefined;
    if (rank === undefined || axis === rank - 1) return v;
    const shape = Array.from({ length: rank }, (_, k) => (k === axis ? -1 : 1));
    return l.op(node, 'Reshape', [v, l.constI64(node, shape)]);
  };
  const [gamma, beta] = [vec(1), vec(2)];
  const mean = vec(3) ?? refuse(node, 'the moving mean is missing');
  const variance = vec(4) ?? refuse(node, 'the moving variance is missing');
  const std = l.op(node, 'Sqrt', [l.op(node, 'Add', [variance, l.constF(node, [attrFloat(node, 'epsilon', 1e-3)])])]);
  let y = l.op(
    node,
    'Div',
    [l.op(node, 'Sub', [x, mean]), std],
    [],
    gamma === undefined && beta === undefined ? out0(node) : undefined,
  );
  if (gamma !== undefined) y = l.op(node, 'Mul', [y, gamma], [], beta === undefined ? out0(node) : undefined);
  if (beta !== undefined) l.op(node, 'Add', [y, beta], [], out0(node));
}

function lowerLayerNorm(l: Lowerer, node: Node): void {
  const x = in0(node);
  const raw = attrInts(node, 'axis') ?? [-1];
  const trailingOnly = raw.length === 1 && raw[0] === -1;
  const rank = trailingOnly ? undefined : rankOf(l, node, `normalising along axes [${raw.join(', ')}]`);
  const axes = rank === undefined ? [-1] : [...new Set(raw.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
  if (rank !== undefined && axes.some((a) => a < 0 || a >= rank))
    refuse(node, `axes [${raw.join(', ')}] are out of range`);
  const trailing = rank === undefined || axes.every((a, i) => a === rank - axes.length + i);
  const reduce = (v: string): string =>
    l.op(
      node,
      'ReduceMean',
      [v],
      [
        { name: 'axes', ints: axes },
        { name: 'keepdims', i: 1 },
      ],
    );
  const d = l.op(node, 'Sub', [x, reduce(x)]);
  const variance = reduce(l.op(node, 'Mul', [d, d]));
  const eps = l.constF(node, [attrFloat(node, 'epsilon', 1e-3)]);
  // Scale and offset have the normalised axes' sizes: they broadcast as they are over trailing axes, and are
  // reshaped to [1, …, d, …, 1] over others.
  const param = (i: number): string | undefined => {
    const v = node.inputs[i];
    if (v === undefined || v === '') return undefined;
    if (trailing) return v;
    const shape = l.graph.initializers.get(v)?.shape ?? refuse(node, 'its scale and offset must be weights');
    let k = 0;
    const full = Array.from({ length: rank }, (_, a) => (axes.includes(a) ? (shape[k++] ?? 1) : 1));
    return l.op(node, 'Reshape', [v, l.constI64(node, full)]);
  };
  const [gamma, beta] = [param(1), param(2)];
  let y = l.op(
    node,
    'Div',
    [d, l.op(node, 'Sqrt', [l.op(node, 'Add', [variance, eps])])],
    [],
    gamma === undefined && beta === undefined ? out0(node) : undefined,
  );
  if (gamma !== undefined) y = l.op(node, 'Mul', [y, gamma], [], beta === undefined ? out0(node) : undefined);
  if (beta !== undefined) l.op(node, 'Add', [y, beta], [], out0(node));
}

function lowerFlatten(l: Lowerer, node: Node): void {
  let x = in0(node);
  if (channelsFirst(node)) {
    const rank = rankOf(l, node, 'a channels_first Flatten');
    if (rank > 2)
      x = l.op(
        node,
        'Transpose',
        [x],
        [{ name: 'perm', ints: [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2), 1] }],
      );
  }
  l.op(node, 'Flatten', [x], [{ name: 'axis', i: 1 }], out0(node));
}

function lowerReshape(l: Lowerer, node: Node): void {
  const target = attrInts(node, 'target_shape') ?? refuse(node, 'target_shape is missing');
  // ONNX reads 0 as "copy this dimension": it keeps the batch; a 0 in the target has no ONNX form.
  if (target.includes(0)) refuse(node, 'a target_shape holding 0 has no ONNX form');
  l.op(node, 'Reshape', [in0(node), l.constI64(node, [0, ...target])], [], out0(node));
}

function lowerPermute(l: Lowerer, node: Node): void {
  const dims = attrInts(node, 'dims') ?? refuse(node, 'dims are missing');
  l.op(node, 'Transpose', [in0(node)], [{ name: 'perm', ints: [0, ...dims] }], out0(node));
}

const unary =
  (op: string, attrs: (node: Node) => NodeAttr[] = () => []) =>
  (l: Lowerer, node: Node): void => {
    l.op(node, op, [in0(node)], attrs(node), out0(node));
  };

/** ONNX forms of the `tfjs.*` operators, by op name. */
const LAYER_LOWERINGS: Readonly<Record<string, (l: Lowerer, node: Node) => void>> = {
  'tfjs.Conv2D': lowerConv2d,
  'tfjs.DepthwiseConv2D': lowerDepthwise,
  'tfjs.SeparableConv2D': lowerSeparable,
  'tfjs.Conv2DTranspose': lowerConvTranspose,
  'tfjs.Dense': lowerDense,
  'tfjs.Activation': (l, node) => {
    activation(l, node, attrString(node, 'activation', 'linear'), in0(node), out0(node));
  },
  'tfjs.LeakyReLU': unary('LeakyRelu', (n) => [{ name: 'alpha', f: attrFloat(n, 'alpha', 0.3) }]),
  'tfjs.PReLU': (l, node) => {
    l.op(node, 'PRelu', [in0(node), node.inputs[1] ?? refuse(node, 'its alpha is missing')], [], out0(node));
  },
  'tfjs.ReLU': lowerRelu,
  'tfjs.ELU': unary('Elu', (n) => [{ name: 'alpha', f: attrFloat(n, 'alpha', 1) }]),
  'tfjs.Softmax': unary('Softmax', (n) => [{ name: 'axis', i: attrInt(n, 'axis', -1) }]),
  'tfjs.Scale': (l, node) => {
    l.op(node, 'Mul', [in0(node), l.constF(node, [attrFloat(node, 'factor', 1)])], [], out0(node));
  },
  'tfjs.Add': lowerMerge('Add'),
  'tfjs.Multiply': lowerMerge('Mul'),
  'tfjs.Subtract': (l, node) => {
    const [a, b] = present(node);
    if (a === undefined || b === undefined || node.inputs.length !== 2) refuse(node, 'it subtracts exactly 2 inputs');
    l.op(node, 'Sub', [a, b], [], out0(node));
  },
  'tfjs.Average': lowerAverage,
  'tfjs.Maximum': lowerMerge('Max'),
  'tfjs.Minimum': lowerMerge('Min'),
  'tfjs.Concatenate': lowerConcat,
  'tfjs.UpSampling2D': lowerUpSampling,
  'tfjs.ZeroPadding2D': lowerZeroPadding,
  'tfjs.Cropping2D': lowerCropping,
  'tfjs.MaxPooling2D': lowerPooling('MaxPool'),
  'tfjs.AveragePooling2D': lowerPooling('AveragePool'),
  'tfjs.GlobalAveragePooling2D': lowerGlobalPooling('ReduceMean'),
  'tfjs.GlobalMaxPooling2D': lowerGlobalPooling('ReduceMax'),
  'tfjs.DepthToSpace': lowerDepthToSpace,
  'tfjs.BatchNormalization': lowerBatchNorm,
  'tfjs.LayerNormalization': lowerLayerNorm,
  'tfjs.Flatten': lowerFlatten,
  'tfjs.Reshape': lowerReshape,
  'tfjs.Permute': lowerPermute,
  'tfjs.Identity': unary('Identity'),
};

/** The rank of a `tfjs.*` node's output from its input's, where the operator fixes it. */
function outputRank(l: Lowerer, node: Node): number | undefined {
  const r = l.ranks.get(node.inputs[0] ?? '');
  switch (node.op) {
    case 'tfjs.Flatten':
      return 2;
    case 'tfjs.Reshape':
      return 1 + (attrInts(node, 'target_shape')?.length ?? 0);
    case 'tfjs.GlobalAveragePooling2D':
    case 'tfjs.GlobalMaxPooling2D':
      return attrInt(node, 'keepdims', 0) === 1 ? 4 : 2;
    default:
      if (/Conv2D|Pooling2D|UpSampling2D|Padding2D|Cropping2D|DepthToSpace/.test(node.op)) return 4;
      return r;
  }
}

/** Ops the lowering writes for `tfjs.*` nodes assume the operator sets 13 to 17 (ReduceMean's axes attribute…). */
const LAYERS_OPSETS: readonly [number, number] = [13, 17];

/**
 * Lowers `graph` to encoded ONNX nodes, initializers and value infos, with `values` (float32, row-major, by
 * initializer name; an ExecutableModel's `weights`) as the initializers and `options.weightsAsInputs` as float32
 * graph inputs. Returns a refusal naming the first node whose operator has no ONNX form. Throws `BadInputError` for
 * a name in `weightsAsInputs` that is not a floating-point weight of the graph, or an initializer `values` lacks or
 * sizes wrongly.
 */
export function lowerGraphNodes(
  graph: Graph,
  values: ReadonlyMap<string, Float32Array>,
  options: LoweringOptions = {},
): LoweringResult<LoweredNodes> {
  const l = new Lowerer(graph, options.nodePrefix ?? 'fwd');
  const asInputs = new Set(options.weightsAsInputs ?? []);
  const weightInputs: LoweredWeightInput[] = [];
  const inputs: Uint8Array[] = [];
  for (const i of graph.inputs) {
    const code = TYPE_CODES.get(i.dtype) ?? ONNX_FLOAT;
    const dims = i.shape.length === 0 ? undefined : i.shape.map((d, k) => d ?? `${i.name}:${k}`);
    inputs.push(valueInfoProto(i.name, dims, code));
    if (i.shape.length > 0) l.ranks.set(i.name, i.shape.length);
  }
  for (const name of asInputs) {
    const info = graph.initializers.get(name);
    if (info === undefined || !isWeight(info))
      throw new BadInputError(
        `The model has no floating-point weight named ${JSON.stringify(name)} to take as an input.`,
      );
  }
  // TF.js layers compute in float32 whatever type the weights are stored in; an ONNX graph is written for its types.
  const layers = graph.nodes.some((n) => n.op.startsWith('tfjs.'));
  try {
    for (const [name, info] of graph.initializers) {
      const code = TYPE_CODES.get(info.dtype);
      const float = code === ONNX_FLOAT || code === 11 || code === 10 || code === 16;
      // Weights stored as float16, bfloat16 or float64 are fed (or written) as float32 and cast back in the graph.
      const feed = !float || code === ONNX_FLOAT || layers ? name : `${name}${FLOAT32_FEED_SUFFIX}`;
      if (feed !== name) {
        l.names.add(feed);
        l.emit('Cast', [feed], [name], [{ name: 'to', i: code ?? ONNX_FLOAT }]);
      }
      if (asInputs.has(name)) {
        weightInputs.push({ name, feed, shape: [...info.shape] });
        continue;
      }
      const v = values.get(name);
      if (v === undefined)
        throw new BadInputError(`No values were given for the model's initializer ${JSON.stringify(name)}.`);
      const count = info.shape.reduce((a, b) => a * b, 1);
      if (v.length !== count)
        throw new BadInputError(`${JSON.stringify(name)} needs ${count} values, got ${v.length}.`);
      if (float) {
        l.inits.push(floatTensorProto(feed, info.shape, v));
        continue;
      }
      const raw = code === undefined ? undefined : encodeValues(info.dtype, v);
      if (code === undefined || raw === undefined)
        throw new Refused({
          op: 'initializer',
          node: name,
          detail: `its element type ${info.dtype} is not written to ONNX here`,
        });
      l.inits.push(tensorProto(name, info.shape, code, raw));
    }
    for (const node of graph.nodes) {
      if (node.op.startsWith('tfjs.')) {
        const lower = ownValue(LAYER_LOWERINGS, node.op);
        if (lower === undefined) refuse(node, 'the operator has no ONNX form yet');
        if (graph.opset < LAYERS_OPSETS[0] || graph.opset > LAYERS_OPSETS[1])
          refuse(node, `TF.js layers are lowered for ONNX opsets ${LAYERS_OPSETS.join(' to ')}, not ${graph.opset}`);
        lower(l, node);
        const rank = outputRank(l, node);
        if (rank !== undefined) l.ranks.set(out0(node), rank);
      } else lowerOnnxNode(l, node);
    }
  } catch (e) {
    if (e instanceof Refused) return { ok: false, refusal: { kind: layers ? 'layer' : 'node', ...e.refusal } };
    throw e;
  }
  for (const w of weightInputs) inputs.push(valueInfoProto(w.feed, w.shape));
  const outputs = graph.outputs.map((name) => untypedValueInfo(name));
  return {
    ok: true,
    value: { nodes: l.nodes, inits: l.inits, inputs, outputs, weightInputs, valueNames: l.names, opset: graph.opset },
  };
}

/** A graph output's ValueInfoProto without a type: onnxruntime infers the element type and shape. */
function untypedValueInfo(name: string): Uint8Array {
  return valueInfoProto(name, undefined, null);
}

/**
 * Lowers `graph` (see `lowerGraphNodes`) into a ModelProto named `name` at the graph's operator set, ready for
 * `InferenceSession.create`, or returns the refusal.
 */
export function lowerGraph(
  graph: Graph,
  values: ReadonlyMap<string, Float32Array>,
  options: LoweringOptions & { readonly name?: string } = {},
): LoweringResult<LoweredModel> {
  const lowered = lowerGraphNodes(graph, values, options);
  if (!lowered.ok) return lowered;
  const p = lowered.value;
  const bytes = modelProto(options.name ?? 'weight-lens', p.nodes, p.inits, p.inputs, p.outputs, p.opset);
  return { ok: true, value: { bytes, weightInputs: p.weightInputs } };
}
