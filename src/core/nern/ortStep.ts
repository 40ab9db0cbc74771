/**
 * A native training step for the NeRN reconstruction phase through the optional `onnxruntime-node` package (MLAS
 * GEMM). onnxruntime has no autodiff, so one Adam step of the fixed predictor MLP is written out as ONE ONNX graph:
 * inputs are the batch (encodings, targets, per-row output scale, optional mask), the represented-entry count, all
 * parameters, the Adam moments and the step's scalars; outputs are the loss, the updated parameters and moments. The
 * forward pass is Gemm(+Relu) per layer, the loss is exactly `rmseLoss` (predictor.ts), the backward pass is
 * hand-written Gemm with transA/transB and ReLU masks, and the update is exactly `NernOptimizer`'s Adam. For
 * quantisation-aware training a second graph fake-quantises every layer's weight in-graph (ReduceMax/Abs/Div/Round/
 * Clip/Mul: the int8/int4 rule of tensors/quantize.ts; ONNX Round is half-to-even like the rule) and uses it in the
 * forward and backward passes, while the gradient updates the float weight (straight-through). The package is loaded
 * at run time only; when it is missing or fails, callers fall back to the tfjs step.
 */
import { availableParallelism } from 'node:os';
import type { OrtModuleLike, OrtSessionLike, OrtTensorLike } from '../backend/onnxRuntime';
import { modelProto, nodeEmitter, ONNX_INT64, scalarInitializer, valueInfoProto } from '../backend/onnxGraph';
import { nativeSessionOptions, type NativeDevice } from '../backend/nativeDevice';
import { ProtoWriter } from '../containers/protobufWriter';
import type { QuantBits } from '../tensors/quantize';
import { learningRateAt, type OptimizerConfig } from './optimizer';
import { adamConstants, adamScalars, emitAdam, emitFakeQuant, fakeQuantConstants } from './ortEmitters';
import { layerShapes, type PredictorSpec, type PredictorWeights } from './predictor';

export {
  loadOnnxRuntime,
  ORT_PACKAGE,
  type OrtLoad,
  type OrtModuleLike,
  type OrtModuleLoader,
  type OrtSessionLike,
  type OrtTensorLike,
} from '../backend/onnxRuntime';

/** Why `config` cannot run in the ONNX step, or null if it can (Adam with any weight decay; no lookahead/GC/RAdam). */
export function ortUnsupportedReason(config: OptimizerConfig): string | null {
  if (config.kind !== 'adam') return `the onnxruntime step implements Adam only, not ${config.kind}`;
  if (config.lookahead) return 'the onnxruntime step does not implement lookahead';
  if (config.gradientCentralization) return 'the onnxruntime step does not implement gradient centralisation';
  return null;
}

/** Default intra-op threads: the machine's parallelism, capped at 4 (the GEMMs here are small). */
export function defaultOrtThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

/**
 * A one-node-chain ONNX model (opset 17) of the in-graph fake quantisation alone: input `w` [rows, cols], output
 * `wq` [rows, cols] = dequant(quant(w)) per column. The training step emits the same nodes; tests hold this graph to
 * tensors/quantize.ts.
 */
export function buildFakeQuantModel(rows: number, cols: number, bits: QuantBits): Uint8Array {
  const nodes: Uint8Array[] = [];
  emitFakeQuant(nodeEmitter(nodes), 'w', 'wq');
  return modelProto(
    'nern_fake_quant',
    nodes,
    fakeQuantConstants(bits).map(([n, v]) => scalarInitializer(n, v)),
    [valueInfoProto('w', [rows, cols])],
    [valueInfoProto('wq', [rows, cols])],
  );
}

/** What the training-step graph is built for. */
export interface TrainStepGraphSpec {
  spec: PredictorSpec;
  /** Whether a [B, outputs] 0/1 mask input is present (layouts with 1×1 layers). */
  masked: boolean;
  beta1: number;
  beta2: number;
  eps: number;
  /** L2 weight decay added to the gradient (0 = none). */
  l2: number;
  /** Whether a scalar `decay` input multiplies parameters before the update (decoupled weight decay). */
  decoupled: boolean;
  /**
   * Quantisation-aware training: the forward and backward passes use every weight fake-quantised to these bits
   * (`emitFakeQuant`), the gradient updates the float weight (straight-through). Absent = plain float training.
   */
  quantBits?: QuantBits;
}

