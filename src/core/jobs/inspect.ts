/**
 * The inspect job: open a checkpoint, report its header at once, then stream per-tensor statistics and histograms.
 * Shared by the worker (for the Inspector) and the CLI (`weight-lens inspect`). Memory stays bounded: values are
 * read in chunks and never kept beyond one tensor's second pass.
 */
import type {
  CheckpointHeaderDto,
  InspectReportDto,
  LayerKind,
  TensorHeaderDto,
  TensorReportDto,
  TotalsDto,
  HistogramDto,
  TensorStatsDto,
} from '../../protocol/inspect';
import { stat } from 'node:fs/promises';
import { DEFAULT_HISTOGRAM_BINS } from '../../protocol/defaults';
import { ARTIFACT_KEY } from '../../protocol/artifact';
import { BadInputError, CancelledError, throwIfAborted } from '../io/errors';
import { readArtifact } from '../nern/artifact';
import { readReportSidecar } from '../nern/reportSidecar';
import { isBaselineArtifact } from '../baselines/compressedArtifact';
import { openCheckpoint } from '../formats/registry';
import type { Checkpoint } from '../formats/types';
import { layerKindOf } from '../tensors/layerKind';
import { tensorStatistics } from '../tensors/stats';
import type { TensorEntry } from '../tensors/tensor';

/** Builds the header DTO of an opened checkpoint. `fileBytes` is the size of the main file. */
export function checkpointHeader(checkpoint: Checkpoint, file: string, fileBytes: number): CheckpointHeaderDto {
  const tensors: TensorHeaderDto[] = checkpoint.tensors.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: [...t.shape],
    params: t.params,
    bytes: t.bytes,
    kind: layerKindOf(t.name, t.shape),
    ...(t.notDecodedReason !== undefined ? { notDecoded: t.notDecodedReason } : {}),
    ...(t.note !== undefined ? { note: t.note } : {}),
  }));
  const totals: TotalsDto = { tensors: 0, params: 0, bytes: 0 };
  const byDtype = Object.create(null) as Record<string, TotalsDto>; // keyed by file-given dtype names: no prototype
  const byKind: Partial<Record<LayerKind, TotalsDto>> = {};
  for (const t of tensors) {
    for (const bucket of [
      totals,
      (byDtype[t.dtype] ??= { tensors: 0, params: 0, bytes: 0 }),
      (byKind[t.kind] ??= { tensors: 0, params: 0, bytes: 0 }),
    ]) {
      bucket.tensors += 1;
      bucket.params += t.params;
      bucket.bytes += t.bytes;
    }
  }
  return {
    format: checkpoint.format,
    description: checkpoint.description,
    file,
    fileBytes,
    metadata: { ...checkpoint.metadata },
    tensors,
    totals,
    byDtype,
    byKind,
  };
}

/** One tensor's statistics and histogram, at the cost of its stored bytes (the one implementation is in tensors/). */
export { tensorStatistics } from '../tensors/stats';

/** Callbacks of a streaming inspection. */
export interface InspectObserver {
  /** Called once, as soon as headers are parsed. */
  onHeader?(header: CheckpointHeaderDto): void;
  /** Called per tensor, in tensor order, as its statistics complete. */
  onTensorStats?(index: number, stats: TensorStatsDto, histogram: HistogramDto): void;
  /** Called per tensor whose values could not be read (not decoded, or damaged data). */
  onTensorError?(index: number, message: string): void;
}

/** Computes one tensor's statistics, possibly on another thread; must honour `signal`. */
export type StatisticsRunner = (
  index: number,
  entry: TensorEntry,
  bins: number,
  signal?: AbortSignal,
) => Promise<{ stats: TensorStatsDto; histogram: HistogramDto }>;

/** Options of `inspectFile`. */
export interface InspectOptions {
  /** Histogram bins per tensor (default 64). */
  bins?: number;
  signal?: AbortSignal;
  /** Skip statistics (headers only). */
  headersOnly?: boolean;
  /**
   * Chooses, once the header is known, where statistics are computed: a runner (e.g. a thread pool) and how many
   * tensors it takes at once. Returning undefined (the default) computes them here, one tensor at a time.
   */
  parallel?: (header: CheckpointHeaderDto) => { run: StatisticsRunner; concurrency: number } | undefined;
}

/**
 * Inspects the checkpoint at `path`: header first, then statistics per tensor. Returns the complete report.
 * Tensors that are not decoded get no stats (and `onTensorError`); a damaged tensor fails the whole inspection
 * with `CheckpointFormatError` (from the reader), since the file is then corrupt.
 */
