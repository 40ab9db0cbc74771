/**
 * Element types and their decoding to floating point. Values are decoded in chunks straight from file bytes; float32
 * data that is already aligned is viewed without copying. All multi-byte types are little-endian unless a reader
 * says otherwise.
 */
import { CheckpointFormatError } from '../io/errors';

/** Element types whose values Weight Lens decodes, named as safetensors names them. */
export type DType =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'F8_E4M3'
  | 'F8_E5M2'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL';

/** Bytes per element of each decodable dtype. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

/** True if `name` is one of the decodable `DType`s. */
export function isDType(name: string): name is DType {
  return Object.prototype.hasOwnProperty.call(DTYPE_BYTES, name);
}

/** A chunk of decoded values. 64-bit types decode to Float64Array (int64 beyond 2^53 loses precision). */
export type ValueChunk = Float32Array | Float64Array;

const F16_TABLE = buildF16Table();
function buildF16Table(): Float32Array {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    let v: number;
    if (exp === 0) v = frac * 2 ** -24;
    else if (exp === 31) v = frac === 0 ? Infinity : NaN;
    else v = (1 + frac / 1024) * 2 ** (exp - 15);
    table[h] = sign * v;
  }
  return table;
}

function buildF8Table(expBits: number, manBits: number, bias: number, e4m3: boolean): Float32Array {
  const table = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const sign = b & 0x80 ? -1 : 1;
    const exp = (b >> manBits) & ((1 << expBits) - 1);
    const man = b & ((1 << manBits) - 1);
    const maxExp = (1 << expBits) - 1;
    let v: number;
    if (e4m3 && exp === maxExp && man === (1 << manBits) - 1)
      v = NaN; // E4M3FN: only S.1111.111 is NaN, no infinities
    else if (!e4m3 && exp === maxExp) v = man === 0 ? Infinity : NaN;
    else if (exp === 0) v = (man / (1 << manBits)) * 2 ** (1 - bias);
    else v = (1 + man / (1 << manBits)) * 2 ** (exp - bias);
    table[b] = sign * v;
  }
  return table;
}
const F8_E4M3_TABLE = buildF8Table(4, 3, 7, true);
const F8_E5M2_TABLE = buildF8Table(5, 2, 15, false);

/** Converts IEEE half-precision bits to a number. */
export function f16BitsToNumber(bits: number): number {
  return F16_TABLE[bits & 0xffff] ?? NaN;
}

/** Converts bfloat16 bits to a number. */
export function bf16BitsToNumber(bits: number): number {
  const u = new Uint32Array([(bits & 0xffff) << 16]);
  return new Float32Array(u.buffer)[0] ?? NaN;
}

function aligned(bytes: Uint8Array, elementBytes: number): Uint8Array {
  if (bytes.byteOffset % elementBytes === 0) return bytes;
  return bytes.slice();
}

/**
 * Decodes `bytes` (a whole number of elements of `dtype`) to floats. F32 data is returned as a zero-copy view when
 * aligned and little-endian. `littleEndian: false` handles big-endian NumPy files.
 */
export function decodeValues(dtype: DType, bytes: Uint8Array, littleEndian = true): ValueChunk {
  const size = DTYPE_BYTES[dtype];
  if (bytes.length % size !== 0) {
    throw new CheckpointFormatError(`tensor data of ${bytes.length} bytes is not a whole number of ${dtype} elements.`);
  }
  const n = bytes.length / size;
  if (!littleEndian && size > 1) return decodeBigEndian(dtype, bytes, n);
  switch (dtype) {
    case 'F32': {
      const a = aligned(bytes, 4);
      return new Float32Array(a.buffer, a.byteOffset, n);
    }
    case 'F64': {
      const a = aligned(bytes, 8);
      return new Float64Array(a.buffer, a.byteOffset, n);
    }
    case 'F16': {
      const a = aligned(bytes, 2);
      const src = new Uint16Array(a.buffer, a.byteOffset, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = F16_TABLE[src[i] as number] as number;
      return out;
    }
    case 'BF16': {
      const a = aligned(bytes, 2);
      const src = new Uint16Array(a.buffer, a.byteOffset, n);
      const out = new Float32Array(n);
      const outBits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) outBits[i] = (src[i] as number) << 16;
      return out;
    }
    case 'F8_E4M3':
    case 'F8_E5M2': {
      const table = dtype === 'F8_E4M3' ? F8_E4M3_TABLE : F8_E5M2_TABLE;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[bytes[i] as number] as number;
      return out;
    }
    case 'I8':
      return Float32Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, n));
    case 'U8':
    case 'BOOL':
      return Float32Array.from(bytes);
    case 'I16': {
      const a = aligned(bytes, 2);
      return Float32Array.from(new Int16Array(a.buffer, a.byteOffset, n));
    }
    case 'U16': {
      const a = aligned(bytes, 2);
      return Float32Array.from(new Uint16Array(a.buffer, a.byteOffset, n));
    }
    case 'I32': {
      const a = aligned(bytes, 4);
      return Float64Array.from(new Int32Array(a.buffer, a.byteOffset, n));
    }
    case 'U32': {
      const a = aligned(bytes, 4);
      return Float64Array.from(new Uint32Array(a.buffer, a.byteOffset, n));
    }
    case 'I64': {
      const a = aligned(bytes, 8);
      const src = new BigInt64Array(a.buffer, a.byteOffset, n);
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(src[i]);
      return out;
    }
    case 'U64': {
      const a = aligned(bytes, 8);
      const src = new BigUint64Array(a.buffer, a.byteOffset, n);
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(src[i]);
      return out;
    }
  }
}

