/**
 * How a NeRN artifact stores the tensors it keeps verbatim (`--verbatim-dtype`, format 5): which tensors a choice
 * narrows, and the streaming codecs that write them narrowed and read them back. `f16` stores F32/F64 tensors as
 * float16; `int8` stores float tensors as symmetric codes with one float32 scale per row along the first axis (one
 * per tensor for vectors and scalars), by src/core/tensors/quantize.ts's rule, so a tensor decodes exactly as
 * `dequantizeMatrix(quantizeMatrix(values, rows, cols, 8, 'row'))`. Every int8 tensor's scales lie in one F32 tensor
 * (`VERBATIM_SCALES_NAME`), concatenated in tensor-list order, so a small tensor costs no header entry of its own.
 * Which tensors are narrowed follows from their original dtype and shape alone, so the byte planner (artifactSize.ts)
 * counts exactly what the writer writes. Values a narrowed dtype cannot hold (beyond float16's ±65,504; NaN or ±Inf
 * for int8) are refused before training, never silently changed.
 */
import { BadInputError } from '../io/errors';
import { quote } from '../io/text';
import { decodeValues, encodeValues, type DType, type ValueChunk } from '../tensors/dtype';
import { quantMax, roundHalfEven } from '../tensors/quantize';
import type { VerbatimDtype } from '../../protocol/vocabulary';

/** A narrowed storage of a verbatim tensor ('f32' keeps it as it is). */
export type VerbatimStorage = Exclude<VerbatimDtype, 'f32'>;

/** Name of the F32 tensor of every int8 verbatim tensor's scales, in tensor-list order (absent when none is int8). */
export const VERBATIM_SCALES_NAME = 'verbatim_scales';

/** Original dtypes `f16` narrows (F16 and BF16 tensors already take 2 bytes and are kept as they are). */
const F16_NARROWED: readonly string[] = ['F32', 'F64'];
/** Original dtypes `int8` narrows: every float dtype the readers decode to float32. */
const INT8_NARROWED: readonly string[] = ['F32', 'F64', 'F16', 'BF16'];
/** Largest magnitude that rounds to a finite float16 (65,504 is the largest float16; 65,520 rounds to infinity). */
const F16_LIMIT = 65520;

/**
 * How a verbatim tensor of original `dtype` is stored under `choice`: 'f16' or 'int8' when the choice narrows it,
 * undefined when it stays in its own dtype (choice f32 or absent, integer and boolean tensors, F16/BF16 under f16).
 */
export function verbatimStorageFor(dtype: string, choice: VerbatimDtype | undefined): VerbatimStorage | undefined {
  if (choice === 'f16') return F16_NARROWED.includes(dtype) ? 'f16' : undefined;
  if (choice === 'int8') return INT8_NARROWED.includes(dtype) ? 'int8' : undefined;
  return undefined;
}

/** The safetensors dtype a narrowed tensor's data has in the file: F16, or I8 codes. */
export function storageDType(storage: VerbatimStorage): DType {
  return storage === 'f16' ? 'F16' : 'I8';
}

/** Bytes a narrowed tensor of `params` values takes in its own entry (its int8 scales lie in the shared tensor). */
export function narrowedBytes(storage: VerbatimStorage, params: number): number {
  return storage === 'f16' ? 2 * params : params;
}

/** Rows that share an int8 scale: the first axis of a tensor of rank ≥ 2, else the whole tensor (1). */
export function scaleRows(shape: readonly number[]): number {
  return shape.length >= 2 ? (shape[0] ?? 0) : 1;
}

/** Values per scale row (the product of every axis after the first; all values for rank ≤ 1). */
function rowLength(shape: readonly number[]): number {
  const params = shape.reduce((n, d) => n * d, 1);
  const rows = scaleRows(shape);
  return rows > 0 ? params / rows : 0;
}

/**
 * Checks that tensor `name`'s values fit `storage` and, for int8, returns its per-row scales (float32, fround(max |v|
 * over the row / 127), 0 for a row of zeros). Throws BadInputError naming the tensor when a value does not fit:
 * a finite value beyond float16's range for f16, a NaN or ±Inf for int8. `values` is streamed once.
 */
