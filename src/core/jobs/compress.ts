/**
 * Compression jobs over the NeRN engine, shared by the CLI and the worker: plan a budget, compress a checkpoint into
 * a `.nern.safetensors` artifact (with progress, periodic evaluations and cancellation), decompress an artifact back
 * into a full safetensors checkpoint, and reopen an artifact's report. Jobs take plain data, callbacks and an
 * AbortSignal; the source checkpoint is only ever read, and every output is written atomically (temp + rename).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type {
  BackendName,
  BudgetPlanDto,
  CompressEvaluationDto,
  CompressOptionsDto,
  CompressProgressDto,
  CompressReportDto,
  LayerDetailDto,
  LayerErrorDto,
  RecipeName,
} from '../../protocol/compress';
import { DEFAULT_COMPRESS_OPTIONS, REPORT_LOSS_POINTS } from '../../protocol/defaults';
import { artifactPathFor, decompressedPathFor } from '../../protocol/paths';
import { isOneOf, PERMUTATION_KINDS } from '../../protocol/vocabulary';
import { ensureBackend, ensureSomeBackend, type BackendChoice } from '../backend/tfjsBackend';
import { openCheckpoint } from '../formats/registry';
import { writeSafetensors, type SafetensorsTensorInput } from '../formats/safetensors';
import type { Checkpoint } from '../formats/types';
import { BadInputError, throwIfAborted } from '../io/errors';
import {
  ARTIFACT_FORMAT,
  artifactVersionFor,
  encodeValues,
  readArtifact,
  writeArtifact,
  type ArtifactLayer,
  type ArtifactMeta,
  type ArtifactTensor,
  type OpenArtifact,
  type VerbatimInput,
} from '../nern/artifact';
import { MIN_HIDDEN, planBudget, type PlannedTensor } from '../nern/budget';
import { encodingWidth, FAST_ENCODING, NERN_ENCODING } from '../nern/encoding';
import { reconstructLayer, reconstructLayers, type KernelLayer } from '../nern/layout';
import { nernPredictorSpec } from '../nern/predictor';
import { convLayoutFor, fromKernels, hwioToOihw, kernelShape, toKernels, type ConvLayout, type TileSpec } from '../nern/tiling';
import { trainReconstruction, type TrainOptions, type TrainResult } from '../nern/train';
import { HistogramAccumulator } from '../tensors/stats';
import { isDType, type DType } from '../tensors/dtype';
import type { TensorEntry } from '../tensors/tensor';
import { readTensorValues } from '../tensors/tensor';

/** Defaults of a compression (src/protocol/defaults.ts), re-exported for the engine's callers. */
export { DEFAULT_COMPRESS_OPTIONS };

/**
 * Training options of a recipe (see `RecipeName`). Both encodings have 240 inputs, so the predictor size, and with
 * it the budget plan, is the same for either recipe.
 */
export function recipeTrainOptions(recipe: RecipeName | undefined): Partial<TrainOptions> {
  if (recipe === 'nern') {
    return { encoding: NERN_ENCODING, optimizer: 'ranger', warmupSteps: 0, minLr: 1e-6, outputScale: 'none', collapseGuard: false };
  }
  return { encoding: FAST_ENCODING };
}

/** Bins of the histograms in a `LayerDetailDto`. */
export const DETAIL_BINS = 64;
/** Most input channels (or column blocks) in a `LayerDetailDto` filter. */
export const DETAIL_MAX_CHANNELS = 64;

