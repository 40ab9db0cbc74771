/**
 * What compression costs, measured by running the network: `evaluateModel` runs a runnable model (ONNX or TF.js) on
 * its own weights and on the given weights (a checkpoint or a compression artifact) over a dataset, and reports
 * top-1 accuracy against the labels, agreement with the original predictions, the confusion of the differences, and
 * for non-classifiers the output PSNR and relative error. Also the shared pieces distillation reuses: preprocessing
 * resolution (options → `<model>.weightlens.json` sidecar → defaults from the model's input), batched input reading
 * with optional augmentation, and the metric accumulator.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { EvalMetricsDto, EvalOptionsDto, EvalReportDto, PreprocessDto, PreprocessSource } from '../../protocol/evaluate';
import { sidecarPathFor } from '../../protocol/paths';
import { ensureBackend } from '../backend/tfjsBackend';
import { openDataset, type Dataset } from '../data/dataset';
import { applyPreprocessing, parsePreprocessSidecar, type ImageBatch, type PreprocessSpec } from '../data/preprocess';
import { runGraph, weightTensors } from '../graph/execute';
import type { Graph } from '../graph/ir';
import { BadInputError, throwIfAborted } from '../io/errors';
import { loadRunnableModel, loadWeightSource, withWeights, type RunnableModel } from '../models/runnableModel';
import { Rng } from '../nern/rng';

/** Samples per forward pass when the caller does not say. */
export const DEFAULT_EVAL_BATCH = 64;
/** PSNR reported when the outputs are bit-identical (the value is otherwise unbounded). */
export const PSNR_IDENTICAL_DB = 300;

/** The graph input fed with images: the first input. Throws when the graph has none. */
export function imageInput(graph: Graph): { name: string; shape: readonly (number | null)[] } {
  const input = graph.inputs[0];
  if (input === undefined) throw new BadInputError('The model has no inputs to feed images to.');
  return input;
}

function toSpec(dto: PreprocessDto, layout: 'NCHW' | 'NHWC'): PreprocessSpec {
  const pad = dto.pad;
  return {
    layout: dto.layout ?? layout,
    ...(dto.scale !== undefined ? { scale: dto.scale } : {}),
    ...(dto.mean ? { mean: dto.mean } : {}),
    ...(dto.std ? { std: dto.std } : {}),
    ...(pad ? { pad: pad.length === 1 ? [pad[0] ?? 0, pad[0] ?? 0, pad[0] ?? 0, pad[0] ?? 0] as const : [pad[0] ?? 0, pad[1] ?? 0, pad[2] ?? 0, pad[3] ?? 0] as const } : {}),
    ...(dto.resize ? { resize: dto.resize } : {}),
  };
}

function toDto(spec: PreprocessSpec): PreprocessDto {
  return {
    layout: spec.layout,
    ...(spec.scale !== undefined ? { scale: spec.scale } : {}),
    ...(spec.mean ? { mean: [...spec.mean] } : {}),
    ...(spec.std ? { std: [...spec.std] } : {}),
    ...(spec.pad ? { pad: [...spec.pad] } : {}),
    ...(spec.resize ? { resize: [spec.resize[0], spec.resize[1]] } : {}),
  };
}

/**
 * The preprocessing to use: `options` when given (missing fields fall back to the defaults below), else the model's
 * sidecar, else defaults: NCHW when an ONNX model's input has the data's channel count second, else NHWC; a bilinear
 * resize when the model's input has a fixed spatial size other than the data's; no scaling.
 */
export async function resolvePreprocessing(model: RunnableModel, dataset: Dataset, options?: PreprocessDto): Promise<{ spec: PreprocessSpec; source: PreprocessSource; dto: PreprocessDto }> {
  const input = imageInput(model.graph);
  const [h, w, c] = dataset.shape;
  const s = input.shape;
  const nchw = model.format === 'onnx' && s.length === 4 && s[1] === c && s[3] !== c;
  const layout: 'NCHW' | 'NHWC' = nchw ? 'NCHW' : 'NHWC';
  const [mh, mw] = nchw ? [s[2], s[3]] : [s[1], s[2]];
  const defaults: PreprocessDto = { layout };
  if (typeof mh === 'number' && typeof mw === 'number' && mh > 0 && mw > 0 && (mh !== h || mw !== w)) defaults.resize = [mh, mw];
  if (options !== undefined && Object.keys(options).length > 0) {
    const spec = toSpec({ ...defaults, ...options }, layout);
    return { spec, source: 'options', dto: toDto(spec) };
  }
  let text: string | undefined;
  try {
    text = await readFile(sidecarPathFor(model.path), 'utf8');
  } catch {
    text = undefined;
  }
  if (text !== undefined) {
    const parsed = parsePreprocessSidecar(text, basename(sidecarPathFor(model.path)));
    const spec: PreprocessSpec = text.includes('"layout"') ? parsed : { ...parsed, layout };
    return { spec, source: 'sidecar', dto: toDto(spec) };
  }
  const spec = toSpec(defaults, layout);
  return { spec, source: 'default', dto: toDto(spec) };
}