/** Names of parameter i's tensors in the graph: the parameter, its Adam moments, and their updated outputs. */
export function ortParamNames(spec: PredictorSpec): string[] {
  return layerShapes(spec).flatMap((_, i) => [`w${i}`, `b${i}`]);
}

/**
 * Builds the ONNX ModelProto (opset 17, IR 8, float32) of one training step. Inputs: `x` [B, in], `t` [B, out],
 * `s` [B, 1], `mask` [B, out] if masked, `count` (represented entries, > 0), `stepScale` (lr / (1 − β1^t)),
 * `denomScale` (1 / √(1 − β2^t)), `decay` if decoupled, then per parameter p (w0, b0, w1, …): `p`, `m_p`, `v_p`.
 * Outputs: `loss`, then `p_new`, `m_p_new`, `v_p_new` per parameter. Weights are [in, out] as in tfjs.
 */
export function buildTrainStepModel(g: TrainStepGraphSpec): Uint8Array {
  const shapes = layerShapes(g.spec);
  const L = shapes.length;
  const nodes: Uint8Array[] = [];
  const inputs: Uint8Array[] = [];
  const outputs: Uint8Array[] = [];
  const inits: Uint8Array[] = [];
  const node = nodeEmitter(nodes);
  const valueInfo = valueInfoProto;
  const scalarInit = (name: string, value: number): void => {
    inits.push(scalarInitializer(name, value));
  };
  const axesInit = (name: string, axes: number[]): void => {
    inits.push(
      new ProtoWriter()
        .packedVarints(1, [axes.length])
        .varint(2, ONNX_INT64)
        .packedVarints(7, axes)
        .string(8, name)
        .finish(),
    );
  };

  const { inputs: nIn, outputs: nOut } = g.spec;
  inputs.push(valueInfo('x', ['B', nIn]), valueInfo('t', ['B', nOut]), valueInfo('s', ['B', 1]));
  if (g.masked) inputs.push(valueInfo('mask', ['B', nOut]));
  inputs.push(valueInfo('count', []), valueInfo('stepScale', []), valueInfo('denomScale', []));
  if (g.decoupled) inputs.push(valueInfo('decay', []));
  outputs.push(valueInfo('loss', []));
  const params: { name: string; dims: number[] }[] = [];
  shapes.forEach(([fanIn, fanOut], i) => {
    params.push({ name: `w${i}`, dims: [fanIn, fanOut] }, { name: `b${i}`, dims: [fanOut] });
  });
  for (const p of params) {
    for (const prefix of ['', 'm_', 'v_']) {
      inputs.push(valueInfo(`${prefix}${p.name}`, p.dims));
      outputs.push(valueInfo(`${prefix}${p.name}_new`, p.dims));
    }
  }
  for (const [n, v] of adamConstants(g.beta1, g.beta2, g.eps)) scalarInit(n, v);
  scalarInit('c_zero', 0);
  scalarInit('c_tiny', 1e-30);
  if (g.l2 > 0) scalarInit('c_l2', g.l2);
  axesInit('c_axis0', [0]);

  // The weights the passes use: w_i itself, or its fake quantisation (the gradient still updates w_i: straight-through).
  const used = shapes.map((_, i) => (g.quantBits === undefined ? `w${i}` : `wq${i}`));
  if (g.quantBits !== undefined) {
    for (const [n, v] of fakeQuantConstants(g.quantBits)) scalarInit(n, v);
    shapes.forEach((_, i) => {
      emitFakeQuant(node, `w${i}`, `wq${i}`);
    });
  }
  // Forward: h_i = relu(h_{i−1}·w_i + b_i); y = h_{L−2}·w_{L−1} + b_{L−1}.
  let a = 'x';
  for (let i = 0; i < L; i++) {
    node('Gemm', [a, used[i] ?? '', `b${i}`], [`z${i}`]);
    if (i < L - 1) {
      node('Relu', [`z${i}`], [`h${i}`]);
      a = `h${i}`;
    }
  }
  // Loss, exactly rmseLoss: d = (y·s − t)[·mask]; loss = √(Σd² / count); dL/dy = d / max(loss·count, 1e−30) · s.
  node('Mul', [`z${L - 1}`, 's'], ['ys']);
  node('Sub', ['ys', 't'], [g.masked ? 'd0' : 'd']);
  if (g.masked) node('Mul', ['d0', 'mask'], ['d']);
  node('Mul', ['d', 'd'], ['d2']);
  node('ReduceSum', ['d2'], ['ss'], [{ name: 'keepdims', i: 0 }]);
  node('Div', ['ss', 'count'], ['ms']);
  node('Sqrt', ['ms'], ['loss']);
  node('Mul', ['loss', 'count'], ['lc']);
  node('Max', ['lc', 'c_tiny'], ['den']);
  node('Div', ['d', 'den'], ['gd']);
  node('Mul', ['gd', 's'], [`dz${L - 1}`]);
  // Backward: dw_i = h_{i−1}ᵀ·dz_i, db_i = Σ_rows dz_i, dz_{i−1} = (dz_i·w_iᵀ) ⊙ (h_{i−1} > 0); none for x.
  for (let i = L - 1; i >= 0; i--) {
    const input = i === 0 ? 'x' : `h${i - 1}`;
    node('Gemm', [input, `dz${i}`], [`gw${i}`], [{ name: 'transA', i: 1 }]);
    node('ReduceSum', [`dz${i}`, 'c_axis0'], [`gb${i}`], [{ name: 'keepdims', i: 0 }]);
    if (i > 0) {
      node('Gemm', [`dz${i}`, used[i] ?? ''], [`dh${i - 1}`], [{ name: 'transB', i: 1 }]);
      node('Greater', [`h${i - 1}`, 'c_zero'], [`pos${i - 1}`]);
      node('Where', [`pos${i - 1}`, `dh${i - 1}`, 'c_zero'], [`dz${i - 1}`]);
    }
  }
  // Adam, exactly NernOptimizer (ortEmitters.ts).
  for (const { name: p } of params) emitAdam(node, p, `g${p}`, { l2: g.l2 > 0, decoupled: g.decoupled });

  return modelProto('nern_train_step', nodes, inits, inputs, outputs);
}

