/**
 * What a NeRN artifact costs in bytes, component by component, before it is written: the predictor at its stored
 * dtype, the packed permutations (format 4), the output scales, the verbatim tensors, and the header (safetensors
 * entries plus the `weight_lens` JSON, escaped as it is stored). The budget planner (budget.ts) searches widths
 * against it; the header is sized from a skeleton of the real metadata with every number the run has not produced
 * yet (errors, losses, the backend's name) at its longest, so the estimate is an upper bound on the written file.
 */
import type { ArtifactBytesDto } from '../../protocol/compress';
import type { PermutationKind, PredictorDtype, VerbatimDtype } from '../../protocol/vocabulary';
import { FileByteSource } from '../io/byteSource';
import { DTYPE_BYTES, isDType } from '../tensors/dtype';
import { leanVerbatimDtype, readHeader, SCALES_NAME } from './artifact';
import { narrowedBytes, scaleRows, storageDType, VERBATIM_SCALES_NAME, verbatimStorageFor } from './verbatimStorage';
import { FAST_ENCODING, type EncodingSpec } from './encoding';
import { layerShapes, nernPredictorSpec, predictorParameterCount } from './predictor';
import { blockedPermutationBytes, packedPermutationBytes, permutationBits } from './permutationCodec';
import { permutationKindFor } from './kernelMap';
import { kernelShape, type TileSpec } from './tiling';

/** How the artifact will be stored and how long the run is (the loss curve's length depends on it). */
export interface ArtifactStorageChoice {
  predictorDtype?: PredictorDtype;
  /** How float verbatim tensors are stored (verbatimStorage.ts); default f32 (each in its own dtype). */
  verbatimDtype?: VerbatimDtype;
  permutation?: PermutationKind;
  lean?: boolean;
  /** Training steps per round and rounds (default 1): bound the number of loss-curve points. */
  steps?: number;
  rounds?: number;
  /** The source checkpoint's file name, format and size in bytes, as the metadata records them. */
  sourceName?: string;
  sourceFormat?: string;
  sourceBytes?: number;
  seed?: number;
}

/** A tensor as the size model needs it: its name, shape, dtype, and whether (and how) it is represented. */
export interface SizedTensor {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly params: number;
  readonly represented: boolean;
  readonly tile?: TileSpec;
  readonly reason?: string;
}

/** Loss-curve points a compression stores at most (compress.ts samples at most this many, plus each round's last). */
const LOSS_POINTS = 500;
/** A JSON number of the greatest length a float64 takes (24 characters). */
const LONGEST_NUMBER = -1.2345678901234567e-100;
/** Longest backend name recorded in `training.backend` (`onnxruntime (native, 16 threads)` is 32), padded. */
const LONGEST_BACKEND = 'x'.repeat(40);

/** Bytes of the predictor's tensors at `dtype` (weights, int scales, F32 biases), and their names and shapes. */
function predictorTensors(
  hidden: number,
  width: number,
  dtype: PredictorDtype,
): { name: string; dtype: string; shape: number[]; bytes: number }[] {
  const out: { name: string; dtype: string; shape: number[]; bytes: number }[] = [];
  layerShapes(nernPredictorSpec(hidden, width, 9)).forEach(([fanIn, fanOut], i) => {
    const n = fanIn * fanOut;
    const name = `predictor.${i}.weight`;
    if (dtype === 'f16') out.push({ name, dtype: 'F16', shape: [fanIn, fanOut], bytes: 2 * n });
    else if (dtype === 'int8') out.push({ name, dtype: 'I8', shape: [fanIn, fanOut], bytes: n });
    else if (dtype === 'int4') out.push({ name, dtype: 'U8', shape: [Math.ceil(n / 2)], bytes: Math.ceil(n / 2) });
    else out.push({ name, dtype: 'F32', shape: [fanIn, fanOut], bytes: 4 * n });
    if (dtype === 'int8' || dtype === 'int4')
      out.push({ name: `predictor.${i}.weight_scale`, dtype: 'F32', shape: [fanOut], bytes: 4 * fanOut });
    out.push({ name: `predictor.${i}.bias`, dtype: 'F32', shape: [fanOut], bytes: 4 * fanOut });
  });
  return out;
}

/** Stored bytes of the predictor's data at width `hidden` (f32 4 B, f16 2 B, int8 1 B + scales, int4 ½ B + scales). */
export function predictorStoredBytes(hidden: number, width: number, dtype: PredictorDtype = 'f32'): number {
  return predictorTensors(hidden, width, dtype).reduce((n, t) => n + t.bytes, 0);
}

