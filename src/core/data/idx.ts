/**
 * IDX datasets (the MNIST / Fashion-MNIST format): a big-endian header `00 00 TT NN` (TT the element type, NN the
 * number of dimensions), NN big-endian uint32 dimensions, then the row-major elements. Files may be gzipped; they are
 * inflated in a stream that stops as soon as the output exceeds what the header declares, so a gzip bomb costs at
 * most one chunk. An images file is paired with its labels file by name (`*-images-idx3-ubyte[.gz]` ↔
 * `*-labels-idx1-ubyte[.gz]`, also `*-images.idx3-ubyte` ↔ `*-labels.idx1-ubyte`).
 */
import { access } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { FileByteSource, MemoryByteSource, type ByteSource } from '../io/byteSource';
import { CheckpointFormatError, formatBytes, throwIfAborted } from '../io/errors';
import { LIMITS } from '../io/limits';
import { MAX_SAMPLES, checkBatch, type Dataset, type DatasetBatch } from './dataset';

/** IDX element types by type byte: bytes per element and a big-endian decoder. */
const IDX_TYPES: ReadonlyMap<
  number,
  { readonly name: string; readonly bytes: number; readonly get: (view: DataView, at: number) => number }
> = new Map([
  [0x08, { name: 'uint8', bytes: 1, get: (v: DataView, at: number) => v.getUint8(at) }],
  [0x09, { name: 'int8', bytes: 1, get: (v: DataView, at: number) => v.getInt8(at) }],
  [0x0b, { name: 'int16', bytes: 2, get: (v: DataView, at: number) => v.getInt16(at, false) }],
  [0x0c, { name: 'int32', bytes: 4, get: (v: DataView, at: number) => v.getInt32(at, false) }],
  [0x0d, { name: 'float32', bytes: 4, get: (v: DataView, at: number) => v.getFloat32(at, false) }],
  [0x0e, { name: 'float64', bytes: 8, get: (v: DataView, at: number) => v.getFloat64(at, false) }],
]);

/** Most dimensions an IDX file may declare: images use 3 or 4. */
const MAX_IDX_RANK = 8;

/** Largest inflated IDX file held in memory: Fashion-MNIST's training images are 47 MB. */
export const MAX_INFLATED_IDX_BYTES = LIMITS.maxInMemoryBytes;

/** A parsed IDX header. `dataBytes` is the exact payload length it implies. */
export interface IdxHeader {
  readonly typeCode: number;
  readonly typeName: string;
  readonly itemBytes: number;
  readonly dims: readonly number[];
  readonly dataOffset: number;
  readonly dataBytes: number;
}

/** True when `head` starts with a plausible IDX magic (two zero bytes, a known type, rank 1..8). Never throws. */
export function looksLikeIdx(head: Uint8Array): boolean {
  return (
    head.length >= 4 &&
    head[0] === 0 &&
    head[1] === 0 &&
    IDX_TYPES.has(head[2] ?? -1) &&
    (head[3] ?? 0) >= 1 &&
    (head[3] ?? 0) <= MAX_IDX_RANK
  );
}

/** Parses the IDX header at the start of `bytes` (which must hold at least the header). */
export function parseIdxHeader(bytes: Uint8Array, name: string): IdxHeader {
  if (bytes.length < 4)
    throw new CheckpointFormatError(`${name} is truncated: ${bytes.length} bytes is shorter than an IDX header.`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new CheckpointFormatError(
      `${name} is not an IDX file: its first two bytes are ${bytes[0]}, ${bytes[1]} instead of 0, 0.`,
    );
  }
  const typeCode = bytes[2] ?? 0;
  const type = IDX_TYPES.get(typeCode);
  if (!type) {
    throw new CheckpointFormatError(
      `${name} has unknown IDX element type 0x${typeCode.toString(16).padStart(2, '0')} (expected 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E).`,
    );
  }
  const rank = bytes[3] ?? 0;
  if (rank < 1 || rank > MAX_IDX_RANK)
    throw new CheckpointFormatError(`${name} declares ${rank} IDX dimensions; expected 1 to ${MAX_IDX_RANK}.`);
  const dataOffset = 4 + 4 * rank;
  if (bytes.length < dataOffset)
    throw new CheckpointFormatError(
      `${name} is truncated: its IDX header needs ${dataOffset} bytes but only ${bytes.length} are present.`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let elements = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    elements *= d;
  }
  const dataBytes = elements * type.bytes;
  if (!Number.isSafeInteger(dataBytes))
    throw new CheckpointFormatError(`${name} declares IDX dimensions [${dims.join(', ')}], too large to be real.`);
  return { typeCode, typeName: type.name, itemBytes: type.bytes, dims, dataOffset, dataBytes };
}

