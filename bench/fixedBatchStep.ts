/**
 * The native distillation step on one fixed batch, as the distillation benchmarks time and compare it: the ResNet-20
 * as its own teacher, the first `batch` images preprocessed once, default losses without the feature term (KL at the
 * default temperature, the reconstruction term), and Adam scheduled for `totalSteps` steps. Shared by
 * bench/distill.ts (speed beside PyTorch) and bench/gpu-check.ts (one step on a GPU against the CPU).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dataset } from '../src/core/data/dataset';
import { applyPreprocessing } from '../src/core/data/preprocess';
import { readImageBatch } from '../src/core/data/batches';
import { boundEncodings, DEFAULT_DISTILL_OPTIONS, type BoundLayer } from '../src/core/jobs/distill';
import type { ExecutableModel } from '../src/core/models/executableModel';
import { resolvePreprocessing } from '../src/core/models/preprocessing';
import type { OpenArtifact } from '../src/core/nern/artifact';
import { adamConfig } from '../src/core/nern/optimizer';
import type { OrtDistillSpec } from '../src/core/nern/ortDistill';

/**
 * The spec of that step and its batch `x` (row-major float32 of `spec.inputShape`, fed as both the student's and
 * the teacher's input). `original` holds the model's weight tensors (the caller disposes them), `bound` the
 * artifact's layers the graph uses (`bindLayers`).
 */
export async function fixedBatchDistillStep(
  model: ExecutableModel,
  artifact: OpenArtifact,
  data: Dataset,
  original: Record<string, tf.Tensor>,
  bound: readonly BoundLayer[],
  batch: number,
  totalSteps: number,
  extra: Partial<OrtDistillSpec> = {},
): Promise<{ spec: OrtDistillSpec; x: { data: Float32Array; shape: number[] } }> {
  const { spec: pre } = await resolvePreprocessing(model, data);
  const { images } = await readImageBatch(
    data,
    Array.from({ length: batch }, (_, i) => i % data.size),
    undefined,
  );
  const x = applyPreprocessing(images, pre);
  const originalSq = bound.reduce(
    (s, b) => s + tf.tidy(() => tf.sum(tf.square(original[b.name] as tf.Tensor)).dataSync()[0] ?? 0),
    0,
  );
  const o = DEFAULT_DISTILL_OPTIONS;
  const spec: OrtDistillSpec = {
    graph: model.graph,
    weights: original,
    teacherGraph: model.graph,
    teacherWeights: original,
    inputShape: x.shape,
    teacherInputShape: x.shape,
    features: [],
    layers: bound,
    encodings: boundEncodings(artifact, bound),
    predictor: artifact.predictor,
    loss: {
      classifier: true,
      temperature: o.temperature,
      klWeight: o.klWeight,
      featureWeight: 0,
      reconstructionWeight: o.reconstructionWeight,
      originalSquaredNorm: originalSq,
    },
    optimizer: adamConfig(totalSteps, o.lr),
    ...extra,
  };
  return { spec, x };
}
