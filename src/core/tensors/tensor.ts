/**
 * The tensor record every format reader returns: header facts (name, dtype, shape, sizes) available at once, and
 * values streamed lazily in bounded chunks on demand.
 */
import type { ByteSource } from '../io/byteSource';
import { CheckpointFormatError, formatBytes, throwIfAborted } from '../io/errors';
import { LIMITS } from '../io/limits';
import { DTYPE_BYTES, decodeValues, type DType, type ValueChunk } from './dtype';

/** Options for streaming a tensor's values. */
export interface ValueStreamOptions {
  /** Largest number of elements per yielded chunk (default 4 Mi elements). Chunks may be smaller. */
  maxElements?: number;
  /** Aborts the stream between chunks with `CancelledError`. */
  signal?: AbortSignal;
}

/** Default elements per streamed chunk: 4 Mi elements = 16 MB of float32, a bounded working set. */
export const DEFAULT_CHUNK_ELEMENTS = 4 * 1024 * 1024;

/** A run of values of which each occurs `weight` times in its tensor (a whole number ≥ 1). */
export interface WeightedChunk {
  readonly values: ValueChunk;
  readonly weight: number;
}

/** One tensor of a checkpoint. Header fields are cheap; `values` does the I/O. */
export interface TensorEntry {
  /** Fully qualified name as the format spells it (e.g. `layer1.0.conv1.weight`). */
  readonly name: string;
  /** Stored element type: a `DType`, or a format-specific name such as GGUF's `Q6_K` or TF.js `uint8 (quantized)`. */
  readonly dtype: string;
  /** Dimensions, outermost first (row-major). A scalar has `[]`. */
  readonly shape: readonly number[];
  /** Element count: the product of `shape`. */
  readonly params: number;
  /** Bytes the tensor occupies in the file (after any quantisation or compression the format applies). */
  readonly bytes: number;
  /** Set when values cannot be decoded (an unsupported quantisation); `values` then throws. */
  readonly notDecodedReason?: string;
  /** Extra facts worth showing (quantisation scale/min, shared storage, external file), or undefined. */
  readonly note?: string;
  /** Streams all `params` values in row-major order as float chunks. Total yielded length equals `params`. */
  values(options?: ValueStreamOptions): AsyncIterable<ValueChunk>;
  /**
   * Optional, for tensors whose `params` counts repeated or implicit values (an expanded view with stride 0, a
   * sparse tensor's zeros): the same values as a weighted multiset in any order, read in time proportional to the
   * stored bytes. Σ chunk length × weight equals `params`. Statistics use it when present.
   */
  summary?(options?: ValueStreamOptions): AsyncIterable<WeightedChunk>;
}

/**
 * A namer that makes names unique in the order they come: the first `w` stays `w`, the next ones become `w#2`, `w#3`…
 * (skipping any a file already uses). Amortised constant time per name, so a file repeating one name 10^6 times costs
 * linear time, not quadratic.
 */
export function uniqueNamer(): (name: string) => string {
  const used = new Set<string>();
  const nextSuffix = new Map<string, number>();
  return (name: string): string => {
    if (!used.has(name)) {
      used.add(name);
      return name;
    }
    let k = nextSuffix.get(name) ?? 2;
    while (used.has(`${name}#${k}`)) k++;
    nextSuffix.set(name, k + 1);
    const unique = `${name}#${k}`;
    used.add(unique);
    return unique;
  };
}

/** Validates a shape from a file header and returns its element count; throws a user-facing error if absurd. */
export function checkShape(where: string, shape: readonly number[]): number {
  if (shape.length > LIMITS.maxRank)
    throw new CheckpointFormatError(
      `${where} has ${shape.length} dimensions, more than the ${LIMITS.maxRank} allowed.`,
    );
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0)
      throw new CheckpointFormatError(`${where} has an invalid dimension ${String(d)}.`);
    n *= d;
    if (n > LIMITS.maxTensorElements)
      throw new CheckpointFormatError(
        `${where} has shape [${shape.join(', ')}], over 2^40 elements: not a real tensor.`,
      );
  }
  return n;
}

/** How stored integers map back to real values: `value = stored * scale + min` (TF.js uint8/uint16 quantisation). */
export interface AffineDequantization {
  readonly scale: number;
  readonly min: number;
}

/** Where a tensor's raw little-endian (or big-endian) element bytes lie. */
export interface RawTensorSpec {
  readonly name: string;
  readonly dtype: DType;
  /** Displayed dtype if different from `dtype` (e.g. `uint8 (quantized)`). */
  readonly displayDtype?: string;
  readonly shape: readonly number[];
  readonly source: ByteSource;
  /** Byte offset of element 0 within `source`. */
  readonly offset: number;
  readonly littleEndian?: boolean;
  readonly dequantize?: AffineDequantization;
  readonly note?: string;
  /** Bytes counted as the tensor's size if not `params * DTYPE_BYTES[dtype]` (shared storages count once). */
  readonly bytes?: number;
}

/**
 * A tensor whose elements lie contiguously in a byte source. Checks the byte range against the source size at
 * construction, so a header that points past the end fails when the checkpoint is opened, not later.
 */
