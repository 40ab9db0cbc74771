/**
 * Keras and HDF5 reader: Keras 2 `.h5` files (`model.save` with `model_weights/<layer>/<layer>/<var>:0`, and
 * `save_weights` with the layer groups at the root), Keras 3 `.keras` archives (a zip of `config.json`,
 * `metadata.json` and `model.weights.h5` laid out as `layers/<name>/vars/<i>`), Keras 3 `.weights.h5`, and any other
 * HDF5 file: every numeric dataset is listed with its dtype and shape, named by its path.
 *
 * HDF5 is parsed by the `h5wasm` package (the HDF5 C library compiled to WebAssembly), loaded lazily on the first
 * HDF5 file. Its Node build reaches the host file system directly, so a `.h5` on disk is opened by path with no
 * copy; an HDF5 file inside a `.keras` zip is streamed to a private temporary file, which is unlinked as soon as HDF5
 * holds it open (so even a killed process leaves no copy behind; folders of processes that died mid-copy are swept
 * on the next copy). Values are read lazily as hyperslabs of at most `READ_BYTES` bytes, so memory stays bounded
 * whatever the dataset size.
 *
 * Before HDF5 sees a file, its signature and superblock are checked here (a non-HDF5 or truncated file gets a clear
 * message instead of an HDF5 error stack). HDF5's own diagnostics are captured rather than printed, and their last
 * line is used in the error message.
 *
 * HDF5 can make a file read other files: external links, virtual datasets and datasets with external storage (raw
 * bytes in another file, `/etc/passwd` or `../secret`). None is ever read. HDF5's file system is fenced: it may open
 * only the files this reader handed it, and any other open fails and is recorded. External links and virtual
 * datasets are refused by name when the file is listed; each contiguous dataset (external storage is always
 * contiguous) is probed with a one-element read, so a dataset stored elsewhere is refused by name too.
 */
import { mkdtemp, open as openFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FileByteSource, type ByteSource } from '../io/byteSource';
import { CheckpointFormatError, formatBytes, throwIfAborted } from '../io/errors';
import { LIMITS } from '../io/limits';
import { quote } from '../io/text';
import { DTYPE_BYTES, decodeValues, type DType, type ValueChunk } from '../tensors/dtype';
import {
  DEFAULT_CHUNK_ELEMENTS,
  checkShape,
  undecodedTensor,
  type TensorEntry,
  type ValueStreamOptions,
} from '../tensors/tensor';
import { looksLikeZip, openZip, type ZipArchive } from '../containers/zip';
import type { Checkpoint, FormatReader, MetadataValue, OpenContext } from './types';

/** The 8-byte HDF5 format signature. */
const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
/** Largest hyperslab read from HDF5 at once: the bytes pass through the WebAssembly heap, so keep them modest. */
const READ_BYTES = 16 * 1024 * 1024;
/** Largest attribute read (a Keras `model_config` JSON is at most a few MB). */
const MAX_ATTRIBUTE_BYTES = 16 * 1024 * 1024;
/** Most HDF5 objects visited while listing a file: hard-link cycles or fan-out could otherwise walk without end. */
const MAX_OBJECTS = 2 * LIMITS.maxTensors;
/** Longest metadata string kept (the Checkpoint contract elides over 1 kB). */
const MAX_METADATA_STRING = 1000;

// ---------------------------------------------------------------- h5wasm access

/** HDF5 dataset/attribute facts as h5wasm reports them. */
interface H5Metadata {
  readonly type: number;
  readonly size: number;
  readonly signed: boolean;
  readonly littleEndian: boolean;
  readonly shape: number[] | null;
  readonly total_size: number;
  readonly vlen: boolean;
  readonly enum_type?: { readonly members: Readonly<Record<string, number>>; readonly type: number };
  readonly virtual_sources?: readonly unknown[];
  /** Chunk shape of a chunked dataset; null for contiguous and compact ones. */
  readonly chunks?: number[] | null;
}

/** The part of h5wasm's Emscripten module this reader uses. */
interface H5Api {
  open(filename: string, mode: number, trackOrder: boolean, libverLow: number, libverHigh: number): bigint;
  close_file(fileId: bigint): number;
  get_names(fileId: bigint, path: string, recursive: boolean): string[];
  get_type(fileId: bigint, path: string): number;
  get_symbolic_link(fileId: bigint, path: string): string | null;
  get_external_link(fileId: bigint, path: string): { filename?: string; obj_path?: string } | null;
  get_attribute_names(fileId: bigint, path: string): string[];
  get_attribute_metadata(fileId: bigint, path: string, name: string): H5Metadata;
  get_dataset_metadata(fileId: bigint, path: string): H5Metadata;
  get_dataset_data(
    fileId: bigint,
    path: string,
    count: bigint[] | null,
    offset: bigint[] | null,
    strides: bigint[] | null,
    ptr: bigint,
  ): number;
  _malloc(size: number): number;
  _free(ptr: number): void;
  readonly HEAPU8: Uint8Array;
  readonly H5G_GROUP: number;
  readonly H5G_DATASET: number;
  readonly H5F_ACC_RDONLY: number;
  readonly H5F_LIBVER_EARLIEST: number;
  readonly H5F_LIBVER_LATEST: number;
}

/** Minimal view of an Emscripten stream, used to capture HDF5's diagnostic output instead of printing it. */
interface EmscriptenStream {
  node?: { mode: number };
  stream_ops?: { write(stream: unknown, buffer: Uint8Array, offset: number, length: number): number };
}

