/**
 * TensorFlow.js reader: `model.json` of a LayersModel (`modelTopology` + `weightsManifest`) or a GraphModel
 * (`format: "graph-model"`), and bare weights manifests (`weights_manifest.json`: a JSON array of `{paths, weights}`
 * groups).
 *
 * In each group the weights are stored back to back, in manifest order, across the group's shard files concatenated
 * in `paths` order; a weight occupies params × (bytes per element) bytes: float32/int32 4, bool 1, complex64 8, or
 * the quantised size (uint8 1, uint16 2, float16 2). Quantised uint8/uint16 values decode as `q × scale + min`
 * (rounded when the original dtype is int32); float16-quantised values decode as half floats. String weights are
 * each a little-endian uint32 byte length followed by the bytes; they are listed, not decoded.
 *
 * Shards are opened through `OpenContext.siblings` (confined to the model's folder), and every weight's byte range
 * is checked against the shards' total size before any tensor is returned.
 */
import { checkRange, closeOnce, readAllBytes, type ByteSource } from '../io/byteSource';
import { CheckpointFormatError, formatBytes, throwIfAborted } from '../io/errors';
import { LIMITS } from '../io/limits';
import { jsonProblem, parseJsonBounded } from '../io/json';
import { describeValue, elide, quote, setOwn } from '../io/text';
import type { DType, ValueChunk } from '../tensors/dtype';
import {
  checkShape,
  rawTensor,
  undecodedTensor,
  uniqueNamer,
  type TensorEntry,
  type ValueStreamOptions,
} from '../tensors/tensor';
import type { Checkpoint, FormatReader, MetadataValue, OpenContext } from './types';

/** Most strings a string weight may hold: their lengths are read one by one to find the next weight's offset. */
const MAX_STRING_ELEMENTS = 1_000_000;

/** Element types of an unquantised weight: decoded dtype (or undefined if listed only) and bytes per element. */
const PLAIN_DTYPES: ReadonlyMap<string, { dtype?: DType; bytes: number }> = new Map<
  string,
  { dtype?: DType; bytes: number }
>([
  ['float32', { dtype: 'F32', bytes: 4 }],
  ['int32', { dtype: 'I32', bytes: 4 }],
  ['bool', { dtype: 'BOOL', bytes: 1 }],
  ['uint8', { dtype: 'U8', bytes: 1 }],
  ['uint16', { dtype: 'U16', bytes: 2 }],
  ['float16', { dtype: 'F16', bytes: 2 }],
  ['complex64', { bytes: 8 }],
]);

/** Storage of a quantised weight (a `Map`: dtype names come from the file, so `__proto__` must be just a name). */
const QUANTIZED_DTYPES: ReadonlyMap<string, { dtype: DType; bytes: number }> = new Map<
  string,
  { dtype: DType; bytes: number }
