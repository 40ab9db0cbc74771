/**
 * PyTorch reader for zip-based `torch.save` files (`.pt`, `.pth`, `.bin`, `.ckpt`; torch ≥ 1.6) and simple
 * TorchScript archives (`torch.jit.save`). The archive's `<prefix>/data.pkl` is run through the safe unpickler
 * (containers/pickle.ts: plain data only, anything else refused by name), nested dicts and lists are flattened to
 * dotted names (`state_dict.layer1.0.conv1.weight`), non-tensor scalars (epoch, learning rate) become metadata, and
 * each tensor reads its values lazily from its storage record `<prefix>/data/<key>`:
 *
 * - contiguous tensors stream straight from the (stored) zip member with ranged reads;
 * - non-contiguous views (a transposed or strided tensor saved as a view, an expanded tensor) are gathered through
 *   their strides in bounded chunks, so values always come out in row-major order of the logical shape;
 * - tensors sharing one storage (views, tied weights) are all listed; the first counts the storage's bytes and the
 *   others count 0 bytes with the note `shares storage with <first>`, so totals count each storage once;
 * - `<prefix>/byteorder` = `big` (written on big-endian hosts) decodes storages as big-endian.
 *
 * Every storage is checked against the tensors that use it (size, offset, strides) when the file is opened. The
 * legacy pre-1.6 format (a bare pickle stream) is recognised by its magic number and refused with a clear message.
 */
import { closeOnce, MemoryByteSource, SliceByteSource, type ByteSource } from '../io/byteSource';
import { CheckpointFormatError, formatBytes, throwIfAborted } from '../io/errors';
import { LIMITS } from '../io/limits';
import { DTYPE_BYTES, decodeValues, type DType, type ValueChunk } from '../tensors/dtype';
import {
  DEFAULT_CHUNK_ELEMENTS,
  checkShape,
  rawTensor,
  undecodedTensor,
  type TensorEntry,
  type ValueStreamOptions,
  type WeightedChunk,
  uniqueNamer,
} from '../tensors/tensor';
import { fortranToRowMajor, parseDescr } from '../containers/npy';
import {
  PickleDict,
  describeValue,
  shortRepr,
  unpickle,
  type NumpyArray,
  type PickleValue,
  type TorchStorage,
  type TorchTensor,
} from '../containers/pickle';
import { looksLikeZip, openZip, ZIP_STORED, type ZipArchive, type ZipEntry } from '../containers/zip';
import type { Checkpoint, FormatReader, MetadataValue, OpenContext } from './types';

/** The legacy (pre-1.6) torch.save stream starts with pickled magic number 0x1950a86a20f9469cfc6c (LONG1, 10 bytes). */
const LEGACY_MAGIC = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/** Longest metadata string kept; longer ones are elided (the Checkpoint contract says 1 kB). */
const MAX_METADATA_STRING = 1000;
/** Most pickled objects visited while flattening: a DAG built through the memo could otherwise fan out without bound. */
const MAX_VISITS = 4 * LIMITS.maxTensors;
/** Bytes of storage read at once when gathering a strided view whose span is too wide to read whole. */
const GATHER_WINDOW_BYTES = 16 * 1024 * 1024;

/** True if `head` is the start of a legacy (non-zip) torch.save file. */
export function isLegacyTorchSave(head: Uint8Array): boolean {
  if (head.length < 2 + LEGACY_MAGIC.length || head[0] !== 0x80) return false;
  return LEGACY_MAGIC.every((b, i) => head[2 + i] === b);
}

/** Name of the first member in a zip's first local header, or undefined. */
function firstMemberName(head: Uint8Array): string | undefined {
  if (head.length < 30) return undefined;
  const nameLength = (head[26] ?? 0) | ((head[27] ?? 0) << 8);
  if (30 + nameLength > head.length) return undefined;
  return new TextDecoder('utf-8', { fatal: false }).decode(head.subarray(30, 30 + nameLength));
}