/**
 * The artifact's bytes at width `hidden` for `tensors` (checkpoint order) stored as `storage`: data per component,
 * and `metadata` = the 8-byte length prefix plus the padded safetensors header (tensor entries and `weight_lens`
 * JSON). An upper bound: deflated permutations and shorter numbers only make the file smaller.
 */
export function artifactBytesFor(
  tensors: readonly SizedTensor[],
  hidden: number,
  width: number,
  storage: ArtifactStorageChoice = {},
  encoding: EncodingSpec = FAST_ENCODING,
): ArtifactBytesDto {
  const dtype = storage.predictorDtype ?? 'f32';
  const choice = storage.verbatimDtype;
  const verbatimStorage = choice === 'f16' || choice === 'int8' ? choice : undefined;
  const verbatimEntries: { name: string; dtype: string; shape: number[]; bytes: number }[] = [];
  let int8Rows = 0;
  const entries: { name: string; dtype: string; shape: number[]; bytes: number }[] = predictorTensors(
    hidden,
    width,
    dtype,
  );
  const predictor = entries.reduce((n, t) => n + t.bytes, 0);
  const layers: Record<string, unknown>[] = [];
  const tensorList: Record<string, unknown>[] = [];
  const reportRows: Record<string, unknown>[] = [];
  const permutationList: Record<string, unknown>[] = [];
  let permutations = 0;
  let verbatim = 0;
  for (const t of tensors) {
    if (t.represented && t.tile !== undefined) {
      const ks = kernelShape(t.tile, t.shape);
      const n = ks[0] * ks[1];
      // As the writer chooses (permutationCodec.ts): nothing for the identity, filter blocks for infilter chains
      // (which crossfilter becomes on large layers), else packed; deflate only ever makes it smaller.
      const kind = permutationKindFor(storage.permutation ?? 'crossfilter', ks[0], ks[1]);
      const bytes =
        kind === 'none'
          ? 0
          : kind === 'infilter' && ks[0] > 1 && ks[1] > 1
            ? Math.min(packedPermutationBytes(n), blockedPermutationBytes(ks[0], ks[1]))
            : packedPermutationBytes(n);
      entries.push({ name: `layout.perm.${layers.length}`, dtype: 'U8', shape: [bytes], bytes });
      permutations += bytes;
      permutationList.push({ bits: permutationBits(n), coding: 'identity' });
      layers.push({ name: t.name, shape: t.shape, dtype: t.dtype, tile: t.tile, kernelShape: ks });
      tensorList.push(
        storage.lean === true
          ? { name: t.name, stored: 'represented' }
          : { name: t.name, dtype: t.dtype, shape: t.shape, stored: 'represented' },
      );
      reportRows.push({
        name: t.name,
        shape: t.shape,
        params: t.params,
        rmse: LONGEST_NUMBER,
        relativeError: LONGEST_NUMBER,
      });
    } else {
      // As the writer stores it (artifact.ts writeArtifact): narrowed per verbatimStorageFor, else its own dtype.
      const narrowed = verbatimStorageFor(t.dtype, verbatimStorage);
      const storedDtype = narrowed ? storageDType(narrowed) : isDType(t.dtype) ? t.dtype : 'F32';
      const bytes = narrowed ? narrowedBytes(narrowed, t.params) : t.params * DTYPE_BYTES[storedDtype];
      if (narrowed === 'int8') int8Rows += scaleRows(t.shape);
      verbatimEntries.push({ name: `verbatim.${t.name}`, dtype: storedDtype, shape: [...t.shape], bytes });
      verbatim += bytes;
      // Lean artifacts list a verbatim tensor by name alone when its stored dtype gives its dtype back, a narrowed
      // one by name and dtype (artifact.ts storedMeta).
      tensorList.push(
        storage.lean === true && t.dtype === leanVerbatimDtype(storedDtype, verbatimStorage)
          ? { name: t.name, stored: 'verbatim' }
          : storage.lean === true && narrowed !== undefined
            ? { name: t.name, stored: 'verbatim', dtype: t.dtype }
            : {
                name: t.name,
                dtype: t.dtype,
                shape: t.shape,
                stored: 'verbatim',
                storedDtype,
                ...(storage.lean === true ? {} : { reason: t.reason ?? '' }),
              },
      );
    }
  }
  const scales = 4 * layers.length;
  entries.push({ name: 'layout.scales', dtype: 'F32', shape: [layers.length], bytes: scales });
  if (int8Rows > 0) {
    entries.push({ name: VERBATIM_SCALES_NAME, dtype: 'F32', shape: [int8Rows], bytes: 4 * int8Rows });
    verbatim += 4 * int8Rows;
  }
  entries.push(...verbatimEntries);
  const data = predictor + permutations + scales + verbatim;
  const rounds = storage.rounds ?? 1;
  const steps = storage.steps ?? 2000;
  const every = Math.max(1, Math.ceil((steps * rounds) / LOSS_POINTS));
  // onProgress fires every `every` steps and at a round's last (or stopped) step.
  const points = rounds * Math.ceil(steps / every);
  const representedParams = tensors.reduce((n, t) => n + (t.represented ? t.params : 0), 0);
  const spec = nernPredictorSpec(hidden, width, 9);
  const meta = {
    format: 'weight-lens-nern',
    version: verbatimStorage !== undefined ? 5 : 4,
    ...(dtype !== 'f32' ? { predictorStorage: dtype } : {}),
    encoding: { base: encoding.base, levels: encoding.levels },
    predictor: spec,
    layers,
    tensors: tensorList,
    training: {
      hidden,
      steps: steps * rounds,
      seed: storage.seed ?? 4294967295,
      optimizer: 'ranger',
      permutation: storage.permutation ?? 'crossfilter',
      backend: LONGEST_BACKEND,
      rounds,
      roundWidthScale: LONGEST_NUMBER,
      roundWidths: Array.from({ length: rounds }, () => 4096),
      batchSize: 99999999,
      dense: false,
      stoppedEarly: { step: steps * rounds, steps: steps * rounds },
    },
    source: {
      name: storage.sourceName ?? 'x'.repeat(255),
      format: storage.sourceFormat ?? 'safetensors',
      bytes: storage.sourceBytes ?? 2 ** 53,
      sha256: '0'.repeat(64),
    },
    ...(storage.lean === true ? { lean: true } : {}),
    ...(verbatimStorage !== undefined ? { verbatimStorage } : {}),
    report: {
      predictorParams: predictorParameterCount(spec),
      representedParams,
      verbatimParams: tensors.reduce((n, t) => n + (t.represented ? 0 : t.params), 0),
      rmse: LONGEST_NUMBER,
      weightRms: LONGEST_NUMBER,
      ...(storage.lean === true
        ? {}
        : {
            layers: reportRows,
            lossCurve: Array.from({ length: points }, () => [steps * rounds, LONGEST_NUMBER]),
          }),
    },
    permutations: permutationList,
  };
  const header: Record<string, unknown> = {
    __metadata__: { weight_lens: JSON.stringify(meta), format: 'pt', weight_lens_sha256: '0'.repeat(64) },
  };
  // The writer lays the data out in this order (artifact.ts writeArtifact), so the offsets are the running sums.
  let at = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [at, at + e.bytes] };
    at += e.bytes;
  }
  const headerBytes = Buffer.byteLength(JSON.stringify(header), 'utf8');
  const metadata = 8 + Math.ceil(headerBytes / 8) * 8;
  return { predictor, permutations, scales, verbatim, metadata, total: data + metadata };
}

/**
 * The bytes of a written NeRN artifact by component, from its safetensors header (no values are read): predictor
 * tensors, `layout.perm.*`, `layout.scales`, `verbatim.*`, and the metadata (8-byte prefix + header). `total` is the
 * file size. Throws CheckpointFormatError for a file that is not a valid safetensors container.
 */
export async function measureArtifactBytes(path: string): Promise<ArtifactBytesDto> {
  const source = await FileByteSource.open(path);
  try {
    const { tensors, dataStart } = await readHeader(source, path);
    const out: ArtifactBytesDto = {
      predictor: 0,
      permutations: 0,
      scales: 0,
      verbatim: 0,
      metadata: dataStart,
      total: 0,
    };
    for (const [name, t] of tensors) {
      if (name.startsWith('predictor.')) out.predictor += t.length;
      else if (name.startsWith('layout.perm.')) out.permutations += t.length;
      else if (name === SCALES_NAME) out.scales += t.length;
      else out.verbatim += t.length;
    }
    out.total = source.size;
    return out;
  } finally {
    await source.close();
  }
}
