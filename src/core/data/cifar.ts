/**
 * CIFAR-10 / CIFAR-100 binary batches: fixed-size records of label byte(s) then 3072 pixel bytes (1024 red, 1024
 * green, 1024 blue, each a 32×32 row-major plane). CIFAR-10 records have 1 label byte (3073 bytes); CIFAR-100
 * records have a coarse then a fine label byte (3074 bytes). Samples are returned NHWC [32, 32, 3], values 0..255.
 * Class names are taken from `batches.meta.txt` (CIFAR-10) or `fine_label_names.txt` / `coarse_label_names.txt`
 * (CIFAR-100) beside the batch when present.
 */
import { basename } from 'node:path';
import { FileByteSource } from '../io/byteSource';
import { CheckpointFormatError, formatBytes, throwIfAborted } from '../io/errors';
import { MAX_SAMPLES, checkBatch, readClassNames, type Dataset, type DatasetBatch } from './dataset';

/** Pixel bytes in one CIFAR record (3 planes of 32×32). */
export const CIFAR_PIXEL_BYTES = 3 * 32 * 32;

/** Largest class-name file read (CIFAR's are < 1 kB). */

/** Label bytes per record implied by a file name: 1 for CIFAR-10 names, 2 for CIFAR-100 names, else undefined. */
function labelBytesFromName(fileName: string): 1 | 2 | undefined {
  const lower = fileName.toLowerCase();
  if (/^(data_batch_\d+|test_batch)\.bin$/.test(lower)) return 1;
  if (/^(train|test)\.bin$/.test(lower)) return 2;
  return undefined;
}

/** True when a file named `fileName` of `size` bytes should be opened as a CIFAR binary batch. Never throws. */
export function looksLikeCifar(fileName: string, size: number): boolean {
  if (labelBytesFromName(basename(fileName)) !== undefined) return true;
  // Any other `.bin` goes to the CIFAR reader too, whose size checks give the clearest error for a non-CIFAR file.
  return fileName.toLowerCase().endsWith('.bin') && size >= 0;
}

/** Options for `openCifarDataset`. */
export interface CifarOptions {
  /** 1 (CIFAR-10) or 2 (CIFAR-100) label bytes per record; by default from the file name, then the file size. */
  readonly labelBytes?: 1 | 2;
  /** CIFAR-100: return the coarse (first) label instead of the fine (second) one. */
  readonly coarseLabels?: boolean;
}

/** Opens a CIFAR-10 or CIFAR-100 binary batch. Throws if the file is not a whole number of records. */
export async function openCifarDataset(path: string, options: CifarOptions = {}): Promise<Dataset> {
  const source = await FileByteSource.open(path);
  const fileName = basename(path);
  let labelBytes = options.labelBytes ?? labelBytesFromName(fileName);
  if (labelBytes === undefined) {
    const fits10 = source.size % (CIFAR_PIXEL_BYTES + 1) === 0;
    const fits100 = source.size % (CIFAR_PIXEL_BYTES + 2) === 0;
    labelBytes = fits10 && !fits100 ? 1 : fits100 && !fits10 ? 2 : undefined;
    if (labelBytes === undefined) {
      await source.close();
      throw new CheckpointFormatError(
        `${path} (${formatBytes(source.size)}) is not a CIFAR batch: its size is ${fits10 ? 'a multiple of both' : 'a multiple of neither'} the CIFAR-10 (3073-byte) and CIFAR-100 (3074-byte) record sizes; name it data_batch_N.bin or train.bin/test.bin.`,
      );
    }
  }
  const recordBytes = CIFAR_PIXEL_BYTES + labelBytes;
  if (source.size === 0 || source.size % recordBytes !== 0) {
    await source.close();
    throw new CheckpointFormatError(
      `${path} is not a whole number of CIFAR-${labelBytes === 1 ? '10' : '100'} records: ${source.size} bytes is not a multiple of ${recordBytes} (${source.size % recordBytes} bytes left over); the file is truncated or not a CIFAR batch.`,
    );
  }
  const size = source.size / recordBytes;
  if (size > MAX_SAMPLES) {
    await source.close();
    throw new CheckpointFormatError(`${path} holds ${size} records, over the ${MAX_SAMPLES} supported.`);
  }
  const coarse = labelBytes === 2 && options.coarseLabels === true;
  const labelOffset = labelBytes === 2 && !coarse ? 1 : 0;
  const classes =
    labelBytes === 1
      ? await readClassNames(path, 'batches.meta.txt')
      : await readClassNames(path, coarse ? 'coarse_label_names.txt' : 'fine_label_names.txt');
  const shape: [number, number, number] = [32, 32, 3];
  return {
    kind: 'cifar',
    name: path,
    size,
    shape,
    ...(classes ? { classes } : {}),
    hasLabels: true,
    async read(indices: readonly number[], signal?: AbortSignal): Promise<DatasetBatch> {
      const perSample = checkBatch(path, size, shape, indices);
      const x = new Float32Array(indices.length * perSample);
      const y = new Int32Array(indices.length);
      for (let k = 0; k < indices.length; k++) {
        throwIfAborted(signal);
        const record = await source.read((indices[k] ?? 0) * recordBytes, recordBytes);
        y[k] = record[labelOffset] ?? 0;
        const base = k * perSample;
        for (let p = 0; p < 1024; p++) {
          x[base + 3 * p] = record[labelBytes + p] ?? 0;
          x[base + 3 * p + 1] = record[labelBytes + 1024 + p] ?? 0;
          x[base + 3 * p + 2] = record[labelBytes + 2048 + p] ?? 0;
        }
      }
      return { x, y };
    },
    close: () => source.close(),
  };
}
