/**
 * Reverse-mode gradients of ONNX graphs, written as ONNX nodes (onnxruntime has no autodiff). `GRADIENT_RULES` is the
 * one table of rules keyed by ONNX op type: given a forward node and the names of its outputs' gradients, a rule
 * emits the nodes computing the gradient of each differentiable input it is asked for. `emitBackward` walks a
 * forward node list in reverse from seed gradients, sums the contributions of values read more than once, and
 * returns the gradient of every requested value. Rules read static shapes (the lowering's, graph/onnxLowering.ts)
 * and the values of constant inputs (Slice starts, Pad pads…); the emitted nodes are plain opset-17 ONNX.
 */
import {
  modelProto,
  nodeEmitter,
  ONNX_FLOAT,
  ONNX_INT64,
  tensorInitializer,
  type NodeAttr,
  type NodeEmitter,
} from '../backend/onnxGraph';
import { attrFloat, attrInt, attrInts, attrString, type Node } from './ir';

/** What a gradient rule reads and writes while emitting. */
export interface GradientEmitter {
  /** Emits one node. */
  readonly node: NodeEmitter;
  /** A value name not used anywhere else, starting with `hint`. */
  fresh(hint: string): string;
  /** Static shape of a forward value (throws when unknown). */
  shape(value: string): readonly number[];
  /** The values of a constant (folded or initializer) input, or undefined when it is computed at run time. */
  ints(value: string): readonly number[] | undefined;
  /** A new initializer holding `values` ([dims], element type INT64 or FLOAT); returns its name. */
  constant(values: readonly number[], dims: readonly number[], elemType: number): string;
}

/** One op type's reverse-mode rule. */
export interface GradientRule {
  /** Input indices the rule differentiates; gradients never flow into the others (shapes, indices, statistics). */
  readonly differentiable: readonly number[];
  /** Why this node cannot be differentiated (an attribute or layout the rule does not cover), or undefined. */
  check?(node: Node, g: Pick<GradientEmitter, 'shape' | 'ints'>): string | undefined;
  /**
   * Emits the gradients of the inputs with `wants[i]` (only differentiable ones are asked for), given `dY[j]`, the
   * gradient of output j ('' when none flows into it). Returns one name per input ('' where not asked).
   */
  emit(node: Node, dY: readonly string[], wants: readonly boolean[], g: GradientEmitter): string[];
}

const inp = (n: Node, i: number): string => n.inputs[i] ?? '';
const out0 = (n: Node): string => n.outputs[0] ?? '';
const scalar = (g: GradientEmitter, v: number): string => g.constant([v], [], ONNX_FLOAT);
const int64s = (g: GradientEmitter, v: readonly number[]): string => g.constant(v, [v.length], ONNX_INT64);
const count = (shape: readonly number[]): number => shape.reduce((a, d) => a * d, 1);
const emit1 = (g: GradientEmitter, op: string, ins: string[], hint: string, attrs?: NodeAttr[]): string => {
  const o = g.fresh(hint);
  g.node(op, ins, [o], attrs);
  return o;
};

/** `dy` (of shape `from`) summed down to `to` by numpy broadcasting rules (ReduceSum over the broadcast axes). */
function reduceTo(g: GradientEmitter, dy: string, from: readonly number[], to: readonly number[]): string {
  if (from.join(',') === to.join(',')) return dy;
  const lead = from.length - to.length;
  const axes: number[] = [];
  from.forEach((d, i) => {
    const t = i < lead ? undefined : to[i - lead];
    if (t === undefined || (t === 1 && d !== 1)) axes.push(i);
  });
  const summed =
    axes.length > 0 ? emit1(g, 'ReduceSum', [dy, int64s(g, axes)], 'red', [{ name: 'keepdims', i: 1 }]) : dy;
  return emit1(g, 'Reshape', [summed, int64s(g, to)], 'redr');
}

/** A reshape of `dy` to the static shape of forward value `like`. */
function reshapeLike(g: GradientEmitter, dy: string, like: string): string {
  return emit1(g, 'Reshape', [dy, int64s(g, g.shape(like))], 'rs');
}

const transpose2 = (g: GradientEmitter, x: string, rank: number): string => {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 1] = rank - 2;
  perm[rank - 2] = rank - 1;
  return emit1(g, 'Transpose', [x], 'tr', [{ name: 'perm', ints: perm }]);
};

