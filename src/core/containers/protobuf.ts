/**
 * Protocol Buffers wire-format decoding, shared by the readers of protobuf-based formats (ONNX). There is no schema
 * here: callers walk fields by number and decide what each means.
 *
 * Two readers share one field decoder:
 * - `ProtoReader` walks a message already in memory (a small submessage, a file head for sniffing).
 * - `ProtoCursor` walks a message inside a `ByteSource` by *scanning field headers*: it reads the source through a
 *   small window and returns each field's position and length without reading its payload, so a 2 GB ONNX model is
 *   walked with bounded memory and tensor bytes (`raw_data`) are never materialised; a caller that wants a payload
 *   reads it explicitly, with a size limit.
 *
 * Every length is checked against the enclosing message before it is used, unknown fields (including deprecated
 * groups) are skipped, and nesting is limited by `LIMITS.maxNesting`.
 */
import type { ByteSource } from '../io/byteSource';
import { CheckpointFormatError, formatBytes } from '../io/errors';
import { LIMITS } from '../io/limits';

/** Wire type of a varint field (int32, int64, uint64, bool, enum). */
export const WIRE_VARINT = 0;
/** Wire type of an 8-byte little-endian field (fixed64, double). */
export const WIRE_I64 = 1;
/** Wire type of a length-delimited field (bytes, string, submessage, packed repeated numbers). */
export const WIRE_LEN = 2;
/** Wire type of a 4-byte little-endian field (fixed32, float). */
export const WIRE_I32 = 5;
const WIRE_SGROUP = 3;
const WIRE_EGROUP = 4;

/** The wire types a caller can see; groups (3, 4) are skipped by the readers. */
export type WireType = typeof WIRE_VARINT | typeof WIRE_I64 | typeof WIRE_LEN | typeof WIRE_I32;

/** Largest field number protobuf allows (2^29 − 1). */
const MAX_FIELD_NUMBER = 0x1fffffff;

/** Bytes a field header can occupy: a tag (≤ 5 bytes) and a varint value or length (≤ 10 bytes), rounded up. */
const MAX_HEADER_BYTES = 20;

/** Bytes each `ProtoCursor` reads at a time while scanning headers: small, so deep nesting stays cheap. */
const CURSOR_WINDOW_BYTES = 64 * 1024;

/** One decoded field. Positions are absolute byte offsets in the source (or in the bytes given to `ProtoReader`). */
export interface ProtoField {
  /** Field number (1 … 2^29 − 1). */
  readonly field: number;
  readonly wireType: WireType;
  /** Absolute offset of the payload: the value bytes (VARINT/I32/I64) or the content after the length (LEN). */
  readonly offset: number;
  /** Payload length in bytes (the declared length for LEN; 4, 8 or the varint's length otherwise). */
  readonly length: number;
  /** Value of a VARINT field as an unsigned 64-bit integer; `0n` for other wire types. */
  readonly varint: bigint;
  /** The value bytes of an I32/I64 field (little-endian); empty for other wire types. */
  readonly fixed: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/** Result of decoding one varint: exact `big`, plus `value` (exact when below 2^53) and the bytes used. */
interface DecodedVarint {
  readonly value: number;
  readonly big: bigint;
  readonly size: number;
}

function truncated(where: string, at: number, what: string): CheckpointFormatError {
  return new CheckpointFormatError(
    `${where} is truncated or corrupt: ${what} at byte ${at} runs past the end of its message.`,
  );
}

/** Decodes a varint at `bytes[pos]`, not reading at or past `limit`. `at` is the absolute offset, for messages. */
function decodeVarint(bytes: Uint8Array, pos: number, limit: number, where: string, at: number): DecodedVarint {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= limit) throw truncated(where, at, 'a varint');
    const b = bytes[pos + i] ?? 0;
    value += (b & 0x7f) * scale;
    scale *= 128;
    if ((b & 0x80) === 0) {
      if (i < 7) return { value, big: BigInt(value), size: i + 1 };
      let big = 0n;
      for (let j = i; j >= 0; j--) big = (big << 7n) | BigInt((bytes[pos + j] ?? 0) & 0x7f);
      big = BigInt.asUintN(64, big);
      return { value: Number(big), big, size: i + 1 };
    }
  }
  throw new CheckpointFormatError(`${where} is corrupt: the varint at byte ${at} is longer than 10 bytes.`);
}

