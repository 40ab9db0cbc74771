/**
 * The baseline compressors, as pure functions over float32 weights: int8 / int4 per-output-channel round-to-nearest
 * (src/core/tensors/quantize.ts's rule, int4 packed two to a byte), low-rank (truncated SVD of each weight viewed as
 * C_out × (C_in·k·k), ranks chosen across layers by singular-value energy per byte to meet a byte budget) and global
 * magnitude pruning (the largest |w| kept, their positions stored as a bitmap). Each stored tensor is a list of named
 * parts (dtype, shape, bytes) and decodes back to the float32 weights in the original layout. The SVD is ml-matrix's.
 */
import { Matrix, SingularValueDecomposition } from 'ml-matrix';
import type { CompressMethod } from '../../protocol/vocabulary';
import type { DType } from '../tensors/dtype';
import { DTYPE_BYTES } from '../tensors/dtype';
import { dequantizeMatrix, int4PackedBytes, packInt4, quantizeMatrix, unpackInt4 } from '../tensors/quantize';

/** A method other than NeRN. */
export type BaselineMethod = Exclude<CompressMethod, 'nern'>;

/** The baseline methods, in the order the CLI lists them. */
export const BASELINE_METHODS: readonly BaselineMethod[] = ['int8', 'int4', 'lowrank', 'prune'];

/**
 * How a weight is viewed as a matrix: `rows` output channels × `cols` inputs. 'row' when the output channel is the
 * first dimension (PyTorch [C_out, C_in, k, k], [out, in]); 'column' when it is the last (TensorFlow.js / Keras
 * [k, k, C_in, C_out]), the values then being a row-major (k·k·C_in) × C_out matrix.
 */
export interface MatrixView {
  rows: number;
  cols: number;
  channelAxis: 'row' | 'column';
}

/** The per-output-channel view of a tensor of `shape`; `channelLast` for 'hwio' convolutions. */
export function matrixView(shape: readonly number[], channelLast: boolean): MatrixView {
  const n = shape.reduce((a, d) => a * d, 1);
  if (channelLast) {
    const channels = shape[shape.length - 1] ?? 1;
    return { rows: channels, cols: channels > 0 ? n / channels : 0, channelAxis: 'column' };
  }
  const rows = shape[0] ?? 1;
  return { rows, cols: rows > 0 ? n / rows : 0, channelAxis: 'row' };
}

/** One weight to compress: its name, shape, matrix view and float32 values (original layout). */
export interface BaselineInput {
  name: string;
  shape: readonly number[];
  view: MatrixView;
  values: Float32Array;
}