/** Throws `BadInputError` (its `option` naming the bad one) for options out of range. */
export function checkCompressOptions(o: CompressOptionsDto): void {
  const int = (v: number, what: string, option: string, min: number, max: number): void => {
    if (!Number.isInteger(v) || v < min || v > max) throw new BadInputError(`${what} must be a whole number from ${min} to ${max}, not ${v}.`, { option });
  };
  int(o.steps, 'The number of training steps', 'steps', 1, 10_000_000);
  int(o.rounds, 'The number of reconstruction rounds', 'rounds', 1, 16);
  int(o.seed, 'The seed', 'seed', 0, 2 ** 32 - 1);
  if (!(o.roundWidthScale > 0 && o.roundWidthScale <= 1)) throw new BadInputError(`The per-round width scale must be in (0, 1], not ${o.roundWidthScale}.`, { option: 'roundWidthScale' });
  const b = o.budget;
  if (b.kind === 'hidden') int(b.hidden, 'The predictor width', 'budget', 1, 1_000_000);
  else if (b.kind === 'fraction' && !(b.fraction > 0 && b.fraction <= 100)) throw new BadInputError(`The size fraction must be in (0, 100], not ${b.fraction}.`, { option: 'budget' });
  else if (b.kind === 'bytes' && !(b.bytes > 0 && Number.isFinite(b.bytes))) throw new BadInputError(`The target size must be a positive number of bytes, not ${b.bytes}.`, { option: 'budget' });
  if (!isOneOf(PERMUTATION_KINDS, o.permutation)) throw new BadInputError(`The permutation must be one of ${PERMUTATION_KINDS.join(', ')}, not ${String(o.permutation)}.`, { option: 'permutation' });
}

/** Initialises the tfjs backend for `pref` once per process (see `backend.ts`); re-exported for compression callers. */
export { ensureBackend };

/** SHA-256 (hex) of a file, streamed in 1 MiB reads; aborts between reads. */
export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  try {
    for await (const chunk of stream) {
      throwIfAborted(signal);
      hash.update(chunk as Buffer);
    }
  } finally {
    stream.destroy();
  }
  return hash.digest('hex');
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    throw new BadInputError(`${path} does not exist or cannot be read.`);
  }
}

async function withCheckpoint<T>(path: string, signal: AbortSignal | undefined, body: (c: Checkpoint, bytes: number) => Promise<T>): Promise<T> {
  const mainFileBytes = await fileSize(path);
  const checkpoint = await openCheckpoint(path, signal ? { signal } : {});
  try {
    // The source size compression is measured against. When the tensors hold more bytes than the file opened, their
    // data lives in other files (TF.js shards, safetensors shards, ONNX external data), which count too.
    const tensorBytes = checkpoint.tensors.reduce((n, t) => n + t.bytes, 0);
    const bytes = tensorBytes > mainFileBytes ? mainFileBytes + tensorBytes : mainFileBytes;
    return await body(checkpoint, bytes);
  } finally {
    await checkpoint.close();
  }
}

/** Resolves `options` against the checkpoint at `path` without training: what is represented, the width, the sizes. */
export async function planCompression(path: string, options: CompressOptionsDto, signal?: AbortSignal): Promise<BudgetPlanDto> {
  checkCompressOptions(options);
  return withCheckpoint(path, signal, (checkpoint, bytes) => Promise.resolve(planBudget(checkpoint.tensors, options.budget, options.represent, bytes, FAST_ENCODING, convLayoutFor(checkpoint.format)).plan));
}

/** Callbacks and cancellation of a compression. */
export interface CompressHooks {
  onPlan?: (plan: BudgetPlanDto) => void;
  onBackend?: (choice: BackendChoice) => void;
  onProgress?: (progress: CompressProgressDto) => void;
  onEvaluation?: (evaluation: CompressEvaluationDto) => void;
  /** Aborting stops the job within about a second; it then rejects with CancelledError and leaves no output. */
  signal?: AbortSignal;
}

/** Streams a tensor's values re-encoded as `dtype` bytes. */
async function* encodedStream(entry: TensorEntry, dtype: DType, signal?: AbortSignal): AsyncIterable<Uint8Array> {
  for await (const chunk of entry.values(signal ? { signal } : {})) yield encodeValues(dtype, chunk);
}

/** Per-tensor error of a reconstruction (float64 sums). */
function tensorError(name: string, shape: readonly number[], original: Float32Array, recon: Float32Array): LayerErrorDto & { se: number; ss: number } {
  let se = 0;
  let ss = 0;
  for (let i = 0; i < original.length; i++) {
    const t = original[i] ?? 0;
    const d = (recon[i] ?? 0) - t;
    se += d * d;
    ss += t * t;
  }
  const n = Math.max(1, original.length);
  return { name, shape: [...shape], params: original.length, rmse: Math.sqrt(se / n), relativeError: ss > 0 ? Math.sqrt(se / ss) : 0, se, ss };
}

