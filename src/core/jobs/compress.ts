/**
 * The compression job over the NeRN engine, shared by the CLI and the worker: plan a budget, and compress a
 * checkpoint into a `.nern.safetensors` artifact (with progress, periodic evaluations and cancellation). Jobs take
 * plain data, callbacks and an AbortSignal; the source checkpoint is only ever read, and every output is written
 * atomically (temp + rename). Decompression and reopening an artifact are their own jobs (decompress.ts,
 * artifactDetail.ts).
 */
import { basename } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type {
  BudgetPlanDto,
  CompressEvaluationDto,
  CompressOptionsDto,
  CompressProgressDto,
  CompressReportDto,
  LayerErrorDto,
} from '../../protocol/compress';
import { DEFAULT_COMPRESS_OPTIONS, DEFAULT_POINTWISE, REPORT_LOSS_POINTS } from '../../protocol/defaults';
import { artifactPathFor } from '../../protocol/paths';
import { COMPRESS_METHODS, isOneOf, PERMUTATION_KINDS } from '../../protocol/vocabulary';
import { compressBaseline, encodedStream, layerError } from '../baselines/compressBaseline';
import { ensureBackend, type BackendChoice } from '../backend/tfjsBackend';
import { nativeDevicesFor } from '../backend/nativeDevice';
import { BadInputError, throwIfAborted } from '../io/errors';
import {
  artifactVersionFor,
  writeArtifact,
  type ArtifactLayer,
  type ArtifactMeta,
  type ArtifactTensor,
  type VerbatimInput,
} from '../nern/artifact';
import { MIN_HIDDEN, planBudget, type PlannedTensor } from '../nern/budget';
import { verbatimScales, verbatimStorageFor } from '../nern/verbatimStorage';
import { writeReportSidecar } from '../nern/reportSidecar';
import type { ArtifactStorageChoice } from '../nern/artifactSize';
import { encodingWidth, FAST_ENCODING } from '../nern/encoding';
import { type KernelLayer } from '../nern/kernelMap';
import { recipeTrainOptions } from '../nern/recipes';
import { nernPredictorSpec } from '../nern/predictor';
import { convLayoutFor, fromKernels, kernelShape, toKernels } from '../nern/tiling';
import { compressQuantization, DEFAULT_TRAIN_OPTIONS, trainReconstruction, type TrainResult } from '../nern/train';
import { isDType, type DType } from '../tensors/dtype';
import type { TensorEntry } from '../tensors/tensor';
import { readTensorValues } from '../tensors/tensor';
import { sha256File } from '../io/hash';
import { DETAIL_BINS, layerDetail } from '../nern/layerDetail';
import { fileSize, withCheckpoint } from '../formats/sourceSize';
import { refuseOutputOverInputs, withReadLedger } from '../io/outputGuard';

import { ARTIFACT_FORMAT } from '../../protocol/artifact';
/** Defaults of a compression (src/protocol/defaults.ts), re-exported for the engine's callers. */
export { DEFAULT_COMPRESS_OPTIONS };

/** Most of a run's predictor compute that its live (intermediate) whole-grid evaluations may take. */
export const LIVE_EVALUATION_SHARE = 0.1;

/**
 * Steps between a run's live evaluations (the per-layer errors and detail the Reconstruction panel shows while it
 * trains): about 20 per run and at least 25 steps apart, and further apart where predicting every grid row would
 * cost more than `LIVE_EVALUATION_SHARE` of the training in between (a step costs about 3 forward passes of
 * `batchSize` rows: forward, and the two products of the backward pass). An interval ≥ `steps` means no live
 * evaluation, only the final one. `gridRows` is the represented layers' Σ C_out·C_in (kernel-grid rows).
 */
export function liveEvaluationInterval(steps: number, gridRows: number, batchSize: number): number {
  const byCost = Math.ceil(gridRows / (LIVE_EVALUATION_SHARE * 3 * batchSize));
  return Math.max(25, Math.round(steps / 20), byCost);
}

