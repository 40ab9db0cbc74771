/**
 * The baseline artifact: one safetensors file (any safetensors reader lists it) holding
 * - `baseline.<name>.<part>`: each compressed tensor's stored parts (methods.ts: int8/int4 codes and scales, low-rank
 *   factors u and v, pruning's bitmap mask and kept values),
 * - `verbatim.<name>`: every other tensor, in its original dtype (F32 where safetensors cannot name it),
 * - `__metadata__.weight_lens`: JSON (`BaselineMeta`, format `weight-lens-baseline`): the method, the original tensor
 *   order with each tensor's stored form, the source's name, format, size and SHA-256, and the error report,
 * - `__metadata__.weight_lens_sha256`: the SHA-256 of that JSON and the data section, verified on read.
 * Writing is atomic (writeSafetensors); reading checks every field and part shape, so a tampered or hostile file
 * fails with one `CheckpointFormatError` sentence.
 */
import { FileByteSource } from '../io/byteSource';
import { CheckpointFormatError } from '../io/errors';
import { jsonProblem, parseJsonBounded } from '../io/json';
import { LIMITS } from '../io/limits';
import { describeValue, quote } from '../io/text';
import { writeSafetensors, type SafetensorsTensorInput } from '../formats/safetensors';
import {
  ARTIFACT_DIGEST_KEY,
  readHeader,
  storedBytes,
  verifyDigest,
  VERBATIM_PREFIX,
  type StoredTensor,
  type VerbatimInput,
} from '../nern/artifact';
import { ARTIFACT_KEY, type ArtifactSource } from '../../protocol/artifact';
import type { LayerErrorDto } from '../../protocol/compress';
import { isDType, type DType } from '../tensors/dtype';
import { int4PackedBytes } from '../tensors/quantize';
import {
  BASELINE_METHODS,
  bitmapBytes,
  decodeTensor,
  maskCount,
  type BaselineMethod,
  type CompressedTensor,
  type StoredForm,
} from './methods';

/** Value of `BaselineMeta.format`. */
export const BASELINE_FORMAT = 'weight-lens-baseline';
/** Newest baseline artifact version this code reads and writes. */
export const BASELINE_VERSION = 1;
/** Prefix of compressed tensors' parts. */
export const BASELINE_PREFIX = 'baseline.';

/** One tensor of the original checkpoint, in its original order: compressed (with its form) or verbatim. */
export type BaselineTensorMeta =
  | { name: string; dtype: string; shape: number[]; stored: 'represented'; form: StoredForm }
  | { name: string; dtype: string; shape: number[]; stored: 'verbatim'; storedDtype: DType; reason: string };

/** The stored report: parameter counts, stored bytes of the compressed parts, and the reconstruction error. */
export interface BaselineReport {
  representedParams: number;
  verbatimParams: number;
  /** Bytes of every `baseline.*` part (the compressed weights' share of the data section). */
  storedBytes: number;
  rmse: number;
  weightRms: number;
  layers: LayerErrorDto[];
}

/** The JSON under `__metadata__.weight_lens` of a baseline artifact. */
export interface BaselineMeta {
  format: typeof BASELINE_FORMAT;
  version: number;
  method: BaselineMethod;
  tensors: BaselineTensorMeta[];
  source: ArtifactSource;
  report: BaselineReport;
}

/** Name of a compressed tensor's stored part. */
export function partName(tensor: string, suffix: string): string {
  return `${BASELINE_PREFIX}${tensor}.${suffix}`;
}

/** Writes a baseline artifact atomically: compressed parts, then verbatim tensors, in `meta.tensors` order. */
export async function writeBaselineArtifact(
  path: string,
  meta: BaselineMeta,
  compressed: readonly CompressedTensor[],
  verbatim: readonly VerbatimInput[],
  signal?: AbortSignal,
): Promise<void> {
  const tensors: SafetensorsTensorInput[] = [];
  for (const t of compressed)
    for (const p of t.parts)
      tensors.push({ name: partName(t.name, p.suffix), dtype: p.dtype, shape: p.shape, data: p.data });
  for (const v of verbatim)
    tensors.push({ name: VERBATIM_PREFIX + v.name, dtype: v.dtype, shape: v.shape, data: v.data });
  const json = JSON.stringify(meta);
  await writeSafetensors(
    path,
    tensors,
    { [ARTIFACT_KEY]: json, format: 'pt' },
    { ...(signal ? { signal } : {}), digest: { key: ARTIFACT_DIGEST_KEY, prefix: new TextEncoder().encode(json) } },
  );
}

