/**
 * The original-vs-reconstructed view model of one represented layer: histograms over shared edges and one
 * output filter's kernels (the Reconstruction panel's detail card), computed from plain arrays.
 */
import type { LayerDetailDto } from '../../protocol/compress';
import { BadInputError } from '../io/errors';
import { hwioToOihw, kernelShape, toKernels, type ConvLayout, type TileSpec } from './tiling';
import { HistogramAccumulator } from '../tensors/stats';

/** Bins of the histograms in a `LayerDetailDto`. */
export const DETAIL_BINS = 64;

/** Most input channels (or column blocks) in a `LayerDetailDto` filter. */
export const DETAIL_MAX_CHANNELS = 64;

/**
 * The [C_out, C_in, kh, kw] filter grid a `LayerDetailDto` shows for a tensor of `shape`: rank-4 tensors as they are
 * (an 'hwio' one transposed), any other tensor as its tile's kernel grid (3-row blocks of 3×3 blocks).
 */
export function detailGrid(
  shape: readonly number[],
  tile: TileSpec,
  layout: ConvLayout = 'oihw',
): [number, number, number, number] {
  if (shape.length !== 4) return kernelShape(tile, shape);
  return layout === 'hwio'
    ? [shape[3] ?? 0, shape[2] ?? 0, shape[0] ?? 0, shape[1] ?? 0]
    : [shape[0] ?? 0, shape[1] ?? 0, shape[2] ?? 0, shape[3] ?? 0];
}

/** Throws a BadInputError unless `filter` is a whole number in 0…`count`−1 (`count` filters of layer `name`). */
export function checkFilterIndex(name: string, filter: number, count: number): void {
  if (!Number.isInteger(filter) || filter < 0 || filter >= count) {
    throw new BadInputError(
      count > 0
        ? `Filter ${filter} is out of range: layer ${name} has ${count} filter${count === 1 ? '' : 's'} (0–${count - 1}).`
        : `Layer ${name} has no filters to show.`,
    );
  }
}

/**
 * Original-vs-reconstructed summaries of one tensor: histograms over shared edges, and one output filter (or, for
 * tiled matrices, 3-row block), its first ≤ 64 input channels (column blocks): filter `filter` when given (a whole
 * number below the layer's filter count, else a BadInputError), otherwise the one with the largest squared
 * error. Rank-4 tensors are shown as [C_out, C_in, kh, kw] filters: `layout` 'hwio' ([kh, kw, C_in, C_out] kernels)
 * is transposed first.
 */
export function layerDetail(
  name: string,
  shape: readonly number[],
  tile: TileSpec,
  original: Float32Array,
  recon: Float32Array,
  bins = DETAIL_BINS,
  layout: ConvLayout = 'oihw',
  filter?: number,
): LayerDetailDto {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of [original, recon]) {
    for (const x of a) {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 0;
  }
  const ho = new HistogramAccumulator(lo, hi, bins);
  const hr = new HistogramAccumulator(lo, hi, bins);
  ho.add(original);
  hr.add(recon);
  const rank4 = shape.length === 4;
  const hwio = rank4 && layout === 'hwio';
  const [cout, cin, kh, kw] = detailGrid(shape, tile, layout);
  if (filter !== undefined) checkFilterIndex(name, filter, cout);
  const view = (a: Float32Array): Float32Array =>
    !rank4 ? toKernels(a, tile, shape) : hwio ? hwioToOihw(a, shape) : a;
  const o = view(original);
  const r = view(recon);
  const per = cin * kh * kw;
  let worst = filter ?? 0;
  let worstSe = -1;
  for (let f = 0; f < cout && filter === undefined; f++) {
    let se = 0;
    for (let i = f * per; i < (f + 1) * per; i++) se += ((o[i] ?? 0) - (r[i] ?? 0)) ** 2;
    if (se > worstSe) {
      worstSe = se;
      worst = f;
    }
  }
  const k = kh * kw;
  const channels = Math.min(cin, DETAIL_MAX_CHANNELS);
  const rows = (a: Float32Array): number[][] =>
    Array.from({ length: channels }, (_, c) => Array.from(a.subarray(worst * per + c * k, worst * per + (c + 1) * k)));
  return {
    name,
    original: ho.result(),
    reconstructed: hr.result(),
    filter: { index: worst, count: cout, kh, kw, original: rows(o), reconstructed: rows(r) },
  };
}