/** Throws `BadInputError` (its `option` naming the bad one) for options out of range. */
export function checkCompressOptions(o: CompressOptionsDto): void {
  const int = (v: number, what: string, option: string, min: number, max: number): void => {
    if (!Number.isInteger(v) || v < min || v > max)
      throw new BadInputError(`${what} must be a whole number from ${min} to ${max}, not ${v}.`, { option });
  };
  int(o.steps, 'The number of training steps', 'steps', 1, 10_000_000);
  int(o.rounds, 'The number of reconstruction rounds', 'rounds', 1, 16);
  int(o.seed, 'The seed', 'seed', 0, 2 ** 32 - 1);
  if (!(o.roundWidthScale > 0 && o.roundWidthScale <= 1))
    throw new BadInputError(`The per-round width scale must be in (0, 1], not ${o.roundWidthScale}.`, {
      option: 'roundWidthScale',
    });
  const b = o.budget;
  if (b.kind === 'hidden') int(b.hidden, 'The predictor width', 'budget', 1, 1_000_000);
  else if (b.kind === 'fraction' && !(b.fraction > 0 && b.fraction <= 100))
    throw new BadInputError(`The size fraction must be in (0, 100], not ${b.fraction}.`, { option: 'budget' });
  else if (b.kind === 'bytes' && !(b.bytes > 0 && Number.isFinite(b.bytes)))
    throw new BadInputError(`The target size must be a positive number of bytes, not ${b.bytes}.`, {
      option: 'budget',
    });
  compressQuantization(o, o.steps);
  if (!isOneOf(PERMUTATION_KINDS, o.permutation))
    throw new BadInputError(
      `The permutation must be one of ${PERMUTATION_KINDS.join(', ')}, not ${String(o.permutation)}.`,
      { option: 'permutation' },
    );
  if (o.method !== undefined && !isOneOf(COMPRESS_METHODS, o.method))
    throw new BadInputError(`The method must be one of ${COMPRESS_METHODS.join(', ')}, not ${String(o.method)}.`, {
      option: 'method',
    });
}

/** Initialises the tfjs backend for `pref` once per process (see `backend.ts`); re-exported for compression callers. */
export { ensureBackend };

/** How the artifact of `options` will be stored, for the planner's byte count (artifactSize.ts). */
function storageChoice(
  path: string,
  format: string,
  sourceBytes: number,
  options: CompressOptionsDto,
): ArtifactStorageChoice {
  return {
    seed: options.seed,
    sourceBytes,
    predictorDtype: options.predictorDtype ?? 'f32',
    verbatimDtype: options.verbatimDtype ?? 'f32',
    permutation: options.permutation,
    lean: options.lean === true || options.sidecar === true,
    steps: options.steps,
    rounds: options.rounds,
    sourceName: basename(path),
    sourceFormat: format,
  };
}

/** Resolves `options` against the checkpoint at `path` without training: what is represented, the width, the sizes. */
export async function planCompression(
  path: string,
  options: CompressOptionsDto,
  signal?: AbortSignal,
): Promise<BudgetPlanDto> {
  checkCompressOptions(options);
  return withCheckpoint(path, signal, (checkpoint, bytes) =>
    Promise.resolve(
      planBudget(
        checkpoint.tensors,
        options.budget,
        options.represent,
        bytes,
        FAST_ENCODING,
        convLayoutFor(checkpoint.format),
        storageChoice(path, checkpoint.format, bytes, options),
      ).plan,
    ),
  );
}

/** Callbacks and cancellation of a compression. */
export interface CompressHooks {
  onPlan?: (plan: BudgetPlanDto) => void;
  onBackend?: (choice: BackendChoice) => void;
  onProgress?: (progress: CompressProgressDto) => void;
  onEvaluation?: (evaluation: CompressEvaluationDto) => void;
  /** While every grid row is predicted (each evaluation and the final reconstruction): rows done of the total. */
  onReconstruction?: (done: number, total: number) => void;
  /** Aborting stops the job within about a second; it then rejects with CancelledError and leaves no output. */
  signal?: AbortSignal;
  /**
   * Stop and Save: aborting it ends training after the step under way and writes the predictor trained so far as a
   * valid artifact, marked as stopped early (`training.stoppedEarly`, the report's `stoppedEarly`).
   */
  stop?: AbortSignal;
}

/** Streams a tensor's values re-encoded as `dtype` bytes. */

/** A represented tensor loaded for training. */
interface LoadedTensor {
  planned: PlannedTensor & { represented: true };
  entry: TensorEntry;
  values: Float32Array;
}

/**
 * Compresses the checkpoint at `path` into an artifact (default `<stem>.nern.safetensors` beside it) and resolves to
 * the report. With `rounds` R > 1, round r trains a predictor of width ⌈h / scale^(R−1−r)⌉ on the previous round's
 * reconstruction (the last round has the budget's width h and is what the artifact holds); errors are always measured
 * against the original weights. Same options, seed and backend → a byte-identical artifact.
 */
