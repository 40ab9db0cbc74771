/**
 * The distillation losses of Choi et al.'s phase 2, each a small pure tfjs function in the style of tfjs-layers'
 * `losses.ts`: the training loop (jobs/distill.ts) only weights and adds them. Every function returns a scalar
 * tensor and must run inside a `tf.tidy` (or `tf.variableGrads`) scope that disposes its intermediates.
 */
import * as tf from '@tensorflow/tfjs-core';

/** NeRN's floor inside the student's log-probabilities (`log(q + 1e-4)`), which bounds the KD gradient. */
export const STUDENT_LOG_FLOOR = 1e-4;

/** Floor inside the teacher's log-probabilities, only to keep `log 0` finite (p·log p → 0 there anyway). */
const TEACHER_LOG_FLOOR = 1e-12;

/**
 * KL(teacher ‖ student) of classifier logits [N, K] at temperature `temperature` (> 0), averaged over the batch and
 * multiplied by T² so that its gradient scale does not depend on T (Hinton et al.): Σ_k p_k (log p_k − log(q_k +
 * 1e-4)) with p = softmax(z_t / T), q = softmax(z_s / T). Zero when the student equals the teacher, up to the floor.
 */
export function distillationKl(teacherLogits: tf.Tensor, studentLogits: tf.Tensor, temperature: number): tf.Scalar {
  const p = tf.softmax(tf.div<tf.Tensor2D>(teacherLogits, temperature));
  const logP = tf.log(tf.add(p, TEACHER_LOG_FLOOR));
  const logQ = tf.log(tf.add(tf.softmax(tf.div<tf.Tensor2D>(studentLogits, temperature)), STUDENT_LOG_FLOOR));
  return tf.mul(tf.mean(tf.sum(tf.mul(p, tf.sub(logP, logQ)), -1)), temperature * temperature);
}

/**
 * Output-matching loss of non-classifiers (image outputs and the like): mean squared difference relative to the
 * teacher's mean square, mean((z_s − z_t)²) / (mean(z_t²) + 1e-12); 1 for an all-zero student, 0 for a perfect one.
 */
export function relativeOutputMse(teacherOutput: tf.Tensor, studentOutput: tf.Tensor): tf.Scalar {
  return tf.div(
    tf.mean(tf.square(tf.sub(studentOutput, teacherOutput))),
    tf.add(tf.mean(tf.square(teacherOutput)), 1e-12),
  );
}

/** Floor of a feature map's norm in `featureMapLoss`, so that an all-zero map stays finite. */
const FEATURE_NORM_FLOOR = 1e-3;

/**
 * NeRN's feature-map term: for each pair of maps (batch-first, any shape), each sample's map flattened and divided
 * by its L2 norm (+1e-3), then the squared distance summed per sample and averaged over the batch; averaged over
 * the pairs. Zero for no pairs. `student[i]` is compared with `teacher[i]`.
 */
export function featureMapLoss(teacher: readonly tf.Tensor[], student: readonly tf.Tensor[]): tf.Scalar {
  const pairs = Math.min(teacher.length, student.length);
  if (pairs === 0) return tf.scalar(0);
  const normalised = (t: tf.Tensor): tf.Tensor => {
    const flat = tf.reshape(t, [t.shape[0], -1]);
    return tf.div(flat, tf.add(tf.norm(flat, 2, 1, true), FEATURE_NORM_FLOOR));
  };
  let sum: tf.Scalar = tf.scalar(0);
  for (let i = 0; i < pairs; i++) {
    const s = student[i] as tf.Tensor;
    const t = teacher[i] as tf.Tensor;
    sum = tf.add(sum, tf.mean(tf.sum(tf.square(tf.sub(normalised(s), normalised(t))), 1)));
  }
  return tf.div(sum, pairs);
}

/**
 * Reconstruction term: Σ over layers of ‖W − W_orig‖² divided by `originalSquaredNorm` (Σ ‖W_orig‖² over the same
 * layers, > 0), so 1 means "as far from the original as zero weights". `regenerated[i]` pairs with `original[i]`.
 */
export function reconstructionLoss(
  regenerated: readonly tf.Tensor[],
  original: readonly tf.Tensor[],
  originalSquaredNorm: number,
): tf.Scalar {
  let sum: tf.Scalar = tf.scalar(0);
  for (let i = 0; i < Math.min(regenerated.length, original.length); i++) {
    sum = tf.add(sum, tf.sum(tf.square(tf.sub(regenerated[i] as tf.Tensor, original[i] as tf.Tensor))));
  }
  return tf.div(sum, originalSquaredNorm);
}