export function rawTensor(spec: RawTensorSpec): TensorEntry {
  const params = checkShape(`tensor ${JSON.stringify(spec.name)}`, spec.shape);
  const elementBytes = DTYPE_BYTES[spec.dtype];
  const byteLength = params * elementBytes;
  if (!Number.isSafeInteger(spec.offset) || spec.offset < 0 || spec.offset + byteLength > spec.source.size) {
    throw new CheckpointFormatError(
      `tensor ${JSON.stringify(spec.name)} needs bytes ${spec.offset}–${spec.offset + byteLength} but ${spec.source.name} has only ${formatBytes(spec.source.size)}: the file is truncated or its header is corrupt.`,
    );
  }
  const entry: TensorEntry = {
    name: spec.name,
    dtype: spec.displayDtype ?? spec.dtype,
    shape: [...spec.shape],
    params,
    bytes: spec.bytes ?? byteLength,
    ...(spec.note !== undefined ? { note: spec.note } : {}),
    async *values(options?: ValueStreamOptions): AsyncIterable<ValueChunk> {
      const maxElements = Math.max(
        1,
        Math.min(options?.maxElements ?? DEFAULT_CHUNK_ELEMENTS, Math.floor(LIMITS.maxChunkBytes / elementBytes)),
      );
      for (let start = 0; start < params; start += maxElements) {
        throwIfAborted(options?.signal);
        const count = Math.min(maxElements, params - start);
        const bytes = await spec.source.read(spec.offset + start * elementBytes, count * elementBytes);
        const chunk = decodeValues(spec.dtype, bytes, spec.littleEndian ?? true);
        if (spec.dequantize) {
          const out = new Float32Array(chunk.length);
          const { scale, min } = spec.dequantize;
          for (let i = 0; i < chunk.length; i++) out[i] = (chunk[i] as number) * scale + min;
          yield out;
        } else {
          yield chunk;
        }
      }
    },
  };
  return entry;
}

/** A tensor whose values are already decoded in memory (ONNX Constant nodes, small pickled values). */
export function memoryTensor(
  name: string,
  dtype: string,
  shape: readonly number[],
  data: ValueChunk,
  bytes: number,
  note?: string,
): TensorEntry {
  const params = checkShape(`tensor ${JSON.stringify(name)}`, shape);
  if (data.length !== params)
    throw new CheckpointFormatError(
      `tensor ${JSON.stringify(name)} has ${data.length} values but its shape [${shape.join(', ')}] needs ${params}.`,
    );
  return {
    name,
    dtype,
    shape: [...shape],
    params,
    bytes,
    ...(note !== undefined ? { note } : {}),
    async *values(options?: ValueStreamOptions): AsyncIterable<ValueChunk> {
      const maxElements = Math.max(1, options?.maxElements ?? DEFAULT_CHUNK_ELEMENTS);
      for (let start = 0; start < params; start += maxElements) {
        throwIfAborted(options?.signal);
        yield data.subarray(start, Math.min(params, start + maxElements));
      }
      await Promise.resolve();
    },
  };
}

/** A tensor listed but not decodable (an unsupported quantisation); `values` throws a clear error. */
export function undecodedTensor(
  name: string,
  dtype: string,
  shape: readonly number[],
  bytes: number,
  reason: string,
): TensorEntry {
  const params = checkShape(`tensor ${JSON.stringify(name)}`, shape);
  return {
    name,
    dtype,
    shape: [...shape],
    params,
    bytes,
    notDecodedReason: reason,
    // eslint-disable-next-line require-yield
    async *values(): AsyncIterable<ValueChunk> {
      await Promise.resolve();
      throw new CheckpointFormatError(`tensor ${JSON.stringify(name)} (${dtype}) is not decoded: ${reason}`);
    },
  };
}

/**
 * Reads all values of `entry` into one Float32Array. Refuses tensors over `maxElements` (default 256 Mi) so callers
 * that need whole tensors (compression, decompression) cannot be made to allocate without bound.
 */
export async function readTensorValues(
  entry: TensorEntry,
  options?: { maxElements?: number; signal?: AbortSignal },
): Promise<Float32Array> {
  const limit = options?.maxElements ?? 256 * 1024 * 1024;
  if (entry.params > limit) {
    throw new CheckpointFormatError(
      `tensor ${JSON.stringify(entry.name)} has ${entry.params} elements, over the ${limit} that can be loaded at once.`,
    );
  }
  const out = new Float32Array(entry.params);
  let at = 0;
  for await (const chunk of entry.values(options?.signal ? { signal: options.signal } : {})) {
    if (at + chunk.length > out.length)
      throw new CheckpointFormatError(`tensor ${JSON.stringify(entry.name)} yielded more values than its shape holds.`);
    out.set(chunk, at);
    at += chunk.length;
  }
  if (at !== out.length)
    throw new CheckpointFormatError(
      `tensor ${JSON.stringify(entry.name)} yielded ${at} values, fewer than its ${out.length}.`,
    );
  return out;
}
