/**
 * NumPy reader: `.npy` (one array, named after the file stem) and `.npz` (a zip of `.npy` members written by
 * `numpy.savez` or `numpy.savez_compressed`; tensor names are member names without `.npy`). Stored members are read
 * with zero-copy ranged reads; deflated members stream their values through the zip module's bounded inflater, so a
 * 1 GB compressed array is never inflated into memory at once. Fortran-order arrays are transposed to row-major when
 * they fit in one chunk and listed undecoded otherwise; object, string, complex and structured arrays are listed
 * undecoded with the reason.
 */
import { closeOnce, type ByteSource } from '../io/byteSource';
import { CheckpointFormatError, formatBytes, throwIfAborted } from '../io/errors';
import { LIMITS } from '../io/limits';
import {
  DEFAULT_CHUNK_ELEMENTS,
  checkShape,
  rawTensor,
  undecodedTensor,
  type TensorEntry,
  type ValueStreamOptions,
} from '../tensors/tensor';
import { decodeValues, type DType, type ValueChunk } from '../tensors/dtype';
import {
  NPY_PREAMBLE_BYTES,
  fortranToRowMajor,
  hasNpyMagic,
  parseNpyHeader,
  parseNpyPreamble,
  type NpyHeader,
} from '../containers/npy';
import { looksLikeZip, openZip, ZIP_STORED, type ZipArchive, type ZipEntry } from '../containers/zip';
import type { Checkpoint, FormatReader, MetadataValue, OpenContext } from './types';

/** Reads the `.npy` header at the start of `source`. */
async function readHeader(source: ByteSource): Promise<NpyHeader> {
  const preambleBytes = await source.read(0, Math.min(source.size, NPY_PREAMBLE_BYTES));
  const preamble = parseNpyPreamble(preambleBytes, source.name);
  if (preamble.dataOffset > source.size) {
    throw new CheckpointFormatError(
      `${source.name} is truncated: its .npy header needs ${preamble.dataOffset} bytes but the file is ${formatBytes(source.size)}.`,
    );
  }
  return parseNpyHeader(await source.read(0, preamble.dataOffset), source.name);
}

function checkDataFits(label: string, header: NpyHeader, available: number): void {
  if (header.dataOffset + header.dataBytes > available) {
    throw new CheckpointFormatError(
      `${label} is truncated: its .npy header declares ${header.descr} [${header.shape.join(', ')}] (${formatBytes(header.dataBytes)} of data) but only ${formatBytes(Math.max(0, available - header.dataOffset))} follow the header.`,
    );
  }
}

/** Reason why a Fortran-order array cannot be decoded, or undefined if it can (small enough, or effectively 1-D). */
function fortranReason(header: NpyHeader): string | undefined {
  if (!header.fortranOrder || header.shape.filter((d) => d !== 1).length <= 1) return undefined;
  if (header.dataBytes <= LIMITS.maxChunkBytes) return undefined;
  return `Fortran-order (column-major) arrays over ${formatBytes(LIMITS.maxChunkBytes)} are not decoded; save it with C order`;
}

function needsTranspose(header: NpyHeader): boolean {
  return header.fortranOrder && header.shape.filter((d) => d !== 1).length > 1;
}

/** Yields `values` of a fully-loaded, row-major byte buffer in chunks of at most `maxElements`. */
async function* yieldDecoded(
  dtype: DType,
  bytes: Uint8Array,
  itemBytes: number,
  littleEndian: boolean,
  options?: ValueStreamOptions,
): AsyncGenerator<ValueChunk> {
  const n = bytes.length / itemBytes;
  const maxElements = Math.max(1, options?.maxElements ?? DEFAULT_CHUNK_ELEMENTS);
  for (let start = 0; start < n; start += maxElements) {
    throwIfAborted(options?.signal);
    const count = Math.min(maxElements, n - start);
    yield decodeValues(dtype, bytes.subarray(start * itemBytes, (start + count) * itemBytes), littleEndian);
  }
  await Promise.resolve();
}

/** A Fortran-order array small enough to read whole: read, transpose to row-major, decode. */
function transposedTensor(
  name: string,
  header: NpyHeader,
  dtype: DType,
  readAll: (signal?: AbortSignal) => Promise<Uint8Array>,
  bytes: number,
  note: string,
): TensorEntry {
  const params = checkShape(`tensor ${JSON.stringify(name)}`, header.shape);
  return {
    name,
    dtype,
    shape: [...header.shape],
    params,
    bytes,
    note,
    async *values(options?: ValueStreamOptions): AsyncIterable<ValueChunk> {
      const raw = await readAll(options?.signal);
      const rowMajor = fortranToRowMajor(raw, header.shape, header.itemBytes);
      yield* yieldDecoded(dtype, rowMajor, header.itemBytes, header.littleEndian, options);
    },
  };
}