/** The part of Emscripten's file system object this reader fences: every `open` HDF5 makes goes through it. */
interface EmscriptenFs {
  open: (path: string, flags: unknown, mode?: unknown) => unknown;
  read: (stream: unknown, buffer: Int8Array, offset: number, length: number, position?: number) => number;
  getStream?: (fd: number) => EmscriptenStream | null;
  readonly ErrnoError?: new (errno: number) => Error;
}

/** Emscripten's errno for "permission denied" (its own numbering, not the host's). */
const EMSCRIPTEN_EACCES = 2;

/** `GCOL`: the signature of an HDF5 global heap collection (where variable-length strings live). */
const GCOL = [0x47, 0x43, 0x4f, 0x4c];

/**
 * Why a global heap collection HDF5 is about to parse would hang or overrun it, or undefined, with the offset of the
 * bad object. `bytes` starts at the collection (it may be only its first part). HDF5 1.14 walks the objects by their
 * sizes; a free-space object of size 0 never advances the walk (an endless loop), and an object past the
 * collection's end makes it read beyond. Lengths are 8 bytes (every file h5py and Keras write).
 */
function globalHeapProblem(bytes: Uint8Array): { problem: string; at: number; size: number } | undefined {
  if (bytes.length < 16 || !GCOL.every((b, i) => bytes[i] === b)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = Number(view.getBigUint64(8, true));
  if (size < 32) return { problem: `a global heap collection declares ${size} bytes`, at: 16, size };
  let p = 16;
  while (p < size) {
    if (p + 16 > size) break; // too small for an object header: free space
    if (p + 16 > bytes.length) return undefined; // the rest was not read yet: judged when it is
    const index = view.getUint16(p, true);
    const objectSize = Number(view.getBigUint64(p + 8, true));
    const need = index > 0 ? 16 + Math.ceil(objectSize / 8) * 8 : objectSize;
    if (need === 0) return { problem: `a global heap object at byte ${p} of its collection has size 0`, at: p, size };
    if (p + need > size)
      return {
        problem: `a global heap object at byte ${p} of its ${size}-byte collection runs ${p + need - size} bytes past it`,
        at: p,
        size,
      };
    p += need;
  }
  return undefined;
}

/**
 * Makes the damaged collection in `bytes` one HDF5 parses safely: from the bad object on, the space holds empty
 * objects for the indices not seen before it (a string that lived there reads as empty instead of failing inside
 * h5wasm, which then frees garbage and aborts), then free space. HDF5 neither loops nor reads beyond, and the
 * reader refuses the file itself once HDF5 returns.
 */
function defuseGlobalHeap(bytes: Uint8Array, found: { at: number; size: number }): void {
  if (found.size < 32 || found.at + 16 > bytes.length) {
    bytes.fill(0, 0, 4); // no longer a collection at all: HDF5 reports a bad signature
    return;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const seen = new Set<number>();
  for (let p = 16; p < found.at;) {
    const index = view.getUint16(p, true);
    seen.add(index);
    p += index > 0 ? 16 + Math.ceil(Number(view.getBigUint64(p + 8, true)) / 8) * 8 : found.at;
  }
  const end = Math.min(found.size, bytes.length);
  let p = found.at;
  for (let index = 1; index < 65536 && p + 32 <= end; index++) {
    if (seen.has(index)) continue;
    view.setUint16(p, index, true);
    view.setUint16(p + 2, 1, true);
    view.setUint32(p + 4, 0, true);
    view.setBigUint64(p + 8, 0n, true);
    p += 16;
  }
  view.setBigUint64(p + 8, BigInt(found.size - p), true);
  view.setUint32(p, 0, true);
  view.setUint32(p + 4, 0, true);
}

/**
 * Files HDF5 may open (absolute paths, with how many open checkpoints hold each), and the paths it tried to open
 * besides them since the last `takeDenied()`. The fence is process-wide because h5wasm is one module per process.
 */
const fence = {
  allowed: new Map<string, number>(),
  denied: [] as string[],
  /** Lets HDF5 open `path` until the returned function is called. */
  allow(path: string): () => void {
    const abs = resolve(path);
    this.allowed.set(abs, (this.allowed.get(abs) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.allowed.get(abs) ?? 1) - 1;
      if (left > 0) this.allowed.set(abs, left);
      else this.allowed.delete(abs);
    };
  },
  /** Damage found in bytes HDF5 read (a global heap that would make it loop), for the next error message. */
  damage: undefined as string | undefined,
  /** Returns and clears the paths HDF5 was refused since the last call. */
  takeDenied(): string[] {
    const out = this.denied;
    this.denied = [];
    return out;
  },
};

interface H5Lib {
  readonly api: H5Api;
  /** Reads an attribute as JSON-compatible data (strings decoded). */
  readonly attribute: (fileId: bigint, path: string, name: string) => unknown;
  /** Returns and clears what HDF5 wrote to its stderr since the last call. */
  readonly takeDiagnostics: () => string;
}

/**
 * Runs a synchronous h5wasm call without letting the notice it prints when the HDF5 code aborts (`Aborted(…)`, on
 * failed reads of damaged data) reach stderr: the abort arrives as an exception, which the caller turns into one
 * clear error line. Other output passes through.
 */
function withoutAbortNotice<T>(call: () => T): T {
  const stderr = process.stderr;
  const write = stderr.write.bind(stderr) as (...args: unknown[]) => boolean;
  const original = Object.getOwnPropertyDescriptor(stderr, 'write');
  Object.defineProperty(stderr, 'write', {
    configurable: true,
    writable: true,
    value: (chunk: unknown, ...rest: unknown[]): boolean =>
      String(chunk).startsWith('Aborted(') ? true : write(chunk, ...rest),
  });
  try {
    return call();
  } finally {
    if (original !== undefined) Object.defineProperty(stderr, 'write', original);
    else delete (stderr as { write?: unknown }).write;
  }
}

let h5Promise: Promise<H5Lib> | undefined;

/** Loads h5wasm once, on the first HDF5 file opened. */
function loadH5(): Promise<H5Lib> {
  h5Promise ??= (async (): Promise<H5Lib> => {
    const h5 = await import('h5wasm/node');
    const api = (await h5.ready) as unknown as H5Api;
    let diagnostics = '';
    const fs = (api as unknown as { FS?: EmscriptenFs }).FS;
    const ErrnoError = fs?.ErrnoError;
    if (fs === undefined || ErrnoError === undefined || typeof fs.open !== 'function') {
      throw new CheckpointFormatError(
        'the HDF5 library (h5wasm) has no file system to fence, so HDF5 files are not opened.',
      );
    }
    // Fence HDF5's file system: only the files handed to it open; anything else (external storage, links, virtual
    // sources) fails as "permission denied" and is recorded for the error message.
    const open = fs.open.bind(fs);
    fs.open = (path: string, flags: unknown, mode?: unknown): unknown => {
      if (!fence.allowed.has(resolve(path))) {
        fence.denied.push(path);
        throw new ErrnoError(EMSCRIPTEN_EACCES);
      }
      return open(path, flags, mode);
    };
    // Check each global heap collection HDF5 reads before it parses it: a damaged one would hang HDF5 for good.
    const read = fs.read.bind(fs);
    fs.read = (stream: unknown, buffer: Int8Array, offset: number, length: number, position?: number): number => {
      const n = read(stream, buffer, offset, length, position);
      if (n < 16) return n;
      const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset + offset, n);
      const found = globalHeapProblem(bytes);
      if (found !== undefined) {
        // Failing the read would send HDF5 down error paths that abort the WebAssembly module; defuse the bytes
        // instead, and refuse the file once HDF5 returns.
        fence.damage = `${found.problem}${position !== undefined ? `, at byte ${position}` : ''}`;
        defuseGlobalHeap(bytes, found);
      }
      return n;
    };
    const stderr = fs.getStream?.(2);
    if (stderr) {
      // HDF5 prints its error stack to stderr; keep the last few kB for our messages instead.
      stderr.node ??= { mode: 0o100644 };
      stderr.stream_ops = {
        write(_stream: unknown, buffer: Uint8Array, offset: number, length: number): number {
          diagnostics = (diagnostics + new TextDecoder().decode(buffer.subarray(offset, offset + length))).slice(-8192);
          return length;
        },
      };
    }
    return {
      api,
      attribute: (fileId, path, name) => withoutAbortNotice(() => new h5.Group(fileId, path).get_attribute(name, true)),
      takeDiagnostics: () => {
        const text = diagnostics;
        diagnostics = '';
        return text;
      },
    };
  })();
  h5Promise.catch(() => {
    h5Promise = undefined;
  });
  return h5Promise;
}

/** The most specific line of an HDF5 error stack, e.g. `truncated file: eof = 1000, …`. */
function hdf5Detail(diagnostics: string): string | undefined {
  const lines = diagnostics
    .split('\n')
    .map((l) => /#\d+:.* in [^(]*\(\): (.*)$/.exec(l)?.[1]?.trim())
    .filter((l): l is string => l !== undefined && l !== '');
  return lines[lines.length - 1];
}

// ---------------------------------------------------------------- format

function hasSignatureAt(head: Uint8Array, at: number): boolean {
  return HDF5_SIGNATURE.every((b, i) => head[at + i] === b);
}

/** Offset of the HDF5 superblock in `head` (0, 512, 1024, … for files with a user block), or -1. */
function findSignature(head: Uint8Array): number {
  if (hasSignatureAt(head, 0)) return 0;
  for (let at = 512; at + 8 <= head.length; at *= 2) if (hasSignatureAt(head, at)) return at;
  return -1;
}

function isKerasName(fileName: string): boolean {
  const lower = fileName.toLowerCase();
  return lower.endsWith('.keras');
}

/** Keras `.h5`/`.keras` files and any HDF5 file with numeric datasets. */
export const kerasFormat: FormatReader = {
  id: 'keras',
  label: 'Keras / HDF5',
  extensions: ['.keras', '.weights.h5', '.h5', '.hdf5', '.hdf', '.he5'],
  sniff(head: Uint8Array, fileName: string): number {
    try {
      if (findSignature(head) >= 0) return 0.9;
      const lower = fileName.toLowerCase();
      if (looksLikeZip(head)) {
        if (isKerasName(fileName)) return 0.9;
        const name = firstZipMember(head);
        if (name === 'metadata.json' || name === 'config.json' || name === 'model.weights.h5') return 0.6;
        return 0;
      }
      // Claim badly damaged files by name only weakly, so that open() can say precisely what is wrong.
      if (lower.endsWith('.h5') || lower.endsWith('.hdf5') || isKerasName(fileName)) return 0.05;
      return 0;
    } catch {
      return 0;
    }
  },
  open: openKeras,
};

function firstZipMember(head: Uint8Array): string | undefined {
  if (head.length < 30) return undefined;
  const length = (head[26] ?? 0) | ((head[27] ?? 0) << 8);
  if (30 + length > head.length) return undefined;
  return new TextDecoder().decode(head.subarray(30, 30 + length));
}

async function openKeras(source: ByteSource, context: OpenContext): Promise<Checkpoint> {
  const head = await source.read(0, Math.min(source.size, 64 * 1024));
  if (looksLikeZip(head)) return openKerasArchive(source, context);
  const metadata: Record<string, MetadataValue> = {};
  let path: string;
  let cleanup: (() => Promise<void>) | undefined;
  if (source instanceof FileByteSource) {
    path = source.path;
  } else {
    const copy = await copyToTempFile(source, 'weights.h5', context.signal);
    path = copy.path;
    cleanup = copy.remove;
  }
  try {
    const checkpoint = await openHdf5(
      source,
      path,
      source.name,
      metadata,
      'HDF5',
      async () => {
        await cleanup?.();
        await source.close();
      },
      context,
    );
    // HDF5 holds the copy open now: unlink it, so that no copy outlives this process however it ends.
    await cleanup?.().catch(() => undefined);
    return checkpoint;
  } catch (error) {
    await cleanup?.();
    throw error;
  }
}

/** A Keras 3 `.keras` archive: metadata from the JSON members, tensors from `model.weights.h5`. */
async function openKerasArchive(source: ByteSource, context: OpenContext): Promise<Checkpoint> {
  const archive = await openZip(source, context.signal ? { signal: context.signal } : {});
  const metadata: Record<string, MetadataValue> = {};
  await readJsonMetadata(archive, metadata, context.signal);
  const weights =
    archive.get('model.weights.h5') ?? archive.entries.find((e) => !e.isDirectory && e.name.endsWith('.weights.h5'));
  if (weights === undefined) {
    throw new CheckpointFormatError(
      `${source.name} is a zip archive without model.weights.h5, so it is not a Keras 3 .keras model (members: ${
        archive.entries
          .slice(0, 5)
          .map((e) => e.name)
          .join(', ') || 'none'
      }).`,
    );
  }
  const label = `${source.name}:${weights.name}`;
  const prefix = await archive.readEntryPrefix(weights, 4096, context.signal);
  if (findSignature(prefix) < 0) {
    throw new CheckpointFormatError(`${label} is not an HDF5 file: it does not start with the HDF5 signature.`);
  }
  const copy = await copyToTempFile(
    { size: weights.uncompressedSize, chunks: (signal) => archive.readEntryStream(weights, signal ? { signal } : {}) },
    'model.weights.h5',
    context.signal,
  );
  try {
    const checkpoint = await openHdf5(
      {
        name: label,
        size: weights.uncompressedSize,
        read: (offset, length) => readFromFile(copy.path, offset, length),
      },
      copy.path,
      label,
      metadata,
      'Keras 3 .keras archive',
      async () => {
        await copy.remove();
        await source.close();
      },
      context,
    );
    // HDF5 holds the copy open now: unlink it, so that no copy outlives this process however it ends (where the
    // system refuses to unlink an open file, it is removed on close instead).
    await copy.remove().catch(() => undefined);
    return checkpoint;
  } catch (error) {
    await copy.remove();
    throw error;
  }
}

async function readJsonMetadata(
  archive: ZipArchive,
  metadata: Record<string, MetadataValue>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const parse = async (name: string): Promise<unknown> => {
    const entry = archive.get(name);
    if (entry === undefined) return undefined;
    const text = new TextDecoder().decode(await archive.readEntry(entry, LIMITS.maxHeaderBytes, signal));
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new CheckpointFormatError(`${archive.source.name}:${name} is not valid JSON.`);
    }
  };
  const meta = await parse('metadata.json');
  if (isRecord(meta)) {
    for (const key of ['keras_version', 'date_saved']) {
      const v = meta[key];
      if (typeof v === 'string') metadata[key] = v.slice(0, MAX_METADATA_STRING);
    }
  }
  const config = await parse('config.json');
  if (isRecord(config)) {
    if (typeof config.class_name === 'string') metadata.model_class = config.class_name.slice(0, 200);
    const inner = config.config;
    if (isRecord(inner)) {
      if (typeof inner.name === 'string') metadata.model_name = inner.name.slice(0, 200);
      if (Array.isArray(inner.layers)) metadata.layers = inner.layers.length;
    }
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Something whose bytes can be streamed once, in order. */
interface Streamable {
  readonly size: number;
  chunks(signal?: AbortSignal): AsyncIterable<Uint8Array>;
}

/** Temporary folders of HDF5 copies are named `weight-lens-h5-<pid>-<random>`, so stale ones can be told apart. */
export const H5_TEMP_PREFIX = 'weight-lens-h5-';

/** True if a process with id `pid` exists (signal 0 only checks; EPERM means it exists but is not ours). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary HDF5 copies left by processes that no longer exist (killed while copying, or by power loss).
 * Best effort: a folder that cannot be listed or removed is left alone.
 */
async function sweepStaleCopies(): Promise<void> {
  let names: string[];
  try {
    names = await readdir(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^weight-lens-h5-(\d+)-/.exec(name)?.[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || processExists(pid)) continue;
    await rm(join(tmpdir(), name), { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Copies bytes to a new private temporary file; `remove` deletes it (and its folder) and may be called repeatedly. */
async function copyToTempFile(
  input: ByteSource | Streamable,
  baseName: string,
  signal: AbortSignal | undefined,
): Promise<{ path: string; remove: () => Promise<void> }> {
  await sweepStaleCopies();
  const folder = await mkdtemp(join(tmpdir(), `${H5_TEMP_PREFIX}${process.pid}-`));
  const path = join(folder, baseName);
  const remove = async (): Promise<void> => {
    await rm(folder, { recursive: true, force: true });
  };
  try {
    const handle = await openFile(path, 'wx', 0o600);
    try {
      if ('chunks' in input) {
        for await (const chunk of input.chunks(signal)) await handle.write(chunk);
      } else {
        const step = 4 * 1024 * 1024;
        for (let at = 0; at < input.size; at += step) {
          throwIfAborted(signal);
          await handle.write(await input.read(at, Math.min(step, input.size - at)));
        }
      }
    } finally {
      await handle.close();
    }
  } catch (error) {
    await remove();
    throw error;
  }
  return { path, remove };
}

async function readFromFile(path: string, offset: number, length: number): Promise<Uint8Array> {
  const handle = await openFile(path, 'r');
  try {
    const out = new Uint8Array(length);
    const { bytesRead } = await handle.read(out, 0, length, offset);
    return out.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Checks the signature and the superblock's end-of-file address before HDF5 sees the file. */
async function checkSuperblock(source: Pick<ByteSource, 'size' | 'read'>, label: string): Promise<void> {
  const head = await source.read(0, Math.min(source.size, 64 * 1024));
  const at = findSignature(head);
  if (at < 0) {
    throw new CheckpointFormatError(
      `${label} is not an HDF5 file: the HDF5 signature (\\x89HDF\\r\\n\\x1a\\n) is not at offset 0 or at any user-block boundary (512, 1024, … bytes).`,
    );
  }
  const version = head[at + 8];
  if (version === undefined)
    throw new CheckpointFormatError(`${label} is truncated: it ends inside its HDF5 superblock.`);
  let offsetSize: number | undefined;
  let baseAt: number;
  if (version === 0 || version === 1) {
    offsetSize = head[at + 13];
    baseAt = at + (version === 0 ? 24 : 28);
  } else if (version === 2 || version === 3) {
    offsetSize = head[at + 9];
    baseAt = at + 12;
  } else {
    throw new CheckpointFormatError(
      `${label} has HDF5 superblock version ${version}, which is unknown (0–3 exist); the file is corrupt or not HDF5.`,
    );
  }
  if (offsetSize !== 2 && offsetSize !== 4 && offsetSize !== 8) {
    throw new CheckpointFormatError(
      `${label} has a corrupt HDF5 superblock (address size ${String(offsetSize)} bytes).`,
    );
  }
  // v0/v1: base, free-space, end-of-file, driver addresses; v2/v3: base, superblock-extension, end-of-file, root.
  const eofAt = baseAt + 2 * offsetSize;
  if (eofAt + offsetSize > head.length)
    throw new CheckpointFormatError(`${label} is truncated: it ends inside its HDF5 superblock.`);
  const readAddress = (p: number): number | undefined => {
    let v = 0;
    let allOnes = true;
    for (let i = offsetSize - 1; i >= 0; i--) {
      const b = head[p + i] ?? 0;
      if (b !== 0xff) allOnes = false;
      v = v * 256 + b;
    }
    return allOnes ? undefined : v;
  };
  const base = readAddress(baseAt) ?? 0;
  const eof = readAddress(eofAt);
  if (eof !== undefined && base + eof > source.size) {
    throw new CheckpointFormatError(
      `${label} is truncated: its HDF5 superblock says the file is ${formatBytes(base + eof)} but it is ${formatBytes(source.size)}.`,
    );
  }
}

/** Opens an HDF5 file by path with h5wasm and lists its datasets. `release` runs on close. */
async function openHdf5(
  source: Pick<ByteSource, 'size' | 'read' | 'name'>,
  path: string,
  label: string,
  metadata: Record<string, MetadataValue>,
  container: string,
  release: () => Promise<void>,
  context: OpenContext,
): Promise<Checkpoint> {
  await checkSuperblock(source, label);
  throwIfAborted(context.signal);
  const lib = await loadH5();
  const { api } = lib;
  lib.takeDiagnostics();
  fence.takeDenied();
  const disallow = fence.allow(path);
  let fileId: bigint;
  try {
    fileId = api.open(path, api.H5F_ACC_RDONLY, false, api.H5F_LIBVER_EARLIEST, api.H5F_LIBVER_LATEST);
  } catch (error) {
    disallow();
    throw hdf5Error(lib, label, 'cannot be opened by the HDF5 library', error);
  }
  if (fileId < 0n) {
    disallow();
    throw hdf5Error(lib, label, 'cannot be opened by the HDF5 library');
  }
  let closed = false;
  const closeFile = (): void => {
    if (closed) return;
    closed = true;
    try {
      api.close_file(fileId);
    } catch {
      // Already invalid: nothing more to release.
    }
    disallow();
    lib.takeDiagnostics();
  };
  try {
    const file: H5File = { lib, fileId, label, bytes: source.size, isClosed: () => closed };
    const listing = listDatasets(file, metadata);
    const kerasVersion = metadata.keras_version;
    const description =
      container === 'HDF5'
        ? listing.keras
          ? `Keras${typeof kerasVersion === 'string' ? ` ${kerasVersion}` : ''} HDF5 (.h5)`
          : 'HDF5 file'
        : container;
    return {
      format: 'keras',
      description,
      tensors: listing.tensors,
      metadata,
      async close(): Promise<void> {
        closeFile();
        await release();
      },
    };
  } catch (error) {
    const wrapped =
      error instanceof CheckpointFormatError
        ? error
        : hdf5Error(lib, label, 'could not be read by the HDF5 library', error);
    closeFile();
    throw wrapped;
  }
}

function hdf5Error(lib: H5Lib, label: string, what: string, cause?: unknown): CheckpointFormatError {
  const damage = fence.damage;
  fence.damage = undefined;
  const detail =
    damage ?? hdf5Detail(lib.takeDiagnostics()) ?? (cause instanceof Error ? cause.message.split('\n')[0] : undefined);
  return new CheckpointFormatError(
    `${label} ${what}${detail ? ` (${detail})` : ''}; the file is corrupt or truncated.`,
    { cause },
  );
}

interface H5File {
  readonly lib: H5Lib;
  readonly fileId: bigint;
  readonly label: string;
  /** Size of the HDF5 file in bytes: no dataset can store more. */
  readonly bytes: number;
  isClosed(): boolean;
}

// ---------------------------------------------------------------- listing

interface DatasetInfo {
  readonly path: string;
  readonly meta: H5Metadata;
}

/** Walks the file's groups (hard links only) and returns its numeric datasets as tensors, Keras order first. */
function listDatasets(
  file: H5File,
  metadata: Record<string, MetadataValue>,
): { tensors: TensorEntry[]; keras: boolean } {
  const { api } = file.lib;
  const datasets: DatasetInfo[] = [];
  const skipped: string[] = [];
  let visited = 0;
  /** HDF5 reports some failures (a damaged link table) only on its error stack: treat any report as corruption. */
  const quiet = (): void => {
    const detail = hdf5Detail(file.lib.takeDiagnostics());
    if (detail !== undefined)
      throw new CheckpointFormatError(
        `${file.label} could not be read by the HDF5 library (${detail}); the file is corrupt or truncated.`,
      );
  };
  const walk = (group: string, depth: number): void => {
    if (depth > LIMITS.maxNesting)
      throw new CheckpointFormatError(
        `${file.label} nests HDF5 groups deeper than ${LIMITS.maxNesting} levels; refusing it as hostile.`,
      );
    const names = api.get_names(file.fileId, group, false).slice().sort(naturalCompare);
    quiet();
    for (const name of names) {
      if (++visited > MAX_OBJECTS)
        throw new CheckpointFormatError(
          `${file.label} has more than ${MAX_OBJECTS} HDF5 objects; refusing it as hostile.`,
        );
      const path = group === '/' ? `/${name}` : `${group}/${name}`;
      const external = api.get_external_link(file.fileId, path);
      if (external?.filename !== undefined) {
        throw new CheckpointFormatError(
          `${file.label} has an external link ${quote(path.slice(1))} to ${quote(external.filename)}, another file; refusing to follow links out of the file.`,
        );
      }
      if (api.get_symbolic_link(file.fileId, path) !== null) continue; // soft link: the target is listed where it lives
      const type = api.get_type(file.fileId, path);
      quiet();
      if (type === api.H5G_GROUP) {
        walk(path, depth + 1);
      } else if (type === api.H5G_DATASET) {
        const meta = api.get_dataset_metadata(file.fileId, path);
        quiet();
        const source = meta.virtual_sources?.[0];
        if (source !== undefined) {
          const from = isRecord(source) && typeof source.file_name === 'string' ? source.file_name : 'another file';
          throw new CheckpointFormatError(
            `${file.label}: dataset ${quote(path.slice(1))} is a virtual dataset reading ${quote(from)}; refusing to read it, since its data lies outside the file.`,
          );
        }
        const reason = unsupportedReason(meta);
        if (reason === undefined) refuseExternalStorage(file, path, meta);
        if (reason === undefined) datasets.push({ path, meta });
        else skipped.push(`${path.slice(1)} (${reason})`);
      }
    }
  };
  walk('/', 0);

  // Keras 2: the weights group (root for save_weights, model_weights for model.save) lists layers and their weights.
  const rootAttrs = readAttributes(file, '/');
  for (const key of ['keras_version', 'backend']) {
    const v = rootAttrs.get(key);
    if (typeof v === 'string') metadata[key] = v.slice(0, MAX_METADATA_STRING);
  }
  const modelConfig = rootAttrs.get('model_config');
  if (typeof modelConfig === 'string') {
    try {
      const parsed = JSON.parse(modelConfig) as unknown;
      if (isRecord(parsed) && typeof parsed.class_name === 'string')
        metadata.model_class = parsed.class_name.slice(0, 200);
    } catch {
      // An unparsable config is shown as-is below.
    }
    metadata.model_config =
      modelConfig.length > MAX_METADATA_STRING ? `${modelConfig.slice(0, MAX_METADATA_STRING - 1)}…` : modelConfig;
  }
  let weightsRoot: string | undefined;
  let layerNames: string[] | undefined;
  for (const candidate of ['/model_weights', '/']) {
    if (candidate !== '/' && !datasets.some((d) => d.path.startsWith(`${candidate}/`))) continue;
    const names = stringList(readAttributes(file, candidate).get('layer_names'));
    if (names !== undefined) {
      weightsRoot = candidate;
      layerNames = names;
      break;
    }
  }
  const byPath = new Map(datasets.map((d) => [d.path, d]));
  const ordered: { info: DatasetInfo; name: string }[] = [];
  const taken = new Set<string>();
  const used = new Set<string>();
  const uniqueName = (name: string, path: string): string => {
    const n = used.has(name) ? path.slice(1) : name;
    used.add(n);
    return n;
  };
  if (weightsRoot !== undefined && layerNames !== undefined) {
    metadata.layers = layerNames.length;
    const base = weightsRoot === '/' ? '' : weightsRoot;
    for (const layer of layerNames) {
      const weightNames = stringList(readAttributes(file, `${base}/${layer}`).get('weight_names')) ?? [];
      for (const weight of weightNames) {
        const path = `${base}/${layer}/${weight}`;
        const info = byPath.get(path);
        if (info === undefined || taken.has(path)) continue;
        taken.add(path);
        // `<layer>/<layer>/kernel:0` is named `<layer>/kernel:0`, as Keras names the weight.
        ordered.push({ info, name: uniqueName(weight.startsWith(`${layer}/`) ? weight : `${layer}/${weight}`, path) });
      }
    }
  }
  for (const info of datasets) {
    if (taken.has(info.path)) continue;
    ordered.push({ info, name: uniqueName(info.path.slice(1), info.path) });
  }
  if (ordered.length > LIMITS.maxTensors)
    throw new CheckpointFormatError(
      `${file.label} has ${ordered.length} datasets, more than the ${LIMITS.maxTensors} allowed.`,
    );
  if (skipped.length > 0) {
    const text = skipped.join('; ');
    metadata.skipped_datasets = text.length > MAX_METADATA_STRING ? `${text.slice(0, MAX_METADATA_STRING - 1)}…` : text;
  }
  return {
    tensors: ordered.map(({ info, name }) => h5Tensor(file, info, name)),
    keras: layerNames !== undefined || 'keras_version' in metadata,
  };
}

function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** Reads the small attributes of an object (strings and numbers), skipping large or unreadable ones. */
function readAttributes(file: H5File, path: string): Map<string, unknown> {
  const { api } = file.lib;
  const out = new Map<string, unknown>();
  let names: string[];
  // An unreadable attribute is skipped, unless the reason is damage that HDF5 must not parse (then the file is).
  const refuseDamage = (): void => {
    if (fence.damage !== undefined) throw hdf5Error(file.lib, file.label, 'could not be read by the HDF5 library');
  };
  try {
    names = api.get_attribute_names(file.fileId, path);
  } catch {
    refuseDamage();
    file.lib.takeDiagnostics();
    return out;
  }
  refuseDamage();
  for (const name of names.slice(0, 1000)) {
    refuseDamage();
    try {
      const meta = api.get_attribute_metadata(file.fileId, path, name);
      if (meta.size * Math.max(1, meta.total_size) > MAX_ATTRIBUTE_BYTES) continue;
      out.set(name, file.lib.attribute(file.fileId, path, name));
    } catch {
      refuseDamage();
      file.lib.takeDiagnostics();
    }
  }
  refuseDamage();
  return out;
}

/** A list of strings from an attribute value (Keras stores names as arrays of byte strings). */
function stringList(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) return undefined;
  const out: string[] = [];
  for (const v of value) {
    if (typeof v !== 'string') return undefined;
    out.push(v);
  }
  return out;
}

/** H5T classes (H5Tpublic.h). */
const H5T_INTEGER = 0;
const H5T_FLOAT = 1;
const H5T_ENUM = 8;

/** The DType of a dataset, or undefined when it is not numeric. */
function datasetDType(meta: H5Metadata): DType | undefined {
  if (meta.vlen) return undefined;
  if (meta.type === H5T_FLOAT)
    return meta.size === 2 ? 'F16' : meta.size === 4 ? 'F32' : meta.size === 8 ? 'F64' : undefined;
  if (meta.type === H5T_INTEGER) {
    const table: Record<number, DType> = meta.signed
      ? { 1: 'I8', 2: 'I16', 4: 'I32', 8: 'I64' }
      : { 1: 'U8', 2: 'U16', 4: 'U32', 8: 'U64' };
    return table[meta.size];
  }
  if (meta.type === H5T_ENUM && meta.size === 1 && meta.enum_type) {
    // h5py stores NumPy bools as an int8 enum {FALSE: 0, TRUE: 1}.
    const keys = Object.keys(meta.enum_type.members).sort();
    if (keys.length === 2 && keys[0] === 'FALSE' && keys[1] === 'TRUE') return 'BOOL';
  }
  return undefined;
}

function unsupportedReason(meta: H5Metadata): string | undefined {
  if (meta.shape === null) return 'empty dataspace';
  if (datasetDType(meta) === undefined) {
    const kinds: Record<number, string> = {
      2: 'time',
      3: 'string',
      4: 'bitfield',
      5: 'opaque',
      6: 'compound',
      7: 'reference',
      8: 'enum',
      9: 'variable-length',
      10: 'array',
    };
    return `${kinds[meta.type] ?? `${meta.size}-byte ${meta.type === H5T_FLOAT ? 'float' : 'integer'}`} data, not a tensor`;
  }
  return undefined;
}

/** The message for a dataset HDF5 tried to read from `files` (other files than the one opened). */
function externalStorageError(file: H5File, path: string, files: readonly string[]): CheckpointFormatError {
  return new CheckpointFormatError(
    `${file.label}: dataset ${quote(path.slice(1))} stores its data in the external file ${quote(files[0] ?? '?')}, outside this file; refusing to read it.`,
  );
}

/**
 * Refuses a dataset whose raw data lies in another file. External storage is always contiguous, so each contiguous
 * dataset's first element is read once; the fence makes HDF5 fail to open any other file and records its name.
 */
function refuseExternalStorage(file: H5File, path: string, meta: H5Metadata): void {
  if (meta.chunks !== null && meta.chunks !== undefined) return;
  const shape = meta.shape;
  if (shape === null || shape.some((d) => d === 0)) return;
  const { api } = file.lib;
  const ptr = api._malloc(Math.max(16, meta.size));
  if (ptr === 0) return;
  fence.takeDenied();
  try {
    const ones = shape.map(() => 1n);
    withoutAbortNotice(() =>
      shape.length === 0
        ? api.get_dataset_data(file.fileId, path, null, null, null, BigInt(ptr))
        : api.get_dataset_data(
            file.fileId,
            path,
            ones,
            shape.map(() => 0n),
            ones,
            BigInt(ptr),
          ),
    );
  } catch {
    // A damaged dataset is reported when its values are read; only reads of other files matter here.
  } finally {
    api._free(ptr);
    file.lib.takeDiagnostics();
  }
  const denied = fence.takeDenied();
  if (denied.length > 0) throw externalStorageError(file, path, denied);
}

/**
 * A dataset as a tensor. Values are read as hyperslabs: along the outermost axis whose inner block fits the chunk
 * budget, `n` rows at a time (HDF5 converts big-endian data to little-endian while reading).
 */
function h5Tensor(file: H5File, info: DatasetInfo, name: string): TensorEntry {
  const dtype = datasetDType(info.meta);
  if (dtype === undefined) throw new CheckpointFormatError(`${file.label}: dataset ${info.path} is not numeric.`);
  const shape = [...(info.meta.shape ?? [])];
  const params = checkShape(`dataset ${info.path} of ${file.label}`, shape);
  const itemBytes = DTYPE_BYTES[dtype];
  const { api } = file.lib;
  const logical = params * itemBytes;
  if (logical > file.bytes * LIMITS.maxCompressionRatio + LIMITS.maxChunkBytes) {
    // Only chunks never written (the fill value stands in) or a compression bomb make a dataset this much larger than
    // its file; reading it would cost its logical size, not its stored bytes.
    return undecodedTensor(
      name,
      dtype,
      shape,
      logical,
      `the dataset declares ${formatBytes(logical)} of values but the whole file is ${formatBytes(file.bytes)}: its chunks were never written (fill value only) or compress over ${LIMITS.maxCompressionRatio}×, so its values are not read.`,
    );
  }
  return {
    name,
    dtype,
    shape,
    params,
    bytes: params * itemBytes,
    async *values(options?: ValueStreamOptions): AsyncIterable<ValueChunk> {
      const budget = Math.max(
        1,
        Math.min(options?.maxElements ?? DEFAULT_CHUNK_ELEMENTS, Math.floor(READ_BYTES / itemBytes)),
      );
      for (const block of hyperslabs(shape, budget)) {
        throwIfAborted(options?.signal);
        if (file.isClosed())
          throw new CheckpointFormatError(`${file.label} was closed while dataset ${info.path} was being read.`);
        const count = block.count.reduce((a, b) => a * b, 1);
        const nbytes = count * itemBytes;
        const ptr = api._malloc(Math.max(1, nbytes));
        if (ptr === 0)
          throw new CheckpointFormatError(
            `${file.label}: out of HDF5 memory reading ${formatBytes(nbytes)} of dataset ${info.path}.`,
          );
        let bytes: Uint8Array;
        try {
          let status: number;
          try {
            status = withoutAbortNotice(() =>
              rank0(shape)
                ? api.get_dataset_data(file.fileId, info.path, null, null, null, BigInt(ptr))
                : api.get_dataset_data(
                    file.fileId,
                    info.path,
                    block.count.map(BigInt),
                    block.offset.map(BigInt),
                    block.count.map(() => 1n),
                    BigInt(ptr),
                  ),
            );
          } catch (error) {
            const denied = fence.takeDenied();
            if (denied.length > 0) throw externalStorageError(file, info.path, denied);
            throw hdf5Error(file.lib, `${file.label}: dataset ${info.path}`, 'cannot be read', error);
          }
          const denied = fence.takeDenied();
          if (denied.length > 0) throw externalStorageError(file, info.path, denied);
          if (status < 0) throw hdf5Error(file.lib, `${file.label}: dataset ${info.path}`, 'cannot be read');
          bytes = api.HEAPU8.slice(ptr, ptr + nbytes);
        } finally {
          api._free(ptr);
        }
        yield decodeValues(dtype, bytes, true);
        await Promise.resolve();
      }
    },
  };
}

function rank0(shape: readonly number[]): boolean {
  return shape.length === 0;
}

/** Hyperslab blocks covering `shape` in row-major order, each of at most `budget` elements (one element minimum). */
function* hyperslabs(shape: readonly number[], budget: number): Generator<{ offset: number[]; count: number[] }> {
  const rank = shape.length;
  if (rank === 0) {
    yield { offset: [], count: [] };
    return;
  }
  if (shape.some((d) => d === 0)) return;
  // Outermost axis `a` whose inner block (product of later dimensions) fits the budget.
  let a = rank - 1;
  let inner = 1;
  while (a > 0 && inner * (shape[a] ?? 1) <= budget) {
    inner *= shape[a] ?? 1;
    a--;
  }
  const rows = Math.max(1, Math.min(shape[a] ?? 1, Math.floor(budget / inner)));
  const outer = new Array<number>(a).fill(0);
  for (;;) {
    for (let j = 0; j < (shape[a] ?? 1); j += rows) {
      const offset = [...outer, j, ...new Array<number>(rank - a - 1).fill(0)];
      const count = [...new Array<number>(a).fill(1), Math.min(rows, (shape[a] ?? 1) - j), ...shape.slice(a + 1)];
      yield { offset, count };
    }
    // Advance the odometer over the outer axes.
    let d = a - 1;
    while (d >= 0) {
      const next = (outer[d] ?? 0) + 1;
      if (next < (shape[d] ?? 1)) {
        outer[d] = next;
        break;
      }
      outer[d] = 0;
      d--;
    }
    if (d < 0) return;
  }
}