/** Reduction axes of a ReduceSum/ReduceMean node (normalised; all axes when empty), and keepdims. */
function reductionAxes(node: Node, g: Pick<GradientEmitter, 'shape' | 'ints'>): { axes: number[]; keep: boolean } {
  const rank = g.shape(inp(node, 0)).length;
  const listed = node.op === 'ReduceSum' ? g.ints(inp(node, 1)) : attrInts(node, 'axes');
  const axes =
    listed === undefined || listed.length === 0
      ? Array.from({ length: rank }, (_, i) => i)
      : listed.map((a) => (a < 0 ? a + rank : a));
  return { axes, keep: attrInt(node, 'keepdims', 1) === 1 };
}

/** Expands `dy` (a reduction's output gradient) back over the reduced axes to the input's shape. */
function unreduce(g: GradientEmitter, node: Node, dy: string, scale: number): string {
  const xShape = g.shape(inp(node, 0));
  const { axes } = reductionAxes(node, g);
  const kept = xShape.map((d, i) => (axes.includes(i) ? 1 : d));
  const r = emit1(g, 'Reshape', [dy, int64s(g, kept)], 'kr');
  const s = scale === 1 ? r : emit1(g, 'Mul', [r, scalar(g, scale)], 'ks');
  return emit1(g, 'Expand', [s, int64s(g, xShape)], 'ke');
}

/** Elementwise binary ops: the gradient of each input is reduced to its own (broadcast) shape. */
function binaryRule(local: (node: Node, dy: string, i: number, g: GradientEmitter) => string): GradientRule {
  return {
    differentiable: [0, 1],
    emit(node, dY, wants, g) {
      const dy = dY[0] ?? '';
      const yShape = g.shape(out0(node));
      return [0, 1].map((i) =>
        wants[i] === true ? reduceTo(g, local(node, dy, i, g), yShape, g.shape(inp(node, i))) : '',
      );
    },
  };
}

/** Rules whose input gradient is a reshape of the output gradient to the input's shape. */
const reshapeRule: GradientRule = {
  differentiable: [0],
  emit: (node, dY, wants, g) => [wants[0] === true ? reshapeLike(g, dY[0] ?? '', inp(node, 0)) : ''],
};

const identityRule: GradientRule = {
  differentiable: [0],
  emit: (_node, dY, wants) => [wants[0] === true ? (dY[0] ?? '') : ''],
};

/** Conv attributes as numbers, with ONNX defaults for a 2-D convolution whose weight is `w`. */
function convAttrs(
  node: Node,
  wShape: readonly number[],
): { strides: number[]; pads: number[]; dil: number[]; group: number } {
  const spatial = wShape.length - 2;
  return {
    strides: attrInts(node, 'strides') ?? new Array<number>(spatial).fill(1),
    pads: attrInts(node, 'pads') ?? new Array<number>(2 * spatial).fill(0),
    dil: attrInts(node, 'dilations') ?? new Array<number>(spatial).fill(1),
    group: attrInt(node, 'group', 1),
  };
}

/**
 * Conv: dX is the transposed convolution of dY with the same weight (output padding from the static shapes); dW the
 * convolution of X (channels as batch) with dY (channels as filters) with stride and dilation exchanged, cropped to
 * the kernel size; dB the sum of dY over batch and space.
 */
