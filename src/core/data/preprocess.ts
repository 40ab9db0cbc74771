/**
 * Image preprocessing as pure functions on NHWC float32 batches with explicit shapes: scale, per-channel
 * normalisation, padding, centre crop, bilinear resize (TensorFlow's `half_pixel_centers=True`,
 * `align_corners=False` convention, no antialiasing) and NHWC ↔ NCHW layout. Also parses the per-model sidecar
 * `<model>.weightlens.json` that says which of these a model expects, and applies it in one stated order
 * (`PREPROCESS_ORDER` in src/protocol/evaluate.ts): scale → mean/std → pad → centre crop → resize → layout. Padding
 * therefore adds zeros in the normalised space, and a resize happens only when it is asked for.
 */
import { CheckpointFormatError } from '../io/errors';

/** An NHWC batch: `data.length === n * h * w * c`. */
export interface ImageBatch {
  readonly data: Float32Array;
  readonly n: number;
  readonly h: number;
  readonly w: number;
  readonly c: number;
}

function check(batch: ImageBatch): void {
  const { n, h, w, c } = batch;
  if (![n, h, w, c].every((d) => Number.isSafeInteger(d) && d >= 0) || batch.data.length !== n * h * w * c) {
    throw new RangeError(`batch of ${batch.data.length} values does not match shape [${n}, ${h}, ${w}, ${c}]`);
  }
}

/** Multiplies every value by `factor` (e.g. 1/255). */
export function scale(batch: ImageBatch, factor: number): ImageBatch {
  check(batch);
  return { ...batch, data: batch.data.map((v) => v * factor) };
}

/** (x − mean[c]) / std[c] per channel; `mean`/`std` have 1 or `c` entries; std entries must be non-zero. */
export function normalize(batch: ImageBatch, mean: readonly number[], std: readonly number[]): ImageBatch {
  check(batch);
  const { c } = batch;
  for (const [label, list] of [
    ['mean', mean],
    ['std', std],
  ] as const) {
    if (list.length !== 1 && list.length !== c)
      throw new RangeError(`${label} has ${list.length} entries; expected 1 or ${c}`);
  }
  if (std.some((s) => s === 0)) throw new RangeError('std entries must be non-zero');
  const out = new Float32Array(batch.data.length);
  for (let i = 0; i < out.length; i++) {
    const ch = i % c;
    out[i] = ((batch.data[i] ?? 0) - (mean[mean.length === 1 ? 0 : ch] ?? 0)) / (std[std.length === 1 ? 0 : ch] ?? 1);
  }
  return { ...batch, data: out };
}

/** Pads each image with `value`: `top`, `bottom`, `left`, `right` pixels (all ≥ 0). */
export function pad(
  batch: ImageBatch,
  top: number,
  bottom: number,
  left: number,
  right: number,
  value = 0,
): ImageBatch {
  check(batch);
  const { n, h, w, c } = batch;
  const oh = h + top + bottom;
  const ow = w + left + right;
  const out = new Float32Array(n * oh * ow * c).fill(value);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      const src = (b * h + y) * w * c;
      const dst = ((b * oh + y + top) * ow + left) * c;
      out.set(batch.data.subarray(src, src + w * c), dst);
    }
  }
  return { data: out, n, h: oh, w: ow, c };
}

/** Crops the central `height`×`width` window (offsets floor((H − height)/2), floor((W − width)/2)). */
export function centreCrop(batch: ImageBatch, height: number, width: number): ImageBatch {
  check(batch);
  const { n, h, w, c } = batch;
  if (height > h || width > w || height < 1 || width < 1)
    throw new RangeError(`cannot crop ${height}×${width} from ${h}×${w}`);
  const top = Math.floor((h - height) / 2);
  const left = Math.floor((w - width) / 2);
  const out = new Float32Array(n * height * width * c);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < height; y++) {
      const src = ((b * h + y + top) * w + left) * c;
      out.set(batch.data.subarray(src, src + width * c), (b * height + y) * width * c);
    }
  }
  return { data: out, n, h: height, w: width, c };
}

/** Source index, lower/upper neighbours and weight of the upper one, for each output coordinate (half-pixel). */
function weights(inSize: number, outSize: number): { lo: Int32Array; hi: Int32Array; t: Float32Array } {
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const t = new Float32Array(outSize);
  const ratio = inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    const src = (i + 0.5) * ratio - 0.5;
    const f = Math.floor(src);
    lo[i] = Math.max(f, 0);
    hi[i] = Math.min(Math.ceil(src), inSize - 1);
    t[i] = src - f;
  }
  return { lo, hi, t };
}

/**
 * Bilinear resize to `height`×`width` with half-pixel centres (source coordinate (i + 0.5)·in/out − 0.5, neighbours
 * clamped to the image), as `tf.image.resize(..., 'bilinear')` and PyTorch `interpolate(align_corners=False)`.
 */
