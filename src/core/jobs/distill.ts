/**
 * The distillation phase (Choi et al.'s decoupled phase 2, NERN.md "Distillation phase"): starting from a
 * compression artifact's phase-1 predictor, the predictor is trained so that the network it regenerates behaves like
 * a teacher (the original model on its own weights, or another model on the same task). Each step regenerates every
 * represented weight the graph uses *differentiably* (predictor → kernels → weight tensors), runs the network on an
 * augmented batch, and back-propagates KL(teacher ‖ student) on the logits (temperature T, scaled by T²), plus
 * optionally the normalised feature-map term on block pre-activations and a reconstruction term towards the original
 * weights, through the weights into the predictor: dL/dθ = Σ_kernels J_θ(kernel)ᵀ · dL/dW_kernel. No labels are used.
 * Non-classifiers (e.g. super-resolution) use the output MSE relative to the teacher's mean square instead of KL.
 *
 * For a predictor that will be stored as int8 or int4, training is quantisation-aware by default: each step
 * regenerates the weights from the predictor fake-quantised per output unit (tensors/quantize.ts) and the gradient
 * passes straight through to the float weights; the held-out metrics are always those of the quantised predictor.
 *
 * Training runs on the native engine under a native backend preference (`auto`, `cpu-native`, `cuda`, `webgpu`) when
 * onnxruntime-node loads and every op between the represented weights and the loss has a gradient rule (one ONNX
 * training graph per job, nern/ortDistill.ts), on the device `chooseNativeDevice` picks (a GPU only when it passes
 * its self-check); else on TensorFlow.js. Either way the progress and the report name the engine and say why it is
 * not the one asked for. The held-out evaluations run on the model runner's engine (onnxruntime for ONNX models when
 * it loads). The result is a new artifact (written atomically; the source artifact is never touched) whose metadata
 * records both phases and the held-out metrics before and after.
 */
import { basename } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '../graph/gradients';
import { DEFAULT_DISTILL_OPTIONS } from '../../protocol/defaults';
import { distilledPathFor } from '../../protocol/paths';
import {
  chanceWarning,
  type DistillEvalDto,
  type DistillOptionsDto,
  type DistillProgressDto,
  type DistillReportDto,
  type EvalMetricsDto,
  type LayerDriftDto,
} from '../../protocol/evaluate';
import { ensureBackend } from '../backend/tfjsBackend';
import { openDataset, type Dataset } from '../data/dataset';
import { applyPreprocessing, type PreprocessSpec } from '../data/preprocess';
import { compareOutputs, type EvalSetup } from './evaluate';
import { openModelRunner, type ModelRunner } from '../models/runner';
import { executeGraph, weightTensors } from '../graph/execute';
import type { Graph } from '../graph/ir';
import { BadInputError, throwIfAborted } from '../io/errors';
import { loadExecutableModel, type ExecutableModel } from '../models/executableModel';
import type { ArtifactErrors } from '../../protocol/artifact';
import type { LayerErrorDto } from '../../protocol/compress';
import {
  readArtifact,
  artifactVersionFor,
  verbatimDecodedDtype,
  writeArtifact,
  type ArtifactLayer,
  type ArtifactMeta,
  type OpenArtifact,
  type VerbatimInput,
} from '../nern/artifact';
import { encodeRows, encodingWidth, gridOffsets } from '../nern/encoding';
import { CENTRE, gridShapes, KERNEL_OUTPUTS } from '../nern/kernelMap';
import { adamConfig, NernOptimizer } from '../nern/optimizer';
import { buildDistillModels, OrtDistillTrainer, type OrtDistillSpec } from '../nern/ortDistill';
import { chooseModelEngine, defaultEvalThreads, engineLabel } from '../backend/modelEngine';
import { firstLine } from '../backend/onnxRuntime';
import { chooseNativeDevice, CPU_DEVICE, nativeEngineLabel, openOnDevice } from '../backend/nativeDevice';
import { invertPermutation } from '../nern/permutation';
import { Predictor, predictorQuantBits, type PredictorWeights } from '../nern/predictor';
import { isOneOf, PREDICTOR_DTYPES, type ModelEngineName, type PredictorDtype } from '../../protocol/vocabulary';
import { distillationKl, featureMapLoss, reconstructionLoss, relativeOutputMse } from '../nern/losses';
import { Rng } from '../nern/rng';
import { BLOCK } from '../nern/tiling';

