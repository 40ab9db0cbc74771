/**
 * Random-access byte input. Every reader parses through a `ByteSource` with ranged reads, so headers come from
 * small reads and tensor data streams in bounded chunks; no reader ever needs a whole file in memory.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { resolveCompanion } from './companion';
import { CheckpointFormatError, formatBytes } from './errors';
import { LIMITS } from './limits';
import { quote } from './text';

/** Random-access, read-only bytes of known size. */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** A label for messages: the file path, or `archive.zip:member`. */
  readonly name: string;
  /**
   * Reads exactly `length` bytes at `offset`. Throws `CheckpointFormatError` if the range is outside the source
   * (so a lying header becomes a clear "truncated" error), and never allocates more than `length` bytes.
   * `length` must be ≤ LIMITS.maxInMemoryBytes.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the underlying handle. Idempotent. */
  close(): Promise<void>;
}

/** Throws a user-facing error if `[offset, offset+length)` is not inside a source of `size` bytes. */
export function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new CheckpointFormatError(`${name}: invalid byte range (offset ${offset}, length ${length}).`);
  }
  if (offset + length > size) {
    throw new CheckpointFormatError(
      `${name} is truncated or corrupt: it needs bytes up to ${formatBytes(offset + length)} but the file is ${formatBytes(size)}.`,
    );
  }
  if (length > LIMITS.maxInMemoryBytes) {
    throw new CheckpointFormatError(
      `${name}: a single read of ${formatBytes(length)} exceeds the ${formatBytes(LIMITS.maxInMemoryBytes)} limit.`,
    );
  }
}

/** A file on disk, read with positional reads through one file handle. */
export class FileByteSource implements ByteSource {
  private closed = false;
  private constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    readonly name: string,
    /** Absolute path of the file. */
    readonly path: string,
  ) {}

  /**
   * Opens `path` for reading, named `name` in messages (default: `path`). Throws `CheckpointFormatError` for missing
   * files and directories.
   */
  static async open(path: string, name: string = path): Promise<FileByteSource> {
    const abs = resolve(path);
    let info;
    try {
      info = await stat(abs);
    } catch {
      throw new CheckpointFormatError(`${name} does not exist or cannot be read.`);
    }
    if (!info.isFile()) throw new CheckpointFormatError(`${name} is not a regular file.`);
    let handle: FileHandle;
    try {
      handle = await open(abs, 'r');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EMFILE' || code === 'ENFILE') {
        throw new CheckpointFormatError(
          `${name} cannot be opened: too many files are open (${code}); raise the open-file limit (ulimit -n) or close other files.`,
        );
      }
      throw new CheckpointFormatError(`${name} does not exist or cannot be read.`);
    }
    return new FileByteSource(handle, info.size, name, abs);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    // Uninitialised memory is safe here: the loop below fills every byte or throws. Skipping the zero-fill matters
    // for multi-megabyte chunks.
    const unfilled = Buffer.allocUnsafeSlow(length);
    const buffer = new Uint8Array(unfilled.buffer, unfilled.byteOffset, length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(buffer, done, length - done, offset + done);
      if (bytesRead === 0) throw new CheckpointFormatError(`${this.name} changed size while being read.`);
      done += bytesRead;
    }
    return buffer;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/** Bytes already in memory (tests, zip members that were inflated, subranges). */
export class MemoryByteSource implements ByteSource {
  constructor(
    private readonly bytes: Uint8Array,
    readonly name: string,
  ) {}
  get size(): number {
    return this.bytes.length;
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    return Promise.resolve(this.bytes.subarray(offset, offset + length));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A window `[start, start+size)` of another source (a stored zip member, an embedded blob). Does not own `inner`. */
export class SliceByteSource implements ByteSource {
  constructor(
    private readonly inner: ByteSource,
    private readonly start: number,
    readonly size: number,
    readonly name: string,
  ) {
    checkRange(inner.name, inner.size, start, 0);
    if (start + size > inner.size) {
      throw new CheckpointFormatError(
        `${name} extends past the end of ${inner.name} (${formatBytes(start + size)} > ${formatBytes(inner.size)}).`,
      );
    }
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    return this.inner.read(this.start + offset, length);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Opens files that a checkpoint refers to by relative name (shards, external data), confined to the checkpoint's
 * folder by the companion rule (companion.ts): a name that escapes it (`../../etc/passwd`, an absolute path, a
 * symbolic link pointing elsewhere) is refused as hostile.
 */
export interface SiblingOpener {
  /** Opens `relativeName` relative to the checkpoint's folder. Throws `CheckpointFormatError` if missing or escaping. */
  open(relativeName: string): Promise<ByteSource>;
}

/** A `SiblingOpener` for files next to `checkpointPath` on disk; every name passes `resolveCompanion` first. */
export function siblingOpenerFor(checkpointPath: string): SiblingOpener {
  return {
    async open(relativeName: string): Promise<ByteSource> {
      const target = await resolveCompanion(checkpointPath, relativeName);
      try {
        // The resolved real path is opened; messages name the companion where the checkpoint says it is.
        return await FileByteSource.open(target, resolve(dirname(resolve(checkpointPath)), relativeName));
      } catch (error) {
        if (error instanceof CheckpointFormatError && !error.message.includes('too many files are open')) {
          throw new CheckpointFormatError(
            `${checkpointPath} refers to ${quote(relativeName)}, which is missing or unreadable.`,
          );
        }
        throw error;
      }
    },
  };
}

/**
 * Makes `close` idempotent, as `Checkpoint.close` and `ByteSource.close` promise: the first call runs it, and every
 * later call returns that same promise, so nothing is released twice.
 */
export function closeOnce(close: () => Promise<void>): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => (closing ??= close());
}

/** Reads a whole small source (≤ `limit` bytes) into memory, with a clear error if it is larger. */
export async function readAllBytes(source: ByteSource, limit: number = LIMITS.maxHeaderBytes): Promise<Uint8Array> {
  if (source.size > limit) {
    throw new CheckpointFormatError(
      `${source.name} is ${formatBytes(source.size)}, larger than the ${formatBytes(limit)} expected for this kind of file.`,
    );
  }
  return source.read(0, source.size);
}