const convRule: GradientRule = {
  differentiable: [0, 1, 2],
  check(node, g) {
    const w = g.shape(inp(node, 1));
    if (w.length !== 4) return `Conv with ${w.length - 2} spatial dimensions`;
    const pad = attrString(node, 'auto_pad', 'NOTSET');
    if (pad !== 'NOTSET') return `Conv with auto_pad ${pad}`;
    return undefined;
  },
  emit(node, dY, wants, g) {
    const dy = dY[0] ?? '';
    const x = inp(node, 0);
    const w = inp(node, 1);
    const xShape = g.shape(x);
    const wShape = g.shape(w);
    const yShape = g.shape(out0(node));
    const { strides, pads, dil, group } = convAttrs(node, wShape);
    const result = ['', '', ''];
    if (wants[0] === true) {
      const outputPadding = [0, 1].map((a) => {
        const k = wShape[a + 2] ?? 1;
        const full =
          ((yShape[a + 2] ?? 1) - 1) * (strides[a] ?? 1) -
          (pads[a] ?? 0) -
          (pads[a + 2] ?? 0) +
          (dil[a] ?? 1) * (k - 1) +
          1;
        return (xShape[a + 2] ?? 0) - full;
      });
      result[0] = emit1(g, 'ConvTranspose', [dy, w], 'dconvx', [
        { name: 'strides', ints: strides },
        { name: 'pads', ints: pads },
        { name: 'dilations', ints: dil },
        { name: 'group', i: group },
        { name: 'kernel_shape', ints: wShape.slice(2) },
        { name: 'output_padding', ints: outputPadding },
      ]);
    }
    if (wants[1] === true) {
      const cout = wShape[0] ?? 0;
      const cinG = wShape[1] ?? 0;
      const swap = [{ name: 'perm', ints: [1, 0, 2, 3] }];
      const parts: string[] = [];
      for (let gi = 0; gi < group; gi++) {
        let xg = x;
        let dyg = dy;
        if (group > 1) {
          const per = cout / group;
          xg = emit1(g, 'Slice', [x, int64s(g, [gi * cinG]), int64s(g, [(gi + 1) * cinG]), int64s(g, [1])], 'xg');
          dyg = emit1(g, 'Slice', [dy, int64s(g, [gi * per]), int64s(g, [(gi + 1) * per]), int64s(g, [1])], 'dyg');
        }
        const xt = emit1(g, 'Transpose', [xg], 'xt', swap);
        const dyt = emit1(g, 'Transpose', [dyg], 'dyt', swap);
        const full = emit1(g, 'Conv', [xt, dyt], 'dwfull', [
          { name: 'strides', ints: dil },
          { name: 'dilations', ints: strides },
          { name: 'pads', ints: pads },
        ]);
        const crop = emit1(
          g,
          'Slice',
          [full, int64s(g, [0, 0]), int64s(g, wShape.slice(2)), int64s(g, [2, 3])],
          'dwcrop',
        );
        parts.push(emit1(g, 'Transpose', [crop], 'dw', swap));
      }
      result[1] = parts.length === 1 ? (parts[0] ?? '') : emit1(g, 'Concat', parts, 'dwcat', [{ name: 'axis', i: 0 }]);
    }
    if (wants[2] === true)
      result[2] = emit1(g, 'ReduceSum', [dy, int64s(g, [0, 2, 3])], 'dconvb', [{ name: 'keepdims', i: 0 }]);
    return result;
  },
};

/** BatchNormalization in inference mode: y = (x − mean) / √(var + ε) · scale + bias, statistics fixed. */
const batchNormRule: GradientRule = {
  differentiable: [0, 1, 2],
  check(node) {
    if (attrInt(node, 'training_mode', 0) !== 0) return 'BatchNormalization in training mode';
    if (node.outputs.filter((o) => o !== '').length > 1) return 'BatchNormalization with running-statistics outputs';
    return undefined;
  },
  emit(node, dY, wants, g) {
    const dy = dY[0] ?? '';
    const xShape = g.shape(inp(node, 0));
    const c = xShape[1] ?? 1;
    const bshape = int64s(g, [c, ...new Array<number>(Math.max(0, xShape.length - 2)).fill(1)]);
    const eps = scalar(g, attrFloat(node, 'epsilon', 1e-5));
    const sd = emit1(g, 'Sqrt', [emit1(g, 'Add', [inp(node, 4), eps], 'bnv')], 'bnsd');
    const axes = int64s(g, [0, ...Array.from({ length: xShape.length - 2 }, (_, i) => i + 2)]);
    const result = ['', '', ''];
    if (wants[0] === true) {
      const factor = emit1(g, 'Reshape', [emit1(g, 'Div', [inp(node, 1), sd], 'bnf'), bshape], 'bnfr');
      result[0] = emit1(g, 'Mul', [dy, factor], 'dbnx');
    }
    if (wants[1] === true) {
      const mean = emit1(g, 'Reshape', [inp(node, 3), bshape], 'bnm');
      const sdr = emit1(g, 'Reshape', [sd, bshape], 'bnsdr');
      const xhat = emit1(g, 'Div', [emit1(g, 'Sub', [inp(node, 0), mean], 'bnc'), sdr], 'bnxh');
      result[1] = emit1(g, 'ReduceSum', [emit1(g, 'Mul', [dy, xhat], 'bnp'), axes], 'dbns', [
        { name: 'keepdims', i: 0 },
      ]);
    }
    if (wants[2] === true) result[2] = emit1(g, 'ReduceSum', [dy, axes], 'dbnb', [{ name: 'keepdims', i: 0 }]);
    return result;
  },
};

