/**
 * The compressed-model artifact: one `<name>.nern.safetensors` file, a plain safetensors container (any safetensors
 * reader lists it) holding
 * - `predictor.<i>.weight` [fanIn, fanOut] and `predictor.<i>.bias` [fanOut] (F32): the predictor,
 * - `layout.perm.<l>` and `layout.scales` (F32 [L]): each represented layer's permutation and output scale. Version 4
 *   stores a permutation of N kernels as U8 bytes: the indices bit-packed at ⌈log₂ N⌉ bits, deflated, in filter
 *   blocks, or empty for the identity, whichever is smallest (permutationCodec.ts; `ArtifactMeta.permutations`
 *   records bits and coding per layer); versions 1–3 stored U16 (≤ 65,536 kernels) or I32 indices,
 * - `verbatim.<original name>`: every tensor that is not represented, in its original dtype (F32 for dtypes safetensors
 *   cannot name), or, in version 5 (`ArtifactMeta.verbatimStorage`), float tensors narrowed to F16 or to I8 codes whose
 *   scales lie in `verbatim_scales` (F32, one per row, every int8 tensor's in tensor-list order; verbatimStorage.ts),
 * - `__metadata__.weight_lens`: JSON (`ArtifactMeta`) with the format version, encoding, predictor spec, layer map,
 *   the original tensor order, training settings, the source's name, format, size and SHA-256, and the report,
 * - `__metadata__.weight_lens_sha256`: the SHA-256 of that JSON and the data section, verified on read.
 * Decoding needs nothing but this file. Writing is atomic (temp + rename through `writeSafetensors`); reading
 * validates every field, so a hostile artifact fails with one clear `CheckpointFormatError`.
 */
import { createHash } from 'node:crypto';
import { FileByteSource } from '../io/byteSource';
import { CheckpointFormatError, formatBytes, throwIfAborted } from '../io/errors';
import { LIMITS } from '../io/limits';
import { jsonProblem, parseJsonBounded } from '../io/json';
import { describeValue, quote } from '../io/text';
import { writeSafetensors, type SafetensorsTensorInput } from '../formats/safetensors';
import { decodeValues, DTYPE_BYTES, encodeValues, isDType, type DType, type ValueChunk } from '../tensors/dtype';
import { dequantizeMatrix, int4PackedBytes, packInt4, quantizeMatrix, unpackInt4 } from '../tensors/quantize';
import {
  isOneOf,
  POINTWISE_LAYOUTS,
  PREDICTOR_DTYPES,
  type PredictorDtype,
  type VerbatimDtype,
} from '../../protocol/vocabulary';
import {
  decodeVerbatim,
  decodeVerbatimValues,
  encodeVerbatim,
  scaleRows,
  storageDType,
  VERBATIM_SCALES_NAME,
  verbatimScales,
  verbatimStorageFor,
  type VerbatimStorage,
} from './verbatimStorage';
import { checkShape } from '../tensors/tensor';
import { encodingWidth, type EncodingSpec } from './encoding';
import { checkKernelMap, type KernelMap } from './kernelMap';
import { decodePermutation, encodePermutation, PERMUTATION_CODINGS, type StoredPermutation } from './permutationCodec';
import { layerShapes, type PredictorSpec, type PredictorWeights } from './predictor';
import { convLayoutFor, kernelShape, tileMatches, type TileSpec } from './tiling';
import {
  ARTIFACT_FORMAT,
  ARTIFACT_KEY,
  type ArtifactMetaSummary,
  type ArtifactReport,
  type ArtifactStop,
  type ArtifactTraining,
} from '../../protocol/artifact';
import type { LayerErrorDto } from '../../protocol/compress';

/**
 * `__metadata__` key holding the hex SHA-256 of the `weight_lens` JSON (UTF-8) followed by the whole data section,
 * written with the artifact and checked when it is read. Older artifacts lack it.
 */
export const ARTIFACT_DIGEST_KEY = 'weight_lens_sha256';
/**
 * Newest artifact format version this code reads and writes; readers refuse newer ones. Version 2 adds conv tiles in
 * the 'hwio' layout (TensorFlow.js / Keras kernels); version 3 predictor weights stored as f16/int8/int4; version 4
 * bit-packed (and possibly deflated) permutations, and lean artifacts without the per-layer report and loss curve;
 * version 5 verbatim tensors narrowed to f16 or int8 (`verbatimStorage`).
 */
export const ARTIFACT_VERSION = 5;

/**
 * The version to write: 5 when verbatim tensors are narrowed (`verbatimStorage`, which a version-4 reader would
 * decode as the wrong dtype), else 4, since every artifact written now stores its permutations packed (format 4's
 * `permutations`), which a reader of versions 1–3 cannot decode. Older versions are only read.
 */
export function artifactVersionFor(
  _layers: readonly ArtifactLayer[],
  _predictorStorage?: PredictorDtype,
  verbatimStorage?: VerbatimDtype,
): number {
  return verbatimStorage === 'f16' || verbatimStorage === 'int8' ? 5 : 4;
}

/** Name of the float32 scales (one per output unit, [fanOut]) of predictor layer `i` stored as int8/int4 codes. */
export function predictorScaleName(i: number): string {
  return `predictor.${i}.weight_scale`;
}
/** Float dtypes a represented tensor may have had (reconstructions are converted back to them). */
const FLOAT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16', 'F64'];
/** Largest represented tensor decoded at once (as readTensorValues allows). */
const MAX_REPRESENTED_ELEMENTS = 256 * 1024 * 1024;
/** Largest predictor width an artifact may declare. */
const MAX_ARTIFACT_HIDDEN = 16384;

/** A represented layer in the artifact's layer map (layout order = `layout.perm.<l>` order). */
export interface ArtifactLayer {
  name: string;
  /** Original shape. */
  shape: number[];
  /** Original dtype (F32, F16, BF16 or F64). */
  dtype: string;
  /** How the tensor maps onto kernels. */
  tile: TileSpec;
  /** The [C_out, C_in, k, k] kernel grid the predictor sees. */
  kernelShape: [number, number, number, number];
}