/** A field header before group handling: wire types 3 and 4 included. */
interface RawField {
  readonly field: number;
  readonly wire: number;
  /** Index (in `bytes`) of the payload. */
  readonly payload: number;
  /** Payload length. */
  readonly length: number;
  readonly varint: bigint;
}

/**
 * Decodes the field header at `bytes[pos]` (absolute offset `base + pos`), checking that the payload ends by `end`
 * (an index into `bytes`, the end of the enclosing message). The header itself must lie before `limit` (≤ `end`).
 */
function decodeRawField(
  bytes: Uint8Array,
  pos: number,
  limit: number,
  end: number,
  base: number,
  where: string,
): RawField {
  const at = base + pos;
  const tag = decodeVarint(bytes, pos, limit, where, at);
  if (tag.size > 5 || tag.value > 0xffffffff)
    throw new CheckpointFormatError(`${where} is corrupt: invalid protobuf tag at byte ${at}.`);
  const field = Math.floor(tag.value / 8);
  const wire = tag.value % 8;
  if (field < 1 || field > MAX_FIELD_NUMBER)
    throw new CheckpointFormatError(`${where} is corrupt: invalid protobuf field number ${field} at byte ${at}.`);
  let p = pos + tag.size;
  switch (wire) {
    case WIRE_VARINT: {
      const v = decodeVarint(bytes, p, limit, where, base + p);
      return { field, wire, payload: p, length: v.size, varint: v.big };
    }
    case WIRE_I64:
    case WIRE_I32: {
      const length = wire === WIRE_I64 ? 8 : 4;
      if (p + length > end) throw truncated(where, at, `field ${field}`);
      return { field, wire, payload: p, length, varint: 0n };
    }
    case WIRE_LEN: {
      const len = decodeVarint(bytes, p, limit, where, base + p);
      p += len.size;
      if (len.big > BigInt(end - p)) {
        throw new CheckpointFormatError(
          `${where} is truncated or corrupt: field ${field} at byte ${at} declares ${formatBytes(len.value)} but only ${formatBytes(end - p)} remain in its message.`,
        );
      }
      return { field, wire, payload: p, length: len.value, varint: 0n };
    }
    case WIRE_SGROUP:
    case WIRE_EGROUP:
      return { field, wire, payload: p, length: 0, varint: 0n };
    default:
      throw new CheckpointFormatError(
        `${where} is corrupt: field ${field} at byte ${at} has invalid wire type ${wire}.`,
      );
  }
}

/** Walks a protobuf message held in memory. Payloads are returned as zero-copy subarrays. */
export class ProtoReader {
  private pos: number;
  private readonly end: number;

  /**
   * @param bytes the message (or a view of it); the reader walks all of it.
   * @param baseOffset absolute offset of `bytes[0]` in the file, so `ProtoField.offset` is absolute.
   * @param where label for error messages (usually the file name).
   * @param depth nesting depth of this message; `child` refuses depths above `LIMITS.maxNesting`.
   */
  constructor(
    private readonly bytes: Uint8Array,
    private readonly baseOffset = 0,
    readonly where = 'protobuf message',
    readonly depth = 0,
  ) {
    this.pos = 0;
    this.end = bytes.length;
  }

  /** True when every field has been read. */
  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Returns the next field and moves past it, or `undefined` at the end. Groups are skipped. */
  next(): ProtoField | undefined {
    for (;;) {
      if (this.pos >= this.end) return undefined;
      const raw = decodeRawField(this.bytes, this.pos, this.end, this.end, this.baseOffset, this.where);
      if (raw.wire === WIRE_SGROUP) {
        this.pos = this.skipGroup(raw);
        continue;
      }
      if (raw.wire === WIRE_EGROUP) {
        throw new CheckpointFormatError(
          `${this.where} is corrupt: unmatched end of group ${raw.field} at byte ${this.baseOffset + this.pos}.`,
        );
      }
      this.pos = raw.payload + raw.length;
      return {
        field: raw.field,
        wireType: raw.wire as WireType,
        offset: this.baseOffset + raw.payload,
        length: raw.length,
        varint: raw.varint,
        fixed:
          raw.wire === WIRE_I32 || raw.wire === WIRE_I64
            ? this.bytes.subarray(raw.payload, raw.payload + raw.length)
            : EMPTY,
      };
    }
  }

