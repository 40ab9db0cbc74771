/**
 * Constant folding of the graph IR for onnxruntime's native training graphs (their forward part). One run
 * of the functional executor (execute.ts) on sample inputs of the run's shapes gives every value's static shape and
 * folds every node that depends on no *live* value (graph inputs and the weights fed at run time) into a constant:
 * shape arithmetic, Constant chains and weight-only subgraphs become initializers, so the nodes left are the ones on
 * the data path, each re-emitted as a default-domain NodeProto with its attributes. Element types follow ONNX's rules
 * (Shape is int64, comparisons bool, Cast its `to`), since the executor holds every value as float32.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  ONNX_BOOL,
  ONNX_DOUBLE,
  ONNX_FLOAT,
  ONNX_INT32,
  ONNX_INT64,
  tensorInitializer,
  type NodeEmitter,
} from '../backend/onnxGraph';
import { executeGraph } from './execute';
import type { Graph, GraphDType, Node } from './ir';
import { onnxAttr } from './onnxLowering';

/** Lowest and highest default-domain opset whose operator semantics the lowering re-emits unchanged at opset 17. */
export const LOWERING_OPSETS = { min: 13, max: 17 } as const;

/** ONNX element type code of an IR dtype label (F32, I64, BOOL…), or undefined for types the lowering does not emit. */
export function onnxElemType(dtype: GraphDType): number | undefined {
  const codes: Record<string, number> = {
    F32: ONNX_FLOAT,
    FLOAT: ONNX_FLOAT,
    F16: ONNX_FLOAT,
    BF16: ONNX_FLOAT,
    F64: ONNX_DOUBLE,
    I64: ONNX_INT64,
    INT64: ONNX_INT64,
    I32: ONNX_INT32,
    INT32: ONNX_INT32,
    BOOL: ONNX_BOOL,
  };
  return Object.hasOwn(codes, dtype) ? codes[dtype] : undefined;
}

/** Operators whose output is bool. */
const BOOL_OPS = new Set(['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or', 'Xor']);
/** Operators whose output is int64 regardless of their inputs. */
const INT64_OPS = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero']);

/**
 * Element type (ONNX code) of every value of `graph`: initializers from their dtype, inputs from theirs, node
 * outputs by ONNX's typing rules (Cast → `to`, Shape → int64, comparisons → bool, ConstantOfShape → its value's,
 * Where → its second input's, others → their first typed input's).
 */
export function elementTypes(graph: Graph): Map<string, number> {
  const types = new Map<string, number>();
  for (const [name, info] of graph.initializers) types.set(name, onnxElemType(info.dtype) ?? ONNX_FLOAT);
  for (const v of graph.inputs) types.set(v.name, onnxElemType(v.dtype) ?? ONNX_FLOAT);
  for (const n of graph.nodes) {
    let t: number;
    if (n.op === 'Cast') t = typeof n.attrs.to === 'number' ? n.attrs.to : ONNX_FLOAT;
    else if (INT64_OPS.has(n.op)) t = ONNX_INT64;
    else if (BOOL_OPS.has(n.op)) t = ONNX_BOOL;
    else if (n.op === 'ConstantOfShape') {
      const v = n.attrs.value;
      t = v !== undefined && typeof v === 'object' && 'dtype' in v ? (onnxElemType(v.dtype) ?? ONNX_FLOAT) : ONNX_FLOAT;
    } else if (n.op === 'Where') t = types.get(n.inputs[1] ?? '') ?? ONNX_FLOAT;
    else t = n.inputs.map((i) => types.get(i)).find((x) => x !== undefined) ?? ONNX_FLOAT;
    for (const o of n.outputs) if (o !== '') types.set(o, t);
  }
  return types;
}

/** A value the lowered nodes read that is not fed at run time: its element type, shape and row-major values. */
export interface LoweredConstant {
  readonly elemType: number;
  readonly dims: readonly number[];
  readonly values: Float32Array;
}