function containsAscii(head: Uint8Array, text: string): boolean {
  const needle = Array.from(text, (c) => c.charCodeAt(0));
  outer: for (let i = 0; i + needle.length <= head.length; i++) {
    for (let j = 0; j < needle.length; j++) if (head[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/** Member names that only a torch.save / torch.jit.save archive has. */
const TORCH_MEMBER = /^[^/]+\/(data\.pkl|data\/\d+|constants\.pkl|version|byteorder|code\/.*|\.data\/.*)$/;

/** Zip-based `torch.save` checkpoints and simple TorchScript archives. */
export const pytorchFormat: FormatReader = {
  id: 'pytorch',
  label: 'PyTorch (torch.save)',
  extensions: ['.pt', '.pth', '.bin', '.ckpt'],
  sniff(head: Uint8Array, fileName: string): number {
    try {
      if (isLegacyTorchSave(head)) return 0.9;
      if (!looksLikeZip(head)) return 0;
      const first = firstMemberName(head);
      if (first !== undefined && TORCH_MEMBER.test(first)) return 0.95;
      if (containsAscii(head, '/data.pkl')) return 0.9;
      const lower = fileName.toLowerCase();
      if (lower.endsWith('.pt') || lower.endsWith('.pth') || lower.endsWith('.ckpt')) return 0.3;
      return 0;
    } catch {
      return 0;
    }
  },
  open: openPytorch,
};

/** A tensor found in the pickle, before its storage is resolved. */
type Found = { readonly name: string; readonly value: TorchTensor | NumpyArray };

async function openPytorch(source: ByteSource, context: OpenContext): Promise<Checkpoint> {
  const label = source.name;
  const head = await source.read(0, Math.min(source.size, 64));
  if (isLegacyTorchSave(head)) {
    throw new CheckpointFormatError(
      `${label} was written by torch.save before PyTorch 1.6: the legacy torch.save format is not supported; re-save it with torch>=1.6 (torch.save(torch.load(path), path)) to get the zip format.`,
    );
  }
  if (!looksLikeZip(head)) {
    throw new CheckpointFormatError(
      `${label} is not a PyTorch zip checkpoint: it does not start with a zip header (PK\\x03\\x04).`,
    );
  }
  const archive = await openZip(source, context.signal ? { signal: context.signal } : {});
  const dataPkl = findDataPkl(archive);
  const prefix = dataPkl.name.slice(0, dataPkl.name.length - 'data.pkl'.length);
  const torchScript =
    archive.get(`${prefix}constants.pkl`) !== undefined ||
    archive.entries.some((e) => e.name.startsWith(`${prefix}code/`));
  const littleEndian = await readByteOrder(archive, prefix);
  throwIfAborted(context.signal);

  const pickleBytes = await archive.readEntry(dataPkl, LIMITS.maxInMemoryBytes, context.signal);
  let root: PickleValue;
  try {
    root = unpickle(pickleBytes, {
      label,
      ...(torchScript
        ? { inertClass: (module: string) => module === '__torch__' || module.startsWith('__torch__.') }
        : {}),
    }).value;
  } catch (error) {
    if (torchScript && error instanceof CheckpointFormatError) {
      const detail = error.message.startsWith(label)
        ? error.message.slice(label.length).trim().replace(/\.$/, '')
        : error.message;
      throw new CheckpointFormatError(
        `${label} is a TorchScript archive whose data.pkl cannot be read as plain data (it ${detail.replace(/^(it )/, '')}); save its state_dict() with torch.save to inspect it.`,
        { cause: error },
      );
    }
    throw error;
  }
  throwIfAborted(context.signal);

  const metadata: Record<string, MetadataValue> = {};
  const found = flatten(root, metadata, torchScript, label);
  if (found.length > LIMITS.maxTensors) {
    throw new CheckpointFormatError(
      `${label} lists ${found.length} tensors, more than the ${LIMITS.maxTensors} allowed.`,
    );
  }
  const storages = new StorageTable(archive, prefix, label);
  const firstUser = new Map<string, string>();
  const tensors: TensorEntry[] = [];
  for (const { name, value } of found) {
    throwIfAborted(context.signal);
    if (value.kind === 'ndarray') {
      tensors.push(numpyTensor(name, value));
      continue;
    }
    const storage = storages.resolve(value.storage);
    checkExtent(label, name, value, storage);
    const sharer = firstUser.get(storage.key);
    if (sharer === undefined) firstUser.set(storage.key, name);
    tensors.push(torchTensor(name, value, storage, littleEndian, sharer));
  }

  const description = torchScript
    ? 'TorchScript archive (torch.jit.save)'
    : `PyTorch zip (torch.save)${littleEndian ? '' : ', big-endian storages'}`;
  return {
    format: 'pytorch',
    description,
    tensors,
    metadata,
    close: closeOnce(async () => {
      storages.release();
      await source.close();
    }),
  };
}

/** The `<prefix>/data.pkl` member (the shallowest one if, oddly, there are several). */
function findDataPkl(archive: ZipArchive): ZipEntry {
  let best: ZipEntry | undefined;
  for (const entry of archive.entries) {
    if (!/^[^/]+\/data\.pkl$/.test(entry.name)) continue;
    if (best === undefined) best = entry;
  }
  if (best === undefined) {
    throw new CheckpointFormatError(
      `${archive.source.name} is a zip archive without a <name>/data.pkl record, so it is not a torch.save checkpoint (it has ${archive.entries.length} members${archive.entries[0] ? `, the first is ${JSON.stringify(archive.entries[0].name)}` : ''}).`,
    );
  }
  return best;
}

async function readByteOrder(archive: ZipArchive, prefix: string): Promise<boolean> {
  const entry = archive.get(`${prefix}byteorder`);
  if (entry === undefined) return true;
  const text = new TextDecoder().decode(await archive.readEntry(entry, 64)).trim();
  if (text === 'little') return true;
  if (text === 'big') return false;
  throw new CheckpointFormatError(
    `${archive.source.name} has an invalid byteorder record ${JSON.stringify(text.slice(0, 20))} (expected "little" or "big").`,
  );
}

// ---------------------------------------------------------------- flattening

/** Walks the unpickled object, collecting tensors with dotted names and scalars as metadata. */
function flatten(
  root: PickleValue,
  metadata: Record<string, MetadataValue>,
  torchScript: boolean,
  label: string,
): Found[] {
  const found: Found[] = [];
  const unique = uniqueNamer();
  const onPath = new Set<object>();
  let visits = 0;
  let metadataCount = 0;

  const setMeta = (name: string, value: MetadataValue): void => {
    if (torchScript || metadataCount >= LIMITS.maxMetadataEntries) return;
    const key = name === '' ? 'value' : name;
    if (Object.prototype.hasOwnProperty.call(metadata, key)) return;
    metadata[key] =
      typeof value === 'string' && value.length > MAX_METADATA_STRING
        ? `${value.slice(0, MAX_METADATA_STRING - 1)}…`
        : value;
    metadataCount++;
  };
  const join = (prefix: string, key: string): string => (prefix === '' ? key : `${prefix}.${key}`);

  const walk = (value: PickleValue, name: string, depth: number): void => {
    if (++visits > MAX_VISITS) {
      throw new CheckpointFormatError(
        `${label} holds more than ${MAX_VISITS} pickled objects; refusing it as hostile.`,
      );
    }
    if (depth > LIMITS.maxNesting) {
      throw new CheckpointFormatError(
        `${label} nests containers deeper than ${LIMITS.maxNesting} levels; refusing it as hostile.`,
      );
    }
    if (value === null || typeof value !== 'object') {
      setMeta(name, typeof value === 'bigint' ? value.toString() : value);
      return;
    }
    if (value instanceof Uint8Array) {
      setMeta(name, `<${value.length} bytes>`);
      return;
    }
    if (onPath.has(value)) return; // a cycle built through the memo: nothing new below
    onPath.add(value);
    try {
      if (value instanceof PickleDict) {
        for (const [k, v] of value.entries) walk(v, join(name, keyName(k)), depth + 1);
        return;
      }
      switch (value.kind) {
        case 'tensor':
        case 'ndarray':
          found.push({ name: unique(name === '' ? 'tensor' : name), value });
          return;
        case 'storage':
          // A bare storage saved on its own: list it as the 1-D tensor it holds.
          found.push({
            name: unique(name === '' ? 'storage' : name),
            value: {
              kind: 'tensor',
              storage: value,
              storageOffset: 0,
              shape: [value.numel],
              stride: [1],
              requiresGrad: false,
              parameter: false,
            },
          });
          return;
        case 'list':
        case 'tuple':
        case 'set':
          if (value.kind !== 'set' && value.items.some(holdsData)) {
            value.items.forEach((v, i) => {
              walk(v, join(name, String(i)), depth + 1);
            });
          } else {
            setMeta(name, repr(value, MAX_METADATA_STRING + 1));
          }
          return;
        case 'object':
          if (value.state instanceof PickleDict) {
            walk(value.state, name, depth + 1);
          } else {
            setMeta(name, repr(value, MAX_METADATA_STRING + 1));
          }
          return;
        case 'global':
          setMeta(name, `${value.module}.${value.name}`);
          return;
        case 'npdtype':
          setMeta(name, `numpy.dtype('${value.byteOrder === '>' ? '>' : ''}${value.code}')`);
          return;
      }
    } finally {
      onPath.delete(value);
    }
  };
  walk(root, '', 0);
  return found;
}

/** True if `v` is a container that may hold tensors (so a list of it is walked, not rendered as one string). */
function holdsData(v: PickleValue): boolean {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return false;
  if (v instanceof PickleDict) return true;
  return (
    v.kind === 'tensor' ||
    v.kind === 'ndarray' ||
    v.kind === 'storage' ||
    v.kind === 'list' ||
    v.kind === 'tuple' ||
    v.kind === 'object'
  );
}

function keyName(key: PickleValue): string {
  if (typeof key === 'string') return key;
  if (typeof key === 'number' || typeof key === 'bigint') return String(key);
  if (typeof key === 'boolean') return key ? 'True' : 'False';
  if (key === null) return 'None';
  return repr(key, 80);
}

/** A Python-like rendering of a small value for metadata, cut at `limit` characters. */
function repr(value: PickleValue, limit: number): string {
  let out = '';
  const visit = (v: PickleValue, depth: number): void => {
    if (out.length > limit) return;
    if (depth > 20 || v === null || typeof v !== 'object' || v instanceof Uint8Array) {
      out += depth > 20 ? '…' : shortRepr(v, limit);
      return;
    }
    // Every loop stops once the text is over the limit, so a 20,000-item container costs as much as its first items.
    if (v instanceof PickleDict) {
      out += '{';
      for (let i = 0; i < v.entries.length && out.length <= limit; i++) {
        const [k, val] = v.entries[i] ?? [null, null];
        if (i > 0) out += ', ';
        visit(k, depth + 1);
        out += ': ';
        visit(val, depth + 1);
      }
      out += '}';
      return;
    }
    if (v.kind === 'list' || v.kind === 'tuple' || v.kind === 'set') {
      const [open, close] =
        v.kind === 'list' ? ['[', ']'] : v.kind === 'tuple' ? ['(', v.items.length === 1 ? ',)' : ')'] : ['{', '}'];
      out += open;
      for (let i = 0; i < v.items.length && out.length <= limit; i++) {
        if (i > 0) out += ', ';
        visit(v.items[i] ?? null, depth + 1);
      }
      out += close;
      return;
    }
    if (v.kind === 'object') {
      out += `${v.className}(`;
      for (let i = 0; i < v.args.length && out.length <= limit; i++) {
        if (i > 0) out += ', ';
        visit(v.args[i] ?? null, depth + 1);
      }
      out += ')';
      return;
    }
    out += describeValue(v);
  };
  visit(value, 0);
  return out.length > limit ? `${out.slice(0, limit - 1)}…` : out;
}

// ---------------------------------------------------------------- storages

/** A storage record resolved against the archive. */
interface ResolvedStorage {
  readonly key: string;
  readonly info: TorchStorage;
  readonly entry: ZipEntry;
  /** Bytes the storage's elements occupy: `numel * itemBytes`. */
  readonly bytes: number;
  /** The member's bytes, opened lazily (stored members: a zero-copy slice; deflated ones: inflated once). */
  source(signal?: AbortSignal): Promise<ByteSource>;
  /** The member as a random-access slice when it is stored (always, for torch.save), else undefined. */
  readonly stored: ByteSource | undefined;
}

class StorageTable {
  private readonly byKey = new Map<string, ResolvedStorage>();
  private readonly inflated = new Map<string, Promise<ByteSource>>();
  constructor(
    private readonly archive: ZipArchive,
    private readonly prefix: string,
    private readonly label: string,
  ) {}

  resolve(info: TorchStorage): ResolvedStorage {
    const known = this.byKey.get(info.key);
    if (known !== undefined) {
      if (known.info.storageType !== info.storageType || known.info.numel !== info.numel) {
        throw new CheckpointFormatError(
          `${this.label} is corrupt: storage ${info.key} is described as both ${known.info.numel} × ${known.info.storageType} and ${info.numel} × ${info.storageType}.`,
        );
      }
      return known;
    }
    if (!/^[A-Za-z0-9_.-]{1,200}$/.test(info.key) || info.key.includes('..')) {
      throw new CheckpointFormatError(
        `${this.label} names a storage ${JSON.stringify(info.key.slice(0, 100))}, which is not a valid storage key.`,
      );
    }
    const memberName = `${this.prefix}data/${info.key}`;
    const entry = this.archive.get(memberName);
    if (entry === undefined) {
      throw new CheckpointFormatError(
        `${this.label} is missing the storage record ${memberName} that its data.pkl refers to: the file is truncated or corrupt.`,
      );
    }
    const bytes = info.numel * info.itemBytes;
    if (entry.uncompressedSize < bytes) {
      throw new CheckpointFormatError(
        `${this.label}: storage ${memberName} holds ${formatBytes(entry.uncompressedSize)} but its ${info.numel} ${info.torchDtype} elements need ${formatBytes(bytes)}; the storage is too short (truncated or corrupt).`,
      );
    }
    const archive = this.archive;
    const inflated = this.inflated;
    const stored =
      entry.method === ZIP_STORED
        ? new SliceByteSource(
            archive.source,
            entry.dataOffset,
            entry.uncompressedSize,
            `${archive.source.name}:${entry.name}`,
          )
        : undefined;
    const resolved: ResolvedStorage = {
      key: info.key,
      info,
      entry,
      bytes,
      stored,
      source(signal?: AbortSignal): Promise<ByteSource> {
        if (stored !== undefined) return Promise.resolve(stored);
        let pending = inflated.get(info.key);
        if (pending === undefined) {
          pending = archive.openEntry(entry, {
            maxInMemoryBytes: LIMITS.maxInMemoryBytes,
            ...(signal ? { signal } : {}),
          });
          inflated.set(info.key, pending);
          pending.catch(() => inflated.delete(info.key));
        }
        return pending;
      },
    };
    this.byKey.set(info.key, resolved);
    return resolved;
  }

  /** Drops inflated storages held in memory. */
  release(): void {
    this.inflated.clear();
  }
}

/** Checks that every element the tensor's shape, strides and offset reach lies inside its storage. */
function checkExtent(label: string, name: string, t: TorchTensor, storage: ResolvedStorage): void {
  const params = checkShape(`tensor ${JSON.stringify(name)}`, t.shape);
  for (const s of t.stride) {
    if (!Number.isSafeInteger(s) || s < 0) {
      throw new CheckpointFormatError(
        `${label} is corrupt: tensor ${JSON.stringify(name)} has stride ${s}; strides must be non-negative integers.`,
      );
    }
  }
  if (params === 0) return;
  let last = t.storageOffset;
  t.shape.forEach((d, i) => {
    last += (d - 1) * (t.stride[i] ?? 0);
  });
  if (!Number.isSafeInteger(last) || last >= storage.info.numel) {
    throw new CheckpointFormatError(
      `${label} is corrupt: tensor ${JSON.stringify(name)} (shape [${t.shape.join(', ')}], stride [${t.stride.join(', ')}], offset ${t.storageOffset}) reaches element ${last} of storage ${storage.key}, which has only ${storage.info.numel} elements, so it lies outside its storage.`,
    );
  }
}

/** True if the strides are the row-major (C-contiguous) strides of the shape (dimensions of size 1 ignored). */
function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i] ?? 1;
    if (d !== 1 && stride[i] !== expected) return false;
    expected *= d;
  }
  return true;
}

function torchTensor(
  name: string,
  t: TorchTensor,
  storage: ResolvedStorage,
  littleEndian: boolean,
  sharer: string | undefined,
): TensorEntry {
  const info = storage.info;
  const params = checkShape(`tensor ${JSON.stringify(name)}`, t.shape);
  const ownBytes = params * info.itemBytes;
  const bytes = sharer === undefined ? storage.bytes : 0;
  const notes: string[] = [];
  if (sharer !== undefined) notes.push(`shares storage with ${sharer}`);
  else if (storage.bytes !== ownBytes) notes.push(`view into a ${formatBytes(storage.bytes)} storage`);
  if (!isContiguous(t.shape, t.stride) && params > 1) notes.push(`non-contiguous (stride [${t.stride.join(', ')}])`);
  const note = notes.length > 0 ? notes.join('; ') : undefined;
  if (info.dtype === undefined) {
    return undecodedTensor(
      name,
      info.torchDtype,
      t.shape,
      bytes,
      `PyTorch ${info.torchDtype} tensors (${info.storageType}) are not decoded`,
    );
  }
  const dtype = info.dtype;
  if (storage.stored !== undefined && isContiguous(t.shape, t.stride)) {
    return rawTensor({
      name,
      dtype,
      shape: t.shape,
      source: storage.stored,
      offset: t.storageOffset * info.itemBytes,
      littleEndian,
      bytes,
      ...(note !== undefined ? { note } : {}),
    });
  }
  return stridedTensor(name, dtype, t, storage, littleEndian, bytes, note);
}

/**
 * A tensor whose elements are gathered from its storage through `stride` (any non-negative strides, including 0 for
 * expanded dimensions). Each output chunk reads the storage span it touches in one read when that span is at most
 * `LIMITS.maxChunkBytes`, and otherwise scans the span in `GATHER_WINDOW_BYTES` windows, so memory stays bounded.
 *
 * Statistics cost the stored bytes, not the logical shape: an expanded dimension (stride 0) repeats the same
 * elements, so `summary` gathers the view with those dimensions collapsed and weights each value by their product.
 * A view that still reaches its storage more than `LIMITS.maxViewRepeat` times over (overlapping non-zero strides)
 * is listed but not decoded.
 */
function stridedTensor(
  name: string,
  dtype: DType,
  t: TorchTensor,
  storage: ResolvedStorage,
  littleEndian: boolean,
  bytes: number,
  note: string | undefined,
): TensorEntry {
  const params = checkShape(`tensor ${JSON.stringify(name)}`, t.shape);
  const shape = [...t.shape];
  const stride = [...t.stride];
  // The distinct view: every expanded (stride-0) dimension collapsed to size 1, and how often each element repeats.
  const collapsed = shape.map((d, i) => ((stride[i] ?? 0) === 0 ? 1 : d));
  const repeat = shape.reduce((w, d, i) => ((stride[i] ?? 0) === 0 ? w * d : w), 1);
  const distinct = params === 0 ? 0 : params / repeat;
  if (distinct > storage.info.numel * LIMITS.maxViewRepeat + DEFAULT_CHUNK_ELEMENTS) {
    return undecodedTensor(
      name,
      dtype,
      shape,
      bytes,
      `the view (shape [${shape.join(', ')}], stride [${stride.join(', ')}]) reads its ${storage.info.numel}-element storage over ${LIMITS.maxViewRepeat} times, so its values are not gathered`,
    );
  }
  const entry: TensorEntry = {
    name,
    dtype,
    shape,
    params,
    bytes,
    ...(note !== undefined ? { note } : {}),
    values: (options?: ValueStreamOptions) =>
      gather(dtype, shape, stride, t.storageOffset, storage, littleEndian, options),
  };
  if (repeat <= 1 || params === 0) return entry;
  return {
    ...entry,
    async *summary(options?: ValueStreamOptions): AsyncIterable<WeightedChunk> {
      for await (const values of gather(dtype, collapsed, stride, t.storageOffset, storage, littleEndian, options))
        yield { values, weight: repeat };
    },
  };
}

/** Gathers the elements of the view (`shape`, `stride`, `offset`) of `storage` in row-major order, in chunks. */
async function* gather(
  dtype: DType,
  shape: readonly number[],
  stride: readonly number[],
  offset: number,
  storage: ResolvedStorage,
  littleEndian: boolean,
  options?: ValueStreamOptions,
): AsyncIterable<ValueChunk> {
  const params = shape.reduce((n, d) => n * d, 1);
  const itemBytes = DTYPE_BYTES[dtype];
  const rank = shape.length;
  const source = await storage.source(options?.signal);
  const maxElements = Math.max(
    1,
    Math.min(options?.maxElements ?? DEFAULT_CHUNK_ELEMENTS, Math.floor(LIMITS.maxChunkBytes / itemBytes)),
  );
  const index = new Array<number>(rank).fill(0);
  let position = offset; // storage element index of the current output element
  for (let start = 0; start < params; start += maxElements) {
    throwIfAborted(options?.signal);
    const count = Math.min(maxElements, params - start);
    const at = new Float64Array(count);
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < count; i++) {
      at[i] = position;
      if (position < lo) lo = position;
      if (position > hi) hi = position;
      // Advance the row-major odometer.
      for (let d = rank - 1; d >= 0; d--) {
        const s = stride[d] ?? 0;
        const next = (index[d] ?? 0) + 1;
        if (next < (shape[d] ?? 1)) {
          index[d] = next;
          position += s;
          break;
        }
        index[d] = 0;
        position -= (next - 1) * s;
      }
    }
    const out = new Uint8Array(count * itemBytes);
    const spanBytes = (hi - lo + 1) * itemBytes;
    if (spanBytes <= LIMITS.maxChunkBytes) {
      const span = await source.read(lo * itemBytes, spanBytes);
      for (let i = 0; i < count; i++) {
        const from = ((at[i] ?? 0) - lo) * itemBytes;
        out.set(span.subarray(from, from + itemBytes), i * itemBytes);
      }
    } else {
      const windowElements = Math.max(1, Math.floor(GATHER_WINDOW_BYTES / itemBytes));
      for (let w = lo; w <= hi; w += windowElements) {
        throwIfAborted(options?.signal);
        const end = Math.min(hi + 1, w + windowElements);
        const window = await source.read(w * itemBytes, (end - w) * itemBytes);
        for (let i = 0; i < count; i++) {
          const p = at[i] ?? 0;
          if (p < w || p >= end) continue;
          const from = (p - w) * itemBytes;
          out.set(window.subarray(from, from + itemBytes), i * itemBytes);
        }
      }
    }
    yield decodeValues(dtype, out, littleEndian);
  }
}

