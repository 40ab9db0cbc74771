/**
 * Kernel coordinates and NeRN's positional encoding. A kernel at grid position (layer l of L, filter f of C_out,
 * input channel c of C_in) has coordinate p = (l/L, f/C_out, c/C_in); grid positions are enumerated filter-major
 * (t = f·C_in + c). Each component is encoded as sin/cos of p·base^i·π for i = 0…levels−1, interleaved by level, the
 * three components one after another: 240 inputs for NeRN's base 0.76 and 40 levels.
 */

/** Parameters of the positional encoding; stored in artifacts so a decoder reproduces the inputs exactly. */
export interface EncodingSpec {
  /** Frequency ratio between consecutive levels (NeRN: 0.76, below 1, so frequencies fall from π). */
  base: number;
  /** Levels per coordinate component (NeRN: 40). */
  levels: number;
}

/** NeRN's encoding: base 0.76, 40 levels → 240 inputs. */
export const NERN_ENCODING: Readonly<EncodingSpec> = Object.freeze({ base: 0.76, levels: 40 });

/**
 * Weight Lens' default encoding: NeRN's layout and width (40 levels, 240 inputs, so the same predictor size), but with
 * frequencies *rising* from π to 1.15^39·π ≈ 233π instead of falling. Measured on a Fashion-MNIST ResNet-20 (h = 160,
 * Adam, 1,000 steps): RMSE 0.65 of the weight RMS against 0.98 with base 0.76 at the same settings; the smooth
 * encoding barely moves in 1,000 steps. Bases 1.1–1.3 all work (0.65–0.66); see bench/reference/nern_reference.py.
 */
export const FAST_ENCODING: Readonly<EncodingSpec> = Object.freeze({ base: 1.15, levels: 40 });

/** Number of coordinate components (layer, filter, channel). */
export const COORDINATE_COMPONENTS = 3;

/** Predictor input width for `spec`: 3 components × levels × (sin, cos). */
export function encodingWidth(spec: EncodingSpec = NERN_ENCODING): number {
  return COORDINATE_COMPONENTS * 2 * spec.levels;
}

/** The shape of one represented layer's kernel grid: C_out filters × C_in input channels. */
export interface GridShape {
  cout: number;
  cin: number;
}

/** Writes the 2·levels encoding values of one scalar component `p` into `out` at `offset`. */
export function encodeComponent(
  p: number,
  out: Float32Array,
  offset: number,
  spec: EncodingSpec = NERN_ENCODING,
): void {
  let scale = Math.PI;
  for (let i = 0; i < spec.levels; i++) {
    const x = p * scale;
    out[offset + 2 * i] = Math.sin(x);
    out[offset + 2 * i + 1] = Math.cos(x);
    scale *= spec.base;
  }
}

/** Encoding of one coordinate p = (p0, p1, p2) (each in [0, 1)), as a new Float32Array of `encodingWidth(spec)`. */
export function encodePoint(p0: number, p1: number, p2: number, spec: EncodingSpec = NERN_ENCODING): Float32Array {
  const block = 2 * spec.levels;
  const out = new Float32Array(3 * block);
  encodeComponent(p0, out, 0, spec);
  encodeComponent(p1, out, block, spec);
  encodeComponent(p2, out, 2 * block, spec);
  return out;
}

/** First global grid row of each layer, plus the total as the last element (length = layers + 1). */
export function gridOffsets(layers: readonly GridShape[]): number[] {
  const offsets = [0];
  let total = 0;
  for (const { cout, cin } of layers) {
    total += cout * cin;
    offsets.push(total);
  }
  return offsets;
}

/** Precomputed per-layer tables: the layer block, one block per filter, one block per channel. */
class LayerTables {
  readonly layer: Float32Array;
  readonly filters: Float32Array;
  readonly channels: Float32Array;
  constructor(l: number, count: number, shape: GridShape, spec: EncodingSpec) {
    const block = 2 * spec.levels;
    this.layer = new Float32Array(block);
    encodeComponent(l / count, this.layer, 0, spec);
    this.filters = new Float32Array(shape.cout * block);
    for (let f = 0; f < shape.cout; f++) encodeComponent(f / shape.cout, this.filters, f * block, spec);
    this.channels = new Float32Array(shape.cin * block);
    for (let c = 0; c < shape.cin; c++) encodeComponent(c / shape.cin, this.channels, c * block, spec);
  }
}

/**
 * Encodes every grid position of every layer, in order (layer-major, then filter-major): a row-major
 * [Σ C_out·C_in, encodingWidth] Float32Array. Row t of layer l is grid position t, i.e. the coordinate of the kernel
 * the permutation puts at step t.
 */
export function encodeGrid(layers: readonly GridShape[], spec: EncodingSpec = NERN_ENCODING): Float32Array {
  const offsets = gridOffsets(layers);
  const rows = offsets[offsets.length - 1] ?? 0;
  const width = encodingWidth(spec);
  const block = 2 * spec.levels;
  const out = new Float32Array(rows * width);
  layers.forEach((shape, l) => {
    const tables = new LayerTables(l, layers.length, shape, spec);
    let row = offsets[l] ?? 0;
    for (let f = 0; f < shape.cout; f++) {
      const filterBlock = tables.filters.subarray(f * block, (f + 1) * block);
      for (let c = 0; c < shape.cin; c++, row++) {
        const o = row * width;
        out.set(tables.layer, o);
        out.set(filterBlock, o + block);
        out.set(tables.channels.subarray(c * block, (c + 1) * block), o + 2 * block);
      }
    }
  });
  return out;
}

/**
 * Encodes selected global grid rows (indices into the concatenated grid of `layers`, each in [0, Σ C_out·C_in)) into
 * `out` (rows.length × encodingWidth). For grids too large to encode once; caches nothing across calls.
 */
export function encodeRows(
  layers: readonly GridShape[],
  rows: ArrayLike<number>,
  out: Float32Array,
  spec: EncodingSpec = NERN_ENCODING,
): Float32Array {
  const offsets = gridOffsets(layers);
  const width = encodingWidth(spec);
  const block = 2 * spec.levels;
  const total = offsets[offsets.length - 1] ?? 0;
  if (out.length < rows.length * width)
    throw new RangeError(`output holds ${out.length} values, ${rows.length * width} needed`);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] ?? -1;
    if (!(row >= 0 && row < total)) throw new RangeError(`grid row ${row} is outside the ${total} rows`);
    let lo = 0;
    let hi = layers.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((offsets[mid] ?? 0) <= row) lo = mid;
      else hi = mid - 1;
    }
    const shape = layers[lo];
    if (shape === undefined) throw new RangeError(`grid row ${row} has no layer`);
    const t = row - (offsets[lo] ?? 0);
    const f = Math.floor(t / shape.cin);
    const c = t - f * shape.cin;
    const o = i * width;
    encodeComponent(lo / layers.length, out, o, spec);
    encodeComponent(f / shape.cout, out, o + block, spec);
    encodeComponent(c / shape.cin, out, o + 2 * block, spec);
  }
  return out;
}
