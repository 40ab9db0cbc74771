/**
 * ONNX importer: turns a `ModelProto` into the graph IR (`ir.ts`) plus a weights map. The structure (nodes, inputs,
 * outputs, initializer names and shapes) is read here with `ProtoCursor`, which skips tensor payloads; the weight
 * values are read through the ONNX checkpoint reader (`formats/onnx.ts`), so raw data, typed fields, external data
 * and Constant nodes decode exactly as the Inspector shows them. Constant nodes become initializers.
 *
 * A model using an operator the executor does not implement is refused here, naming the operator and node.
 */
import { FileByteSource, siblingOpenerFor, type ByteSource } from '../io/byteSource';
import { CheckpointFormatError, formatBytes, throwIfAborted } from '../io/errors';
import { LIMITS } from '../io/limits';
import {
  ProtoCursor,
  ProtoReader,
  WIRE_LEN,
  countPackedVarints,
  decodePackedVarints,
  decodeUtf8,
  expectWire,
  fieldFloat,
  fieldUint,
  varintAs,
  type ProtoField,
} from '../containers/protobuf';
import { onnxFormat } from '../formats/onnx';
import type { OpenContext } from '../formats/types';
import { readTensorValues } from '../tensors/tensor';
import type { AttrTensor, AttrValue, Graph, InitializerInfo, Node, ValueInfo } from './ir';
import { SUPPORTED_OPS } from './supportedOps';
import { setOwn } from '../io/text';

/** Longest name read from the model (tensor, node, operator names are < 1 kB in real models). */
const MAX_STRING_BYTES = 1024 * 1024;
/** Largest attribute read into memory (kernel shapes, pads, small tensors); Constant values go through the reader. */
const MAX_ATTRIBUTE_BYTES = 64 * 1024 * 1024;
/** Most values of a tensor attribute decoded into memory (`ConstantOfShape.value` has one). */
const MAX_ATTRIBUTE_VALUES = 1024 * 1024;
/** Most nodes in one graph. */
const MAX_NODES = LIMITS.maxTensors;
/** Most inputs or outputs of one node (Concat of thousands of tensors is the largest real case). */
const MAX_NODE_IO = 100_000;

/** Weight Lens dtype labels of ONNX element types (the labels the ONNX checkpoint reader reports). */
const ONNX_DTYPES: ReadonlyMap<number, string> = new Map([
  [1, 'F32'],
  [2, 'U8'],
  [3, 'I8'],
  [4, 'U16'],
  [5, 'I16'],
  [6, 'I32'],
  [7, 'I64'],
  [8, 'STRING'],
  [9, 'BOOL'],
  [10, 'F16'],
  [11, 'F64'],
  [12, 'U32'],
  [13, 'U64'],
  [16, 'BF16'],
]);

function dtypeLabel(code: number): string {
  return ONNX_DTYPES.get(code) ?? `ONNX type ${code}`;
}

/** A model imported for execution: its graph and the float32 values of every initializer, by name. */
export interface OnnxModel {
  readonly graph: Graph;
  /** Initializer values (row-major, converted to float32; integer tensors such as shapes are exact below 2^24). */
  readonly weights: Map<string, Float32Array>;
}

/** Options of the importer. */
export interface OnnxImportOptions {
  /** Refuse models with operators `runGraph` does not implement (default true). */
  readonly checkSupported?: boolean;
  readonly signal?: AbortSignal;
}

async function cursorString(cur: ProtoCursor, f: ProtoField, what: string): Promise<string> {
  return decodeUtf8(await cur.payload(f, what, MAX_STRING_BYTES));
}

function readerString(r: ProtoReader, f: ProtoField, what: string): string {
  expectWire(f, WIRE_LEN, r.where);
  if (f.length > MAX_STRING_BYTES)
    throw new CheckpointFormatError(
      `${r.where}: ${what} at byte ${f.offset} is ${formatBytes(f.length)}, too long to be a name.`,
    );
  return decodeUtf8(r.payload(f));
}

