/**
 * The common dataset contract used by evaluation and distillation: a fixed number of samples of one image shape
 * [H, W, C], read in batches by index as NHWC float32 values exactly as stored (0..255 for 8-bit images), with
 * optional integer labels. `openDataset` picks the reader from the path's content and name.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { FileByteSource } from '../io/byteSource';
import { resolveOptionalCompanion } from '../io/companion';
import { CheckpointFormatError, formatBytes } from '../io/errors';

/** One batch: `x` holds N×H×W×C values (NHWC, row-major), `y` N labels when the dataset has them. */
export interface DatasetBatch {
  readonly x: Float32Array;
  readonly y?: Int32Array;
}

/** Which reader produced a dataset. */
export type DatasetKind = 'idx' | 'cifar' | 'numpy' | 'imageFolder';

/** A random-access labelled (or unlabelled) image dataset. */
export interface Dataset {
  readonly kind: DatasetKind;
  /** Path or label for messages. */
  readonly name: string;
  /** Number of samples (≥ 0). */
  readonly size: number;
  /** Shape of one sample, [height, width, channels], all ≥ 1. */
  readonly shape: readonly [number, number, number];
  /** Class names indexed by label id, when the source names them. */
  readonly classes?: readonly string[];
  /** Whether `read` returns labels. */
  readonly hasLabels: boolean;
  /**
   * Reads the samples at `indices` (each in [0, size), repeats allowed) in the given order. Throws
   * `CheckpointFormatError` for out-of-range indices, batches over `MAX_BATCH_VALUES`, or damaged data.
   */
  read(indices: readonly number[], signal?: AbortSignal): Promise<DatasetBatch>;
  /** Releases file handles. Idempotent. */
  close(): Promise<void>;
}

/** Most float32 values one `read` may return (256 Mi values = 1 GiB): callers batch larger reads. */
export const MAX_BATCH_VALUES = 256 * 1024 * 1024;

/** Most samples a dataset may declare: 2^31 − 1, so labels and indices fit in Int32. */
export const MAX_SAMPLES = 2 ** 31 - 1;

/** Validates `indices` against `dataset`'s size and the batch limit; returns the values one sample holds. */
export function checkBatch(name: string, size: number, shape: readonly number[], indices: readonly number[]): number {
  const perSample = shape.reduce((a, b) => a * b, 1);
  if (indices.length * perSample > MAX_BATCH_VALUES) {
    throw new CheckpointFormatError(
      `${name}: a batch of ${indices.length} samples of [${shape.join(', ')}] exceeds the ${MAX_BATCH_VALUES} values one read may return; read smaller batches.`,
    );
  }
  for (const index of indices) {
    if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
      throw new CheckpointFormatError(`${name}: sample index ${index} is outside the dataset's ${size} samples.`);
    }
  }
  return perSample;
}

/** Largest class-names file read (64 KiB: thousands of names). */
const MAX_NAMES_FILE_BYTES = 64 * 1024;

/** Files beside a dataset that name its classes, one name per line, tried in this order. */
export const CLASS_NAME_FILES: readonly string[] = ['classes.txt', 'labels.txt'];

/**
 * The class names in the file `name` beside the dataset at `dataPath` (one per line, blank lines skipped), through
 * the companion rule: undefined when there is no such file, it is not a file, is over 64 KiB or names nothing; a link
 * out of the data's folder is refused with a `CheckpointFormatError`.
 */
export async function readClassNames(dataPath: string, name: string): Promise<string[] | undefined> {
  const path = await resolveOptionalCompanion(dataPath, name);
  if (path === undefined) return undefined;
  try {
    const info = await stat(path);
    if (!info.isFile() || info.size > MAX_NAMES_FILE_BYTES) return undefined;
    const names = (await readFile(path, 'utf8'))
      .split(/\r?\n/)
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    return names.length > 0 ? names : undefined;
  } catch {
    return undefined;
  }
}

/** `dataset` with class names from `classes.txt` / `labels.txt` beside `path` when its own format names none. */
async function withClassNames(path: string, dataset: Dataset): Promise<Dataset> {
  if (dataset.classes !== undefined) return dataset;
  for (const file of CLASS_NAME_FILES) {
    let classes: string[] | undefined;
    try {
      classes = await readClassNames(path, file);
    } catch (error) {
      await dataset.close();
      throw error;
    }
    if (classes !== undefined) {
      return {
        kind: dataset.kind,
        name: dataset.name,
        size: dataset.size,
        shape: dataset.shape,
        hasLabels: dataset.hasLabels,
        classes,
        read: (indices, signal) => dataset.read(indices, signal),
        close: () => dataset.close(),
      };
    }
  }
  return dataset;
}

/** Options for `openDataset`. */
export interface OpenDatasetOptions {
  /** CIFAR-100 only: return coarse (20-class) labels instead of fine (100-class) ones. */
  readonly cifarCoarseLabels?: boolean;
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

function startsWith(head: Uint8Array, bytes: readonly number[]): boolean {
  return bytes.every((b, i) => head[i] === b);
}

/**
 * Opens a dataset: a folder of class subfolders of PNG/JPEG images, an IDX file (raw or gzipped; labels paired by
 * name), a CIFAR-10/100 binary batch, or a `.npy`/`.npz` file. Throws `CheckpointFormatError` naming what was found
 * when the path is none of these.
 */
export async function openDataset(path: string, options: OpenDatasetOptions = {}): Promise<Dataset> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new CheckpointFormatError(`${path} does not exist or cannot be read.`);
  }
  if (info.isDirectory()) {
    const { openImageFolder } = await import('./imageFolder');
    return openImageFolder(path);
  }
  const source = await FileByteSource.open(path);
  let head: Uint8Array;
  try {
    head = await source.read(0, Math.min(source.size, 16));
  } finally {
    await source.close();
  }
  const lower = basename(path).toLowerCase();
  if (
    startsWith(head, NPY_MAGIC) ||
    startsWith(head, [0x50, 0x4b, 0x03, 0x04]) ||
    lower.endsWith('.npy') ||
    lower.endsWith('.npz')
  ) {
    const { openArrayDataset } = await import('./arrays');
    return withClassNames(path, await openArrayDataset(path));
  }
  const { looksLikeIdx, openIdxDataset } = await import('./idx');
  if (startsWith(head, [0x1f, 0x8b]) || looksLikeIdx(head) || /idx\d/.test(lower))
    return withClassNames(path, await openIdxDataset(path));
  const { looksLikeCifar, openCifarDataset } = await import('./cifar');
  if (looksLikeCifar(lower, info.size))
    return withClassNames(
      path,
      await openCifarDataset(path, options.cifarCoarseLabels === true ? { coarseLabels: true } : {}),
    );
  throw new CheckpointFormatError(
    `${path} (${formatBytes(info.size)}) is not a dataset Weight Lens reads: expected a folder of class subfolders with PNG/JPEG images, an IDX file (MNIST style, optionally .gz), a CIFAR binary batch (.bin), or a .npy/.npz file.`,
  );
}