/**
 * The [C_out, C_in, kh, kw] filter grid a `LayerDetailDto` shows for a tensor of `shape`: rank-4 tensors as they are
 * (an 'hwio' one transposed), any other tensor as its tile's kernel grid (3-row blocks of 3×3 blocks).
 */
export function detailGrid(shape: readonly number[], tile: TileSpec, layout: ConvLayout = 'oihw'): [number, number, number, number] {
  if (shape.length !== 4) return kernelShape(tile, shape);
  return layout === 'hwio' ? [shape[3] ?? 0, shape[2] ?? 0, shape[0] ?? 0, shape[1] ?? 0] : [shape[0] ?? 0, shape[1] ?? 0, shape[2] ?? 0, shape[3] ?? 0];
}

/** Throws a BadInputError unless `filter` is a whole number in 0…`count`−1 (`count` filters of layer `name`). */
export function checkFilterIndex(name: string, filter: number, count: number): void {
  if (!Number.isInteger(filter) || filter < 0 || filter >= count) {
    throw new BadInputError(
      count > 0
        ? `Filter ${filter} is out of range: layer ${name} has ${count} filter${count === 1 ? '' : 's'} (0–${count - 1}).`
        : `Layer ${name} has no filters to show.`,
    );
  }
}

/**
 * Original-vs-reconstructed summaries of one tensor: histograms over shared edges, and one output filter (or, for
 * tiled matrices, 3-row block), its first ≤ 64 input channels (column blocks): filter `filter` when given (a whole
 * number below the layer's filter count, else a BadInputError), otherwise the one with the largest squared
 * error. Rank-4 tensors are shown as [C_out, C_in, kh, kw] filters: `layout` 'hwio' ([kh, kw, C_in, C_out] kernels)
 * is transposed first.
 */