/** The summary of the artifact at `path` as its codec reads it, or the one-sentence reason it cannot be read. */
async function artifactOf(path: string): Promise<NonNullable<CheckpointHeaderDto['artifact']>> {
  try {
    const artifact = await readArtifact(path);
    try {
      const { format, version, training, source, report, distillation, lean, verbatimStorage } = artifact.meta;
      // A lean artifact's per-layer rows and loss curve come from its report sidecar when one belongs to it.
      const sidecar = lean === true ? await readReportSidecar(path) : undefined;
      return {
        summary: {
          format,
          version,
          training,
          source,
          report: sidecar ? { ...report, layers: sidecar.layers, lossCurve: sidecar.lossCurve } : report,
          ...(distillation ? { distillation } : {}),
          ...(lean === true ? { lean } : {}),
          ...(verbatimStorage !== undefined ? { verbatimStorage } : {}),
          ...(sidecar ? { reportSidecar: { path: sidecar.path, bytes: sidecar.bytes } } : {}),
        },
      };
    } finally {
      await artifact.close();
    }
  } catch (error) {
    if (error instanceof BadInputError) return { problem: error.message };
    throw error;
  }
}

export async function inspectFile(
  path: string,
  options: InspectOptions = {},
  observer: InspectObserver = {},
): Promise<InspectReportDto> {
  const bins = options.bins ?? DEFAULT_HISTOGRAM_BINS;
  const checkpoint = await openCheckpoint(path, options.signal ? { signal: options.signal } : {});
  try {
    const fileBytes = (await stat(path)).size;
    const header = checkpointHeader(checkpoint, path, fileBytes);
    // A baseline artifact (compress --method int8…) is not a NeRN artifact: no NeRN banner, and no false "invalid".
    if (
      checkpoint.format === 'safetensors' &&
      Object.hasOwn(checkpoint.metadata, ARTIFACT_KEY) &&
      !(await isBaselineArtifact(path))
    )
      header.artifact = await artifactOf(path);
    observer.onHeader?.(header);
    const tensors: TensorReportDto[] = header.tensors.map((t) => ({ ...t }));
    if (!options.headersOnly) {
      const parallel = options.parallel?.(header);
      const run: StatisticsRunner = parallel?.run ?? ((_index, entry, b, signal) => tensorStatistics(entry, b, signal));
      const lanes = Math.max(1, Math.min(parallel?.concurrency ?? 1, checkpoint.tensors.length));
      // One lane keeps file order; several take the largest tensors first so that they finish together.
      const order = checkpoint.tensors.map((_, i) => i);
      if (lanes > 1) order.sort((a, b) => (checkpoint.tensors[b]?.bytes ?? 0) - (checkpoint.tensors[a]?.bytes ?? 0));
      // The first failure stops every lane (and the runner's in-flight work) through this controller.
      const stop = new AbortController();
      const forward = (): void => {
        stop.abort();
      };
      options.signal?.addEventListener('abort', forward, { once: true });
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < order.length) {
          throwIfAborted(stop.signal);
          const index = order[next++] ?? 0;
          const entry = checkpoint.tensors[index];
          const report = tensors[index];
          if (!entry || !report) continue;
          if (entry.notDecodedReason !== undefined) {
            observer.onTensorError?.(index, `not decoded: ${entry.notDecodedReason}`);
            continue;
          }
          const { stats, histogram } = await run(index, entry, bins, stop.signal);
          report.stats = stats;
          report.histogram = histogram;
          observer.onTensorStats?.(index, stats, histogram);
        }
      };
      const results = await Promise.allSettled(
        Array.from({ length: lanes }, () =>
          lane().catch((error: unknown) => {
            stop.abort();
            throw error;
          }),
        ),
      );
      options.signal?.removeEventListener('abort', forward);
      // Report the root cause, not the cancellations it caused in the other lanes.
      const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      const cause = failures.find((e) => !(e instanceof CancelledError)) ?? failures[0];
      if (cause !== undefined) throw cause instanceof Error ? cause : new Error('statistics failed');
    }
    return {
      format: header.format,
      file: path,
      bytes: fileBytes,
      description: header.description,
      metadata: header.metadata,
      tensors,
      totals: header.totals,
      byDtype: header.byDtype,
      byKind: header.byKind,
      ...(header.artifact !== undefined ? { artifact: header.artifact } : {}),
    };
  } finally {
    await checkpoint.close();
  }
}