/** Inflates a gzipped IDX file, refusing output beyond what its header declares (and beyond `maxBytes`). */
export async function gunzipIdx(
  source: ByteSource,
  maxBytes: number = MAX_INFLATED_IDX_BYTES,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const chunkBytes = 1024 * 1024;
  async function* input(): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < source.size; at += chunkBytes) {
      throwIfAborted(signal);
      yield await source.read(at, Math.min(chunkBytes, source.size - at));
    }
  }
  const parts: Buffer[] = [];
  let total = 0;
  let expected: number | undefined;
  // The error raised inside the consumer: pipeline() may report the resulting abort of the other streams instead.
  let failure: CheckpointFormatError | undefined;
  const fail = (message: string): never => {
    failure = new CheckpointFormatError(message);
    throw failure;
  };
  try {
    await pipeline(Readable.from(input()), createGunzip(), async (inflated: AsyncIterable<Buffer>) => {
      for await (const chunk of inflated) {
        parts.push(chunk);
        total += chunk.length;
        if (expected === undefined) {
          const head = Buffer.concat(parts);
          if (head.length >= 4) {
            const rank = head[3] ?? 0;
            if (head.length >= 4 + 4 * rank || rank > MAX_IDX_RANK || head[0] !== 0 || head[1] !== 0) {
              let header: IdxHeader;
              try {
                header = parseIdxHeader(head, source.name);
              } catch (error) {
                return fail(error instanceof Error ? error.message : String(error));
              }
              expected = header.dataOffset + header.dataBytes;
              if (expected > maxBytes) {
                fail(
                  `${source.name} declares IDX dimensions [${header.dims.join(', ')}] (${formatBytes(expected)} inflated), over the ${formatBytes(maxBytes)} limit for a gzipped dataset.`,
                );
              }
            }
          }
        }
        if (expected !== undefined && total > expected) {
          fail(
            `${source.name} inflates to more than the ${formatBytes(expected)} its IDX header declares; refusing to inflate further (damaged file or gzip bomb).`,
          );
        }
        if (total > maxBytes)
          fail(`${source.name} inflates to more than ${formatBytes(maxBytes)}; refusing to inflate further.`);
      }
    });
  } catch (error) {
    if (failure) throw failure;
    if (error instanceof CheckpointFormatError) throw error;
    if (signal?.aborted) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new CheckpointFormatError(`${source.name} is not a valid gzip file or is truncated (${reason}).`);
  }
  const out = Buffer.concat(parts, total);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Opens `path` as a ByteSource over the IDX bytes, inflating gzipped files into memory. */
async function openIdxBytes(path: string, signal?: AbortSignal): Promise<ByteSource> {
  const file = await FileByteSource.open(path);
  try {
    const magic = await file.read(0, Math.min(file.size, 2));
    if (magic[0] !== 0x1f || magic[1] !== 0x8b) return file;
    const inflated = await gunzipIdx(file, MAX_INFLATED_IDX_BYTES, signal);
    await file.close();
    return new MemoryByteSource(inflated, path);
  } catch (error) {
    await file.close();
    throw error;
  }
}