/** One tensor of the original checkpoint, in its original order. */
export interface ArtifactTensor {
  name: string;
  /** Original dtype as the source reader reported it. */
  dtype: string;
  shape: number[];
  stored: 'represented' | 'verbatim';
  /**
   * For verbatim tensors: the dtype stored in the artifact (the original when safetensors can name it, else F32; F16
   * or I8 when `storage` narrows it).
   */
  storedDtype?: DType;
  /**
   * For verbatim tensors narrowed by the artifact's `verbatimStorage` (verbatimStorageFor of the original dtype):
   * how; decoding widens them back to `dtype`. Derived from the dtype and the choice, never stored per tensor.
   */
  storage?: VerbatimStorage;
  /** For verbatim tensors: why it is not represented. */
  reason?: string;
}

/** The JSON under `__metadata__.weight_lens`: the shared summary plus what decoding needs. */
export interface ArtifactMeta extends ArtifactMetaSummary {
  encoding: EncodingSpec;
  predictor: PredictorSpec;
  layers: ArtifactLayer[];
  tensors: ArtifactTensor[];
  /**
   * How the predictor's weight matrices are stored (version 3): 'f16' as F16, 'int8' as I8 codes, 'int4' as U8 bytes
   * of codes packed two to a byte (tensors/quantize.ts), each int layer with one F32 scale per output unit
   * (`predictor.<i>.weight_scale`); biases stay F32. Absent means F32 (versions 1 and 2).
   */
  predictorStorage?: Exclude<PredictorDtype, 'f32'>;
  /**
   * How each layer's `layout.perm.<l>` is stored (version 4, one entry per layer in layer-map order): bits per index
   * (⌈log₂ N⌉) and the coding ('packed', 'deflate', 'blocks' or 'identity', permutationCodec.ts). The writer fills it
   * in; absent means U16/I32 indices (versions 1–3).
   */
  permutations?: StoredPermutation[];
  /**
   * How float verbatim tensors are stored (version 5): 'f16' narrows F32/F64 tensors to F16, 'int8' narrows every
   * float tensor to I8 codes with per-row scales (verbatimStorage.ts). Absent means each in its own dtype.
   */
  verbatimStorage?: VerbatimStorage;
}

/**
 * A verbatim tensor to write: bytes in `dtype` (whole or streamed), and its values as a re-readable stream, which the
 * writer reads (twice: scales, then codes) instead of `data` when `verbatimStorage` narrows the tensor.
 */
export interface VerbatimInput {
  name: string;
  dtype: DType;
  shape: readonly number[];
  data: Uint8Array | AsyncIterable<Uint8Array>;
  values?: () => AsyncIterable<ValueChunk>;
}