  /** Skips the group opened by `start`, returning the index after its end marker. */
  private skipGroup(start: RawField): number {
    const open: number[] = [start.field];
    let p = start.payload;
    while (open.length > 0) {
      if (open.length + this.depth > LIMITS.maxNesting)
        throw new CheckpointFormatError(`${this.where} nests protobuf groups deeper than ${LIMITS.maxNesting} levels.`);
      if (p >= this.end) throw truncated(this.where, this.baseOffset + p, `group ${start.field}`);
      const raw = decodeRawField(this.bytes, p, this.end, this.end, this.baseOffset, this.where);
      if (raw.wire === WIRE_SGROUP) open.push(raw.field);
      else if (raw.wire === WIRE_EGROUP) {
        if (open.pop() !== raw.field)
          throw new CheckpointFormatError(
            `${this.where} is corrupt: mismatched end of group ${raw.field} at byte ${this.baseOffset + p}.`,
          );
      }
      p = raw.payload + raw.length;
    }
    return p;
  }

  /** The payload of a LEN field returned by this reader, as a zero-copy view. */
  payload(f: ProtoField): Uint8Array {
    const start = f.offset - this.baseOffset;
    return this.bytes.subarray(start, start + f.length);
  }

  /** A reader over the submessage in LEN field `f`, one level deeper. */
  child(f: ProtoField): ProtoReader {
    expectWire(f, WIRE_LEN, this.where);
    if (this.depth + 1 > LIMITS.maxNesting)
      throw new CheckpointFormatError(`${this.where} nests protobuf messages deeper than ${LIMITS.maxNesting} levels.`);
    return new ProtoReader(this.payload(f), f.offset, this.where, this.depth + 1);
  }
}

/**
 * Walks a protobuf message that lies in `[start, end)` of a `ByteSource`, reading only field headers: payloads are
 * skipped by seeking, so memory stays bounded whatever the message size. Children share their parent's window when
 * it already holds their bytes.
 */
export class ProtoCursor {
  private pos: number;
  private window: Uint8Array;
  private windowStart: number;

  private constructor(
    private readonly source: ByteSource,
    /** Absolute offset of the message's first byte. */
    readonly start: number,
    /** Absolute offset just past the message's last byte. */
    readonly end: number,
    readonly depth: number,
    window: Uint8Array,
    windowStart: number,
  ) {
    this.pos = start;
    this.window = window;
    this.windowStart = windowStart;
  }

