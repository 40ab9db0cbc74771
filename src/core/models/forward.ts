/**
 * One forward pass of a runnable graph on a preprocessed batch, its outputs flattened per sample.
 */
import * as tf from '@tensorflow/tfjs-core';
import { executeGraph } from '../graph/execute';
import type { Graph } from '../graph/ir';
import { BadInputError } from '../io/errors';
import { imageInput } from './preprocessing';
import { InputBatch } from '../data/batches';
import { ownValue } from '../io/text';

/**
 * Runs the graph on one batch (any shape, batch first) and returns its outputs concatenated per sample ([n, Σ output sizes]), and the shape of
 * each output (batch dimension included).
 */
export function forwardBatch(
  graph: Graph,
  weights: Readonly<Record<string, tf.Tensor>>,
  batch: Pick<InputBatch, 'data'> & { readonly shape: readonly number[] },
): { values: Float32Array; perSample: number; shapes: number[][] } {
  return tf.tidy(() => {
    const x = tf.tensor(batch.data, [...batch.shape]);
    const outputs = executeGraph(graph, weights, { [imageInput(graph).name]: x });
    const n = batch.shape[0];
    const shapes: number[][] = [];
    const flat = graph.outputs.map((name) => {
      const t = ownValue(outputs, name);
      if (t === undefined) throw new BadInputError(`The model's output ${JSON.stringify(name)} was not computed.`);
      if (t.shape[0] !== n)
        throw new BadInputError(
          `The model's output ${JSON.stringify(name)} has ${t.shape[0]} rows for a batch of ${n}; only batch-first outputs can be compared.`,
        );
      shapes.push([...t.shape]);
      return tf.reshape(t, [n, -1]);
    });
    const joined = flat.length === 1 ? (flat[0] as tf.Tensor) : tf.concat(flat, 1);
    return { values: joined.dataSync() as Float32Array, perSample: joined.shape[1] ?? 0, shapes };
  });
}