/** One batch of training data, row-major, `rows` = batch size. */
export interface OrtBatch {
  /** [rows, inputs] encodings. */
  x: Float32Array;
  /** [rows, outputs] targets (weight units). */
  t: Float32Array;
  /** [rows] per-row output scale. */
  s: Float32Array;
  /** [rows, outputs] 0/1 mask, or null when the graph is unmasked. */
  mask: Float32Array | null;
  /** Represented entries in the batch (Σ mask), > 0. */
  count: number;
}

/**
 * The predictor's parameters and Adam state as host arrays, stepped by an onnxruntime session running the graph of
 * `buildTrainStepModel`. Schedule, bias correction, `lrScale` and `reset` follow `NernOptimizer` exactly. Created with
 * `quantBits`, it also holds the quantisation-aware graph, which `step(batch, true)` runs on the same state.
 */
export class OrtTrainer {
  /** Intra-op threads of the session. */
  readonly threads: number;
  /** The device the session runs on. */
  readonly device: NativeDevice;
  private params: Float32Array[];
  private m: Float32Array[];
  private v: Float32Array[];
  private readonly dims: number[][];
  private readonly names: string[];
  private t = 0;
  private tm = 0;
  private lastLr = 0;
  /** Multiplies the scheduled learning rate (the collapse guard lowers it after a rollback). */
  lrScale = 1;

