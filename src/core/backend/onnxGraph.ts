/**
 * Writers of ONNX models built in memory (IR 8, default-domain opset 17 unless told otherwise) for onnxruntime: node,
 * value-info, tensor and model protos on the project's protobuf writer. The native training step (nern/ortStep.ts),
 * the native linear algebra of the spectra (analysis/nativeLinalg.ts) and the lowering of the graph IR
 * (graph/onnxLowering.ts) build their graphs with these.
 */
import { ProtoWriter } from '../containers/protobufWriter';

/** ONNX TensorProto.DataType codes (onnx.proto3) of the element types the graphs use. */
export const ONNX_FLOAT = 1;
/** int64. */
export const ONNX_INT64 = 7;
/** float64. */
export const ONNX_DOUBLE = 11;
/** int32. */
export const ONNX_INT32 = 6;
/** bool (one byte per element). */
export const ONNX_BOOL = 9;

// AttributeProto.AttributeType codes.
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_TENSOR = 4;
const ATTR_FLOATS = 6;
const ATTR_INTS = 7;
const ATTR_STRINGS = 8;

/**
 * One ONNX node attribute, of the kind given by the one field set: a float (`f`), a string (`s`), a tensor (`t`, an
 * encoded TensorProto), a list of floats (`floats`), of ints (`ints`) or of strings (`strings`); else an int (`i`,
 * 0 when absent).
 */
export interface NodeAttr {
  name: string;
  i?: number;
  f?: number;
  s?: string;
  t?: Uint8Array;
  floats?: readonly number[];
  ints?: readonly number[];
  strings?: readonly string[];
}

/** Emits a NodeProto of operator `op` (default domain) into the emitter's list, with a unique name. */
export type NodeEmitter = (op: string, ins: string[], outs: string[], attrs?: NodeAttr[]) => void;

/**
 * A `NodeEmitter` appending the encoded NodeProtos to `nodes`, named `<prefix>0`, `<prefix>1`, … in order (prefix
 * `n` by default; graphs that join the nodes of two emitters give each its own prefix so node names stay unique).
 */
export function nodeEmitter(nodes: Uint8Array[], prefix = 'n'): NodeEmitter {
  let counter = 0;
  return (op, ins, outs, attrs = []) => {
    const w = new ProtoWriter();
    for (const i of ins) w.string(1, i);
    for (const o of outs) w.string(2, o);
    w.string(3, `${prefix}${counter++}`);
    w.string(4, op);
    for (const a of attrs) {
      w.message(5, (aw) => {
        aw.string(1, a.name);
        if (a.f !== undefined) aw.float(2, a.f).varint(20, ATTR_FLOAT);
        else if (a.s !== undefined) aw.string(4, a.s).varint(20, ATTR_STRING);
        else if (a.t !== undefined) aw.bytes(5, a.t).varint(20, ATTR_TENSOR);
        else if (a.floats !== undefined) {
          for (const f of a.floats) aw.float(7, f);
          aw.varint(20, ATTR_FLOATS);
        } else if (a.ints !== undefined) aw.packedVarints(8, a.ints).varint(20, ATTR_INTS);
        else if (a.strings !== undefined) {
          for (const str of a.strings) aw.string(9, str);
          aw.varint(20, ATTR_STRINGS);
        } else aw.varint(3, a.i ?? 0).varint(20, ATTR_INT);
      });
    }
    nodes.push(w.finish());
  };
}

/**
 * A TensorProto `name` of element type `elemType` (ONNX TensorProto.DataType code) and `dims`, holding `raw`: the
 * row-major little-endian bytes of its values (ONNX raw_data).
 */
export function tensorProto(name: string, dims: readonly number[], elemType: number, raw: Uint8Array): Uint8Array {
  const w = new ProtoWriter();
  if (dims.length > 0) w.packedVarints(1, dims);
  return w.varint(2, elemType).string(8, name).bytes(9, raw).finish();
}