export function layerDetail(
  name: string,
  shape: readonly number[],
  tile: TileSpec,
  original: Float32Array,
  recon: Float32Array,
  bins = DETAIL_BINS,
  layout: ConvLayout = 'oihw',
  filter?: number,
): LayerDetailDto {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of [original, recon]) {
    for (const x of a) {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 0;
  }
  const ho = new HistogramAccumulator(lo, hi, bins);
  const hr = new HistogramAccumulator(lo, hi, bins);
  ho.add(original);
  hr.add(recon);
  const rank4 = shape.length === 4;
  const hwio = rank4 && layout === 'hwio';
  const [cout, cin, kh, kw] = detailGrid(shape, tile, layout);
  if (filter !== undefined) checkFilterIndex(name, filter, cout);
  const view = (a: Float32Array): Float32Array => (!rank4 ? toKernels(a, tile, shape) : hwio ? hwioToOihw(a, shape) : a);
  const o = view(original);
  const r = view(recon);
  const per = cin * kh * kw;
  let worst = filter ?? 0;
  let worstSe = -1;
  for (let f = 0; f < cout && filter === undefined; f++) {
    let se = 0;
    for (let i = f * per; i < (f + 1) * per; i++) se += ((o[i] ?? 0) - (r[i] ?? 0)) ** 2;
    if (se > worstSe) {
      worstSe = se;
      worst = f;
    }
  }
  const k = kh * kw;
  const channels = Math.min(cin, DETAIL_MAX_CHANNELS);
  const rows = (a: Float32Array): number[][] =>
    Array.from({ length: channels }, (_, c) => Array.from(a.subarray(worst * per + c * k, worst * per + (c + 1) * k)));
  return { name, original: ho.result(), reconstructed: hr.result(), filter: { index: worst, count: cout, kh, kw, original: rows(o), reconstructed: rows(r) } };
}

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
export async function compressCheckpoint(path: string, options: CompressOptionsDto, hooks: CompressHooks = {}): Promise<CompressReportDto> {
  checkCompressOptions(options);
  const { signal } = hooks;
  throwIfAborted(signal);
  const started = performance.now();
  const out = options.out ?? artifactPathFor(path);
  if (resolve(out) === resolve(path)) throw new BadInputError(`The artifact path ${out} is the source checkpoint itself; choose another output.`);
  const choice = await ensureBackend(options.backend);
  hooks.onBackend?.(choice);
  // 'auto' trains on the native onnxruntime engine when it is installed (several times faster than wasm), else on
  // the tfjs backend just chosen; an explicit backend always trains on tfjs. `backend` names what actually ran.
  const engine = options.backend === 'auto' ? 'auto' : 'tfjs';
  let backend = tf.getBackend();
  return withCheckpoint(path, signal, async (checkpoint, sourceBytes) => {
    const layout = convLayoutFor(checkpoint.format);
    const { plan, tensors: planned } = planBudget(checkpoint.tensors, options.budget, options.represent, sourceBytes, FAST_ENCODING, layout);
    hooks.onPlan?.(plan);
    for (const t of planned) {
      const entry = checkpoint.tensors[t.index];
      if (entry?.notDecodedReason !== undefined) {
        throw new BadInputError(`Tensor ${JSON.stringify(t.name)} (${entry.dtype}) cannot be decoded (${entry.notDecodedReason}), so it cannot be stored in an artifact.`);
      }
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
    const widths = Array.from({ length: R }, (_, r) => Math.max(MIN_HIDDEN, Math.ceil(plan.hidden / options.roundWidthScale ** (R - 1 - r) - 1e-9)));
    const steps = options.steps;
    const totalSteps = steps * R;
    const evalEvery = Math.max(25, Math.round(steps / 20));
    const progressEvery = Math.max(1, Math.ceil(totalSteps / REPORT_LOSS_POINTS));
    const lossCurve: [number, number][] = [];
    const rowOf = new Map(loaded.map((t) => [t.planned.name, t]));
    let targets = loaded.map((t) => t.values);
    let result: TrainResult | undefined;
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
        { hidden: widths[r] ?? plan.hidden, steps, seed: (options.seed + r) >>> 0, permutation: options.permutation, evalEvery, progressEvery, engine, ...recipeTrainOptions(options.recipe) },
        {
          ...(signal ? { signal } : {}),
          onEngine: (e) => {
            if (e.name.startsWith('onnxruntime')) backend = e.name;
          },
          onProgress: (p) => {
            lossCurve.push([offset + p.step, p.loss]);
            hooks.onProgress?.({ step: offset + p.step, steps: totalSteps, round: r + 1, loss: p.loss, lr: p.lr, stepsPerSecond: p.stepsPerSecond, backend });
          },
          onEvaluation: (e) => {
            if (last && e.step === steps) return; // the final evaluation is computed exactly below, with detail
            const layersNow = e.layers.map((l) => {
              const t = rowOf.get(l.name);
              return { name: l.name, shape: t ? [...t.planned.shape] : [], params: t?.planned.params ?? l.weights, rmse: l.rmse, relativeError: l.weightRms > 0 ? l.rmse / l.weightRms : 0 };
            });
            // Live detail for the panels: histograms and one filter of the currently worst layer.
            const worstNow = layersNow.reduce((w, l, i) => (l.relativeError > (layersNow[w]?.relativeError ?? -1) ? i : w), 0);
            const tensor = loaded[worstNow];
            const kernels = tensor ? e.reconstruction()[worstNow] : undefined;
            hooks.onEvaluation?.({
              step: offset + e.step,
              rmse: e.rmse,
              weightRms: e.weightRms,
              layers: layersNow,
              ...(tensor && kernels
                ? { detail: layerDetail(tensor.planned.name, tensor.planned.shape, tensor.planned.tile, tensor.values, fromKernels(kernels, tensor.planned.tile, tensor.planned.shape), DETAIL_BINS, layout) }
                : {}),
            });
          },
        },
      );
      const reconstruction = result.reconstruction;
      targets = loaded.map((t, i) => fromKernels(reconstruction[i] ?? new Float32Array(0), t.planned.tile, t.planned.shape));
    }
    if (!result) throw new Error('no training round ran');
    // `targets` now holds the final reconstruction of every represented tensor, in its original layout.
    const errors = loaded.map((t, i) => tensorError(t.planned.name, t.planned.shape, t.values, targets[i] ?? new Float32Array(0)));
    const seAll = errors.reduce((s, e) => s + e.se, 0);
    const ssAll = errors.reduce((s, e) => s + e.ss, 0);
    const nAll = Math.max(1, plan.representedParams);
    const layerRows: LayerErrorDto[] = errors.map(({ name, shape, params, rmse, relativeError }) => ({ name, shape, params, rmse, relativeError }));
    const worst = errors.reduce((w, e, i) => (e.relativeError > (errors[w]?.relativeError ?? -1) ? i : w), 0);
    const worstTensor = loaded[worst];
    const rmse = Math.sqrt(seAll / nAll);
    const weightRms = Math.sqrt(ssAll / nAll);
    hooks.onEvaluation?.({
      step: totalSteps,
      rmse,
      weightRms,
      layers: layerRows,
      ...(worstTensor
        ? { detail: layerDetail(worstTensor.planned.name, worstTensor.planned.shape, worstTensor.planned.tile, worstTensor.values, targets[worst] ?? new Float32Array(0), DETAIL_BINS, layout) }
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
      if (entry) verbatim.push({ name: t.name, dtype: storedDtype, shape: t.shape, data: encodedStream(entry, storedDtype, signal) });
      return { name: t.name, dtype: t.dtype, shape: [...t.shape], stored: 'verbatim', storedDtype, reason: t.reason };
    });
    // The encoding the run actually used (it depends on the recipe); decoding reads it from here.
    const encoding = result.layout.encoding;
    const spec = nernPredictorSpec(plan.hidden, encodingWidth(encoding), 9);
    const meta: ArtifactMeta = {
      format: ARTIFACT_FORMAT,
      version: artifactVersionFor(layers),
      encoding: { ...encoding },
      predictor: spec,
      layers,
      tensors: tensorList,
      training: {
        hidden: plan.hidden,
        steps: totalSteps,
        seed: options.seed,
        optimizer: result.options.optimizer,
        permutation: options.permutation,
        backend,
        rounds: R,
        roundWidthScale: options.roundWidthScale,
        roundWidths: widths,
        batchSize: result.options.batchSize,
        dense: options.represent.dense,
      },
      source: { name: basename(path), format: checkpoint.format, bytes: sourceBytes, sha256 },
      report: { predictorParams: plan.predictorParams, representedParams: plan.representedParams, verbatimParams: plan.verbatimParams, rmse, weightRms, layers: layerRows, lossCurve },
    };
    await writeArtifact(out, { meta, predictor: result.predictor, layout: result.layout, verbatim }, signal);
    const artifactBytes = await fileSize(out);
    return {
      source: path,
      artifact: out,
      predictorParams: plan.predictorParams,
      representedParams: plan.representedParams,
      verbatimParams: plan.verbatimParams,
      ratio: sourceBytes / artifactBytes,
      artifactBytes,
      sourceBytes,
      steps: totalSteps,
      seconds: (performance.now() - started) / 1000,
      backend,
      hidden: plan.hidden,
      permutation: options.permutation,
      rmse,
      layers: layerRows,
      lossCurve,
    };
  });
}