import { imageInput, resolvePreprocessing } from '../models/preprocessing';
import { defaultCropPad } from '../data/augment';
import { readImageBatch } from '../data/batches';
import type { MetricsAccumulator } from '../models/metrics';
import { refuseOutputOverInputs, withReadLedger } from '../io/outputGuard';
import { setOwn } from '../io/text';
/** Defaults and where they come from: plain data shared with the extension and the CLI (src/protocol/defaults.ts). */
export { DEFAULT_DISTILL_OPTIONS, DISTILL_DEFAULT_SOURCES } from '../../protocol/defaults';

/** Validates options; throws `BadInputError` whose `option` names the bad one. */
export function checkDistillOptions(o: DistillOptionsDto): void {
  const positiveInt = (v: number, what: string, option: keyof DistillOptionsDto, max: number): void => {
    if (!Number.isInteger(v) || v < 1 || v > max)
      throw new BadInputError(`${what} must be a whole number from 1 to ${max}, not ${v}.`, { option });
  };
  positiveInt(o.steps, 'The number of distillation steps', 'steps', 10_000_000);
  positiveInt(o.batchSize, 'The batch size', 'batchSize', 4096);
  positiveInt(o.evalSamples, 'The number of held-out samples', 'evalSamples', 10_000_000);
  if (!Number.isInteger(o.evalEvery) || o.evalEvery < 0)
    throw new BadInputError(
      `The held-out evaluation interval must be a whole number of steps ≥ 0, not ${o.evalEvery}.`,
      { option: 'evalEvery' },
    );
  if (!(o.lr > 0 && o.lr < 1))
    throw new BadInputError(`The learning rate must be between 0 and 1, not ${o.lr}.`, { option: 'lr' });
  if (!(o.temperature > 0 && o.temperature <= 100))
    throw new BadInputError(`The temperature must be in (0, 100], not ${o.temperature}.`, { option: 'temperature' });
  for (const [option, what, v] of [
    ['klWeight', 'The KL weight', o.klWeight],
    ['featureWeight', 'The feature-map weight', o.featureWeight],
    ['reconstructionWeight', 'The reconstruction weight', o.reconstructionWeight],
  ] as const) {
    if (!(v >= 0 && Number.isFinite(v)))
      throw new BadInputError(`${what} must be a finite number ≥ 0, not ${v}.`, { option });
  }
  if (o.klWeight + o.featureWeight + o.reconstructionWeight === 0)
    throw new BadInputError('At least one loss weight must be above 0.');
  if (o.predictorDtype !== undefined && !isOneOf(PREDICTOR_DTYPES, o.predictorDtype))
    throw new BadInputError(
      `The predictor dtype must be one of ${PREDICTOR_DTYPES.join(', ')}, not ${String(o.predictorDtype)}.`,
      { option: 'predictorDtype' },
    );
}

/**
 * The predictor dtype a distillation targets: `requested` when given, else the dtype the artifact's metadata
 * records (`predictorDtype`, when it names one of PREDICTOR_DTYPES), else f32.
 */
export function targetPredictorDtype(meta: object, requested: PredictorDtype | undefined): PredictorDtype {
  if (requested !== undefined) return requested;
  const m = meta as { predictorDtype?: unknown; predictorStorage?: unknown };
  const recorded: unknown = m.predictorStorage ?? m.predictorDtype;
  return isOneOf(PREDICTOR_DTYPES, recorded) ? recorded : 'f32';
}

/** A represented layer the graph uses, with what differentiable regeneration needs. */
export interface BoundLayer {
  readonly index: number;
  readonly layer: ArtifactLayer;
  /** Graph initializer name. */
  readonly name: string;
  /** Rows of the concatenated encoding matrix this layer occupies: [start, start + kernels). */
  readonly start: number;
  readonly kernels: number;
  readonly scale: number;
}

/** Turns a layer's predictor outputs [kernels, 9] (original kernel order, unscaled) into its weight tensor. */
export function toWeight(out: tf.Tensor2D, b: BoundLayer): tf.Tensor {
  const [cout, cin, k] = b.layer.kernelShape;
  const scaled = tf.mul(out, b.scale);
  const tile = b.layer.tile;
  if (tile.kind === 'conv') {
    const oihw =
      k === 1
        ? tf.reshape(tf.slice(scaled, [0, CENTRE], [-1, 1]), [cout, cin, 1, 1])
        : tf.reshape(scaled, [cout, cin, k, k]);
    return tile.layout === 'hwio' ? tf.transpose(oihw, [2, 3, 1, 0]) : oihw;
  }
  const blocks = tf.reshape(scaled, [cout, cin, BLOCK, BLOCK]);
  const matrix = tf.reshape(tf.transpose(blocks, [0, 2, 1, 3]), [cout * BLOCK, cin * BLOCK]);
  return tf.reshape(tf.slice(matrix, [0, 0], [tile.rows, tile.cols]), b.layer.shape);
}

