/**
 * Beyond NeRN: how any weight tensor of rank ≥ 2 becomes a grid of 3×3 "kernels" the same predictor can regenerate.
 * 3×3 and 1×1 convolutions map onto kernels directly (NeRN's scope). Every other tensor (dense / transformer matrices,
 * convolutions with other kernel sizes, 1-D convolutions) is viewed as a matrix [rows = shape[0], cols = product of
 * the rest] and cut into 3×3 blocks, zero-padded at the right and bottom edges: block (i, j) is the kernel at filter
 * i, input channel j of a [⌈rows/3⌉, ⌈cols/3⌉, 3, 3] layer. This reuses the 9-output predictor, the coordinate
 * encoding, the permutations and the artifact layout exactly, so one predictor serves convolutions and matrices
 * together; blocks keep 2-D locality (neighbouring rows and columns), which is what the smoothness permutation and the
 * coordinate encoding exploit. The padding costs at most two rows and two columns of zeros per matrix.
 *
 * A 1×1 convolution can take either form (`PointwiseLayout`): NeRN's, one scalar kernel per grid row in the centre of
 * a predicted 3×3 (`conv`, k = 1), or Weight Lens' `blocks`, its C_out × C_in matrix tiled like any other matrix
 * (`tiled`; for 'hwio' the [C_in, C_out] matrix its memory order already is), nine weights per grid row.
 *
 * Convolution kernels come in two memory layouts: PyTorch / ONNX store [C_out, C_in, kh, kw] ('oihw'); TensorFlow.js
 * and Keras store [kh, kw, C_in, C_out] ('hwio'; a depthwise kernel [kh, kw, C, 1] is simply C_out = 1). The predictor
 * always sees [C_out, C_in, k, k]: an 'hwio' conv is transposed on the way in and back on the way out, so the
 * decompressed tensor keeps its original shape and value order. Other 'hwio' tensors are tiled like any other.
 */

import type { PointwiseLayout } from '../../protocol/vocabulary';

/** Memory layout of a 4-D convolution kernel: [C_out, C_in, kh, kw] ('oihw') or [kh, kw, C_in, C_out] ('hwio'). */
export type ConvLayout = 'oihw' | 'hwio';

/**
 * The convolution layout of checkpoints of `format` (a `FormatId`; any other string, e.g. an artifact's recorded
 * source format from a newer version, gives 'oihw'): 'hwio' for TensorFlow.js and Keras, 'oihw' for every other.
 */
export function convLayoutFor(format: string): ConvLayout {
  return format === 'tfjs' || format === 'keras' ? 'hwio' : 'oihw';
}

/** How one represented tensor maps onto predictor kernels. */
export type TileSpec =
  /**
   * A k×k convolution, k ∈ {1, 3}: [C_out, C_in, k, k] taken as is ('oihw'), or [k, k, C_in, C_out] transposed to it
   * ('hwio'). Artifacts written before layouts existed have no `layout`; readers treat that as 'oihw'.
   */
  | { kind: 'conv'; k: 1 | 3; layout: ConvLayout }
  /** The tensor viewed as a row-major [rows, cols] matrix and cut into zero-padded 3×3 blocks. */
  | { kind: 'tiled'; rows: number; cols: number };

/** Side of a tile block (the predictor's kernel side). */
export const BLOCK = 3;

/**
 * The tile layout of a tensor of `shape` in a checkpoint whose convolutions use `layout`: conv for 3×3 convolutions
 * ([C_out, C_in, k, k] under 'oihw', [k, k, C_in, C_out] under 'hwio') and for 1×1 ones under `pointwise` 'centre';
 * a 1×1 convolution under 'blocks' is tiled as its row-major [C_out, C_in] ('oihw') or [C_in, C_out] ('hwio')
 * matrix; any other tensor of rank ≥ 2 is tiled as row-major [shape[0], rest]; undefined for scalars, vectors and
 * empty tensors. `pointwise` defaults to 'centre', the form of every artifact written before the choice existed.
 */
export function tileFor(
  shape: readonly number[],
  layout: ConvLayout = 'oihw',
  pointwise: PointwiseLayout = 'centre',
): TileSpec | undefined {
  if (shape.length < 2 || shape.some((d) => !(d >= 1))) return undefined;
  if (shape.length === 4) {
    const [a = 0, b = 0, c = 0, d = 0] = shape;
    const [kh, kw] = layout === 'hwio' ? [a, b] : [c, d];
    if (kh === kw && kh === 3) return { kind: 'conv', k: 3, layout };
    if (kh === kw && kh === 1) {
      if (pointwise === 'centre') return { kind: 'conv', k: 1, layout };
      return layout === 'hwio' ? { kind: 'tiled', rows: c, cols: d } : { kind: 'tiled', rows: a, cols: b };
    }
  }
  const rows = shape[0] ?? 0;
  const cols = shape.slice(1).reduce((n, d) => n * d, 1);
  return { kind: 'tiled', rows, cols };
}

/** True when `shape` is a 1×1 convolution kernel in `layout` ([C_out, C_in, 1, 1] or [1, 1, C_in, C_out]). */
export function isPointwise(shape: readonly number[], layout: ConvLayout = 'oihw'): boolean {
  if (shape.length !== 4) return false;
  return layout === 'hwio' ? shape[0] === 1 && shape[1] === 1 : shape[2] === 1 && shape[3] === 1;
}