/** Gemm: Y = α·A'·B' + β·C with A' = Aᵀ if transA, B' = Bᵀ if transB. */
const gemmRule: GradientRule = {
  differentiable: [0, 1, 2],
  emit(node, dY, wants, g) {
    const dy = dY[0] ?? '';
    const a = inp(node, 0);
    const b = inp(node, 1);
    const alpha = attrFloat(node, 'alpha', 1);
    const beta = attrFloat(node, 'beta', 1);
    const tA = attrInt(node, 'transA', 0) === 1;
    const tB = attrInt(node, 'transB', 0) === 1;
    const gemm = (x: string, y: string, ta: boolean, tb: boolean, hint: string, scale: number): string =>
      emit1(g, 'Gemm', [x, y], hint, [
        { name: 'transA', i: ta ? 1 : 0 },
        { name: 'transB', i: tb ? 1 : 0 },
        { name: 'alpha', f: scale },
      ]);
    const result = ['', '', ''];
    // dA' = α·dY·B'ᵀ; dA = dA' or its transpose.
    if (wants[0] === true)
      result[0] = tA ? gemm(b, dy, tB, true, 'dgemma', alpha) : gemm(dy, b, false, !tB, 'dgemma', alpha);
    // dB' = α·A'ᵀ·dY; dB = dB' or its transpose.
    if (wants[1] === true)
      result[1] = tB ? gemm(dy, a, true, tA, 'dgemmb', alpha) : gemm(a, dy, !tA, false, 'dgemmb', alpha);
    if (wants[2] === true && inp(node, 2) !== '') {
      const scaled = beta === 1 ? dy : emit1(g, 'Mul', [dy, scalar(g, beta)], 'dgemmcs');
      result[2] = reduceTo(g, scaled, g.shape(out0(node)), g.shape(inp(node, 2)));
    }
    return result;
  },
};

/** MatMul of two operands of equal rank ≥ 2 and equal batch dimensions: dA = dY·Bᵀ, dB = Aᵀ·dY (last two axes). */
const matMulRule: GradientRule = {
  differentiable: [0, 1],
  check(node, g) {
    const a = g.shape(inp(node, 0));
    const b = g.shape(inp(node, 1));
    if (a.length < 2 || a.length !== b.length || a.slice(0, -2).join(',') !== b.slice(0, -2).join(','))
      return 'MatMul of operands with different ranks or broadcast batch dimensions';
    return undefined;
  },
  emit(node, dY, wants, g) {
    const dy = dY[0] ?? '';
    const a = inp(node, 0);
    const b = inp(node, 1);
    const rank = g.shape(a).length;
    return [
      wants[0] === true ? emit1(g, 'MatMul', [dy, transpose2(g, b, rank)], 'dmma') : '',
      wants[1] === true ? emit1(g, 'MatMul', [transpose2(g, a, rank), dy], 'dmmb') : '',
    ];
  },
};

/** Normalised (non-negative) Slice parameters per axis of the input, from its constant inputs. */
function sliceParams(
  node: Node,
  g: Pick<GradientEmitter, 'shape' | 'ints'>,
): { axis: number; start: number; step: number; count: number }[] | string {
  const xShape = g.shape(inp(node, 0));
  const yShape = g.shape(out0(node));
  const starts = g.ints(inp(node, 1));
  const ends = g.ints(inp(node, 2));
  if (starts === undefined || ends === undefined) return 'Slice with bounds computed at run time';
  const axes = inp(node, 3) !== '' ? g.ints(inp(node, 3)) : starts.map((_, i) => i);
  const steps = inp(node, 4) !== '' ? g.ints(inp(node, 4)) : starts.map(() => 1);
  if (axes === undefined || steps === undefined) return 'Slice with axes or steps computed at run time';
  const out: { axis: number; start: number; step: number; count: number }[] = [];
  for (let i = 0; i < starts.length; i++) {
    const rank = xShape.length;
    const axis = (axes[i] ?? 0) < 0 ? (axes[i] ?? 0) + rank : (axes[i] ?? 0);
    const dim = xShape[axis] ?? 0;
    const step = steps[i] ?? 1;
    if (step <= 0) return `Slice with step ${step}`;
    let start = starts[i] ?? 0;
    if (start < 0) start += dim;
    start = Math.max(0, Math.min(dim, start));
    out.push({ axis, start, step, count: yShape[axis] ?? 0 });
  }
  return out;
}