  /** A cursor over `[start, end)` of `source` (default: the whole source), at nesting depth 0. */
  static over(source: ByteSource, start = 0, end = source.size): ProtoCursor {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > source.size) {
      throw new CheckpointFormatError(`${source.name}: invalid protobuf message range ${start}–${end}.`);
    }
    return new ProtoCursor(source, start, end, 0, EMPTY, start);
  }

  /** Label for error messages: the source's name. */
  get where(): string {
    return this.source.name;
  }

  /** Absolute offset of the next field header. */
  get position(): number {
    return this.pos;
  }

  /** Makes the window hold `[at, at + min(want, end − at))`, reading at most `CURSOR_WINDOW_BYTES`. */
  private async fill(at: number, want: number): Promise<void> {
    const need = Math.min(want, this.end - at);
    if (at >= this.windowStart && at + need <= this.windowStart + this.window.length) return;
    const length = Math.min(Math.max(CURSOR_WINDOW_BYTES, need), this.end - at);
    this.window = await this.source.read(at, length);
    this.windowStart = at;
  }

  /** Decodes the raw header at absolute offset `at`, which must be below `this.end`. */
  private async rawAt(at: number): Promise<RawField & { absPayload: number }> {
    await this.fill(at, MAX_HEADER_BYTES);
    const rel = at - this.windowStart;
    const limit = Math.min(this.window.length, this.end - this.windowStart);
    // The enclosing message may extend past the window: express its end relative to the window for length checks.
    const raw = decodeRawField(this.window, rel, limit, this.end - this.windowStart, this.windowStart, this.where);
    return { ...raw, absPayload: this.windowStart + raw.payload };
  }

  /** Returns the next field and moves past it (without reading a LEN payload), or `undefined` at the end. */
  async next(): Promise<ProtoField | undefined> {
    for (;;) {
      if (this.pos >= this.end) return undefined;
      const raw = await this.rawAt(this.pos);
      if (raw.wire === WIRE_SGROUP) {
        this.pos = await this.skipGroup(raw.field, raw.absPayload);
        continue;
      }
      if (raw.wire === WIRE_EGROUP)
        throw new CheckpointFormatError(
          `${this.where} is corrupt: unmatched end of group ${raw.field} at byte ${this.pos}.`,
        );
      this.pos = raw.absPayload + raw.length;
      let fixed = EMPTY;
      if (raw.wire === WIRE_I32 || raw.wire === WIRE_I64) {
        const rel = raw.absPayload - this.windowStart;
        fixed = this.window.slice(rel, rel + raw.length);
      }
      return {
        field: raw.field,
        wireType: raw.wire as WireType,
        offset: raw.absPayload,
        length: raw.length,
        varint: raw.varint,
        fixed,
      };
    }
  }

  private async skipGroup(field: number, from: number): Promise<number> {
    const open: number[] = [field];
    let p = from;
    while (open.length > 0) {
      if (open.length + this.depth > LIMITS.maxNesting)
        throw new CheckpointFormatError(`${this.where} nests protobuf groups deeper than ${LIMITS.maxNesting} levels.`);
      if (p >= this.end) throw truncated(this.where, p, `group ${field}`);
      const raw = await this.rawAt(p);
      if (raw.wire === WIRE_SGROUP) open.push(raw.field);
      else if (raw.wire === WIRE_EGROUP) {
        if (open.pop() !== raw.field)
          throw new CheckpointFormatError(
            `${this.where} is corrupt: mismatched end of group ${raw.field} at byte ${p}.`,
          );
      }
      p = raw.absPayload + raw.length;
    }
    return p;
  }

  /**
   * Reads the payload of LEN field `f` into memory. Refuses payloads over `maxBytes` with a clear error naming
   * `what`, so a lying length can never make the caller allocate without bound.
   */
  async payload(f: ProtoField, what: string, maxBytes: number = LIMITS.maxInMemoryBytes): Promise<Uint8Array> {
    expectWire(f, WIRE_LEN, this.where);
    if (f.length > maxBytes) {
      throw new CheckpointFormatError(
        `${this.where}: ${what} at byte ${f.offset} is ${formatBytes(f.length)}, over the ${formatBytes(maxBytes)} limit.`,
      );
    }
    const rel = f.offset - this.windowStart;
    if (rel >= 0 && rel + f.length <= this.window.length) return this.window.subarray(rel, rel + f.length);
    if (f.length === 0) return EMPTY;
    return this.source.read(f.offset, f.length);
  }

  /** Reads the submessage in LEN field `f` into memory (≤ `maxBytes`) and returns a `ProtoReader` over it. */
  async reader(f: ProtoField, what: string, maxBytes: number = LIMITS.maxInMemoryBytes): Promise<ProtoReader> {
    this.checkDepth();
    const bytes = await this.payload(f, what, maxBytes);
    return new ProtoReader(bytes, f.offset, this.where, this.depth + 1);
  }

  /** A cursor over the submessage in LEN field `f`, one level deeper. Reads nothing until walked. */
  child(f: ProtoField): ProtoCursor {
    expectWire(f, WIRE_LEN, this.where);
    this.checkDepth();
    return new ProtoCursor(this.source, f.offset, f.offset + f.length, this.depth + 1, this.window, this.windowStart);
  }

  private checkDepth(): void {
    if (this.depth + 1 > LIMITS.maxNesting)
      throw new CheckpointFormatError(`${this.where} nests protobuf messages deeper than ${LIMITS.maxNesting} levels.`);
  }
}

/** Throws a user-facing error unless `f` has wire type `wire` (a field of the wrong type means a corrupt file). */
export function expectWire(f: ProtoField, wire: WireType, where: string): void {
  if (f.wireType !== wire) {
    throw new CheckpointFormatError(
      `${where} is corrupt: field ${f.field} at byte ${f.offset} has wire type ${f.wireType}, expected ${wire}.`,
    );
  }
}

/** A VARINT field as a non-negative safe integer; throws naming `what` if it is larger than 2^53 − 1. */
export function fieldUint(f: ProtoField, what: string, where: string): number {
  expectWire(f, WIRE_VARINT, where);
  if (f.varint > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CheckpointFormatError(`${where}: ${what} at byte ${f.offset} is ${f.varint}, too large to be valid.`);
  }
  return Number(f.varint);
}

/** A VARINT field as a signed 64-bit integer (two's complement), converted to a number (exact below 2^53). */
export function fieldInt64(f: ProtoField, where: string): number {
  return Number(fieldInt64Big(f, where));
}

/** A VARINT field as an exact signed 64-bit integer. */
export function fieldInt64Big(f: ProtoField, where: string): bigint {
  expectWire(f, WIRE_VARINT, where);
  return BigInt.asIntN(64, f.varint);
}

