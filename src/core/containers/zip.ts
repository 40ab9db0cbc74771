/**
 * Read-only zip archives over a `ByteSource`, shared by NumPy `.npz`, PyTorch zip checkpoints (torch.save) and
 * `.keras` files. Parses the end-of-central-directory record (zip64 included: torch.save writes zip64 for large
 * files), the central directory and each member's local header, and exposes members without extracting anything to
 * disk:
 *
 * - stored members (method 0) open as a zero-copy `SliceByteSource` with ranged reads;
 * - deflated members (method 8) are inflated with node:zlib, either streamed in bounded chunks (`readEntryStream`)
 *   or, when small enough, into memory (`openEntry` / `readEntry`).
 *
 * Hostile archives are refused with a `CheckpointFormatError`: absurd entry counts, members outside the file or
 * overlapping each other, encrypted or multi-disk archives, and zip bombs (a declared compression ratio over
 * `LIMITS.maxCompressionRatio`, or inflated output that exceeds the declared size or `LIMITS.maxInflatedBytes`;
 * the output is checked while streaming, since headers can lie, so a bomb never inflates far).
 */
import { Readable, pipeline } from 'node:stream';
import * as zlib from 'node:zlib';
import { MemoryByteSource, SliceByteSource, type ByteSource } from '../io/byteSource';
import { CheckpointFormatError, formatBytes, throwIfAborted } from '../io/errors';
import { LIMITS } from '../io/limits';

/** Compression method numbers from the zip specification (APPNOTE 4.4.5). */
export const ZIP_STORED = 0;
/** Deflate, the only compression method this reader inflates. */
export const ZIP_DEFLATED = 8;

/** One member of a zip archive, as its central directory describes it. All sizes and offsets are in bytes. */
export interface ZipEntry {
  /** Member name as stored (`/`-separated, e.g. `archive/data/0`). Never contains NUL. */
  readonly name: string;
  /** Compression method: `ZIP_STORED` (0), `ZIP_DEFLATED` (8), or another number (refused when opened). */
  readonly method: number;
  /** Size of the member's data in the archive. */
  readonly compressedSize: number;
  /** Size of the member once inflated (equal to `compressedSize` for stored members). */
  readonly uncompressedSize: number;
  /** CRC-32 of the uncompressed data, as declared. Checked when a deflated member is inflated. */
  readonly crc32: number;
  /** Offset of the member's local file header in the archive. */
  readonly localHeaderOffset: number;
  /**
   * Offset of the member's first data byte (after its local header). Validated at open time: the data lies inside
   * the archive, before the central directory, and does not overlap another member.
   */
  readonly dataOffset: number;
  /** True if the member is encrypted (general-purpose flag bit 0); such members are refused when opened. */
  readonly encrypted: boolean;
  /** True for directory entries (name ends with `/`). */
  readonly isDirectory: boolean;
}

/** Options for streaming a member's uncompressed bytes. */
export interface ZipStreamOptions {
  /** Aborts between chunks with `CancelledError`. */
  readonly signal?: AbortSignal;
  /** Byte count read from the archive per step (default 256 KiB). Output chunks are at most 64 KiB for deflated members. */
  readonly readBytes?: number;
}

