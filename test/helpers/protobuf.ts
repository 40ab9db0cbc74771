/**
 * The one protobuf encoder of the tests, over the project's own writer (src/core/containers/protobufWriter.ts):
 * - wire fields for hand-built messages, returned as byte arrays so a test can splice them into damaged messages;
 *   `varint` and `tag` are raw, for what a writer must never produce (lying lengths, groups, any field number);
 * - ONNX messages: TensorProto, NodeProto, GraphProto and ModelProto from parts (`tensorProto` … `modelProto`,
 *   taking extra raw fields for unusual or broken encodings), and whole valid models from a description
 *   (`buildOnnx`).
 */
import { ProtoWriter } from '../../src/core/containers/protobufWriter';

// ---------------------------------------------------------------- wire fields

function written(build: (w: ProtoWriter) => unknown): number[] {
  const w = new ProtoWriter();
  build(w);
  return Array.from(w.finish());
}

/** A bare varint (negative values as 10-byte two's complement, like int64). */
export function varint(value: bigint | number): number[] {
  // The writer's varint field minus its one-byte tag (field 1, wire type 0).
  return written((w) => w.varint(1, typeof value === 'number' ? BigInt(value) : value)).slice(1);
}
/** A bare field tag: any field number and wire type, valid or not. */
export const tag = (field: number, wire: number): number[] => varint(field * 8 + wire);
/** A varint field. */
export const vfield = (field: number, value: bigint | number): number[] => written((w) => w.varint(field, value));
/** A length-delimited field holding `data`. */
export const lfield = (field: number, data: ArrayLike<number>): number[] =>
  written((w) => w.bytes(field, Uint8Array.from(data)));
/** A length-delimited field as bytes, for payloads of megabytes. */
export const lbytes = (field: number, data: Uint8Array): Uint8Array =>
  new ProtoWriter().bytes(field, data).finish().slice();
/** A UTF-8 string field. */
export const sfield = (field: number, text: string): number[] => written((w) => w.string(field, text));
/** A 32-bit float field. */
export const f32field = (field: number, value: number): number[] => written((w) => w.float(field, value));
/** A 64-bit float field (wire type 1; the writer has none, the engine never writes doubles). */
export function f64field(field: number, value: number): number[] {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, value, true);
  return [...tag(field, 1), ...b];
}
/** Concatenates byte parts (arrays or Uint8Arrays) into one message. */
export function cat(...parts: ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------- ONNX messages from parts

/** A TensorProto from parts: unpacked dims, data type number, name, optional raw_data and extra raw fields. */
export interface TensorSpec {
  name: string;
  dims: (number | bigint)[];
  type: number;
  raw?: ArrayLike<number>;
  extra?: ArrayLike<number>;
}
/** Encodes a TensorProto (dims as unpacked varints, as some writers do). */
export function tensorProto(t: TensorSpec): number[] {
  return [
    ...t.dims.flatMap((d) => vfield(1, d)),
    ...vfield(2, t.type),
    ...sfield(8, t.name),
    ...(t.raw ? lfield(9, t.raw) : []),
    ...Array.from(t.extra ?? []),
  ];
}
/** Encodes a NodeProto: outputs, optional name, op type and encoded AttributeProtos. */
export function nodeProto(op: string, outputs: string[], attrs: number[][], name = ''): number[] {
  return [
    ...outputs.flatMap((o) => sfield(2, o)),
    ...(name ? sfield(3, name) : []),
    ...sfield(4, op),
    ...attrs.flatMap((a) => lfield(5, a)),
  ];
}
/** Encodes a GraphProto: encoded nodes, name and encoded initializers. */
export function graphProto(name: string, nodes: number[][], inits: number[][]): number[] {
  return [...nodes.flatMap((n) => lfield(1, n)), ...sfield(2, name), ...inits.flatMap((i) => lfield(5, i))];
}
/** Encodes a ModelProto (IR 9, opset 21) around an encoded graph. */
export function modelProto(graph: number[]): Uint8Array {
  return Uint8Array.from([
    ...vfield(1, 9),
    ...sfield(2, 'hand'),
    ...lfield(7, graph),
    ...lfield(8, [...vfield(2, 21)]),
  ]);
}

// ---------------------------------------------------------------- whole ONNX models

/** Attribute value in a test node: number (INT if integer unless `float`), string, number list, or float list. */
export type TestAttr = number | string | number[] | { floats: number[] } | { float: number };

/** A node of a test model. */
export interface TestNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, TestAttr>;
}

