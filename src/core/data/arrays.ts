/**
 * Datasets stored as NumPy arrays: a `.npz` with `x`/`y`, `images`/`labels`, `x_train`/`y_train` or `x_test`/`y_test`
 * members (else its first two arrays, images then labels), or a lone `.npy` of images without labels. Images are
 * [N, H, W, C], [N, H, W] (C = 1) or [N, D] (a [1, D, 1] sample), kept in their stored layout and values. Labels are
 * [N] or [N, 1] integers, or [N, K] one-hot / scores (the arg-max is taken). Arrays go through the checkpoint reader
 * (src/core/formats/numpy.ts), and the images are loaded once, bounded by `MAX_ARRAY_VALUES`.
 */
import { basename } from 'node:path';
import { FileByteSource, siblingOpenerFor } from '../io/byteSource';
import { CheckpointFormatError } from '../io/errors';
import { numpyFormat } from '../formats/numpy';
import { readTensorValues, type TensorEntry } from '../tensors/tensor';
import { MAX_SAMPLES, checkBatch, type Dataset, type DatasetBatch } from './dataset';

/** Most values an array dataset may hold in memory (256 Mi float32 = 1 GiB). */
export const MAX_ARRAY_VALUES = 256 * 1024 * 1024;

const KEY_PAIRS: readonly (readonly [string, string])[] = [
  ['x', 'y'],
  ['images', 'labels'],
  ['x_train', 'y_train'],
  ['x_test', 'y_test'],
];

/** Picks the images and labels tensors of an archive by the conventional names, else the first two. */
function pickArrays(path: string, tensors: readonly TensorEntry[]): { images: TensorEntry; labels?: TensorEntry } {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  for (const [xKey, yKey] of KEY_PAIRS) {
    const images = byName.get(xKey);
    const labels = byName.get(yKey);
    if (images && labels) return { images, labels };
  }
  const [first, second] = tensors;
  if (!first) throw new CheckpointFormatError(`${path} holds no arrays.`);
  return second ? { images: first, labels: second } : { images: first };
}

function shapeOf(path: string, entry: TensorEntry): [number, number, number] {
  const [, a = 1, b, c] = entry.shape;
  if (entry.shape.length === 2) return [1, a, 1];
  if (entry.shape.length === 3 && b !== undefined) return [a, b, 1];
  if (entry.shape.length === 4 && b !== undefined && c !== undefined) return [a, b, c];
  throw new CheckpointFormatError(
    `${path}: images array ${JSON.stringify(entry.name)} has shape [${entry.shape.join(', ')}]; expected [N, H, W, C], [N, H, W] or [N, D].`,
  );
}

async function readLabels(path: string, entry: TensorEntry, count: number): Promise<Int32Array> {
  const [n = 0, k = 1] = entry.shape;
  if (entry.shape.length < 1 || entry.shape.length > 2 || n !== count) {
    throw new CheckpointFormatError(
      `${path}: labels array ${JSON.stringify(entry.name)} has shape [${entry.shape.join(', ')}]; expected [${count}] or [${count}, K] to match the images.`,
    );
  }
  const values = await readTensorValues(entry, { maxElements: MAX_ARRAY_VALUES });
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (k === 1) {
      const v = values[i] ?? 0;
      if (!Number.isInteger(v) || v < 0)
        throw new CheckpointFormatError(
          `${path}: label ${i} of ${JSON.stringify(entry.name)} is ${v}; class labels must be integers ≥ 0.`,
        );
      out[i] = v;
    } else {
      let best = 0;
      for (let j = 1; j < k; j++) if ((values[i * k + j] ?? 0) > (values[i * k + best] ?? 0)) best = j;
      out[i] = best;
    }
  }
  return out;
}

/** Opens a `.npy`/`.npz` dataset. Throws `CheckpointFormatError` for unusable shapes, dtypes or sizes. */
export async function openArrayDataset(path: string): Promise<Dataset> {
  const source = await FileByteSource.open(path);
  let checkpoint;
  try {
    checkpoint = await numpyFormat.open(source, { path, siblings: siblingOpenerFor(path) });
  } catch (error) {
    await source.close();
    throw error;
  }
  try {
    const { images, labels } = pickArrays(path, checkpoint.tensors);
    if (images.notDecodedReason !== undefined)
      throw new CheckpointFormatError(
        `${path}: images array ${JSON.stringify(images.name)} cannot be read: ${images.notDecodedReason}.`,
      );
    const shape = shapeOf(path, images);
    const size = images.shape[0] ?? 0;
    if (size > MAX_SAMPLES)
      throw new CheckpointFormatError(`${path} holds ${size} samples, over the ${MAX_SAMPLES} supported.`);
    if (images.params > MAX_ARRAY_VALUES) {
      throw new CheckpointFormatError(
        `${path}: images array ${JSON.stringify(images.name)} has ${images.params} values, over the ${MAX_ARRAY_VALUES} an array dataset may load; split it into smaller files.`,
      );
    }
    const y = labels ? await readLabels(path, labels, size) : undefined;
    const x = await readTensorValues(images, { maxElements: MAX_ARRAY_VALUES });
    return {
      kind: 'numpy',
      name: path,
      size,
      shape,
      hasLabels: y !== undefined,
      read(indices: readonly number[]): Promise<DatasetBatch> {
        const perSample = checkBatch(path, size, shape, indices);
        const bx = new Float32Array(indices.length * perSample);
        const by = y ? new Int32Array(indices.length) : undefined;
        indices.forEach((index, k) => {
          bx.set(x.subarray(index * perSample, (index + 1) * perSample), k * perSample);
          if (by && y) by[k] = y[index] ?? 0;
        });
        return Promise.resolve(by ? { x: bx, y: by } : { x: bx });
      },
      close: () => Promise.resolve(),
    };
  } catch (error) {
    if (error instanceof CheckpointFormatError && !error.message.includes(basename(path))) {
      throw new CheckpointFormatError(`${path}: ${error.message}`);
    }
    throw error;
  } finally {
    await checkpoint.close();
  }
}