/**
 * Slice (positive steps): dY is scattered back into zeros, one axis at a time: interleaved with step − 1 zeros
 * (Unsqueeze, Pad, Reshape), then padded (or cropped) to the input's extent.
 */
const sliceRule: GradientRule = {
  differentiable: [0],
  check(node, g) {
    const p = sliceParams(node, g);
    return typeof p === 'string' ? p : undefined;
  },
  emit(node, dY, wants, g) {
    if (wants[0] !== true) return [''];
    const params = sliceParams(node, g);
    if (typeof params === 'string') throw new Error(params);
    const xShape = g.shape(inp(node, 0));
    let cur = dY[0] ?? '';
    const shape = g.shape(out0(node)).slice();
    for (const { axis, start, step, count: k } of params) {
      const dim = xShape[axis] ?? 0;
      const rank = shape.length;
      if (step > 1 && k > 0) {
        const up = shape.slice();
        up.splice(axis + 1, 0, 1);
        const u = emit1(g, 'Reshape', [cur, int64s(g, up)], 'slu');
        const pads = new Array<number>(2 * (rank + 1)).fill(0);
        pads[rank + 1 + axis + 1] = step - 1;
        const p = emit1(g, 'Pad', [u, int64s(g, pads)], 'slp');
        shape[axis] = k * step;
        cur = emit1(g, 'Reshape', [p, int64s(g, shape)], 'slr');
      }
      const have = shape[axis] ?? 0;
      let after = dim - start - have;
      if (after < 0) {
        cur = emit1(g, 'Slice', [cur, int64s(g, [0]), int64s(g, [have + after]), int64s(g, [axis])], 'slc');
        shape[axis] = have + after;
        after = 0;
      }
      if (start > 0 || after > 0) {
        const pads = new Array<number>(2 * rank).fill(0);
        pads[axis] = start;
        pads[rank + axis] = after;
        cur = emit1(g, 'Pad', [cur, int64s(g, pads)], 'slpad');
      }
      shape[axis] = dim;
    }
    return [cur];
  },
};

/** Pad in constant mode with non-negative pads: dX is dY with the padding cut away. */
const padRule: GradientRule = {
  differentiable: [0],
  check(node, g) {
    const mode = attrString(node, 'mode', 'constant');
    if (mode !== 'constant') return `Pad in ${mode} mode`;
    const pads = g.ints(inp(node, 1));
    if (pads === undefined) return 'Pad with pads computed at run time';
    if (pads.some((p) => p < 0)) return 'Pad with negative pads';
    if (inp(node, 3) !== '') return 'Pad with axes';
    return undefined;
  },
  emit(node, dY, wants, g) {
    if (wants[0] !== true) return [''];
    const xShape = g.shape(inp(node, 0));
    const pads = g.ints(inp(node, 1)) ?? [];
    const starts = xShape.map((_, i) => pads[i] ?? 0);
    const ends = xShape.map((d, i) => (pads[i] ?? 0) + d);
    const axes = xShape.map((_, i) => i);
    return [emit1(g, 'Slice', [dY[0] ?? '', int64s(g, starts), int64s(g, ends), int64s(g, axes)], 'dpad')];
  },
};

/** Softmax (opset ≥ 13, one axis): dX = Y ⊙ (dY − Σ_axis dY ⊙ Y). */
const softmaxRule: GradientRule = {
  differentiable: [0],
  emit(node, dY, wants, g) {
    if (wants[0] !== true) return [''];
    const y = out0(node);
    const rank = g.shape(y).length;
    const axis = attrInt(node, 'axis', -1);
    const dy = dY[0] ?? '';
    const s = emit1(
      g,
      'ReduceSum',
      [emit1(g, 'Mul', [dy, y], 'smp'), int64s(g, [axis < 0 ? axis + rank : axis])],
      'sms',
      [{ name: 'keepdims', i: 1 }],
    );
    return [emit1(g, 'Mul', [y, emit1(g, 'Sub', [dy, s], 'smd')], 'dsm')];
  },
};

