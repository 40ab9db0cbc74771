/**
 * The native distillation step (NERN.md "Distillation phase") through the optional `onnxruntime-node` package: one
 * ONNX training graph per job, run once per step. The graph holds the predictor forward pass (Gemm/Relu on the
 * constant kernel encodings, every weight fake-quantised in-graph for quantisation-aware training), the regeneration
 * of every represented weight the network uses from the predictor's rows (scale, reshape, transposes, slices, as
 * jobs/distill.ts's `toWeight`), the student network on those weights (graph/onnxLowering.ts), the loss exactly as
 * the TensorFlow.js step computes it (losses.ts: KL at temperature T ×T², or the relative output MSE of a
 * non-classifier, the feature-map and reconstruction terms), its reverse-mode gradient from the rule table
 * (graph/onnxGradients.ts) back into the predictor, and the Adam update (ortEmitters.ts). The teacher runs as a
 * second, forward-only graph whose logits and block pre-activations feed the training graph. Everything is written
 * as graph-IR nodes first, so one executor run (the lowering's) gives every static shape, and the gradient rules see
 * the same nodes the forward pass emits.
 */
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { nativeSessionOptions, type NativeDevice } from '../backend/nativeDevice';
import { ONNX_FLOAT, scalarInitializer, valueInfoProto } from '../backend/onnxGraph';
import { firstLine, type OrtModuleLike, type OrtSessionLike, type OrtTensorLike } from '../backend/onnxRuntime';
import type { Graph, InitializerInfo, Node, ValueInfo } from '../graph/ir';
import { emitBackward, missingGradientRule, OnnxGraphBuilder } from '../graph/onnxGradients';
import {
  constantInitializer,
  emitLoweredNode,
  lowerForward,
  loweringUnsupported,
  type LoweredForward,
} from '../graph/onnxFolding';
import type { QuantBits } from '../tensors/quantize';
import type { ArtifactLayer } from './artifact';
import { CENTRE } from './kernelMap';
import { STUDENT_LOG_FLOOR } from './losses';
import type { OptimizerConfig } from './optimizer';
import { adamConstants, adamScalars, emitAdam, emitFakeQuant, fakeQuantConstants } from './ortEmitters';
import { layerShapes, type PredictorWeights } from './predictor';
import { BLOCK } from './tiling';

/** A represented layer the network uses: its rows [start, start + kernels) of the encoding matrix and output scale. */
export interface DistillLayer {
  readonly name: string;
  readonly layer: ArtifactLayer;
  readonly start: number;
  readonly kernels: number;
  readonly scale: number;
}

/** The loss of one distillation step (see jobs/distill.ts). */
export interface DistillLossSpec {
  /** KL on logits (true) or the relative output MSE (false). */
  readonly classifier: boolean;
  readonly temperature: number;
  readonly klWeight: number;
  readonly featureWeight: number;
  readonly reconstructionWeight: number;
  /** Σ ‖W_orig‖² over the bound layers (> 0), the reconstruction term's divisor. */
  readonly originalSquaredNorm: number;
}

/** What the native distillation graphs are built from. */
export interface OrtDistillSpec {
  /** The student network (its first output is the logits). */
  readonly graph: Graph;
  /** The model's own float32 weights: every initializer of `graph` (the bound layers' are the reconstruction targets). */
  readonly weights: Readonly<Record<string, tf.Tensor>>;
  /** The teacher network and its weights (the same objects as the student's when the model teaches itself). */
  readonly teacherGraph: Graph;
  readonly teacherWeights: Readonly<Record<string, tf.Tensor>>;
  /** Shapes (batch first, the job's batch size) of the student's and the teacher's image inputs. */
  readonly inputShape: readonly number[];
  readonly teacherInputShape: readonly number[];
  /** Values of both graphs compared by the feature-map term (empty: no feature term). */
  readonly features: readonly string[];
  readonly layers: readonly DistillLayer[];
  /** Encodings of the bound layers' kernels, [Σ kernels, width] row-major. */
  readonly encodings: Float32Array;
  readonly predictor: PredictorWeights;
  readonly loss: DistillLossSpec;
  /** Adam (the only optimiser of the step), with its schedule. */
  readonly optimizer: OptimizerConfig;
  /** Quantisation-aware training: the predictor's weights fake-quantised to these bits, straight-through. */
  readonly quantBits?: QuantBits;
  /** Also output the loss's gradient of every parameter as `grad_<param>` (tests). */
  readonly gradientOutputs?: boolean;
}

