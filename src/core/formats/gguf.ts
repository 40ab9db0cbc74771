/**
 * GGUF reader (llama.cpp / ggml files, versions 2 and 3, little-endian). Layout: magic `GGUF`, u32 version, u64
 * tensor count, u64 metadata count, the metadata key/values, one info record per tensor (name, dims innermost-first,
 * ggml type, offset), padding to `general.alignment` (default 32), then the data section.
 *
 * Every count and length is checked against the bytes left in the file before it is used, so a lying header fails
 * at once instead of looping or allocating. Every ggml type is listed with its exact block size so `bytes` is right;
 * values are decoded for the plain types (F32, F16, BF16, F64, I8–I64) and the simple block quantisations (Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q8_1); the k-quants, i-quants and others are listed undecoded. Shapes are reported
 * outermost-first (GGUF stores dims innermost-first), as gguf-py does for NumPy shapes.
 */
import { closeOnce, type ByteSource } from '../io/byteSource';
import { CheckpointFormatError, formatBytes, throwIfAborted } from '../io/errors';
import { LIMITS } from '../io/limits';
import { f16BitsToNumber, type DType, type ValueChunk } from '../tensors/dtype';
import {
  DEFAULT_CHUNK_ELEMENTS,
  checkShape,
  rawTensor,
  undecodedTensor,
  type TensorEntry,
  type ValueStreamOptions,
} from '../tensors/tensor';
import type { Checkpoint, FormatReader, MetadataValue, OpenContext } from './types';

/** A ggml tensor type: its name, elements per block and bytes per block (from ggml.h / gguf-py constants). */
export interface GgmlType {
  readonly name: string;
  readonly blockElements: number;
  readonly blockBytes: number;
  /** The plain `DType` when elements are stored one by one. */
  readonly dtype?: DType;
}

/** Every ggml type id that has appeared in GGUF files, with its block geometry. */
export const GGML_TYPES: ReadonlyMap<number, GgmlType> = new Map<number, GgmlType>([
  [0, { name: 'F32', blockElements: 1, blockBytes: 4, dtype: 'F32' }],
  [1, { name: 'F16', blockElements: 1, blockBytes: 2, dtype: 'F16' }],
  [2, { name: 'Q4_0', blockElements: 32, blockBytes: 18 }],
  [3, { name: 'Q4_1', blockElements: 32, blockBytes: 20 }],
  [6, { name: 'Q5_0', blockElements: 32, blockBytes: 22 }],
  [7, { name: 'Q5_1', blockElements: 32, blockBytes: 24 }],
  [8, { name: 'Q8_0', blockElements: 32, blockBytes: 34 }],
  [9, { name: 'Q8_1', blockElements: 32, blockBytes: 36 }],
  [10, { name: 'Q2_K', blockElements: 256, blockBytes: 84 }],
  [11, { name: 'Q3_K', blockElements: 256, blockBytes: 110 }],
  [12, { name: 'Q4_K', blockElements: 256, blockBytes: 144 }],
  [13, { name: 'Q5_K', blockElements: 256, blockBytes: 176 }],
  [14, { name: 'Q6_K', blockElements: 256, blockBytes: 210 }],
  [15, { name: 'Q8_K', blockElements: 256, blockBytes: 292 }],
  [16, { name: 'IQ2_XXS', blockElements: 256, blockBytes: 66 }],
  [17, { name: 'IQ2_XS', blockElements: 256, blockBytes: 74 }],
  [18, { name: 'IQ3_XXS', blockElements: 256, blockBytes: 98 }],
  [19, { name: 'IQ1_S', blockElements: 256, blockBytes: 50 }],
  [20, { name: 'IQ4_NL', blockElements: 32, blockBytes: 18 }],
  [21, { name: 'IQ3_S', blockElements: 256, blockBytes: 110 }],
  [22, { name: 'IQ2_S', blockElements: 256, blockBytes: 82 }],
  [23, { name: 'IQ4_XS', blockElements: 256, blockBytes: 136 }],
  [24, { name: 'I8', blockElements: 1, blockBytes: 1, dtype: 'I8' }],
  [25, { name: 'I16', blockElements: 1, blockBytes: 2, dtype: 'I16' }],
  [26, { name: 'I32', blockElements: 1, blockBytes: 4, dtype: 'I32' }],
  [27, { name: 'I64', blockElements: 1, blockBytes: 8, dtype: 'I64' }],
  [28, { name: 'F64', blockElements: 1, blockBytes: 8, dtype: 'F64' }],
  [29, { name: 'IQ1_M', blockElements: 256, blockBytes: 56 }],
  [30, { name: 'BF16', blockElements: 1, blockBytes: 2, dtype: 'BF16' }],
  [31, { name: 'Q4_0_4_4', blockElements: 32, blockBytes: 18 }],
  [32, { name: 'Q4_0_4_8', blockElements: 32, blockBytes: 18 }],
  [33, { name: 'Q4_0_8_8', blockElements: 32, blockBytes: 18 }],
  [34, { name: 'TQ1_0', blockElements: 256, blockBytes: 54 }],
  [35, { name: 'TQ2_0', blockElements: 256, blockBytes: 66 }],
  [36, { name: 'IQ4_NL_4_4', blockElements: 32, blockBytes: 18 }],
  [37, { name: 'IQ4_NL_4_8', blockElements: 32, blockBytes: 18 }],
  [38, { name: 'IQ4_NL_8_8', blockElements: 32, blockBytes: 18 }],
  [39, { name: 'MXFP4', blockElements: 32, blockBytes: 17 }],
  [40, { name: 'NVFP4', blockElements: 64, blockBytes: 36 }],
  [41, { name: 'Q1_0', blockElements: 128, blockBytes: 18 }],
  [42, { name: 'Q2_0', blockElements: 64, blockBytes: 18 }],
]);

