/**
 * Batches read from a dataset: raw images (optionally augmented) and labels, then preprocessed into the model's
 * input tensor layout.
 */
import type { Dataset } from './dataset';
import { applyPreprocessing, type ImageBatch, type PreprocessSpec } from './preprocess';
import { Augmentation, augmentBatch } from './augment';

/** A batch ready for the model: values in the model's layout and shape, and labels when the data has them. */
export interface InputBatch {
  readonly data: Float32Array;
  readonly shape: [number, number, number, number];
  readonly labels?: Int32Array;
}

/**
 * Reads samples `indices` as a raw NHWC batch (values as stored), augmented on a copy when asked: what preprocessing
 * for one or several models (a student and a differently-preprocessed teacher) starts from.
 */
export async function readImageBatch(
  dataset: Dataset,
  indices: readonly number[],
  augment?: Augmentation,
  signal?: AbortSignal,
): Promise<{ images: ImageBatch; labels?: Int32Array }> {
  const batch = await dataset.read(indices, signal);
  const [h, w, c] = dataset.shape;
  const x = augment ? Float32Array.from(batch.x) : batch.x;
  if (augment) augmentBatch(x, indices.length, h, w, c, augment);
  const images: ImageBatch = { data: x, n: indices.length, h, w, c };
  return batch.y ? { images, labels: batch.y } : { images };
}

/** Reads samples `indices`, augments them (raw NHWC, before preprocessing) if asked, and preprocesses them. */
export async function readInputBatch(
  dataset: Dataset,
  indices: readonly number[],
  spec: PreprocessSpec,
  augment?: Augmentation,
  signal?: AbortSignal,
): Promise<InputBatch> {
  const { images, labels } = await readImageBatch(dataset, indices, augment, signal);
  const ready = applyPreprocessing(images, spec);
  return labels ? { ...ready, labels } : ready;
}
