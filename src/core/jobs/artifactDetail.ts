/**
 * Jobs that reopen an artifact: its stored report and plan (for a Reconstruction panel opened later), and the
 * original-vs-reconstructed detail of any represented layer, which decodes that layer and reads the unchanged source
 * checkpoint beside the artifact (found by name and verified by size and SHA-256). Source hashes and the last decoded
 * layer are cached per process, so clicking through filters of one layer decodes it once.
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { BackendName, BudgetPlanDto, CompressReportDto, LayerDetailDto } from '../../protocol/compress';
import { isOneOf, PERMUTATION_KINDS } from '../../protocol/vocabulary';
import { ensureSomeBackend } from '../backend/tfjsBackend';
import { BadInputError, throwIfAborted } from '../io/errors';
import { readArtifact, type OpenArtifact } from '../nern/artifact';
import { measureArtifactBytes } from '../nern/artifactSize';
import { readReportSidecar } from '../nern/reportSidecar';
import { reconstructLayer } from '../nern/kernelMap';
import { convLayoutFor, fromKernels, type ConvLayout, type TileSpec } from '../nern/tiling';
import { classifyTensor } from '../nern/budget';
import { readBaselineArtifact, type OpenBaselineArtifact } from '../baselines/artifact';
import { isBaselineArtifact } from '../baselines/compressedArtifact';
import type { ArtifactSource } from '../../protocol/artifact';
import { readTensorValues } from '../tensors/tensor';
import { sha256File } from '../io/hash';
import { DETAIL_BINS, detailGrid, checkFilterIndex, layerDetail } from '../nern/layerDetail';

import { withCheckpoint } from '../formats/sourceSize';
/**
 * The report and plan stored in an open artifact (`seconds` is 0: wall-clock time is not stored, for
 * reproducibility). For a distilled artifact that recorded its distilled predictor's errors, the report's errors are
 * those (what the artifact decodes to) and `distillation` holds phase 1's beside what distillation did.
 */
export function reportOf(a: OpenArtifact): { report: CompressReportDto; plan: BudgetPlanDto } {
  const { meta } = a;
  const phase1RelativeError = meta.report.weightRms > 0 ? meta.report.rmse / meta.report.weightRms : 0;
  const d = meta.distillation;
  const distilled = d?.reconstruction;
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
    rmse: distilled?.rmse ?? meta.report.rmse,
    relativeError:
      distilled === undefined
        ? phase1RelativeError
        : distilled.weightRms > 0
          ? distilled.rmse / distilled.weightRms
          : 0,
    layers: distilled?.layers ?? meta.report.layers,
    lossCurve: meta.report.lossCurve,
  };
  if (meta.training.stoppedEarly !== undefined) report.stoppedEarly = meta.training.stoppedEarly;
  if (meta.lean === true) report.lean = true;
  if (d !== undefined && distilled !== undefined) {
    const planned = d.settings.steps;
    report.distillation = {
      phase1: {
        steps: meta.training.steps,
        rmse: meta.report.rmse,
        relativeError: phase1RelativeError,
        layers: meta.report.layers,
      },
      steps: d.stoppedEarly?.step ?? (typeof planned === 'number' ? planned : 0),
      from: d.from,
      before: d.before,
      after: d.after,
      ...(d.stoppedEarly !== undefined ? { stoppedEarly: d.stoppedEarly } : {}),
    };
  }
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
    verbatim: meta.tensors.flatMap((t) =>
      t.stored === 'verbatim'
        ? [{ name: t.name, shape: [...t.shape], params: params(t.shape), reason: t.reason ?? '' }]
        : [],
    ),
  };
  return { report, plan };
}

/**
 * Reopens an artifact's report and budget plan (validating the whole artifact); a NeRN artifact's plan carries the
 * file's bytes by component as stored (`plan.bytes`, read from its header).
 */
