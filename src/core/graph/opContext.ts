/**
 * What an ONNX operator implementation of the functional executor sees, and the small helpers every implementation
 * shares: required inputs, shape-like inputs read as numbers, axis normalisation, the result-size guard and the
 * one-sentence error that names the node. `execute.ts` and `logicOps.ts` build their operator tables on these.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { CheckpointFormatError } from '../io/errors';
import type { Node } from './ir';

/** What an operator implementation sees: the node, its inputs (undefined for missing optional ones), the opset. */
export interface OpContext {
  readonly node: Node;
  readonly inputs: readonly (tf.Tensor | undefined)[];
  readonly opset: number;
}

/** One operator: computes the node's outputs (all float32; booleans are 0/1, integers exact below 2^24). */
export type OpImpl = (ctx: OpContext) => tf.Tensor | tf.Tensor[];

/** Most elements an operator's result may have (1 GiB of float32): a larger one comes from a hostile model. */
export const MAX_RESULT_ELEMENTS = 2 ** 28;

/** Throws a `CheckpointFormatError` naming the operator and node, followed by `message` (one sentence). */
export function fail(node: Node, message: string): never {
  throw new CheckpointFormatError(`${node.op} node ${JSON.stringify(node.name)}: ${message}`);
}

/** Input `i`, which must be present. */
export function input(ctx: OpContext, i: number): tf.Tensor {
  const t = ctx.inputs[i];
  if (t === undefined) fail(ctx.node, `input ${i} is missing.`);
  return t;
}

/** The values of input `i` as plain numbers (shape-like arguments), or undefined when the input is absent. */
export function numbers(ctx: OpContext, i: number): number[] | undefined {
  const t = ctx.inputs[i];
  if (t === undefined) return undefined;
  return Array.from(t.dataSync());
}

/** `axis` in [0, rank), counting negative axes from the end; throws when out of range. */
export function normAxis(axis: number, rank: number, node: Node): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) fail(node, `axis ${axis} is out of range for rank ${rank}.`);
  return a;
}

/** Refuses a result shape with a negative or fractional dimension, or over `MAX_RESULT_ELEMENTS`, before allocation. */
export function checkResult(node: Node, shape: readonly number[]): void {
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0))
    fail(node, `would produce the invalid shape [${shape.join(', ')}].`);
  const size = shape.reduce((a, b) => a * b, 1);
  if (size > MAX_RESULT_ELEMENTS)
    fail(node, `would produce [${shape.join(', ')}], over ${MAX_RESULT_ELEMENTS} values.`);
}

/** The multidirectional (NumPy) broadcast of two shapes; throws naming both when they do not broadcast. */
export function broadcastShapes(node: Node, a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1)
      fail(node, `shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast.`);
    out.push(da === 1 ? db : da);
  }
  return out;
}
