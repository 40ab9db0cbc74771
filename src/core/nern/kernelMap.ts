/**
 * The mapping between a model's represented convolution layers and the predictor's coordinate grid: which layers are
 * represented, each layer's permutation (which kernel sits at which grid position) and output scale. Everything a
 * decoder needs besides the predictor weights, so it is what an artifact stores. Also turns original weights into
 * grid-ordered training targets, and grid-ordered predictions back into the original [C_out, C_in, k, k] layout.
 */
import { CheckpointFormatError, throwIfAborted } from '../io/errors';
import { encodeRows, encodingWidth, gridOffsets, NERN_ENCODING, type EncodingSpec, type GridShape } from './encoding';
import { computePermutation, isPermutation, type PermutationKind } from './permutation';
import { Predictor, type PredictorWeights } from './predictor';

/** One represented convolution: row-major [C_out, C_in, k, k] float32 values, k ∈ {1, 3}. */
export interface KernelLayer {
  name: string;
  shape: readonly number[];
  values: Float32Array;
}

/** A represented layer's identity in a layout (no values). */
export interface MappedLayer {
  name: string;
  /** [C_out, C_in, k, k], k ∈ {1, 3}. */
  shape: [number, number, number, number];
}

/** How predictor outputs are scaled back to weights: per layer (the layer's weight RMS) or not at all. */
export type OutputScaleMode = 'layer' | 'none';

/**
 * Everything besides the predictor weights that decoding needs. Invariants: `permutations[l]` is a permutation of
 * 0…C_out·C_in−1 (kernel `perm[t]` gets grid position t); `outputScales[l] > 0` multiplies the predictor's output for
 * layer l; 1×1 layers take the centre (index 4) of the predicted 3×3.
 */
export interface KernelMap {
  encoding: EncodingSpec;
  layers: MappedLayer[];
  permutations: Int32Array[];
  outputScales: Float32Array;
}

/** Predictor outputs per kernel (a 3×3 kernel). */
export const KERNEL_OUTPUTS = 9;
/** Index of the centre of a 3×3 kernel: what a 1×1 convolution takes. */
export const CENTRE = 4;

/** Checks that `layers` are representable (3×3 or 1×1 convs, sizes consistent, finite values); throws otherwise. */
export function validateLayers(layers: readonly KernelLayer[]): MappedLayer[] {
  if (layers.length === 0) throw new CheckpointFormatError('There are no 3×3 or 1×1 convolution layers to represent.');
  return layers.map((layer) => {
    const s = layer.shape;
    const [cout, cin, kh, kw] = [s[0] ?? 0, s[1] ?? 0, s[2] ?? 0, s[3] ?? 0];
    if (s.length !== 4 || kh !== kw || (kh !== 3 && kh !== 1) || !(cout >= 1) || !(cin >= 1)) {
      throw new CheckpointFormatError(
        `Layer ${layer.name} has shape [${s.join(', ')}]; only [C_out, C_in, 3, 3] and [C_out, C_in, 1, 1] convolutions can be represented.`,
      );
    }
    if (layer.values.length !== cout * cin * kh * kw) {
      throw new CheckpointFormatError(
        `Layer ${layer.name} has ${layer.values.length} values but its shape [${s.join(', ')}] needs ${cout * cin * kh * kw}.`,
      );
    }
    for (let i = 0; i < layer.values.length; i++) {
      if (!Number.isFinite(layer.values[i])) {
        throw new CheckpointFormatError(`Layer ${layer.name} has a non-finite weight at index ${i}.`);
      }
    }
    return { name: layer.name, shape: [cout, cin, kh, kw] };
  });
}

/** Grid shapes (C_out × C_in per layer) of a layout. */
export function gridShapes(layout: { layers: readonly MappedLayer[] }): GridShape[] {
  return layout.layers.map(({ shape }) => ({ cout: shape[0], cin: shape[1] }));
}

/** Root mean square of a float array (float64 accumulation); 0 for an empty array. */
export function rms(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i] ?? 0;
    s += x * x;
  }
  return values.length === 0 ? 0 : Math.sqrt(s / values.length);
}

/**
 * Largest layer (in kernels) that gets an O(N²) crossfilter chain: 16,384² pair scores take about a second. Bigger
 * layers (ResNet-18's 512×512 convs would take hours) use infilter, which costs C_out·C_in² + C_out²·C_in.
 */