/** A float32 TensorProto `name` of `dims` holding `values` (row-major; their count must match `dims`). */
export function floatTensorProto(name: string, dims: readonly number[], values: Float32Array): Uint8Array {
  // Float32Array bytes are little-endian on every platform Node and onnxruntime ship for, as ONNX raw_data is.
  return tensorProto(name, dims, ONNX_FLOAT, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

/** An int64 TensorProto `name` of `dims` holding `values` (integers within ±2^53). */
export function int64TensorProto(name: string, dims: readonly number[], values: readonly number[]): Uint8Array {
  const data = BigInt64Array.from(values, (v) => BigInt(v));
  return tensorProto(name, dims, ONNX_INT64, new Uint8Array(data.buffer));
}

/** A rank-0 float32 initializer `name` = `value` (rounded to float32). */
export function scalarInitializer(name: string, value: number): Uint8Array {
  return tensorInitializer(name, [], [value]);
}

/** Largest magnitude an int64 tensor element written from a JavaScript number takes (ONNX's "to the end" sentinel). */
const INT64_LIMIT = 9223372036854775807n;

/**
 * A TensorProto initializer `name` of element type `elemType` (FLOAT, INT64, INT32, BOOL or DOUBLE) and `dims`, from
 * `values` in row-major order (raw little-endian data). Integer values are rounded; int64 values beyond ±2^63 − 1
 * (such as a float32 copy of INT64_MAX) are clamped to it. Throws a RangeError when the count does not match `dims`.
 */
export function tensorInitializer(
  name: string,
  dims: readonly number[],
  values: ArrayLike<number>,
  elemType: number = ONNX_FLOAT,
): Uint8Array {
  const count = dims.reduce((a, d) => a * d, 1);
  if (values.length !== count)
    throw new RangeError(`initializer ${name} has ${values.length} values for [${dims.join(', ')}]`);
  let bytes: Uint8Array;
  if (elemType === ONNX_FLOAT) {
    const f = Float32Array.from(values);
    bytes = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  } else if (elemType === ONNX_DOUBLE) {
    const f = Float64Array.from(values);
    bytes = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  } else if (elemType === ONNX_INT64) {
    const f = new BigInt64Array(count);
    for (let i = 0; i < count; i++) {
      const v = values[i] ?? 0;
      const big =
        Number.isFinite(v) && Math.abs(v) < 9.2e18 ? BigInt(Math.round(v)) : v < 0 ? -INT64_LIMIT : INT64_LIMIT;
      f[i] = big;
    }
    bytes = new Uint8Array(f.buffer);
  } else if (elemType === ONNX_INT32) {
    const f = Int32Array.from(values, (v) => Math.round(v));
    bytes = new Uint8Array(f.buffer);
  } else if (elemType === ONNX_BOOL) {
    bytes = Uint8Array.from(values, (v) => (v !== 0 ? 1 : 0));
  } else throw new RangeError(`initializer ${name}: element type ${elemType} is not written here`);
  return tensorProto(name, dims, elemType, bytes);
}

/**
 * A ValueInfoProto of a tensor `name` with element type `elemType` (default float32) and `dims`: numbers are fixed
 * sizes, strings named symbolic dimensions; `undefined` dims leave the shape (even the rank) unknown. A `null` type
 * writes the name alone (a graph output whose type onnxruntime infers).
 */
export function valueInfoProto(
  name: string,
  dims: readonly (number | string)[] | undefined,
  elemType: number | null = ONNX_FLOAT,
): Uint8Array {
  const w = new ProtoWriter().string(1, name);
  if (elemType === null) return w.finish();
  return w
    .message(2, (tw) =>
      tw.message(1, (tt) => {
        tt.varint(1, elemType);
        if (dims === undefined) return;
        tt.message(2, (sw) => {
          for (const d of dims) sw.message(1, (dw) => (typeof d === 'number' ? dw.varint(1, d) : dw.string(2, d)));
        });
      }),
    )
    .finish();
}

/**
 * A ModelProto (IR 8, default-domain opset `opset`, 17 unless given) of one graph `name` from encoded nodes,
 * initializers and I/O infos.
 */
export function modelProto(
  name: string,
  nodes: Uint8Array[],
  inits: Uint8Array[],
  inputs: Uint8Array[],
  outputs: Uint8Array[],
  opset = 17,
): Uint8Array {
  const graph = new ProtoWriter();
  for (const n of nodes) graph.bytes(1, n);
  graph.string(2, name);
  for (const t of inits) graph.bytes(5, t);
  for (const v of inputs) graph.bytes(11, v);
  for (const v of outputs) graph.bytes(12, v);
  return new ProtoWriter()
    .varint(1, 8) // ir_version
    .string(2, 'weight-lens')
    .bytes(7, graph.finish())
    .message(8, (o) => o.string(1, '').varint(2, opset))
    .finish();
}