>([
  ['uint8', { dtype: 'U8', bytes: 1 }],
  ['uint16', { dtype: 'U16', bytes: 2 }],
  ['float16', { dtype: 'F16', bytes: 2 }],
]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The shards of one weight group as one contiguous source. Does not own the shard sources: the checkpoint closes
 * them.
 */
class ConcatByteSource implements ByteSource {
  readonly size: number;
  private readonly starts: number[];

  constructor(
    private readonly parts: readonly ByteSource[],
    readonly name: string,
  ) {
    this.starts = [];
    let at = 0;
    for (const p of parts) {
      this.starts.push(at);
      at += p.size;
    }
    this.size = at;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    // Find the last part starting at or before `offset` that is non-empty.
    let index = 0;
    while (index + 1 < this.parts.length && (this.starts[index + 1] ?? Infinity) <= offset) index++;
    const first = this.parts[index];
    const firstStart = this.starts[index] ?? 0;
    if (first !== undefined && offset + length <= firstStart + first.size)
      return first.read(offset - firstStart, length);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const part = this.parts[index];
      const start = this.starts[index] ?? 0;
      if (part === undefined) throw new CheckpointFormatError(`${this.name} is shorter than expected.`);
      const from = offset + done - start;
      const take = Math.min(length - done, part.size - from);
      if (take > 0) {
        out.set(await part.read(from, take), done);
        done += take;
      }
      index++;
    }
    return out;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Wraps an entry so that every value is rounded (int32 weights quantised to uint8/uint16 round after decoding). */
function roundedTensor(entry: TensorEntry): TensorEntry {
  return {
    ...entry,
    async *values(options?: ValueStreamOptions): AsyncIterable<ValueChunk> {
      for await (const chunk of entry.values(options)) {
        const out = new Float64Array(chunk.length);
        for (let i = 0; i < chunk.length; i++) out[i] = Math.round(chunk[i] ?? 0);
        yield out;
      }
    },
  };
}

/** A weight as the manifest describes it, validated. */
interface WeightSpec {
  readonly name: string;
  readonly shape: number[];
  readonly dtype: string;
  readonly quantization?: {
    readonly dtype: string;
    readonly scale?: number;
    readonly min?: number;
    readonly originalDtype?: string;
  };
}

function parseWeightSpec(value: unknown, where: string, group: number, index: number): WeightSpec {
  const at = `${where}: weight ${index + 1} of group ${group + 1}`;
  if (!isRecord(value)) throw new CheckpointFormatError(`${at} is not an object.`);
  const { name, shape, dtype, quantization } = value;
  if (typeof name !== 'string') throw new CheckpointFormatError(`${at} has no "name" string.`);
  if (!Array.isArray(shape)) throw new CheckpointFormatError(`${where}: weight ${quote(name)} has no "shape" list.`);
  const dims: number[] = [];
  for (const d of shape) {
    if (typeof d !== 'number')
      throw new CheckpointFormatError(
        `${where}: weight ${quote(name)} has a shape entry ${describeValue(d)} that is not a number.`,
      );
    dims.push(d);
  }
  if (dims.length > LIMITS.maxRank)
    throw new CheckpointFormatError(
      `${where}: weight ${quote(name)} has ${dims.length} dimensions, more than the ${LIMITS.maxRank} allowed.`,
    );
  if (typeof dtype !== 'string')
    throw new CheckpointFormatError(`${where}: weight ${quote(name)} has no "dtype" string.`);
  if (quantization === undefined || quantization === null) return { name, shape: dims, dtype };
  if (!isRecord(quantization) || typeof quantization.dtype !== 'string') {
    throw new CheckpointFormatError(`${where}: weight ${quote(name)} has a "quantization" without a "dtype".`);
  }
  const q: { dtype: string; scale?: number; min?: number; originalDtype?: string } = { dtype: quantization.dtype };
  if (typeof quantization.scale === 'number') q.scale = quantization.scale;
  if (typeof quantization.min === 'number') q.min = quantization.min;
  if (typeof quantization.original_dtype === 'string') q.originalDtype = quantization.original_dtype;
  return { name, shape: dims, dtype, quantization: q };
}

interface GroupSpec {
  readonly paths: string[];
  readonly weights: WeightSpec[];
}

function parseManifest(value: unknown, where: string): GroupSpec[] {
  if (!Array.isArray(value))
    throw new CheckpointFormatError(`${where}: "weightsManifest" is not a list of weight groups.`);
  const groups: GroupSpec[] = [];
  let shards = 0;
  let weights = 0;
  value.forEach((g: unknown, gi) => {
    if (!isRecord(g) || !Array.isArray(g.paths) || !Array.isArray(g.weights)) {
      throw new CheckpointFormatError(`${where}: weight group ${gi + 1} lacks its "paths" and "weights" lists.`);
    }
    const paths: string[] = [];
    for (const p of g.paths) {
      if (typeof p !== 'string' || p.length === 0)
        throw new CheckpointFormatError(
          `${where}: weight group ${gi + 1} names an invalid shard path ${describeValue(p)}.`,
        );
      paths.push(p);
    }
    shards += paths.length;
    weights += g.weights.length;
    if (shards > LIMITS.maxShards)
      throw new CheckpointFormatError(`${where} names more than ${LIMITS.maxShards} shard files, over the limit.`);
    if (weights > LIMITS.maxTensors)
      throw new CheckpointFormatError(`${where} lists more than ${LIMITS.maxTensors} weights, over the limit.`);
    groups.push({ paths, weights: g.weights.map((w: unknown, wi) => parseWeightSpec(w, where, gi, wi)) });
  });
  return groups;
}

/** Which kind of TF.js JSON a parsed document is. */
type Kind = 'layers-model' | 'graph-model' | 'weights-manifest';

function describeTopology(
  doc: Record<string, unknown>,
  kind: Kind,
  into: Record<string, MetadataValue>,
): string | undefined {
  const topology = doc.modelTopology;
  if (!isRecord(topology)) return undefined;
  if (kind === 'graph-model') {
    const nodes = topology.node;
    if (Array.isArray(nodes)) {
      into.nodes = nodes.length;
      const ops = new Map<string, number>();
      for (const n of nodes) if (isRecord(n) && typeof n.op === 'string') ops.set(n.op, (ops.get(n.op) ?? 0) + 1);
      for (const [op, count] of [...ops.entries()]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .slice(0, 500))
        into[`op.${op}`] = count;
    }
    if (isRecord(topology.versions) && typeof topology.versions.producer === 'number')
      into['graph producer version'] = topology.versions.producer;
    return undefined;
  }
  if (typeof topology.keras_version === 'string') into.keras_version = elide(topology.keras_version);
  if (typeof topology.backend === 'string') into.backend = elide(topology.backend);
  const config = isRecord(topology.model_config) ? topology.model_config : topology;
  const className = typeof config.class_name === 'string' ? config.class_name : undefined;
  if (className !== undefined) into['model class'] = elide(className);
  const inner = config.config;
  const layers = Array.isArray(inner)
    ? inner
    : isRecord(inner) && Array.isArray(inner.layers)
      ? inner.layers
      : undefined;
  if (layers !== undefined) into.layers = layers.length;
  if (isRecord(inner) && typeof inner.name === 'string') into['model name'] = elide(inner.name);
  return className;
}

async function openShard(context: OpenContext, where: string, path: string): Promise<ByteSource> {
  try {
    return await context.siblings.open(path);
  } catch (error) {
    if (error instanceof CheckpointFormatError) {
      throw new CheckpointFormatError(
        `${where} names weight shard ${quote(path)}, which cannot be opened: ${error.message}`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** Bytes of a string weight, read from the little-endian uint32 lengths that precede each string. */
async function stringWeightBytes(
  source: ByteSource,
  offset: number,
  count: number,
  where: string,
  name: string,
): Promise<number> {
  if (count > MAX_STRING_ELEMENTS)
    throw new CheckpointFormatError(
      `${where}: string weight ${quote(name)} has ${count} strings, more than the ${MAX_STRING_ELEMENTS} listed.`,
    );
  let at = offset;
  let read = 0;
  for (; read < count && at + 4 <= source.size; read++) {
    const b = await source.read(at, 4);
    at += 4 + new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  }
  if (read < count || at > source.size) {
    throw new CheckpointFormatError(
      `${where}: string weight ${quote(name)} runs past the end of its shards (${formatBytes(source.size)}): a shard is truncated or missing.`,
    );
  }
  return at - offset;
}

/** Builds the tensor for one weight at `offset` of its group, returning it and its stored size in bytes. */
async function weightTensor(
  spec: WeightSpec,
  name: string,
  source: ByteSource,
  offset: number,
  where: string,
): Promise<{ entry: TensorEntry; bytes: number }> {
  const params = checkShape(`${where}: weight ${quote(spec.name)}`, spec.shape);
  const q = spec.quantization;
  if (q !== undefined) {
    const stored = QUANTIZED_DTYPES.get(q.dtype);
    if (stored === undefined) {
      throw new CheckpointFormatError(
        `${where}: weight ${quote(spec.name)} uses quantization dtype ${quote(q.dtype)}, which TF.js does not define (uint8, uint16, float16).`,
      );
    }
    const bytes = params * stored.bytes;
    const original = q.originalDtype ?? spec.dtype;
    const originalNote = q.originalDtype !== undefined ? `original dtype ${q.originalDtype}` : `dtype ${spec.dtype}`;
    if (q.dtype === 'float16') {
      if (spec.dtype !== 'float32')
        throw new CheckpointFormatError(
          `${where}: weight ${quote(spec.name)} is float16-quantised but its dtype is ${quote(spec.dtype)}; TF.js allows that only for float32.`,
        );
      const entry = rawTensor({
        name,
        dtype: 'F16',
        displayDtype: 'float16 (quantized)',
        shape: spec.shape,
        source,
        offset,
        note: `float16-quantised; ${originalNote}`,
      });
      return { entry, bytes };
    }
    if (q.scale === undefined || q.min === undefined || !Number.isFinite(q.scale) || !Number.isFinite(q.min)) {
      throw new CheckpointFormatError(
        `${where}: weight ${quote(spec.name)} is ${quote(q.dtype)}-quantised but lacks a finite "scale" and "min".`,
      );
    }
    if (spec.dtype !== 'float32' && spec.dtype !== 'int32') {
      throw new CheckpointFormatError(
        `${where}: weight ${quote(spec.name)} is ${quote(q.dtype)}-quantised but its dtype is ${quote(spec.dtype)}; TF.js allows float32 and int32.`,
      );
    }
    const entry = rawTensor({
      name,
      dtype: stored.dtype,
      displayDtype: `${q.dtype} (quantized)`,
      shape: spec.shape,
      source,
      offset,
      dequantize: { scale: q.scale, min: q.min },
      note: `${q.dtype}-quantised: value = q × ${q.scale} + ${q.min}; ${originalNote}${original === 'int32' ? ' (rounded)' : ''}`,
    });
    return { entry: original === 'int32' ? roundedTensor(entry) : entry, bytes };
  }
  if (spec.dtype === 'string') {
    const bytes = await stringWeightBytes(source, offset, params, where, spec.name);
    return {
      entry: undecodedTensor(name, 'string', spec.shape, bytes, 'TF.js string weights are text, not numbers.'),
      bytes,
    };
  }
  const plain = PLAIN_DTYPES.get(spec.dtype);
  if (plain === undefined) {
    throw new CheckpointFormatError(
      `${where}: weight ${quote(spec.name)} has dtype ${quote(spec.dtype)}, which TF.js weights do not use, so the weights after it cannot be located.`,
    );
  }
  const bytes = params * plain.bytes;
  if (plain.dtype === undefined) {
    if (offset + bytes > source.size)
      throw new CheckpointFormatError(`${where}: weight ${quote(spec.name)} runs past the end of its shards.`);
    return {
      entry: undecodedTensor(name, spec.dtype, spec.shape, bytes, `TF.js ${spec.dtype} weights are not decoded.`),
      bytes,
    };
  }
  return { entry: rawTensor({ name, dtype: plain.dtype, shape: spec.shape, source, offset }), bytes };
}

/** Bytes a weight needs, before its tensor is built (so shard sizes can be checked first). */
function plannedBytes(spec: WeightSpec): number | undefined {
  const params = checkShape(`weight ${quote(spec.name)}`, spec.shape);
  const q = spec.quantization;
  if (q !== undefined) {
    const stored = QUANTIZED_DTYPES.get(q.dtype);
    return stored === undefined ? undefined : params * stored.bytes;
  }
  const plain = PLAIN_DTYPES.get(spec.dtype);
  return plain === undefined ? undefined : params * plain.bytes;
}

function classify(doc: unknown): Kind | undefined {
  if (Array.isArray(doc))
    return doc.every((g) => isRecord(g) && Array.isArray(g.paths) && Array.isArray(g.weights))
      ? 'weights-manifest'
      : undefined;
  if (!isRecord(doc)) return undefined;
  if (doc.format === 'graph-model') return 'graph-model';
  if (doc.format === 'layers-model') return 'layers-model';
  if ('weightsManifest' in doc || 'modelTopology' in doc) {
    const topology = doc.modelTopology;
    return isRecord(topology) && Array.isArray(topology.node) ? 'graph-model' : 'layers-model';
  }
  return undefined;
}

async function openTfjs(source: ByteSource, context: OpenContext): Promise<Checkpoint> {
  const where = source.name;
  const bytes = await readAllBytes(source, LIMITS.maxHeaderBytes);
  const parsed = parseJsonBounded(bytes, LIMITS.maxModelJsonDepth);
  if (!parsed.ok)
    throw new CheckpointFormatError(
      `${where} is not a TF.js model: it ${jsonProblem(parsed, LIMITS.maxModelJsonDepth)}.`,
    );
  const doc = parsed.value;
  const kind = classify(doc);
  if (kind === undefined) {
    throw new CheckpointFormatError(
      `${where} is not a TF.js model.json or weights manifest: it has no "modelTopology" or "weightsManifest".`,
    );
  }
  const record = isRecord(doc) ? doc : {};
  const manifestValue = Array.isArray(doc) ? doc : record.weightsManifest;
  if (manifestValue === undefined) {
    throw new CheckpointFormatError(
      `${where} is a TF.js ${kind === 'graph-model' ? 'GraphModel' : 'LayersModel'} topology without a "weightsManifest", so it holds no weights.`,
    );
  }
  const groups = parseManifest(manifestValue, where);

  const opened: ByteSource[] = [];
  try {
    const tensors: TensorEntry[] = [];
    const unique = uniqueNamer();
    let shardCount = 0;
    let quantized = 0;
    for (let gi = 0; gi < groups.length; gi++) {
      const group = groups[gi];
      if (group === undefined) continue;
      const parts: ByteSource[] = [];
      for (const path of group.paths) {
        throwIfAborted(context.signal);
        const shard = await openShard(context, where, path);
        opened.push(shard);
        parts.push(shard);
      }
      shardCount += parts.length;
      const label =
        group.paths.length === 0
          ? `weight group ${gi + 1}`
          : `${group.paths[0] ?? ''}${group.paths.length > 1 ? ` + ${group.paths.length - 1} more` : ''}`;
      const concat = new ConcatByteSource(parts, label);
      // Check the whole group against the shards before building anything, for a clear "truncated" message.
      let planned = 0;
      let exact = true;
      for (const w of group.weights) {
        const b = plannedBytes(w);
        if (b === undefined) exact = false;
        else planned += b;
      }
      if (planned > concat.size) {
        const names = group.paths.map((p) => quote(p)).join(', ');
        throw new CheckpointFormatError(
          `${where}: weight group ${gi + 1} needs ${exact ? '' : 'at least '}${formatBytes(planned)} (${planned} bytes) but its shard file${group.paths.length === 1 ? '' : 's'} ${names} hold${group.paths.length === 1 ? 's' : ''} only ${formatBytes(concat.size)} (${concat.size} bytes): a shard is truncated or missing.`,
        );
      }
      let offset = 0;
      for (const spec of group.weights) {
        throwIfAborted(context.signal);
        const name = unique(spec.name);
        const built = await weightTensor(spec, name, concat, offset, where);
        if (spec.quantization !== undefined) quantized++;
        tensors.push(built.entry);
        offset += built.bytes;
      }
      if (offset > concat.size) {
        throw new CheckpointFormatError(
          `${where}: weight group ${gi + 1} needs ${formatBytes(offset)} but its shards hold only ${formatBytes(concat.size)}: a shard is truncated or missing.`,
        );
      }
    }

    const metadata: Record<string, MetadataValue> = { format: kind };
    if (typeof record.generatedBy === 'string') metadata.generatedBy = elide(record.generatedBy);
    if (typeof record.convertedBy === 'string') metadata.convertedBy = elide(record.convertedBy);
    const className = describeTopology(record, kind, metadata);
    metadata['weight groups'] = groups.length;
    metadata.shards = shardCount;
    if (quantized > 0) metadata['quantized weights'] = quantized;
    if (isRecord(record.userDefinedMetadata)) {
      for (const [k, v] of Object.entries(record.userDefinedMetadata).slice(0, 1000)) {
        setOwn(
          metadata,
          `user.${k}`,
          typeof v === 'string'
            ? elide(v)
            : typeof v === 'number' || typeof v === 'boolean' || v === null
              ? v
              : elide(describeValue(v)),
        );
      }
    }
    const kindLabel =
      kind === 'layers-model' ? 'LayersModel' : kind === 'graph-model' ? 'GraphModel' : 'weights manifest';
    const facts = [className, `${shardCount} shard${shardCount === 1 ? '' : 's'}`].filter(
      (x): x is string => x !== undefined,
    );
    return {
      format: 'tfjs',
      description: `TF.js ${kindLabel} (${facts.join(', ')})`,
      tensors,
      metadata,
      close: closeOnce(async () => {
        await Promise.allSettled(opened.map((s) => s.close()));
        await source.close();
      }),
    };
  } catch (error) {
    await Promise.allSettled(opened.map((s) => s.close()));
    throw error;
  }
}

/** Confidence from the first bytes: only JSON whose keys name a TF.js model or manifest scores above 0. */
function sniffTfjs(head: Uint8Array): number {
  let text = new TextDecoder('utf-8', { fatal: false }).decode(head.subarray(0, 64 * 1024));
  text = text.replace(/^\uFEFF/, '').trimStart();
  if (text.startsWith('{')) {
    if (/"format"\s*:\s*"(layers|graph)-model"/.test(text)) return 0.95;
    if (text.includes('"weightsManifest"') || text.includes('"modelTopology"')) return 0.9;
    return 0;
  }
  if (text.startsWith('[')) {
    return /^\[\s*\{/.test(text) && text.includes('"paths"') && text.includes('"weights"') ? 0.8 : 0;
  }
  return 0;
}

/** Reads TensorFlow.js models (`model.json`, LayersModel or GraphModel) and weights manifests with their shards. */
export const tfjsFormat: FormatReader = {
  id: 'tfjs',
  label: 'TensorFlow.js',
  extensions: ['model.json', 'weights_manifest.json'],
  sniff(head: Uint8Array): number {
    try {
      return sniffTfjs(head);
    } catch {
      return 0;
    }
  },
  open: openTfjs,
};