export const MAX_CROSSFILTER_KERNELS = 16_384;

/** The permutation actually used for a layer of C_out × C_in kernels when `kind` is asked for. */
export function permutationKindFor(kind: PermutationKind, cout: number, cin: number): PermutationKind {
  return kind === 'crossfilter' && cout * cin > MAX_CROSSFILTER_KERNELS ? 'infilter' : kind;
}

/** Permutation of one (validated) layer; 1×1 layers use their single weight per kernel. */
export function layerPermutation(layer: KernelLayer, kind: PermutationKind): Int32Array {
  const [cout = 0, cin = 0, k = 0] = layer.shape;
  return computePermutation(permutationKindFor(kind, cout, cin), layer.values, cout, cin, k * k);
}

/**
 * Builds the layout: validates the layers, computes each layer's permutation of `kind` (unless `permutations` are
 * given, e.g. computed asynchronously by the caller), and the output scale (the layer's weight RMS for 'layer', else 1).
 */
export function buildKernelMap(
  layers: readonly KernelLayer[],
  kind: PermutationKind,
  scaleMode: OutputScaleMode,
  encoding: EncodingSpec = NERN_ENCODING,
  permutations?: Int32Array[],
): KernelMap {
  const described = validateLayers(layers);
  const perms = permutations ?? layers.map((layer) => layerPermutation(layer, kind));
  const outputScales = new Float32Array(layers.length);
  layers.forEach((layer, l) => {
    const r = scaleMode === 'layer' ? rms(layer.values) : 1;
    outputScales[l] = r > 0 ? r : 1;
  });
  const layout = { encoding: { ...encoding }, layers: described, permutations: perms, outputScales };
  checkKernelMap(layout);
  return layout;
}

/** Checks a layout's internal consistency (e.g. one read from an artifact); throws CheckpointFormatError. */
export function checkKernelMap(layout: KernelMap): void {
  if (layout.permutations.length !== layout.layers.length || layout.outputScales.length !== layout.layers.length) {
    throw new CheckpointFormatError(
      `The NeRN layout lists ${layout.layers.length} layers but ${layout.permutations.length} permutations and ${layout.outputScales.length} scales.`,
    );
  }
  layout.layers.forEach((layer, l) => {
    const n = layer.shape[0] * layer.shape[1];
    if (!isPermutation(layout.permutations[l] ?? [], n)) {
      throw new CheckpointFormatError(
        `The NeRN permutation of layer ${layer.name} is not a permutation of its ${n} kernels.`,
      );
    }
    const s = layout.outputScales[l] ?? 0;
    if (!(s > 0) || !Number.isFinite(s))
      throw new CheckpointFormatError(`The NeRN output scale of layer ${layer.name} is ${s}.`);
  });
}

/** Training targets in grid order. */
export interface GridTargets {
  /** Rows in the grid (Σ C_out·C_in). */
  rows: number;
  /** Row-major [rows, 9]: the kernel at each grid position (1×1 kernels in the centre, other entries 0). */
  targets: Float32Array;
  /** Per row: the layer's output scale. */
  rowScale: Float32Array;
  /** Per row: layer index. */
  rowLayer: Uint16Array | Uint32Array;
  /** Per row: represented weights (9 for 3×3, 1 for 1×1). */
  rowWeights: Uint8Array;
  /** Row-major [rows, 9] 0/1 mask of represented entries, or null when every layer is 3×3. */
  mask: Float32Array | null;
  /** Per row: L2 norm of the original kernel (for norm-proportional sampling). */
  norms: Float32Array;
}