/** The report and plan stored in an open artifact (`seconds` is 0: wall-clock time is not stored, for reproducibility). */
function reportOf(a: OpenArtifact): { report: CompressReportDto; plan: BudgetPlanDto } {
  const { meta } = a;
  const report: CompressReportDto = {
    source: meta.source.name,
    artifact: a.path,
    predictorParams: meta.report.predictorParams,
    representedParams: meta.report.representedParams,
    verbatimParams: meta.report.verbatimParams,
    ratio: meta.source.bytes / a.bytes,
    artifactBytes: a.bytes,
    sourceBytes: meta.source.bytes,
    steps: meta.training.steps,
    seconds: 0,
    backend: meta.training.backend,
    hidden: meta.training.hidden,
    permutation: isOneOf(PERMUTATION_KINDS, meta.training.permutation) ? meta.training.permutation : 'none',
    rmse: meta.report.rmse,
    layers: meta.report.layers,
    lossCurve: meta.report.lossCurve,
  };
  const params = (shape: readonly number[]): number => shape.reduce((n, d) => n * d, 1);
  const plan: BudgetPlanDto = {
    hidden: meta.training.hidden,
    predictorParams: meta.report.predictorParams,
    representedParams: meta.report.representedParams,
    verbatimParams: meta.report.verbatimParams,
    fractionOfRepresented: meta.report.predictorParams / Math.max(1, meta.report.representedParams),
    artifactBytes: a.bytes,
    sourceBytes: meta.source.bytes,
    represented: meta.layers.map((l) => ({ name: l.name, shape: [...l.shape], params: params(l.shape) })),
    verbatim: meta.tensors.flatMap((t) => (t.stored === 'verbatim' ? [{ name: t.name, shape: [...t.shape], params: params(t.shape), reason: t.reason ?? '' }] : [])),
  };
  return { report, plan };
}