/** Decodes a packed or single numeric list field into `out`. */
function pushNumbers(r: ProtoReader, f: ProtoField, kind: 'float' | 'int64', out: number[], limit: number): void {
  if (f.wireType === WIRE_LEN) {
    const bytes = r.payload(f);
    if (kind === 'float') {
      if (f.length % 4 !== 0)
        throw new CheckpointFormatError(
          `${r.where}: a packed float list at byte ${f.offset} is ${f.length} bytes, not a multiple of 4.`,
        );
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (out.length + f.length / 4 > limit)
        throw new CheckpointFormatError(`${r.where}: an attribute at byte ${f.offset} has more than ${limit} values.`);
      for (let i = 0; i < f.length; i += 4) out.push(view.getFloat32(i, true));
    } else {
      const n = countPackedVarints(bytes, r.where);
      if (out.length + n > limit)
        throw new CheckpointFormatError(`${r.where}: an attribute at byte ${f.offset} has more than ${limit} values.`);
      const tmp = new Float64Array(n);
      decodePackedVarints(bytes, 'int64', tmp, 0, r.where);
      for (const v of tmp) out.push(v);
    }
    return;
  }
  if (out.length + 1 > limit)
    throw new CheckpointFormatError(`${r.where}: an attribute at byte ${f.offset} has more than ${limit} values.`);
  out.push(kind === 'float' ? fieldFloat(f, r.where) : varintAs(f, 'int64', r.where));
}

/** Decodes a small TensorProto held in an attribute (raw_data or typed fields) to numbers. */
function decodeAttrTensor(r: ProtoReader): AttrTensor {
  const dims: number[] = [];
  let dataType = 0;
  let raw: Uint8Array | undefined;
  const typed: number[] = [];
  for (let f = r.next(); f !== undefined; f = r.next()) {
    switch (f.field) {
      case 1:
        pushNumbers(r, f, 'int64', dims, LIMITS.maxRank);
        break;
      case 2:
        dataType = fieldUint(f, 'data_type', r.where);
        break;
      case 4:
        pushNumbers(r, f, 'float', typed, MAX_ATTRIBUTE_VALUES);
        break;
      case 5:
      case 7:
        pushNumbers(r, f, 'int64', typed, MAX_ATTRIBUTE_VALUES);
        break;
      case 9:
        expectWire(f, WIRE_LEN, r.where);
        raw = r.payload(f);
        break;
      case 10: {
        if (f.wireType !== WIRE_LEN) break;
        const bytes = r.payload(f);
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        for (let i = 0; i + 8 <= bytes.length && typed.length < MAX_ATTRIBUTE_VALUES; i += 8)
          typed.push(view.getFloat64(i, true));
        break;
      }
      default:
        break;
    }
  }
  let count = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0)
      throw new CheckpointFormatError(`${r.where}: an attribute tensor has invalid dimension ${d}.`);
    count *= d;
  }
  if (count > MAX_ATTRIBUTE_VALUES)
    throw new CheckpointFormatError(
      `${r.where}: an attribute tensor has ${count} values, over the ${MAX_ATTRIBUTE_VALUES} limit.`,
    );
  const values = new Float64Array(count);
  if (raw !== undefined) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const readers: Record<number, [number, (at: number) => number]> = {
      1: [4, (at) => view.getFloat32(at, true)],
      2: [1, (at) => view.getUint8(at)],
      3: [1, (at) => view.getInt8(at)],
      6: [4, (at) => view.getInt32(at, true)],
      7: [8, (at) => Number(view.getBigInt64(at, true))],
      9: [1, (at) => view.getUint8(at)],
      11: [8, (at) => view.getFloat64(at, true)],
    };
    const decode = readers[dataType];
    if (decode === undefined)
      throw new CheckpointFormatError(
        `${r.where}: an attribute tensor has element type ${dtypeLabel(dataType)}, which the importer does not decode.`,
      );
    const [size, read] = decode;
    if (raw.length !== size * count)
      throw new CheckpointFormatError(
        `${r.where}: an attribute tensor of ${count} values has ${raw.length} bytes of data, expected ${size * count}.`,
      );
    for (let i = 0; i < count; i++) values[i] = read(i * size);
  } else {
    if (typed.length !== count)
      throw new CheckpointFormatError(`${r.where}: an attribute tensor of ${count} values stores ${typed.length}.`);
    values.set(typed);
  }
  return { dtype: dtypeLabel(dataType), shape: dims, values };
}