/** The two ONNX models of a native distillation, with what running them needs. */
export interface OrtDistillModels {
  /** The training step: inputs image, teacher values, parameters, moments, Adam scalars; see `OrtDistillTrainer`. */
  readonly train: Uint8Array;
  /** The teacher's forward pass: image → logits and feature values. */
  readonly teacher: Uint8Array;
  /** Names of the teacher outputs, in the order the training graph takes them as inputs. */
  readonly teacherOutputs: readonly string[];
  /** Shapes of the teacher outputs. */
  readonly teacherShapes: readonly (readonly number[])[];
  /** Parameter names of the training graph, in predictor variable order [w0, b0, w1, …]. */
  readonly params: readonly string[];
}

/** Graph-input names of the training graph besides the parameters. */
const TEACHER_INPUT = 'wl_teacher_';
const PARAM_PREFIX = 'wl_p_';
/** Loss outputs of the training graph. */
export const DISTILL_LOSS_OUTPUTS = ['wl_loss', 'wl_kl', 'wl_feature', 'wl_reconstruction'] as const;

/** The training graph's name of predictor parameter i in variable order (w0, b0, w1, b1…). */
function paramNames(predictor: PredictorWeights): string[] {
  return layerShapes(predictor.spec).flatMap((_, i) => [`${PARAM_PREFIX}w${i}`, `${PARAM_PREFIX}b${i}`]);
}

/** IR nodes, initializers and their values, built up for the combined graph. */
class IrBuilder {
  readonly nodes: Node[] = [];
  readonly initializers: Map<string, InitializerInfo>;
  readonly values: Record<string, tf.Tensor>;
  private counter = 0;

  /** `owned` receives every tensor the builder makes (the caller disposes them). */
  constructor(
    graph: Graph,
    weights: Readonly<Record<string, tf.Tensor>>,
    drop: ReadonlySet<string>,
    private readonly owned: tf.Tensor[],
  ) {
    this.initializers = new Map([...graph.initializers].filter(([n]) => !drop.has(n)));
    this.values = {};
    for (const name of this.initializers.keys()) {
      const t = weights[name];
      if (t !== undefined) this.values[name] = t;
    }
  }

  /** Adds one node; returns its output names (`outputs` given, or fresh ones). */
  op(op: string, inputs: string[], attrs: Node['attrs'] = {}, outputs?: string[] | number): string[] {
    const k = this.counter++;
    const outs = Array.isArray(outputs)
      ? outputs
      : Array.from({ length: outputs ?? 1 }, (_, j) => `wl_${k}_${op}_${j}`);
    this.nodes.push({ op, name: `wl_${k}_${op}`, inputs, outputs: outs, attrs });
    return outs;
  }

  /** `op` with one output. */
  op1(op: string, inputs: string[], attrs: Node['attrs'] = {}): string {
    return this.op(op, inputs, attrs)[0] ?? '';
  }

  /** A constant initializer (float32, or int64 as `I64`). */
  constant(values: ArrayLike<number>, shape: readonly number[], dtype: 'F32' | 'I64' = 'F32'): string {
    const name = `wl_c${this.counter++}`;
    const t = tf.tensor(Float32Array.from(values), shape.slice(), 'float32');
    this.owned.push(t);
    this.initializers.set(name, { dtype, shape: shape.slice(), constant: dtype !== 'F32' });
    this.values[name] = t;
    return name;
  }

  ints(values: readonly number[]): string {
    return this.constant(values, [values.length], 'I64');
  }

  scalar(v: number): string {
    return this.constant([v], []);
  }

  /** Σ over all axes (keepdims 0). */
  sumAll(x: string): string {
    return this.op1('ReduceSum', [x], { keepdims: 0 });
  }

  /** Mean over all axes (keepdims 0). */
  meanAll(x: string): string {
    return this.op1('ReduceMean', [x], { keepdims: 0 });
  }
}