function decodeBigEndian(dtype: DType, bytes: Uint8Array, n: number): ValueChunk {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = DTYPE_BYTES[dtype];
  const wide = size === 8 || dtype === 'I32' || dtype === 'U32';
  const out = wide ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * size;
    switch (dtype) {
      case 'F64':
        out[i] = view.getFloat64(o, false);
        break;
      case 'F32':
        out[i] = view.getFloat32(o, false);
        break;
      case 'F16':
        out[i] = f16BitsToNumber(view.getUint16(o, false));
        break;
      case 'BF16':
        out[i] = bf16BitsToNumber(view.getUint16(o, false));
        break;
      case 'I64':
        out[i] = Number(view.getBigInt64(o, false));
        break;
      case 'U64':
        out[i] = Number(view.getBigUint64(o, false));
        break;
      case 'I32':
        out[i] = view.getInt32(o, false);
        break;
      case 'U32':
        out[i] = view.getUint32(o, false);
        break;
      case 'I16':
        out[i] = view.getInt16(o, false);
        break;
      case 'U16':
        out[i] = view.getUint16(o, false);
        break;
      default:
        out[i] = bytes[o] as number;
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding (the inverse of decodeValues)

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half-precision bits of `v`, rounded to nearest even (overflow → ±inf, NaN → quiet NaN). */
export function f16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0] ?? 0;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** bfloat16 bits of `v`, rounded to nearest even (NaN → quiet NaN). */
export function bf16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0] ?? 0;
  if (Number.isNaN(v)) return ((x >>> 16) & 0x8000) | 0x7fc0;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

let f8Tables: Map<DType, Map<number, number>> | undefined;
function f8Byte(dtype: 'F8_E4M3' | 'F8_E5M2', v: number): number {
  f8Tables ??= new Map();
  let table = f8Tables.get(dtype);
  if (!table) {
    table = new Map();
    const all = new Uint8Array(256);
    for (let b = 0; b < 256; b++) all[b] = b;
    const values = decodeValues(dtype, all);
    for (let b = 255; b >= 0; b--) {
      const x = values[b] ?? 0;
      if (!Number.isNaN(x) && x !== 0) table.set(x, b);
    }
    f8Tables.set(dtype, table);
  }
  if (Number.isNaN(v)) return dtype === 'F8_E4M3' ? 0x7f : 0x7e;
  if (v === 0) return Object.is(v, -0) ? 0x80 : 0;
  const b = table.get(v);
  if (b === undefined) throw new RangeError(`${v} is not a ${dtype} value`);
  return b;
}

/**
 * Encodes decoded values as little-endian `dtype` bytes. Exact for every value `decodeValues(dtype)` yields (so a
 * decode/encode round trip reproduces the file's bytes, except 64-bit integers beyond 2^53, which keep the float64 nearest, clamped to the type's range, and NaN payloads); floats
 * are rounded to nearest even for F16/BF16.
 */
export function encodeValues(dtype: DType, values: ValueChunk): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case 'F32':
      return new Uint8Array(Float32Array.from(values).buffer);
    case 'F64':
      return new Uint8Array(Float64Array.from(values).buffer);
    case 'F16':
    case 'BF16': {
      const out = new Uint16Array(n);
      const enc = dtype === 'F16' ? f16Bits : bf16Bits;
      for (let i = 0; i < n; i++) out[i] = enc(values[i] ?? 0);
      return new Uint8Array(out.buffer);
    }
    case 'F8_E4M3':
    case 'F8_E5M2': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = f8Byte(dtype, values[i] ?? 0);
      return out;
    }
    case 'I64':
    case 'U64': {
      const out = dtype === 'I64' ? new BigInt64Array(n) : new BigUint64Array(n);
      // Clamped to the type's range, so a sentinel such as INT64_MAX (decoded as 2^63) stays itself, not wrapping.
      const [low, high] = dtype === 'I64' ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
      for (let i = 0; i < n; i++) {
        const x = values[i] ?? 0;
        const v = BigInt(Number.isFinite(x) ? Math.trunc(x) : 0);
        out[i] = v < low ? low : v > high ? high : v;
      }
      return new Uint8Array(out.buffer);
    }
    case 'I32':
      return new Uint8Array(Int32Array.from(values).buffer);
    case 'U32':
      return new Uint8Array(Uint32Array.from(values).buffer);
    case 'I16':
      return new Uint8Array(Int16Array.from(values).buffer);
    case 'U16':
      return new Uint8Array(Uint16Array.from(values).buffer);
    case 'I8':
      return new Uint8Array(Int8Array.from(values).buffer);
    case 'U8':
      return Uint8Array.from(values);
    case 'BOOL':
      return Uint8Array.from(values, (x) => (x !== 0 ? 1 : 0));
  }
}