/** Block quantisations decoded here: each turns one block of `blockBytes` into `blockElements` floats. */
type BlockDecoder = (bytes: Uint8Array, at: number, out: Float32Array, outAt: number) => void;

function half(bytes: Uint8Array, at: number): number {
  return f16BitsToNumber((bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8));
}
function u32le(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8) | ((bytes[at + 2] ?? 0) << 16) | ((bytes[at + 3] ?? 0) << 24)) >>> 0
  );
}

const BLOCK_DECODERS: Readonly<Record<string, BlockDecoder>> = {
  // d (f16), 16 bytes of nibbles: low nibbles are values 0..15, high nibbles 16..31; value = (q - 8) * d.
  Q4_0(b, at, out, o) {
    const d = half(b, at);
    for (let j = 0; j < 16; j++) {
      const q = b[at + 2 + j] ?? 0;
      out[o + j] = ((q & 0x0f) - 8) * d;
      out[o + j + 16] = ((q >> 4) - 8) * d;
    }
  },
  // d, m (f16), 16 bytes of nibbles; value = q * d + m.
  Q4_1(b, at, out, o) {
    const d = half(b, at);
    const m = half(b, at + 2);
    for (let j = 0; j < 16; j++) {
      const q = b[at + 4 + j] ?? 0;
      out[o + j] = (q & 0x0f) * d + m;
      out[o + j + 16] = (q >> 4) * d + m;
    }
  },
  // d (f16), qh (u32: the fifth bit of each value), 16 bytes of nibbles; value = (q - 16) * d.
  Q5_0(b, at, out, o) {
    const d = half(b, at);
    const qh = u32le(b, at + 2);
    for (let j = 0; j < 16; j++) {
      const q = b[at + 6 + j] ?? 0;
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      out[o + j] = (((q & 0x0f) | h0) - 16) * d;
      out[o + j + 16] = (((q >> 4) | h1) - 16) * d;
    }
  },
  // d, m (f16), qh (u32), 16 bytes of nibbles; value = q * d + m.
  Q5_1(b, at, out, o) {
    const d = half(b, at);
    const m = half(b, at + 2);
    const qh = u32le(b, at + 4);
    for (let j = 0; j < 16; j++) {
      const q = b[at + 8 + j] ?? 0;
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      out[o + j] = ((q & 0x0f) | h0) * d + m;
      out[o + j + 16] = ((q >> 4) | h1) * d + m;
    }
  },
  // d (f16), 32 int8; value = q * d.
  Q8_0(b, at, out, o) {
    const d = half(b, at);
    for (let j = 0; j < 32; j++) out[o + j] = (((b[at + 2 + j] ?? 0) << 24) >> 24) * d;
  },
  // d, s (f16; s is the block sum, not needed), 32 int8; value = q * d.
  Q8_1(b, at, out, o) {
    const d = half(b, at);
    for (let j = 0; j < 32; j++) out[o + j] = (((b[at + 4 + j] ?? 0) << 24) >> 24) * d;
  },
};