/** What `lowerForward` lowers. */
export interface LoweringRequest {
  readonly graph: Graph;
  /** A float32 tensor for every initializer of the graph (as `executeGraph` takes them). Read, never disposed. */
  readonly weights: Readonly<Record<string, tf.Tensor>>;
  /** Sample values of every graph input, of the shapes the lowered graph will run at. Read, never disposed. */
  readonly inputs: Readonly<Record<string, tf.Tensor>>;
  /** Initializers fed at run time (their nodes stay in the graph); every other initializer is a constant. */
  readonly live: ReadonlySet<string>;
}

/** The lowered forward pass: the nodes on the data path and everything else they read, as named values. */
export interface LoweredForward {
  /** Nodes (IR form, default domain) that depend on a live value, in topological order. */
  readonly nodes: readonly Node[];
  /**
   * Values the nodes or the graph outputs read that are neither live nor computed by the nodes (weights and folded
   * values), by name.
   */
  readonly constants: ReadonlyMap<string, LoweredConstant>;
  /** Static shape of every value of the graph at the request's input shapes. */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  /** ONNX element type of every value. */
  readonly elemTypes: ReadonlyMap<string, number>;
}

/**
 * Why `graph` cannot be lowered (an operator outside the default domain, an opset outside LOWERING_OPSETS), or
 * undefined when it can.
 */
export function loweringUnsupported(graph: Graph): string | undefined {
  const foreign = graph.nodes.find((n) => n.op.includes('.'));
  if (foreign !== undefined) return `${foreign.op} is not an ONNX operator`;
  if (graph.opset < LOWERING_OPSETS.min || graph.opset > LOWERING_OPSETS.max)
    return `the model uses ONNX opset ${graph.opset}; the native graphs take opsets ${LOWERING_OPSETS.min} to ${LOWERING_OPSETS.max}`;
  return undefined;
}

/**
 * Lowers `request.graph` (see the module comment): one executor run at the inputs' shapes, inside a tidy (no tensor
 * outlives it). Throws `CheckpointFormatError` when the executor cannot run the graph.
 */
export function lowerForward(request: LoweringRequest): LoweredForward {
  const { graph, live } = request;
  const liveValues = new Set<string>([...graph.inputs.map((i) => i.name), ...live]);
  const nodes: Node[] = [];
  for (const n of graph.nodes) {
    if (n.inputs.some((i) => i !== '' && liveValues.has(i))) {
      nodes.push(n);
      for (const o of n.outputs) if (o !== '') liveValues.add(o);
    }
  }
  const read = new Set<string>();
  for (const n of nodes) for (const i of n.inputs) if (i !== '' && !liveValues.has(i)) read.add(i);
  for (const o of graph.outputs) if (!liveValues.has(o)) read.add(o);
  const elemTypes = elementTypes(graph);
  const shapes = new Map<string, readonly number[]>();
  const constants = new Map<string, LoweredConstant>();
  for (const [name, info] of graph.initializers) shapes.set(name, info.shape.slice());
  for (const [name, t] of Object.entries(request.inputs)) shapes.set(name, t.shape.slice());
  const outputs = graph.nodes.flatMap((n) => n.outputs.filter((o) => o !== ''));
  tf.tidy(() => {
    const values = executeGraph({ ...graph, outputs }, request.weights, request.inputs);
    for (const [name, t] of Object.entries(values)) shapes.set(name, t.shape.slice());
    for (const name of read) {
      const t = values[name] ?? request.weights[name];
      if (t === undefined) continue;
      const values32 = t.dtype === 'float32' ? (t.dataSync() as Float32Array) : Float32Array.from(t.dataSync());
      constants.set(name, {
        elemType: elemTypes.get(name) ?? ONNX_FLOAT,
        dims: t.shape.slice(),
        values: Float32Array.from(values32),
      });
    }
  });
  return { nodes, constants, shapes, elemTypes };
}

/** Emits `node` as a default-domain NodeProto with its attributes, typed as the lowering types them (`onnxAttr`). */
export function emitLoweredNode(emit: NodeEmitter, node: Node): void {
  emit(
    node.op,
    node.inputs.slice(),
    node.outputs.slice(),
    Object.entries(node.attrs).map(([k, v]) => onnxAttr(node, k, v)),
  );
}

/** The initializer proto of a lowered constant. */
export function constantInitializer(name: string, c: LoweredConstant): Uint8Array {
  return tensorInitializer(name, c.dims, c.values, c.elemType);
}