/** Encodings (constant) of the bound layers' kernels in original kernel order, concatenated: [Σ kernels, width]. */
export function boundEncodings(artifact: OpenArtifact, bound: readonly BoundLayer[]): Float32Array {
  const shapes = gridShapes(artifact.kernelMap);
  const offsets = gridOffsets(shapes);
  const width = encodingWidth(artifact.kernelMap.encoding);
  const total = bound.reduce((n, b) => n + b.kernels, 0);
  const out = new Float32Array(total * width);
  for (const b of bound) {
    const inverse = invertPermutation(artifact.kernelMap.permutations[b.index] ?? new Int32Array(0));
    const first = offsets[b.index] ?? 0;
    const ids = Int32Array.from(inverse, (t) => first + t);
    encodeRows(shapes, ids, out.subarray(b.start * width, (b.start + b.kernels) * width), artifact.kernelMap.encoding);
  }
  return out;
}

/** The per-sample shape `spec` turns images of `shape` ([h, w, c]) into (the model's layout, after crop and resize). */
function preprocessedShape(shape: readonly [number, number, number], spec: PreprocessSpec): number[] {
  const [h, w, c] = shape;
  return applyPreprocessing({ data: new Float32Array(h * w * c), n: 1, h, w, c }, spec).shape.slice(1);
}

/**
 * The graph values NeRN's feature term compares: pre-activations of residual blocks (Add outputs feeding a ReLU, in
 * ONNX graphs and in TF.js LayersModels).
 */
export function featureValues(graph: Graph): string[] {
  const producers = new Map<string, string>();
  for (const n of graph.nodes) for (const o of n.outputs) producers.set(o, n.op);
  const out: string[] = [];
  for (const n of graph.nodes) {
    const x = n.inputs[0];
    const relu =
      n.op === 'Relu' || n.op === 'tfjs.ReLU' || (n.op === 'tfjs.Activation' && n.attrs['activation'] === 'relu');
    if (relu && x !== undefined && (producers.get(x) === 'Add' || producers.get(x) === 'tfjs.Add') && !out.includes(x))
      out.push(x);
  }
  return out;
}

/**
 * Binds the artifact's represented layers to the graph's initializers by name, checking shapes: the layers the
 * graph uses, each with its rows [start, start + kernels) of the concatenated encoding matrix, and the total
 * `kernels`. A `BadInputError` when a shape differs or no layer is used (the artifact was not made from this model).
 */
export function bindLayers(
  artifact: OpenArtifact,
  graph: Graph,
  modelName: string,
): { bound: BoundLayer[]; kernels: number } {
  const bound: BoundLayer[] = [];
  let start = 0;
  artifact.meta.layers.forEach((layer, index) => {
    const info = graph.initializers.get(layer.name);
    if (info === undefined) return;
    if (info.shape.join(',') !== layer.shape.join(',')) {
      throw new BadInputError(
        `Layer ${layer.name} is [${layer.shape.join(', ')}] in the artifact but [${info.shape.join(', ')}] in ${modelName}; the artifact was not made from this model.`,
      );
    }
    const kernels = layer.kernelShape[0] * layer.kernelShape[1];
    bound.push({ index, layer, name: layer.name, start, kernels, scale: artifact.kernelMap.outputScales[index] ?? 1 });
    start += kernels;
  });
  if (bound.length === 0) {
    throw new BadInputError(
      `None of the artifact's ${artifact.meta.layers.length} represented layers is a weight of ${modelName} (matched by name); give the model the artifact was compressed from.`,
    );
  }
  return { bound, kernels: start };
}

/**
 * The held-out split of a distillation: with separate held-out data, its first `evalSamples` samples and all of the
 * training data; otherwise the last `evalSamples` samples of the training data (at most half of it), which are then
 * not trained on. A `BadInputError` when either part would be empty or the two datasets' images differ in shape.
 */
export function heldOutSplit(
  train: Dataset,
  held: Dataset,
  evalSamples: number,
  dataName: string,
): { heldIndices: number[]; trainCount: number } {
  if (held !== train && held.shape.join(',') !== train.shape.join(',')) {
    throw new BadInputError(
      `The held-out data's images are [${held.shape.join(', ')}] but the training data's are [${train.shape.join(', ')}].`,
    );
  }
  const same = held === train;
  const heldCount = Math.min(evalSamples, same ? Math.floor(train.size / 2) : held.size);
  const first = same ? train.size - heldCount : 0;
  const trainCount = same ? train.size - heldCount : train.size;
  if (trainCount < 1 || heldCount < 1)
    throw new BadInputError(`${dataName} holds ${train.size} samples, too few to train on and hold some out.`);
  return { heldIndices: Array.from({ length: heldCount }, (_, i) => first + i), trainCount };
}