/** Parses one AttributeProto. Returns undefined for kinds the executor never needs (graphs, sparse tensors). */
function parseAttribute(r: ProtoReader): [string, AttrValue | undefined] {
  let name = '';
  let value: AttrValue | undefined;
  const floats: number[] = [];
  const ints: number[] = [];
  const strings: string[] = [];
  let type = 0;
  for (let f = r.next(); f !== undefined; f = r.next()) {
    switch (f.field) {
      case 1:
        name = readerString(r, f, 'attribute name');
        break;
      case 2:
        value = fieldFloat(f, r.where);
        break;
      case 3:
        value = varintAs(f, 'int64', r.where);
        break;
      case 4:
        value = readerString(r, f, 'string attribute');
        break;
      case 5:
        value = decodeAttrTensor(r.child(f));
        break;
      case 7:
        pushNumbers(r, f, 'float', floats, MAX_ATTRIBUTE_VALUES);
        break;
      case 8:
        pushNumbers(r, f, 'int64', ints, MAX_ATTRIBUTE_VALUES);
        break;
      case 9:
        if (strings.length < MAX_NODE_IO) strings.push(readerString(r, f, 'string attribute'));
        break;
      case 20:
        type = fieldUint(f, 'attribute type', r.where);
        break;
      default:
        break;
    }
  }
  // AttributeType: 6 FLOATS, 7 INTS, 8 STRINGS. Empty lists have no values, so the declared type decides.
  if (type === 6 || floats.length > 0) value = floats;
  else if (type === 7 || ints.length > 0) value = ints;
  else if (type === 8 || strings.length > 0) value = strings;
  return [name, value];
}

/** Parses a ValueInfoProto (graph input) into name, dtype and shape. */
function parseValueInfo(r: ProtoReader): ValueInfo {
  let name = '';
  let dtype = 'unknown';
  const shape: (number | null)[] = [];
  for (let f = r.next(); f !== undefined; f = r.next()) {
    if (f.field === 1) name = readerString(r, f, 'value name');
    else if (f.field === 2 && f.wireType === WIRE_LEN) {
      const typeProto = r.child(f);
      for (let t = typeProto.next(); t !== undefined; t = typeProto.next()) {
        if (t.field !== 1 || t.wireType !== WIRE_LEN) continue;
        const tensorType = typeProto.child(t);
        for (let e = tensorType.next(); e !== undefined; e = tensorType.next()) {
          if (e.field === 1) dtype = dtypeLabel(fieldUint(e, 'elem_type', r.where));
          else if (e.field === 2 && e.wireType === WIRE_LEN) {
            const shapeProto = tensorType.child(e);
            for (let d = shapeProto.next(); d !== undefined; d = shapeProto.next()) {
              if (d.field !== 1 || d.wireType !== WIRE_LEN) continue;
              if (shape.length >= LIMITS.maxRank)
                throw new CheckpointFormatError(
                  `${r.where}: input ${JSON.stringify(name)} has more than ${LIMITS.maxRank} dimensions.`,
                );
              const dim = shapeProto.child(d);
              let size: number | null = null;
              for (let v = dim.next(); v !== undefined; v = dim.next()) {
                if (v.field === 1) {
                  const n = varintAs(v, 'int64', r.where);
                  size = n > 0 ? n : null;
                }
              }
              shape.push(size);
            }
          }
        }
      }
    }
  }
  return { name, dtype, shape };
}

interface RawGraph {
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: string[];
  initializers: Map<string, InitializerInfo>;
  /** Output name of each Constant node, and the node's name, for weights read through the checkpoint reader. */
  constants: Map<string, string>;
}

async function parseNode(cur: ProtoCursor, index: number): Promise<Node> {
  const inputs: string[] = [];
  const outputs: string[] = [];
  let name = '';
  let op = '';
  let domain = '';
  const attrFields: ProtoField[] = [];
  for (let f = await cur.next(); f !== undefined; f = await cur.next()) {
    switch (f.field) {
      case 1:
        inputs.push(await cursorString(cur, f, 'node input'));
        break;
      case 2:
        outputs.push(await cursorString(cur, f, 'node output'));
        break;
      case 3:
        name = await cursorString(cur, f, 'node name');
        break;
      case 4:
        op = await cursorString(cur, f, 'op_type');
        break;
      case 5:
        expectWire(f, WIRE_LEN, cur.where);
        attrFields.push(f);
        break;
      case 7:
        domain = await cursorString(cur, f, 'node domain');
        break;
      default:
        break;
    }
    if (inputs.length + outputs.length + attrFields.length > MAX_NODE_IO) {
      throw new CheckpointFormatError(
        `${cur.where}: the node at byte ${cur.start} has more than ${MAX_NODE_IO} inputs, outputs or attributes.`,
      );
    }
  }
  const fullOp = domain === '' || domain === 'ai.onnx' ? op : `${domain}.${op}`;
  const attrs: Record<string, AttrValue> = {};
  // Constant values are read by the checkpoint reader (they may be large); other attributes are small.
  if (fullOp !== 'Constant') {
    for (const f of attrFields) {
      const [key, value] = parseAttribute(await cur.reader(f, 'node attribute', MAX_ATTRIBUTE_BYTES));
      if (value !== undefined && key !== '') setOwn(attrs, key, value);
    }
  }
  return { op: fullOp, name: name !== '' ? name : `${op !== '' ? op : 'node'}_${index}`, inputs, outputs, attrs };
}