/** Emits a layer's weight from its predictor rows [kernels, 9] (unscaled), exactly jobs/distill.ts's `toWeight`. */
function emitToWeight(b: IrBuilder, rows: string, l: DistillLayer): void {
  const [cout, cin, k] = l.layer.kernelShape;
  const scaled = b.op1('Mul', [rows, b.scalar(l.scale)]);
  const tile = l.layer.tile;
  if (tile.kind === 'conv') {
    const oihw =
      k === 1
        ? b.op1('Reshape', [
            b.op1('Slice', [scaled, b.ints([CENTRE]), b.ints([CENTRE + 1]), b.ints([1])]),
            b.ints([cout, cin, 1, 1]),
          ])
        : b.op1('Reshape', [scaled, b.ints([cout, cin, k, k])]);
    if (tile.layout === 'hwio') b.op('Transpose', [oihw], { perm: [2, 3, 1, 0] }, [l.name]);
    else b.op('Identity', [oihw], {}, [l.name]);
    return;
  }
  const blocks = b.op1('Reshape', [scaled, b.ints([cout, cin, BLOCK, BLOCK])]);
  const swapped = b.op1('Transpose', [blocks], { perm: [0, 2, 1, 3] });
  const matrix = b.op1('Reshape', [swapped, b.ints([cout * BLOCK, cin * BLOCK])]);
  const cut = b.op1('Slice', [matrix, b.ints([0, 0]), b.ints([tile.rows, tile.cols]), b.ints([0, 1])]);
  b.op('Reshape', [cut, b.ints(l.layer.shape)], {}, [l.name]);
}

/** The feature-map term's normalisation of one map: each sample flattened and divided by its L2 norm + 1e-3. */
function normalisedMap(b: IrBuilder, x: string, batch: number): string {
  const flat = b.op1('Reshape', [x, b.ints([batch, -1])]);
  const norm = b.op1('Sqrt', [b.op1('ReduceSum', [b.op1('Mul', [flat, flat]), b.ints([1])], { keepdims: 1 })]);
  return b.op1('Div', [flat, b.op1('Add', [norm, b.scalar(1e-3)])]);
}

/** Emits the loss nodes (losses.ts, combined as jobs/distill.ts does); returns the names of loss, kl, feature, reconstruction. */
function emitLoss(
  b: IrBuilder,
  spec: OrtDistillSpec,
  studentLogits: string,
  teacherLogits: string,
  pairs: readonly [string, string][],
): [string, string, string, string] {
  const L = spec.loss;
  const T = L.temperature;
  let kl: string;
  if (L.classifier) {
    const cT = b.scalar(T);
    const p = b.op1('Softmax', [b.op1('Div', [teacherLogits, cT])], { axis: -1 });
    const logP = b.op1('Log', [b.op1('Add', [p, b.scalar(1e-12)])]);
    const q = b.op1('Softmax', [b.op1('Div', [studentLogits, cT])], { axis: -1 });
    const logQ = b.op1('Log', [b.op1('Add', [q, b.scalar(STUDENT_LOG_FLOOR)])]);
    const perSample = b.op1('ReduceSum', [b.op1('Mul', [p, b.op1('Sub', [logP, logQ])]), b.ints([-1])], {
      keepdims: 0,
    });
    kl = b.op1('Mul', [b.meanAll(perSample), b.scalar(T * T)]);
  } else {
    const d = b.op1('Sub', [studentLogits, teacherLogits]);
    const num = b.meanAll(b.op1('Mul', [d, d]));
    const den = b.op1('Add', [b.meanAll(b.op1('Mul', [teacherLogits, teacherLogits])), b.scalar(1e-12)]);
    kl = b.op1('Div', [num, den]);
  }
  let feature = b.scalar(0);
  if (pairs.length > 0) {
    const batch = spec.inputShape[0] ?? 1;
    let sum = '';
    for (const [teacher, student] of pairs) {
      const d = b.op1('Sub', [normalisedMap(b, student, batch), normalisedMap(b, teacher, batch)]);
      const term = b.meanAll(b.op1('ReduceSum', [b.op1('Mul', [d, d]), b.ints([1])], { keepdims: 0 }));
      sum = sum === '' ? term : b.op1('Add', [sum, term]);
    }
    feature = b.op1('Div', [sum, b.scalar(pairs.length)]);
  }
  let reconstruction = b.scalar(0);
  if (L.reconstructionWeight > 0) {
    let sum = '';
    for (const l of spec.layers) {
      const original = spec.weights[l.name];
      if (original === undefined) throw new Error(`no original values for ${l.name}`);
      const target = b.constant(original.dataSync(), original.shape);
      const d = b.op1('Sub', [l.name, target]);
      const term = b.sumAll(b.op1('Mul', [d, d]));
      sum = sum === '' ? term : b.op1('Add', [sum, term]);
    }
    reconstruction = b.op1('Div', [sum, b.scalar(L.originalSquaredNorm)]);
  }
  const total = b.op1('Sum', [
    b.op1('Mul', [kl, b.scalar(L.klWeight)]),
    b.op1('Mul', [feature, b.scalar(L.featureWeight)]),
    b.op1('Mul', [reconstruction, b.scalar(L.reconstructionWeight)]),
  ]);
  return [total, kl, feature, reconstruction];
}

