/**
 * Writes a NumPy `.npz` archive (a zip of stored, uncompressed `.npy` members, as `numpy.savez` writes it), streamed
 * member by member into a temporary file that is renamed over the target only when complete (src/core/io/atomicFile).
 * Each member's CRC-32 is computed while its bytes stream and patched into its local header afterwards, so no member
 * is held in memory. Archives are limited to the classic zip's 4 GiB (no ZIP64).
 */
import { CheckpointFormatError, throwIfAborted } from '../io/errors';
import { removeStaleTemporaries, writeAtomically } from '../io/atomicFile';
import { crc32Update } from './zip';

/** NumPy's `descr` strings, keyed by the element types an `.npy` member can hold here. */
export const NPY_DESCR = {
  F64: '<f8',
  F32: '<f4',
  F16: '<f2',
  I64: '<i8',
  I32: '<i4',
  I16: '<i2',
  I8: '|i1',
  U64: '<u8',
  U32: '<u4',
  U16: '<u2',
  U8: '|u1',
  BOOL: '|b1',
} as const;

/** An element type NumPy stores natively (safetensors' BF16 and F8 types have no NumPy dtype). */
export type NpyDType = keyof typeof NPY_DESCR;

/** One array to write: `data` streams exactly `product(shape) × itemBytes` little-endian bytes. */
export interface NpzMemberInput {
  /** The array's key in the archive (the member is `${name}.npy`). */
  readonly name: string;
  readonly dtype: NpyDType;
  readonly shape: readonly number[];
  /** Bytes of one element (1, 2, 4 or 8, matching `dtype`). */
  readonly itemBytes: number;
  readonly data: () => AsyncIterable<Uint8Array>;
}

/** Largest offset or size a classic (non-ZIP64) zip can record. */
const ZIP32_LIMIT = 0xffffffff;

/** The `.npy` version 1.0 header for `dtype` and `shape`, padded with spaces to a multiple of 64 bytes. */
export function npyHeader(dtype: NpyDType, shape: readonly number[]): Uint8Array {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${NPY_DESCR[dtype]}', 'fortran_order': False, 'shape': ${dims}, }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  dict = dict.padEnd(total - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(total);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, dict.length, true);
  out.set(Buffer.from(dict, 'latin1'), 10);
  return out;
}

/**
 * Writes `members` as an `.npz` archive at `path`, atomically (a failure or an abort leaves `path` untouched and no
 * temporary behind). Throws `CheckpointFormatError` for duplicate names, a member that streams the wrong number of
 * bytes, or an archive over 4 GiB.
 */
export async function writeNpz(
  path: string,
  members: readonly NpzMemberInput[],
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const seen = new Set<string>();
  for (const m of members) {
    if (seen.has(m.name)) throw new CheckpointFormatError(`cannot write two arrays named ${JSON.stringify(m.name)}.`);
    seen.add(m.name);
  }
  await removeStaleTemporaries(path);
  await writeAtomically(path, async (handle) => {
    let position = 0;
    const write = async (chunk: Uint8Array, at = position): Promise<void> => {
      let done = 0;
      while (done < chunk.length) {
        const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, at + done);
        done += bytesWritten;
      }
      if (at === position) position += chunk.length;
    };
    const central: Buffer[] = [];
    for (const m of members) {
      throwIfAborted(options.signal);
      const name = Buffer.from(`${m.name}.npy`, 'utf8');
      const header = npyHeader(m.dtype, m.shape);
      const expected = m.shape.reduce((a, b) => a * b, 1) * m.itemBytes;
      const size = header.length + expected;
      const localAt = position;
      if (localAt + 30 + name.length + size > ZIP32_LIMIT)
        throw new CheckpointFormatError('the archive would exceed the 4 GiB an .npz without ZIP64 can hold.');
      const local = Buffer.alloc(30);
      local.writeUInt32LE(0x04034b50, 0);
      local.writeUInt16LE(20, 4);
      local.writeUInt16LE(0x0800, 6); // UTF-8 names
      local.writeUInt16LE(0, 8); // stored
      local.writeUInt16LE(0, 10); // time
      local.writeUInt16LE(0x21, 12); // date: 1980-01-01
      local.writeUInt32LE(size, 18);
      local.writeUInt32LE(size, 22);
      local.writeUInt16LE(name.length, 26);
      await write(local);
      await write(name);
      await write(header);
      let crc = crc32Update(header, 0);
      let written = 0;
      for await (const chunk of m.data()) {
        throwIfAborted(options.signal);
        written += chunk.length;
        if (written > expected) break;
        crc = crc32Update(chunk, crc);
        await write(chunk);
      }
      if (written !== expected)
        throw new CheckpointFormatError(
          `array ${JSON.stringify(m.name)} streamed ${written} bytes but its shape and dtype need ${expected}.`,
        );
      const crcBytes = Buffer.alloc(4);
      crcBytes.writeUInt32LE(crc >>> 0, 0);
      await write(crcBytes, localAt + 14);
      const entry = Buffer.alloc(46);
      entry.writeUInt32LE(0x02014b50, 0);
      entry.writeUInt16LE(20, 4);
      entry.writeUInt16LE(20, 6);
      entry.writeUInt16LE(0x0800, 8);
      entry.writeUInt16LE(0x21, 14);
      entry.writeUInt32LE(crc >>> 0, 16);
      entry.writeUInt32LE(size, 20);
      entry.writeUInt32LE(size, 24);
      entry.writeUInt16LE(name.length, 28);
      entry.writeUInt32LE(localAt, 42);
      central.push(entry, name);
    }
    const cd = Buffer.concat(central);
    const cdAt = position;
    if (cdAt + cd.length + 22 > ZIP32_LIMIT || members.length > 0xffff)
      throw new CheckpointFormatError('the archive would exceed what an .npz without ZIP64 can hold.');
    await write(cd);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(members.length, 8);
    end.writeUInt16LE(members.length, 10);
    end.writeUInt32LE(cd.length, 12);
    end.writeUInt32LE(cdAt, 16);
    await write(end);
  });
}
