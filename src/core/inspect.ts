/**
 * The inspect job: open a checkpoint, report its header at once, then stream per-tensor statistics and histograms.
 * Shared by the worker (for the Inspector) and the CLI (`weight-lens inspect`). Memory stays bounded: values are
 * read in chunks and never kept beyond one tensor's second pass.
 */
import type { CheckpointHeaderDto, InspectReportDto, LayerKind, TensorHeaderDto, TensorReportDto, TotalsDto, HistogramDto, TensorStatsDto } from '../protocol/inspect';
import { stat } from 'node:fs/promises';
import { CheckpointFormatError, throwIfAborted } from './io/errors';
import { openCheckpoint } from './formats/registry';
import type { Checkpoint } from './formats/types';
import type { ValueChunk } from './tensors/dtype';
import { layerKindOf } from './tensors/layerKind';
import { HistogramAccumulator, StatsAccumulator } from './tensors/stats';
import type { TensorEntry } from './tensors/tensor';

/** Default number of histogram bins. */
export const DEFAULT_HISTOGRAM_BINS = 64;

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
  const byDtype: Record<string, TotalsDto> = {};
  const byKind: Partial<Record<LayerKind, TotalsDto>> = {};
  for (const t of tensors) {
    for (const bucket of [totals, (byDtype[t.dtype] ??= { tensors: 0, params: 0, bytes: 0 }), (byKind[t.kind] ??= { tensors: 0, params: 0, bytes: 0 })]) {
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

/**
 * Tensors of up to this many elements are read in one chunk and kept in memory for the second (histogram) pass,
 * so they are read from disk once: 16 Mi elements = 64 MB of float32, the largest chunk a reader yields.
 */
const SINGLE_READ_ELEMENTS = 16 * 1024 * 1024;

/**
 * Computes statistics (pass 1) and a `bins`-bin histogram over [min, max] (pass 2) of one tensor, streaming its
 * values in bounded chunks. A tensor that fits in one chunk is read once.
 */
export async function tensorStatistics(entry: TensorEntry, bins: number, signal?: AbortSignal): Promise<{ stats: TensorStatsDto; histogram: HistogramDto }> {
  const stats = new StatsAccumulator();
  let only: ValueChunk | undefined;
  let chunks = 0;
  const maxElements = entry.params <= SINGLE_READ_ELEMENTS ? SINGLE_READ_ELEMENTS : undefined;
  for await (const chunk of entry.values({ ...(signal ? { signal } : {}), ...(maxElements ? { maxElements } : {}) })) {
    stats.add(chunk);
    chunks++;
    only = chunks === 1 ? chunk : undefined;
  }
  const result = stats.result();
  const histogram = new HistogramAccumulator(result.min, result.max, bins);
  if (stats.finiteCount > 0) {
    if (only) histogram.add(only);
    else for await (const chunk of entry.values(signal ? { signal } : {})) histogram.add(chunk);
  }
  return { stats: result, histogram: histogram.result() };
}

/** Callbacks of a streaming inspection. */
export interface InspectObserver {
  /** Called once, as soon as headers are parsed. */
  onHeader?(header: CheckpointHeaderDto): void;
  /** Called per tensor, in tensor order, as its statistics complete. */
  onTensorStats?(index: number, stats: TensorStatsDto, histogram: HistogramDto): void;
  /** Called per tensor whose values could not be read (not decoded, or damaged data). */
  onTensorError?(index: number, message: string): void;
}

/** Options of `inspectFile`. */
export interface InspectOptions {
  bins?: number;
  signal?: AbortSignal;
  /** Skip statistics (headers only). */
  headersOnly?: boolean;
}

/**
 * Inspects the checkpoint at `path`: header first, then statistics per tensor. Returns the complete report.
 * Tensors that are not decoded get no stats (and `onTensorError`); a damaged tensor fails the whole inspection
 * with `CheckpointFormatError`, since the file is then corrupt.
 */
export async function inspectFile(path: string, options: InspectOptions = {}, observer: InspectObserver = {}): Promise<InspectReportDto> {
  const bins = options.bins ?? DEFAULT_HISTOGRAM_BINS;
  const checkpoint = await openCheckpoint(path, options.signal ? { signal: options.signal } : {});
  try {
    const fileBytes = (await stat(path)).size;
    const header = checkpointHeader(checkpoint, path, fileBytes);
    observer.onHeader?.(header);
    const tensors: TensorReportDto[] = header.tensors.map((t) => ({ ...t }));
    if (!options.headersOnly) {
      for (let index = 0; index < checkpoint.tensors.length; index++) {
        throwIfAborted(options.signal);
        const entry = checkpoint.tensors[index];
        const report = tensors[index];
        if (!entry || !report) continue;
        if (entry.notDecodedReason !== undefined) {
          observer.onTensorError?.(index, `not decoded: ${entry.notDecodedReason}`);
          continue;
        }
        const { stats, histogram } = await tensorStatistics(entry, bins, options.signal);
        report.stats = stats;
        report.histogram = histogram;
        observer.onTensorStats?.(index, stats, histogram);
      }
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
    };
  } finally {
    await checkpoint.close();
  }
}

export { CheckpointFormatError };