/** Reopens an artifact's report and budget plan (validating the whole artifact). */
export async function artifactReport(artifact: string): Promise<{ report: CompressReportDto; plan: BudgetPlanDto }> {
  const a = await readArtifact(artifact);
  try {
    return reportOf(a);
  } finally {
    await a.close();
  }
}

/** Options of `decompressArtifact`. */
export interface DecompressOptions {
  signal?: AbortSignal;
  /** Backend for the predictor (default 'auto'). */
  backend?: BackendName;
}

/**
 * Regenerates the full checkpoint from an artifact and writes it as safetensors (default
 * `<stem>.decompressed.safetensors` beside the artifact): every original tensor, in the original order, with its
 * original name, shape and dtype (represented tensors converted from the float32 reconstruction to F32/F16/BF16/F64;
 * verbatim tensors byte-exact, or F32 where the source dtype has no safetensors name). Resolves to the written paths.
 */
export async function decompressArtifact(artifact: string, out?: string, options: DecompressOptions = {}): Promise<string[]> {
  const { signal } = options;
  throwIfAborted(signal);
  const target = out ?? decompressedPathFor(artifact);
  if (resolve(target) === resolve(artifact)) throw new BadInputError(`The output ${target} is the artifact itself; choose another output.`);
  const a = await readArtifact(artifact);
  try {
    await ensureBackend(options.backend ?? 'auto');
    throwIfAborted(signal);
    const recon = reconstructLayers(a.predictor, a.layout);
    const byName = new Map(a.meta.layers.map((l, i) => [l.name, { layer: l, values: recon[i] ?? new Float32Array(0) }]));
    const tensors: SafetensorsTensorInput[] = a.meta.tensors.map((t) => {
      if (t.stored === 'represented') {
        const r = byName.get(t.name);
        if (!r) throw new BadInputError(`${artifact}: represented tensor ${JSON.stringify(t.name)} has no layer.`);
        const dtype = isDType(t.dtype) ? t.dtype : 'F32';
        return { name: t.name, dtype, shape: t.shape, data: encodeValues(dtype, fromKernels(r.values, r.layer.tile, r.layer.shape)) };
      }
      return { name: t.name, dtype: t.storedDtype ?? 'F32', shape: t.shape, data: a.verbatimBytes(t.name, signal) };
    });
    await writeSafetensors(target, tensors, { format: 'pt', weight_lens_source: a.meta.source.name }, signal ? { signal } : {});
    return [target];
  } finally {
    await a.close();
  }
}

/** Options of `artifactLayerDetail`. */
export interface ArtifactDetailOptions {
  /**
   * The source checkpoint's path, when known (e.g. the run that wrote the artifact); tried before the file named in
   * the artifact's metadata beside the artifact.
   */
  source?: string;
  /** Backend for the predictor when none is initialised yet (default 'auto'); an initialised one is reused as is. */
  backend?: BackendName;
  signal?: AbortSignal;
}

/** SHA-256 of files already hashed, by resolved path, size and modification time (so an edited file is rehashed). */
const sourceHashes = new Map<string, string>();
/** Most entries `sourceHashes` keeps. */
const MAX_SOURCE_HASHES = 32;

async function cachedSha256(path: string, size: number, mtimeMs: number, signal?: AbortSignal): Promise<string> {
  const key = `${resolve(path)}\0${size}\0${mtimeMs}`;
  const known = sourceHashes.get(key);
  if (known !== undefined) return known;
  const hash = await sha256File(path, signal);
  if (sourceHashes.size >= MAX_SOURCE_HASHES) sourceHashes.clear();
  sourceHashes.set(key, hash);
  return hash;
}

/**
 * The source checkpoint an artifact was made from: `hint` if given and unchanged, else the file the metadata names
 * beside the artifact. "Unchanged" = same size and SHA-256 as recorded. Throws a BadInputError saying which.
 */