/** Augmentation of training images: random horizontal flips and random crops from a zero-padded image. */
export interface Augmentation {
  readonly rng: Rng;
  /** Pixels of padding around each image before the random crop back to its size (0 = no crop). */
  readonly cropPad: number;
  readonly flip: boolean;
}

/** Default crop padding: 4 pixels for images up to 64 pixels high, else 1/8 of the height. */
export function defaultCropPad(height: number): number {
  return height <= 64 ? 4 : Math.max(1, Math.round(height / 8));
}

/** Flips and crops raw NHWC images (n × h × w × c values) in place, per sample, drawing from `aug.rng`. */
export function augmentBatch(x: Float32Array, n: number, h: number, w: number, c: number, aug: Augmentation): void {
  const per = h * w * c;
  const tmp = new Float32Array(per);
  for (let s = 0; s < n; s++) {
    const img = x.subarray(s * per, (s + 1) * per);
    const flip = aug.flip && aug.rng.next() < 0.5;
    const dy = aug.cropPad > 0 ? aug.rng.int(2 * aug.cropPad + 1) - aug.cropPad : 0;
    const dx = aug.cropPad > 0 ? aug.rng.int(2 * aug.cropPad + 1) - aug.cropPad : 0;
    if (!flip && dy === 0 && dx === 0) continue;
    tmp.fill(0);
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      if (sy < 0 || sy >= h) continue;
      for (let xx = 0; xx < w; xx++) {
        let sx = xx + dx;
        if (sx < 0 || sx >= w) continue;
        if (flip) sx = w - 1 - sx;
        const src = (sy * w + sx) * c;
        const dst = (y * w + xx) * c;
        for (let k = 0; k < c; k++) tmp[dst + k] = img[src + k] ?? 0;
      }
    }
    img.set(tmp);
  }
}

/** A batch ready for the model: values in the model's layout and shape, and labels when the data has them. */
export interface InputBatch {
  readonly data: Float32Array;
  readonly shape: [number, number, number, number];
  readonly labels?: Int32Array;
}

/**
 * Reads samples `indices` as a raw NHWC batch (values as stored), augmented on a copy when asked: what preprocessing
 * for one or several models (a student and a differently-preprocessed teacher) starts from.
 */
export async function readImageBatch(dataset: Dataset, indices: readonly number[], augment?: Augmentation, signal?: AbortSignal): Promise<{ images: ImageBatch; labels?: Int32Array }> {
  const batch = await dataset.read(indices, signal);
  const [h, w, c] = dataset.shape;
  const x = augment ? Float32Array.from(batch.x) : batch.x;
  if (augment) augmentBatch(x, indices.length, h, w, c, augment);
  const images: ImageBatch = { data: x, n: indices.length, h, w, c };
  return batch.y ? { images, labels: batch.y } : { images };
}

/** Reads samples `indices`, augments them (raw NHWC, before preprocessing) if asked, and preprocesses them. */
export async function readInputBatch(dataset: Dataset, indices: readonly number[], spec: PreprocessSpec, augment?: Augmentation, signal?: AbortSignal): Promise<InputBatch> {
  const { images, labels } = await readImageBatch(dataset, indices, augment, signal);
  const ready = applyPreprocessing(images, spec);
  return labels ? { ...ready, labels } : ready;
}

/**
 * Runs the graph on one batch and returns its outputs concatenated per sample ([n, Σ output sizes]), and the shape of
 * each output (batch dimension included).
 */