  private constructor(
    private readonly ort: OrtModuleLike,
    private readonly session: OrtSessionLike,
    private readonly qatSession: OrtSessionLike | null,
    private readonly spec: PredictorSpec,
    private readonly config: OptimizerConfig,
    private readonly masked: boolean,
    weights: PredictorWeights,
    threads: number,
    device: NativeDevice,
  ) {
    this.threads = threads;
    this.device = device;
    this.names = ortParamNames(spec);
    this.dims = layerShapes(spec).flatMap(([i, o]) => [[i, o], [o]]);
    this.params = weights.layers.flatMap((l) => [Float32Array.from(l.weight), Float32Array.from(l.bias)]);
    this.m = this.params.map((p) => new Float32Array(p.length));
    this.v = this.params.map((p) => new Float32Array(p.length));
  }

  /**
   * Builds the graph and the session. Throws (with a one-line message) if `config` is unsupported or the runtime
   * rejects the model; callers fall back to tfjs.
   */
  static async create(
    ort: OrtModuleLike,
    weights: PredictorWeights,
    config: OptimizerConfig,
    options: { masked: boolean; threads?: number; quantBits?: QuantBits; device?: NativeDevice },
  ): Promise<OrtTrainer> {
    const unsupported = ortUnsupportedReason(config);
    if (unsupported !== null) throw new Error(unsupported);
    const spec = weights.spec;
    const shapes = layerShapes(spec);
    if (weights.layers.length !== shapes.length)
      throw new RangeError(`predictor weights have ${weights.layers.length} layers, expected ${shapes.length}`);
    shapes.forEach(([fanIn, fanOut], i) => {
      const l = weights.layers[i];
      if (l?.weight.length !== fanIn * fanOut || l.bias.length !== fanOut)
        throw new RangeError(`predictor layer ${i} must be [${fanIn}, ${fanOut}] with ${fanOut} biases`);
    });
    const threads = Math.max(1, Math.floor(options.threads ?? defaultOrtThreads()));
    const graphSpec: TrainStepGraphSpec = {
      spec,
      masked: options.masked,
      beta1: config.beta1,
      beta2: config.beta2,
      eps: config.eps,
      l2: config.weightDecay > 0 && config.weightDecayMode === 'l2' ? config.weightDecay : 0,
      decoupled: config.weightDecay > 0 && config.weightDecayMode === 'decoupled',
    };
    const device = options.device ?? 'cpu';
    // Denormals slow native arithmetic as well; the optimiser state drifts towards them in stalled runs. Idle threads
    // sleep instead of spinning (nativeSessionOptions): measured 46 vs 49 steps/s on an idle 2-core machine, but
    // spinning threads fall to 8–15 steps/s (below 1 thread's 25) when other work shares the cores, as in an editor.
    const open = (model: Uint8Array): Promise<OrtSessionLike> =>
      ort.InferenceSession.create(model, nativeSessionOptions(device, threads, { set_denormal_as_zero: '1' }));
    const session = await open(buildTrainStepModel(graphSpec));
    let qatSession: OrtSessionLike | null = null;
    if (options.quantBits !== undefined) {
      try {
        qatSession = await open(buildTrainStepModel({ ...graphSpec, quantBits: options.quantBits }));
      } catch (e) {
        await session.release();
        throw e;
      }
    }
    return new OrtTrainer(ort, session, qatSession, spec, config, options.masked, weights, threads, device);
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.t;
  }

  /** Learning rate the next step will use. */
  get nextLr(): number {
    return learningRateAt(this.config.schedule, this.config.lr, this.t) * this.lrScale;
  }

  /** Learning rate used by the last step (0 before the first). */
  get lr(): number {
    return this.lastLr;
  }