async function readHeader(source: ByteSource): Promise<IdxHeader> {
  const head = await source.read(0, Math.min(source.size, 4 + 4 * MAX_IDX_RANK));
  const header = parseIdxHeader(head, source.name);
  if (header.dataOffset + header.dataBytes > source.size) {
    throw new CheckpointFormatError(
      `${source.name} is truncated: its IDX header declares ${header.typeName} [${header.dims.join(', ')}] (${formatBytes(header.dataBytes)} of data) but only ${formatBytes(Math.max(0, source.size - header.dataOffset))} follow the header.`,
    );
  }
  if (header.dataOffset + header.dataBytes < source.size) {
    throw new CheckpointFormatError(
      `${source.name} has ${formatBytes(source.size - header.dataOffset - header.dataBytes)} of unexpected data after the ${header.typeName} [${header.dims.join(', ')}] its IDX header declares.`,
    );
  }
  return header;
}

/** Candidate labels-file names for an images-file name, most specific first; empty if the name has no pairing. */
export function pairedLabelNames(imagesName: string): string[] {
  const patterns: [RegExp, string][] = [
    [/images-idx(\d)-ubyte/, 'labels-idx1-ubyte'],
    [/images\.idx(\d)-ubyte/, 'labels.idx1-ubyte'],
    [/images-idx(\d)/, 'labels-idx1'],
    [/images\.idx(\d)/, 'labels.idx1'],
  ];
  for (const [pattern, replacement] of patterns) {
    if (!pattern.test(imagesName)) continue;
    const base = imagesName.replace(pattern, replacement).replace(/\.gz$/i, '');
    return [base, `${base}.gz`];
  }
  return [];
}

/** The images-file names a labels file pairs with (the reverse of `pairedLabelNames`). */
function pairedImageNames(labelsName: string): string[] {
  const patterns: [RegExp, string[]][] = [
    [/labels-idx1-ubyte/, ['images-idx3-ubyte', 'images-idx4-ubyte']],
    [/labels\.idx1-ubyte/, ['images.idx3-ubyte', 'images.idx4-ubyte']],
  ];
  for (const [pattern, replacements] of patterns) {
    if (!pattern.test(labelsName)) continue;
    const bases = replacements.map((r) => labelsName.replace(pattern, r).replace(/\.gz$/i, ''));
    return bases.flatMap((b) => [b, `${b}.gz`]);
  }
  return [];
}

async function firstExisting(folder: string, names: readonly string[]): Promise<string | undefined> {
  for (const name of names) {
    const candidate = join(folder, name);
    try {
      await access(candidate);
      return candidate;
    } catch {
      // Not there; try the next name.
    }
  }
  return undefined;
}

/** Options for `openIdxDataset`. */
export interface IdxOptions {
  /** Explicit labels file; by default it is found by name beside the images file. `null` means no labels. */
  readonly labelsPath?: string | null;
  readonly signal?: AbortSignal;
}

/** Sample shape [H, W, C] for IDX images dims [N, ...]: [N,H,W] → [H,W,1], [N,H,W,C] → [H,W,C], [N,D] → [1,D,1]. */
function sampleShape(name: string, dims: readonly number[]): [number, number, number] {
  const [, a = 1, b, c] = dims;
  if (dims.length === 2) return [1, a, 1];
  if (dims.length === 3 && b !== undefined) return [a, b, 1];
  if (dims.length === 4 && b !== undefined && c !== undefined) return [a, b, c];
  throw new CheckpointFormatError(
    `${name} holds IDX dimensions [${dims.join(', ')}]; an image dataset needs 2 to 4 (samples first).`,
  );
}

/**
 * Opens an IDX images file (raw or gzipped) with its labels file, found by name unless `labelsPath` is given.
 * Opening a labels file opens its images file instead. Sizes are checked against the file before anything is read.
 */