/** A NumPy array pickled inside data.pkl (e.g. saved RNG state or metrics): decoded from the pickle's own bytes. */
function numpyTensor(name: string, a: NumpyArray): TensorEntry {
  const params = checkShape(`tensor ${JSON.stringify(name)}`, a.shape);
  if (a.dtype === undefined || a.data === undefined || a.dtype.structured) {
    return undecodedTensor(
      name,
      a.dtype ? a.dtype.code : 'object',
      a.shape,
      a.data?.length ?? 0,
      'NumPy arrays of Python objects or structured records are not decoded',
    );
  }
  const info = parseDescr(`${a.dtype.byteOrder === '>' ? '>' : '<'}${a.dtype.code}`);
  if (info.dtype === undefined)
    return undecodedTensor(name, a.dtype.code, a.shape, a.data.length, info.reason ?? 'unsupported NumPy dtype');
  const needed = params * info.itemBytes;
  if (a.data.length < needed) {
    throw new CheckpointFormatError(
      `NumPy array ${JSON.stringify(name)} in the pickle has ${formatBytes(a.data.length)} of data but its shape [${a.shape.join(', ')}] needs ${formatBytes(needed)}.`,
    );
  }
  const data = a.fortranOrder ? fortranToRowMajor(a.data.subarray(0, needed), a.shape, info.itemBytes) : a.data;
  return rawTensor({
    name,
    dtype: info.dtype,
    shape: a.shape,
    source: new MemoryByteSource(data, name),
    offset: 0,
    littleEndian: info.littleEndian,
    note: 'NumPy array pickled in data.pkl',
  });
}