export function compressCheckpoint(
  path: string,
  options: CompressOptionsDto,
  hooks: CompressHooks = {},
): Promise<CompressReportDto> {
  return withReadLedger(() => compress(path, options, hooks));
}

async function compress(path: string, options: CompressOptionsDto, hooks: CompressHooks): Promise<CompressReportDto> {
  checkCompressOptions(options);
  const { signal } = hooks;
  throwIfAborted(signal);
  // The baselines (int8, int4, lowrank, prune) have no training: src/core/baselines/compressBaseline.ts.
  if (options.method !== undefined && options.method !== 'nern')
    return compressBaseline(path, options.method, options, signal);
  const started = performance.now();
  const out = options.out ?? artifactPathFor(path);
  await refuseOutputOverInputs(out, [path], 'The artifact');
  const choice = await ensureBackend(options.backend);
  hooks.onBackend?.(choice);
  // The native preferences (auto, cpu-native, cuda, webgpu) train on onnxruntime when it is installed (several times
  // faster than wasm), on the device nativeDevice.ts picks, else on the tfjs backend just chosen; a TensorFlow.js
  // backend (wasm, tensorflow, cpu) always trains on tfjs. `backend` names what actually ran, `engineReason` why a
  // device or engine asked for is not the one used.
  const engine = nativeDevicesFor(options.backend) !== null ? 'auto' : 'tfjs';
  let backend = tf.getBackend();
  let engineReason: string | undefined;
  return withCheckpoint(path, signal, async (checkpoint, sourceBytes) => {
    const layout = convLayoutFor(checkpoint.format);
    const { plan, tensors: planned } = planBudget(
      checkpoint.tensors,
      options.budget,
      options.represent,
      sourceBytes,
      FAST_ENCODING,
      layout,
      storageChoice(path, checkpoint.format, sourceBytes, options),
    );
    hooks.onPlan?.(plan);
    for (const t of planned) {
      const entry = checkpoint.tensors[t.index];
      if (entry?.notDecodedReason !== undefined) {
        throw new BadInputError(
          `Tensor ${JSON.stringify(t.name)} (${entry.dtype}) cannot be decoded (${entry.notDecodedReason}), so it cannot be stored in an artifact.`,
        );
      }
    }
    // Verbatim tensors a narrower storage cannot hold are refused now, not after training.
    const verbatimStorage =
      options.verbatimDtype === 'f16' || options.verbatimDtype === 'int8' ? options.verbatimDtype : undefined;
    for (const t of planned) {
      const entry = checkpoint.tensors[t.index];
      const storage = t.represented ? undefined : verbatimStorageFor(t.dtype, verbatimStorage);
      if (entry && storage) await verbatimScales(t.name, t.shape, storage, entry.values(signal ? { signal } : {}));
    }
    const loaded: LoadedTensor[] = [];
    for (const t of planned) {
      if (!t.represented) continue;
      const entry = checkpoint.tensors[t.index];
      if (!entry) continue;
      loaded.push({ planned: t, entry, values: await readTensorValues(entry, signal ? { signal } : {}) });
    }
    const sha256 = await sha256File(path, signal);

    const R = options.rounds;
    const widths = Array.from({ length: R }, (_, r) =>
      Math.max(MIN_HIDDEN, Math.ceil(plan.hidden / options.roundWidthScale ** (R - 1 - r) - 1e-9)),
    );
    const steps = options.steps;
    const totalSteps = steps * R;
    const gridRows = loaded.reduce((n, t) => {
      const [cout, cin] = kernelShape(t.planned.tile, t.planned.shape);
      return n + cout * cin;
    }, 0);
    const evalEvery = liveEvaluationInterval(
      steps,
      gridRows,
      recipeTrainOptions(options.recipe).batchSize ?? DEFAULT_TRAIN_OPTIONS.batchSize,
    );
    const progressEvery = Math.max(1, Math.ceil(totalSteps / REPORT_LOSS_POINTS));
    const lossCurve: [number, number][] = [];
    const rowOf = new Map(loaded.map((t) => [t.planned.name, t]));
    let targets = loaded.map((t) => t.values);
    const quantization = compressQuantization(options, steps);
    let result: TrainResult | undefined;
    let stepsDone = 0;
    for (let r = 0; r < R; r++) {
      const layers: KernelLayer[] = loaded.map((t, i) => ({
        name: t.planned.name,
        shape: kernelShape(t.planned.tile, t.planned.shape),
        values: toKernels(targets[i] ?? t.values, t.planned.tile, t.planned.shape),
      }));
      const offset = r * steps;
      const last = r === R - 1;
      result = await trainReconstruction(
        layers,
        {
          hidden: widths[r] ?? plan.hidden,
          steps,
          seed: (options.seed + r) >>> 0,
          permutation: options.permutation,
          evalEvery,
          progressEvery,
          engine,
          nativeBackend: options.backend,
          ...recipeTrainOptions(options.recipe),
          // Quantisation-aware steps train the stored (last) round only.
          ...(last && quantization ? { quantization } : {}),
        },
        {
          ...(signal ? { signal } : {}),
          ...(hooks.stop ? { stop: hooks.stop } : {}),
          onEngine: (e) => {
            if (e.name.startsWith('onnxruntime')) backend = e.name;
            engineReason = e.fallbackReason;
          },
          ...(hooks.onReconstruction ? { onReconstruction: hooks.onReconstruction } : {}),
          onProgress: (p) => {
            lossCurve.push([offset + p.step, p.loss]);
            hooks.onProgress?.({
              step: offset + p.step,
              steps: totalSteps,
              round: r + 1,
              loss: p.loss,
              lr: p.lr,
              stepsPerSecond: p.stepsPerSecond,
              backend,
              ...(engineReason !== undefined ? { engineReason } : {}),
            });
          },
          onEvaluation: (e) => {
            // The final evaluation (at the last step, or where Stop and Save ended the run) is computed exactly below.
            if ((last && e.step === steps) || hooks.stop?.aborted === true) return;
            const layersNow = e.layers.map((l) => {
              const t = rowOf.get(l.name);
              return {
                name: l.name,
                shape: t ? [...t.planned.shape] : [],
                params: t?.planned.params ?? l.weights,
                rmse: l.rmse,
                relativeError: l.weightRms > 0 ? l.rmse / l.weightRms : 0,
              };
            });
            // Live detail for the panels: histograms and one filter of the currently worst layer.
            const worstNow = layersNow.reduce(
              (w, l, i) => (l.relativeError > (layersNow[w]?.relativeError ?? -1) ? i : w),
              0,
            );
            const tensor = loaded[worstNow];
            const kernels = tensor ? e.reconstruction()[worstNow] : undefined;
            hooks.onEvaluation?.({
              step: offset + e.step,
              rmse: e.rmse,
              weightRms: e.weightRms,
              layers: layersNow,
              ...(tensor && kernels
                ? {
                    detail: layerDetail(
                      tensor.planned.name,
                      tensor.planned.shape,
                      tensor.planned.tile,
                      tensor.values,
                      fromKernels(kernels, tensor.planned.tile, tensor.planned.shape),
                      DETAIL_BINS,
                      layout,
                    ),
                  }
                : {}),
            });
          },
        },
      );
      const reconstruction = result.reconstruction;
      targets = loaded.map((t, i) =>
        fromKernels(reconstruction[i] ?? new Float32Array(0), t.planned.tile, t.planned.shape),
      );
      stepsDone = offset + result.steps;
      if (result.stoppedAt !== undefined) break; // Stop and Save: keep this round's predictor
    }
    if (!result) throw new Error('no training round ran');
    const stoppedEarly = stepsDone < totalSteps ? { step: stepsDone, steps: totalSteps } : undefined;
    // Stopped in an earlier round, the predictor is that round's (narrower) one.
    const hidden = result.options.hidden;
    const predictorParams = result.predictorParameters;
    // `targets` now holds the final reconstruction of every represented tensor, in its original layout.
    const errors = loaded.map((t, i) =>
      layerError(t.planned.name, t.planned.shape, t.values, targets[i] ?? new Float32Array(0)),
    );
    const seAll = errors.reduce((s, e) => s + e.se, 0);
    const ssAll = errors.reduce((s, e) => s + e.ss, 0);
    const nAll = Math.max(1, plan.representedParams);
    const layerRows: LayerErrorDto[] = errors.map(({ name, shape, params, rmse, relativeError }) => ({
      name,
      shape,
      params,
      rmse,
      relativeError,
    }));
    const worst = errors.reduce((w, e, i) => (e.relativeError > (errors[w]?.relativeError ?? -1) ? i : w), 0);
    const worstTensor = loaded[worst];
    const rmse = Math.sqrt(seAll / nAll);
    const weightRms = Math.sqrt(ssAll / nAll);
    hooks.onEvaluation?.({
      step: stepsDone,
      rmse,
      weightRms,
      layers: layerRows,
      ...(worstTensor
        ? {
            detail: layerDetail(
              worstTensor.planned.name,
              worstTensor.planned.shape,
              worstTensor.planned.tile,
              worstTensor.values,
              targets[worst] ?? new Float32Array(0),
              DETAIL_BINS,
              layout,
            ),
          }
        : {}),
    });

    const layers: ArtifactLayer[] = loaded.map((t) => ({
      name: t.planned.name,
      shape: [...t.planned.shape],
      dtype: t.planned.dtype,
      tile: t.planned.tile,
      kernelShape: kernelShape(t.planned.tile, t.planned.shape),
    }));
    const verbatim: VerbatimInput[] = [];
    const tensorList: ArtifactTensor[] = planned.map((t) => {
      if (t.represented) return { name: t.name, dtype: t.dtype, shape: [...t.shape], stored: 'represented' };
      const storedDtype: DType = isDType(t.dtype) ? t.dtype : 'F32';
      const entry = checkpoint.tensors[t.index];
      if (entry)
        verbatim.push({
          name: t.name,
          dtype: storedDtype,
          shape: t.shape,
          data: encodedStream(entry, storedDtype, signal),
          values: () => entry.values(signal ? { signal } : {}),
        });
      return { name: t.name, dtype: t.dtype, shape: [...t.shape], stored: 'verbatim', storedDtype, reason: t.reason };
    });
    // The encoding the run actually used (it depends on the recipe); decoding reads it from here.
    const encoding = result.kernelMap.encoding;
    const spec = nernPredictorSpec(hidden, encodingWidth(encoding), 9);
    const meta: ArtifactMeta = {
      format: ARTIFACT_FORMAT,
      version: artifactVersionFor(layers, options.predictorDtype, options.verbatimDtype),
      ...(options.predictorDtype !== undefined && options.predictorDtype !== 'f32'
        ? { predictorStorage: options.predictorDtype }
        : {}),
      ...(verbatimStorage !== undefined ? { verbatimStorage } : {}),
      encoding: { ...encoding },
      predictor: spec,
      layers,
      tensors: tensorList,
      training: {
        hidden,
        steps: stepsDone,
        seed: options.seed,
        optimizer: result.options.optimizer,
        permutation: options.permutation,
        backend,
        rounds: R,
        roundWidthScale: options.roundWidthScale,
        roundWidths: widths,
        batchSize: result.options.batchSize,
        dense: options.represent.dense,
        pointwise: options.represent.pointwise ?? DEFAULT_POINTWISE,
        ...(stoppedEarly ? { stoppedEarly } : {}),
      },
      source: { name: basename(path), format: checkpoint.format, bytes: sourceBytes, sha256 },
      ...(options.lean === true || options.sidecar === true ? { lean: true as const } : {}),
      report: {
        predictorParams,
        representedParams: plan.representedParams,
        verbatimParams: plan.verbatimParams,
        rmse,
        weightRms,
        layers: layerRows,
        lossCurve,
      },
    };
    await refuseOutputOverInputs(out, [path], 'The artifact');
    await writeArtifact(out, { meta, predictor: result.predictor, kernelMap: result.kernelMap, verbatim }, signal);
    // The sidecar holds what the lean artifact leaves out; failing to write it removes the artifact too.
    const sidecar =
      options.sidecar === true ? await writeReportSidecar(out, { layers: layerRows, lossCurve }, signal) : undefined;
    const artifactBytes = await fileSize(out);
    return {
      source: path,
      artifact: out,
      predictorParams,
      representedParams: plan.representedParams,
      verbatimParams: plan.verbatimParams,
      ratio: sourceBytes / artifactBytes,
      artifactBytes,
      sourceBytes,
      steps: stepsDone,
      seconds: (performance.now() - started) / 1000,
      backend,
      ...(engineReason !== undefined ? { engineReason } : {}),
      hidden,
      permutation: options.permutation,
      rmse,
      relativeError: weightRms > 0 ? rmse / weightRms : 0,
      layers: layerRows,
      lossCurve,
      ...(stoppedEarly ? { stoppedEarly } : {}),
      ...(sidecar ? { sidecar } : {}),
    };
  });
}
