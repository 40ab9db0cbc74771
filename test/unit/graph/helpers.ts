/**
 * Test helpers for the graph executor: a tiny ONNX model builder (over the project's protobuf writer), a seeded
 * random source, onnxruntime-node as the reference (loaded lazily; absent → tests skip with a reason) and a
 * relative-error measure.
 */
import { createRequire } from 'node:module';
import { ProtoWriter } from '../../../src/core/containers/protobufWriter';

/** Attribute value in a test node: number (INT if integer unless `float`), string, number list, or float list. */
export type TestAttr = number | string | number[] | { floats: number[] } | { float: number };

export interface TestNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, TestAttr>;
}

export interface TestInitializer {
  name: string;
  shape: number[];
  values: Float32Array | number[];
  /** 'int64' for shape-like tensors. */
  type?: 'float' | 'int64';
}

export interface TestModel {
  opset: number;
  inputs: { name: string; shape: number[] }[];
  outputs: string[];
  /** Element types of outputs that are not float (a boolean or index result must be declared as such). */
  outputTypes?: Record<string, 'bool' | 'int64'>;
  nodes: TestNode[];
  initializers?: TestInitializer[];
}

/** ONNX TensorProto.DataType codes of the element types test models declare. */
const ELEM_TYPES = { float: 1, int64: 7, bool: 9 } as const;

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

function writeValueInfo(w: ProtoWriter, name: string, shape: number[] | undefined, elemType: keyof typeof ELEM_TYPES = 'float'): void {
  w.string(1, name);
  w.message(2, (type) => type.message(1, (tt) => {
    tt.varint(1, ELEM_TYPES[elemType]);
    if (shape) tt.message(2, (s) => { for (const d of shape) s.message(1, (dim) => dim.varint(1, d)); });
  }));
}

/** Encodes `model` as ONNX ModelProto bytes (IR 8). */
export function buildOnnx(model: TestModel): Uint8Array {
  const w = new ProtoWriter();
  w.varint(1, 8);
  w.string(2, 'weight-lens-test');
  w.message(7, (g) => {
    model.nodes.forEach((n, i) => g.message(1, (nw) => {
      for (const x of n.inputs) nw.string(1, x);
      for (const y of n.outputs) nw.string(2, y);
      nw.string(3, `n${i}`);
      nw.string(4, n.op);
      for (const [k, v] of Object.entries(n.attrs ?? {})) nw.message(5, (a) => { writeAttr(a, k, v); });
    }));
    g.string(2, 'test');
    for (const t of model.initializers ?? []) g.message(5, (tw) => { writeTensor(tw, t); });
    for (const x of model.inputs) g.message(11, (v) => { writeValueInfo(v, x.name, x.shape); });
    for (const y of model.outputs) g.message(12, (v) => { writeValueInfo(v, y, undefined, model.outputTypes?.[y]); });
  });
  w.message(8, (o) => o.string(1, '').varint(2, model.opset));
  return w.finish().slice();
}

/** Deterministic uniform values in [lo, hi) (mulberry32). */
export function seededRandom(seed: number, count: number, lo = -1, hi = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = lo + (hi - lo) * r;
  }
  return out;
}

/** The part of onnxruntime-node the tests use. */
export interface Ort {
  env: { logLevel?: string };
  InferenceSession: { create(model: string | Uint8Array): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => unknown;
}
interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, { data: unknown; dims: readonly number[] }>>;
  release?(): Promise<void>;
}

let cached: Ort | string | undefined;
/** onnxruntime-node, or a string saying why it cannot be loaded. */
export function loadOrt(): Ort | string {
  if (cached !== undefined) return cached;
  try {
    const ort = createRequire(__filename)('onnxruntime-node') as Ort;
    ort.env.logLevel = 'error';
    cached = ort;
  } catch (e) {
    cached = `onnxruntime-node cannot be loaded (${e instanceof Error ? e.message.split('\n')[0] ?? '' : String(e)})`;
  }
  return cached;
}

/**
 * Runs `model` (path or bytes) in onnxruntime with float32 `feeds`; returns outputs as Float32Array + dims (boolean
 * outputs as 0/1, int64 ones converted to numbers).
 */
export async function runOrt(ort: Ort, model: string | Uint8Array, feeds: Record<string, { data: Float32Array; dims: number[] }>): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
  const session = await ort.InferenceSession.create(model);
  const inputs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(feeds)) inputs[k] = new ort.Tensor('float32', v.data, v.dims);
  const out = await session.run(inputs);
  await session.release?.();
  const result: Record<string, { data: Float32Array; dims: number[] }> = {};
  for (const [k, v] of Object.entries(out)) {
    result[k] = { data: Float32Array.from(v.data as ArrayLike<number | bigint | boolean>, Number), dims: [...v.dims] };
  }
  return result;
}

/** max |a − b| / max(max |ref|, 1e-12). */
export function relativeMaxError(actual: ArrayLike<number>, ref: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] ?? NaN) - (ref[i] ?? NaN)) || (Number.isNaN(actual[i]) ? Infinity : 0));
    scale = Math.max(scale, Math.abs(ref[i] ?? 0));
  }
  return diff / Math.max(scale, 1e-12);
}
