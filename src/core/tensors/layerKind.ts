/**
 * Classifies tensors into coarse layer kinds (conv, dense, norm, embedding, bias, other) from their names and
 * shapes, for the "totals by layer kind" view and for choosing what compression represents. A heuristic: names follow
 * PyTorch/Keras/TF.js/ONNX conventions, and the shape decides when the name is silent.
 */
import type { LayerKind } from '../../protocol/inspect';

const NORM =
  /(^|[._/])(bn\d*|batchnorm|batch_norm|norm\d*|ln(_?\d+|f)?|layernorm|layer_norm|groupnorm|gn|rmsnorm|running_mean|running_var|num_batches_tracked|moving_mean|moving_variance|gamma|beta)([._/:]|$)/i;
const EMBEDDING = /(embed|embedding|wte|wpe|tok_embeddings|token_embd|position_embeddings|word_embeddings)/i;
const BIAS = /(^|[._/])(bias|b)(:\d+)?$/i;

/** The layer kind of a tensor named `name` with `shape` (outermost first). */
export function layerKindOf(name: string, shape: readonly number[]): LayerKind {
  if (NORM.test(name)) return 'norm';
  if (EMBEDDING.test(name)) return 'embedding';
  if (shape.length >= 3 && shape.length <= 5) return 'conv';
  if (shape.length === 2) return 'dense';
  if (shape.length === 1 && BIAS.test(name)) return 'bias';
  if (shape.length === 1 && /bias/i.test(name)) return 'bias';
  return 'other';
}