/**
 * True when `tile` is what planning gives a tensor of `shape` from a checkpoint whose convolutions use `layout`
 * (`tileFor(shape, layout, pointwise)` under either pointwise layout), or what it gave before convolution layouts
 * existed (`tileFor(shape)`, all 'oihw'): the artifact reader's check that a layer's tile fits its shape.
 */
export function tileMatches(tile: TileSpec, shape: readonly number[], layout: ConvLayout = 'oihw'): boolean {
  const same = (t: TileSpec | undefined): boolean => {
    if (t === undefined || t.kind !== tile.kind) return false;
    if (t.kind === 'conv') return tile.kind === 'conv' && t.k === tile.k && t.layout === tile.layout;
    return tile.kind === 'tiled' && t.rows === tile.rows && t.cols === tile.cols;
  };
  return same(tileFor(shape, layout)) || same(tileFor(shape, layout, 'blocks')) || same(tileFor(shape));
}

/** The [C_out, C_in, k, k] kernel-layer shape the predictor sees for `tile` of a tensor of `shape`. */
export function kernelShape(tile: TileSpec, shape: readonly number[]): [number, number, number, number] {
  if (tile.kind === 'conv') {
    return tile.layout === 'hwio'
      ? [shape[3] ?? 0, shape[2] ?? 0, tile.k, tile.k]
      : [shape[0] ?? 0, shape[1] ?? 0, tile.k, tile.k];
  }
  return [Math.ceil(tile.rows / BLOCK), Math.ceil(tile.cols / BLOCK), BLOCK, BLOCK];
}

/**
 * Row-major [C_out, C_in, kh, kw] values of a row-major [kh, kw, C_in, C_out] kernel `values` (element
 * (y, x, i, o) moves to (o, i, y, x)). `hwio` is the source shape; `values.length` must equal its product.
 */
export function hwioToOihw(values: Float32Array, hwio: readonly number[]): Float32Array {
  const [kh = 0, kw = 0, cin = 0, cout = 0] = hwio;
  if (values.length !== kh * kw * cin * cout)
    throw new RangeError(`${values.length} values do not fill a [${hwio.join(', ')}] kernel`);
  const out = new Float32Array(values.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < cin; i++) {
        const src = ((y * kw + x) * cin + i) * cout;
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + y) * kw + x] = values[src + o] ?? 0;
      }
    }
  }
  return out;
}

/** Inverse of `hwioToOihw`: row-major [kh, kw, C_in, C_out] values of [C_out, C_in, kh, kw] `values`. */
export function oihwToHwio(values: Float32Array, hwio: readonly number[]): Float32Array {
  const [kh = 0, kw = 0, cin = 0, cout = 0] = hwio;
  if (values.length !== kh * kw * cin * cout)
    throw new RangeError(`${values.length} values do not fill a [${hwio.join(', ')}] kernel`);
  const out = new Float32Array(values.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < cin; i++) {
        const dst = ((y * kw + x) * cin + i) * cout;
        for (let o = 0; o < cout; o++) out[dst + o] = values[((o * cin + i) * kh + y) * kw + x] ?? 0;
      }
    }
  }
  return out;
}

/**
 * Kernel-layer values (row-major [C_out, C_in, k, k]) of the row-major `values` of a tensor of `shape`: an 'oihw'
 * conv as is (the same array), an 'hwio' conv transposed, a tile cut into zero-padded blocks.
 */
export function toKernels(values: Float32Array, tile: TileSpec, shape: readonly number[]): Float32Array {
  if (tile.kind === 'conv') return tile.layout === 'hwio' ? hwioToOihw(values, shape) : values;
  const { rows, cols } = tile;
  const rb = Math.ceil(rows / BLOCK);
  const cb = Math.ceil(cols / BLOCK);
  const out = new Float32Array(rb * cb * BLOCK * BLOCK);
  for (let r = 0; r < rows; r++) {
    const i = (r / BLOCK) | 0;
    const y = r - i * BLOCK;
    for (let c = 0; c < cols; c++) {
      const j = (c / BLOCK) | 0;
      out[((i * cb + j) * BLOCK + y) * BLOCK + (c - j * BLOCK)] = values[r * cols + c] ?? 0;
    }
  }
  return out;
}

/**
 * Inverse of `toKernels`: the row-major values of a tensor of `shape`, in its own layout, from kernel-layer values
 * (padding dropped).
 */
export function fromKernels(kernels: Float32Array, tile: TileSpec, shape: readonly number[]): Float32Array {
  if (tile.kind === 'conv') return tile.layout === 'hwio' ? oihwToHwio(kernels, shape) : kernels;
  const { rows, cols } = tile;
  const cb = Math.ceil(cols / BLOCK);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const i = (r / BLOCK) | 0;
    const y = r - i * BLOCK;
    for (let c = 0; c < cols; c++) {
      const j = (c / BLOCK) | 0;
      out[r * cols + c] = kernels[((i * cb + j) * BLOCK + y) * BLOCK + (c - j * BLOCK)] ?? 0;
    }
  }
  return out;
}