/** A tensor over a random-access `.npy` stream (a file, or a stored zip member). */
function npyTensor(name: string, header: NpyHeader, source: ByteSource): TensorEntry {
  checkDataFits(source.name, header, source.size);
  if (header.dtype === undefined) {
    const bytes = header.itemBytes > 0 ? header.dataBytes : source.size - header.dataOffset;
    return undecodedTensor(
      name,
      header.descr,
      header.shape,
      bytes,
      header.unsupportedReason ?? 'unsupported NumPy dtype',
    );
  }
  const reason = fortranReason(header);
  if (reason !== undefined) return undecodedTensor(name, header.dtype, header.shape, header.dataBytes, reason);
  if (needsTranspose(header)) {
    return transposedTensor(
      name,
      header,
      header.dtype,
      () => source.read(header.dataOffset, header.dataBytes),
      header.dataBytes,
      'stored in Fortran (column-major) order',
    );
  }
  return rawTensor({
    name,
    dtype: header.dtype,
    shape: header.shape,
    source,
    offset: header.dataOffset,
    littleEndian: header.littleEndian,
  });
}

/** A tensor inside a deflated `.npz` member: values stream through the inflater in bounded chunks. */
function deflatedNpyTensor(name: string, header: NpyHeader, archive: ZipArchive, entry: ZipEntry): TensorEntry {
  const label = `${archive.source.name}:${entry.name}`;
  checkDataFits(label, header, entry.uncompressedSize);
  const note = `deflated in the .npz: ${formatBytes(entry.compressedSize)} for ${formatBytes(header.dataBytes)} of data`;
  if (header.dtype === undefined) {
    return undecodedTensor(
      name,
      header.descr,
      header.shape,
      entry.compressedSize,
      header.unsupportedReason ?? 'unsupported NumPy dtype',
    );
  }
  const reason = fortranReason(header);
  if (reason !== undefined) return undecodedTensor(name, header.dtype, header.shape, entry.compressedSize, reason);
  const dtype = header.dtype;
  const itemBytes = header.itemBytes;
  /** Streams the member's data bytes (after the header) in order, exactly `header.dataBytes` of them. */
  async function* dataBytes(signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
    let skip = header.dataOffset;
    let remaining = header.dataBytes;
    if (remaining === 0) return;
    for await (const piece of archive.readEntryStream(entry, signal ? { signal } : {})) {
      let chunk = piece;
      if (skip > 0) {
        const drop = Math.min(skip, chunk.length);
        skip -= drop;
        chunk = chunk.subarray(drop);
      }
      if (chunk.length === 0) continue;
      if (chunk.length > remaining) chunk = chunk.subarray(0, remaining);
      remaining -= chunk.length;
      yield chunk;
      if (remaining === 0) return;
    }
    throw new CheckpointFormatError(`${label} ended before all ${formatBytes(header.dataBytes)} of its array data.`);
  }
  if (needsTranspose(header)) {
    const readAll = async (signal?: AbortSignal): Promise<Uint8Array> => {
      const out = new Uint8Array(header.dataBytes);
      let at = 0;
      for await (const chunk of dataBytes(signal)) {
        out.set(chunk, at);
        at += chunk.length;
      }
      return out;
    };
    return transposedTensor(
      name,
      header,
      dtype,
      readAll,
      entry.compressedSize,
      `${note}; stored in Fortran (column-major) order`,
    );
  }
  const params = checkShape(`tensor ${JSON.stringify(name)}`, header.shape);
  return {
    name,
    dtype,
    shape: [...header.shape],
    params,
    bytes: entry.compressedSize,
    note,
    async *values(options?: ValueStreamOptions): AsyncIterable<ValueChunk> {
      const maxElements = Math.max(
        1,
        Math.min(options?.maxElements ?? DEFAULT_CHUNK_ELEMENTS, Math.floor(LIMITS.maxChunkBytes / itemBytes)),
      );
      const chunkBytes = maxElements * itemBytes;
      let buffer = new Uint8Array(Math.min(chunkBytes, header.dataBytes));
      let filled = 0;
      let left = header.dataBytes;
      for await (let piece of dataBytes(options?.signal)) {
        while (piece.length > 0) {
          const take = Math.min(piece.length, buffer.length - filled);
          buffer.set(piece.subarray(0, take), filled);
          filled += take;
          piece = piece.subarray(take);
          if (filled === buffer.length) {
            // decodeValues may return a view of `buffer`, so each chunk gets a fresh buffer.
            yield decodeValues(dtype, buffer, header.littleEndian);
            left -= filled;
            buffer = new Uint8Array(Math.min(chunkBytes, left));
            filled = 0;
          }
        }
      }
    },
  };
}

function stem(path: string): string {
  const base = path.split(/[\\/]/).pop() ?? path;
  return base.replace(/\.npy$/i, '') || base;
}