export async function verbatimScales(
  name: string,
  shape: readonly number[],
  storage: VerbatimStorage,
  values: AsyncIterable<ValueChunk>,
): Promise<Float32Array | undefined> {
  const cols = rowLength(shape);
  const max = new Float32Array(storage === 'int8' ? scaleRows(shape) : 0);
  let i = 0;
  for await (const chunk of values) {
    for (let k = 0; k < chunk.length; k++, i++) {
      const v = chunk[k] ?? 0;
      if (storage === 'f16') {
        if (Number.isFinite(v) && Math.abs(v) >= F16_LIMIT)
          throw new BadInputError(
            `Tensor ${quote(name)} holds ${v}, beyond float16's range of ±65,504, so it cannot be kept verbatim as f16: keep verbatim tensors as f32 or int8.`,
            { option: 'verbatimDtype' },
          );
        continue;
      }
      if (!Number.isFinite(v))
        throw new BadInputError(
          `Tensor ${quote(name)} holds ${v}, which int8 codes cannot store, so it cannot be kept verbatim as int8: keep verbatim tensors as f32 or f16.`,
          { option: 'verbatimDtype' },
        );
      const r = Math.floor(i / cols);
      const a = Math.abs(Math.fround(v));
      if (a > (max[r] ?? 0)) max[r] = a;
    }
  }
  if (storage === 'f16') return undefined;
  const qmax = quantMax(8);
  return max.map((m) => Math.fround(m / qmax));
}

/**
 * A tensor's values as the bytes `storage` stores: float16, or int8 codes clamp(roundHalfEven(fround(v / scale)),
 * −127, 127) with `scales` from `verbatimScales` (0 where the row's scale is 0). Streams chunk by chunk.
 */
export async function* encodeVerbatim(
  shape: readonly number[],
  storage: VerbatimStorage,
  scales: Float32Array | undefined,
  values: AsyncIterable<ValueChunk>,
): AsyncIterable<Uint8Array> {
  if (storage === 'f16') {
    for await (const chunk of values) yield encodeValues('F16', chunk);
    return;
  }
  const cols = rowLength(shape);
  const qmax = quantMax(8);
  let i = 0;
  for await (const chunk of values) {
    const codes = new Int8Array(chunk.length);
    for (let k = 0; k < chunk.length; k++, i++) {
      const scale = scales?.[Math.floor(i / cols)] ?? 0;
      if (scale === 0) continue;
      const q = roundHalfEven(Math.fround(Math.fround(chunk[k] ?? 0) / scale));
      codes[k] = Math.max(-qmax, Math.min(qmax, q));
    }
    yield new Uint8Array(codes.buffer);
  }
}

/**
 * The stored bytes of a narrowed tensor decoded back to values, re-encoded as `out` (its original dtype): float16
 * widened, int8 codes times their row's scale (fround(code × scale), as dequantizeMatrix). `bytes` chunks must hold
 * whole elements. `fail` makes the error for an int8 code of −128, which the writer never produces.
 */
export async function* decodeVerbatim(
  shape: readonly number[],
  storage: VerbatimStorage,
  scales: Float32Array | undefined,
  bytes: AsyncIterable<Uint8Array>,
  out: DType,
  fail: (what: string) => Error,
): AsyncIterable<Uint8Array> {
  for await (const values of decodeVerbatimValues(shape, storage, scales, bytes, fail)) yield encodeValues(out, values);
}

/** As `decodeVerbatim`, but the float32 values themselves. */
export async function* decodeVerbatimValues(
  shape: readonly number[],
  storage: VerbatimStorage,
  scales: Float32Array | undefined,
  bytes: AsyncIterable<Uint8Array>,
  fail: (what: string) => Error,
): AsyncIterable<Float32Array> {
  if (storage === 'f16') {
    for await (const chunk of bytes) yield Float32Array.from(decodeValues('F16', chunk));
    return;
  }
  const cols = rowLength(shape);
  let i = 0;
  for await (const chunk of bytes) {
    const codes = new Int8Array(chunk.buffer, chunk.byteOffset, chunk.length);
    const values = new Float32Array(codes.length);
    for (let k = 0; k < codes.length; k++, i++) {
      const c = codes[k] ?? 0;
      if (c < -127) throw fail(`it holds the int8 code −128 at element ${i}, outside −127…127`);
      values[k] = Math.fround(c * (scales?.[Math.floor(i / cols)] ?? 0));
    }
    yield values;
  }
}