export function resizeBilinear(batch: ImageBatch, height: number, width: number): ImageBatch {
  check(batch);
  const { n, h, w, c, data } = batch;
  if (height < 1 || width < 1 || h < 1 || w < 1) throw new RangeError(`cannot resize ${h}×${w} to ${height}×${width}`);
  const ys = weights(h, height);
  const xs = weights(w, width);
  const out = new Float32Array(n * height * width * c);
  let at = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < height; oy++) {
      const y0 = (b * h + (ys.lo[oy] ?? 0)) * w;
      const y1 = (b * h + (ys.hi[oy] ?? 0)) * w;
      const ty = ys.t[oy] ?? 0;
      for (let ox = 0; ox < width; ox++) {
        const x0 = xs.lo[ox] ?? 0;
        const x1 = xs.hi[ox] ?? 0;
        const tx = xs.t[ox] ?? 0;
        for (let ch = 0; ch < c; ch++) {
          const a = data[(y0 + x0) * c + ch] ?? 0;
          const bb = data[(y0 + x1) * c + ch] ?? 0;
          const cc = data[(y1 + x0) * c + ch] ?? 0;
          const d = data[(y1 + x1) * c + ch] ?? 0;
          const top = a + (bb - a) * tx;
          const bottom = cc + (d - cc) * tx;
          out[at++] = top + (bottom - top) * ty;
        }
      }
    }
  }
  return { data: out, n, h: height, w: width, c };
}

/** NHWC → NCHW values (same n, h, w, c; only the memory order changes). */
export function toNCHW(batch: ImageBatch): Float32Array {
  check(batch);
  const { n, h, w, c, data } = batch;
  const out = new Float32Array(data.length);
  const plane = h * w;
  for (let b = 0; b < n; b++)
    for (let p = 0; p < plane; p++)
      for (let ch = 0; ch < c; ch++) out[(b * c + ch) * plane + p] = data[(b * plane + p) * c + ch] ?? 0;
  return out;
}

/** NCHW values of shape [n, c, h, w] → an NHWC batch. */
export function fromNCHW(data: Float32Array, n: number, c: number, h: number, w: number): ImageBatch {
  if (data.length !== n * c * h * w)
    throw new RangeError(`${data.length} values do not match NCHW [${n}, ${c}, ${h}, ${w}]`);
  const out = new Float32Array(data.length);
  const plane = h * w;
  for (let b = 0; b < n; b++)
    for (let p = 0; p < plane; p++)
      for (let ch = 0; ch < c; ch++) out[(b * plane + p) * c + ch] = data[(b * c + ch) * plane + p] ?? 0;
  return { data: out, n, h, w, c };
}

/** What a model expects, from `<model>.weightlens.json`. Absent fields mean "leave as is". */
export interface PreprocessSpec {
  /** Multiplier applied to raw values, e.g. 1/255 (0.00392…). */
  readonly scale?: number;
  /** Per-channel (or single) mean subtracted after scaling. */
  readonly mean?: readonly number[];
  /** Per-channel (or single) standard deviation divided by after subtracting the mean; non-zero. */
  readonly std?: readonly number[];
  /** Pixels of zero padding: one number for all sides, or [top, bottom, left, right]. */
  readonly pad?: readonly [number, number, number, number];
  /** Bilinear resize target [height, width]. */
  readonly resize?: readonly [number, number];
  /** Centre crop [height, width], after padding (and before any resize). */
  readonly crop?: readonly [number, number];
  /** Memory layout the model takes: 'NHWC' (default) or 'NCHW'. */
  readonly layout: 'NHWC' | 'NCHW';
}

const SIDECAR_KEYS = new Set(['scale', 'mean', 'std', 'pad', 'resize', 'crop', 'layout']);

function numberList(
  name: string,
  key: string,
  value: unknown,
  lengths: readonly number[],
  integer: boolean,
  min: number,
): number[] {
  const list = typeof value === 'number' ? [value] : value;
  if (
    !Array.isArray(list) ||
    !lengths.includes(list.length) ||
    !list.every(
      (v): v is number => typeof v === 'number' && Number.isFinite(v) && v >= min && (!integer || Number.isInteger(v)),
    )
  ) {
    throw new CheckpointFormatError(
      `${name}: "${key}" must be ${lengths.map((l) => (l === 1 ? 'a number' : `a list of ${l} numbers`)).join(' or ')}${integer ? ` (whole numbers ≥ ${min})` : ''}, not ${JSON.stringify(value)}.`,
    );
  }
  return list;
}