/** Why the lowered nodes cannot be written to ONNX (an attribute the lowering does not emit), or undefined. */
function emissionProblem(lowered: LoweredForward): string | undefined {
  try {
    const probe = new OnnxGraphBuilder(new Map(), new Map());
    for (const n of lowered.nodes) emitLoweredNode(probe.node, n);
    return undefined;
  } catch (e) {
    return firstLine(e);
  }
}

/** The int values of the lowered constants small enough for rules to read (shapes, axes, pads). */
function smallConstants(lowered: LoweredForward): Map<string, readonly number[]> {
  const out = new Map<string, readonly number[]>();
  for (const [name, c] of lowered.constants) if (c.values.length <= 64) out.set(name, Array.from(c.values));
  return out;
}

const valueInfo = (lowered: LoweredForward, name: string): Uint8Array =>
  valueInfoProto(name, (lowered.shapes.get(name) ?? []).slice());

/**
 * Builds the native distillation graphs of `spec`, or says why the native engine cannot take this job (a reason
 * naming the op, e.g. "Tanh has no gradient rule on the native engine: Tanh"). Runs the functional executor once
 * (tidy; no tensor outlives the call).
 */
export function buildDistillModels(spec: OrtDistillSpec): { models: OrtDistillModels } | { reason: string } {
  const unsupported = loweringUnsupported(spec.graph) ?? loweringUnsupported(spec.teacherGraph);
  if (unsupported !== undefined) return { reason: unsupported };
  const logits = spec.graph.outputs[0] ?? '';
  const teacherLogits = spec.teacherGraph.outputs[0] ?? '';

  // The teacher: forward only, every weight a constant.
  const teacherOutputs = [teacherLogits, ...spec.features];
  const teacherInput = spec.teacherGraph.inputs[0];
  const studentInput = spec.graph.inputs[0];
  if (teacherInput === undefined || studentInput === undefined) return { reason: 'the model has no input' };
  const owned: tf.Tensor[] = [];
  try {
    const sample = tf.zeros(spec.teacherInputShape.slice());
    owned.push(sample);
    const teacherLowered = lowerForward({
      graph: { ...spec.teacherGraph, outputs: teacherOutputs },
      weights: spec.teacherWeights,
      inputs: { [teacherInput.name]: sample },
      live: new Set(),
    });
    const problem = emissionProblem(teacherLowered);
    if (problem !== undefined) return { reason: problem };
    const tb = new OnnxGraphBuilder(teacherLowered.shapes, new Map());
    for (const n of teacherLowered.nodes) emitLoweredNode(tb.node, n);
    const teacher = tb.model(
      'weight_lens_teacher',
      [valueInfo(teacherLowered, teacherInput.name)],
      teacherOutputs.map((o) => valueInfo(teacherLowered, o)),
      [...teacherLowered.constants].map(([n, c]) => constantInitializer(n, c)),
    );
    const teacherShapes = teacherOutputs.map((o) => (teacherLowered.shapes.get(o) ?? []).slice());

    // The student: predictor → regenerated weights → network → loss, as IR nodes.
    const bound = new Set(spec.layers.map((l) => l.name));
    const b = new IrBuilder(spec.graph, spec.weights, bound, owned);
    const params = paramNames(spec.predictor);
    const shapes = layerShapes(spec.predictor.spec);
    const width = spec.predictor.spec.inputs;
    const rows = spec.layers.reduce((n, l) => n + l.kernels, 0);
    const encoding = b.constant(spec.encodings, [rows, width]);
    // The weights the passes use: `u_<w>`, the parameter itself or its fake quantisation (emitted in ONNX below).
    const used = shapes.map((_, i) => `${params[2 * i] ?? ''}_used`);
    let h = encoding;
    shapes.forEach((_, i) => {
      const z = b.op1('Gemm', [h, used[i] ?? '', params[2 * i + 1] ?? '']);
      h = i < shapes.length - 1 ? b.op1('Relu', [z]) : z;
    });
    const perLayer = b.op('Split', [h, b.ints(spec.layers.map((l) => l.kernels))], { axis: 0 }, spec.layers.length);
    spec.layers.forEach((l, i) => {
      emitToWeight(b, perLayer[i] ?? '', l);
    });
    b.nodes.push(...spec.graph.nodes);
    const teacherNames = teacherOutputs.map((_, i) => `${TEACHER_INPUT}${i}`);
    const pairs = spec.features.map((f, i): [string, string] => [teacherNames[i + 1] ?? '', f]);
    const lossNames = emitLoss(b, spec, logits, teacherNames[0] ?? '', pairs);

    const inputs: ValueInfo[] = [
      studentInput,
      ...teacherNames.map((n, i) => ({ name: n, dtype: 'F32', shape: teacherShapes[i] ?? [] })),
      ...shapes.flatMap(([fanIn, fanOut], i) => [
        { name: used[i] ?? '', dtype: 'F32', shape: [fanIn, fanOut] },
        { name: params[2 * i + 1] ?? '', dtype: 'F32', shape: [fanOut] },
      ]),
    ];
    const combined: Graph = {
      inputs,
      outputs: [...lossNames],
      nodes: b.nodes,
      initializers: b.initializers,
      opset: spec.graph.opset,
    };
    const samples: Record<string, tf.Tensor> = {};
    for (const v of inputs) {
      const shape = v.name === studentInput.name ? spec.inputShape.slice() : v.shape.map((d) => d ?? 1);
      const t = tf.zeros(shape);
      owned.push(t);
      samples[v.name] = t;
    }
    const live = new Set<string>();
    const lowered = lowerForward({ graph: combined, weights: b.values, inputs: samples, live });
    const problem2 = emissionProblem(lowered);
    if (problem2 !== undefined) return { reason: problem2 };
    const g = new OnnxGraphBuilder(lowered.shapes, smallConstants(lowered));
    const wrt = shapes.flatMap((_, i) => [used[i] ?? '', params[2 * i + 1] ?? '']);
    const request = {
      nodes: lowered.nodes,
      seeds: new Map([[lossNames[0], g.constant([1], [], ONNX_FLOAT)]]),
      wrt,
      differentiableValue: (name: string): boolean => lowered.elemTypes.get(name) === ONNX_FLOAT,
    };
    const missing = missingGradientRule(request, g);
    if (missing !== undefined) return { reason: missing };

    // Forward: the used weights, then the lowered nodes; backward; Adam.
    const extra: Uint8Array[] = [];
    if (spec.quantBits !== undefined) {
      for (const [n, v] of fakeQuantConstants(spec.quantBits)) extra.push(scalarInitializer(n, v));
      shapes.forEach((_, i) => {
        emitFakeQuant(g.node, params[2 * i] ?? '', used[i] ?? '');
      });
    } else
      shapes.forEach((_, i) => {
        g.node('Identity', [params[2 * i] ?? ''], [used[i] ?? '']);
      });
    for (const n of lowered.nodes) emitLoweredNode(g.node, n);
    const grads = emitBackward(request, g);
    const c = spec.optimizer;
    for (const [n, v] of adamConstants(c.beta1, c.beta2, c.eps)) extra.push(scalarInitializer(n, v));
    const l2 = c.weightDecay > 0 && c.weightDecayMode === 'l2';
    const decoupled = c.weightDecay > 0 && c.weightDecayMode === 'decoupled';
    if (l2) extra.push(scalarInitializer('c_l2', c.weightDecay));
    const paramGrads = params.map((p, i) => {
      const name = grads.get(i % 2 === 0 ? (used[i / 2] ?? '') : p);
      if (name === undefined) throw new Error(`no gradient reaches predictor parameter ${p}`);
      return name;
    });
    params.forEach((p, i) => {
      emitAdam(g.node, p, paramGrads[i] ?? '', { l2, decoupled });
    });

    const dims = shapes.flatMap(([fanIn, fanOut]) => [[fanIn, fanOut], [fanOut]]);
    const graphInputs: Uint8Array[] = [
      valueInfoProto(studentInput.name, spec.inputShape.slice()),
      ...teacherNames.map((n, i) => valueInfoProto(n, (teacherShapes[i] ?? []).slice())),
      ...params.flatMap((p, i) => ['', 'm_', 'v_'].map((pre) => valueInfoProto(`${pre}${p}`, dims[i] ?? []))),
      valueInfoProto('stepScale', []),
      valueInfoProto('denomScale', []),
      ...(decoupled ? [valueInfoProto('decay', [])] : []),
    ];
    const graphOutputs: Uint8Array[] = [
      ...DISTILL_LOSS_OUTPUTS.map((n) => valueInfoProto(n, [])),
      ...params.flatMap((p, i) =>
        [`${p}_new`, `m_${p}_new`, `v_${p}_new`].map((n) => valueInfoProto(n, dims[i] ?? [])),
      ),
      ...(spec.gradientOutputs === true ? params.map((p, i) => valueInfoProto(`grad_${p}`, dims[i] ?? [])) : []),
    ];
    DISTILL_LOSS_OUTPUTS.forEach((n, i) => {
      g.node('Identity', [lossNames[i] ?? ''], [n]);
    });
    if (spec.gradientOutputs === true)
      params.forEach((p, i) => {
        g.node('Identity', [paramGrads[i] ?? ''], [`grad_${p}`]);
      });
    const train = g.model('weight_lens_distill_step', graphInputs, graphOutputs, [
      ...[...lowered.constants].map(([n, k]) => constantInitializer(n, k)),
      ...extra,
    ]);
    return { models: { train, teacher, teacherOutputs, teacherShapes, params } };
  } catch (e) {
    return { reason: `the network could not be written as an ONNX training graph (${firstLine(e)})` };
  } finally {
    tf.dispose(owned);
  }
}