/** A block-quantised tensor whose values are decoded block by block in bounded chunks. */
function blockTensor(
  name: string,
  type: GgmlType,
  decode: BlockDecoder,
  shape: readonly number[],
  params: number,
  source: ByteSource,
  offset: number,
): TensorEntry {
  const blocks = params / type.blockElements;
  const bytes = blocks * type.blockBytes;
  return {
    name,
    dtype: type.name,
    shape: [...shape],
    params,
    bytes,
    note: `${type.name}: blocks of ${type.blockElements} values in ${type.blockBytes} bytes`,
    async *values(options?: ValueStreamOptions): AsyncIterable<ValueChunk> {
      const maxElements = options?.maxElements ?? DEFAULT_CHUNK_ELEMENTS;
      const byBytes = Math.floor(LIMITS.maxChunkBytes / type.blockBytes);
      const blocksPerChunk = Math.max(1, Math.min(Math.floor(maxElements / type.blockElements), byBytes));
      for (let first = 0; first < blocks; first += blocksPerChunk) {
        throwIfAborted(options?.signal);
        const count = Math.min(blocksPerChunk, blocks - first);
        const raw = await source.read(offset + first * type.blockBytes, count * type.blockBytes);
        const out = new Float32Array(count * type.blockElements);
        for (let k = 0; k < count; k++) decode(raw, k * type.blockBytes, out, k * type.blockElements);
        yield out;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// A buffered little-endian cursor over the header, with every read checked against the file size.

const WINDOW = 1024 * 1024;

class Cursor {
  private buffer: Uint8Array = new Uint8Array(0);
  private bufferStart = 0;
  pos = 0;
  constructor(private readonly source: ByteSource) {}

  get remaining(): number {
    return this.source.size - this.pos;
  }

  /** The file name, for messages. */
  get name(): string {
    return this.source.name;
  }

  /** Makes `n` bytes at `pos` available, or throws a truncation error naming `what`. */
  private async need(n: number, what: string): Promise<number> {
    if (n > this.remaining) {
      throw new CheckpointFormatError(
        `${this.source.name} is truncated: reading ${what} at offset ${this.pos} needs ${n} bytes but only ${this.remaining} remain.`,
      );
    }
    const rel = this.pos - this.bufferStart;
    if (rel >= 0 && rel + n <= this.buffer.length) return rel;
    const length = Math.min(Math.max(n, WINDOW), this.remaining);
    this.buffer = await this.source.read(this.pos, length);
    this.bufferStart = this.pos;
    return 0;
  }

  async u8(what: string): Promise<number> {
    const at = await this.need(1, what);
    this.pos += 1;
    return this.buffer[at] ?? 0;
  }
  async u32(what: string): Promise<number> {
    const at = await this.need(4, what);
    this.pos += 4;
    return u32le(this.buffer, at);
  }
  /** A u64 as a number; values beyond 2^53 become Infinity (callers reject them as out of range). */
  async u64(what: string): Promise<number> {
    const at = await this.need(8, what);
    this.pos += 8;
    const lo = u32le(this.buffer, at);
    const hi = u32le(this.buffer, at + 4);
    return hi >= 0x200000 ? Infinity : hi * 0x100000000 + lo;
  }
  /** Reads `n` bytes as a view (valid until the next read). */
  async bytes(n: number, what: string): Promise<Uint8Array> {
    const at = await this.need(n, what);
    this.pos += n;
    return this.buffer.subarray(at, at + n);
  }
  skip(n: number, what: string): void {
    if (n > this.remaining) {
      throw new CheckpointFormatError(
        `${this.source.name} is truncated: ${what} at offset ${this.pos} needs ${formatBytes(n)} but only ${formatBytes(this.remaining)} remain.`,
      );
    }
    this.pos += n;
  }

  /** Reads a GGUF string (u64 length + UTF-8); keeps at most `keep` bytes of it and skips the rest. */
  async string(what: string, keep: number): Promise<{ text: string; length: number }> {
    const start = this.pos;
    const length = await this.u64(`the length of ${what}`);
    if (length > this.remaining) {
      throw new CheckpointFormatError(
        `${this.source.name} is truncated or corrupt: ${what} at offset ${start} claims ${Number.isFinite(length) ? formatBytes(length) : 'over 2^53 bytes'}, beyond the ${formatBytes(this.remaining)} left in the file.`,
      );
    }
    const kept = Math.min(length, keep);
    const text = kept > 0 ? utf8.decode(await this.bytes(kept, what)) : '';
    this.skip(length - kept, what);
    return { text, length };
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

// ---------------------------------------------------------------------------------------------------------------
// Metadata values

const VALUE_TYPE_NAMES = [
  'u8',
  'i8',
  'u16',
  'i16',
  'u32',
  'i32',
  'f32',
  'bool',
  'string',
  'array',
  'u64',
  'i64',
  'f64',
] as const;
const VALUE_TYPE_BYTES: Readonly<Record<number, number>> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};
/** Longest metadata string kept (the rest is elided); also the longest key accepted. */
const MAX_STRING_KEEP = 1024;
const MAX_KEY_BYTES = 65536;
/** Array elements whose values are shown inline in the summary. */
const INLINE_ARRAY_ITEMS = 8;
/** Fewest bytes one metadata key/value can take: u64 key length, u32 type, 1-byte value. */
const MIN_KV_BYTES = 8 + 4 + 1;
/** Fewest bytes one tensor info can take: u64 name length, u32 n_dims, u32 type, u64 offset. */
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8;

function typeName(type: number): string {
  return VALUE_TYPE_NAMES[type] ?? `type ${type}`;
}

async function readScalar(cursor: Cursor, type: number, what: string): Promise<MetadataValue> {
  switch (type) {
    case 8: {
      const { text, length } = await cursor.string(what, MAX_STRING_KEEP);
      return length > MAX_STRING_KEEP ? `${text}… (${length} bytes)` : text;
    }
    case 7:
      return (await cursor.u8(what)) !== 0;
    default: {
      const size = VALUE_TYPE_BYTES[type];
      if (size === undefined)
        throw new CheckpointFormatError(`${what} in ${cursor.name} has unknown GGUF value type ${type}.`);
      const b = await cursor.bytes(size, what);
      const view = new DataView(b.buffer, b.byteOffset, size);
      switch (type) {
        case 0:
          return view.getUint8(0);
        case 1:
          return view.getInt8(0);
        case 2:
          return view.getUint16(0, true);
        case 3:
          return view.getInt16(0, true);
        case 4:
          return view.getUint32(0, true);
        case 5:
          return view.getInt32(0, true);
        case 6:
          return view.getFloat32(0, true);
        case 10:
          return bigToValue(view.getBigUint64(0, true));
        case 11:
          return bigToValue(view.getBigInt64(0, true));
        default:
          return view.getFloat64(0, true);
      }
    }
  }
}

function bigToValue(value: bigint): MetadataValue {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(value)
    : value.toString();
}

/** Reads one metadata value of `type`; arrays are summarised as `array[u32; 32000]` (short ones with their items). */
async function readValue(cursor: Cursor, type: number, what: string, depth: number): Promise<MetadataValue> {
  if (type !== 9) return readScalar(cursor, type, what);
  if (depth > 8) throw new CheckpointFormatError(`${what} in ${cursor.name} nests GGUF arrays more than 8 deep.`);
  const itemType = await cursor.u32(`the item type of ${what}`);
  const count = await cursor.u64(`the length of ${what}`);
  const minItem = itemType === 8 ? 8 : itemType === 9 ? 12 : VALUE_TYPE_BYTES[itemType];
  if (minItem === undefined)
    throw new CheckpointFormatError(`${what} in ${cursor.name} is an array of unknown GGUF value type ${itemType}.`);
  if (!Number.isSafeInteger(count) || count * minItem > cursor.remaining) {
    throw new CheckpointFormatError(
      `${what} in ${cursor.name} claims ${Number.isFinite(count) ? count : 'over 2^53'} items of ${typeName(itemType)}, more than the ${formatBytes(cursor.remaining)} left in the file can hold.`,
    );
  }
  const summary = `array[${typeName(itemType)}; ${count}]`;
  if (itemType !== 8 && itemType !== 9) {
    const size = VALUE_TYPE_BYTES[itemType] ?? 1;
    if (count <= INLINE_ARRAY_ITEMS) {
      const items: string[] = [];
      for (let i = 0; i < count; i++) items.push(String(await readScalar(cursor, itemType, what)));
      return `${summary} [${items.join(', ')}]`;
    }
    cursor.skip(count * size, what);
    return summary;
  }
  const items: string[] = [];
  for (let i = 0; i < count; i++) {
    const item = await readValue(cursor, itemType, what, depth + 1);
    if (i < INLINE_ARRAY_ITEMS && itemType === 8) items.push(JSON.stringify(String(item).slice(0, 64)));
  }
  return itemType === 8 ? `${summary} [${items.join(', ')}${count > INLINE_ARRAY_ITEMS ? ', …' : ''}]` : summary;
}

// ---------------------------------------------------------------------------------------------------------------

async function openGguf(source: ByteSource, context: OpenContext): Promise<Checkpoint> {
  const name = source.name;
  if (source.size < 24) {
    throw new CheckpointFormatError(
      `${name} is truncated: a GGUF header needs 24 bytes but the file is ${formatBytes(source.size)}.`,
    );
  }
  const cursor = new Cursor(source);
  const magic = await cursor.bytes(4, 'the magic');
  if (magic[0] !== 0x47 || magic[1] !== 0x47 || magic[2] !== 0x55 || magic[3] !== 0x46) {
    throw new CheckpointFormatError(`${name} is not a GGUF file: it does not start with the magic "GGUF".`);
  }
  const version = await cursor.u32('the version');
  if (version === 1)
    throw new CheckpointFormatError(
      `${name} is GGUF version 1, an early draft that is not supported (versions 2 and 3 are).`,
    );
  if (version !== 2 && version !== 3) {
    if ((version & 0xffff) === 0 && version !== 0) {
      throw new CheckpointFormatError(`${name} is a big-endian GGUF file, which is not supported.`);
    }
    throw new CheckpointFormatError(`${name} has GGUF version ${version}; versions 2 and 3 are supported.`);
  }
  const tensorCount = await cursor.u64('the tensor count');
  const kvCount = await cursor.u64('the metadata count');
  if (
    !Number.isSafeInteger(tensorCount) ||
    tensorCount > LIMITS.maxTensors ||
    tensorCount * MIN_TENSOR_INFO_BYTES > cursor.remaining
  ) {
    throw new CheckpointFormatError(
      `${name} is truncated or corrupt: it claims ${Number.isFinite(tensorCount) ? tensorCount : 'over 2^53'} tensors, more than its ${formatBytes(source.size)} could describe (or the ${LIMITS.maxTensors} allowed).`,
    );
  }
  if (
    !Number.isSafeInteger(kvCount) ||
    kvCount > LIMITS.maxMetadataEntries ||
    kvCount * MIN_KV_BYTES > cursor.remaining - tensorCount * MIN_TENSOR_INFO_BYTES
  ) {
    throw new CheckpointFormatError(
      `${name} is truncated or corrupt: it claims ${Number.isFinite(kvCount) ? kvCount : 'over 2^53'} metadata entries, more than its ${formatBytes(source.size)} could hold (or the ${LIMITS.maxMetadataEntries} allowed).`,
    );
  }

  const metadata: Record<string, MetadataValue> = {};
  let alignment = 32;
  for (let i = 0; i < kvCount; i++) {
    if (i % 1024 === 0) throwIfAborted(context.signal);
    const key = await cursor.string(`metadata key ${i}`, MAX_KEY_BYTES);
    if (key.length > MAX_KEY_BYTES)
      throw new CheckpointFormatError(`${name} has a ${formatBytes(key.length)} metadata key, which is not plausible.`);
    const type = await cursor.u32(`the type of metadata ${JSON.stringify(key.text)}`);
    const value = await readValue(cursor, type, `metadata ${JSON.stringify(key.text)}`, 0);
    if (key.text === 'general.alignment') {
      if (type !== 4 || typeof value !== 'number' || value === 0 || (value & (value - 1)) !== 0) {
        throw new CheckpointFormatError(
          `${name} has an invalid general.alignment ${String(value)} (it must be a power-of-two u32).`,
        );
      }
      alignment = value;
    }
    metadata[key.text] = value;
  }

  interface Info {
    name: string;
    shape: number[];
    params: number;
    type: GgmlType;
    offset: number;
    bytes: number;
  }
  const infos: Info[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    if (i % 1024 === 0) throwIfAborted(context.signal);
    const tensorName = (await cursor.string(`the name of tensor ${i}`, MAX_KEY_BYTES)).text;
    const where = `tensor ${JSON.stringify(tensorName)} in ${name}`;
    if (names.has(tensorName))
      throw new CheckpointFormatError(`${name} lists tensor ${JSON.stringify(tensorName)} twice.`);
    names.add(tensorName);
    const nDims = await cursor.u32(`the rank of ${where}`);
    if (nDims > LIMITS.maxRank)
      throw new CheckpointFormatError(`${where} has ${nDims} dimensions, more than the ${LIMITS.maxRank} allowed.`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(await cursor.u64(`the shape of ${where}`));
    const typeId = await cursor.u32(`the type of ${where}`);
    const offset = await cursor.u64(`the offset of ${where}`);
    const type = GGML_TYPES.get(typeId);
    if (type === undefined) throw new CheckpointFormatError(`${where} has unknown ggml type ${typeId}.`);
    const shape = dims.slice().reverse();
    const params = checkShape(where, shape);
    const inner = dims[0] ?? 1;
    if (inner % type.blockElements !== 0) {
      throw new CheckpointFormatError(
        `${where} is ${type.name} with rows of ${inner} values, not a multiple of its ${type.blockElements}-value blocks.`,
      );
    }
    if (!Number.isSafeInteger(offset) || offset % alignment !== 0) {
      throw new CheckpointFormatError(
        `${where} has data offset ${String(offset)}, not a multiple of the ${alignment}-byte alignment.`,
      );
    }
    infos.push({
      name: tensorName,
      shape,
      params,
      type,
      offset,
      bytes: (params / type.blockElements) * type.blockBytes,
    });
  }
  const dataStart = Math.ceil(cursor.pos / alignment) * alignment;
  const dataSize = source.size - dataStart;
  const sorted = infos.slice().sort((a, b) => a.offset - b.offset);
  let previous: Info | undefined;
  for (const info of sorted) {
    if (info.offset + info.bytes > dataSize) {
      throw new CheckpointFormatError(
        `tensor ${JSON.stringify(info.name)} in ${name} needs data up to byte ${dataStart + info.offset + info.bytes} but the file is ${formatBytes(source.size)}: it is truncated or its header is corrupt.`,
      );
    }
    if (previous !== undefined && info.bytes > 0 && info.offset < previous.offset + previous.bytes) {
      throw new CheckpointFormatError(
        `${name} is corrupt or hostile: the data of tensors ${JSON.stringify(previous.name)} and ${JSON.stringify(info.name)} overlap.`,
      );
    }
    if (info.bytes > 0) previous = info;
  }

  const tensors = infos.map((info): TensorEntry => {
    const offset = dataStart + info.offset;
    if (info.type.dtype !== undefined)
      return rawTensor({ name: info.name, dtype: info.type.dtype, shape: info.shape, source, offset });
    const decoder = BLOCK_DECODERS[info.type.name];
    if (decoder !== undefined)
      return blockTensor(info.name, info.type, decoder, info.shape, info.params, source, offset);
    return undecodedTensor(
      info.name,
      info.type.name,
      info.shape,
      info.bytes,
      `GGUF type ${info.type.name} is not decoded`,
    );
  });
  metadata['gguf.version'] = version;
  metadata['gguf.alignment'] = alignment;
  return {
    format: 'gguf',
    description: `GGUF v${version}`,
    tensors,
    metadata,
    close: closeOnce(async () => {
      await source.close();
    }),
  };
}

/** Reads GGUF (llama.cpp) files. */
export const ggufFormat: FormatReader = {
  id: 'gguf',
  label: 'GGUF (llama.cpp)',
  extensions: ['.gguf'],
  sniff(head: Uint8Array, fileName: string): number {
    if (head.length >= 4 && head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46) return 1;
    return fileName.toLowerCase().endsWith('.gguf') ? 0.2 : 0;
  },
  open: openGguf,
};