/** A VARINT field as a signed 32-bit integer (protobuf `int32`: the low 32 bits of the 64-bit value). */
export function fieldInt32(f: ProtoField, where: string): number {
  expectWire(f, WIRE_VARINT, where);
  return Number(BigInt.asIntN(32, f.varint));
}

/** An I32 field as a float32 value. */
export function fieldFloat(f: ProtoField, where: string): number {
  expectWire(f, WIRE_I32, where);
  return new DataView(f.fixed.buffer, f.fixed.byteOffset, 4).getFloat32(0, true);
}

/** An I64 field as a float64 value. */
export function fieldDouble(f: ProtoField, where: string): number {
  expectWire(f, WIRE_I64, where);
  return new DataView(f.fixed.buffer, f.fixed.byteOffset, 8).getFloat64(0, true);
}

/** An I64 field as an unsigned 64-bit integer. */
export function fieldFixed64(f: ProtoField, where: string): bigint {
  expectWire(f, WIRE_I64, where);
  return new DataView(f.fixed.buffer, f.fixed.byteOffset, 8).getBigUint64(0, true);
}

const UTF8 = new TextDecoder('utf-8');

/** Decodes UTF-8 bytes (invalid sequences become U+FFFD; protobuf strings from hostile files may be malformed). */
export function decodeUtf8(bytes: Uint8Array): string {
  return UTF8.decode(bytes);
}

/** How packed varints are interpreted: protobuf `int32`, `int64`, `uint32` or `uint64`. */
export type VarintKind = 'int32' | 'int64' | 'uint32' | 'uint64';

/**
 * Counts the varints in packed bytes (the bytes whose high bit is clear). Throws if the last varint is unterminated.
 * Lets callers check a count against a shape before allocating.
 */
export function countPackedVarints(bytes: Uint8Array, where: string): number {
  let n = 0;
  for (const b of bytes) if ((b & 0x80) === 0) n++;
  if (bytes.length > 0 && ((bytes[bytes.length - 1] ?? 0) & 0x80) !== 0) {
    throw new CheckpointFormatError(`${where} is corrupt: a packed list of integers ends in the middle of a value.`);
  }
  return n;
}

/**
 * Decodes packed varints into `out` starting at `outOffset`, interpreting each as `kind`; returns how many were
 * decoded. Values beyond 2^53 in magnitude are rounded to the nearest double. `out` must have room for
 * `countPackedVarints(bytes)` values.
 */
export function decodePackedVarints(
  bytes: Uint8Array,
  kind: VarintKind,
  out: Float64Array | Float32Array,
  outOffset: number,
  where: string,
): number {
  let pos = 0;
  let n = outOffset;
  while (pos < bytes.length) {
    const v = decodeVarint(bytes, pos, bytes.length, where, pos);
    pos += v.size;
    let value: number;
    if (v.size < 8 && kind !== 'int32' && kind !== 'uint32') value = v.value;
    else if (kind === 'int32') value = v.size <= 4 ? v.value : Number(BigInt.asIntN(32, v.big));
    else if (kind === 'uint32') value = v.size <= 4 ? v.value : Number(BigInt.asUintN(32, v.big));
    else if (kind === 'int64') value = Number(BigInt.asIntN(64, v.big));
    else value = v.value;
    if (n >= out.length) throw new CheckpointFormatError(`${where}: more packed values than expected.`);
    out[n++] = value;
  }
  return n - outOffset;
}

/** Interprets the exact value of a VARINT field as `kind`, returning a number (rounded beyond 2^53). */
export function varintAs(f: ProtoField, kind: VarintKind, where: string): number {
  expectWire(f, WIRE_VARINT, where);
  switch (kind) {
    case 'int32':
      return Number(BigInt.asIntN(32, f.varint));
    case 'uint32':
      return Number(BigInt.asUintN(32, f.varint));
    case 'int64':
      return Number(BigInt.asIntN(64, f.varint));
    case 'uint64':
      return Number(f.varint);
  }
}

/**
 * Decodes packed signed 64-bit varints exactly, refusing more than `maxCount` values (so a caller can bound a list
 * such as tensor dimensions before allocating).
 */
export function decodePackedInt64s(bytes: Uint8Array, maxCount: number, what: string, where: string): bigint[] {
  const out: bigint[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    if (out.length >= maxCount) throw new CheckpointFormatError(`${where}: ${what} has more than ${maxCount} values.`);
    const v = decodeVarint(bytes, pos, bytes.length, where, pos);
    pos += v.size;
    out.push(BigInt.asIntN(64, v.big));
  }
  return out;
}