/** Losses of one native step, before the update. */
export interface DistillStepLosses {
  loss: number;
  kl: number;
  feature: number;
  reconstruction: number;
}

/**
 * The predictor's parameters and Adam state as host arrays, stepped by the onnxruntime sessions of
 * `buildDistillModels`' graphs. Schedule and bias correction follow `NernOptimizer` exactly (ortEmitters.ts).
 */
export class OrtDistillTrainer {
  /** Intra-op threads of the sessions. */
  readonly threads: number;
  /** The device the sessions run on. */
  readonly device: NativeDevice;
  private params: Float32Array[];
  private m: Float32Array[];
  private v: Float32Array[];
  private readonly dims: number[][];
  private t = 0;
  private lastLr = 0;
  /** The gradients of the last step (only with `gradientOutputs`), in variable order. */
  lastGradients: Float32Array[] = [];

  private constructor(
    private readonly ort: OrtModuleLike,
    private readonly train: OrtSessionLike,
    private readonly teacher: OrtSessionLike,
    private readonly models: OrtDistillModels,
    private readonly spec: OrtDistillSpec,
    threads: number,
    device: NativeDevice,
  ) {
    this.threads = threads;
    this.device = device;
    this.dims = layerShapes(spec.predictor.spec).flatMap(([i, o]) => [[i, o], [o]]);
    this.params = spec.predictor.layers.flatMap((l) => [Float32Array.from(l.weight), Float32Array.from(l.bias)]);
    this.m = this.params.map((p) => new Float32Array(p.length));
    this.v = this.params.map((p) => new Float32Array(p.length));
  }