/** Hooks of `distillArtifact`. */
export interface DistillHooks {
  signal?: AbortSignal;
  onProgress?: (p: DistillProgressDto) => void;
  onEval?: (e: DistillEvalDto) => void;
  /** Per-layer drift from the phase-1 reconstruction, at each held-out evaluation. */
  onDrift?: (drift: LayerDriftDto[]) => void;
  /** Status lines (loading, evaluating…). */
  onStatus?: (message: string) => void;
  /**
   * Stop and Save: aborting it ends training after the step under way (at least one step runs), evaluates the
   * predictor on the held-out data and writes it as the new artifact, marked as stopped early.
   */
  stop?: AbortSignal;
}

/**
 * The reconstruction error of regenerated weights against the original ones, per layer and over all of them
 * (float64 sums of tensors' squares read back from the backend).
 */
function phaseErrors(
  bound: readonly BoundLayer[],
  regenerated: Record<string, tf.Tensor>,
  original: Record<string, tf.Tensor>,
): ArtifactErrors {
  let se = 0;
  let ss = 0;
  let n = 0;
  const layers: LayerErrorDto[] = bound.map((b) => {
    const r = regenerated[b.name] as tf.Tensor;
    const w = original[b.name] as tf.Tensor;
    const [le, ls] = tf.tidy(() => [
      tf.sum(tf.square(tf.sub(r, w))).dataSync()[0] ?? 0,
      tf.sum(tf.square(w)).dataSync()[0] ?? 0,
    ]);
    const count = Math.max(1, w.size);
    se += le;
    ss += ls;
    n += w.size;
    return {
      name: b.name,
      shape: [...b.layer.shape],
      params: w.size,
      rmse: Math.sqrt(le / count),
      relativeError: ls > 0 ? Math.sqrt(le / ls) : 0,
    };
  });
  return { rmse: Math.sqrt(se / Math.max(1, n)), weightRms: Math.sqrt(ss / Math.max(1, n)), layers };
}

/** Inputs of `distillArtifact`. */
export interface DistillRequest {
  artifact: string;
  model: string;
  data: string;
  options: DistillOptionsDto;
}

function flatMetrics(m: EvalMetricsDto): Record<string, number> {
  const out: Record<string, number> = { n: m.n, agreement: m.agreement, relativeError: m.relativeError };
  if (m.accuracy !== undefined) out.accuracy = m.accuracy;
  if (m.psnr !== undefined) out.psnr = m.psnr;
  return out;
}

/** Higher is better: accuracy, else agreement then PSNR, else −relative error. */
function score(m: EvalMetricsDto): number {
  if (m.accuracy !== undefined) return m.accuracy;
  if (m.psnr !== undefined) return m.psnr;
  return m.agreement - m.relativeError;
}

/**
 * Runs the distillation phase and writes the new artifact. Resolves to the report; throws `BadInputError`
 * for unusable inputs (no represented layer used by the graph, a teacher whose outputs do not match…), and an
 * `CancelledError` when cancelled (nothing is written).
 */
export function distillArtifact(request: DistillRequest, hooks: DistillHooks = {}): Promise<DistillReportDto> {
  return withReadLedger(() => distill(request, hooks));
}