/** Everything an artifact holds. */
export interface ArtifactContent {
  meta: ArtifactMeta;
  predictor: PredictorWeights;
  kernelMap: KernelMap;
  verbatim: readonly VerbatimInput[];
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

/** Name of the permutation tensor of layout layer `l`. */
export function permName(l: number): string {
  return `layout.perm.${l}`;
}
/** Name of the output-scales tensor. */
export const SCALES_NAME = 'layout.scales';
/** Prefix of verbatim tensors. */
export const VERBATIM_PREFIX = 'verbatim.';

/**
 * The metadata as stored: all of it, or for a lean artifact (`meta.lean`) without what decoding does not need, namely
 * the report's per-layer rows and loss curve, the distilled predictor's per-layer rows, and the verbatim reasons.
 */
export function storedMeta(meta: ArtifactMeta): Record<string, unknown> {
  // `storage` is derived from the dtype and `verbatimStorage` on reading, never stored.
  const plain = meta.tensors.map(({ storage: _storage, ...t }) => t);
  if (meta.lean !== true) return { ...meta, tensors: plain };
  const { layers: _layers, lossCurve: _curve, ...report } = meta.report;
  const out: Record<string, unknown> = {
    ...meta,
    report,
    // By name alone where the layer map or the stored entry gives shape and dtype (the original dtype is kept only
    // when it differs from the stored one).
    // A narrowed tensor whose original is F32 is listed by name alone too (leanVerbatimDtype), else by its dtype.
    tensors: plain.map((t) =>
      t.stored === 'represented'
        ? { name: t.name, stored: t.stored }
        : t.storedDtype !== undefined && t.dtype === leanVerbatimDtype(t.storedDtype, meta.verbatimStorage)
          ? { name: t.name, stored: t.stored }
          : narrowedAs(t.storedDtype, meta.verbatimStorage)
            ? { name: t.name, stored: t.stored, dtype: t.dtype }
            : { name: t.name, stored: t.stored, dtype: t.dtype, shape: t.shape, storedDtype: t.storedDtype },
    ),
  };
  if (meta.distillation !== undefined) {
    const { reconstruction, ...distillation } = meta.distillation;
    if (reconstruction !== undefined) {
      const { layers: _rows, ...errors } = reconstruction;
      out.distillation = { ...distillation, reconstruction: errors };
    }
  }
  return out;
}

/** Whether a stored verbatim dtype is the one `verbatimStorage` narrows to (F16 under f16, I8 under int8). */
function narrowedAs(storedDtype: DType | undefined, verbatimStorage: VerbatimStorage | undefined): boolean {
  return verbatimStorage !== undefined && storedDtype === storageDType(verbatimStorage);
}

/**
 * The original dtype a lean artifact's verbatim tensor listed by name alone stands for, from its stored dtype: F32
 * when that is the dtype `verbatimStorage` narrows to (a narrowed F32 tensor), else the stored dtype itself. The
 * writer lists a tensor by name alone only when this gives its dtype back.
 */
export function leanVerbatimDtype(storedDtype: DType, verbatimStorage: VerbatimStorage | undefined): string {
  return narrowedAs(storedDtype, verbatimStorage) ? 'F32' : storedDtype;
}

/** The dtype of the bytes `OpenArtifact.verbatimBytes` yields for `t`: its original dtype when narrowed. */
export function verbatimDecodedDtype(t: ArtifactTensor): DType {
  if (t.storage !== undefined && isDType(t.dtype)) return t.dtype;
  return t.storedDtype ?? 'F32';
}

/** A stream of `values()`'s chunks, or of `data` decoded from `dtype` when no value stream was given. */
function valuesOf(v: VerbatimInput): AsyncIterable<ValueChunk> {
  if (v.values) return v.values();
  const { data, dtype } = v;
  // A byte stream can be read only once; narrowing reads the values twice.
  if (!(data instanceof Uint8Array)) throw new TypeError(`verbatim tensor ${v.name} has no value stream to narrow`);
  return (async function* () {
    yield decodeValues(dtype, data);
    await Promise.resolve();
  })();
}

/**
 * Writes `content` to `path` atomically. Aborting `signal` leaves no file (and no temporary) behind. Verbatim
 * tensors that `meta.verbatimStorage` narrows are read from their value streams (scales first, then codes) and
 * stored narrowed; the tensor list's stored dtypes are set to what is written. Throws BadInputError when a narrowed
 * tensor holds a value its storage cannot (verbatimScales).
 */
export async function writeArtifact(path: string, content: ArtifactContent, signal?: AbortSignal): Promise<void> {
  const tensors: SafetensorsTensorInput[] = [];
  const choice = content.meta.verbatimStorage;
  const original = new Map(content.meta.tensors.map((t) => [t.name, t]));
  const narrowed = new Map<string, { storage: VerbatimStorage; scales: Float32Array | undefined }>();
  const allScales: Float32Array[] = [];
  for (const v of content.verbatim) {
    const storage = verbatimStorageFor(original.get(v.name)?.dtype ?? v.dtype, choice);
    if (storage === undefined) continue;
    throwIfAborted(signal);
    const scales = await verbatimScales(v.name, v.shape, storage, valuesOf(v));
    narrowed.set(v.name, { storage, scales });
    if (scales) allScales.push(scales);
  }
  const shapes = layerShapes(content.predictor.spec);
  const storage = content.meta.predictorStorage;
  content.predictor.layers.forEach((layer, i) => {
    const [fanIn, fanOut] = shapes[i] ?? [0, 0];
    if (storage === 'f16') {
      tensors.push({
        name: `predictor.${i}.weight`,
        dtype: 'F16',
        shape: [fanIn, fanOut],
        data: encodeValues('F16', layer.weight),
      });
    } else if (storage === 'int8' || storage === 'int4') {
      const q = quantizeMatrix(layer.weight, fanIn, fanOut, storage === 'int4' ? 4 : 8, 'column');
      if (storage === 'int8')
        tensors.push({ name: `predictor.${i}.weight`, dtype: 'I8', shape: [fanIn, fanOut], data: q.codes });
      else {
        const packed = packInt4(q.codes);
        tensors.push({ name: `predictor.${i}.weight`, dtype: 'U8', shape: [packed.length], data: packed });
      }
      tensors.push({ name: predictorScaleName(i), dtype: 'F32', shape: [fanOut], data: q.scales });
    } else tensors.push({ name: `predictor.${i}.weight`, dtype: 'F32', shape: [fanIn, fanOut], data: layer.weight });
    tensors.push({ name: `predictor.${i}.bias`, dtype: 'F32', shape: [fanOut], data: layer.bias });
  });
  const permutations: StoredPermutation[] = content.kernelMap.permutations.map((perm, l) => {
    const { data, stored } = encodePermutation(perm, content.kernelMap.layers[l]?.shape[1]);
    tensors.push({ name: permName(l), dtype: 'U8', shape: [data.length], data });
    return stored;
  });
  tensors.push({
    name: SCALES_NAME,
    dtype: 'F32',
    shape: [content.kernelMap.outputScales.length],
    data: content.kernelMap.outputScales,
  });
  if (allScales.length > 0) {
    const scales = new Float32Array(allScales.reduce((n, a) => n + a.length, 0));
    let at = 0;
    for (const a of allScales) {
      scales.set(a, at);
      at += a.length;
    }
    tensors.push({ name: VERBATIM_SCALES_NAME, dtype: 'F32', shape: [scales.length], data: scales });
  }
  const storedDtypes = new Map<string, DType>();
  for (const v of content.verbatim) {
    const n = narrowed.get(v.name);
    const dtype = n ? storageDType(n.storage) : v.dtype;
    storedDtypes.set(v.name, dtype);
    tensors.push({
      name: VERBATIM_PREFIX + v.name,
      dtype,
      shape: v.shape,
      data: n ? encodeVerbatim(v.shape, n.storage, n.scales, valuesOf(v)) : v.data,
    });
  }
  const meta: ArtifactMeta = {
    ...content.meta,
    tensors: content.meta.tensors.map((t) => {
      const storedDtype = storedDtypes.get(t.name);
      if (t.stored !== 'verbatim' || storedDtype === undefined) return t;
      const { storage: _storage, ...rest } = t;
      const n = narrowed.get(t.name);
      return { ...rest, storedDtype, ...(n ? { storage: n.storage } : {}) };
    }),
  };
  const json = JSON.stringify({
    ...storedMeta(meta),
    version: artifactVersionFor(meta.layers, meta.predictorStorage, choice),
    permutations,
  });
  await writeSafetensors(
    path,
    tensors,
    { [ARTIFACT_KEY]: json, format: 'pt' },
    {
      ...(signal ? { signal } : {}),
      digest: { key: ARTIFACT_DIGEST_KEY, prefix: new TextEncoder().encode(json) },
    },
  );
}

/**
 * Checks the artifact's SHA-256 (of its `weight_lens` JSON then its whole data section) against the one stored when
 * it was written, so a byte changed anywhere in the predictor, the layout, the verbatim tensors or the description is
 * refused instead of silently changing the decoded weights. Artifacts written before checksums existed have none and
 * are read as before.
 */
export async function verifyDigest(
  source: FileByteSource,
  path: string,
  json: string,
  metadata: Record<string, string>,
  dataStart: number,
): Promise<void> {
  if (!Object.hasOwn(metadata, ARTIFACT_DIGEST_KEY)) return;
  const stored = metadata[ARTIFACT_DIGEST_KEY] ?? '';
  if (!/^[0-9a-f]{64}$/.test(stored)) throw bad(path, `its ${ARTIFACT_DIGEST_KEY} entry is not a SHA-256 digest`);
  const hash = createHash('sha256');
  hash.update(json, 'utf8');
  const chunk = 16 * 1024 * 1024;
  for (let at = dataStart; at < source.size; at += chunk)
    hash.update(await source.read(at, Math.min(chunk, source.size - at)));
  if (hash.digest('hex') !== stored) {
    throw new CheckpointFormatError(
      `${path} is damaged: its contents no longer match the SHA-256 checksum stored when it was written (the file was modified or corrupted); compress the model again to get a sound artifact.`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

/** Where one tensor's bytes lie in a safetensors file. */
export interface StoredTensor {
  dtype: DType;
  shape: number[];
  params: number;
  /** Absolute byte offset in the file. */
  offset: number;
  length: number;
}

/** A stored tensor's bytes as they lie in `source`, in chunks of at most 16 MiB; stops when `signal` aborts. */
export async function* storedBytes(
  source: FileByteSource,
  tensor: StoredTensor,
  signal?: AbortSignal,
): AsyncIterable<Uint8Array> {
  const chunk = 16 * 1024 * 1024;
  for (let at = 0; at < tensor.length; at += chunk) {
    throwIfAborted(signal);
    yield await source.read(tensor.offset + at, Math.min(chunk, tensor.length - at));
  }
}

/** An opened, validated artifact. Call `close()` when done. */
export interface OpenArtifact {
  path: string;
  meta: ArtifactMeta;
  predictor: PredictorWeights;
  kernelMap: KernelMap;
  /** Size of the artifact file in bytes. */
  bytes: number;
  /**
   * Streams a verbatim tensor's bytes in `verbatimDecodedDtype` (its `storedDtype`, or for a narrowed tensor its
   * original dtype, widened from F16 or dequantised from I8 codes), in chunks of ≤ 16 MiB.
   */
  verbatimBytes(name: string, signal?: AbortSignal): AsyncIterable<Uint8Array>;
  /** Streams a verbatim tensor's values (widened or dequantised when narrowed), a chunk per ≤ 16 MiB stored. */
  verbatimValues(name: string, signal?: AbortSignal): AsyncIterable<ValueChunk>;
  close(): Promise<void>;
}

function bad(path: string, what: string): CheckpointFormatError {
  return new CheckpointFormatError(`${path} is not a valid Weight Lens artifact: ${what}.`);
}

/** Parses and checks the safetensors header; every entry lies inside the data section with its exact size. */
export async function readHeader(
  source: FileByteSource,
  path: string,
): Promise<{ tensors: Map<string, StoredTensor>; metadata: Record<string, string>; dataStart: number }> {
  if (source.size < 8) throw bad(path, `the file is ${source.size} bytes, too short for a safetensors header`);
  const prefix = await source.read(0, 8);
  const n = Number(new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true));
  if (n > LIMITS.maxHeaderBytes || n > source.size - 8) {
    throw bad(
      path,
      `its header length ${formatBytes(n)} exceeds the file size ${formatBytes(source.size)} or the ${formatBytes(LIMITS.maxHeaderBytes)} limit`,
    );
  }
  const parsed = parseJsonBounded(await source.read(8, n), LIMITS.maxHeaderJsonDepth);
  if (!parsed.ok) throw bad(path, `its safetensors header ${jsonProblem(parsed, LIMITS.maxHeaderJsonDepth)}`);
  const header = parsed.value;
  if (!isRecord(header)) throw bad(path, 'its safetensors header is not a JSON object');
  const dataStart = 8 + n;
  const dataSize = source.size - dataStart;
  const tensors = new Map<string, StoredTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isRecord(value) || Object.values(value).some((v) => typeof v !== 'string'))
        throw bad(path, '__metadata__ is not a map of strings');
      metadata = value as Record<string, string>;
      continue;
    }
    if (tensors.size >= LIMITS.maxTensors) throw bad(path, `it lists more than ${LIMITS.maxTensors} tensors`);
    if (!isRecord(value)) throw bad(path, `tensor ${quote(name)} has no description`);
    const { dtype, shape, data_offsets: offsets } = value;
    if (typeof dtype !== 'string' || !isDType(dtype))
      throw bad(path, `tensor ${quote(name)} has unknown dtype ${describeValue(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number'))
      throw bad(path, `tensor ${quote(name)} has no valid shape`);
    const params = checkShape(`tensor ${quote(name)}`, shape);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
    ) {
      throw bad(path, `tensor ${quote(name)} has invalid data_offsets`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin || end > dataSize || end - begin !== params * DTYPE_BYTES[dtype]) {
      throw bad(
        path,
        `tensor ${quote(name)} spans bytes ${begin}–${end} of a ${dataSize}-byte data section but needs ${params * DTYPE_BYTES[dtype]} bytes`,
      );
    }
    tensors.set(name, { dtype, shape: shape, params, offset: dataStart + begin, length: end - begin });
  }
  return { tensors, metadata, dataStart };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Small structural checkers that throw a `bad()` error naming the field. */
class MetaReader {
  constructor(private readonly path: string) {}
  fail(what: string): CheckpointFormatError {
    return bad(this.path, what);
  }
  record(v: unknown, field: string): Record<string, unknown> {
    if (!isRecord(v)) throw this.fail(`${field} is missing or not an object`);
    return v;
  }
  array(v: unknown, field: string): unknown[] {
    if (!Array.isArray(v)) throw this.fail(`${field} is missing or not a list`);
    return v;
  }
  string(v: unknown, field: string): string {
    if (typeof v !== 'string') throw this.fail(`${field} is missing or not a string`);
    return v;
  }
  number(v: unknown, field: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.fail(`${field} is missing or not a finite number`);
    return v;
  }
  int(v: unknown, field: string, min: number, max: number): number {
    const n = this.number(v, field);
    if (!Number.isInteger(n) || n < min || n > max)
      throw this.fail(`${field} is ${n}, not a whole number in ${min}–${max}`);
    return n;
  }
  shape(v: unknown, field: string): number[] {
    const a = this.array(v, field);
    if (!a.every((d) => typeof d === 'number')) throw this.fail(`${field} is not a list of dimensions`);
    checkShape(field, a);
    return a;
  }
}

/** Reads a stopped-early record: whole numbers with 1 ≤ step < steps. */
function readStop(m: MetaReader, v: unknown, field: string): ArtifactStop {
  const r = m.record(v, field);
  const steps = m.int(r.steps, `${field}.steps`, 2, Number.MAX_SAFE_INTEGER);
  return { step: m.int(r.step, `${field}.step`, 1, steps - 1), steps };
}

function readTile(m: MetaReader, v: unknown, field: string): TileSpec {
  const t = m.record(v, field);
  if (t.kind === 'conv') {
    const k = m.int(t.k, `${field}.k`, 1, 3);
    if (k !== 1 && k !== 3) throw m.fail(`${field}.k is ${k}, not 1 or 3`);
    // Artifacts written before convolution layouts existed have none: their convolutions are [C_out, C_in, k, k].
    const layout = t.layout === undefined ? 'oihw' : t.layout;
    if (layout !== 'oihw' && layout !== 'hwio')
      throw m.fail(`${field}.layout is ${describeValue(layout)}, not oihw or hwio`);
    return { kind: 'conv', k, layout };
  }
  if (t.kind === 'tiled')
    return {
      kind: 'tiled',
      rows: m.int(t.rows, `${field}.rows`, 1, 2 ** 40),
      cols: m.int(t.cols, `${field}.cols`, 1, 2 ** 40),
    };
  throw m.fail(`${field}.kind is ${describeValue(t.kind)}, not conv or tiled`);
}

/** Validates the parsed `weight_lens` JSON against the stored tensors; returns the typed meta. */
function readMeta(m: MetaReader, raw: unknown, stored: Map<string, StoredTensor>): ArtifactMeta {
  const meta = m.record(raw, 'the weight_lens metadata');
  if (meta.format !== ARTIFACT_FORMAT)
    throw m.fail(`weight_lens.format is ${describeValue(meta.format)}, not ${ARTIFACT_FORMAT}`);
  const version = m.int(meta.version, 'weight_lens.version', 1, Number.MAX_SAFE_INTEGER);
  if (version > ARTIFACT_VERSION)
    throw m.fail(
      `it is format version ${version}, newer than this Weight Lens reads (${ARTIFACT_VERSION}); update Weight Lens`,
    );
  let lean = false;
  if (meta.lean !== undefined) {
    if (meta.lean !== true) throw m.fail(`weight_lens.lean is ${describeValue(meta.lean)}, not true`);
    if (version < 4) throw m.fail(`weight_lens.lean needs format version 4, but the artifact is version ${version}`);
    lean = true;
  }
  let verbatimStorage: VerbatimStorage | undefined;
  if (meta.verbatimStorage !== undefined) {
    const vs = meta.verbatimStorage;
    if (version < 5)
      throw m.fail(`weight_lens.verbatimStorage needs format version 5, but the artifact is version ${version}`);
    if (vs !== 'f16' && vs !== 'int8')
      throw m.fail(`weight_lens.verbatimStorage is ${describeValue(vs)}, not f16 or int8`);
    verbatimStorage = vs;
  }
  const enc = m.record(meta.encoding, 'weight_lens.encoding');
  const encoding: EncodingSpec = {
    base: m.number(enc.base, 'encoding.base'),
    levels: m.int(enc.levels, 'encoding.levels', 1, 64),
  };
  if (!(encoding.base > 0) || encoding.base > 4) throw m.fail(`encoding.base is ${encoding.base}, outside (0, 4]`);
  const p = m.record(meta.predictor, 'weight_lens.predictor');
  const predictor: PredictorSpec = {
    inputs: m.int(p.inputs, 'predictor.inputs', 1, 4096),
    hidden: m.int(p.hidden, 'predictor.hidden', 1, MAX_ARTIFACT_HIDDEN),
    outputs: m.int(p.outputs, 'predictor.outputs', 9, 9),
    depth: m.int(p.depth, 'predictor.depth', 1, 16),
  };
  if (predictor.inputs !== encodingWidth(encoding))
    throw m.fail(`predictor.inputs is ${predictor.inputs} but the encoding gives ${encodingWidth(encoding)}`);
  const s = m.record(meta.source, 'weight_lens.source');
  const source = {
    name: m.string(s.name, 'source.name'),
    format: m.string(s.format, 'source.format'),
    bytes: m.number(s.bytes, 'source.bytes'),
    sha256: m.string(s.sha256, 'source.sha256'),
  };
  const convLayout = convLayoutFor(source.format);
  const layers: ArtifactLayer[] = m.array(meta.layers, 'weight_lens.layers').map((v, l) => {
    const f = `layers[${l}]`;
    const r = m.record(v, f);
    const shape = m.shape(r.shape, `${f}.shape`);
    const tile = readTile(m, r.tile, `${f}.tile`);
    if (!tileMatches(tile, shape, convLayout))
      throw m.fail(`${f} has tile ${describeValue(tile)} that does not fit its shape [${shape.join(', ')}]`);
    const dtype = m.string(r.dtype, `${f}.dtype`);
    if (!FLOAT_DTYPES.includes(dtype)) throw m.fail(`${f}.dtype is ${dtype}, not a float dtype`);
    if (shape.reduce((n, d) => n * d, 1) > MAX_REPRESENTED_ELEMENTS)
      throw m.fail(`${f} has over ${MAX_REPRESENTED_ELEMENTS} elements`);
    return { name: m.string(r.name, `${f}.name`), shape, dtype, tile, kernelShape: kernelShape(tile, shape) };
  });
  const names = new Set<string>();
  const layerByName = new Map(layers.map((l) => [l.name, l]));
  if (layerByName.size !== layers.length) throw m.fail('two represented layers have the same name');
  let represented = 0;
  const tensors: ArtifactTensor[] = m.array(meta.tensors, 'weight_lens.tensors').map((v, i) => {
    const f = `tensors[${i}]`;
    const r = m.record(v, f);
    const name = m.string(r.name, `${f}.name`);
    if (names.has(name)) throw m.fail(`tensor ${quote(name)} is listed twice`);
    names.add(name);
    // A lean artifact lists a tensor by name alone where the layer map or its stored entry has its shape and dtype.
    const from =
      lean && r.shape === undefined
        ? r.stored === 'represented'
          ? layerByName.get(name)
          : stored.get(VERBATIM_PREFIX + name)
        : undefined;
    if (lean && r.shape === undefined && from === undefined)
      throw m.fail(
        `tensor ${quote(name)} is listed by name alone but ${r.stored === 'represented' ? 'is not in the layer map' : 'has no stored verbatim tensor'}`,
      );
    const shape = from ? from.shape : m.shape(r.shape, `${f}.shape`);
    const dtype =
      from && r.dtype === undefined
        ? r.stored === 'verbatim' && isDType(from.dtype)
          ? leanVerbatimDtype(from.dtype, verbatimStorage)
          : from.dtype
        : m.string(r.dtype, `${f}.dtype`);
    const storedDtype = from && r.storedDtype === undefined ? from.dtype : r.storedDtype;
    if (r.stored === 'represented') {
      const layer = layerByName.get(name);
      if (!layer || layer.shape.join(',') !== shape.join(',') || layer.dtype !== dtype)
        throw m.fail(`represented tensor ${quote(name)} does not match the layer map`);
      represented++;
      return { name, dtype, shape, stored: 'represented' };
    }
    if (r.stored !== 'verbatim') throw m.fail(`${f}.stored is ${describeValue(r.stored)}, not represented or verbatim`);
    const s = stored.get(VERBATIM_PREFIX + name);
    if (!s) throw m.fail(`verbatim tensor ${quote(name)} is missing from the file`);
    if (s.dtype !== storedDtype || s.shape.join(',') !== shape.join(',')) {
      throw m.fail(
        `verbatim tensor ${quote(name)} is stored as ${s.dtype} [${s.shape.join(', ')}] but listed as ${describeValue(storedDtype)} [${shape.join(', ')}]`,
      );
    }
    const storage = verbatimStorageFor(dtype, verbatimStorage);
    if (storage !== undefined && s.dtype !== storageDType(storage))
      throw m.fail(
        `verbatim tensor ${quote(name)} (${dtype}) should be stored as ${storageDType(storage)} under verbatim storage ${storage}, but is ${s.dtype}`,
      );
    return {
      name,
      dtype,
      shape,
      stored: 'verbatim',
      storedDtype: s.dtype,
      ...(storage !== undefined ? { storage } : {}),
      reason: typeof r.reason === 'string' ? r.reason : '',
    };
  });
  if (represented !== layers.length)
    throw m.fail(`the tensor list names ${represented} represented tensors but the layer map has ${layers.length}`);
  const t = m.record(meta.training, 'weight_lens.training');
  const training: ArtifactTraining = {
    hidden: m.number(t.hidden, 'training.hidden'),
    steps: m.number(t.steps, 'training.steps'),
    seed: m.number(t.seed, 'training.seed'),
    optimizer: m.string(t.optimizer, 'training.optimizer'),
    permutation: m.string(t.permutation, 'training.permutation'),
    backend: m.string(t.backend, 'training.backend'),
    rounds: m.number(t.rounds, 'training.rounds'),
    roundWidthScale: m.number(t.roundWidthScale, 'training.roundWidthScale'),
    roundWidths: m
      .array(t.roundWidths, 'training.roundWidths')
      .map((w, i) => m.number(w, `training.roundWidths[${i}]`)),
    batchSize: m.number(t.batchSize, 'training.batchSize'),
    dense: t.dense === true,
  };
  if (t.pointwise !== undefined) {
    const pointwise = m.string(t.pointwise, 'training.pointwise');
    if (!isOneOf(POINTWISE_LAYOUTS, pointwise))
      throw m.fail(`training.pointwise is ${JSON.stringify(pointwise)}, not one of ${POINTWISE_LAYOUTS.join(', ')}`);
    training.pointwise = pointwise;
  }
  if (t.stoppedEarly !== undefined) training.stoppedEarly = readStop(m, t.stoppedEarly, 'training.stoppedEarly');
  /** A lean artifact's per-layer rows and loss curve were not stored: read as empty lists. */
  const leanList = (v: unknown): unknown => (lean && v === undefined ? [] : v);
  const rep = m.record(meta.report, 'weight_lens.report');
  const layerRows = (v: unknown, f: string): LayerErrorDto[] =>
    m.array(v, f).map((x, i) => {
      const r = m.record(x, `${f}[${i}]`);
      return {
        name: m.string(r.name, `${f}[${i}].name`),
        shape: m.shape(r.shape, `${f}[${i}].shape`),
        params: m.number(r.params, `${f}[${i}].params`),
        rmse: m.number(r.rmse, `${f}[${i}].rmse`),
        relativeError: m.number(r.relativeError, `${f}[${i}].relativeError`),
      };
    });
  const report: ArtifactReport = {
    predictorParams: m.number(rep.predictorParams, 'report.predictorParams'),
    representedParams: m.number(rep.representedParams, 'report.representedParams'),
    verbatimParams: m.number(rep.verbatimParams, 'report.verbatimParams'),
    rmse: m.number(rep.rmse, 'report.rmse'),
    weightRms: m.number(rep.weightRms, 'report.weightRms'),
    layers: layerRows(leanList(rep.layers), 'report.layers'),
    lossCurve: m.array(leanList(rep.lossCurve), 'report.lossCurve').map((v, i) => {
      const pair = m.array(v, `report.lossCurve[${i}]`);
      return [m.number(pair[0], `report.lossCurve[${i}][0]`), m.number(pair[1], `report.lossCurve[${i}][1]`)];
    }),
  };
  const out: ArtifactMeta = {
    format: ARTIFACT_FORMAT,
    version,
    encoding,
    predictor,
    layers,
    tensors,
    training,
    source,
    report,
    ...(lean ? { lean: true as const } : {}),
    ...(verbatimStorage !== undefined ? { verbatimStorage } : {}),
  };
  if (meta.predictorStorage !== undefined) {
    const ps = meta.predictorStorage;
    if (version < 3)
      throw m.fail(`weight_lens.predictorStorage needs format version 3, but the artifact is version ${version}`);
    if (typeof ps !== 'string' || !(PREDICTOR_DTYPES as readonly string[]).includes(ps) || ps === 'f32')
      throw m.fail(`weight_lens.predictorStorage is ${describeValue(ps)}, not one of f16, int8, int4`);
    out.predictorStorage = ps as Exclude<PredictorDtype, 'f32'>;
  }
  if (version >= 4) {
    const list = m.array(meta.permutations, 'weight_lens.permutations');
    if (list.length !== layers.length)
      throw m.fail(`weight_lens.permutations has ${list.length} entries but the layer map has ${layers.length}`);
    out.permutations = list.map((v, l) => {
      const r = m.record(v, `permutations[${l}]`);
      const coding = r.coding;
      if (typeof coding !== 'string' || !(PERMUTATION_CODINGS as readonly string[]).includes(coding))
        throw m.fail(
          `permutations[${l}].coding is ${describeValue(coding)}, not one of ${PERMUTATION_CODINGS.join(', ')}`,
        );
      return { bits: m.int(r.bits, `permutations[${l}].bits`, 0, 31), coding: coding as StoredPermutation['coding'] };
    });
  } else if (meta.permutations !== undefined)
    throw m.fail(`weight_lens.permutations needs format version 4, but the artifact is version ${version}`);
  if (meta.distillation !== undefined) {
    const d = m.record(meta.distillation, 'weight_lens.distillation');
    const flat = (v: unknown, f: string): Record<string, number> =>
      Object.fromEntries(Object.entries(m.record(v, f)).map(([k, x]) => [k, m.number(x, `${f}.${k}`)]));
    const settings = Object.fromEntries(
      Object.entries(m.record(d.settings, 'distillation.settings')).map(
        ([k, x]): [string, string | number | boolean] => {
          if (typeof x === 'string' || typeof x === 'boolean') return [k, x];
          return [k, m.number(x, `distillation.settings.${k}`)];
        },
      ),
    );
    out.distillation = {
      settings,
      model: m.string(d.model, 'distillation.model'),
      data: m.string(d.data, 'distillation.data'),
      teacher: m.string(d.teacher, 'distillation.teacher'),
      before: flat(d.before, 'distillation.before'),
      after: flat(d.after, 'distillation.after'),
      from: m.string(d.from, 'distillation.from'),
    };
    if (d.reconstruction !== undefined) {
      const e = m.record(d.reconstruction, 'distillation.reconstruction');
      out.distillation.reconstruction = {
        rmse: m.number(e.rmse, 'distillation.reconstruction.rmse'),
        weightRms: m.number(e.weightRms, 'distillation.reconstruction.weightRms'),
        layers: layerRows(leanList(e.layers), 'distillation.reconstruction.layers'),
      };
    }
    if (d.stoppedEarly !== undefined)
      out.distillation.stoppedEarly = readStop(m, d.stoppedEarly, 'distillation.stoppedEarly');
  }
  return out;
}

/**
 * Decodes predictor layer `i`'s [fanIn, fanOut] weight matrix as stored per `storage` (see `ArtifactMeta`): F32 as
 * is, F16 widened, int8/int4 codes dequantised with their per-output scales (dequantizeMatrix, exact float32).
 */
async function readPredictorWeight(
  m: MetaReader,
  source: FileByteSource,
  need: (name: string, dtypes: readonly DType[], shape: readonly number[]) => StoredTensor,
  storage: ArtifactMeta['predictorStorage'],
  i: number,
  fanIn: number,
  fanOut: number,
): Promise<Float32Array> {
  const name = `predictor.${i}.weight`;
  if (storage === undefined) return readFloat32(source, need(name, ['F32'], [fanIn, fanOut]));
  if (storage === 'f16') {
    const t = need(name, ['F16'], [fanIn, fanOut]);
    return Float32Array.from(decodeValues('F16', await source.read(t.offset, t.length)));
  }
  const scales = await readFloat32(source, need(predictorScaleName(i), ['F32'], [fanOut]));
  const n = fanIn * fanOut;
  let codes: Int8Array;
  if (storage === 'int8') {
    const t = need(name, ['I8'], [fanIn, fanOut]);
    const bytes = await source.read(t.offset, t.length);
    codes = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length).slice();
    if (codes.some((c) => c < -127)) throw m.fail(`tensor ${name} holds int8 codes outside −127…127`);
  } else {
    const t = need(name, ['U8'], [int4PackedBytes(n)]);
    codes = unpackInt4(await source.read(t.offset, t.length), n);
    if (codes.some((c) => c < -7)) throw m.fail(`tensor ${name} holds int4 codes outside −7…7`);
  }
  if (!scales.every((s) => Number.isFinite(s) && s >= 0))
    throw m.fail(`tensor ${predictorScaleName(i)} holds scales that are negative or not finite`);
  const bits = storage === 'int4' ? 4 : 8;
  return dequantizeMatrix({ bits, axis: 'column', rows: fanIn, cols: fanOut, codes, scales });
}

/**
 * The int8 verbatim tensors' scales from `verbatim_scales`, by tensor name: one F32 per row (scaleRows), each
 * tensor's after the previous one's in tensor-list order; finite and ≥ 0. The tensor must be there exactly when some
 * tensor is int8, with exactly the scales they need.
 */
async function readVerbatimScales(
  m: MetaReader,
  source: FileByteSource,
  stored: Map<string, StoredTensor>,
  tensors: readonly ArtifactTensor[],
): Promise<Map<string, Float32Array>> {
  const int8 = tensors.filter((t) => t.storage === 'int8');
  const total = int8.reduce((n, t) => n + scaleRows(t.shape), 0);
  const t = stored.get(VERBATIM_SCALES_NAME);
  const out = new Map<string, Float32Array>();
  if (int8.length === 0) {
    if (t) throw m.fail(`it has a ${VERBATIM_SCALES_NAME} tensor but no verbatim tensor stored as int8`);
    return out;
  }
  if (!t)
    throw m.fail(`tensor ${VERBATIM_SCALES_NAME} is missing (${int8.length} verbatim tensors are stored as int8)`);
  if (t.dtype !== 'F32' || t.shape.length !== 1 || t.shape[0] !== total)
    throw m.fail(
      `tensor ${VERBATIM_SCALES_NAME} is ${t.dtype} [${t.shape.join(', ')}], expected F32 [${total}] (one scale per row of the int8 verbatim tensors)`,
    );
  const all = await readFloat32(source, t);
  if (!all.every((x) => Number.isFinite(x) && x >= 0))
    throw m.fail(`tensor ${VERBATIM_SCALES_NAME} holds scales that are negative or not finite`);
  let at = 0;
  for (const x of int8) {
    const rows = scaleRows(x.shape);
    out.set(x.name, all.subarray(at, at + rows));
    at += rows;
  }
  return out;
}

async function readFloat32(source: FileByteSource, t: StoredTensor): Promise<Float32Array> {
  const bytes = await source.read(t.offset, t.length);
  return Float32Array.from(decodeValues('F32', bytes));
}

/**
 * Opens and validates an artifact: the safetensors structure, the `weight_lens` metadata, the predictor tensors
 * (shapes per the spec, finite values), each layer's permutation (a true permutation of its kernels) and scale, and
 * every verbatim tensor. Throws `CheckpointFormatError` naming the first problem.
 */
export async function readArtifact(path: string): Promise<OpenArtifact> {
  const source = await FileByteSource.open(path);
  let ok = false;
  try {
    const { tensors: stored, metadata, dataStart } = await readHeader(source, path);
    const json = Object.hasOwn(metadata, ARTIFACT_KEY) ? metadata[ARTIFACT_KEY] : undefined;
    if (json === undefined)
      throw new CheckpointFormatError(
        `${path} is a safetensors file but not a Weight Lens artifact (its metadata has no ${ARTIFACT_KEY} entry).`,
      );
    const parsedMeta = parseJsonBounded(json, LIMITS.maxHeaderJsonDepth);
    if (!parsedMeta.ok)
      throw bad(path, `its ${ARTIFACT_KEY} metadata ${jsonProblem(parsedMeta, LIMITS.maxHeaderJsonDepth)}`);
    const raw = parsedMeta.value;
    const m = new MetaReader(path);
    const meta = readMeta(m, raw, stored);
    const need = (name: string, dtypes: readonly DType[], shape: readonly number[]): StoredTensor => {
      const t = stored.get(name);
      if (!t) throw m.fail(`tensor ${name} is missing`);
      if (!dtypes.includes(t.dtype) || t.shape.join(',') !== shape.join(',')) {
        throw m.fail(
          `tensor ${name} is ${t.dtype} [${t.shape.join(', ')}], expected ${dtypes.join(' or ')} [${shape.join(', ')}]`,
        );
      }
      return t;
    };
    const predictorLayers = [];
    for (const [i, [fanIn, fanOut]] of layerShapes(meta.predictor).entries()) {
      const weight = await readPredictorWeight(m, source, need, meta.predictorStorage, i, fanIn, fanOut);
      const bias = await readFloat32(source, need(`predictor.${i}.bias`, ['F32'], [fanOut]));
      if (!weight.every(Number.isFinite) || !bias.every(Number.isFinite))
        throw m.fail(`predictor layer ${i} has non-finite weights`);
      predictorLayers.push({ weight, bias });
    }
    const permutations: Int32Array[] = [];
    for (const [l, layer] of meta.layers.entries()) {
      const [cout, cin] = layer.kernelShape;
      const coding = meta.permutations?.[l];
      if (coding) {
        const t = stored.get(permName(l));
        if (!t || t.dtype !== 'U8' || t.shape.length !== 1)
          throw m.fail(`tensor ${permName(l)} is missing or not a U8 byte blob`);
        const bytes = await source.read(t.offset, t.length);
        try {
          permutations.push(decodePermutation(bytes, cout * cin, coding, layer.name, cin));
        } catch (e) {
          throw m.fail(e instanceof Error ? e.message.replace(/; compress the model again\.$/, '') : String(e));
        }
        continue;
      }
      const t = need(permName(l), ['U16', 'I32'], [cout * cin]);
      const bytes = await source.read(t.offset, t.length);
      permutations.push(Int32Array.from(decodeValues(t.dtype, bytes)));
    }
    const outputScales = await readFloat32(source, need(SCALES_NAME, ['F32'], [meta.layers.length]));
    const int8Scales = await readVerbatimScales(m, source, stored, meta.tensors);
    const layout: KernelMap = {
      encoding: meta.encoding,
      layers: meta.layers.map((l) => ({ name: l.name, shape: l.kernelShape })),
      permutations,
      outputScales,
    };
    try {
      checkKernelMap(layout);
    } catch (e) {
      throw m.fail(e instanceof Error ? e.message.replace(/\.$/, '') : String(e));
    }
    // Structure first (its messages are the most specific), then every byte against the stored checksum.
    await verifyDigest(source, path, json, metadata, dataStart);
    const tensorByName = new Map(meta.tensors.map((t) => [t.name, t]));
    const artifact: OpenArtifact = {
      path,
      meta,
      predictor: { spec: meta.predictor, layers: predictorLayers },
      kernelMap: layout,
      bytes: source.size,
      async *verbatimBytes(name: string, signal?: AbortSignal): AsyncIterable<Uint8Array> {
        const t = stored.get(VERBATIM_PREFIX + name);
        if (!t) throw m.fail(`verbatim tensor ${quote(name)} is missing`);
        const info = tensorByName.get(name);
        if (info?.storage === undefined) {
          yield* storedBytes(source, t, signal);
          return;
        }
        const fail = (what: string): Error => m.fail(`verbatim tensor ${quote(name)} is damaged: ${what}`);
        const scales = int8Scales.get(name);
        yield* decodeVerbatim(
          t.shape,
          info.storage,
          scales,
          storedBytes(source, t, signal),
          verbatimDecodedDtype(info),
          fail,
        );
      },
      async *verbatimValues(name: string, signal?: AbortSignal): AsyncIterable<ValueChunk> {
        const t = stored.get(VERBATIM_PREFIX + name);
        if (!t) throw m.fail(`verbatim tensor ${quote(name)} is missing`);
        const info = tensorByName.get(name);
        if (info?.storage === undefined) {
          for await (const bytes of storedBytes(source, t, signal)) yield decodeValues(t.dtype, bytes);
          return;
        }
        const fail = (what: string): Error => m.fail(`verbatim tensor ${quote(name)} is damaged: ${what}`);
        yield* decodeVerbatimValues(t.shape, info.storage, int8Scales.get(name), storedBytes(source, t, signal), fail);
      },
      close: () => source.close(),
    };
    ok = true;
    return artifact;
  } finally {
    if (!ok) await source.close();
  }
}