/** Concat: dY split back along the axis into the inputs' sizes. */
const concatRule: GradientRule = {
  differentiable: [],
  emit(node, dY, wants, g) {
    const rank = g.shape(out0(node)).length;
    const a = attrInt(node, 'axis', 0);
    const axis = a < 0 ? a + rank : a;
    const sizes = node.inputs.map((i) => g.shape(i)[axis] ?? 0);
    const outs = node.inputs.map((_, i) => (wants[i] === true ? g.fresh('dcat') : g.fresh('dcatx')));
    g.node('Split', [dY[0] ?? '', int64s(g, sizes)], outs, [{ name: 'axis', i: axis }]);
    return outs.map((o, i) => (wants[i] === true ? o : ''));
  },
};

/** Split: the outputs' gradients concatenated back (zeros for outputs no gradient flows into). */
const splitRule: GradientRule = {
  differentiable: [0],
  emit(node, dY, wants, g) {
    if (wants[0] !== true) return [''];
    const rank = g.shape(inp(node, 0)).length;
    const a = attrInt(node, 'axis', 0);
    const axis = a < 0 ? a + rank : a;
    const parts = node.outputs.map((o, j) => {
      const d = dY[j] ?? '';
      if (d !== '') return d;
      return emit1(g, 'Expand', [scalar(g, 0), int64s(g, g.shape(o))], 'dsplz');
    });
    return [emit1(g, 'Concat', parts, 'dspl', [{ name: 'axis', i: axis }])];
  },
};