async function parseInitializerInfo(cur: ProtoCursor): Promise<[string, InitializerInfo]> {
  let name = '';
  let dataType = 0;
  const shape: number[] = [];
  for (let f = await cur.next(); f !== undefined; f = await cur.next()) {
    if (f.field === 8) name = await cursorString(cur, f, 'tensor name');
    else if (f.field === 2) dataType = fieldUint(f, 'data_type', cur.where);
    else if (f.field === 1) {
      if (f.wireType === WIRE_LEN) {
        const bytes = await cur.payload(f, 'tensor dims', 10 * (LIMITS.maxRank + 1));
        const dims = new Float64Array(Math.min(countPackedVarints(bytes, cur.where), LIMITS.maxRank + 1));
        decodePackedVarints(bytes, 'int64', dims, 0, cur.where);
        shape.push(...dims);
      } else shape.push(varintAs(f, 'int64', cur.where));
      if (shape.length > LIMITS.maxRank)
        throw new CheckpointFormatError(`${cur.where}: an initializer has more than ${LIMITS.maxRank} dimensions.`);
    }
  }
  return [name, { dtype: dtypeLabel(dataType), shape }];
}

async function parseGraph(cur: ProtoCursor, signal: AbortSignal | undefined): Promise<RawGraph> {
  const nodes: Node[] = [];
  const declaredInputs: ValueInfo[] = [];
  const outputs: string[] = [];
  const initializers = new Map<string, InitializerInfo>();
  const constants = new Map<string, string>();
  for (let f = await cur.next(); f !== undefined; f = await cur.next()) {
    throwIfAborted(signal);
    switch (f.field) {
      case 1: {
        expectWire(f, WIRE_LEN, cur.where);
        if (nodes.length >= MAX_NODES)
          throw new CheckpointFormatError(`${cur.where} has more than ${MAX_NODES} nodes.`);
        const node = await parseNode(cur.child(f), nodes.length);
        if (node.op === 'Constant') {
          const out = node.outputs[0];
          if (out === undefined || out === '')
            throw new CheckpointFormatError(`${cur.where}: Constant node ${JSON.stringify(node.name)} has no output.`);
          constants.set(out, node.name);
        } else nodes.push(node);
        break;
      }
      case 5: {
        expectWire(f, WIRE_LEN, cur.where);
        const [name, info] = await parseInitializerInfo(cur.child(f));
        initializers.set(name, info);
        break;
      }
      case 11:
        declaredInputs.push(parseValueInfo(await cur.reader(f, 'graph input', MAX_ATTRIBUTE_BYTES)));
        break;
      case 12:
        outputs.push(parseValueInfo(await cur.reader(f, 'graph output', MAX_ATTRIBUTE_BYTES)).name);
        break;
      case 15:
        throw new CheckpointFormatError(
          `${cur.where} has sparse initializers, which the graph executor does not support.`,
        );
      default:
        break;
    }
  }
  // IR < 4 lists initializers among the inputs; the caller feeds only the others.
  const inputs = declaredInputs.filter((v) => !initializers.has(v.name) && !constants.has(v.name));
  return { nodes, inputs, outputs, initializers, constants };
}

/** Orders nodes so every node comes after the producers of its inputs; throws naming a value nobody produces. */
function topologicalOrder(nodes: readonly Node[], available: Set<string>, where: string): Node[] {
  const ordered: Node[] = [];
  let pending = nodes.slice();
  while (pending.length > 0) {
    const next: Node[] = [];
    for (const node of pending) {
      if (node.inputs.every((i) => i === '' || available.has(i))) {
        ordered.push(node);
        for (const o of node.outputs) if (o !== '') available.add(o);
      } else next.push(node);
    }
    if (next.length === pending.length) {
      const stuck = next[0];
      const missing = stuck?.inputs.find((i) => i !== '' && !available.has(i)) ?? '?';
      throw new CheckpointFormatError(
        `${where}: node ${JSON.stringify(stuck?.name ?? '?')} (${stuck?.op ?? '?'}) reads ${JSON.stringify(missing)}, which no input, initializer or earlier node provides (or the graph has a cycle).`,
      );
    }
    pending = next;
  }
  return ordered;
}