/** An opened zip archive. Does not own its source: closing the archive's user closes the source. */
export interface ZipArchive {
  /** The archive bytes. */
  readonly source: ByteSource;
  /** Every member in central-directory order. Names are unique. */
  readonly entries: readonly ZipEntry[];
  /** True if the archive used zip64 records. */
  readonly zip64: boolean;
  /** The member named exactly `name`, or undefined. */
  get(name: string): ZipEntry | undefined;
  /**
   * The member's uncompressed bytes as a `ByteSource`. Stored members: a zero-copy slice of the archive. Deflated
   * members: inflated into memory, refused with a clear error when `uncompressedSize` exceeds `maxInMemoryBytes`
   * (default `LIMITS.maxInMemoryBytes`); use `readEntryStream` for those.
   */
  openEntry(entry: ZipEntry, options?: { maxInMemoryBytes?: number; signal?: AbortSignal }): Promise<ByteSource>;
  /** The whole member in memory; refused if `uncompressedSize > limit` (default `LIMITS.maxChunkBytes`). */
  readEntry(entry: ZipEntry, limit?: number, signal?: AbortSignal): Promise<Uint8Array>;
  /**
   * Streams the member's uncompressed bytes from the start, in bounded chunks, verifying for deflated members that
   * the output matches the declared size and CRC-32 and stays under the zip-bomb limits. Total length yielded is
   * `uncompressedSize`. Breaking out of the loop early releases the inflater.
   */
  readEntryStream(entry: ZipEntry, options?: ZipStreamOptions): AsyncIterable<Uint8Array>;
  /** The first `length` uncompressed bytes (fewer if the member is shorter), inflating no more than needed. */
  readEntryPrefix(entry: ZipEntry, length: number, signal?: AbortSignal): Promise<Uint8Array>;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const EOCD_SIZE = 22;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const MAX_COMMENT = 65535;
/** Deflated members smaller than this may exceed the ratio limit (an all-zero bias compresses > 200×); bombs cannot. */
const RATIO_CHECK_FLOOR = 1024 * 1024;
/** Output chunk size of the streaming inflater. */
const INFLATE_CHUNK = 64 * 1024;

/** True if `head` starts with a zip local file header or an empty archive's end record. */
export function looksLikeZip(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const sig = (head[0] ?? 0) | ((head[1] ?? 0) << 8) | ((head[2] ?? 0) << 16) | ((head[3] ?? 0) << 24);
  return sig >>> 0 === SIG_LOCAL || sig >>> 0 === SIG_EOCD;
}

/**
 * Returns `name` if it is safe to use as a relative path (no absolute path, drive letter, backslash, NUL or `..`
 * segment); otherwise throws `CheckpointFormatError`. Call it before using a member name to name anything on disk
 * or to resolve another member.
 */
export function checkMemberPath(archiveName: string, name: string): string {
  const segments = name.split('/');
  if (
    name.length === 0 ||
    name.startsWith('/') ||
    name.includes('\\') ||
    name.includes('\0') ||
    /^[A-Za-z]:/.test(name) ||
    segments.includes('..')
  ) {
    throw new CheckpointFormatError(
      `${archiveName} contains a member named ${JSON.stringify(name)}, which is not a safe relative path; refusing it.`,
    );
  }
  return name;
}

function u16(b: Uint8Array, o: number): number {
  return (b[o] ?? 0) | ((b[o + 1] ?? 0) << 8);
}
function u32(b: Uint8Array, o: number): number {
  return ((b[o] ?? 0) | ((b[o + 1] ?? 0) << 8) | ((b[o + 2] ?? 0) << 16) | ((b[o + 3] ?? 0) << 24)) >>> 0;
}
/** Reads a little-endian u64; returns Infinity when it exceeds 2^53 (treated as out of range by every caller). */
function u64(b: Uint8Array, o: number): number {
  const lo = u32(b, o);
  const hi = u32(b, o + 4);
  if (hi >= 0x200000) return Infinity;
  return hi * 0x100000000 + lo;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * Opens `source` as a zip archive: finds the end record, reads the central directory and every local header, and
 * validates that members lie inside the file without overlapping. Does not take ownership of `source`.
 * Throws `CheckpointFormatError` for anything malformed or hostile.
 */
export async function openZip(source: ByteSource, options?: { signal?: AbortSignal }): Promise<ZipArchive> {
  const name = source.name;
  if (source.size < EOCD_SIZE) {
    throw new CheckpointFormatError(
      `${name} is ${formatBytes(source.size)}, too small to be a zip archive (at least 22 bytes).`,
    );
  }
  const tailLength = Math.min(source.size, EOCD_SIZE + MAX_COMMENT);
  const tailStart = source.size - tailLength;
  const tail = await source.read(tailStart, tailLength);
  let eocd = -1;
  for (let i = tailLength - EOCD_SIZE; i >= 0; i--) {
    if (tail[i] === 0x50 && u32(tail, i) === SIG_EOCD && i + EOCD_SIZE + u16(tail, i + 20) <= tailLength) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    throw new CheckpointFormatError(
      `${name} is not a zip archive or is truncated: its end-of-central-directory record is missing.`,
    );
  }
  const eocdOffset = tailStart + eocd;
  const disk = u16(tail, eocd + 4);
  const cdDisk = u16(tail, eocd + 6);
  let count = u16(tail, eocd + 10);
  let cdSize = u32(tail, eocd + 12);
  let cdOffset = u32(tail, eocd + 16);
  let zip64 = false;
  let cdEnd = eocdOffset;

  const locatorOffset = eocdOffset - 20;
  if (locatorOffset >= 0) {
    const locator =
      locatorOffset >= tailStart
        ? tail.subarray(locatorOffset - tailStart, locatorOffset - tailStart + 20)
        : await source.read(locatorOffset, 20);
    if (u32(locator, 0) === SIG_ZIP64_LOCATOR) {
      zip64 = true;
      const recordOffset = u64(locator, 8);
      if (!Number.isSafeInteger(recordOffset) || recordOffset + 56 > locatorOffset) {
        throw new CheckpointFormatError(
          `${name} is corrupt: its zip64 end record offset ${recordOffset} is outside the file.`,
        );
      }
      const record = await source.read(recordOffset, 56);
      if (u32(record, 0) !== SIG_ZIP64_EOCD) {
        throw new CheckpointFormatError(
          `${name} is corrupt: no zip64 end-of-central-directory record at offset ${recordOffset}.`,
        );
      }
      if (u32(record, 16) !== 0 || u32(record, 20) !== 0) {
        throw new CheckpointFormatError(`${name} is a multi-part (split) zip archive, which is not supported.`);
      }
      count = u64(record, 32);
      cdSize = u64(record, 40);
      cdOffset = u64(record, 48);
      cdEnd = recordOffset;
    }
  }
  if (!zip64 && (disk !== 0 || cdDisk !== 0)) {
    throw new CheckpointFormatError(`${name} is a multi-part (split) zip archive, which is not supported.`);
  }
  if (!Number.isSafeInteger(count) || count > LIMITS.maxZipEntries) {
    throw new CheckpointFormatError(
      `${name} claims ${count} zip entries, more than the ${LIMITS.maxZipEntries} allowed.`,
    );
  }
  if (!Number.isSafeInteger(cdOffset) || !Number.isSafeInteger(cdSize) || cdOffset + cdSize > cdEnd) {
    throw new CheckpointFormatError(
      `${name} is truncated or corrupt: its central directory (${formatBytes(cdSize)} at offset ${cdOffset}) lies outside the ${formatBytes(source.size)} file.`,
    );
  }
  if (count * CENTRAL_SIZE > cdSize) {
    throw new CheckpointFormatError(
      `${name} is corrupt: ${count} zip entries cannot fit in a ${formatBytes(cdSize)} central directory.`,
    );
  }
  if (cdSize > LIMITS.maxHeaderBytes) {
    throw new CheckpointFormatError(
      `${name} has a ${formatBytes(cdSize)} zip central directory, over the ${formatBytes(LIMITS.maxHeaderBytes)} limit.`,
    );
  }
  throwIfAborted(options?.signal);
  const cd = await source.read(cdOffset, cdSize);

  const entries: ZipEntry[] = [];
  const partial: Omit<ZipEntry, 'dataOffset'>[] = [];
  const byName = new Map<string, number>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + CENTRAL_SIZE > cd.length || u32(cd, p) !== SIG_CENTRAL) {
      throw new CheckpointFormatError(
        `${name} is corrupt: zip central directory entry ${i} at offset ${cdOffset + p} is malformed.`,
      );
    }
    const flags = u16(cd, p + 8);
    const method = u16(cd, p + 10);
    const crc = u32(cd, p + 16);
    let compressedSize = u32(cd, p + 20);
    let uncompressedSize = u32(cd, p + 24);
    const nameLength = u16(cd, p + 28);
    const extraLength = u16(cd, p + 30);
    const commentLength = u16(cd, p + 32);
    const diskStart = u16(cd, p + 34);
    let localHeaderOffset = u32(cd, p + 42);
    const end = p + CENTRAL_SIZE + nameLength + extraLength + commentLength;
    if (end > cd.length) {
      throw new CheckpointFormatError(
        `${name} is corrupt: zip central directory entry ${i} runs past the directory's end.`,
      );
    }
    const rawName = cd.subarray(p + CENTRAL_SIZE, p + CENTRAL_SIZE + nameLength);
    const memberName = utf8.decode(rawName);
    if (memberName.includes('\0')) {
      throw new CheckpointFormatError(`${name} contains a zip member whose name contains a NUL byte; refusing it.`);
    }
    // Zip64 extended information (header id 0x0001) holds the fields whose 32-bit values are 0xFFFFFFFF, in order.
    let extra = p + CENTRAL_SIZE + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = u16(cd, extra);
      const size = u16(cd, extra + 2);
      const body = extra + 4;
      if (body + size > extraEnd) break;
      if (id === 0x0001) {
        let q = body;
        const take = (): number => {
          if (q + 8 > body + size) {
            throw new CheckpointFormatError(
              `${name} is corrupt: the zip64 field of member ${JSON.stringify(memberName)} is too short.`,
            );
          }
          const v = u64(cd, q);
          q += 8;
          return v;
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = take();
        if (compressedSize === 0xffffffff) compressedSize = take();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
        zip64 = true;
      }
      extra = body + size;
    }
    if (diskStart !== 0 && diskStart !== 0xffff) {
      throw new CheckpointFormatError(`${name} is a multi-part (split) zip archive, which is not supported.`);
    }
    if (
      !Number.isSafeInteger(compressedSize) ||
      !Number.isSafeInteger(uncompressedSize) ||
      !Number.isSafeInteger(localHeaderOffset)
    ) {
      throw new CheckpointFormatError(
        `${name} is corrupt: zip member ${JSON.stringify(memberName)} has sizes or offsets beyond 2^53 bytes.`,
      );
    }
    if (byName.has(memberName)) {
      throw new CheckpointFormatError(
        `${name} contains two zip members named ${JSON.stringify(memberName)}; refusing the ambiguous archive.`,
      );
    }
    byName.set(memberName, i);
    partial.push({
      name: memberName,
      method,
      compressedSize,
      uncompressedSize: method === ZIP_STORED ? compressedSize : uncompressedSize,
      crc32: crc,
      localHeaderOffset,
      encrypted: (flags & 1) !== 0,
      isDirectory: memberName.endsWith('/'),
    });
    if (method === ZIP_STORED && compressedSize !== uncompressedSize) {
      throw new CheckpointFormatError(
        `${name} is corrupt: stored zip member ${JSON.stringify(memberName)} declares ${compressedSize} bytes stored but ${uncompressedSize} uncompressed.`,
      );
    }
    p = end;
  }