export function forwardBatch(graph: Graph, weights: Readonly<Record<string, tf.Tensor>>, batch: InputBatch): { values: Float32Array; perSample: number; shapes: number[][] } {
  return tf.tidy(() => {
    const x = tf.tensor(batch.data, batch.shape);
    const outputs = runGraph(graph, weights, { [imageInput(graph).name]: x });
    const n = batch.shape[0];
    const shapes: number[][] = [];
    const flat = graph.outputs.map((name) => {
      const t = outputs[name];
      if (t === undefined) throw new BadInputError(`The model's output ${JSON.stringify(name)} was not computed.`);
      if (t.shape[0] !== n) throw new BadInputError(`The model's output ${JSON.stringify(name)} has ${t.shape[0]} rows for a batch of ${n}; only batch-first outputs can be compared.`);
      shapes.push([...t.shape]);
      return tf.reshape(t, [n, -1]);
    });
    const joined = flat.length === 1 ? (flat[0] as tf.Tensor) : tf.concat(flat, 1);
    return { values: joined.dataSync() as Float32Array, perSample: joined.shape[1] ?? 0, shapes };
  });
}

/**
 * Whether a model's outputs (shapes with the batch dimension, as `forwardBatch` reports them) are a classifier's
 * logits: a single [N, K] output with K ≥ 2. Image-like outputs ([N, H, W, C], [N, C, H, W]…) are not.
 */
export function isClassifier(shapes: readonly (readonly number[])[]): boolean {
  const [only, ...rest] = shapes;
  return only !== undefined && rest.length === 0 && only.length === 2 && (only[1] ?? 0) >= 2;
}

function argmax(values: Float32Array, row: number, k: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let j = 0; j < k; j++) {
    const v = values[row * k + j] ?? -Infinity;
    if (v > bestValue) {
      bestValue = v;
      best = j;
    }
  }
  return best;
}

/** Accumulates metrics of candidate outputs against original outputs (and labels) over batches. */
export class MetricsAccumulator {
  private n = 0;
  private correct = 0;
  private originalCorrect = 0;
  private labelled = 0;
  private agree = 0;
  private se = 0;
  private ss = 0;
  private min = Infinity;
  private max = -Infinity;
  private values = 0;
  /** confusion[i][j]: original class i, candidate class j (classifiers). */
  readonly confusion: number[][];

  /** `classes` = outputs per sample when the model is a classifier, else 0. */
  constructor(readonly classes: number) {
    this.confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  }

  /** Adds a batch: `candidate` and `original` are [n, perSample] row-major; `labels` optional. */
  add(candidate: Float32Array, original: Float32Array, n: number, labels?: Int32Array): void {
    const k = this.classes;
    for (let i = 0; i < candidate.length; i++) {
      const o = original[i] ?? 0;
      const d = (candidate[i] ?? 0) - o;
      this.se += d * d;
      this.ss += o * o;
      if (o < this.min) this.min = o;
      if (o > this.max) this.max = o;
    }
    this.values += candidate.length;
    for (let s = 0; s < n; s++) {
      if (k > 0) {
        const c = argmax(candidate, s, k);
        const o = argmax(original, s, k);
        if (c === o) this.agree += 1;
        const row = this.confusion[o];
        if (row) row[c] = (row[c] ?? 0) + 1;
        const label = labels?.[s];
        if (label !== undefined) {
          this.labelled += 1;
          if (c === label) this.correct += 1;
          if (o === label) this.originalCorrect += 1;
        }
      } else {
        this.agree += 1;
      }
    }
    this.n += n;
  }

  /** Top-1 accuracy of the original outputs against the labels, when there were labels. */
  originalAccuracy(): number | undefined {
    return this.classes > 0 && this.labelled > 0 ? this.originalCorrect / this.labelled : undefined;
  }

  /** The metrics so far. */
  result(): EvalMetricsDto {
    const out: EvalMetricsDto = {
      n: this.n,
      agreement: this.n > 0 ? this.agree / this.n : 1,
      relativeError: this.ss > 0 ? Math.sqrt(this.se / this.ss) : this.se > 0 ? Infinity : 0,
    };
    if (this.classes > 0 && this.labelled > 0) out.accuracy = this.correct / this.labelled;
    if (this.classes === 0) {
      const mse = this.values > 0 ? this.se / this.values : 0;
      const peak = this.max - this.min;
      out.psnr = mse === 0 ? PSNR_IDENTICAL_DB : peak > 0 ? Math.min(PSNR_IDENTICAL_DB, 10 * Math.log10((peak * peak) / mse)) : 0;
    }
    return out;
  }
}

/** Progress of an evaluation: samples done of total. */
export type EvalProgress = (done: number, total: number) => void;