/** Throws naming every operator (with its first node) that `runGraph` does not implement. */
export function checkSupported(graph: Graph, where: string): void {
  const unsupported = new Map<string, string>();
  for (const node of graph.nodes) {
    if (!SUPPORTED_OPS.has(node.op) && !unsupported.has(node.op)) unsupported.set(node.op, node.name);
  }
  if (unsupported.size === 0) return;
  const list = [...unsupported].map(([op, node]) => `${op} (node ${node})`);
  const [first, ...rest] = list;
  throw new CheckpointFormatError(
    `${where}: ONNX operator ${first ?? ''} is not supported by the graph executor${rest.length > 0 ? `; nor are ${rest.join(', ')}` : ''}.`,
  );
}

/**
 * Imports the ONNX model in `source`: its graph and the float32 values of its initializers and Constant nodes.
 * Takes ownership of `source` and closes it. Throws `CheckpointFormatError` for a malformed model or (unless
 * `checkSupported: false`) an operator the executor does not implement.
 */
export async function importOnnx(
  source: ByteSource,
  context: OpenContext,
  options?: OnnxImportOptions,
): Promise<OnnxModel> {
  const where = source.name;
  let closed = false;
  try {
    const cur = ProtoCursor.over(source);
    let raw: RawGraph | undefined;
    let opset = 0;
    for (let f = await cur.next(); f !== undefined; f = await cur.next()) {
      if (f.field === 7 && raw === undefined) {
        expectWire(f, WIRE_LEN, where);
        raw = await parseGraph(cur.child(f), options?.signal);
      } else if (f.field === 8) {
        const r = await cur.reader(f, 'opset_import', MAX_STRING_BYTES + 32);
        let domain = '';
        let version = 0;
        for (let e = r.next(); e !== undefined; e = r.next()) {
          if (e.field === 1) domain = readerString(r, e, 'opset domain');
          else if (e.field === 2) version = varintAs(e, 'int64', where);
        }
        if (domain === '' || domain === 'ai.onnx') opset = version;
      }
    }
    if (raw === undefined) throw new CheckpointFormatError(`${where} is not an ONNX model: it has no graph.`);

    const checkpoint = await onnxFormat.open(source, context);
    closed = true; // the checkpoint owns the source now
    const weights = new Map<string, Float32Array>();
    const initializers = new Map(raw.initializers);
    try {
      const wanted = new Set([...raw.initializers.keys(), ...raw.constants.keys()]);
      for (const entry of checkpoint.tensors) {
        if (!wanted.has(entry.name) || weights.has(entry.name)) continue;
        throwIfAborted(options?.signal);
        weights.set(entry.name, await readTensorValues(entry, options?.signal ? { signal: options.signal } : {}));
        if (!initializers.has(entry.name))
          initializers.set(entry.name, { dtype: entry.dtype, shape: entry.shape.slice(), constant: true });
      }
      for (const name of wanted) {
        if (!weights.has(name))
          throw new CheckpointFormatError(`${where}: the values of ${JSON.stringify(name)} could not be found.`);
      }
    } finally {
      await checkpoint.close();
    }
    const available = new Set<string>([...raw.inputs.map((i) => i.name), ...initializers.keys()]);
    const nodes = topologicalOrder(raw.nodes, available, where);
    for (const out of raw.outputs) {
      if (!available.has(out))
        throw new CheckpointFormatError(`${where}: graph output ${JSON.stringify(out)} is produced by no node.`);
    }
    const graph: Graph = { inputs: raw.inputs, outputs: raw.outputs, nodes, initializers, opset };
    if (options?.checkSupported !== false) checkSupported(graph, where);
    return { graph, weights };
  } finally {
    if (!closed) await source.close();
  }
}

/** Imports the ONNX model at `path` (see `importOnnx`); external data files are read from its folder. */
export async function loadOnnxModel(path: string, options?: OnnxImportOptions): Promise<OnnxModel> {
  const source = await FileByteSource.open(path);
  return importOnnx(
    source,
    { path, siblings: siblingOpenerFor(path), ...(options?.signal ? { signal: options.signal } : {}) },
    options,
  );
}