/** Arranges the original kernels in grid order (kernel perm[t] at row t of its layer). */
export function gridTargets(layers: readonly KernelLayer[], layout: KernelMap): GridTargets {
  const rows = layout.layers.reduce((n, { shape }) => n + shape[0] * shape[1], 0);
  const targets = new Float32Array(rows * KERNEL_OUTPUTS);
  const rowScale = new Float32Array(rows);
  const rowLayer = layout.layers.length < 65536 ? new Uint16Array(rows) : new Uint32Array(rows);
  const rowWeights = new Uint8Array(rows);
  const norms = new Float32Array(rows);
  const hasPointwise = layout.layers.some(({ shape }) => shape[2] === 1);
  const mask = hasPointwise ? new Float32Array(rows * KERNEL_OUTPUTS) : null;
  let row = 0;
  layout.layers.forEach(({ shape }, l) => {
    const values = layers[l]?.values;
    const perm = layout.permutations[l];
    if (values === undefined || perm === undefined)
      throw new RangeError(`layout layer ${l} has no values or permutation`);
    const k = shape[2] * shape[3];
    const n = shape[0] * shape[1];
    const scale = layout.outputScales[l] ?? 1;
    for (let t = 0; t < n; t++, row++) {
      const kernel = perm[t] ?? 0;
      rowScale[row] = scale;
      rowLayer[row] = l;
      rowWeights[row] = k;
      let s = 0;
      if (k === KERNEL_OUTPUTS) {
        for (let j = 0; j < KERNEL_OUTPUTS; j++) {
          const x = values[kernel * KERNEL_OUTPUTS + j] ?? 0;
          targets[row * KERNEL_OUTPUTS + j] = x;
          s += x * x;
          if (mask) mask[row * KERNEL_OUTPUTS + j] = 1;
        }
      } else {
        const x = values[kernel] ?? 0;
        targets[row * KERNEL_OUTPUTS + CENTRE] = x;
        s = x * x;
        if (mask) mask[row * KERNEL_OUTPUTS + CENTRE] = 1;
      }
      norms[row] = Math.sqrt(s);
    }
  });
  return { rows, targets, rowScale, rowLayer, rowWeights, mask, norms };
}

/**
 * Turns grid-ordered predictor outputs ([rows, 9], before output scaling) into per-layer weights in the
 * original [C_out, C_in, k, k] layout: applies each layer's output scale, undoes the permutation, and takes the
 * centre for 1×1 layers.
 */
export function assembleLayers(predictions: Float32Array, layout: KernelMap): Float32Array[] {
  let row = 0;
  return layout.layers.map(({ shape }, l) => {
    const [cout, cin, kh, kw] = shape;
    const k = kh * kw;
    const n = cout * cin;
    const perm = layout.permutations[l] ?? new Int32Array(0);
    const scale = layout.outputScales[l] ?? 1;
    const out = new Float32Array(n * k);
    for (let t = 0; t < n; t++, row++) {
      const kernel = perm[t] ?? 0;
      if (k === KERNEL_OUTPUTS) {
        for (let j = 0; j < KERNEL_OUTPUTS; j++) {
          out[kernel * KERNEL_OUTPUTS + j] = (predictions[row * KERNEL_OUTPUTS + j] ?? 0) * scale;
        }
      } else {
        out[kernel] = (predictions[row * KERNEL_OUTPUTS + CENTRE] ?? 0) * scale;
      }
    }
    return out;
  });
}

/**
 * The grid rows of `layout` encoded `chunk` at a time, in order: each item is the first row, the row count and their
 * encodings (a buffer reused between items). Checks first that a predictor of `spec` fits the layout.
 */
function* encodedGridChunks(
  spec: { readonly inputs: number; readonly outputs: number },
  layout: KernelMap,
  chunk: number,
): Generator<{ start: number; rows: number; total: number; encodings: Float32Array }> {
  const shapes = gridShapes(layout);
  const total = shapes.reduce((n, s) => n + s.cout * s.cin, 0);
  const width = encodingWidth(layout.encoding);
  if (spec.inputs !== width || spec.outputs !== KERNEL_OUTPUTS) {
    throw new CheckpointFormatError(
      `The predictor takes ${spec.inputs} inputs and gives ${spec.outputs} outputs; the layout needs ${width} and ${KERNEL_OUTPUTS}.`,
    );
  }
  const ids = new Int32Array(Math.min(chunk, total));
  const enc = new Float32Array(ids.length * width);
  for (let start = 0; start < total; start += chunk) {
    const n = Math.min(chunk, total - start);
    for (let i = 0; i < n; i++) ids[i] = start + i;
    encodeRows(shapes, ids.subarray(0, n), enc, layout.encoding);
    yield { start, rows: n, total, encodings: enc.subarray(0, n * width) };
  }
}

