/**
 * What compression costs, measured by running the network: `evaluateModel` runs a runnable model (ONNX or TF.js) on
 * its own weights and on the given weights (a checkpoint or a compression artifact) over a dataset, and reports
 * top-1 accuracy against the labels, agreement with the original predictions, the confusion of the differences, and
 * for non-classifiers the output PSNR and relative error. ONNX models run in onnxruntime-node itself when the
 * backend is `auto` and the package loads, with the weights under test bound by name; everything else runs on
 * TensorFlow.js, and the report says which engine ran and why. The pieces it combines live in models/
 * (preprocessing, runners, metrics) and data/ (batches).
 */
import { basename } from 'node:path';
import { chanceWarning, type EvalOptionsDto, type EvalReportDto } from '../../protocol/evaluate';
import { ensureBackend } from '../backend/tfjsBackend';
import { openDataset, type Dataset } from '../data/dataset';
import { type PreprocessSpec } from '../data/preprocess';
import { BadInputError, throwIfAborted } from '../io/errors';
import { loadExecutableModel, loadWeightSource, type ExecutableModel } from '../models/executableModel';
import { resolvePreprocessing } from '../models/preprocessing';
import { readInputBatch } from '../data/batches';
import { openModelRunner, type ModelRunner, type PreparedWeights } from '../models/runner';
import { isClassifier, MetricsAccumulator } from '../models/metrics';

/** Samples per forward pass when the caller does not say. */
export const DEFAULT_EVAL_BATCH = 64;
/** Progress of an evaluation: samples done of total. */
export type EvalProgress = (done: number, total: number) => void;

/** Everything an evaluation needs, opened: reuse across evaluations (distillation evaluates repeatedly). */
export interface EvalSetup {
  readonly model: ExecutableModel;
  /** Runs the model's forward passes (onnxruntime or TensorFlow.js). */
  readonly runner: ModelRunner;
  readonly dataset: Dataset;
  readonly spec: PreprocessSpec;
  readonly indices: readonly number[];
  readonly batchSize: number;
}

/**
 * Runs the original weights (`reference`) and `candidate` over `setup`'s samples and accumulates their metrics. Both
 * weight sets come from `setup.runner.prepare`; neither is disposed.
 */
export async function compareOutputs(
  setup: EvalSetup,
  reference: PreparedWeights,
  candidate: PreparedWeights | null,
  signal?: AbortSignal,
  onProgress?: EvalProgress,
): Promise<MetricsAccumulator> {
  let metrics: MetricsAccumulator | undefined;
  const total = setup.indices.length;
  for (let start = 0; start < total; start += setup.batchSize) {
    throwIfAborted(signal);
    const ids = setup.indices.slice(start, start + setup.batchSize);
    const batch = await readInputBatch(setup.dataset, ids, setup.spec, undefined, signal);
    const original = await setup.runner.forward(reference, batch);
    const cand = candidate === null ? original : await setup.runner.forward(candidate, batch);
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
  /** Called once, before the first batch, with the engine that runs the model and why it is not onnxruntime. */
  onEngine?: (engine: { label: string; reason?: string }) => void;
}

/**
 * Evaluates `modelPath` (ONNX or TF.js) on `dataPath`: the model's own weights against the weights in
 * `options.weights` (checkpoint or artifact; default: the model's own, which measures the original alone).
 */
export async function evaluateModel(
  modelPath: string,
  dataPath: string,
  options: EvalOptionsDto = {},
  hooks: EvalHooks = {},
): Promise<EvalReportDto> {
  const started = performance.now();
  const backend = await ensureBackend(options.backend ?? 'auto');
  const model = await loadExecutableModel(modelPath);
  const dataset = await openDataset(dataPath);
  try {
    const { spec, source, dto } = await resolvePreprocessing(model, dataset, options.preprocess);
    const count = Math.min(dataset.size, options.limit ?? dataset.size);
    if (count < 1) throw new BadInputError(`${basename(dataPath)} holds no samples to evaluate.`);
    const batchSize = Math.max(1, Math.min(options.batchSize ?? DEFAULT_EVAL_BATCH, 4096));
    const bound =
      options.weights !== undefined
        ? await loadWeightSource(options.weights, model, hooks.signal, options.backend ?? 'auto')
        : undefined;
    const runner = await openModelRunner(model, {
      backend: options.backend ?? 'auto',
      ...(hooks.signal ? { signal: hooks.signal } : {}),
    });
    hooks.onEngine?.({ label: runner.label, ...(runner.reason !== undefined ? { reason: runner.reason } : {}) });
    const setup: EvalSetup = {
      model,
      runner,
      dataset,
      spec,
      indices: Array.from({ length: count }, (_, i) => i),
      batchSize,
    };
    let metrics: MetricsAccumulator;
    try {
      const reference = await runner.prepare(new Map());
      const candidate = bound ? await runner.prepare(bound.weights) : null;
      try {
        metrics = await compareOutputs(setup, reference, candidate, hooks.signal, hooks.onProgress);
      } finally {
        await reference.dispose();
        await candidate?.dispose();
      }
    } finally {
      await runner.dispose();
    }
    const report: EvalReportDto = {
      model: modelPath,
      data: dataPath,
      classifier: metrics.classes > 0,
      candidate: metrics.result(),
      outputs: [...model.graph.outputs],
      preprocess: dto,
      preprocessSource: source,
      backend: runner.engine === 'tfjs' ? backend.name : runner.label,
      engine: runner.engine,
      ...(runner.reason !== undefined ? { engineReason: runner.reason } : {}),
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
      const warning = chanceWarning(originalAccuracy, metrics.classes, dto);
      if (warning !== undefined) report.warnings = [warning];
      if (dataset.classes) report.classNames = [...dataset.classes];
    }
    return report;
  } finally {
    await dataset.close();
  }
}