/** Every op type the native training graphs differentiate, with its rule. */
export const GRADIENT_RULES: Readonly<Record<string, GradientRule>> = {
  Identity: identityRule,
  Dropout: identityRule,
  Relu: {
    differentiable: [0],
    emit(node, dY, wants, g) {
      if (wants[0] !== true) return [''];
      const pos = emit1(g, 'Greater', [inp(node, 0), scalar(g, 0)], 'relupos');
      return [emit1(g, 'Where', [pos, dY[0] ?? '', scalar(g, 0)], 'drelu')];
    },
  },
  Add: binaryRule((_n, dy) => dy),
  Sub: binaryRule((_n, dy, i, g) => (i === 0 ? dy : emit1(g, 'Neg', [dy], 'dsubb'))),
  Mul: binaryRule((n, dy, i, g) => emit1(g, 'Mul', [dy, inp(n, 1 - i)], 'dmul')),
  Div: binaryRule((n, dy, i, g) =>
    i === 0
      ? emit1(g, 'Div', [dy, inp(n, 1)], 'ddiva')
      : emit1(g, 'Neg', [emit1(g, 'Div', [emit1(g, 'Mul', [dy, out0(n)], 'ddivm'), inp(n, 1)], 'ddivq')], 'ddivb'),
  ),
  Sum: {
    differentiable: [],
    emit(node, dY, wants, g) {
      const yShape = g.shape(out0(node));
      return node.inputs.map((x, i) => (wants[i] === true ? reduceTo(g, dY[0] ?? '', yShape, g.shape(x)) : ''));
    },
  },
  Neg: {
    differentiable: [0],
    emit: (_n, dY, wants, g) => [wants[0] === true ? emit1(g, 'Neg', [dY[0] ?? ''], 'dneg') : ''],
  },
  Exp: {
    differentiable: [0],
    emit: (n, dY, wants, g) => [wants[0] === true ? emit1(g, 'Mul', [dY[0] ?? '', out0(n)], 'dexp') : ''],
  },
  Log: {
    differentiable: [0],
    emit: (n, dY, wants, g) => [wants[0] === true ? emit1(g, 'Div', [dY[0] ?? '', inp(n, 0)], 'dlog') : ''],
  },
  Sqrt: {
    differentiable: [0],
    emit: (n, dY, wants, g) => [
      wants[0] === true
        ? emit1(g, 'Div', [dY[0] ?? '', emit1(g, 'Mul', [out0(n), scalar(g, 2)], 'dsqrt2')], 'dsqrt')
        : '',
    ],
  },
  Softmax: softmaxRule,
  ReduceSum: {
    differentiable: [0],
    check(node, g) {
      if (inp(node, 1) !== '' && g.ints(inp(node, 1)) === undefined) return 'ReduceSum with axes computed at run time';
      if (attrInt(node, 'noop_with_empty_axes', 0) === 1) return 'ReduceSum with noop_with_empty_axes';
      return undefined;
    },
    emit: (node, dY, wants, g) => [wants[0] === true ? unreduce(g, node, dY[0] ?? '', 1) : ''],
  },
  ReduceMean: {
    differentiable: [0],
    emit(node, dY, wants, g) {
      if (wants[0] !== true) return [''];
      const xShape = g.shape(inp(node, 0));
      const { axes } = reductionAxes(node, g);
      const n = axes.reduce((a, i) => a * (xShape[i] ?? 1), 1);
      return [unreduce(g, node, dY[0] ?? '', 1 / n)];
    },
  },
  Reshape: reshapeRule,
  Flatten: reshapeRule,
  Squeeze: reshapeRule,
  Unsqueeze: reshapeRule,
  Transpose: {
    differentiable: [0],
    emit(node, dY, wants, g) {
      if (wants[0] !== true) return [''];
      const rank = g.shape(inp(node, 0)).length;
      const perm = attrInts(node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
      const inverse = new Array<number>(rank).fill(0);
      perm.forEach((p, i) => {
        inverse[p] = i;
      });
      return [emit1(g, 'Transpose', [dY[0] ?? ''], 'dtr', [{ name: 'perm', ints: inverse }])];
    },
  },
  GlobalAveragePool: {
    differentiable: [0],
    emit(node, dY, wants, g) {
      if (wants[0] !== true) return [''];
      const xShape = g.shape(inp(node, 0));
      const area = count(xShape.slice(2));
      const s = emit1(g, 'Mul', [dY[0] ?? '', scalar(g, 1 / area)], 'gaps');
      return [emit1(g, 'Expand', [s, int64s(g, xShape)], 'dgap')];
    },
  },
  Conv: convRule,
  BatchNormalization: batchNormRule,
  Gemm: gemmRule,
  MatMul: matMulRule,
  Slice: sliceRule,
  Pad: padRule,
  Concat: concatRule,
  Split: splitRule,
};

/** The differentiable inputs of `rule` for `node` (Sum and Concat: every input). */
function differentiableInputs(rule: GradientRule, node: Node): readonly number[] {
  return rule.differentiable.length === 0 ? node.inputs.map((_, i) => i) : rule.differentiable;
}

/** What `emitBackward` differentiates. */
export interface BackwardRequest {
  /** Forward nodes in topological order. */
  readonly nodes: readonly Node[];
  /** Seed gradients: value → name of its gradient (the loss's is a constant 1; a test's may be an input). */
  readonly seeds: ReadonlyMap<string, string>;
  /** Values whose gradients are wanted. */
  readonly wrt: readonly string[];
  /** Whether a value carries gradients (float values only; default all). */
  readonly differentiableValue?: (name: string) => boolean;
}

/** The nodes on a path from `wrt` to a seed, with which of their inputs gradients flow into. */
function backwardPlan(req: BackwardRequest): { node: Node; wants: boolean[] }[] {
  const float = req.differentiableValue ?? ((): boolean => true);
  const reach = new Set(req.wrt);
  for (const n of req.nodes) {
    if (n.inputs.some((i) => i !== '' && reach.has(i)))
      for (const o of n.outputs) if (o !== '' && float(o)) reach.add(o);
  }
  const needed = new Set(req.seeds.keys());
  const plan: { node: Node; wants: boolean[] }[] = [];
  for (let k = req.nodes.length - 1; k >= 0; k--) {
    const n = req.nodes[k] as Node;
    if (!n.outputs.some((o) => needed.has(o) && reach.has(o))) continue;
    const wants = n.inputs.map((i) => i !== '' && reach.has(i) && float(i));
    if (!wants.some(Boolean)) continue;
    plan.push({ node: n, wants });
    n.inputs.forEach((i, j) => {
      if (wants[j] === true) needed.add(i);
    });
  }
  return plan;
}

/**
 * Why the backward pass of `req` cannot be written (a node on a path from `wrt` to a seed whose op has no rule, or
 * whose rule refuses its attributes or an input it needs), or undefined. The reason names the op.
 */
export function missingGradientRule(
  req: BackwardRequest,
  g: Pick<GradientEmitter, 'shape' | 'ints'>,
): string | undefined {
  for (const { node, wants } of backwardPlan(req)) {
    const rule = Object.hasOwn(GRADIENT_RULES, node.op) ? GRADIENT_RULES[node.op] : undefined;
    if (rule === undefined) return `${node.op} has no gradient rule on the native engine: ${node.op}`;
    const reason = rule.check?.(node, g);
    if (reason !== undefined)
      return `${node.op} node ${node.name} has no gradient rule on the native engine: ${reason}`;
    const diff = differentiableInputs(rule, node);
    const bad = wants.findIndex((w, i) => w && !diff.includes(i));
    if (bad >= 0) return `${node.op} has no gradient rule on the native engine for its input ${bad + 1}: ${node.op}`;
  }
  return undefined;
}

/**
 * Emits the reverse-mode gradient of the seeds with respect to `req.wrt` (see the module comment). Returns the name
 * of each wanted value's gradient; a value no seed depends on has none. Throws when `missingGradientRule` would
 * give a reason.
 */
export function emitBackward(req: BackwardRequest, g: GradientEmitter): Map<string, string> {
  const reason = missingGradientRule(req, g);
  if (reason !== undefined) throw new Error(reason);
  const contributions = new Map<string, string[]>();
  const add = (value: string, grad: string): void => {
    const list = contributions.get(value);
    if (list === undefined) contributions.set(value, [grad]);
    else list.push(grad);
  };
  for (const [v, s] of req.seeds) add(v, s);
  const total = (value: string): string => {
    const list = contributions.get(value);
    if (list === undefined || list.length === 0) return '';
    if (list.length === 1) return list[0] ?? '';
    const sum = emit1(g, 'Sum', list, 'acc');
    contributions.set(value, [sum]);
    return sum;
  };
  for (const { node, wants } of backwardPlan(req)) {
    const rule = GRADIENT_RULES[node.op] as GradientRule;
    const dY = node.outputs.map((o) => (o === '' ? '' : total(o)));
    if (dY.every((d) => d === '')) continue;
    const dX = rule.emit(node, dY, wants, g);
    node.inputs.forEach((i, j) => {
      const d = dX[j] ?? '';
      if (wants[j] === true && d !== '') add(i, d);
    });
  }
  const result = new Map<string, string>();
  for (const w of req.wrt) {
    const t = total(w);
    if (t !== '') result.set(w, t);
  }
  return result;
}

/**
 * A `GradientEmitter` collecting nodes and initializers for one model: static shapes and constant values are looked
 * up in the given maps; names it makes are `<hint>__<n>`.
 */
export class OnnxGraphBuilder implements GradientEmitter {
  /** Encoded NodeProtos, in emission order. */
  readonly nodes: Uint8Array[] = [];
  /** Encoded initializer TensorProtos. */
  readonly initializers: Uint8Array[] = [];
  readonly node: NodeEmitter;
  private counter = 0;
  private readonly scalars = new Map<string, string>();

  constructor(
    private readonly shapes: ReadonlyMap<string, readonly number[]>,
    private readonly constants: ReadonlyMap<string, readonly number[]>,
  ) {
    this.node = nodeEmitter(this.nodes);
  }

  fresh(hint: string): string {
    return `${hint}__${this.counter++}`;
  }

  shape(value: string): readonly number[] {
    const s = this.shapes.get(value);
    if (s === undefined) throw new Error(`no static shape is known for ${value}`);
    return s;
  }

  ints(value: string): readonly number[] | undefined {
    return this.constants.get(value);
  }

  constant(values: readonly number[], dims: readonly number[], elemType: number): string {
    const key = `${elemType}|${dims.join(',')}|${values.join(',')}`;
    const known = this.scalars.get(key);
    if (known !== undefined) return known;
    const name = this.fresh('c');
    this.initializers.push(tensorInitializer(name, dims, values, elemType));
    this.scalars.set(key, name);
    return name;
  }

  /** The ModelProto (opset 17) of the collected nodes and initializers with the given encoded inputs and outputs. */
  model(name: string, inputs: Uint8Array[], outputs: Uint8Array[], extraInitializers: Uint8Array[] = []): Uint8Array {
    return modelProto(name, this.nodes, [...this.initializers, ...extraInitializers], inputs, outputs);
  }
}
