/**
 * Writers of small ONNX models built in memory (opset 17, IR 8) for onnxruntime: node, value-info, scalar and model
 * protos on the project's protobuf writer. The native training step (nern/ortStep.ts) and the native linear algebra
 * of the spectra (analysis/nativeLinalg.ts) build their graphs with these.
 */
import { ProtoWriter } from '../containers/protobufWriter';

/** ONNX TensorProto.DataType codes (onnx.proto3) of the element types the graphs use. */
export const ONNX_FLOAT = 1;
/** int64. */
export const ONNX_INT64 = 7;
/** float64. */
export const ONNX_DOUBLE = 11;

const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

/** One ONNX node attribute: a float (`f`), an int (`i`) or a list of ints (`ints`). */
export interface NodeAttr {
  name: string;
  i?: number;
  f?: number;
  ints?: number[];
}

/** Emits a NodeProto of operator `op` (default domain) into the emitter's list, with a unique name. */
export type NodeEmitter = (op: string, ins: string[], outs: string[], attrs?: NodeAttr[]) => void;

/** A `NodeEmitter` appending the encoded NodeProtos to `nodes`, named n0, n1, … in order. */
export function nodeEmitter(nodes: Uint8Array[]): NodeEmitter {
  let counter = 0;
  return (op, ins, outs, attrs = []) => {
    const w = new ProtoWriter();
    for (const i of ins) w.string(1, i);
    for (const o of outs) w.string(2, o);
    w.string(3, `n${counter++}`);
    w.string(4, op);
    for (const a of attrs) {
      w.message(5, (aw) => {
        aw.string(1, a.name);
        if (a.f !== undefined) aw.float(2, a.f).varint(20, ATTR_FLOAT);
        else if (a.ints !== undefined) aw.packedVarints(8, a.ints).varint(20, ATTR_INTS);
        else aw.varint(3, a.i ?? 0).varint(20, ATTR_INT);
      });
    }
    nodes.push(w.finish());
  };
}

/** A rank-0 float32 initializer `name` = `value` (rounded to float32). */
export function scalarInitializer(name: string, value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setFloat32(0, value, true);
  return new ProtoWriter().varint(2, ONNX_FLOAT).string(8, name).bytes(9, bytes).finish();
}

/**
 * A ValueInfoProto of a tensor `name` with element type `elemType` (default float32) and `dims`: numbers are fixed
 * sizes, strings named symbolic dimensions.
 */
export function valueInfoProto(name: string, dims: (number | string)[], elemType: number = ONNX_FLOAT): Uint8Array {
  return new ProtoWriter()
    .string(1, name)
    .message(2, (tw) =>
      tw.message(1, (tt) =>
        tt.varint(1, elemType).message(2, (sw) => {
          for (const d of dims) sw.message(1, (dw) => (typeof d === 'number' ? dw.varint(1, d) : dw.string(2, d)));
        }),
      ),
    )
    .finish();
}

/** A ModelProto (IR 8, default-domain opset 17) of one graph `name` from encoded nodes, initializers and I/O infos. */
export function modelProto(
  name: string,
  nodes: Uint8Array[],
  inits: Uint8Array[],
  inputs: Uint8Array[],
  outputs: Uint8Array[],
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
    .message(8, (o) => o.string(1, '').varint(2, 17))
    .finish();
}