/** The parts (dtype and shape) a form must have. */
export function expectedParts(form: StoredForm): { suffix: string; dtype: DType; shape: number[] }[] {
  const { rows, cols } = form;
  const n = rows * cols;
  switch (form.method) {
    case 'int8':
      return [
        { suffix: 'codes', dtype: 'I8', shape: [rows, cols] },
        { suffix: 'scales', dtype: 'F32', shape: [rows] },
      ];
    case 'int4':
      return [
        { suffix: 'codes', dtype: 'U8', shape: [int4PackedBytes(n)] },
        { suffix: 'scales', dtype: 'F32', shape: [rows] },
      ];
    case 'lowrank':
      return [
        { suffix: 'u', dtype: 'F32', shape: [rows, form.rank ?? 1] },
        { suffix: 'v', dtype: 'F32', shape: [form.rank ?? 1, cols] },
      ];
    case 'prune':
      return [
        { suffix: 'mask', dtype: 'U8', shape: [bitmapBytes(n)] },
        { suffix: 'values', dtype: 'F32', shape: [form.kept ?? 0] },
      ];
  }
}

/** An opened, validated baseline artifact. Call `close()` when done. */
export interface OpenBaselineArtifact {
  path: string;
  meta: BaselineMeta;
  /** Size of the file in bytes. */
  bytes: number;
  /** The decoded float32 weights of every compressed tensor, by name, in its original layout. */
  reconstruction(): Promise<Map<string, Float32Array>>;
  /** The decoded float32 weights of the compressed tensor `name` (original layout); undefined when it is not one. */
  reconstructTensor(name: string): Promise<Float32Array | undefined>;
  /** Streams a verbatim tensor's stored bytes, in chunks of ≤ 16 MiB. */
  verbatimBytes(name: string, signal?: AbortSignal): AsyncIterable<Uint8Array>;
  close(): Promise<void>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the JSON against the stored tensors; throws `fail(what)` naming the first problem. */
function readMeta(raw: unknown, stored: Map<string, StoredTensor>, fail: (what: string) => Error): BaselineMeta {
  const rec = (v: unknown, f: string): Record<string, unknown> => {
    if (!isRecord(v)) throw fail(`${f} is missing or not an object`);
    return v;
  };
  const str = (v: unknown, f: string): string => {
    if (typeof v !== 'string') throw fail(`${f} is missing or not a string`);
    return v;
  };
  const num = (v: unknown, f: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw fail(`${f} is missing or not a finite number`);
    return v;
  };
  const int = (v: unknown, f: string, min: number, max: number): number => {
    const n = num(v, f);
    if (!Number.isInteger(n) || n < min || n > max) throw fail(`${f} is ${n}, not a whole number in ${min}–${max}`);
    return n;
  };
  const shapeOf = (v: unknown, f: string): number[] => {
    if (!Array.isArray(v) || !v.every((d) => Number.isSafeInteger(d) && (d as number) >= 0 && (d as number) < 2 ** 40))
      throw fail(`${f} is not a list of dimensions`);
    return v as number[];
  };
  const meta = rec(raw, 'the weight_lens metadata');
  if (meta.format !== BASELINE_FORMAT)
    throw fail(`weight_lens.format is ${describeValue(meta.format)}, not ${BASELINE_FORMAT}`);
  const version = int(meta.version, 'weight_lens.version', 1, Number.MAX_SAFE_INTEGER);
  if (version > BASELINE_VERSION)
    throw fail(
      `it is format version ${version}, newer than this Weight Lens reads (${BASELINE_VERSION}); update Weight Lens`,
    );
  const method = BASELINE_METHODS.find((m) => m === meta.method);
  if (method === undefined)
    throw fail(`weight_lens.method is ${describeValue(meta.method)}, not one of ${BASELINE_METHODS.join(', ')}`);
  const s = rec(meta.source, 'weight_lens.source');
  const source: ArtifactSource = {
    name: str(s.name, 'source.name'),
    format: str(s.format, 'source.format'),
    bytes: num(s.bytes, 'source.bytes'),
    sha256: str(s.sha256, 'source.sha256'),
  };
  const names = new Set<string>();
  const listed = new Set<string>();
  if (!Array.isArray(meta.tensors)) throw fail('weight_lens.tensors is missing or not a list');
  const tensors: BaselineTensorMeta[] = meta.tensors.map((v: unknown, i: number): BaselineTensorMeta => {
    const f = `tensors[${i}]`;
    const r = rec(v, f);
    const name = str(r.name, `${f}.name`);
    if (names.has(name)) throw fail(`tensor ${quote(name)} is listed twice`);
    names.add(name);
    const shape = shapeOf(r.shape, `${f}.shape`);
    const n = shape.reduce((a, d) => a * d, 1);
    if (n > LIMITS.maxTensorElements) throw fail(`${f} has over 2^40 elements`);
    const dtype = str(r.dtype, `${f}.dtype`);
    if (r.stored === 'verbatim') {
      const st = stored.get(VERBATIM_PREFIX + name);
      listed.add(VERBATIM_PREFIX + name);
      if (!st) throw fail(`verbatim tensor ${quote(name)} is missing from the file`);
      if (st.dtype !== r.storedDtype || st.shape.join(',') !== shape.join(','))
        throw fail(
          `verbatim tensor ${quote(name)} is stored as ${st.dtype} [${st.shape.join(', ')}] but listed otherwise`,
        );
      return {
        name,
        dtype,
        shape,
        stored: 'verbatim',
        storedDtype: st.dtype,
        reason: typeof r.reason === 'string' ? r.reason : '',
      };
    }
    if (r.stored !== 'represented')
      throw fail(`${f}.stored is ${describeValue(r.stored)}, not represented or verbatim`);
    const fm = rec(r.form, `${f}.form`);
    if (fm.method !== method)
      throw fail(`${f}.form.method is ${describeValue(fm.method)}, not the artifact's ${method}`);
    const rows = int(fm.rows, `${f}.form.rows`, 1, 2 ** 40);
    const cols = int(fm.cols, `${f}.form.cols`, 1, 2 ** 40);
    if (rows * cols !== n) throw fail(`${f}.form is ${rows} × ${cols} but the tensor has ${n} values`);
    if (fm.channelAxis !== 'row' && fm.channelAxis !== 'column')
      throw fail(`${f}.form.channelAxis is ${describeValue(fm.channelAxis)}, not row or column`);
    const form: StoredForm = { method, rows, cols, channelAxis: fm.channelAxis };
    if (method === 'lowrank') form.rank = int(fm.rank, `${f}.form.rank`, 1, Math.min(rows, cols));
    if (method === 'prune') form.kept = int(fm.kept, `${f}.form.kept`, 0, n);
    for (const p of expectedParts(form)) {
      const pn = partName(name, p.suffix);
      listed.add(pn);
      const st = stored.get(pn);
      if (!st) throw fail(`tensor ${pn} is missing`);
      if (st.dtype !== p.dtype || st.shape.join(',') !== p.shape.join(','))
        throw fail(`tensor ${pn} is ${st.dtype} [${st.shape.join(', ')}], expected ${p.dtype} [${p.shape.join(', ')}]`);
    }
    return { name, dtype, shape, stored: 'represented', form };
  });
  for (const k of stored.keys()) if (!listed.has(k)) throw fail(`tensor ${quote(k)} is not described by the metadata`);
  const rep = rec(meta.report, 'weight_lens.report');
  const report: BaselineReport = {
    representedParams: num(rep.representedParams, 'report.representedParams'),
    verbatimParams: num(rep.verbatimParams, 'report.verbatimParams'),
    storedBytes: num(rep.storedBytes, 'report.storedBytes'),
    rmse: num(rep.rmse, 'report.rmse'),
    weightRms: num(rep.weightRms, 'report.weightRms'),
    layers: (Array.isArray(rep.layers) ? rep.layers : []).map((x: unknown, i: number) => {
      const r = rec(x, `report.layers[${i}]`);
      return {
        name: str(r.name, `report.layers[${i}].name`),
        shape: shapeOf(r.shape, `report.layers[${i}].shape`),
        params: num(r.params, `report.layers[${i}].params`),
        rmse: num(r.rmse, `report.layers[${i}].rmse`),
        relativeError: num(r.relativeError, `report.layers[${i}].relativeError`),
      };
    }),
  };
  return { format: BASELINE_FORMAT, version, method, tensors, source, report };
}

/**
 * Opens and validates a baseline artifact: the safetensors structure, the metadata, every part's dtype and shape,
 * no undescribed tensor, and the stored SHA-256 of the whole data. Throws `CheckpointFormatError` (one sentence).
 */
export async function readBaselineArtifact(path: string): Promise<OpenBaselineArtifact> {
  const source = await FileByteSource.open(path);
  let ok = false;
  const fail = (what: string): CheckpointFormatError =>
    new CheckpointFormatError(`${path} is not a valid Weight Lens baseline artifact: ${what}.`);
  try {
    const { tensors: stored, metadata, dataStart } = await readHeader(source, path);
    const json = Object.hasOwn(metadata, ARTIFACT_KEY) ? metadata[ARTIFACT_KEY] : undefined;
    if (json === undefined)
      throw new CheckpointFormatError(
        `${path} is a safetensors file but not a Weight Lens artifact (its metadata has no ${ARTIFACT_KEY} entry).`,
      );
    const parsed = parseJsonBounded(json, LIMITS.maxHeaderJsonDepth);
    if (!parsed.ok) throw fail(`its ${ARTIFACT_KEY} metadata ${jsonProblem(parsed, LIMITS.maxHeaderJsonDepth)}`);
    const meta = readMeta(parsed.value, stored, fail);
    if (!Object.hasOwn(metadata, ARTIFACT_DIGEST_KEY))
      throw fail(`its metadata has no ${ARTIFACT_DIGEST_KEY} checksum`);
    await verifyDigest(source, path, json, metadata, dataStart);
    const read = async (name: string): Promise<Uint8Array> => {
      const t = stored.get(name);
      if (!t) throw fail(`tensor ${quote(name)} is missing`);
      return source.read(t.offset, t.length);
    };
    const artifact: OpenBaselineArtifact = {
      path,
      meta,
      bytes: source.size,
      async reconstruction() {
        const out = new Map<string, Float32Array>();
        for (const t of meta.tensors) {
          const values = await artifact.reconstructTensor(t.name);
          if (values !== undefined) out.set(t.name, values);
        }
        return out;
      },
      async reconstructTensor(name: string) {
        for (const t of meta.tensors) {
          if (t.stored !== 'represented' || t.name !== name) continue;
          const parts = new Map<string, Uint8Array>();
          for (const p of expectedParts(t.form)) parts.set(p.suffix, await read(partName(t.name, p.suffix)));
          if (t.form.method === 'prune') {
            const set = maskCount(parts.get('mask') ?? new Uint8Array(0), t.form.rows * t.form.cols);
            if (set !== t.form.kept)
              throw fail(`${quote(t.name)}'s mask marks ${set} values but ${t.form.kept ?? 0} are stored`);
          }
          const values = decodeTensor(t.form, parts);
          if (!values.every(Number.isFinite)) throw fail(`${quote(t.name)} decodes to non-finite values`);
          return values;
        }
        return undefined;
      },
      async *verbatimBytes(name: string, signal?: AbortSignal): AsyncIterable<Uint8Array> {
        const t = stored.get(VERBATIM_PREFIX + name);
        if (!t) throw fail(`verbatim tensor ${quote(name)} is missing`);
        yield* storedBytes(source, t, signal);
      },
      close: () => source.close(),
    };
    ok = true;
    return artifact;
  } finally {
    if (!ok) await source.close();
  }
}

/** Whether `dtype` is one safetensors names (used to choose a verbatim tensor's stored dtype). */
export function storedDtypeFor(dtype: string): DType {
  return isDType(dtype) ? dtype : 'F32';
}