  // Local headers: each must lie before the central directory, and member data must not overlap.
  const order = partial
    .map((_, i) => i)
    .sort((a, b) => (partial[a]?.localHeaderOffset ?? 0) - (partial[b]?.localHeaderOffset ?? 0));
  const dataOffsets = new Array<number>(partial.length).fill(0);
  let previousEnd = 0;
  let previousName = '';
  for (const index of order) {
    throwIfAborted(options?.signal);
    const entry = partial[index];
    if (entry === undefined) continue;
    const headerOffset = entry.localHeaderOffset;
    if (headerOffset + LOCAL_SIZE > cdOffset) {
      throw new CheckpointFormatError(
        `${name} is corrupt: zip member ${JSON.stringify(entry.name)} has its local header at offset ${headerOffset}, outside the member area (which ends at ${cdOffset}).`,
      );
    }
    if (headerOffset < previousEnd) {
      throw new CheckpointFormatError(
        `${name} is corrupt or hostile: zip members ${JSON.stringify(previousName)} and ${JSON.stringify(entry.name)} overlap (offset ${headerOffset} < ${previousEnd}).`,
      );
    }
    const local = await source.read(headerOffset, LOCAL_SIZE);
    if (u32(local, 0) !== SIG_LOCAL) {
      throw new CheckpointFormatError(
        `${name} is corrupt: no local header for zip member ${JSON.stringify(entry.name)} at offset ${headerOffset}.`,
      );
    }
    const dataOffset = headerOffset + LOCAL_SIZE + u16(local, 26) + u16(local, 28);
    const dataEnd = dataOffset + entry.compressedSize;
    if (dataEnd > cdOffset) {
      throw new CheckpointFormatError(
        `${name} is truncated or corrupt: zip member ${JSON.stringify(entry.name)} needs bytes up to ${dataEnd} but the member area ends at ${cdOffset}.`,
      );
    }
    dataOffsets[index] = dataOffset;
    previousEnd = dataEnd;
    previousName = entry.name;
  }
  for (let i = 0; i < partial.length; i++) {
    const entry = partial[i];
    if (entry !== undefined) entries.push({ ...entry, dataOffset: dataOffsets[i] ?? 0 });
  }
  return new Archive(source, entries, byName, zip64);
}

