/**
 * Plain data (DTOs) describing an inspected checkpoint. These cross from the worker to the extension host and on to
 * the Inspector webview, and are printed by `weight-lens inspect --json`. No raw weight arrays: only headers,
 * summary statistics and binned histograms.
 */
import type { ArtifactMetaSummary } from './artifact';
import type { LayerKind } from './vocabulary';
import { formatInteger } from './units';

/**
 * Summary statistics of one tensor's values. Moments ignore NaN/±Inf; those are counted in `nonFinite`. A tensor
 * with no finite values (an empty tensor, or only NaN/±Inf) has no statistics: `count` is 0 and every moment is null
 * (shown as "—"), never a made-up 0.
 */
export interface TensorStatsDto {
  /** Number of finite values the moments are computed over. */
  count: number;
  /** Mean of the finite values; null when `count` is 0. */
  mean: number | null;
  /** Population standard deviation of the finite values; null when `count` is 0. */
  std: number | null;
  /** Smallest finite value; null when `count` is 0. */
  min: number | null;
  /** Largest finite value; null when `count` is 0. */
  max: number | null;
  /** Largest absolute finite value; null when `count` is 0. */
  absMax: number | null;
  /** Euclidean norm of the finite values; null when `count` is 0. */
  l2: number | null;
  /** Count of values exactly equal to 0 (±0). */
  zeros: number;
  /** Count of NaN and ±Infinity values. */
  nonFinite: number;
}

/** A histogram over `[edges[0], edges[edges.length-1]]` with `counts.length === edges.length - 1` bins of equal width. */
export interface HistogramDto {
  /** Bin edges, ascending; the last bin includes its right edge. */
  edges: number[];
  /** Finite values per bin. */
  counts: number[];
}

/** Header facts of one tensor: available as soon as the file is opened. */
export interface TensorHeaderDto {
  name: string;
  /** Stored element type (`F32`, `BF16`, `Q4_0`, `uint8 (quantized)`…). */
  dtype: string;
  shape: number[];
  /** Element count. */
  params: number;
  /** Bytes occupied in the file. */
  bytes: number;
  /** Why values are not decoded (unsupported quantisation), if so. */
  notDecoded?: string;
  /** Extra facts (shared storage, quantisation, external file). */
  note?: string;
  /** A coarse layer kind derived from the name and shape: `conv`, `dense`, `norm`, `embedding`, `bias`, `other`. */
  kind: LayerKind;
}

export type { LayerKind } from './vocabulary';

/** One tensor with its statistics (when computed). */
export interface TensorReportDto extends TensorHeaderDto {
  stats?: TensorStatsDto;
  histogram?: HistogramDto;
}

/** Totals over a set of tensors. */
export interface TotalsDto {
  tensors: number;
  params: number;
  bytes: number;
}

/** The header part of an inspection: sent at once, before any statistics. */
export interface CheckpointHeaderDto {
  /** Format id (`safetensors`, `pytorch`, `onnx`, `tfjs`, `keras`, `numpy`, `gguf`). */
  format: string;
  /** Human description of the container. */
  description: string;
  /** Path of the inspected file. */
  file: string;
  /** File size in bytes (the main file; shards are included in `totals.bytes` of tensors). */
  fileBytes: number;
  metadata: Record<string, string | number | boolean | null>;
  /**
   * For a NeRN artifact: its metadata summary, read whole by the engine's codec (metadata strings above are cut at
   * 1 kB, so the banner cannot parse them), or why the artifact could not be read.
   */
  artifact?: { summary: ArtifactMetaSummary } | { problem: string };
  tensors: TensorHeaderDto[];
  totals: TotalsDto;
  byDtype: Record<string, TotalsDto>;
  byKind: Partial<Record<LayerKind, TotalsDto>>;
}

/** The complete `inspect --json` document. */
export interface InspectReportDto {
  format: string;
  file: string;
  /** Size of the inspected file in bytes. */
  bytes: number;
  description: string;
  metadata: Record<string, string | number | boolean | null>;
  tensors: TensorReportDto[];
  totals: TotalsDto;
  byDtype: Record<string, TotalsDto>;
  byKind: Partial<Record<LayerKind, TotalsDto>>;
  /** For a NeRN artifact: its summary as the codec reads it (with a lean artifact's report sidecar), or why not. */
  artifact?: CheckpointHeaderDto['artifact'];
}

/**
 * Stored element types that hold integers or booleans, never learned float weights: shape constants, indices, step
 * counters, masks. Matched on the dtype as readers name it (`I64`, `U8`, `BOOL`; also `int32`-style spellings), so a
 * quantised float weight such as TF.js `uint8 (quantized)` or GGUF `Q4_0` still counts as a float weight.
 */
const INTEGER_DTYPE = /^(?:[IU]\d+|u?int\d+|BOOL)$/i;

/** True when a tensor stored as `dtype` holds integers or booleans (see `INTEGER_DTYPE`), not float weights. */
export function isIntegerDtype(dtype: string): boolean {
  return INTEGER_DTYPE.test(dtype);
}

/**
 * The headline split of a checkpoint's parameters: `float` element count of float (or quantised float) tensors, the
 * learned weights; `other` element count and `otherTensors` tensor count of integer and boolean tensors. `float +
 * other` equals the sum of `byDtype`'s params.
 */
export function weightCounts(byDtype: Readonly<Record<string, TotalsDto>>): {
  float: number;
  other: number;
  otherTensors: number;
} {
  let float = 0;
  let other = 0;
  let otherTensors = 0;
  for (const [dtype, t] of Object.entries(byDtype)) {
    if (isIntegerDtype(dtype)) {
      other += t.params;
      otherTensors += t.tensors;
    } else float += t.params;
  }
  return { float, other, otherTensors };
}

/**
 * The integer part of a parameter headline, `` when there is none: "+ 48 integer values in 36 tensors (shape
 * constants, indices)".
 */
export function otherValuesText(counts: { other: number; otherTensors: number }): string {
  if (counts.otherTensors === 0) return '';
  return `+ ${formatInteger(counts.other)} integer value${counts.other === 1 ? '' : 's'} in ${formatInteger(counts.otherTensors)} tensor${counts.otherTensors === 1 ? '' : 's'}`;
}
