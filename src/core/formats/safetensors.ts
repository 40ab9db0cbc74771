/**
 * safetensors reader and writer. A file is an 8-byte little-endian header length N, N bytes of JSON mapping tensor
 * names to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the data section at 8 + N) plus an
 * optional `__metadata__` string map, then the raw little-endian tensor bytes. Sharded checkpoints are a
 * `*.safetensors.index.json` whose `weight_map` names the shard holding each tensor; shards are opened next to it.
 *
 * The header is validated completely before any tensor is returned: length within the file and the limits, known
 * shapes, offsets in range, sizes matching shape × dtype, and no two tensors overlapping (gaps are allowed).
 * Tensor values stream through `rawTensor`, so float32 data arrives as zero-copy views of bounded chunks.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { removeStaleTemporaries, writeAtomically } from '../io/atomicFile';
import { closeOnce, readAllBytes, type ByteSource } from '../io/byteSource';
import { CheckpointFormatError, formatBytes, throwIfAborted } from '../io/errors';
import { LIMITS } from '../io/limits';
import { parseJsonBounded, jsonProblem } from '../io/json';
import { describeValue, elide, quote, setOwn } from '../io/text';
import { DTYPE_BYTES, isDType, type DType } from '../tensors/dtype';
import { checkShape, rawTensor, undecodedTensor, type TensorEntry } from '../tensors/tensor';
import type { Checkpoint, FormatReader, MetadataValue, OpenContext } from './types';

/** safetensors dtype names this reader lists but does not decode, with their element sizes in bits. */
const UNDECODED_DTYPE_BITS: ReadonlyMap<string, number> = new Map([
  ['F8_E8M0', 8],
  ['F8_E4M3FNUZ', 8],
  ['F8_E5M2FNUZ', 8],
  ['F6_E2M3', 6],
  ['F6_E3M2', 6],
  ['F4', 4],
  ['C64', 64],
  ['C128', 128],
]);

/** Result of parsing one safetensors file's header. */
interface ParsedFile {
  readonly tensors: TensorEntry[];
  readonly byName: Map<string, TensorEntry>;
  readonly metadata: ReadonlyMap<string, string>;
  readonly headerBytes: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads and validates the header of the safetensors file in `source`, returning lazily-read tensors. */
async function parseSafetensors(source: ByteSource, signal?: AbortSignal): Promise<ParsedFile> {
  const name = source.name;
  if (source.size < 8) {
    throw new CheckpointFormatError(
      `${name} is truncated: a safetensors file needs an 8-byte header length but the file is ${formatBytes(source.size)}.`,
    );
  }
  const lengthBytes = await source.read(0, 8);
  const view = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(source.size - 8)) {
    throw new CheckpointFormatError(
      `${name} is not a valid safetensors file: its header length ${formatBytes(Number(declared))} exceeds the ${formatBytes(source.size)} file (truncated, or not safetensors).`,
    );
  }
  const headerLength = Number(declared);
  if (headerLength > LIMITS.maxHeaderBytes) {
    throw new CheckpointFormatError(
      `${name} has a ${formatBytes(headerLength)} safetensors header, over the ${formatBytes(LIMITS.maxHeaderBytes)} limit.`,
    );
  }
  if (headerLength < 2)
    throw new CheckpointFormatError(
      `${name} is not a valid safetensors file: its header length is ${headerLength} bytes.`,
    );
  const headerBytes = await source.read(8, headerLength);
  if (headerBytes[0] !== 0x7b) {
    throw new CheckpointFormatError(`${name} is not a safetensors file: its header does not start with a JSON object.`);
  }
  // Each tensor opens 3 JSON containers (its entry, shape and offsets); the bound refuses huge headers before parsing.
  const maxContainers = 3 * LIMITS.maxTensors + 16;
  const parsed = parseJsonBounded(headerBytes, LIMITS.maxHeaderJsonDepth, maxContainers);
  if (!parsed.ok) {
    if (parsed.problem === 'too many values')
      throw new CheckpointFormatError(`${name} lists more than ${LIMITS.maxTensors} tensors, over the limit.`);
    throw new CheckpointFormatError(
      `${name} is not a valid safetensors file: its ${formatBytes(headerLength)} header ${jsonProblem(parsed, LIMITS.maxHeaderJsonDepth)}.`,
    );
  }
  const header = parsed.value;
  if (!isRecord(header))
    throw new CheckpointFormatError(`${name} is not a valid safetensors file: its header is not a JSON object.`);