class Archive implements ZipArchive {
  constructor(
    readonly source: ByteSource,
    private readonly raw: readonly ZipEntry[],
    private readonly byName: ReadonlyMap<string, number>,
    readonly zip64: boolean,
  ) {}

  get entries(): readonly ZipEntry[] {
    return this.raw;
  }

  get(name: string): ZipEntry | undefined {
    const index = this.byName.get(name);
    return index === undefined ? undefined : this.raw[index];
  }

  private label(entry: ZipEntry): string {
    return `${this.source.name}:${entry.name}`;
  }

  /**
   * The archive's own record for `entry` (a caller-made object cannot point elsewhere), after checking that it can
   * be read at all: not encrypted, a supported method, a sane size and compression ratio.
   */
  private readable(given: ZipEntry): ZipEntry {
    const index = this.byName.get(given.name);
    const entry = index === undefined ? undefined : this.raw[index];
    if (entry === undefined)
      throw new CheckpointFormatError(`${this.source.name} has no zip member named ${JSON.stringify(given.name)}.`);
    const label = this.label(entry);
    if (entry.encrypted)
      throw new CheckpointFormatError(`${label} is encrypted; encrypted zip members are not supported.`);
    if (entry.method === ZIP_STORED) return entry;
    if (entry.method !== ZIP_DEFLATED) {
      throw new CheckpointFormatError(
        `${label} uses zip compression method ${entry.method}; only stored (0) and deflate (8) are supported.`,
      );
    }
    if (entry.uncompressedSize > LIMITS.maxInflatedBytes) {
      throw new CheckpointFormatError(
        `${label} would inflate to ${formatBytes(entry.uncompressedSize)}, over the ${formatBytes(LIMITS.maxInflatedBytes)} limit for a compressed member.`,
      );
    }
    if (
      entry.uncompressedSize > RATIO_CHECK_FLOOR &&
      entry.uncompressedSize > entry.compressedSize * LIMITS.maxCompressionRatio
    ) {
      throw new CheckpointFormatError(
        `${label} looks like a zip bomb: ${formatBytes(entry.compressedSize)} would inflate to ${formatBytes(entry.uncompressedSize)} (ratio ${Math.round(entry.uncompressedSize / Math.max(1, entry.compressedSize))}×, limit ${LIMITS.maxCompressionRatio}×).`,
      );
    }
    return entry;
  }

