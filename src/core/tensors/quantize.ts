/**
 * Symmetric round-to-nearest quantisation of a matrix, one scale per row or per column, and the 4-bit packing that
 * stores two codes in a byte. One rule for every user: the int8/int4 baselines quantise conv and dense weights per
 * output channel, and a quantised NeRN predictor stores each layer per output unit. Training code that fakes this
 * quantisation (straight-through estimator) must reproduce `quantizeMatrix` exactly; the tests hold it to that.
 *
 * The rule, for `bits` b ∈ {4, 8} and qmax = 2^(b−1) − 1 (7 or 127):
 * - scale of a group = fround(max |v| over the group / qmax); a group of zeros has scale 0 and codes 0;
 * - code = clamp(roundHalfEven(fround(v / scale)), −qmax, qmax), so codes are symmetric (−8 and −128 are unused);
 * - the value a code stands for is fround(code × scale).
 * Non-finite inputs are refused: a checkpoint with NaN or ±Inf weights has no meaningful scale.
 */
import { f16Bits, f16BitsToNumber } from './dtype';

/** Bit widths of the integer codes. */
export type QuantBits = 4 | 8;

/** Which groups share a scale in a row-major `rows × cols` matrix: each row, or each column. */
export type QuantAxis = 'row' | 'column';

/** A quantised matrix: one signed code per value (row-major) and one float32 scale per group. */
export interface QuantizedMatrix {
  bits: QuantBits;
  axis: QuantAxis;
  rows: number;
  cols: number;
  /** rows × cols codes in [−qmax, qmax], row-major. */
  codes: Int8Array;
  /** One scale per row (axis 'row', length rows) or per column (axis 'column', length cols); ≥ 0. */
  scales: Float32Array;
}

/** Largest code magnitude for `bits`: 127 for int8, 7 for int4. */
export function quantMax(bits: QuantBits): number {
  return 2 ** (bits - 1) - 1;
}

/** Rounds half to even, as ONNX Round and tf.round do (so every engine's fake quantisation agrees). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function checkMatrix(values: Float32Array, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || rows * cols !== values.length) {
    throw new RangeError(`a ${rows} × ${cols} matrix has ${rows * cols} values, not ${values.length}`);
  }
}

/** Per-group scales of `values` (see the module rule). Throws RangeError on a non-finite value. */
export function quantScales(
  values: Float32Array,
  rows: number,
  cols: number,
  bits: QuantBits,
  axis: QuantAxis,
): Float32Array {
  checkMatrix(values, rows, cols);
  const scales = new Float32Array(axis === 'row' ? rows : cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = values[r * cols + c] ?? 0;
      if (!Number.isFinite(v)) throw new RangeError(`value ${v} at [${r}, ${c}] cannot be quantised`);
      const g = axis === 'row' ? r : c;
      const a = Math.abs(v);
      if (a > (scales[g] ?? 0)) scales[g] = a;
    }
  }
  const qmax = quantMax(bits);
  for (let g = 0; g < scales.length; g++) scales[g] = Math.fround((scales[g] ?? 0) / qmax);
  return scales;
}

/** Quantises a row-major `rows × cols` float32 matrix (see the module rule). */
export function quantizeMatrix(
  values: Float32Array,
  rows: number,
  cols: number,
  bits: QuantBits,
  axis: QuantAxis,
): QuantizedMatrix {
  const scales = quantScales(values, rows, cols, bits, axis);
  const qmax = quantMax(bits);
  const codes = new Int8Array(values.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const scale = scales[axis === 'row' ? r : c] ?? 0;
      if (scale === 0) continue;
      const q = roundHalfEven(Math.fround((values[i] ?? 0) / scale));
      codes[i] = Math.max(-qmax, Math.min(qmax, q));
    }
  }
  return { bits, axis, rows, cols, codes, scales };
}

/** The float32 values a quantised matrix stands for, row-major. */
export function dequantizeMatrix(q: QuantizedMatrix): Float32Array {
  const out = new Float32Array(q.rows * q.cols);
  for (let r = 0; r < q.rows; r++) {
    for (let c = 0; c < q.cols; c++) {
      const i = r * q.cols + c;
      out[i] = Math.fround((q.codes[i] ?? 0) * (q.scales[q.axis === 'row' ? r : c] ?? 0));
    }
  }
  return out;
}

/** `values` rounded through IEEE half precision (nearest even; beyond ±65504 → ±Inf), as float32. */
export function roundToF16(values: Float32Array): Float32Array {
  return Float32Array.from(values, (v) => f16BitsToNumber(f16Bits(v)));
}

/** Bytes that `n` 4-bit codes take packed: ⌈n / 2⌉. */
export function int4PackedBytes(n: number): number {
  return Math.ceil(n / 2);
}

/**
 * Packs 4-bit codes (each in [−8, 7]) two to a byte: code 2k in the low nibble of byte k, code 2k+1 in the high
 * nibble, each as a two's-complement nibble. An odd count leaves the last high nibble 0.
 */
export function packInt4(codes: Int8Array): Uint8Array {
  const out = new Uint8Array(int4PackedBytes(codes.length));
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i] ?? 0;
    if (c < -8 || c > 7) throw new RangeError(`code ${c} at ${i} does not fit in 4 bits`);
    const nibble = c & 0x0f;
    const k = i >> 1;
    out[k] = (out[k] ?? 0) | (i & 1 ? nibble << 4 : nibble);
  }
  return out;
}

/** The `n` codes that `packInt4` packed into `bytes` (which must hold exactly ⌈n / 2⌉ bytes). */
export function unpackInt4(bytes: Uint8Array, n: number): Int8Array {
  if (bytes.length !== int4PackedBytes(n)) {
    throw new RangeError(`${n} packed 4-bit codes take ${int4PackedBytes(n)} bytes, not ${bytes.length}`);
  }
  const out = new Int8Array(n);
  for (let i = 0; i < n; i++) {
    const b = bytes[i >> 1] ?? 0;
    const nibble = i & 1 ? b >> 4 : b & 0x0f;
    out[i] = nibble >= 8 ? nibble - 16 : nibble;
  }
  return out;
}