/** An initializer (weight) of a test model. */
export interface TestInitializer {
  name: string;
  shape: number[];
  values: Float32Array | number[];
  /** 'int64' for shape-like tensors. */
  type?: 'float' | 'int64';
}

/** A whole test model: opset, graph inputs (with shapes), output names, nodes and initializers. */
export interface TestModel {
  opset: number;
  inputs: { name: string; shape: number[] }[];
  outputs: string[];
  /** Element types of outputs that are not float (a boolean or index result must be declared as such). */
  outputTypes?: Record<string, 'bool' | 'int64'>;
  nodes: TestNode[];
  initializers?: TestInitializer[];
}

function writeAttr(w: ProtoWriter, name: string, value: TestAttr): void {
  w.string(1, name);
  if (typeof value === 'string') w.varint(20, 3).string(4, value);
  else if (typeof value === 'number') w.varint(20, 2).varint(3, value);
  else if (Array.isArray(value)) w.varint(20, 7).packedVarints(8, value);
  else if ('floats' in value) {
    w.varint(20, 6);
    for (const f of value.floats) w.float(7, f);
  } else w.varint(20, 1).float(2, value.float);
}

function writeTensor(w: ProtoWriter, t: TestInitializer): void {
  w.packedVarints(1, t.shape);
  if (t.type === 'int64') {
    w.varint(2, 7);
    w.string(8, t.name);
    w.bytes(9, new Uint8Array(BigInt64Array.from(Array.from(t.values, (v) => BigInt(v))).buffer));
  } else {
    w.varint(2, 1);
    w.string(8, t.name);
    w.bytes(9, new Uint8Array(Float32Array.from(t.values).buffer));
  }
}

/** ONNX TensorProto.DataType codes of the element types test models declare. */
const ELEM_TYPES = { float: 1, int64: 7, bool: 9 } as const;

function writeValueInfo(
  w: ProtoWriter,
  name: string,
  shape: number[] | undefined,
  elemType: keyof typeof ELEM_TYPES = 'float',
): void {
  w.string(1, name);
  w.message(2, (type) =>
    type.message(1, (tt) => {
      tt.varint(1, ELEM_TYPES[elemType]);
      if (shape)
        tt.message(2, (s) => {
          for (const d of shape) s.message(1, (dim) => dim.varint(1, d));
        });
    }),
  );
}

/** Encodes `model` as ONNX ModelProto bytes (IR 8). */
export function buildOnnx(model: TestModel): Uint8Array {
  const w = new ProtoWriter();
  w.varint(1, 8);
  w.string(2, 'weight-lens-test');
  w.message(7, (g) => {
    model.nodes.forEach((n, i) =>
      g.message(1, (nw) => {
        for (const x of n.inputs) nw.string(1, x);
        for (const y of n.outputs) nw.string(2, y);
        nw.string(3, `n${i}`);
        nw.string(4, n.op);
        for (const [k, v] of Object.entries(n.attrs ?? {}))
          nw.message(5, (a) => {
            writeAttr(a, k, v);
          });
      }),
    );
    g.string(2, 'test');
    for (const t of model.initializers ?? [])
      g.message(5, (tw) => {
        writeTensor(tw, t);
      });
    for (const x of model.inputs)
      g.message(11, (v) => {
        writeValueInfo(v, x.name, x.shape);
      });
    for (const y of model.outputs)
      g.message(12, (v) => {
        writeValueInfo(v, y, undefined, model.outputTypes?.[y]);
      });
  });
  w.message(8, (o) => o.string(1, '').varint(2, model.opset));
  return w.finish().slice();
}