/** Grid rows of `layout`: Σ C_out·C_in over its layers. */
function gridRowCount(layout: KernelMap): number {
  return gridShapes(layout).reduce((n, s) => n + s.cout * s.cin, 0);
}

/**
 * Predicts every grid row of `layout` with `predictor` ([rows, 9], unscaled), encoding `chunk` rows at a time so memory
 * stays bounded for any model size. Needs an initialised tfjs backend; leaks no tensors.
 */
export function predictGrid(predictor: Predictor, layout: KernelMap, chunk = 8192): Float32Array {
  const out = new Float32Array(gridRowCount(layout) * KERNEL_OUTPUTS);
  for (const c of encodedGridChunks(predictor.spec, layout, chunk))
    out.set(predictor.predict(c.encodings, chunk), c.start * KERNEL_OUTPUTS);
  return out;
}

/** Options of the asynchronous whole-grid predictions. */
export interface GridPredictionOptions {
  /** Rows encoded and predicted at a time (default 8,192). */
  chunk?: number;
  /** Seen between chunks: rejects with CancelledError. */
  signal?: AbortSignal;
  /** Rows predicted so far, after each chunk. */
  onRows?: (done: number, total: number) => void;
}

/**
 * Every grid row of `layout` predicted by `forward` ([rows, 9] unscaled predictions of row-major [rows, inputs]
 * encodings) for a predictor of `spec`, `chunk` rows at a time, with the event loop let in between chunks: a cancel
 * (`signal`) is seen within one chunk and rejects with CancelledError; `onRows(done, total)` follows the rows.
 */
export async function predictGridWith(
  spec: { readonly inputs: number; readonly outputs: number },
  layout: KernelMap,
  forward: (encodings: Float32Array) => Promise<Float32Array>,
  options: GridPredictionOptions = {},
): Promise<Float32Array> {
  const chunk = options.chunk ?? 8192;
  const out = new Float32Array(gridRowCount(layout) * KERNEL_OUTPUTS);
  for (const c of encodedGridChunks(spec, layout, chunk)) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    throwIfAborted(options.signal);
    out.set(await forward(c.encodings), c.start * KERNEL_OUTPUTS);
    options.onRows?.(c.start + c.rows, c.total);
  }
  return out;
}

/**
 * `predictGrid`, chunk by chunk with the event loop let in between (the same chunks, so the same values): a cancel
 * (`signal`) is seen within one chunk and rejects with CancelledError; `onRows(done, total)` follows the rows.
 */
export function predictGridAsync(
  predictor: Predictor,
  layout: KernelMap,
  options: GridPredictionOptions = {},
): Promise<Float32Array> {
  const chunk = options.chunk ?? 8192;
  return predictGridWith(
    predictor.spec,
    layout,
    (encodings) => Promise.resolve(predictor.predict(encodings, chunk)),
    options,
  );
}

/**
 * Decodes: regenerates every represented layer from predictor weights and a layout, in the original
 * [C_out, C_in, k, k] layout (one Float32Array per layout layer). Needs an initialised tfjs backend.
 */
export function reconstructLayers(weights: PredictorWeights, layout: KernelMap, chunk = 8192): Float32Array[] {
  checkKernelMap(layout);
  const predictor = Predictor.fromWeights(weights);
  try {
    return assembleLayers(predictGrid(predictor, layout, chunk), layout);
  } finally {
    predictor.dispose();
  }
}

/**
 * Decodes one layer: regenerates layout layer `l` alone (only its C_out·C_in grid rows are predicted, `chunk` rows at a
 * time), in the original [C_out, C_in, k, k] layout; the same values as `reconstructLayers(...)[l]` up to float
 * rounding. Needs an initialised tfjs backend; leaks no tensors. Throws RangeError when `l` is not a layer index.
 */