export async function openIdxDataset(path: string, options: IdxOptions = {}): Promise<Dataset> {
  const folder = dirname(path);
  const fileName = basename(path);
  if (/labels[-.]idx1/.test(fileName) && options.labelsPath === undefined) {
    const images = await firstExisting(folder, pairedImageNames(fileName));
    if (images === undefined)
      throw new CheckpointFormatError(
        `${path} is an IDX labels file and no images file was found beside it (looked for ${pairedImageNames(fileName).join(', ')}).`,
      );
    return openIdxDataset(images, { labelsPath: path, ...(options.signal ? { signal: options.signal } : {}) });
  }
  const source = await openIdxBytes(path, options.signal);
  let labels: Int32Array | undefined;
  let header: IdxHeader;
  try {
    header = await readHeader(source);
    const n = header.dims[0] ?? 0;
    if (n > MAX_SAMPLES)
      throw new CheckpointFormatError(`${path} declares ${n} samples, over the ${MAX_SAMPLES} supported.`);
    const labelsPath =
      options.labelsPath === undefined
        ? await firstExisting(folder, pairedLabelNames(fileName))
        : (options.labelsPath ?? undefined);
    if (labelsPath !== undefined) labels = await readIdxLabels(labelsPath, n, options.signal);
  } catch (error) {
    await source.close();
    throw error;
  }
  const shape = sampleShape(path, header.dims);
  const type = IDX_TYPES.get(header.typeCode);
  if (!type) throw new CheckpointFormatError(`${path} has an unknown IDX element type.`);
  const sampleBytes = shape[0] * shape[1] * shape[2] * header.itemBytes;
  const size = header.dims[0] ?? 0;
  return {
    kind: 'idx',
    name: path,
    size,
    shape,
    hasLabels: labels !== undefined,
    async read(indices: readonly number[], signal?: AbortSignal): Promise<DatasetBatch> {
      const perSample = checkBatch(path, size, shape, indices);
      const x = new Float32Array(indices.length * perSample);
      const y = labels ? new Int32Array(indices.length) : undefined;
      for (let k = 0; k < indices.length; k++) {
        throwIfAborted(signal);
        const index = indices[k] ?? 0;
        const bytes = await source.read(header.dataOffset + index * sampleBytes, sampleBytes);
        if (header.typeCode === 0x08) {
          x.set(bytes, k * perSample);
        } else {
          const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          for (let i = 0; i < perSample; i++) x[k * perSample + i] = type.get(view, i * header.itemBytes);
        }
        if (y && labels) y[k] = labels[index] ?? 0;
      }
      return y ? { x, y } : { x };
    },
    close: () => source.close(),
  };
}

/** Reads an IDX labels file (rank 1, integer type) of exactly `count` labels, each ≥ 0. */
export async function readIdxLabels(path: string, count: number, signal?: AbortSignal): Promise<Int32Array> {
  const source = await openIdxBytes(path, signal);
  try {
    const header = await readHeader(source);
    if (header.dims.length !== 1 && !(header.dims.length === 2 && header.dims[1] === 1)) {
      throw new CheckpointFormatError(
        `${path} is not an IDX labels file: it holds [${header.dims.join(', ')}] instead of one label per sample.`,
      );
    }
    if (header.typeCode === 0x0d || header.typeCode === 0x0e)
      throw new CheckpointFormatError(`${path} holds ${header.typeName} labels; class labels must be integers.`);
    const n = header.dims[0] ?? 0;
    if (n !== count)
      throw new CheckpointFormatError(`${path} has ${n} labels but its images file has ${count} samples.`);
    const type = IDX_TYPES.get(header.typeCode);
    if (!type) throw new CheckpointFormatError(`${path} has an unknown IDX element type.`);
    const bytes = await source.read(header.dataOffset, header.dataBytes);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v = type.get(view, i * header.itemBytes);
      if (v < 0) throw new CheckpointFormatError(`${path}: label ${i} is ${v}; class labels must be ≥ 0.`);
      out[i] = v;
    }
    return out;
  } finally {
    await source.close();
  }
}
