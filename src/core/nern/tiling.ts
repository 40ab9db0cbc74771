/**
 * Beyond NeRN: how any weight tensor of rank ≥ 2 becomes a grid of 3×3 "kernels" the same predictor can regenerate.
 * 3×3 and 1×1 convolutions pass through unchanged (NeRN's scope). Every other tensor (dense / transformer matrices,
 * convolutions with other kernel sizes, 1-D convolutions) is viewed as a matrix [rows = shape[0], cols = product of
 * the rest] and cut into 3×3 blocks, zero-padded at the right and bottom edges: block (i, j) is the kernel at filter
 * i, input channel j of a [⌈rows/3⌉, ⌈cols/3⌉, 3, 3] layer. This reuses the 9-output predictor, the coordinate
 * encoding, the permutations and the artifact layout exactly, so one predictor serves convolutions and matrices
 * together; blocks keep 2-D locality (neighbouring rows and columns), which is what the smoothness permutation and the
 * coordinate encoding exploit. The padding costs at most two rows and two columns of zeros per matrix.
 */

/** How one represented tensor maps onto predictor kernels. */
export type TileSpec =
  /** A [C_out, C_in, k, k] convolution, k ∈ {1, 3}, taken as is. */
  | { kind: 'conv'; k: 1 | 3 }
  /** The tensor viewed as a row-major [rows, cols] matrix and cut into zero-padded 3×3 blocks. */
  | { kind: 'tiled'; rows: number; cols: number };

/** Side of a tile block (the predictor's kernel side). */
export const BLOCK = 3;

/**
 * The tile layout of a tensor of `shape`: conv for [C_out, C_in, 3, 3] and [C_out, C_in, 1, 1]; tiled for any other
 * tensor of rank ≥ 2; undefined for scalars and vectors (nothing to tile).
 */
export function tileFor(shape: readonly number[]): TileSpec | undefined {
  if (shape.length < 2 || shape.some((d) => !(d >= 1))) return undefined;
  const [a = 0, b = 0, kh = 0, kw = 0] = shape;
  if (shape.length === 4 && kh === kw && (kh === 3 || kh === 1) && a >= 1 && b >= 1) return { kind: 'conv', k: kh };
  const rows = a;
  const cols = shape.slice(1).reduce((n, d) => n * d, 1);
  return { kind: 'tiled', rows, cols };
}

/** True when `tile` is exactly what `tileFor(shape)` gives (used to validate artifacts). */
export function tileMatches(tile: TileSpec, shape: readonly number[]): boolean {
  const expected = tileFor(shape);
  if (expected === undefined || expected.kind !== tile.kind) return false;
  if (expected.kind === 'conv') return tile.kind === 'conv' && expected.k === tile.k;
  return tile.kind === 'tiled' && expected.rows === tile.rows && expected.cols === tile.cols;
}

/** The [C_out, C_in, k, k] kernel-layer shape the predictor sees for `tile` of a tensor of `shape`. */
export function kernelShape(tile: TileSpec, shape: readonly number[]): [number, number, number, number] {
  if (tile.kind === 'conv') return [shape[0] ?? 0, shape[1] ?? 0, tile.k, tile.k];
  return [Math.ceil(tile.rows / BLOCK), Math.ceil(tile.cols / BLOCK), BLOCK, BLOCK];
}

/** Kernel-layer values (row-major [C_out, C_in, k, k]) of a tensor's row-major `values`; zero padding for tiles. */
export function toKernels(values: Float32Array, tile: TileSpec): Float32Array {
  if (tile.kind === 'conv') return values;
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

/** Inverse of `toKernels`: the tensor's row-major values from kernel-layer values (padding dropped). */
export function fromKernels(kernels: Float32Array, tile: TileSpec): Float32Array {
  if (tile.kind === 'conv') return kernels;
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