async function findSource(artifact: string, source: { name: string; bytes: number; sha256: string }, hint: string | undefined, signal?: AbortSignal): Promise<string> {
  const beside = join(dirname(artifact), basename(source.name));
  const candidates = [...new Set([...(hint !== undefined ? [hint] : []), beside].map((p) => resolve(p)))];
  let changed: string | undefined;
  for (const path of candidates) {
    let info;
    try {
      info = await stat(path);
    } catch {
      continue;
    }
    if (!info.isFile()) continue;
    if (info.size === source.bytes && (await cachedSha256(path, info.size, info.mtimeMs, signal)) === source.sha256) return path;
    changed ??= path;
  }
  if (changed !== undefined) {
    throw new BadInputError(
      `The source ${source.name} beside the artifact has changed since it was compressed (its size or SHA-256 differs); original-vs-reconstructed needs the original file.`,
    );
  }
  throw new BadInputError(`The source ${source.name} is not beside the artifact ${basename(artifact)}; original-vs-reconstructed needs it.`);
}

/** The last layer decoded by `artifactLayerDetail`, so other filters of it need no second decode. */
let lastDecoded: { key: string; original: Float32Array; recon: Float32Array } | undefined;

/**
 * Original-vs-reconstructed detail of one represented layer of an artifact, for any filter: reads the artifact,
 * decodes only layer `layer` (its grid rows through the predictor), reads that tensor from the source checkpoint
 * (found as `findSource` says; it must be unchanged), and returns `layerDetail` for filter `filter` (a whole number
 * below the layer's filter count; undefined: the filter with the largest error) with `bins` histogram bins. Every failure is a BadInputError: an unknown
 * layer, an out-of-range filter, a missing or changed source. The last decoded layer is cached (keyed by the
 * artifact's and the source's path, size and modification time), so switching filters costs no decode.
 */
export async function artifactLayerDetail(artifact: string, layer: string, filter: number | undefined, bins = DETAIL_BINS, options: ArtifactDetailOptions = {}): Promise<LayerDetailDto> {
  const { signal } = options;
  throwIfAborted(signal);
  if (!Number.isInteger(bins) || bins < 1 || bins > 4096) throw new RangeError(`bins must be a whole number in 1–4096, got ${bins}`);
  const a = await readArtifact(artifact);
  try {
    const { meta } = a;
    const index = meta.layers.findIndex((l) => l.name === layer);
    const info = meta.layers[index];
    if (info === undefined) {
      throw new BadInputError(`The artifact ${basename(artifact)} has no represented layer ${JSON.stringify(layer)} (it represents ${meta.layers.length}).`);
    }
    const layout = convLayoutFor(meta.source.format);
    if (filter !== undefined) checkFilterIndex(info.name, filter, detailGrid(info.shape, info.tile, layout)[0]);
    const sourcePath = await findSource(artifact, meta.source, options.source, signal);
    const [artifactStat, sourceStat] = await Promise.all([stat(artifact), stat(sourcePath)]);
    const key = JSON.stringify([resolve(artifact), artifactStat.size, artifactStat.mtimeMs, sourcePath, sourceStat.size, sourceStat.mtimeMs, info.name]);
    let decoded = lastDecoded?.key === key ? lastDecoded : undefined;
    if (decoded === undefined) {
      const original = await withCheckpoint(sourcePath, signal, async (checkpoint) => {
        const entry = checkpoint.tensors.find((t) => t.name === info.name);
        if (entry === undefined) throw new BadInputError(`The source ${meta.source.name} has no tensor ${JSON.stringify(info.name)}.`);
        return readTensorValues(entry, signal ? { signal } : {});
      });
      const params = info.shape.reduce((n, d) => n * d, 1);
      if (original.length !== params) {
        throw new BadInputError(`Tensor ${JSON.stringify(info.name)} of ${meta.source.name} has ${original.length} values; the artifact expects ${params}.`);
      }
      await ensureSomeBackend(options.backend ?? 'auto');
      throwIfAborted(signal);
      const recon = fromKernels(reconstructLayer(a.predictor, a.layout, index), info.tile, info.shape);
      decoded = { key, original, recon };
      lastDecoded = decoded;
    }
    return layerDetail(info.name, info.shape, info.tile, decoded.original, decoded.recon, bins, layout, filter);
  } finally {
    await a.close();
  }
}