  /**
   * Opens sessions on `models` (from `buildDistillModels(spec)`) on `options.device` (default the CPU provider) with
   * `options.threads` intra-op threads (default every core); throws a one-line message if the runtime refuses.
   */
  static async create(
    ort: OrtModuleLike,
    spec: OrtDistillSpec,
    models: OrtDistillModels,
    options: { threads?: number; device?: NativeDevice } = {},
  ): Promise<OrtDistillTrainer> {
    if (spec.optimizer.kind !== 'adam' || spec.optimizer.lookahead !== null || spec.optimizer.gradientCentralization)
      throw new Error('the native distillation step implements plain Adam only');
    const threads = Math.max(1, Math.floor(options.threads ?? availableParallelism()));
    const device = options.device ?? 'cpu';
    const open = (model: Uint8Array): Promise<OrtSessionLike> =>
      ort.InferenceSession.create(model, nativeSessionOptions(device, threads, { set_denormal_as_zero: '1' }));
    const train = await open(models.train);
    let teacher: OrtSessionLike;
    try {
      teacher = await open(models.teacher);
    } catch (e) {
      await train.release();
      throw e;
    }
    return new OrtDistillTrainer(ort, train, teacher, models, spec, threads, device);
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.t;
  }

  /** Learning rate used by the last step (0 before the first). */
  get lr(): number {
    return this.lastLr;
  }