  const metadata = new Map<string, string>();
  const dataStart = 8 + headerLength;
  const dataSize = source.size - dataStart;
  interface Pending {
    name: string;
    dtype: string;
    shape: number[];
    params: number;
    begin: number;
    end: number;
    order: number;
  }
  const pending: Pending[] = [];
  let order = 0;
  // Messages are built only on failure: a header may list a million tensors.
  const at = (key: string): string => `tensor ${quote(key)} in ${name}`;
  for (const [key, info] of Object.entries(header)) {
    if ((order & 0xfff) === 0) throwIfAborted(signal);
    if (key === '__metadata__') {
      if (!isRecord(info))
        throw new CheckpointFormatError(`${name} has an invalid __metadata__ entry: it must be a map of strings.`);
      for (const [k, v] of Object.entries(info)) metadata.set(k, typeof v === 'string' ? v : describeValue(v));
      continue;
    }
    if (pending.length >= LIMITS.maxTensors) {
      throw new CheckpointFormatError(`${name} lists more than ${LIMITS.maxTensors} tensors, over the limit.`);
    }
    if (!isRecord(info)) throw new CheckpointFormatError(`${at(key)} has an invalid header entry (not an object).`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string') throw new CheckpointFormatError(`${at(key)} has no dtype.`);
    if (!Array.isArray(shape) || !shape.every((d): d is number => typeof d === 'number')) {
      throw new CheckpointFormatError(`${at(key)} has an invalid shape ${describeValue(shape)}.`);
    }
    const params = checkShapeOf(key, at, shape);
    if (!Array.isArray(offsets) || offsets.length !== 2) {
      throw new CheckpointFormatError(`${at(key)} has invalid data_offsets ${describeValue(offsets)}.`);
    }
    const [begin, end] = offsets as unknown[];
    if (
      typeof begin !== 'number' ||
      typeof end !== 'number' ||
      !Number.isSafeInteger(begin) ||
      !Number.isSafeInteger(end) ||
      begin < 0 ||
      end < begin
    ) {
      throw new CheckpointFormatError(
        `${at(key)} has invalid data_offsets [${describeValue(begin)}, ${describeValue(end)}].`,
      );
    }
    if (end > dataSize) {
      throw new CheckpointFormatError(
        `${at(key)} has data_offsets [${begin}, ${end}] beyond the ${formatBytes(dataSize)} data section: the file is truncated or its header is corrupt.`,
      );
    }
    pending.push({ name: key, dtype, shape, params, begin, end, order: order++ });
  }

  // File order is data order; ties (empty tensors) keep header order. Then check that no two tensors overlap.
  pending.sort((a, b) => a.begin - b.begin || a.end - b.end || a.order - b.order);
  let previous: Pending | undefined;
  for (const p of pending) {
    if (previous !== undefined && p.begin < previous.end && p.end > p.begin) {
      throw new CheckpointFormatError(
        `${name} is corrupt or hostile: tensors ${quote(previous.name)} [${previous.begin}, ${previous.end}) and ${quote(p.name)} [${p.begin}, ${p.end}) overlap.`,
      );
    }
    if (p.end > p.begin || previous === undefined) previous = p;
  }

  const tensors: TensorEntry[] = [];
  const byName = new Map<string, TensorEntry>();
  for (const p of pending) {
    const size = p.end - p.begin;
    let tensor: TensorEntry;
    if (isDType(p.dtype)) {
      const expected = p.params * DTYPE_BYTES[p.dtype];
      if (expected !== size) {
        throw new CheckpointFormatError(
          `${at(p.name)} is ${p.dtype} of shape [${p.shape.join(', ')}] (${expected} bytes) but its data_offsets span ${size} bytes.`,
        );
      }
      tensor = rawTensor({ name: p.name, dtype: p.dtype, shape: p.shape, source, offset: dataStart + p.begin });
    } else {
      const bits = UNDECODED_DTYPE_BITS.get(p.dtype);
      if (bits !== undefined && Math.ceil((p.params * bits) / 8) !== size) {
        throw new CheckpointFormatError(
          `${at(p.name)} is ${p.dtype} of shape [${p.shape.join(', ')}] but its data_offsets span ${size} bytes.`,
        );
      }
      const label = p.dtype.length > 40 ? `${p.dtype.slice(0, 40)}…` : p.dtype;
      tensor = undecodedTensor(p.name, label, p.shape, size, `safetensors dtype ${quote(p.dtype, 40)} is not decoded`);
    }
    tensors.push(tensor);
    byName.set(p.name, tensor);
  }
  return { tensors, byName, metadata, headerBytes: headerLength };
}

/** `checkShape` with the message location built only when the shape is refused. */
function checkShapeOf(key: string, at: (key: string) => string, shape: readonly number[]): number {
  try {
    return checkShape('tensor', shape);
  } catch (error) {
    if (error instanceof CheckpointFormatError)
      throw new CheckpointFormatError(error.message.replace(/^tensor/, at(key)));
    throw error;
  }
}

function flattenMetadata(
  into: Record<string, MetadataValue>,
  prefix: string,
  values: Iterable<[string, unknown]>,
): void {
  for (const [k, v] of values) {
    const key = `${prefix}${k}`;
    // File-given keys are own properties, never setters: `__proto__` is just a key.
    if (typeof v === 'string') setOwn(into, key, elide(v));
    else if (typeof v === 'number' || typeof v === 'boolean' || v === null) setOwn(into, key, v);
    else setOwn(into, key, elide(describeValue(v)));
  }
}

async function openSingle(source: ByteSource, context: OpenContext): Promise<Checkpoint> {
  const parsed = await parseSafetensors(source, context.signal);
  const metadata: Record<string, MetadataValue> = {};
  flattenMetadata(metadata, '', parsed.metadata);
  return {
    format: 'safetensors',
    description: 'safetensors',
    tensors: parsed.tensors,
    metadata,
    close: closeOnce(async () => {
      await source.close();
    }),
  };
}

async function openSharded(indexSource: ByteSource, context: OpenContext): Promise<Checkpoint> {
  const name = indexSource.name;
  const bytes = await readAllBytes(indexSource, LIMITS.maxHeaderBytes);
  const parsed = parseJsonBounded(bytes, LIMITS.maxHeaderJsonDepth);
  if (!parsed.ok)
    throw new CheckpointFormatError(
      `${name} is not a valid safetensors index: it ${jsonProblem(parsed, LIMITS.maxHeaderJsonDepth)}.`,
    );
  const index = parsed.value;
  if (!isRecord(index) || !isRecord(index.weight_map)) {
    throw new CheckpointFormatError(`${name} is not a valid safetensors index: it has no "weight_map" object.`);
  }
  const weightMap = Object.entries(index.weight_map);
  if (weightMap.length > LIMITS.maxTensors) {
    throw new CheckpointFormatError(
      `${name} lists ${weightMap.length} tensors, more than the ${LIMITS.maxTensors} allowed.`,
    );
  }
  const shardSet = new Set<string>();
  for (const [tensor, shard] of weightMap) {
    if (typeof shard !== 'string' || shard.length === 0) {
      throw new CheckpointFormatError(
        `${name} maps tensor ${quote(tensor)} to an invalid shard ${describeValue(shard)}.`,
      );
    }
    if (!shardSet.has(shard)) {
      shardSet.add(shard);
      if (shardSet.size > LIMITS.maxShards) {
        throw new CheckpointFormatError(`${name} names more than ${LIMITS.maxShards} shard files, over the limit.`);
      }
    }
  }
  const shardNames = [...shardSet];
  const shards = new Map<string, { source: ByteSource; parsed: ParsedFile }>();
  const opened: ByteSource[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled(opened.map((s) => s.close()));
    await indexSource.close();
  };
  try {
    // Every shard is opened before any is parsed, so a missing or escaping one is reported at once.
    for (const shard of shardNames) {
      throwIfAborted(context.signal);
      // The opener's error names the shard and says whether it is missing or outside the folder.
      opened.push(await context.siblings.open(shard));
    }
    for (const [i, shard] of shardNames.entries()) {
      const source = opened[i];
      if (source === undefined) continue;
      shards.set(shard, { source, parsed: await parseSafetensors(source, context.signal) });
    }
    const tensors: TensorEntry[] = [];
    const listed = new Set<string>();
    for (const [tensorName, shard] of weightMap) {
      const file = shards.get(shard as string);
      const tensor = file?.parsed.byName.get(tensorName);
      if (tensor === undefined) {
        throw new CheckpointFormatError(
          `${name} says tensor ${quote(tensorName)} is in shard ${describeValue(shard)}, but that shard does not contain it.`,
        );
      }
      tensors.push(tensor);
      listed.add(tensorName);
    }
    // Tensors a shard holds but the index does not name are still part of the checkpoint's bytes: list them after.
    for (const shard of shardNames) {
      for (const tensor of shards.get(shard)?.parsed.tensors ?? []) {
        if (!listed.has(tensor.name)) {
          tensors.push(tensor);
          listed.add(tensor.name);
        }
      }
    }
    const metadata: Record<string, MetadataValue> = {};
    if (isRecord(index.metadata)) flattenMetadata(metadata, '', Object.entries(index.metadata));
    const first = shardNames[0];
    const firstMeta = first === undefined ? undefined : shards.get(first)?.parsed.metadata;
    if (firstMeta) flattenMetadata(metadata, '', firstMeta);
    setOwn(metadata, 'shards', shardNames.length);
    return {
      format: 'safetensors',
      description: `safetensors (${shardNames.length} shard${shardNames.length === 1 ? '' : 's'})`,
      tensors,
      metadata,
      close: closeOnce(async () => {
        await closeAll();
      }),
    };
  } catch (error) {
    await Promise.allSettled(opened.map((s) => s.close()));
    throw error;
  }
}

function isIndexName(fileName: string): boolean {
  return fileName.toLowerCase().endsWith('.safetensors.index.json');
}

/** Reads `.safetensors` files and sharded `*.safetensors.index.json` checkpoints. */
export const safetensorsFormat: FormatReader = {
  id: 'safetensors',
  label: 'safetensors',
  extensions: ['.safetensors', '.safetensors.index.json'],
  sniff(head: Uint8Array, fileName: string): number {
    try {
      const lower = fileName.toLowerCase();
      if (isIndexName(lower)) {
        const text = new TextDecoder('utf-8').decode(head.subarray(0, 4096));
        return text.trimStart().startsWith('{')
          ? text.includes('"weight_map"') || text.includes('"metadata"')
            ? 1
            : 0.8
          : 0.3;
      }
      const byName = lower.endsWith('.safetensors');
      if (head.length >= 10) {
        const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
        const n = view.getBigUint64(0, true);
        // The JSON header starts with '{' and then (possibly after spaces) a quoted key or '}'.
        let i = 9;
        while (i < head.length && (head[i] === 0x20 || head[i] === 0x0a)) i++;
        const next = head[i];
        if (
          n >= 2n &&
          n < BigInt(LIMITS.maxHeaderBytes) &&
          head[8] === 0x7b &&
          (next === undefined || next === 0x22 || next === 0x7d)
        ) {
          return byName ? 1 : 0.9;
        }
      }
      // Claimed by name but not by content: still ours, so that opening explains what is wrong with the file.
      return byName ? 0.2 : 0;
    } catch {
      return 0;
    }
  },
  async open(source: ByteSource, context: OpenContext): Promise<Checkpoint> {
    const nameHint = context.path.length > 0 ? context.path : source.name;
    if (isIndexName(nameHint)) return openSharded(source, context);
    return openSingle(source, context);
  },
};

// ---------------------------------------------------------------------------------------------------------------
// Writer

/** One tensor to write. `data` holds exactly `product(shape) × DTYPE_BYTES[dtype]` bytes, little-endian. */
export interface SafetensorsTensorInput {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /**
   * The element bytes: a `Uint8Array`, any typed array (its bytes are written as they lie in memory, i.e.
   * little-endian on every platform Node supports), or an async stream of byte chunks for tensors too large to hold.
   */
  readonly data: Uint8Array | ArrayBufferView | AsyncIterable<Uint8Array>;
}

/** Options of `writeSafetensors`. */
export interface WriteSafetensorsOptions {
  /** Aborts between tensors and chunks; the temporary file is removed and the target left untouched. */
  readonly signal?: AbortSignal;
  /** Told, in one sentence, about stale temporaries of the target that an interrupted earlier run left and that were removed. */
  readonly onNotice?: (message: string) => void;
  /**
   * Adds `__metadata__[key]`: the hex SHA-256 of `prefix` followed by the data section exactly as written (computed
   * while the tensors stream, then filled into a fixed-width slot of the header), so a reader can detect any change.
   */
  readonly digest?: { readonly key: string; readonly prefix?: Uint8Array };
}

/** The digest slot's placeholder: 64 hex digits, overwritten in place once the data is written. */
const DIGEST_PLACEHOLDER = '0'.repeat(64);

function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/**
 * Writes a safetensors file at `path`, atomically: the bytes go to a temporary file in the same folder, which is
 * renamed over `path` only when complete, so a failure or cancellation never leaves a partial file. Tensors are
 * written in the given order, each straight from its own buffer (nothing is concatenated in memory). The header is
 * padded with spaces to a multiple of 8 bytes, as the reference implementation does, so float data is aligned.
 * `metadata` becomes `__metadata__` (string values only, as the format requires).
 * Throws `CheckpointFormatError` for duplicate names, sizes that do not match shape × dtype, or an invalid name.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly SafetensorsTensorInput[],
  metadata?: Readonly<Record<string, string>>,
  options?: WriteSafetensorsOptions,
): Promise<void> {
  const header: Record<string, unknown> = {};
  const digest = options?.digest;
  const meta: Record<string, string> = { ...metadata };
  if (digest !== undefined) setOwn(meta, digest.key, DIGEST_PLACEHOLDER);
  if (Object.keys(meta).length > 0) header.__metadata__ = meta;
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name.length === 0)
      throw new CheckpointFormatError(`cannot write a tensor named ${JSON.stringify(t.name)}.`);
    if (Object.prototype.hasOwnProperty.call(header, t.name))
      throw new CheckpointFormatError(`cannot write two tensors named ${JSON.stringify(t.name)}.`);
    const params = checkShape(`tensor ${JSON.stringify(t.name)}`, t.shape);
    const bytes = params * DTYPE_BYTES[t.dtype];
    if (!isAsyncIterable(t.data) && t.data.byteLength !== bytes) {
      throw new CheckpointFormatError(
        `tensor ${JSON.stringify(t.name)} is ${t.dtype} of shape [${t.shape.join(', ')}] (${bytes} bytes) but ${t.data.byteLength} bytes were given.`,
      );
    }
    setOwn(header, t.name, { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] });
    sizes.push(bytes);
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Where the digest's 64 hex digits go in the file: after `"key":"` in the header.
  let digestAt = -1;
  if (digest !== undefined) {
    const slot = Buffer.from(`${JSON.stringify(digest.key)}:"${DIGEST_PLACEHOLDER}"`, 'utf8');
    const found = json.indexOf(slot);
    if (found < 0) throw new CheckpointFormatError(`cannot place the ${quote(digest.key)} digest in the header.`);
    digestAt = 8 + found + slot.length - 1 - DIGEST_PLACEHOLDER.length;
  }
  const hash = digest !== undefined ? createHash('sha256') : undefined;
  if (digest?.prefix !== undefined) hash?.update(digest.prefix);
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));

  const stale = await removeStaleTemporaries(path);
  if (stale.length > 0)
    options?.onNotice?.(
      `Removed ${stale.length} temporary file${stale.length === 1 ? '' : 's'} that an interrupted earlier run left beside ${basename(path)}.`,
    );
  await writeAtomically(path, async (handle) => {
    let position = 0;
    let dataStart = Infinity;
    const write = async (chunk: Uint8Array): Promise<void> => {
      if (position >= dataStart) hash?.update(chunk);
      let done = 0;
      while (done < chunk.length) {
        const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, position);
        done += bytesWritten;
        position += bytesWritten;
      }
    };
    await write(prefix);
    await write(json);
    dataStart = position;
    for (let i = 0; i < tensors.length; i++) {
      throwIfAborted(options?.signal);
      const t = tensors[i];
      const expected = sizes[i] ?? 0;
      if (t === undefined) continue;
      if (isAsyncIterable(t.data)) {
        let written = 0;
        for await (const chunk of t.data) {
          throwIfAborted(options?.signal);
          written += chunk.length;
          if (written > expected) break;
          await write(chunk);
        }
        if (written !== expected) {
          throw new CheckpointFormatError(
            `tensor ${JSON.stringify(t.name)} streamed ${written} bytes but its shape and dtype need ${expected}.`,
          );
        }
      } else {
        await write(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      }
    }
    if (hash !== undefined && digestAt >= 0) {
      const hex = Buffer.from(hash.digest('hex'), 'utf8');
      await handle.write(hex, 0, hex.length, digestAt);
    }
  });
}