/** One stored array of a compressed tensor: `suffix` names it (`codes`, `scales`, `u`, `v`, `mask`, `values`). */
export interface StoredPart {
  suffix: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

/** How a tensor is stored: the method, its matrix view, and for low-rank the rank, for pruning the kept count. */
export interface StoredForm {
  method: BaselineMethod;
  rows: number;
  cols: number;
  channelAxis: 'row' | 'column';
  /** lowrank: the rank r ≥ 1 (parts u [rows, r] = U·S and v [r, cols]). */
  rank?: number;
  /** prune: how many values are kept (parts mask U8 [⌈n/8⌉], values F32 [kept]). */
  kept?: number;
}

/** A compressed tensor: its form and stored parts. */
export interface CompressedTensor {
  name: string;
  shape: number[];
  form: StoredForm;
  parts: StoredPart[];
}

/** Bytes of a stored part (product of its shape × dtype width). */
export function partBytes(p: { dtype: DType; shape: readonly number[] }): number {
  return p.shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[p.dtype];
}

/** Stored bytes of compressed tensors: the sum of their parts (what the artifact's data section holds for them). */
export function storedBytes(tensors: readonly CompressedTensor[]): number {
  return tensors.reduce((s, t) => s + t.parts.reduce((a, p) => a + partBytes(p), 0), 0);
}

function bytesOf(a: Float32Array | Int8Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The values as a row-major rows × cols matrix with output channels as rows (a copy when channels are last). */
function channelRows(values: Float32Array, v: MatrixView): Float32Array {
  if (v.channelAxis === 'row') return values;
  const out = new Float32Array(values.length);
  for (let c = 0; c < v.cols; c++) for (let r = 0; r < v.rows; r++) out[r * v.cols + c] = values[c * v.rows + r] ?? 0;
  return out;
}

/** Inverse of `channelRows`. */
function fromChannelRows(m: Float32Array, v: MatrixView): Float32Array {
  if (v.channelAxis === 'row') return m;
  const out = new Float32Array(m.length);
  for (let c = 0; c < v.cols; c++) for (let r = 0; r < v.rows; r++) out[c * v.rows + r] = m[r * v.cols + c] ?? 0;
  return out;
}

function formOf(method: BaselineMethod, v: MatrixView): StoredForm {
  return { method, rows: v.rows, cols: v.cols, channelAxis: v.channelAxis };
}

/** int8 or int4 per-output-channel quantisation of one tensor (scales F32 [C_out]; int4 codes packed). */
export function quantizeTensor(t: BaselineInput, bits: 4 | 8): CompressedTensor {
  const { rows, cols } = t.view;
  const q = quantizeMatrix(channelRows(t.values, t.view), rows, cols, bits, 'row');
  const codes: StoredPart =
    bits === 8
      ? { suffix: 'codes', dtype: 'I8', shape: [rows, cols], data: bytesOf(q.codes) }
      : { suffix: 'codes', dtype: 'U8', shape: [int4PackedBytes(rows * cols)], data: packInt4(q.codes) };
  return {
    name: t.name,
    shape: [...t.shape],
    form: formOf(bits === 8 ? 'int8' : 'int4', t.view),
    parts: [codes, { suffix: 'scales', dtype: 'F32', shape: [rows], data: bytesOf(q.scales) }],
  };
}

/** Singular values (descending) and factors of one weight, float64, from ml-matrix. */
interface Factored {
  input: BaselineInput;
  s: number[];
  u: Matrix;
  v: Matrix;
}

function factor(t: BaselineInput): Factored {
  const { rows, cols } = t.view;
  const m = new Matrix(rows, cols);
  const src = channelRows(t.values, t.view);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) m.set(r, c, src[r * cols + c] ?? 0);
  const svd = new SingularValueDecomposition(m, { autoTranspose: true });
  return { input: t, s: svd.diagonal, u: svd.leftSingularVectors, v: svd.rightSingularVectors };
}

/**
 * Ranks for low-rank factorisation within `budgetBytes` of stored factors: every layer keeps rank 1, then singular
 * components are added in order of energy per byte (s_i² / (4·(rows + cols))), highest first, until the next one no
 * longer fits. A rank never exceeds min(rows, cols). Returns one rank per layer.
 */
export function chooseRanks(
  layers: readonly { rows: number; cols: number; singularValues: readonly number[] }[],
  budgetBytes: number,
): number[] {
  const ranks = layers.map(() => 1);
  let used = layers.reduce((s, l) => s + 4 * (l.rows + l.cols), 0);
  const candidates: { layer: number; score: number }[] = [];
  layers.forEach((l, i) => {
    const cost = 4 * (l.rows + l.cols);
    const max = Math.min(l.rows, l.cols);
    for (let k = 1; k < max; k++) candidates.push({ layer: i, score: (l.singularValues[k] ?? 0) ** 2 / cost });
  });
  // Stable sort: within a layer, scores never increase with k, so taking a prefix keeps every rank contiguous.
  candidates.sort((a, b) => b.score - a.score);
  for (const c of candidates) {
    const l = layers[c.layer];
    if (!l) continue;
    const cost = 4 * (l.rows + l.cols);
    if (used + cost > budgetBytes) break;
    used += cost;
    ranks[c.layer] = (ranks[c.layer] ?? 1) + 1;
  }
  return ranks;
}

/** Low-rank factorisation of `tensors` into at most `budgetBytes` of F32 factors (at least rank 1 each). */
export function lowRankTensors(tensors: readonly BaselineInput[], budgetBytes: number): CompressedTensor[] {
  const factored = tensors.map(factor);
  const ranks = chooseRanks(
    factored.map((f) => ({ rows: f.input.view.rows, cols: f.input.view.cols, singularValues: f.s })),
    budgetBytes,
  );
  return factored.map((f, i) => {
    const { rows, cols } = f.input.view;
    const r = ranks[i] ?? 1;
    const u = new Float32Array(rows * r);
    const v = new Float32Array(r * cols);
    for (let a = 0; a < rows; a++) for (let k = 0; k < r; k++) u[a * r + k] = f.u.get(a, k) * (f.s[k] ?? 0);
    for (let k = 0; k < r; k++) for (let b = 0; b < cols; b++) v[k * cols + b] = f.v.get(b, k);
    return {
      name: f.input.name,
      shape: [...f.input.shape],
      form: { ...formOf('lowrank', f.input.view), rank: r },
      parts: [
        { suffix: 'u', dtype: 'F32', shape: [rows, r], data: bytesOf(u) },
        { suffix: 'v', dtype: 'F32', shape: [r, cols], data: bytesOf(v) },
      ],
    };
  });
}

/** Bytes of a bitmap over `n` values: ⌈n / 8⌉ (bit i of byte k marks value 8k + i, least significant first). */
export function bitmapBytes(n: number): number {
  return Math.ceil(n / 8);
}

/**
 * Global magnitude pruning of `tensors` into at most `budgetBytes`: each tensor stores a bitmap of its kept positions
 * (⌈n/8⌉ bytes, counted) and the kept values (F32, original layout order). The kept values are the K largest |w|
 * over all tensors (ties: the earlier tensor, then the earlier position), K = ⌊(budget − bitmaps) / 4⌋ ≥ 0.
 */
export function pruneTensors(tensors: readonly BaselineInput[], budgetBytes: number): CompressedTensor[] {
  const total = tensors.reduce((s, t) => s + t.values.length, 0);
  const bitmaps = tensors.reduce((s, t) => s + bitmapBytes(t.values.length), 0);
  const keep = Math.max(0, Math.min(total, Math.floor((budgetBytes - bitmaps) / 4)));
  const all = new Float32Array(total);
  let at = 0;
  for (const t of tensors) {
    for (let i = 0; i < t.values.length; i++) all[at + i] = Math.abs(t.values[i] ?? 0);
    at += t.values.length;
  }
  const order = new Uint32Array(total);
  for (let i = 0; i < total; i++) order[i] = i;
  order.sort((a, b) => (all[b] ?? 0) - (all[a] ?? 0) || a - b);
  const kept = new Uint8Array(total);
  for (let i = 0; i < keep; i++) kept[order[i] ?? 0] = 1;
  at = 0;
  return tensors.map((t) => {
    const n = t.values.length;
    const mask = new Uint8Array(bitmapBytes(n));
    const values: number[] = [];
    for (let i = 0; i < n; i++) {
      if (kept[at + i] !== 1) continue;
      mask[i >> 3] = (mask[i >> 3] ?? 0) | (1 << (i & 7));
      values.push(t.values[i] ?? 0);
    }
    at += n;
    const stored = Float32Array.from(values);
    return {
      name: t.name,
      shape: [...t.shape],
      form: { ...formOf('prune', t.view), kept: stored.length },
      parts: [
        { suffix: 'mask', dtype: 'U8', shape: [mask.length], data: mask },
        { suffix: 'values', dtype: 'F32', shape: [stored.length], data: bytesOf(stored) },
      ],
    };
  });
}

/**
 * Compresses `tensors` with `method`. int8/int4 ignore `budgetBytes` (their size is fixed); lowrank and prune fit
 * their stored parts within it.
 */
export function compressTensors(
  method: BaselineMethod,
  tensors: readonly BaselineInput[],
  budgetBytes: number,
): CompressedTensor[] {
  if (method === 'int8') return tensors.map((t) => quantizeTensor(t, 8));
  if (method === 'int4') return tensors.map((t) => quantizeTensor(t, 4));
  if (method === 'lowrank') return lowRankTensors(tensors, budgetBytes);
  return pruneTensors(tensors, budgetBytes);
}

function f32(part: Uint8Array): Float32Array {
  // Copy so the values are aligned whatever offset the bytes had in the file.
  return new Float32Array(Uint8Array.from(part).buffer);
}

/**
 * The float32 weights (original layout, rows·cols values) that a stored tensor stands for. `parts` maps each suffix
 * to its bytes, already checked against the form's shapes (src/core/baselines/artifact.ts does that).
 */
export function decodeTensor(form: StoredForm, parts: ReadonlyMap<string, Uint8Array>): Float32Array {
  const { rows, cols } = form;
  const view: MatrixView = { rows, cols, channelAxis: form.channelAxis };
  const get = (s: string): Uint8Array => parts.get(s) ?? new Uint8Array(0);
  const n = rows * cols;
  if (form.method === 'int8' || form.method === 'int4') {
    const raw = get('codes');
    const codes = form.method === 'int8' ? new Int8Array(Uint8Array.from(raw).buffer) : unpackInt4(raw, n);
    const bits = form.method === 'int8' ? 8 : 4;
    return fromChannelRows(
      dequantizeMatrix({ bits, axis: 'row', rows, cols, codes, scales: f32(get('scales')) }),
      view,
    );
  }
  if (form.method === 'lowrank') {
    const r = form.rank ?? 1;
    const u = f32(get('u'));
    const v = f32(get('v'));
    const m = new Float32Array(n);
    for (let a = 0; a < rows; a++)
      for (let b = 0; b < cols; b++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += (u[a * r + k] ?? 0) * (v[k * cols + b] ?? 0);
        m[a * cols + b] = s;
      }
    return fromChannelRows(m, view);
  }
  const mask = get('mask');
  const values = f32(get('values'));
  const out = new Float32Array(n);
  let j = 0;
  for (let i = 0; i < n; i++) if (((mask[i >> 3] ?? 0) >> (i & 7)) & 1) out[i] = values[j++] ?? 0;
  return out;
}

/** How many mask bits are set over the first `n` positions (a reader checks it equals the stored kept count). */
export function maskCount(mask: Uint8Array, n: number): number {
  let c = 0;
  for (let i = 0; i < n; i++) c += ((mask[i >> 3] ?? 0) >> (i & 7)) & 1;
  return c;
}