/** Everything an evaluation needs, opened: reuse across evaluations (distillation evaluates repeatedly). */
export interface EvalSetup {
  readonly model: RunnableModel;
  readonly dataset: Dataset;
  readonly spec: PreprocessSpec;
  readonly indices: readonly number[];
  readonly batchSize: number;
}

/**
 * Runs the original weights (`reference`) and `candidate` over `setup`'s samples and accumulates their metrics. The
 * weight maps are tensors by initializer name (see `weightTensors`); neither is disposed.
 */
export async function compareOutputs(
  setup: EvalSetup,
  reference: Readonly<Record<string, tf.Tensor>>,
  candidate: Readonly<Record<string, tf.Tensor>> | null,
  signal?: AbortSignal,
  onProgress?: EvalProgress,
): Promise<MetricsAccumulator> {
  let metrics: MetricsAccumulator | undefined;
  const total = setup.indices.length;
  for (let start = 0; start < total; start += setup.batchSize) {
    throwIfAborted(signal);
    const ids = setup.indices.slice(start, start + setup.batchSize);
    const batch = await readInputBatch(setup.dataset, ids, setup.spec, undefined, signal);
    const original = forwardBatch(setup.model.graph, reference, batch);
    const cand = candidate === null ? original : forwardBatch(setup.model.graph, candidate, batch);
    metrics ??= new MetricsAccumulator(isClassifier(original.shapes) ? original.perSample : 0);
    metrics.add(cand.values, original.values, ids.length, batch.labels);
    onProgress?.(Math.min(total, start + ids.length), total);
    // Yield between batches so cancellation and progress messages get through.
    await new Promise<void>((r) => setImmediate(r));
  }
  return metrics ?? new MetricsAccumulator(0);
}

/** Hooks of `evaluateModel`. */
export interface EvalHooks {
  signal?: AbortSignal;
  onProgress?: EvalProgress;
}

/**
 * Evaluates `modelPath` (ONNX or TF.js) on `dataPath`: the model's own weights against the weights in
 * `options.weights` (checkpoint or artifact; default: the model's own, which measures the original alone).
 */
export async function evaluateModel(modelPath: string, dataPath: string, options: EvalOptionsDto = {}, hooks: EvalHooks = {}): Promise<EvalReportDto> {
  const started = performance.now();
  const backend = await ensureBackend(options.backend ?? 'auto');
  const model = await loadRunnableModel(modelPath);
  const dataset = await openDataset(dataPath);
  try {
    const { spec, source, dto } = await resolvePreprocessing(model, dataset, options.preprocess);
    const count = Math.min(dataset.size, options.limit ?? dataset.size);
    if (count < 1) throw new BadInputError(`${basename(dataPath)} holds no samples to evaluate.`);
    const batchSize = Math.max(1, Math.min(options.batchSize ?? DEFAULT_EVAL_BATCH, 4096));
    const setup: EvalSetup = { model, dataset, spec, indices: Array.from({ length: count }, (_, i) => i), batchSize };
    const bound = options.weights !== undefined ? await loadWeightSource(options.weights, model, hooks.signal) : undefined;
    const reference = weightTensors(model.graph, model.weights);
    const candidate = bound ? weightTensors(model.graph, withWeights(model, bound)) : null;
    let metrics: MetricsAccumulator;
    try {
      metrics = await compareOutputs(setup, reference, candidate, hooks.signal, hooks.onProgress);
    } finally {
      tf.dispose(Object.values(reference));
      if (candidate) tf.dispose(Object.values(candidate));
    }
    const report: EvalReportDto = {
      model: modelPath,
      data: dataPath,
      classifier: metrics.classes > 0,
      candidate: metrics.result(),
      outputs: [...model.graph.outputs],
      preprocess: dto,
      preprocessSource: source,
      backend: backend.name,
      durationMs: Math.round(performance.now() - started),
    };
    const originalAccuracy = metrics.originalAccuracy();
    if (originalAccuracy !== undefined) report.originalAccuracy = originalAccuracy;
    if (options.weights !== undefined) report.weights = options.weights;
    if (bound) {
      report.boundWeights = bound.weights.size;
      report.unmatchedWeights = bound.unmatched.length;
    }
    if (metrics.classes > 0) {
      report.classes = metrics.classes;
      report.confusion = metrics.confusion;
      if (dataset.classes) report.classNames = [...dataset.classes];
    }
    return report;
  } finally {
    await dataset.close();
  }
}
