/**
 * A small model-graph IR shared by the graph importers (ONNX, TF.js LayersModels) and the functional executor. It
 * holds structure only: operator, wiring and attributes. Weight values never live here: they come from a separate map keyed by
 * initializer name, so the same graph can run on original, reconstructed or perturbed weights.
 */
import { CheckpointFormatError } from '../io/errors';
import { ownValue } from '../io/text';

/** Element type of a graph value, as the IR records it (ONNX names: FLOAT, INT64…). */
export type GraphDType = string;

/** A graph input: its name, element type and shape (`null` for a symbolic or unknown dimension). */
export interface ValueInfo {
  readonly name: string;
  readonly dtype: GraphDType;
  /** Dimensions; `null` where the model leaves a dimension symbolic (`batch`) or unknown. Empty when unknown rank. */
  readonly shape: readonly (number | null)[];
}

/** A small tensor held in an attribute (e.g. `ConstantOfShape.value`), decoded to numbers. */
export interface AttrTensor {
  readonly dtype: GraphDType;
  readonly shape: readonly number[];
  /** Values in row-major order; integer types are converted to numbers (exact below 2^53). */
  readonly values: Float64Array;
}

/** One attribute value: a number (ONNX INT or FLOAT), a string, a list of numbers or strings, or a tensor. */
export type AttrValue = number | string | readonly number[] | readonly string[] | AttrTensor;

/** One operator application. Missing optional inputs are the empty string, as in ONNX. */
export interface Node {
  /** Operator type (`Conv`, `Gemm`…); operators outside the default ONNX domain are `domain.op`. */
  readonly op: string;
  /** Node name from the model, or `<op>_<index>` when it has none. Used in error messages. */
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
}

/** Element type and shape of an initializer (a weight); its values come from a weights map by the same name. */
export interface InitializerInfo {
  readonly dtype: GraphDType;
  readonly shape: readonly number[];
  /** True for values the source model holds as operator constants (ONNX `Constant` nodes), not as weights. */
  readonly constant?: boolean;
}

/** Element types of weights (Weight Lens dtype labels); other initializers are shape-like data. */
const FLOAT_DTYPES: ReadonlySet<string> = new Set(['F32', 'F16', 'BF16', 'F64']);

/** Whether an initializer is a weight: a floating-point tensor that is not an operator constant. */
export function isWeight(info: InitializerInfo): boolean {
  return info.constant !== true && FLOAT_DTYPES.has(info.dtype);
}

/** A model graph: nodes in a topological order, inputs fed by the caller, initializers fed from a weights map. */
export interface Graph {
  /** Inputs the caller provides (initializers are not listed here, even if the file lists them as inputs). */
  readonly inputs: readonly ValueInfo[];
  /** Names of the values the graph returns, in order. */
  readonly outputs: readonly string[];
  /** Nodes in topological order (every input is a graph input, an initializer or an earlier node's output). */
  readonly nodes: readonly Node[];
  /** Weights by name (structure only). Constant nodes of the source model are turned into initializers. */
  readonly initializers: ReadonlyMap<string, InitializerInfo>;
  /** Version of the default ONNX operator set the graph uses (operator semantics depend on it). */
  readonly opset: number;
}

/** An integer attribute, or `fallback` when absent. Throws if present with another type. */
export function attrInt(node: Node, name: string, fallback: number): number {
  const v = ownValue(node.attrs, name);
  if (v === undefined) return fallback;
  if (typeof v !== 'number')
    throw new CheckpointFormatError(
      `${node.op} node ${JSON.stringify(node.name)}: attribute ${name} should be a number.`,
    );
  return v;
}

/** A float attribute, or `fallback` when absent. */
export function attrFloat(node: Node, name: string, fallback: number): number {
  return attrInt(node, name, fallback);
}

/** A string attribute, or `fallback` when absent. */
export function attrString(node: Node, name: string, fallback: string): string {
  const v = ownValue(node.attrs, name);
  if (v === undefined) return fallback;
  if (typeof v !== 'string')
    throw new CheckpointFormatError(
      `${node.op} node ${JSON.stringify(node.name)}: attribute ${name} should be a string.`,
    );
  return v;
}

/** A list-of-integers attribute, or `undefined` when absent. */
export function attrInts(node: Node, name: string): number[] | undefined {
  const v = ownValue(node.attrs, name);
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) {
    throw new CheckpointFormatError(
      `${node.op} node ${JSON.stringify(node.name)}: attribute ${name} should be a list of integers.`,
    );
  }
  return (v as readonly number[]).slice();
}

/** A tensor attribute, or `undefined` when absent. */
export function attrTensor(node: Node, name: string): AttrTensor | undefined {
  const v = ownValue(node.attrs, name);
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || Array.isArray(v) || !('values' in v)) {
    throw new CheckpointFormatError(
      `${node.op} node ${JSON.stringify(node.name)}: attribute ${name} should be a tensor.`,
    );
  }
  return v as AttrTensor;
}