  async openEntry(given: ZipEntry, options?: { maxInMemoryBytes?: number; signal?: AbortSignal }): Promise<ByteSource> {
    const entry = this.readable(given);
    if (entry.method === ZIP_STORED) {
      return new SliceByteSource(this.source, entry.dataOffset, entry.compressedSize, this.label(entry));
    }
    const bytes = await this.readEntry(entry, options?.maxInMemoryBytes ?? LIMITS.maxInMemoryBytes, options?.signal);
    return new MemoryByteSource(bytes, this.label(entry));
  }

  async readEntry(given: ZipEntry, limit: number = LIMITS.maxChunkBytes, signal?: AbortSignal): Promise<Uint8Array> {
    const entry = this.readable(given);
    if (entry.uncompressedSize > limit) {
      throw new CheckpointFormatError(
        `${this.label(entry)} is ${formatBytes(entry.uncompressedSize)} uncompressed, over the ${formatBytes(limit)} that may be loaded into memory at once.`,
      );
    }
    if (entry.method === ZIP_STORED) return this.source.read(entry.dataOffset, entry.compressedSize);
    const out = new Uint8Array(entry.uncompressedSize);
    let at = 0;
    for await (const chunk of this.readEntryStream(entry, signal ? { signal } : {})) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }

  async readEntryPrefix(given: ZipEntry, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    const entry = this.readable(given);
    const want = Math.max(0, Math.min(length, entry.uncompressedSize));
    if (entry.method === ZIP_STORED) return this.source.read(entry.dataOffset, want);
    const out = new Uint8Array(want);
    let at = 0;
    if (want === 0) return out;
    for await (const chunk of this.readEntryStream(entry, { readBytes: 16 * 1024, ...(signal ? { signal } : {}) })) {
      const take = Math.min(chunk.length, want - at);
      out.set(chunk.subarray(0, take), at);
      at += take;
      if (at >= want) break;
    }
    return out;
  }