  /**
   * One Adam step on `batch`; resolves to the batch RMSE before the update (weight units). `quantized`: through the
   * quantisation-aware graph (the loss is then the fake-quantised predictor's); only for a trainer made with
   * `quantBits`.
   */
  async step(batch: OrtBatch, quantized = false): Promise<number> {
    const session = quantized ? this.qatSession : this.session;
    if (session === null) throw new Error('this trainer was made without quantBits, so it has no quantised step');
    const c = this.config;
    const rows = batch.s.length;
    const { inputs, outputs } = this.spec;
    if (
      batch.x.length !== rows * inputs ||
      batch.t.length !== rows * outputs ||
      (batch.mask?.length ?? rows * outputs) !== rows * outputs
    ) {
      throw new RangeError(`training batch of ${rows} rows has mismatched encodings, targets or mask`);
    }
    if ((batch.mask !== null) !== this.masked)
      throw new RangeError(`training batch ${this.masked ? 'needs' : 'must not have'} a mask`);
    const scalars = adamScalars(c, this.t, this.tm, this.lrScale);
    this.t += 1;
    this.tm += 1;
    this.lastLr = scalars.lr;
    const T = this.ort.Tensor;
    const scalar = (x: number): OrtTensorLike => new T('float32', Float32Array.of(x), []);
    const feeds: Record<string, OrtTensorLike> = {
      x: new T('float32', batch.x, [rows, inputs]),
      t: new T('float32', batch.t, [rows, outputs]),
      s: new T('float32', batch.s, [rows, 1]),
      count: scalar(batch.count),
      stepScale: scalar(scalars.stepScale),
      denomScale: scalar(scalars.denomScale),
    };
    if (batch.mask) feeds.mask = new T('float32', batch.mask, [rows, outputs]);
    if (scalars.decay !== undefined) feeds.decay = scalar(scalars.decay);
    this.names.forEach((n, i) => {
      const dims = this.dims[i] ?? [];
      feeds[n] = new T('float32', this.params[i] ?? new Float32Array(0), dims);
      feeds[`m_${n}`] = new T('float32', this.m[i] ?? new Float32Array(0), dims);
      feeds[`v_${n}`] = new T('float32', this.v[i] ?? new Float32Array(0), dims);
    });
    const out = await session.run(feeds);
    const take = (name: string, length: number): Float32Array => {
      const data = out[name]?.data;
      if (!(data instanceof Float32Array) || data.length !== length)
        throw new Error(`onnxruntime returned no ${name} of ${length} floats`);
      return data;
    };
    this.params = this.params.map((p, i) => take(`${this.names[i] ?? ''}_new`, p.length));
    this.m = this.m.map((p, i) => take(`m_${this.names[i] ?? ''}_new`, p.length));
    this.v = this.v.map((p, i) => take(`v_${this.names[i] ?? ''}_new`, p.length));
    return take('loss', 1)[0] ?? Number.NaN;
  }

  /** A copy of the current parameters. */
  weights(): PredictorWeights {
    return {
      spec: { ...this.spec },
      layers: layerShapes(this.spec).map((_, i) => ({
        weight: Float32Array.from(this.params[2 * i] ?? []),
        bias: Float32Array.from(this.params[2 * i + 1] ?? []),
      })),
    };
  }

  /** Copies of the current parameters in variable order [w0, b0, w1, …] (for snapshots). */
  snapshot(): Float32Array[] {
    return this.params.map((p) => Float32Array.from(p));
  }

  /** Restores parameters from `snapshot()` output (copied in). */
  restore(snapshot: readonly Float32Array[]): void {
    this.params = this.params.map((p, i) => Float32Array.from(snapshot[i] ?? p));
  }

  /** Resets the moments (after a restore); the schedule position is kept, as `NernOptimizer.reset`. */
  reset(): void {
    this.tm = 0;
    this.m = this.m.map((x) => new Float32Array(x.length));
    this.v = this.v.map((x) => new Float32Array(x.length));
  }

  /** Flushes values below `threshold` in magnitude to zero in parameters and moments (as `NernOptimizer`). */
  flushDenormals(threshold = 1e-30): void {
    for (const arr of [...this.params, ...this.m, ...this.v]) {
      for (let i = 0; i < arr.length; i++) if (Math.abs(arr[i] ?? 0) < threshold) arr[i] = 0;
    }
  }

  /** Releases the native session. */
  async dispose(): Promise<void> {
    await this.session.release();
    await this.qatSession?.release();
  }
}