export async function artifactReport(artifact: string): Promise<{ report: CompressReportDto; plan: BudgetPlanDto }> {
  if (await isBaselineArtifact(artifact)) {
    const b = await readBaselineArtifact(artifact);
    try {
      return baselineReportOf(b);
    } finally {
      await b.close();
    }
  }
  const a = await readArtifact(artifact);
  try {
    const opened = reportOf(a);
    opened.plan.bytes = await measureArtifactBytes(artifact);
    if (a.meta.predictorStorage !== undefined) opened.plan.predictorDtype = a.meta.predictorStorage;
    if (a.meta.verbatimStorage !== undefined) opened.plan.verbatimDtype = a.meta.verbatimStorage;
    // A lean artifact's report rows and loss curve come from its sidecar, when one that belongs to it is beside it.
    if (a.meta.lean === true && opened.report.distillation === undefined) {
      const sidecar = await readReportSidecar(artifact);
      if (sidecar !== undefined) {
        opened.report.layers = sidecar.layers;
        opened.report.lossCurve = sidecar.lossCurve;
        opened.report.sidecar = { path: sidecar.path, bytes: sidecar.bytes };
      }
    }
    return opened;
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
async function findSource(
  artifact: string,
  source: { name: string; bytes: number; sha256: string },
  hint: string | undefined,
  signal?: AbortSignal,
): Promise<string> {
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
    if (info.size === source.bytes && (await cachedSha256(path, info.size, info.mtimeMs, signal)) === source.sha256)
      return path;
    changed ??= path;
  }
  if (changed !== undefined) {
    throw new BadInputError(
      `The source ${source.name} beside the artifact has changed since it was compressed (its size or SHA-256 differs); original-vs-reconstructed needs the original file.`,
    );
  }
  throw new BadInputError(
    `The source ${source.name} is not beside the artifact ${basename(artifact)}; original-vs-reconstructed needs it.`,
  );
}

/** The last layer decoded by `artifactLayerDetail`, so other filters of it need no second decode. */
let lastDecoded: { key: string; original: Float32Array; recon: Float32Array } | undefined;

/**
 * The original values (from the source checkpoint, found as `findSource` says) and the reconstruction of the
 * represented layer `index` of the open artifact `a` at `artifact`, both in the source tensor's layout. The last pair
 * decoded is cached (keyed by both files' path, size and modification time and the layer).
 */
async function decodeLayer(
  a: OpenArtifact,
  artifact: string,
  index: number,
  options: ArtifactDetailOptions,
): Promise<{ original: Float32Array; recon: Float32Array }> {
  const info = a.meta.layers[index];
  if (info === undefined) throw new RangeError(`layer index ${index} out of range`);
  return decodeTensorPair(artifact, a.meta.source, info, options, async () => {
    await ensureSomeBackend(options.backend ?? 'auto');
    throwIfAborted(options.signal);
    return fromKernels(reconstructLayer(a.predictor, a.kernelMap, index), info.tile, info.shape);
  });
}

/**
 * The original values of tensor `info` (from the source checkpoint, found as `findSource` says) and its
 * reconstruction by `reconstruct`, both in the source tensor's layout; the last pair is cached (keyed by both files'
 * path, size and modification time and the tensor).
 */
async function decodeTensorPair(
  artifact: string,
  source: ArtifactSource,
  info: { name: string; shape: readonly number[] },
  options: ArtifactDetailOptions,
  reconstruct: () => Promise<Float32Array>,
): Promise<{ original: Float32Array; recon: Float32Array }> {
  const { signal } = options;
  const sourcePath = await findSource(artifact, source, options.source, signal);
  const [artifactStat, sourceStat] = await Promise.all([stat(artifact), stat(sourcePath)]);
  const key = JSON.stringify([
    resolve(artifact),
    artifactStat.size,
    artifactStat.mtimeMs,
    sourcePath,
    sourceStat.size,
    sourceStat.mtimeMs,
    info.name,
  ]);
  if (lastDecoded?.key === key) return lastDecoded;
  const original = await withCheckpoint(sourcePath, signal, async (checkpoint) => {
    const entry = checkpoint.tensors.find((t) => t.name === info.name);
    if (entry === undefined)
      throw new BadInputError(`The source ${source.name} has no tensor ${JSON.stringify(info.name)}.`);
    return readTensorValues(entry, signal ? { signal } : {});
  });
  const params = info.shape.reduce((n, d) => n * d, 1);
  if (original.length !== params) {
    throw new BadInputError(
      `Tensor ${JSON.stringify(info.name)} of ${source.name} has ${original.length} values; the artifact expects ${params}.`,
    );
  }
  const recon = await reconstruct();
  lastDecoded = { key, original, recon };
  return lastDecoded;
}

/** A represented tensor of a baseline artifact: its shape, tile (for the detail grid) and reconstruction. */
function baselineLayer(
  b: OpenBaselineArtifact,
  artifact: string,
  layer: string,
): { shape: number[]; tile: TileSpec; layout: ConvLayout; reconstruct: () => Promise<Float32Array> } {
  const t = b.meta.tensors.find((x) => x.name === layer && x.stored === 'represented');
  if (t === undefined) {
    const n = b.meta.tensors.filter((x) => x.stored === 'represented').length;
    throw new BadInputError(
      `The artifact ${basename(artifact)} has no represented layer ${JSON.stringify(layer)} (it represents ${n}).`,
    );
  }
  const layout = convLayoutFor(b.meta.source.format);
  const params = t.shape.reduce((n, d) => n * d, 1);
  const c = classifyTensor(
    { name: t.name, dtype: t.dtype, shape: t.shape, params },
    { conv: true, dense: true, pointwise: 'centre' },
    layout,
  );
  const tile: TileSpec = c.represented ? c.tile : { kind: 'tiled', rows: 3, cols: 3 };
  return {
    shape: [...t.shape],
    tile,
    layout,
    reconstruct: async () => (await b.reconstructTensor(layer)) ?? new Float32Array(params),
  };
}

/** The report and plan stored in a baseline artifact (`seconds` 0; no predictor, so width and steps are 0). */
export function baselineReportOf(b: OpenBaselineArtifact): { report: CompressReportDto; plan: BudgetPlanDto } {
  const { meta } = b;
  const r = meta.report;
  const params = (shape: readonly number[]): number => shape.reduce((n, d) => n * d, 1);
  const report: CompressReportDto = {
    source: meta.source.name,
    artifact: b.path,
    predictorParams: 0,
    representedParams: r.representedParams,
    verbatimParams: r.verbatimParams,
    ratio: meta.source.bytes / b.bytes,
    artifactBytes: b.bytes,
    sourceBytes: meta.source.bytes,
    steps: 0,
    seconds: 0,
    backend: meta.method,
    method: meta.method,
    hidden: 0,
    permutation: 'none',
    rmse: r.rmse,
    relativeError: r.weightRms > 0 ? r.rmse / r.weightRms : 0,
    layers: r.layers,
    lossCurve: [],
  };
  const plan: BudgetPlanDto = {
    hidden: 0,
    predictorParams: 0,
    representedParams: r.representedParams,
    verbatimParams: r.verbatimParams,
    fractionOfRepresented: r.storedBytes / Math.max(1, 4 * r.representedParams),
    artifactBytes: b.bytes,
    sourceBytes: meta.source.bytes,
    represented: meta.tensors.flatMap((t) =>
      t.stored === 'represented' ? [{ name: t.name, shape: [...t.shape], params: params(t.shape) }] : [],
    ),
    verbatim: meta.tensors.flatMap((t) =>
      t.stored === 'verbatim' ? [{ name: t.name, shape: [...t.shape], params: params(t.shape), reason: t.reason }] : [],
    ),
  };
  return { report, plan };
}

/**
 * The represented layer `layer` of the artifact at `artifact`: its shape, the source format's convolution layout,
 * and its original and reconstructed values (see `decodeLayer`; cached). A BadInputError for an unknown layer or a
 * missing or changed source.
 */
export async function artifactLayerValues(
  artifact: string,
  layer: string,
  options: ArtifactDetailOptions = {},
): Promise<{ shape: number[]; layout: ConvLayout; original: Float32Array; recon: Float32Array }> {
  throwIfAborted(options.signal);
  if (await isBaselineArtifact(artifact)) {
    const b = await readBaselineArtifact(artifact);
    try {
      const l = baselineLayer(b, artifact, layer);
      const decoded = await decodeTensorPair(
        artifact,
        b.meta.source,
        { name: layer, shape: l.shape },
        options,
        l.reconstruct,
      );
      return { shape: l.shape, layout: l.layout, ...decoded };
    } finally {
      await b.close();
    }
  }
  const a = await readArtifact(artifact);
  try {
    const index = a.meta.layers.findIndex((l) => l.name === layer);
    const info = a.meta.layers[index];
    if (info === undefined) {
      throw new BadInputError(
        `The artifact ${basename(artifact)} has no represented layer ${JSON.stringify(layer)} (it represents ${a.meta.layers.length}).`,
      );
    }
    const decoded = await decodeLayer(a, artifact, index, options);
    return { shape: [...info.shape], layout: convLayoutFor(a.meta.source.format), ...decoded };
  } finally {
    await a.close();
  }
}

/**
 * Original-vs-reconstructed detail of one represented layer of an artifact, for any filter: reads the artifact,
 * decodes only layer `layer` (its grid rows through the predictor), reads that tensor from the source checkpoint
 * (found as `findSource` says; it must be unchanged), and returns `layerDetail` for filter `filter` (a whole number
 * below the layer's filter count; undefined: the filter with the largest error) with `bins` histogram bins. Every failure is a BadInputError: an unknown
 * layer, an out-of-range filter, a missing or changed source. The last decoded layer is cached (keyed by the
 * artifact's and the source's path, size and modification time), so switching filters costs no decode.
 */
export async function artifactLayerDetail(
  artifact: string,
  layer: string,
  filter: number | undefined,
  bins = DETAIL_BINS,
  options: ArtifactDetailOptions = {},
): Promise<LayerDetailDto> {
  const { signal } = options;
  throwIfAborted(signal);
  if (!Number.isInteger(bins) || bins < 1 || bins > 4096)
    throw new RangeError(`bins must be a whole number in 1–4096, got ${bins}`);
  if (await isBaselineArtifact(artifact)) {
    const b = await readBaselineArtifact(artifact);
    try {
      const l = baselineLayer(b, artifact, layer);
      if (filter !== undefined) checkFilterIndex(layer, filter, detailGrid(l.shape, l.tile, l.layout)[0]);
      const d = await decodeTensorPair(
        artifact,
        b.meta.source,
        { name: layer, shape: l.shape },
        options,
        l.reconstruct,
      );
      return layerDetail(layer, l.shape, l.tile, d.original, d.recon, bins, l.layout, filter);
    } finally {
      await b.close();
    }
  }
  const a = await readArtifact(artifact);
  try {
    const { meta } = a;
    const index = meta.layers.findIndex((l) => l.name === layer);
    const info = meta.layers[index];
    if (info === undefined) {
      throw new BadInputError(
        `The artifact ${basename(artifact)} has no represented layer ${JSON.stringify(layer)} (it represents ${meta.layers.length}).`,
      );
    }
    const layout = convLayoutFor(meta.source.format);
    if (filter !== undefined) checkFilterIndex(info.name, filter, detailGrid(info.shape, info.tile, layout)[0]);
    const decoded = await decodeLayer(a, artifact, index, options);
    return layerDetail(info.name, info.shape, info.tile, decoded.original, decoded.recon, bins, layout, filter);
  } finally {
    await a.close();
  }
}