/** Parses and validates a `<model>.weightlens.json` sidecar. Throws `CheckpointFormatError` naming the bad field. */
export function parsePreprocessSidecar(text: string, name = 'preprocessing sidecar'): PreprocessSpec {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CheckpointFormatError(
      `${name} is not valid JSON (${error instanceof Error ? error.message : String(error)}).`,
    );
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new CheckpointFormatError(`${name} must be a JSON object.`);
  const obj = json as Record<string, unknown>;
  const unknownKeys = Object.keys(obj).filter((k) => !SIDECAR_KEYS.has(k));
  if (unknownKeys.length > 0)
    throw new CheckpointFormatError(
      `${name} has unknown field(s) ${unknownKeys.map((k) => JSON.stringify(k)).join(', ')}; known: ${[...SIDECAR_KEYS].join(', ')}.`,
    );
  const spec: { -readonly [K in keyof PreprocessSpec]: PreprocessSpec[K] } = { layout: 'NHWC' };
  if (obj.scale !== undefined) {
    if (typeof obj.scale !== 'number' || !Number.isFinite(obj.scale) || obj.scale === 0)
      throw new CheckpointFormatError(
        `${name}: "scale" must be a finite non-zero number, not ${JSON.stringify(obj.scale)}.`,
      );
    spec.scale = obj.scale;
  }
  const channelLengths = [1, 2, 3, 4];
  if (obj.mean !== undefined) spec.mean = numberList(name, 'mean', obj.mean, channelLengths, false, -Infinity);
  if (obj.std !== undefined) {
    const std = numberList(name, 'std', obj.std, channelLengths, false, -Infinity);
    if (std.some((s) => s <= 0))
      throw new CheckpointFormatError(`${name}: "std" entries must be positive, not ${JSON.stringify(obj.std)}.`);
    spec.std = std;
  }
  if (obj.pad !== undefined) {
    const p = numberList(name, 'pad', obj.pad, [1, 4], true, 0);
    spec.pad =
      p.length === 1 ? [p[0] ?? 0, p[0] ?? 0, p[0] ?? 0, p[0] ?? 0] : [p[0] ?? 0, p[1] ?? 0, p[2] ?? 0, p[3] ?? 0];
  }
  for (const key of ['resize', 'crop'] as const) {
    if (obj[key] === undefined) continue;
    const r = numberList(name, key, obj[key], [2], true, 1);
    spec[key] = [r[0] ?? 1, r[1] ?? 1];
  }
  if (obj.layout !== undefined) {
    if (obj.layout !== 'NHWC' && obj.layout !== 'NCHW')
      throw new CheckpointFormatError(`${name}: "layout" must be "NHWC" or "NCHW", not ${JSON.stringify(obj.layout)}.`);
    spec.layout = obj.layout;
  }
  return spec;
}

/** Height, width and channels of an h×w×c image after `spec` (the same order as `applyPreprocessing`). */
export function preprocessedShape(h: number, w: number, c: number, spec: PreprocessSpec): [number, number, number] {
  let [oh, ow] = [h, w];
  if (spec.pad) [oh, ow] = [oh + spec.pad[0] + spec.pad[1], ow + spec.pad[2] + spec.pad[3]];
  if (spec.crop) [oh, ow] = [spec.crop[0], spec.crop[1]];
  if (spec.resize) [oh, ow] = [spec.resize[0], spec.resize[1]];
  return [oh, ow, c];
}

/**
 * Applies `spec` to an NHWC batch in the order scale → mean/std → pad → crop → resize, then returns the values in
 * the model's layout with the final shape ([n, h, w, c] for NHWC, [n, c, h, w] for NCHW).
 */
export function applyPreprocessing(
  batch: ImageBatch,
  spec: PreprocessSpec,
): { data: Float32Array; shape: [number, number, number, number] } {
  try {
    return applySpec(batch, spec);
  } catch (error) {
    // A sidecar that does not fit the data (3 means for 1 channel, a crop larger than the image) is a user error.
    if (error instanceof RangeError)
      throw new CheckpointFormatError(`preprocessing does not fit the data: ${error.message}.`);
    throw error;
  }
}

function applySpec(
  batch: ImageBatch,
  spec: PreprocessSpec,
): { data: Float32Array; shape: [number, number, number, number] } {
  let b = batch;
  if (spec.scale !== undefined) b = scale(b, spec.scale);
  if (spec.mean || spec.std) b = normalize(b, spec.mean ?? [0], spec.std ?? [1]);
  if (spec.pad) b = pad(b, spec.pad[0], spec.pad[1], spec.pad[2], spec.pad[3]);
  if (spec.crop) b = centreCrop(b, spec.crop[0], spec.crop[1]);
  if (spec.resize) b = resizeBilinear(b, spec.resize[0], spec.resize[1]);
  return spec.layout === 'NCHW'
    ? { data: toNCHW(b), shape: [b.n, b.c, b.h, b.w] }
    : { data: b.data, shape: [b.n, b.h, b.w, b.c] };
}