export function reconstructLayer(weights: PredictorWeights, layout: KernelMap, l: number, chunk = 8192): Float32Array {
  checkKernelMap(layout);
  const layer = layout.layers[l];
  if (!Number.isInteger(l) || layer === undefined)
    throw new RangeError(`layer ${l} is not one of the layout's ${layout.layers.length} layers`);
  const shapes = gridShapes(layout);
  const first = gridOffsets(shapes)[l] ?? 0;
  const [cout, cin, kh, kw] = layer.shape;
  const n = cout * cin;
  const k = kh * kw;
  const perm = layout.permutations[l] ?? new Int32Array(0);
  const scale = layout.outputScales[l] ?? 1;
  const width = encodingWidth(layout.encoding);
  const predictor = Predictor.fromWeights(weights);
  try {
    if (predictor.spec.inputs !== width || predictor.spec.outputs !== KERNEL_OUTPUTS) {
      throw new CheckpointFormatError(
        `The predictor takes ${predictor.spec.inputs} inputs and gives ${predictor.spec.outputs} outputs; the layout needs ${width} and ${KERNEL_OUTPUTS}.`,
      );
    }
    const out = new Float32Array(n * k);
    const ids = new Int32Array(Math.min(chunk, n));
    const enc = new Float32Array(ids.length * width);
    for (let start = 0; start < n; start += chunk) {
      const m = Math.min(chunk, n - start);
      for (let i = 0; i < m; i++) ids[i] = first + start + i;
      encodeRows(shapes, ids.subarray(0, m), enc, layout.encoding);
      const predictions = predictor.predict(enc.subarray(0, m * width), chunk);
      for (let i = 0; i < m; i++) {
        const kernel = perm[start + i] ?? 0;
        if (k === KERNEL_OUTPUTS) {
          for (let j = 0; j < KERNEL_OUTPUTS; j++)
            out[kernel * KERNEL_OUTPUTS + j] = (predictions[i * KERNEL_OUTPUTS + j] ?? 0) * scale;
        } else {
          out[kernel] = (predictions[i * KERNEL_OUTPUTS + CENTRE] ?? 0) * scale;
        }
      }
    }
    return out;
  } finally {
    predictor.dispose();
  }
}

/** Reconstruction error of one layer. */
export interface LayerError {
  name: string;
  /** RMSE between original and reconstructed represented weights. */
  rmse: number;
  /** RMS of the original weights (the error of predicting zeros). */
  weightRms: number;
  /** Represented weights in the layer. */
  weights: number;
}

/**
 * Per-layer errors from grid-ordered unscaled predictions ([rows, 9]) against the targets; the overall RMSE is over
 * all represented weights.
 */
export function layerErrors(
  predictions: Float32Array,
  grid: GridTargets,
  layout: KernelMap,
): { layers: LayerError[]; rmse: number; weightRms: number } {
  const L = layout.layers.length;
  const se = new Float64Array(L);
  const ss = new Float64Array(L);
  const count = new Float64Array(L);
  for (let r = 0; r < grid.rows; r++) {
    const l = grid.rowLayer[r] ?? 0;
    const s = grid.rowScale[r] ?? 1;
    const o = r * KERNEL_OUTPUTS;
    if ((grid.rowWeights[r] ?? 9) === KERNEL_OUTPUTS) {
      for (let j = 0; j < KERNEL_OUTPUTS; j++) {
        const t = grid.targets[o + j] ?? 0;
        const d = (predictions[o + j] ?? 0) * s - t;
        se[l] = (se[l] ?? 0) + d * d;
        ss[l] = (ss[l] ?? 0) + t * t;
      }
      count[l] = (count[l] ?? 0) + KERNEL_OUTPUTS;
    } else {
      const t = grid.targets[o + CENTRE] ?? 0;
      const d = (predictions[o + CENTRE] ?? 0) * s - t;
      se[l] = (se[l] ?? 0) + d * d;
      ss[l] = (ss[l] ?? 0) + t * t;
      count[l] = (count[l] ?? 0) + 1;
    }
  }
  let seAll = 0;
  let ssAll = 0;
  let nAll = 0;
  const layers = layout.layers.map(({ name }, l) => {
    const n = count[l] ?? 0;
    seAll += se[l] ?? 0;
    ssAll += ss[l] ?? 0;
    nAll += n;
    return {
      name,
      rmse: Math.sqrt((se[l] ?? 0) / Math.max(1, n)),
      weightRms: Math.sqrt((ss[l] ?? 0) / Math.max(1, n)),
      weights: n,
    };
  });
  return { layers, rmse: Math.sqrt(seAll / Math.max(1, nAll)), weightRms: Math.sqrt(ssAll / Math.max(1, nAll)) };
}
