/**
 * Protocol Buffers wire-format encoding: the small writer the engine uses to build ONNX models in memory (the NeRN
 * training-step graph run by onnxruntime). No schema: callers write fields by number. The counterpart of the readers
 * in `protobuf.ts`.
 */

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** Largest field number protobuf allows (2^29 − 1). */
const MAX_FIELD_NUMBER = 0x1fffffff;

/**
 * Appends fields to a growing buffer. Integers are written as varints (negative values as 10-byte two's complement,
 * like protobuf's int32/int64); `finish()` returns the bytes written so far. Nested messages are written by encoding
 * them with their own writer and passing the bytes to `message`.
 */
export class ProtoWriter {
  private buf = new Uint8Array(256);
  private len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private rawVarint(value: bigint): void {
    // Two's complement on 64 bits for negatives, as protobuf's int64.
    let v = BigInt.asUintN(64, value);
    this.ensure(10);
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }

  private tag(field: number, wire: number): void {
    if (!Number.isInteger(field) || field < 1 || field > MAX_FIELD_NUMBER)
      throw new RangeError(`protobuf field number ${field} is out of range`);
    this.rawVarint(BigInt(field * 8 + wire));
  }

  /** A varint field (int32, int64, uint64, bool, enum). `value` must be an integer (a number within ±2^53, or a bigint). */
  varint(field: number, value: number | bigint): this {
    if (typeof value === 'number' && !Number.isSafeInteger(value))
      throw new RangeError(`protobuf varint ${value} is not a safe integer`);
    this.tag(field, WIRE_VARINT);
    this.rawVarint(BigInt(value));
    return this;
  }

  /** A 32-bit float field (fixed32 bits, little-endian). */
  float(field: number, value: number): this {
    this.tag(field, WIRE_I32);
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, value, true);
    this.len += 4;
    return this;
  }

  /** A length-delimited field holding `bytes` (bytes, or an already-encoded submessage). */
  bytes(field: number, bytes: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.rawVarint(BigInt(bytes.length));
    this.ensure(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
    return this;
  }

  /** A UTF-8 string field. */
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** A submessage field built by `build` on a fresh writer. */
  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  /** A packed repeated varint field (e.g. repeated int64 dims). */
  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const v of values) {
      if (typeof v === 'number' && !Number.isSafeInteger(v))
        throw new RangeError(`protobuf varint ${v} is not a safe integer`);
      inner.rawVarint(BigInt(v));
    }
    return this.bytes(field, inner.finish());
  }

  /** Already-encoded fields (tags and payloads, e.g. copied from another message), appended as they are. */
  raw(fields: Uint8Array): this {
    this.ensure(fields.length);
    this.buf.set(fields, this.len);
    this.len += fields.length;
    return this;
  }

  /** Bytes written so far (a copy-free view; do not write after taking it if you keep it). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}