  /**
   * One step on a batch: `student` and `teacher` are the preprocessed images of the two networks (row-major, the
   * spec's input shapes). Resolves to the losses before the update.
   */
  async step(student: Float32Array, teacher: Float32Array): Promise<DistillStepLosses> {
    const T = this.ort.Tensor;
    const tin = this.spec.teacherGraph.inputs[0]?.name ?? '';
    const sin = this.spec.graph.inputs[0]?.name ?? '';
    const teacherOut = await this.teacher.run({
      [tin]: new T('float32', teacher, this.spec.teacherInputShape.slice()),
    });
    const s = adamScalars(this.spec.optimizer, this.t, this.t);
    const scalar = (x: number): OrtTensorLike => new T('float32', Float32Array.of(x), []);
    const feeds: Record<string, OrtTensorLike> = {
      [sin]: new T('float32', student, this.spec.inputShape.slice()),
      stepScale: scalar(s.stepScale),
      denomScale: scalar(s.denomScale),
    };
    if (s.decay !== undefined) feeds.decay = scalar(s.decay);
    this.models.teacherOutputs.forEach((o, i) => {
      const v = teacherOut[o];
      if (v === undefined) throw new Error(`the teacher graph returned no ${o}`);
      feeds[`${TEACHER_INPUT}${i}`] = v;
    });
    this.models.params.forEach((p, i) => {
      const dims = this.dims[i] ?? [];
      feeds[p] = new T('float32', this.params[i] ?? new Float32Array(0), dims);
      feeds[`m_${p}`] = new T('float32', this.m[i] ?? new Float32Array(0), dims);
      feeds[`v_${p}`] = new T('float32', this.v[i] ?? new Float32Array(0), dims);
    });
    const out = await this.train.run(feeds);
    const take = (name: string, length: number): Float32Array => {
      const data = out[name]?.data;
      if (!(data instanceof Float32Array) || data.length !== length)
        throw new Error(`onnxruntime returned no ${name} of ${length} floats`);
      return data;
    };
    const names = this.models.params;
    this.params = this.params.map((p, i) => take(`${names[i] ?? ''}_new`, p.length));
    this.m = this.m.map((p, i) => take(`m_${names[i] ?? ''}_new`, p.length));
    this.v = this.v.map((p, i) => take(`v_${names[i] ?? ''}_new`, p.length));
    if (this.spec.gradientOutputs === true)
      this.lastGradients = this.params.map((p, i) => Float32Array.from(take(`grad_${names[i] ?? ''}`, p.length)));
    this.t += 1;
    this.lastLr = s.lr;
    const [loss, kl, feature, reconstruction] = DISTILL_LOSS_OUTPUTS.map((n) => take(n, 1)[0] ?? Number.NaN);
    return { loss: loss ?? NaN, kl: kl ?? NaN, feature: feature ?? NaN, reconstruction: reconstruction ?? NaN };
  }

  /** A copy of the current parameters. */
  weights(): PredictorWeights {
    return {
      spec: { ...this.spec.predictor.spec },
      layers: layerShapes(this.spec.predictor.spec).map((_, i) => ({
        weight: Float32Array.from(this.params[2 * i] ?? []),
        bias: Float32Array.from(this.params[2 * i + 1] ?? []),
      })),
    };
  }

  /** Releases the native sessions. */
  async dispose(): Promise<void> {
    await this.train.release();
    await this.teacher.release();
  }
}