  async *readEntryStream(given: ZipEntry, options?: ZipStreamOptions): AsyncIterable<Uint8Array> {
    const entry = this.readable(given);
    const readBytes = Math.max(4096, Math.min(options?.readBytes ?? 256 * 1024, LIMITS.maxChunkBytes));
    const signal = options?.signal;
    if (entry.method === ZIP_STORED) {
      for (let at = 0; at < entry.compressedSize; at += readBytes) {
        throwIfAborted(signal);
        yield await this.source.read(entry.dataOffset + at, Math.min(readBytes, entry.compressedSize - at));
      }
      return;
    }
    yield* inflateMember(this.source, entry, this.label(entry), readBytes, signal);
  }
}

/** Compressed bytes of a member, read in `readBytes` steps. */
async function* compressedChunks(
  source: ByteSource,
  start: number,
  length: number,
  readBytes: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < length; at += readBytes) {
    throwIfAborted(signal);
    yield await source.read(start + at, Math.min(readBytes, length - at));
  }
}

/** Running CRC-32 (zip's polynomial): `crc32Update(more, crc32Update(data, 0))` is the CRC of `data` then `more`. */
export const crc32Update: (data: Uint8Array, value: number) => number =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function'
    ? // Node's zlib.crc32 returns 0, not `value`, for an empty view of a zero-length ArrayBuffer (Node 20.20).
      (data, value) => (data.length === 0 ? value >>> 0 : zlib.crc32(data, value))
    : crc32Fallback();

function crc32Fallback(): (data: Uint8Array, value: number) => number {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return (data, value) => {
    let c = ~value >>> 0;
    for (const byte of data) c = (table[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
    return ~c >>> 0;
  };
}

/**
 * Inflates a deflated member as a stream. Memory stays bounded by the stream buffers (a few hundred KiB) whatever
 * the member claims; output beyond the declared size aborts at once, so a lying header cannot make it inflate far.
 */
async function* inflateMember(
  source: ByteSource,
  entry: ZipEntry,
  label: string,
  readBytes: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  const inflater = zlib.createInflateRaw({ chunkSize: INFLATE_CHUNK });
  const input = Readable.from(compressedChunks(source, entry.dataOffset, entry.compressedSize, readBytes, signal), {
    objectMode: false,
    highWaterMark: 1,
  });
  // Errors of either side surface through the inflater's iterator below; the callback only keeps them handled.
  pipeline(input, inflater, () => undefined);
  let produced = 0;
  let crc = 0;
  const limit = Math.min(entry.uncompressedSize, LIMITS.maxInflatedBytes);
  try {
    for await (const piece of inflater as AsyncIterable<Buffer>) {
      throwIfAborted(signal);
      produced += piece.length;
      if (produced > limit) {
        throw new CheckpointFormatError(
          `${label} inflates to more than its declared ${formatBytes(entry.uncompressedSize)}: the archive is corrupt or a zip bomb.`,
        );
      }
      crc = crc32Update(piece, crc);
      yield new Uint8Array(piece.buffer, piece.byteOffset, piece.length);
    }
  } catch (error) {
    throw wrapInflateError(error, label);
  } finally {
    input.destroy();
    inflater.destroy();
  }
  if (produced !== entry.uncompressedSize) {
    throw new CheckpointFormatError(
      `${label} inflates to ${formatBytes(produced)} but declares ${formatBytes(entry.uncompressedSize)}: the archive is truncated or corrupt.`,
    );
  }
  if (crc !== entry.crc32) {
    throw new CheckpointFormatError(`${label} fails its CRC-32 check: the archive is corrupt.`);
  }
}

function wrapInflateError(error: unknown, label: string): unknown {
  if (error instanceof CheckpointFormatError) return error;
  if (error instanceof Error && error.name === 'CancelledError') return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new CheckpointFormatError(`${label} cannot be inflated (${detail}): the archive is corrupt.`, {
    cause: error,
  });
}