async function distill(request: DistillRequest, hooks: DistillHooks): Promise<DistillReportDto> {
  const started = performance.now();
  const o: DistillOptionsDto = { ...DEFAULT_DISTILL_OPTIONS, ...request.options };
  checkDistillOptions(o);
  const { signal } = hooks;
  const out = o.out ?? distilledPathFor(request.artifact);
  const inputs = [
    request.artifact,
    request.model,
    request.data,
    ...(o.teacher !== undefined ? [o.teacher] : []),
    ...(o.evalData !== undefined ? [o.evalData] : []),
  ];
  await refuseOutputOverInputs(out, inputs);
  const backend = await ensureBackend(o.backend);
  hooks.onStatus?.('Loading the model, the artifact and the data…');
  const model = await loadExecutableModel(request.model);
  const teacher: ExecutableModel = o.teacher !== undefined ? await loadExecutableModel(o.teacher) : model;
  const artifact = await readArtifact(request.artifact);
  const train = await openDataset(request.data);
  const held: Dataset = o.evalData !== undefined ? await openDataset(o.evalData) : train;
  const disposables: tf.Tensor[] = [];
  let predictor: Predictor | undefined;
  let optimizer: NernOptimizer | undefined;
  let native: OrtDistillTrainer | undefined;
  let runner: ModelRunner | undefined;
  try {
    const { bound, kernels: start } = bindLayers(artifact, model.graph, basename(request.model));
    const input = imageInput(model.graph);
    const { spec, dto, source: preprocessSource } = await resolvePreprocessing(model, train, o.preprocess);
    const teacherSpec: PreprocessSpec =
      teacher === model ? spec : (await resolvePreprocessing(teacher, train, o.preprocess)).spec;

    const { heldIndices, trainCount } = heldOutSplit(train, held, o.evalSamples, basename(request.data));
    const heldCount = heldIndices.length;

    // Constant tensors: original weights (model's own), teacher weights, kernel encodings.
    const original = weightTensors(model.graph, model.weights);
    disposables.push(...Object.values(original));
    // Held-out evaluations run on the native engine where it takes the model; training stays on TensorFlow.js.
    runner = await openModelRunner(model, { backend: o.backend, tensors: original, ...(signal ? { signal } : {}) });
    hooks.onStatus?.(
      `Held-out evaluations run on ${runner.label}${runner.reason !== undefined ? `: ${runner.reason}` : ''}.`,
    );
    const evalRunner = runner;
    const evalSetup: EvalSetup = {
      model,
      runner: evalRunner,
      dataset: held,
      spec,
      indices: heldIndices,
      batchSize: 64,
    };
    const reference = await evalRunner.prepare(new Map());
    const teacherWeights = teacher === model ? original : weightTensors(teacher.graph, teacher.weights);
    if (teacher !== model) disposables.push(...Object.values(teacherWeights));
    const width = encodingWidth(artifact.kernelMap.encoding);
    const encoding = tf.tensor2d(boundEncodings(artifact, bound), [start, width]);
    disposables.push(encoding);

    predictor = Predictor.fromWeights(artifact.predictor);
    const p = predictor;
    // The native step keeps the predictor in host arrays; the tfjs predictor takes them before it is read.
    let nativeDirty = false;
    const syncNative = (): void => {
      if (native === undefined || !nativeDirty) return;
      const w = native.weights();
      tf.tidy(() => {
        w.layers.forEach((l, i) => {
          const wv = p.variables[2 * i];
          const bv = p.variables[2 * i + 1];
          wv?.assign(tf.tensor(l.weight, wv.shape));
          bv?.assign(tf.tensor(l.bias, bv.shape));
        });
      });
      nativeDirty = false;
    };
    const predictorDtype = targetPredictorDtype(artifact.meta, o.predictorDtype);
    // Evaluations always regenerate from the predictor as it will be stored; training does when it is
    // quantisation-aware.
    const quantBits = predictorQuantBits(predictorDtype);
    const qat = quantBits !== undefined && o.qat !== false;
    const regenerate = (train: boolean): Record<string, tf.Tensor> => {
      const outAll = train ? p.apply(encoding, qat ? quantBits : undefined) : p.forward(encoding, quantBits);
      const weights: Record<string, tf.Tensor> = { ...original };
      for (const b of bound)
        setOwn(weights, b.name, toWeight(tf.slice(outAll, [b.start, 0], [b.kernels, KERNEL_OUTPUTS]), b));
      return weights;
    };
    const phase1 = tf.tidy(() => {
      const w = regenerate(false);
      return bound.map((b) => tf.keep(w[b.name] as tf.Tensor));
    });
    disposables.push(...phase1);
    const phase1Rms = phase1.map((t) => tf.tidy(() => Math.sqrt(tf.mean(tf.square(t)).dataSync()[0] ?? 0)));
    const originalSq = bound.map((b) =>
      tf.tidy(() => tf.sum(tf.square(original[b.name] as tf.Tensor)).dataSync()[0] ?? 0),
    );
    const originalSqTotal = originalSq.reduce((a, b) => a + b, 0) || 1;

    /** Held-out metrics of the current predictor, and its per-layer drift from phase 1 (one regeneration for both). */
    const evaluate = async (): Promise<{
      metrics: EvalMetricsDto;
      acc: MetricsAccumulator;
      drift: LayerDriftDto[];
    }> => {
      syncNative();
      const candidate = tf.tidy(() => {
        const w = regenerate(false);
        for (const b of bound) tf.keep(w[b.name] as tf.Tensor);
        return w;
      });
      try {
        const drift = tf.tidy(() =>
          bound.map((b, i) => {
            const d = Math.sqrt(
              tf.mean(tf.square(tf.sub(candidate[b.name] as tf.Tensor, phase1[i] as tf.Tensor))).dataSync()[0] ?? 0,
            );
            return { name: b.name, drift: d / Math.max(phase1Rms[i] ?? 0, 1e-12) };
          }),
        );
        const weights = await evalRunner.prepare(new Map(bound.map((b) => [b.name, candidate[b.name] as tf.Tensor])));
        try {
          const acc = await compareOutputs(evalSetup, reference, weights, signal);
          return { metrics: acc.result(), acc, drift };
        } finally {
          await weights.dispose();
        }
      } finally {
        tf.dispose(bound.map((b) => candidate[b.name] as tf.Tensor));
      }
    };

    hooks.onStatus?.('Evaluating the phase-1 reconstruction on held-out data…');
    const beforeEval = await evaluate();
    const before = beforeEval.metrics;
    const classifier = beforeEval.acc.classes > 0;
    const teacherAccuracy = teacher === model ? beforeEval.acc.originalAccuracy() : undefined;
    hooks.onEval?.({ step: 0, metrics: before });
    hooks.onDrift?.(beforeEval.drift);
    let best: DistillEvalDto = { step: 0, metrics: before };
    // The latest evaluation; the loop always evaluates at the last step, so at the end it is the final predictor's.
    let latest = beforeEval;

    const features = o.featureWeight > 0 && teacher.graph === model.graph ? featureValues(model.graph) : [];
    if (o.featureWeight > 0 && features.length === 0)
      hooks.onStatus?.(
        'The feature-map term is off: the model has no residual block pre-activations, or the teacher is a different architecture.',
      );
    const studentGraph: Graph =
      features.length > 0 ? { ...model.graph, outputs: [...model.graph.outputs, ...features] } : model.graph;
    const teacherGraph: Graph = features.length > 0 ? studentGraph : teacher.graph;
    const logitsName = model.graph.outputs[0] ?? '';
    const teacherLogitsName = teacher.graph.outputs[0] ?? '';

    const config = adamConfig(o.steps, o.lr);
    config.schedule = {
      kind: 'cosine',
      totalSteps: o.steps,
      minLr: o.lr * 0.01,
      warmupSteps: Math.max(1, Math.round(o.steps * 0.05)),
    };
    // The training engine: the native step (one ONNX training graph) under `auto` when onnxruntime-node loads and
    // every op on the path from the predictor to the loss has a gradient rule; else TensorFlow.js, with the reason.
    const choice = chooseModelEngine(o.backend, model.format === 'onnx' && teacher.format === 'onnx' ? 'onnx' : 'tfjs');
    let engineReason: string | undefined;
    if (choice.engine === 'onnxruntime') {
      const nativeSpec: OrtDistillSpec = {
        graph: studentGraph,
        weights: original,
        teacherGraph,
        teacherWeights,
        inputShape: [o.batchSize, ...preprocessedShape(train.shape, spec)],
        teacherInputShape: [o.batchSize, ...preprocessedShape(train.shape, teacherSpec)],
        features,
        layers: bound,
        encodings: boundEncodings(artifact, bound),
        predictor: artifact.predictor,
        loss: {
          classifier,
          temperature: o.temperature,
          klWeight: o.klWeight,
          featureWeight: features.length > 0 ? o.featureWeight : 0,
          reconstructionWeight: o.reconstructionWeight,
          originalSquaredNorm: originalSqTotal,
        },
        optimizer: config,
        ...(quantBits !== undefined && qat ? { quantBits } : {}),
      };
      hooks.onStatus?.('Building the native distillation graph…');
      const built = buildDistillModels(nativeSpec);
      if ('reason' in built) engineReason = built.reason;
      else {
        // The device: a GPU only when it passes the self-check; one that refuses the training graph yields the CPU.
        const device = (await chooseNativeDevice(choice.ort, o.backend)) ?? CPU_DEVICE;
        const threads = defaultEvalThreads();
        try {
          const opened = await openOnDevice(device, 'build the distillation step', (on) =>
            OrtDistillTrainer.create(choice.ort, nativeSpec, built.models, { threads, device: on.device }),
          );
          native = opened.value;
          engineReason = opened.on.reason;
        } catch (e) {
          engineReason = `onnxruntime refused the distillation graph: ${firstLine(e)}`;
        }
      }
    } else engineReason = choice.reason;
    const engine: ModelEngineName = native !== undefined ? 'onnxruntime' : 'tfjs';
    const engineText =
      native !== undefined ? nativeEngineLabel(native.device, native.threads) : engineLabel('tfjs', backend.name);
    hooks.onStatus?.(
      `Distillation steps run on ${engineText}${engineReason !== undefined ? `: ${engineReason}` : ''}.`,
    );
    if (native === undefined) optimizer = new NernOptimizer(p.variables, config);
    const rng = new Rng(o.seed);
    const [h] = train.shape;
    const augment = o.augment ? { rng: rng.fork(), cropPad: defaultCropPad(h), flip: true } : undefined;
    const lossCurve: [number, number][] = [];
    const T = o.temperature;
    const trainStarted = performance.now();
    hooks.onStatus?.(`Distilling ${bound.length} layers for ${o.steps} steps…`);
    let stepsDone = o.steps;
    let latestStep = 0;
    for (let step = 1; step <= o.steps; step++) {
      throwIfAborted(signal);
      if (step > 1 && hooks.stop?.aborted === true) {
        stepsDone = step - 1;
        break;
      }
      const ids = Array.from({ length: o.batchSize }, () => rng.int(trainCount));
      const { images } = await readImageBatch(train, ids, augment, signal);
      const studentIn = applyPreprocessing(images, spec);
      const teacherIn = teacherSpec === spec ? studentIn : applyPreprocessing(images, teacherSpec);
      let parts = { kl: 0, feature: 0, reconstruction: 0 };
      let lossValue: number;
      if (native !== undefined) {
        const l = await native.step(studentIn.data, teacherIn.data);
        lossValue = l.loss;
        parts = { kl: l.kl, feature: l.feature, reconstruction: l.reconstruction };
        nativeDirty = true;
      } else
        lossValue = tf.tidy(() => {
          const xs = tf.tensor(studentIn.data, studentIn.shape);
          const xt = teacherIn === studentIn ? xs : tf.tensor(teacherIn.data, teacherIn.shape);
          const target = executeGraph(teacherGraph, teacherWeights, { [imageInput(teacher.graph).name]: xt });
          const zt = target[teacherLogitsName];
          if (zt === undefined) throw new BadInputError('The teacher produced no output.');
          const { value, grads } = tf.variableGrads(() => {
            const weights = regenerate(true);
            const outputs = executeGraph(studentGraph, weights, { [input.name]: xs });
            const zs = outputs[logitsName];
            if (zs === undefined) throw new BadInputError('The model produced no output.');
            if (zs.shape.join(',') !== zt.shape.join(',')) {
              throw new BadInputError(
                `The teacher's output is [${zt.shape.join(', ')}] but the model's is [${zs.shape.join(', ')}]; the teacher must solve the same task.`,
              );
            }
            const kl = classifier ? distillationKl(zt, zs, T) : relativeOutputMse(zt, zs);
            const pairs = features.flatMap((f) => {
              const fs = outputs[f];
              const ft = target[f];
              return fs === undefined || ft === undefined ? [] : [[ft, fs] as const];
            });
            const feature =
              features.length > 0
                ? featureMapLoss(
                    pairs.map((x) => x[0]),
                    pairs.map((x) => x[1]),
                  )
                : tf.scalar(0);
            const reconstruction =
              o.reconstructionWeight > 0
                ? reconstructionLoss(
                    bound.map((b) => weights[b.name] as tf.Tensor),
                    bound.map((b) => original[b.name] as tf.Tensor),
                    originalSqTotal,
                  )
                : tf.scalar(0);
            parts.kl = kl.dataSync()[0] ?? 0;
            parts.feature = feature.dataSync()[0] ?? 0;
            parts.reconstruction = reconstruction.dataSync()[0] ?? 0;
            return tf.addN([
              tf.mul(kl, o.klWeight),
              tf.mul(feature, o.featureWeight),
              tf.mul(reconstruction, o.reconstructionWeight),
            ]) as tf.Scalar;
          }, p.variables);
          optimizer?.step(p.variables.map((v) => grads[v.name] as tf.Tensor));
          return value.dataSync()[0] ?? NaN;
        });
      if (!Number.isFinite(lossValue))
        throw new BadInputError(`Distillation diverged at step ${step} (loss ${lossValue}); lower the learning rate.`, {
          option: 'lr',
        });
      lossCurve.push([step, lossValue]);
      const seconds = (performance.now() - trainStarted) / 1000;
      hooks.onProgress?.({
        step,
        steps: o.steps,
        loss: lossValue,
        ...parts,
        lr: native?.lr ?? optimizer?.lr ?? 0,
        stepsPerSecond: step / Math.max(seconds, 1e-9),
        engine,
        engineLabel: engineText,
        ...(engineReason !== undefined ? { engineReason } : {}),
      });
      if ((o.evalEvery > 0 && step % o.evalEvery === 0) || step === o.steps) {
        latest = await evaluate();
        latestStep = step;
        const point = { step, metrics: latest.metrics };
        if (score(latest.metrics) > score(best.metrics)) best = point;
        hooks.onEval?.(point);
        hooks.onDrift?.(latest.drift);
      }
      await new Promise<void>((r) => setImmediate(r));
    }
    const stoppedEarly = stepsDone < o.steps ? { step: stepsDone, steps: o.steps } : undefined;
    if (stoppedEarly !== undefined && latestStep !== stepsDone) {
      // Stop and Save: the held-out metric of the predictor that is kept.
      hooks.onStatus?.(`Stopped after step ${stepsDone}; evaluating the predictor so far on held-out data…`);
      latest = await evaluate();
      const point = { step: stepsDone, metrics: latest.metrics };
      if (score(latest.metrics) > score(best.metrics)) best = point;
      hooks.onEval?.(point);
      hooks.onDrift?.(latest.drift);
    }
    const after = latest.metrics;
    const finalDrift = latest.drift;
    throwIfAborted(signal);
    // The distilled predictor's own reconstruction error against the original weights, so its Reconstruction panel
    // shows what distillation did to the weights rather than phase 1's figures.
    syncNative();
    const finalWeights = tf.tidy(() => {
      const w = regenerate(false);
      for (const b of bound) tf.keep(w[b.name] as tf.Tensor);
      return w;
    });
    let reconstruction: ArtifactErrors;
    try {
      reconstruction = phaseErrors(bound, finalWeights, original);
    } finally {
      tf.dispose(bound.map((b) => finalWeights[b.name] as tf.Tensor));
    }

    // Write the new artifact: same layout and verbatim tensors, the distilled predictor, both phases recorded.
    const weights: PredictorWeights = p.weights();
    const settings: Record<string, string | number | boolean> = {
      steps: o.steps,
      batchSize: o.batchSize,
      lr: o.lr,
      temperature: o.temperature,
      klWeight: o.klWeight,
      featureWeight: o.featureWeight,
      reconstructionWeight: o.reconstructionWeight,
      augment: o.augment,
      evalSamples: heldCount,
      seed: o.seed,
      backend: backend.name,
      engine,
      preprocess: JSON.stringify(dto),
      predictorDtype,
      qat,
    };
    const { predictorStorage: _previous, ...kept } = artifact.meta;
    const meta: ArtifactMeta = {
      ...kept,
      version: artifactVersionFor(artifact.meta.layers, predictorDtype, artifact.meta.verbatimStorage),
      ...(predictorDtype !== 'f32' ? { predictorStorage: predictorDtype } : {}),
      distillation: {
        settings,
        model: basename(request.model),
        data: basename(request.data),
        teacher: basename(o.teacher ?? request.model),
        before: flatMetrics(before),
        after: flatMetrics(after),
        from: basename(request.artifact),
        reconstruction,
        ...(stoppedEarly ? { stoppedEarly } : {}),
      },
    };
    const verbatim: VerbatimInput[] = artifact.meta.tensors
      .filter((t) => t.stored === 'verbatim')
      .map((t) => ({
        name: t.name,
        dtype: verbatimDecodedDtype(t),
        shape: t.shape,
        data: artifact.verbatimBytes(t.name, signal),
        // Narrowed tensors are narrowed again from their decoded values (the same dtype and rule).
        values: () => artifact.verbatimValues(t.name, signal),
      }));
    hooks.onStatus?.(`Writing ${basename(out)}…`);
    await refuseOutputOverInputs(out, inputs);
    await writeArtifact(out, { meta, predictor: weights, kernelMap: artifact.kernelMap, verbatim }, signal);

    const report: DistillReportDto = {
      artifact: request.artifact,
      model: request.model,
      data: request.data,
      teacher: o.teacher ?? request.model,
      out,
      options: o,
      before,
      best,
      after,
      drift: finalDrift,
      boundLayers: bound.length,
      unboundLayers: artifact.meta.layers.length - bound.length,
      lossCurve,
      preprocess: dto,
      preprocessSource,
      backend: backend.name,
      predictorDtype,
      qat,
      engine,
      engineLabel: engineText,
      ...(engineReason !== undefined ? { engineReason } : {}),
      evalEngine: runner.engine,
      ...(runner.reason !== undefined ? { evalEngineReason: runner.reason } : {}),
      durationMs: Math.round(performance.now() - started),
      reconstruction,
      ...(stoppedEarly ? { stoppedEarly } : {}),
    };
    if (teacherAccuracy !== undefined) report.teacherAccuracy = teacherAccuracy;
    const warning = chanceWarning(teacherAccuracy, beforeEval.acc.classes, dto, 'The teacher');
    if (warning !== undefined) report.warnings = [warning];
    return report;
  } finally {
    await runner?.dispose();
    optimizer?.dispose();
    await native?.dispose();
    predictor?.dispose();
    tf.dispose(disposables);
    await artifact.close();
    await train.close();
    if (held !== train) await held.close();
  }
}