async function openNpy(source: ByteSource, context: OpenContext): Promise<Checkpoint> {
  const header = await readHeader(source);
  const tensor = npyTensor(stem(context.path || source.name), header, source);
  return {
    format: 'numpy',
    description: `NumPy .npy (format ${header.version.join('.')})`,
    tensors: [tensor],
    metadata: { descr: header.descr, fortran_order: header.fortranOrder, version: header.version.join('.') },
    close: closeOnce(async () => {
      await source.close();
    }),
  };
}

async function openNpz(source: ByteSource, context: OpenContext): Promise<Checkpoint> {
  const archive = await openZip(source, context.signal ? { signal: context.signal } : {});
  const tensors: TensorEntry[] = [];
  const skipped: string[] = [];
  let deflated = 0;
  const names = new Set<string>();
  for (const entry of archive.entries) {
    throwIfAborted(context.signal);
    if (entry.isDirectory) continue;
    if (!entry.name.toLowerCase().endsWith('.npy')) {
      skipped.push(entry.name);
      continue;
    }
    const name = entry.name.slice(0, -4);
    if (names.has(name))
      throw new CheckpointFormatError(`${source.name} contains two arrays named ${JSON.stringify(name)}.`);
    names.add(name);
    const label = `${source.name}:${entry.name}`;
    if (entry.method === ZIP_STORED) {
      const member = await archive.openEntry(entry);
      tensors.push(npyTensor(name, await readHeader(member), member));
      continue;
    }
    deflated++;
    const preamble = parseNpyPreamble(await archive.readEntryPrefix(entry, NPY_PREAMBLE_BYTES, context.signal), label);
    if (preamble.dataOffset > entry.uncompressedSize) {
      throw new CheckpointFormatError(
        `${label} is truncated: its .npy header needs ${preamble.dataOffset} bytes but the member is ${formatBytes(entry.uncompressedSize)}.`,
      );
    }
    const header = parseNpyHeader(await archive.readEntryPrefix(entry, preamble.dataOffset, context.signal), label);
    tensors.push(deflatedNpyTensor(name, header, archive, entry));
  }
  if (tensors.length === 0 && archive.entries.length > 0) {
    throw new CheckpointFormatError(
      `${source.name} is a zip archive but holds no .npy arrays, so it is not a NumPy .npz file.`,
    );
  }
  const metadata: Record<string, MetadataValue> = { arrays: tensors.length, compressed: deflated > 0 };
  if (skipped.length > 0) metadata.other_members = skipped.slice(0, 20).join(', ') + (skipped.length > 20 ? ', …' : '');
  return {
    format: 'numpy',
    description: deflated > 0 ? 'NumPy .npz (compressed)' : 'NumPy .npz',
    tensors,
    metadata,
    close: closeOnce(async () => {
      await source.close();
    }),
  };
}

/** Length of the first zip member's name, and the name, from a local header at the start of `head`. */
function firstZipMemberName(head: Uint8Array): string | undefined {
  if (head.length < 30) return undefined;
  const nameLength = (head[26] ?? 0) | ((head[27] ?? 0) << 8);
  if (30 + nameLength > head.length) return undefined;
  return new TextDecoder('utf-8').decode(head.subarray(30, 30 + nameLength));
}

/** Reads NumPy `.npy` arrays and `.npz` archives (stored or compressed). */
export const numpyFormat: FormatReader = {
  id: 'numpy',
  label: 'NumPy (.npy / .npz)',
  extensions: ['.npy', '.npz'],
  sniff(head: Uint8Array, fileName: string): number {
    try {
      const lower = fileName.toLowerCase();
      if (hasNpyMagic(head)) return 1;
      if (looksLikeZip(head)) {
        const first = firstZipMemberName(head);
        if (first?.toLowerCase().endsWith('.npy')) return lower.endsWith('.npz') ? 1 : 0.9;
        if (lower.endsWith('.npz')) return 0.8;
        return 0;
      }
      return lower.endsWith('.npy') || lower.endsWith('.npz') ? 0.2 : 0;
    } catch {
      return 0;
    }
  },
  async open(source: ByteSource, context: OpenContext): Promise<Checkpoint> {
    const head = await source.read(0, Math.min(source.size, 8));
    if (hasNpyMagic(head)) return openNpy(source, context);
    if (looksLikeZip(head)) return openNpz(source, context);
    const lower = (context.path || source.name).toLowerCase();
    if (lower.endsWith('.npy') && source.size < NPY_PREAMBLE_BYTES && source.size > 0) {
      throw new CheckpointFormatError(
        `${source.name} is truncated: it is ${formatBytes(source.size)}, shorter than a .npy header.`,
      );
    }
    throw new CheckpointFormatError(
      `${source.name} is not a NumPy file: it starts with neither the .npy magic (\\x93NUMPY) nor a zip header.`,
    );
  },
};
