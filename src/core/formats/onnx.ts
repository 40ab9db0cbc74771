/**
 * ONNX reader. An `.onnx` file is one protobuf `ModelProto`; its weights are the `TensorProto`s in the graph's
 * `initializer` list, the `value` attributes of `Constant` nodes, the same inside subgraphs (attributes of type
 * GRAPH/GRAPHS such as `If.then_branch` or `Loop.body`), and `sparse_initializer`s.
 *
 * The model is walked with `ProtoCursor`, which reads field headers only: `raw_data` payloads are located by offset
 * and length and never read at open time, so a 2 GB model opens with bounded memory and each tensor streams its
 * bytes from the file on demand (`rawTensor`). Packed `float_data`/`double_data` are read in place the same way;
 * varint-encoded typed fields (`int32_data`, `int64_data`, `uint64_data`) are decoded into memory when opened,
 * within a size limit. Tensors with `data_location = EXTERNAL` are read from the file their `external_data` names,
 * opened through `OpenContext.siblings` and so confined to the model's folder.
 *
 * Tensors are listed per graph: initializers, then sparse initializers, then what the nodes hold (Constant values,
 * then the contents of subgraphs), depth first. A subgraph tensor whose name collides with another is prefixed by
 * its node path (`If_0/then_branch/w`).
 */
import { closeOnce, type ByteSource } from '../io/byteSource';
import { CheckpointFormatError, formatBytes, throwIfAborted } from '../io/errors';
import { LIMITS } from '../io/limits';
import {
  ProtoCursor,
  ProtoReader,
  WIRE_LEN,
  WIRE_VARINT,
  countPackedVarints,
  decodePackedInt64s,
  decodePackedVarints,
  decodeUtf8,
  expectWire,
  fieldDouble,
  fieldFloat,
  fieldInt64Big,
  fieldUint,
  varintAs,
  type ProtoField,
  type VarintKind,
} from '../containers/protobuf';
import { decodeValues, f16BitsToNumber, bf16BitsToNumber, type DType, type ValueChunk } from '../tensors/dtype';
import {
  DEFAULT_CHUNK_ELEMENTS,
  checkShape,
  memoryTensor,
  rawTensor,
  readTensorValues,
  undecodedTensor,
  uniqueNamer,
  type TensorEntry,
  type ValueStreamOptions,
  type WeightedChunk,
} from '../tensors/tensor';
import type { Checkpoint, FormatReader, MetadataValue, OpenContext } from './types';

/** Longest name/identifier string read from the model: real names are < 1 kB; this bounds a lying length. */
const MAX_STRING_BYTES = 1024 * 1024;
/** Largest doc string read for metadata (longer ones are summarised by size). */
const MAX_DOC_BYTES = 64 * 1024;
/** Metadata strings longer than this many characters are elided. */
const MAX_METADATA_STRING = 1024;
/** Largest varint-encoded typed payload decoded into memory per tensor: exporters use raw_data for big tensors. */
const MAX_TYPED_BYTES = 64 * 1024 * 1024;
/** Most values of one tensor decoded into memory from typed fields (16 Mi values = 128 MB as float64). */
const MAX_TYPED_VALUES = 16 * 1024 * 1024;
/** Most attributes one node may have: real operators have < 50. */
const MAX_ATTRIBUTES = 100_000;
/** Most `external_data` key/value entries of one tensor: the spec defines 4 keys. */
const MAX_EXTERNAL_ENTRIES = 1000;
/** Most stored values of a sparse tensor that are densified (16 Mi). */
const MAX_SPARSE_VALUES = 16 * 1024 * 1024;
/** Most values held in memory across the whole model from typed fields and attributes (64 Mi = 512 MB as float64). */
const MAX_MODEL_TYPED_VALUES = 64 * 1024 * 1024;
/** Graph inputs/outputs described in metadata; the rest are counted. */
const MAX_DESCRIBED_IO = 32;

/** How an ONNX element type is stored and decoded. */
interface OnnxType {
  /** ONNX's name for the type (`FLOAT`, `INT64`, `FLOAT8E4M3FNUZ`…). */
  readonly onnxName: string;
  /** Bits per element in raw_data. */
  readonly bits: number;
  /** The decodable dtype, when Weight Lens has one. */
  readonly dtype?: DType;
  /** For types without a `DType`: decoded value of each stored code (256 entries for 8-bit types, 2^bits otherwise). */
  readonly table?: Float32Array;
  /** TensorProto field number of the typed (non-raw) values, and how its values are interpreted. */
  readonly typedField: number;
  readonly typedKind: 'float' | 'double' | VarintKind | 'string';
}

function buildTable(count: number, value: (code: number) => number): Float32Array {
  const t = new Float32Array(count);
  for (let i = 0; i < count; i++) t[i] = value(i);
  return t;
}
const sign8 = (b: number): number => (b & 0x80 ? -1 : 1);
/** E4M3FNUZ: exponent bias 8, no infinities, 0x80 is the only NaN (no negative zero). */
const E4M3FNUZ = buildTable(256, (b) => {
  if (b === 0x80) return NaN;
  const e = (b >> 3) & 0xf;
  const m = b & 7;
  return sign8(b) * (e === 0 ? (m / 8) * 2 ** -7 : (1 + m / 8) * 2 ** (e - 8));
});
/** E5M2FNUZ: exponent bias 16, no infinities, 0x80 is the only NaN. */
const E5M2FNUZ = buildTable(256, (b) => {
  if (b === 0x80) return NaN;
  const e = (b >> 2) & 0x1f;
  const m = b & 3;
  return sign8(b) * (e === 0 ? (m / 4) * 2 ** -15 : (1 + m / 4) * 2 ** (e - 16));
});
/** E8M0 (MX scales): 2^(code − 127); 0xFF is NaN. */
const E8M0 = buildTable(256, (b) => (b === 0xff ? NaN : 2 ** (b - 127)));
const UINT4 = buildTable(16, (c) => c);
const INT4 = buildTable(16, (c) => (c < 8 ? c : c - 16));
/** FLOAT4E2M1: 1 sign, 2 exponent (bias 1), 1 mantissa bit; no NaN or infinity. */
const FLOAT4 = buildTable(16, (c) => {
  const e = (c >> 1) & 3;
  const m = c & 1;
  return (c & 8 ? -1 : 1) * (e === 0 ? m * 0.5 : (1 + m / 2) * 2 ** (e - 1));
});
const UINT2 = buildTable(4, (c) => c);
const INT2 = buildTable(4, (c) => (c < 2 ? c : c - 4));

/** TensorProto field numbers. */
const T_DIMS = 1,
  T_DATA_TYPE = 2,
  T_SEGMENT = 3,
  T_FLOAT = 4,
  T_INT32 = 5,
  T_STRING = 6,
  T_INT64 = 7,
  T_NAME = 8;
const T_RAW = 9,
  T_DOUBLE = 10,
  T_UINT64 = 11,
  T_EXTERNAL = 13,
  T_LOCATION = 14;

/** ONNX `TensorProto.DataType` values. */
const ONNX_TYPES: ReadonlyMap<number, OnnxType> = new Map<number, OnnxType>([
  [1, { onnxName: 'FLOAT', bits: 32, dtype: 'F32', typedField: T_FLOAT, typedKind: 'float' }],
  [2, { onnxName: 'UINT8', bits: 8, dtype: 'U8', typedField: T_INT32, typedKind: 'int32' }],
  [3, { onnxName: 'INT8', bits: 8, dtype: 'I8', typedField: T_INT32, typedKind: 'int32' }],
  [4, { onnxName: 'UINT16', bits: 16, dtype: 'U16', typedField: T_INT32, typedKind: 'int32' }],
  [5, { onnxName: 'INT16', bits: 16, dtype: 'I16', typedField: T_INT32, typedKind: 'int32' }],
  [6, { onnxName: 'INT32', bits: 32, dtype: 'I32', typedField: T_INT32, typedKind: 'int32' }],
  [7, { onnxName: 'INT64', bits: 64, dtype: 'I64', typedField: T_INT64, typedKind: 'int64' }],
  [8, { onnxName: 'STRING', bits: 0, typedField: T_STRING, typedKind: 'string' }],
  [9, { onnxName: 'BOOL', bits: 8, dtype: 'BOOL', typedField: T_INT32, typedKind: 'int32' }],
  [10, { onnxName: 'FLOAT16', bits: 16, dtype: 'F16', typedField: T_INT32, typedKind: 'int32' }],
  [11, { onnxName: 'DOUBLE', bits: 64, dtype: 'F64', typedField: T_DOUBLE, typedKind: 'double' }],
  [12, { onnxName: 'UINT32', bits: 32, dtype: 'U32', typedField: T_UINT64, typedKind: 'uint64' }],
  [13, { onnxName: 'UINT64', bits: 64, dtype: 'U64', typedField: T_UINT64, typedKind: 'uint64' }],
  [14, { onnxName: 'COMPLEX64', bits: 64, typedField: T_FLOAT, typedKind: 'float' }],
  [15, { onnxName: 'COMPLEX128', bits: 128, typedField: T_DOUBLE, typedKind: 'double' }],
  [16, { onnxName: 'BFLOAT16', bits: 16, dtype: 'BF16', typedField: T_INT32, typedKind: 'int32' }],
  [17, { onnxName: 'FLOAT8E4M3FN', bits: 8, dtype: 'F8_E4M3', typedField: T_INT32, typedKind: 'int32' }],
  [18, { onnxName: 'FLOAT8E4M3FNUZ', bits: 8, table: E4M3FNUZ, typedField: T_INT32, typedKind: 'int32' }],
  [19, { onnxName: 'FLOAT8E5M2', bits: 8, dtype: 'F8_E5M2', typedField: T_INT32, typedKind: 'int32' }],
  [20, { onnxName: 'FLOAT8E5M2FNUZ', bits: 8, table: E5M2FNUZ, typedField: T_INT32, typedKind: 'int32' }],
  [21, { onnxName: 'UINT4', bits: 4, table: UINT4, typedField: T_INT32, typedKind: 'int32' }],
  [22, { onnxName: 'INT4', bits: 4, table: INT4, typedField: T_INT32, typedKind: 'int32' }],
  [23, { onnxName: 'FLOAT4E2M1', bits: 4, table: FLOAT4, typedField: T_INT32, typedKind: 'int32' }],
  [24, { onnxName: 'FLOAT8E8M0', bits: 8, table: E8M0, typedField: T_INT32, typedKind: 'int32' }],
  [25, { onnxName: 'UINT2', bits: 2, table: UINT2, typedField: T_INT32, typedKind: 'int32' }],
  [26, { onnxName: 'INT2', bits: 2, table: INT2, typedField: T_INT32, typedKind: 'int32' }],
]);

const TYPED_FIELD_NAMES: Readonly<Record<number, string>> = {
  [T_FLOAT]: 'float_data',
  [T_INT32]: 'int32_data',
  [T_STRING]: 'string_data',
  [T_INT64]: 'int64_data',
  [T_DOUBLE]: 'double_data',
  [T_UINT64]: 'uint64_data',
};

/** A run of typed values: a packed payload in the source, or values decoded from unpacked fields. */
type TypedPart = { readonly offset: number; readonly length: number } | { readonly values: number[] };

/** A `TensorProto` as scanned: payload positions, not payloads. */
interface TensorInfo {
  name: string;
  dims: bigint[];
  dataType: number;
  /** Absolute position of raw_data in the model file. */
  raw?: { offset: number; length: number };
  /** Typed value fields present, by field number. */
  typed: Map<number, TypedPart[]>;
  /** Wire bytes of typed values (and string_data). */
  typedBytes: number;
  /** Unpacked typed values collected so far (bounded by MAX_TYPED_VALUES). */
  singles: number;
  stringCount: number;
  location: number;
  external: Map<string, string>;
  segmented: boolean;
  /** Offset of the TensorProto in the file, for messages. */
  at: number;
}

/** A tensor found while scanning, built once every name is known (so duplicates can be renamed first). */
interface Pending {
  /** Name as the graph spells it. */
  readonly name: string;
  /** Node path of the enclosing subgraph (`If_0/then_branch/`), or '' in the main graph. */
  readonly path: string;
  /** Where it came from, for the tensor's note. */
  readonly origin: string;
  build(finalName: string, note: string | undefined): Promise<TensorEntry>;
}

/** Values decoded into memory so far (typed fields, attribute lists), against MAX_MODEL_TYPED_VALUES. */
interface TypedBudget {
  values: number;
}

function spend(budget: TypedBudget, count: number, where: string): void {
  budget.values += count;
  if (budget.values > MAX_MODEL_TYPED_VALUES) {
    throw new CheckpointFormatError(
      `${where} stores more than ${MAX_MODEL_TYPED_VALUES} values outside raw_data (in typed fields or attributes), over the in-memory limit.`,
    );
  }
}

/** Everything the scan accumulates besides tensors. */
interface ScanState {
  readonly source: ByteSource;
  readonly where: string;
  readonly context: OpenContext;
  readonly ops: Map<string, number>;
  nodes: number;
  subgraphs: number;
  constants: number;
  tensors: number;
  /** External data files opened so far, by location. */
  readonly externals: Map<string, ByteSource>;
  readonly budget: TypedBudget;
}

function elide(value: string): string {
  return value.length > MAX_METADATA_STRING
    ? `${value.slice(0, MAX_METADATA_STRING)}… (${value.length} characters)`
    : value;
}

function countTensor(state: ScanState): void {
  state.tensors++;
  if (state.tensors > LIMITS.maxTensors)
    throw new CheckpointFormatError(`${state.where} holds more than ${LIMITS.maxTensors} tensors, over the limit.`);
}

async function readString(cur: ProtoCursor, f: ProtoField, what: string): Promise<string> {
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

/** Records a typed-value field of a TensorProto (packed payload or one unpacked value). */
function addTypedField(
  info: TensorInfo,
  f: ProtoField,
  kind: 'float' | 'double' | VarintKind,
  where: string,
  budget: TypedBudget,
): void {
  let parts = info.typed.get(f.field);
  if (parts === undefined) {
    parts = [];
    info.typed.set(f.field, parts);
  }
  if (f.wireType === WIRE_LEN) {
    parts.push({ offset: f.offset, length: f.length });
    info.typedBytes += f.length;
    return;
  }
  let value: number;
  if (kind === 'float') value = fieldFloat(f, where);
  else if (kind === 'double') value = fieldDouble(f, where);
  else value = varintAs(f, kind, where);
  info.typedBytes += f.length;
  info.singles++;
  spend(budget, 1, where);
  if (info.singles > MAX_TYPED_VALUES) {
    throw new CheckpointFormatError(
      `${where}: the tensor at byte ${info.at} has more than ${MAX_TYPED_VALUES} unpacked ${TYPED_FIELD_NAMES[f.field] ?? 'typed'} values, over the limit.`,
    );
  }
  const last = parts[parts.length - 1];
  if (last !== undefined && 'values' in last) last.values.push(value);
  else parts.push({ values: [value] });
}

/** Scans a TensorProto's fields, recording where its data lies without reading it. */
async function scanTensor(cur: ProtoCursor, where: string, budget: TypedBudget): Promise<TensorInfo> {
  const info: TensorInfo = {
    name: '',
    dims: [],
    dataType: 0,
    typed: new Map(),
    typedBytes: 0,
    singles: 0,
    stringCount: 0,
    location: 0,
    external: new Map(),
    segmented: false,
    at: cur.start,
  };
  let externalEntries = 0;
  for (let f = await cur.next(); f !== undefined; f = await cur.next()) {
    switch (f.field) {
      case T_DIMS:
        if (f.wireType === WIRE_LEN) {
          const bytes = await cur.payload(f, 'tensor dims', 10 * (LIMITS.maxRank + 1));
          info.dims.push(...decodePackedInt64s(bytes, LIMITS.maxRank + 1, 'tensor dims', where));
        } else {
          info.dims.push(fieldInt64Big(f, where));
        }
        if (info.dims.length > LIMITS.maxRank) {
          throw new CheckpointFormatError(
            `${where}: the tensor at byte ${info.at} has more than ${LIMITS.maxRank} dimensions, over the limit.`,
          );
        }
        break;
      case T_DATA_TYPE: {
        const v = fieldUint(f, 'data_type', where);
        info.dataType = v > 0xffff ? -1 : v;
        break;
      }
      case T_SEGMENT:
        info.segmented = true;
        break;
      case T_FLOAT:
        addTypedField(info, f, 'float', where, budget);
        break;
      case T_DOUBLE:
        addTypedField(info, f, 'double', where, budget);
        break;
      case T_INT32:
        addTypedField(info, f, 'int32', where, budget);
        break;
      case T_INT64:
        addTypedField(info, f, 'int64', where, budget);
        break;
      case T_UINT64:
        addTypedField(info, f, 'uint64', where, budget);
        break;
      case T_STRING:
        expectWire(f, WIRE_LEN, where);
        info.stringCount++;
        info.typedBytes += f.length;
        break;
      case T_NAME:
        info.name = await readString(cur, f, 'tensor name');
        break;
      case T_RAW:
        expectWire(f, WIRE_LEN, where);
        info.raw = { offset: f.offset, length: f.length };
        break;
      case T_EXTERNAL: {
        if (++externalEntries > MAX_EXTERNAL_ENTRIES)
          throw new CheckpointFormatError(
            `${where}: the tensor at byte ${info.at} has more than ${MAX_EXTERNAL_ENTRIES} external_data entries.`,
          );
        const r = await cur.reader(f, 'external_data entry', 2 * MAX_STRING_BYTES + 32);
        let key = '';
        let value = '';
        for (let e = r.next(); e !== undefined; e = r.next()) {
          if (e.field === 1) key = readerString(r, e, 'external_data key');
          else if (e.field === 2) value = readerString(r, e, 'external_data value');
        }
        info.external.set(key, value);
        break;
      }
      case T_LOCATION:
        info.location = fieldUint(f, 'data_location', where);
        break;
      default:
        break;
    }
  }
  return info;
}

/** Validates scanned dims and returns them as numbers. */
function tensorShape(info: TensorInfo, name: string, where: string): number[] {
  const shape: number[] = [];
  for (const d of info.dims) {
    if (d < 0n || d > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new CheckpointFormatError(
        `${where}: tensor ${JSON.stringify(name)} declares dimension ${d} (shape [${info.dims.join(', ')}]), which is not a valid size: the file is corrupt or hostile.`,
      );
    }
    shape.push(Number(d));
  }
  checkShape(`${where}: tensor ${JSON.stringify(name)}`, shape);
  return shape;
}

function typeLabel(t: OnnxType | undefined, dataType: number): string {
  if (t === undefined) return dataType === 0 ? 'UNDEFINED' : `data_type ${dataType}`;
  return t.dtype ?? t.onnxName;
}

/**
 * A tensor of sub-byte or 8-bit codes decoded through a lookup table (FNUZ float8, E8M0, 4-bit and 2-bit types).
 * Codes are packed little-end first: element 0 is in the lowest bits of byte 0.
 */
function lookupTensor(
  name: string,
  label: string,
  shape: readonly number[],
  source: ByteSource,
  offset: number,
  bits: number,
  table: Float32Array,
  note: string | undefined,
): TensorEntry {
  const params = checkShape(`tensor ${JSON.stringify(name)}`, shape);
  const perByte = 8 / bits;
  const mask = (1 << bits) - 1;
  const byteLength = Math.ceil(params / perByte);
  if (offset + byteLength > source.size) {
    throw new CheckpointFormatError(
      `tensor ${JSON.stringify(name)} needs bytes ${offset}–${offset + byteLength} but ${source.name} has only ${formatBytes(source.size)}: the file is truncated.`,
    );
  }
  return {
    name,
    dtype: label,
    shape: [...shape],
    params,
    bytes: byteLength,
    ...(note !== undefined ? { note } : {}),
    async *values(options?: ValueStreamOptions): AsyncIterable<ValueChunk> {
      const limit = Math.min(options?.maxElements ?? DEFAULT_CHUNK_ELEMENTS, LIMITS.maxChunkBytes);
      const chunk = Math.max(perByte, limit - (limit % perByte));
      for (let start = 0; start < params; start += chunk) {
        throwIfAborted(options?.signal);
        const count = Math.min(chunk, params - start);
        const bytes = await source.read(offset + start / perByte, Math.ceil(count / perByte));
        const out = new Float32Array(count);
        if (perByte === 1) {
          for (let i = 0; i < count; i++) out[i] = table[bytes[i] ?? 0] ?? NaN;
        } else {
          for (let i = 0; i < count; i++) {
            const b = bytes[Math.floor(i / perByte)] ?? 0;
            out[i] = table[(b >> ((i % perByte) * bits)) & mask] ?? NaN;
          }
        }
        yield out;
      }
    },
  };
}

/** A tensor whose raw little-endian bytes lie at `offset` in `source`. */
function rawEntry(
  name: string,
  t: OnnxType | undefined,
  dataType: number,
  shape: readonly number[],
  source: ByteSource,
  offset: number,
  byteLength: number,
  note: string | undefined,
): TensorEntry {
  const label = typeLabel(t, dataType);
  if (t?.dtype !== undefined)
    return rawTensor({ name, dtype: t.dtype, shape, source, offset, ...(note !== undefined ? { note } : {}) });
  if (t?.table !== undefined) return lookupTensor(name, label, shape, source, offset, t.bits, t.table, note);
  const reason =
    t === undefined
      ? `ONNX data type ${dataType} is unknown.`
      : `ONNX ${t.onnxName} values are not numeric weights Weight Lens decodes.`;
  return undecodedWithNote(name, label, shape, byteLength, reason, note);
}

/** Bytes `params` elements of `t` occupy as raw data. */
function rawBytesNeeded(t: OnnxType, params: number): number {
  return Math.ceil((params * t.bits) / 8);
}

function parseDecimal(text: string, what: string, where: string, name: string): number {
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new CheckpointFormatError(
      `${where}: tensor ${JSON.stringify(name)} has an invalid external data ${what} ${JSON.stringify(text.slice(0, 40))}.`,
    );
  }
  return Number(text);
}

async function openExternal(state: ScanState, location: string): Promise<ByteSource> {
  const cached = state.externals.get(location);
  if (cached) return cached;
  let source: ByteSource;
  try {
    source = await state.context.siblings.open(location);
  } catch (error) {
    if (error instanceof CheckpointFormatError) {
      throw new CheckpointFormatError(
        `${state.where} stores tensor data in external file ${JSON.stringify(location)}, which cannot be used: ${error.message}`,
        { cause: error },
      );
    }
    throw error;
  }
  state.externals.set(location, source);
  return source;
}

/** Reads packed typed payloads into memory (bounded) and decodes all values in order. */
async function decodeTyped(
  state: ScanState,
  parts: readonly TypedPart[],
  kind: 'float' | 'double' | VarintKind,
  name: string,
  expected: number | undefined,
): Promise<Float64Array> {
  const where = state.where;
  const chunks: (Uint8Array | number[])[] = [];
  let count = 0;
  for (const part of parts) {
    if ('values' in part) {
      chunks.push(part.values);
      count += part.values.length;
      continue;
    }
    const bytes = await state.source.read(part.offset, part.length);
    let n: number;
    if (kind === 'float' || kind === 'double') {
      const size = kind === 'float' ? 4 : 8;
      if (bytes.length % size !== 0)
        throw new CheckpointFormatError(
          `${where}: tensor ${JSON.stringify(name)} has packed ${kind} values of ${bytes.length} bytes, not a whole number of values.`,
        );
      n = bytes.length / size;
    } else {
      n = countPackedVarints(bytes, where);
    }
    spend(state.budget, n, where);
    count += n;
    chunks.push(bytes);
  }
  if (expected !== undefined && count !== expected) {
    throw new CheckpointFormatError(
      `${where}: tensor ${JSON.stringify(name)} has ${count} typed values but its shape needs ${expected}: the file is corrupt.`,
    );
  }
  const out = new Float64Array(count);
  let at = 0;
  for (const chunk of chunks) {
    if (Array.isArray(chunk)) {
      out.set(chunk, at);
      at += chunk.length;
    } else if (kind === 'float' || kind === 'double') {
      const values = decodeValues(kind === 'float' ? 'F32' : 'F64', chunk);
      out.set(values, at);
      at += values.length;
    } else {
      at += decodePackedVarints(chunk, kind, out, at, where);
    }
  }
  return out;
}

/** Turns typed values (as stored in their protobuf field) into element values of `t`. */
function typedToValues(t: OnnxType, stored: Float64Array): ValueChunk {
  const dtype = t.dtype;
  if (dtype === 'F16' || dtype === 'BF16' || dtype === 'F8_E4M3' || dtype === 'F8_E5M2' || t.table !== undefined) {
    const out = new Float32Array(stored.length);
    if (dtype === 'F16') for (let i = 0; i < out.length; i++) out[i] = f16BitsToNumber(stored[i] ?? 0);
    else if (dtype === 'BF16') for (let i = 0; i < out.length; i++) out[i] = bf16BitsToNumber(stored[i] ?? 0);
    else {
      const codes = new Uint8Array(stored.length);
      for (let i = 0; i < codes.length; i++) codes[i] = (stored[i] ?? 0) & 0xff;
      if (t.table !== undefined) for (let i = 0; i < out.length; i++) out[i] = t.table[codes[i] ?? 0] ?? NaN;
      else out.set(decodeValues(dtype === 'F8_E4M3' ? 'F8_E4M3' : 'F8_E5M2', codes));
    }
    return out;
  }
  if (dtype === 'F32' || dtype === 'I8' || dtype === 'U8' || dtype === 'I16' || dtype === 'U16' || dtype === 'BOOL')
    return Float32Array.from(stored);
  return stored;
}

/** Builds the tensor entry for a scanned TensorProto, validating that its data matches its shape. */
async function buildTensor(
  state: ScanState,
  info: TensorInfo,
  name: string,
  note: string | undefined,
): Promise<TensorEntry> {
  const where = state.where;
  const shape = tensorShape(info, name, where);
  const params = checkShape(`tensor ${JSON.stringify(name)}`, shape);
  const t = ONNX_TYPES.get(info.dataType);
  const label = typeLabel(t, info.dataType);
  const notes: string[] = note !== undefined ? [note] : [];
  if (info.segmented) notes.push('the TensorProto declares a segment (a deprecated chunked encoding)');
  const noteText = (): string | undefined => (notes.length > 0 ? notes.join('; ') : undefined);

  if (t === undefined) {
    const bytes = info.raw?.length ?? info.typedBytes;
    return undecodedWithNote(
      name,
      label,
      shape,
      bytes,
      info.dataType === 0 ? 'the tensor has no data_type.' : `ONNX data type ${info.dataType} is unknown.`,
      noteText(),
    );
  }
  const need = rawBytesNeeded(t, params);

  if (info.location === 1) {
    const location = info.external.get('location');
    if (location === undefined || location.length === 0) {
      throw new CheckpointFormatError(
        `${where}: tensor ${JSON.stringify(name)} says its data is external but names no location.`,
      );
    }
    const offsetText = info.external.get('offset');
    const lengthText = info.external.get('length');
    const offset = offsetText === undefined ? 0 : parseDecimal(offsetText, 'offset', where, name);
    const length = lengthText === undefined ? undefined : parseDecimal(lengthText, 'length', where, name);
    if (t.bits > 0 && length !== undefined && length !== need) {
      throw new CheckpointFormatError(
        `${where}: tensor ${JSON.stringify(name)} has ${formatBytes(length)} of external data in ${JSON.stringify(location)} but its shape [${shape.join(', ')}] of ${t.onnxName} needs ${formatBytes(need)}.`,
      );
    }
    const ext = await openExternal(state, location);
    const size = t.bits > 0 ? need : (length ?? 0);
    if (offset + size > ext.size) {
      throw new CheckpointFormatError(
        `${where}: tensor ${JSON.stringify(name)} needs bytes ${offset}–${offset + size} of external file ${JSON.stringify(location)}, which has only ${formatBytes(ext.size)}: it is truncated.`,
      );
    }
    notes.push(`external data: ${location} at byte ${offset}`);
    return rawEntry(name, t, info.dataType, shape, ext, offset, size, noteText());
  }

  if (info.raw !== undefined && (info.raw.length > 0 || info.typed.size === 0)) {
    if (t.bits > 0 && info.raw.length !== need) {
      throw new CheckpointFormatError(
        `${where}: tensor ${JSON.stringify(name)} has ${formatBytes(info.raw.length)} of raw_data but its shape [${shape.join(', ')}] of ${t.onnxName} needs ${formatBytes(need)}: the file is corrupt.`,
      );
    }
    if (info.typed.size > 0) notes.push('typed value fields are ignored because raw_data is present');
    return rawEntry(name, t, info.dataType, shape, state.source, info.raw.offset, info.raw.length, noteText());
  }

  if (t.typedKind === 'string') {
    if (info.stringCount !== params) {
      throw new CheckpointFormatError(
        `${where}: tensor ${JSON.stringify(name)} has ${info.stringCount} strings but its shape needs ${params}.`,
      );
    }
    return undecodedWithNote(
      name,
      label,
      shape,
      info.typedBytes,
      'ONNX STRING values are text, not weights.',
      noteText(),
    );
  }

  const present = [...info.typed.keys()];
  const foreign = present.find((field) => field !== t.typedField);
  if (foreign !== undefined) {
    throw new CheckpointFormatError(
      `${where}: tensor ${JSON.stringify(name)} is ${t.onnxName} but stores values in ${TYPED_FIELD_NAMES[foreign] ?? `field ${foreign}`}, which that type does not use: the file is corrupt.`,
    );
  }
  const parts = info.typed.get(t.typedField) ?? [];
  if (parts.length === 0) {
    if (params === 0) return memoryTensor(name, label, shape, new Float32Array(0), 0, noteText());
    throw new CheckpointFormatError(
      `${where}: tensor ${JSON.stringify(name)} has shape [${shape.join(', ')}] but no data (no raw_data, typed values or external data).`,
    );
  }
  const fieldName = TYPED_FIELD_NAMES[t.typedField] ?? 'typed field';
  // Packed float32/float64 values are little-endian element bytes already: read them in place, like raw_data.
  const only = parts.length === 1 ? parts[0] : undefined;
  if (only !== undefined && 'offset' in only && (t.dtype === 'F32' || t.dtype === 'F64')) {
    if (only.length !== need) {
      throw new CheckpointFormatError(
        `${where}: tensor ${JSON.stringify(name)} has ${formatBytes(only.length)} of ${fieldName} but its shape [${shape.join(', ')}] needs ${formatBytes(need)}: the file is corrupt.`,
      );
    }
    notes.push(`values stored in ${fieldName}`);
    return rawEntry(name, t, info.dataType, shape, state.source, only.offset, only.length, noteText());
  }
  if (t.dtype === undefined && t.table === undefined) {
    return undecodedWithNote(
      name,
      label,
      shape,
      info.typedBytes,
      `ONNX ${t.onnxName} values are not numeric weights Weight Lens decodes.`,
      noteText(),
    );
  }
  if (t.bits < 8) {
    return undecodedWithNote(
      name,
      label,
      shape,
      info.typedBytes,
      `${t.onnxName} values packed in ${fieldName} are not decoded (only raw_data is).`,
      noteText(),
    );
  }
  if (info.typedBytes > MAX_TYPED_BYTES || params > MAX_TYPED_VALUES) {
    return undecodedWithNote(
      name,
      label,
      shape,
      info.typedBytes,
      `its ${formatBytes(info.typedBytes)} of ${fieldName} exceed the ${formatBytes(MAX_TYPED_BYTES)} decoded in memory.`,
      noteText(),
    );
  }
  const kind = t.typedKind;
  const stored = await decodeTyped(state, parts, kind, name, params);
  notes.push(`values stored in ${fieldName}`);
  return memoryTensor(name, label, shape, typedToValues(t, stored), info.typedBytes, noteText());
}

function undecodedWithNote(
  name: string,
  label: string,
  shape: readonly number[],
  bytes: number,
  reason: string,
  note: string | undefined,
): TensorEntry {
  const entry = undecodedTensor(name, label, shape, bytes, reason);
  return note !== undefined ? { ...entry, note } : entry;
}

/**
 * A dense view of a sparse tensor: zeros except at `indices`, where `values` go. Densified on demand by `values`;
 * statistics read only the stored values and weight one zero by the count of the others (`summary`), so their cost
 * is the stored values, whatever the dense shape.
 */
function sparseTensor(
  name: string,
  shape: readonly number[],
  values: TensorEntry,
  indices: TensorEntry,
  note: string,
): TensorEntry {
  const params = checkShape(`tensor ${JSON.stringify(name)}`, shape);
  const nnz = values.params;
  const rank = shape.length;
  const linear = indices.shape.length === 1 && indices.params === nnz;
  const coordinate = indices.shape.length === 2 && indices.shape[0] === nnz && indices.shape[1] === rank;
  if (values.shape.length !== 1 || (!linear && !coordinate)) {
    throw new CheckpointFormatError(
      `sparse tensor ${JSON.stringify(name)} has values of shape [${values.shape.join(', ')}] and indices of shape [${indices.shape.join(', ')}], which do not fit its shape [${shape.join(', ')}].`,
    );
  }
  const reason = values.notDecodedReason ?? indices.notDecodedReason;
  const bytes = values.bytes + indices.bytes;
  if (reason !== undefined) return undecodedTensor(name, values.dtype, shape, bytes, reason);
  /** The stored values, their flat dense indices, and the order that sorts them by index (a later duplicate wins). */
  const layout = async (
    signal: AbortSignal | undefined,
  ): Promise<{ stored: Float32Array; flat: Float64Array; order: number[] }> => {
    const limit = { maxElements: MAX_SPARSE_VALUES, ...(signal ? { signal } : {}) };
    const stored = await readTensorValues(values, limit);
    const rawIndex = await readIndices(indices, MAX_SPARSE_VALUES * Math.max(1, rank), signal);
    const flat = new Float64Array(nnz);
    for (let k = 0; k < nnz; k++) {
      let index = 0;
      if (linear) index = rawIndex[k] ?? 0;
      else {
        for (let d = 0; d < rank; d++) {
          const c = rawIndex[k * rank + d] ?? 0;
          const size = shape[d] ?? 0;
          if (!Number.isInteger(c) || c < 0 || c >= size)
            throw new CheckpointFormatError(
              `sparse tensor ${JSON.stringify(name)} has an index ${c} outside dimension ${d} of size ${size}.`,
            );
          index = index * size + c;
        }
      }
      if (!Number.isInteger(index) || index < 0 || index >= params)
        throw new CheckpointFormatError(
          `sparse tensor ${JSON.stringify(name)} has an index ${index} outside its ${params} elements.`,
        );
      flat[k] = index;
    }
    const order = Array.from({ length: nnz }, (_, k) => k);
    order.sort((a, b) => (flat[a] ?? 0) - (flat[b] ?? 0) || a - b);
    return { stored, flat, order };
  };
  return {
    name,
    dtype: values.dtype,
    shape: [...shape],
    params,
    bytes,
    note,
    async *values(options?: ValueStreamOptions): AsyncIterable<ValueChunk> {
      const { stored, flat, order } = await layout(options?.signal);
      const chunk = Math.max(1, options?.maxElements ?? DEFAULT_CHUNK_ELEMENTS);
      let next = 0;
      for (let start = 0; start < params; start += chunk) {
        throwIfAborted(options?.signal);
        const count = Math.min(chunk, params - start);
        const out = new Float32Array(count);
        while (next < nnz) {
          const k = order[next] ?? 0;
          const index = flat[k] ?? 0;
          if (index >= start + count) break;
          out[index - start] = stored[k] ?? 0;
          next++;
        }
        yield out;
      }
    },
    async *summary(options?: ValueStreamOptions): AsyncIterable<WeightedChunk> {
      const { stored, flat, order } = await layout(options?.signal);
      // One value per dense index: of duplicates, the last in index order wins, as in `values`.
      const kept = new Float32Array(nnz);
      let n = 0;
      for (let i = 0; i < nnz; i++) {
        const k = order[i] ?? 0;
        const following = order[i + 1];
        if (following !== undefined && flat[following] === flat[k]) continue;
        kept[n++] = stored[k] ?? 0;
      }
      const chunk = Math.max(1, options?.maxElements ?? DEFAULT_CHUNK_ELEMENTS);
      for (let start = 0; start < n; start += chunk) {
        throwIfAborted(options?.signal);
        yield { values: kept.subarray(start, Math.min(n, start + chunk)), weight: 1 };
      }
      if (params > n) yield { values: new Float32Array(1), weight: params - n };
    },
  };
}

/** Reads a sparse tensor's indices exactly, as float64 (float32 would round indices beyond 2^24). */
async function readIndices(
  indices: TensorEntry,
  maxElements: number,
  signal: AbortSignal | undefined,
): Promise<Float64Array> {
  if (indices.params > maxElements) {
    throw new CheckpointFormatError(
      `sparse indices ${JSON.stringify(indices.name)} have ${indices.params} elements, over the ${maxElements} that can be loaded at once.`,
    );
  }
  const out = new Float64Array(indices.params);
  let at = 0;
  for await (const chunk of indices.values(signal ? { signal } : {})) {
    if (at + chunk.length > out.length) break;
    out.set(chunk, at);
    at += chunk.length;
  }
  if (at !== out.length)
    throw new CheckpointFormatError(
      `sparse indices ${JSON.stringify(indices.name)} yielded ${at} values, not ${out.length}.`,
    );
  return out;
}

/** Scans a SparseTensorProto (values, indices, dims). */
async function scanSparse(
  cur: ProtoCursor,
  where: string,
  budget: TypedBudget,
): Promise<{ values: TensorInfo; indices: TensorInfo; dims: bigint[] }> {
  let values: TensorInfo | undefined;
  let indices: TensorInfo | undefined;
  const dims: bigint[] = [];
  for (let f = await cur.next(); f !== undefined; f = await cur.next()) {
    if (f.field === 1) values = await scanTensor(cur.child(f), where, budget);
    else if (f.field === 2) indices = await scanTensor(cur.child(f), where, budget);
    else if (f.field === 3) {
      if (f.wireType === WIRE_LEN)
        dims.push(
          ...decodePackedInt64s(
            await cur.payload(f, 'sparse dims', 10 * (LIMITS.maxRank + 1)),
            LIMITS.maxRank + 1,
            'sparse dims',
            where,
          ),
        );
      else dims.push(fieldInt64Big(f, where));
      if (dims.length > LIMITS.maxRank)
        throw new CheckpointFormatError(
          `${where}: a sparse tensor at byte ${cur.start} has more than ${LIMITS.maxRank} dimensions.`,
        );
    }
  }
  if (values === undefined || indices === undefined) {
    throw new CheckpointFormatError(
      `${where}: the sparse tensor at byte ${cur.start} lacks its ${values === undefined ? 'values' : 'indices'}.`,
    );
  }
  return { values, indices, dims };
}

function pendingSparse(
  state: ScanState,
  scanned: { values: TensorInfo; indices: TensorInfo; dims: bigint[] },
  name: string,
  path: string,
  origin: string,
): Pending {
  return {
    name,
    path,
    origin,
    async build(finalName, note) {
      const shapeInfo: TensorInfo = { ...scanned.values, dims: scanned.dims };
      const shape = tensorShape(shapeInfo, finalName, state.where);
      const values = await buildTensor(state, scanned.values, `${finalName} (values)`, undefined);
      const indices = await buildTensor(state, scanned.indices, `${finalName} (indices)`, undefined);
      const text = [`sparse: ${values.params} stored values, densified`, ...(note !== undefined ? [note] : [])].join(
        '; ',
      );
      return sparseTensor(finalName, shape, values, indices, text);
    },
  };
}

function pendingTensor(state: ScanState, info: TensorInfo, name: string, path: string, origin: string): Pending {
  return { name, path, origin, build: (finalName, note) => buildTensor(state, info, finalName, note) };
}

/** What an attribute holds, as far as this reader cares. */
interface AttributeScan {
  name: string;
  tensor?: ProtoField;
  sparse?: ProtoField;
  graphs: ProtoField[];
  float?: number;
  int?: number;
  floats: TypedPart[];
  ints: TypedPart[];
  floatsBytes: number;
  intsBytes: number;
  strings: number;
  stringBytes: number;
}

async function scanAttribute(cur: ProtoCursor, where: string, budget: TypedBudget): Promise<AttributeScan> {
  const scan: AttributeScan = {
    name: '',
    graphs: [],
    floats: [],
    ints: [],
    floatsBytes: 0,
    intsBytes: 0,
    strings: 0,
    stringBytes: 0,
  };
  let singles = 0;
  const single = (parts: TypedPart[], value: number): void => {
    if (++singles > MAX_TYPED_VALUES)
      throw new CheckpointFormatError(
        `${where}: the attribute at byte ${cur.start} has more than ${MAX_TYPED_VALUES} values.`,
      );
    spend(budget, 1, where);
    const last = parts[parts.length - 1];
    if (last !== undefined && 'values' in last) last.values.push(value);
    else parts.push({ values: [value] });
  };
  for (let f = await cur.next(); f !== undefined; f = await cur.next()) {
    switch (f.field) {
      case 1:
        scan.name = await readString(cur, f, 'attribute name');
        break;
      case 2:
        scan.float = fieldFloat(f, where);
        break;
      case 3:
        scan.int = varintAs(f, 'int64', where);
        break;
      case 4:
        scan.strings = 1;
        expectWire(f, WIRE_LEN, where);
        scan.stringBytes = f.length;
        break;
      case 5:
        expectWire(f, WIRE_LEN, where);
        scan.tensor = f;
        break;
      case 6:
      case 11:
        expectWire(f, WIRE_LEN, where);
        scan.graphs.push(f);
        break;
      case 7:
        if (f.wireType === WIRE_LEN) scan.floats.push({ offset: f.offset, length: f.length });
        else single(scan.floats, fieldFloat(f, where));
        scan.floatsBytes += f.length;
        break;
      case 8:
        if (f.wireType === WIRE_LEN) scan.ints.push({ offset: f.offset, length: f.length });
        else single(scan.ints, varintAs(f, 'int64', where));
        scan.intsBytes += f.length;
        break;
      case 9:
        expectWire(f, WIRE_LEN, where);
        scan.strings++;
        scan.stringBytes += f.length;
        break;
      case 22:
        expectWire(f, WIRE_LEN, where);
        scan.sparse = f;
        break;
      default:
        break;
    }
    if (scan.graphs.length > LIMITS.maxTensors)
      throw new CheckpointFormatError(`${where}: an attribute at byte ${cur.start} holds too many subgraphs.`);
  }
  return scan;
}

/** The tensor a Constant node defines, from whichever value attribute it has. */
async function constantPending(
  state: ScanState,
  cur: ProtoCursor,
  attr: AttributeScan,
  name: string,
  path: string,
  origin: string,
): Promise<Pending | undefined> {
  if (attr.tensor !== undefined) {
    const info = await scanTensor(cur.child(attr.tensor), state.where, state.budget);
    return pendingTensor(state, info, name, path, origin);
  }
  if (attr.sparse !== undefined)
    return pendingSparse(
      state,
      await scanSparse(cur.child(attr.sparse), state.where, state.budget),
      name,
      path,
      origin,
    );
  const memory = (dtype: DType, shape: number[], data: ValueChunk, bytes: number): Pending => ({
    name,
    path,
    origin,
    build: (finalName, note) => Promise.resolve(memoryTensor(finalName, dtype, shape, data, bytes, note)),
  });
  if (attr.name === 'value_float' && attr.float !== undefined) return memory('F32', [], Float32Array.of(attr.float), 4);
  if (attr.name === 'value_int' && attr.int !== undefined) return memory('I64', [], Float64Array.of(attr.int), 8);
  if (attr.name === 'value_floats' || attr.name === 'value_ints') {
    const isFloat = attr.name === 'value_floats';
    const bytes = isFloat ? attr.floatsBytes : attr.intsBytes;
    if (bytes > MAX_TYPED_BYTES) {
      return {
        name,
        path,
        origin,
        build: (finalName) =>
          Promise.resolve(
            undecodedTensor(
              finalName,
              isFloat ? 'F32' : 'I64',
              [0],
              bytes,
              'the attribute is too large to decode in memory.',
            ),
          ),
      };
    }
    const data = await decodeTyped(
      state,
      isFloat ? attr.floats : attr.ints,
      isFloat ? 'float' : 'int64',
      name,
      undefined,
    );
    return memory(isFloat ? 'F32' : 'I64', [data.length], isFloat ? Float32Array.from(data) : data, bytes);
  }
  if (attr.name === 'value_string' || attr.name === 'value_strings') {
    const shape = attr.name === 'value_string' ? [] : [attr.strings];
    return {
      name,
      path,
      origin,
      build: (finalName) =>
        Promise.resolve(
          undecodedTensor(finalName, 'STRING', shape, attr.stringBytes, 'ONNX STRING values are text, not weights.'),
        ),
    };
  }
  return undefined;
}

/** Scans one NodeProto: counts its op type, collects a Constant's value, and descends into subgraph attributes. */
async function scanNode(state: ScanState, cur: ProtoCursor, index: number, path: string): Promise<Pending[]> {
  const where = state.where;
  let output: string | undefined;
  let name = '';
  let opType = '';
  let domain = '';
  const attributes: ProtoField[] = [];
  for (let f = await cur.next(); f !== undefined; f = await cur.next()) {
    switch (f.field) {
      case 2:
        if (output === undefined) output = await readString(cur, f, 'node output');
        break;
      case 3:
        name = await readString(cur, f, 'node name');
        break;
      case 4:
        opType = await readString(cur, f, 'node op_type');
        break;
      case 5:
        expectWire(f, WIRE_LEN, where);
        attributes.push(f);
        if (attributes.length > MAX_ATTRIBUTES)
          throw new CheckpointFormatError(
            `${where}: the node at byte ${cur.start} has more than ${MAX_ATTRIBUTES} attributes.`,
          );
        break;
      case 7:
        domain = await readString(cur, f, 'node domain');
        break;
      default:
        break;
    }
  }
  state.nodes++;
  const opKey = domain === '' || domain === 'ai.onnx' ? opType : `${domain}.${opType}`;
  state.ops.set(opKey, (state.ops.get(opKey) ?? 0) + 1);
  const label = name !== '' ? name : `${opType !== '' ? opType : 'node'}_${index}`;
  const isConstant = opType === 'Constant' && (domain === '' || domain === 'ai.onnx');
  const pending: Pending[] = [];
  const subgraphs: Pending[] = [];
  for (const a of attributes) {
    const attrCur = cur.child(a);
    const attr = await scanAttribute(attrCur, where, state.budget);
    if (isConstant) {
      const constName = output !== undefined && output !== '' ? output : `${label}.value`;
      const p = await constantPending(state, attrCur, attr, constName, path, `Constant node ${JSON.stringify(label)}`);
      if (p !== undefined) {
        countTensor(state);
        state.constants++;
        pending.push(p);
      }
    }
    for (let g = 0; g < attr.graphs.length; g++) {
      const f = attr.graphs[g];
      if (f === undefined) continue;
      const attrName = attr.name !== '' ? attr.name : 'graph';
      const sub =
        f.field === 11 ? `${attrName}[${attr.graphs.filter((x, k) => k < g && x.field === 11).length}]` : attrName;
      state.subgraphs++;
      const scanned = await scanGraph(state, attrCur.child(f), `${path}${label}/${sub}/`);
      subgraphs.push(...scanned.pending);
    }
  }
  return [...pending, ...subgraphs];
}

/** A graph input or output as "name F32[1, 3, 224, 224]". */
function describeValueInfo(r: ProtoReader): string {
  let name = '';
  let type = '';
  for (let f = r.next(); f !== undefined; f = r.next()) {
    if (f.field === 1) name = readerString(r, f, 'value name');
    else if (f.field === 2 && f.wireType === WIRE_LEN) {
      const typeProto = r.child(f);
      for (let t = typeProto.next(); t !== undefined; t = typeProto.next()) {
        if (t.field !== 1 || t.wireType !== WIRE_LEN) continue; // tensor_type only
        const tensorType = typeProto.child(t);
        let elem = 0;
        const dims: string[] = [];
        let hasShape = false;
        for (let e = tensorType.next(); e !== undefined; e = tensorType.next()) {
          if (e.field === 1 && e.wireType === WIRE_VARINT) elem = fieldUint(e, 'elem_type', r.where);
          else if (e.field === 2 && e.wireType === WIRE_LEN) {
            hasShape = true;
            const shape = tensorType.child(e);
            for (let d = shape.next(); d !== undefined; d = shape.next()) {
              if (d.field !== 1 || d.wireType !== WIRE_LEN || dims.length > LIMITS.maxRank) continue;
              const dim = shape.child(d);
              let text = '?';
              for (let v = dim.next(); v !== undefined; v = dim.next()) {
                if (v.field === 1 && v.wireType === WIRE_VARINT) text = String(varintAs(v, 'int64', r.where));
                else if (v.field === 2 && v.wireType === WIRE_LEN) text = readerString(dim, v, 'dim_param');
              }
              dims.push(text);
            }
          }
        }
        type = `${typeLabel(ONNX_TYPES.get(elem), elem)}${hasShape ? `[${dims.join(', ')}]` : ''}`;
      }
    }
  }
  return type !== '' ? `${name} ${type}` : name;
}

interface GraphScan {
  pending: Pending[];
  name: string;
  /** Nodes directly in this graph (not in its subgraphs). */
  nodes: number;
  initializers: number;
  sparse: number;
  inputs: string[];
  outputs: string[];
  /** Names of initializers (to leave them out of the graph's inputs, as IR < 4 lists them there). */
  initializerNames: Set<string>;
}

/** Scans a GraphProto. `path` is '' for the main graph, or the node path of a subgraph ending in '/'. */
async function scanGraph(state: ScanState, cur: ProtoCursor, path: string): Promise<GraphScan> {
  const where = state.where;
  const main = path === '';
  const initializers: Pending[] = [];
  const sparse: Pending[] = [];
  const fromNodes: Pending[] = [];
  const inputs: ProtoField[] = [];
  const outputs: ProtoField[] = [];
  const initializerNames = new Set<string>();
  let name = '';
  let nodeIndex = 0;
  for (let f = await cur.next(); f !== undefined; f = await cur.next()) {
    throwIfAborted(state.context.signal);
    switch (f.field) {
      case 1:
        expectWire(f, WIRE_LEN, where);
        fromNodes.push(...(await scanNode(state, cur.child(f), nodeIndex++, path)));
        break;
      case 2:
        name = await readString(cur, f, 'graph name');
        break;
      case 5: {
        expectWire(f, WIRE_LEN, where);
        const info = await scanTensor(cur.child(f), where, state.budget);
        const tensorName = info.name !== '' ? info.name : `initializer_${initializers.length}`;
        countTensor(state);
        if (main) initializerNames.add(tensorName);
        initializers.push(pendingTensor(state, info, tensorName, path, 'initializer'));
        break;
      }
      case 11:
        if (main && inputs.length <= MAX_DESCRIBED_IO + initializerNames.size) inputs.push(f);
        break;
      case 12:
        if (main && outputs.length <= MAX_DESCRIBED_IO) outputs.push(f);
        break;
      case 15: {
        expectWire(f, WIRE_LEN, where);
        const scanned = await scanSparse(cur.child(f), where, state.budget);
        countTensor(state);
        const tensorName = scanned.values.name !== '' ? scanned.values.name : `sparse_initializer_${sparse.length}`;
        if (main) initializerNames.add(tensorName);
        sparse.push(pendingSparse(state, scanned, tensorName, path, 'sparse initializer'));
        break;
      }
      default:
        break;
    }
  }
  const describe = async (fields: ProtoField[], skip: Set<string>): Promise<string[]> => {
    const out: string[] = [];
    for (const f of fields) {
      const text = describeValueInfo(await cur.reader(f, 'graph input/output', MAX_STRING_BYTES));
      if (!skip.has(text.split(' ')[0] ?? '')) out.push(text);
    }
    return out;
  };
  return {
    pending: [...initializers, ...sparse, ...fromNodes],
    name,
    nodes: nodeIndex,
    initializers: initializers.length,
    sparse: sparse.length,
    inputs: main ? await describe(inputs, initializerNames) : [],
    outputs: main ? await describe(outputs, new Set()) : [],
    initializerNames,
  };
}

/** Final names: unique, with colliding subgraph tensors prefixed by their node path, then `#2`, `#3`… if needed. */
function finalNames(pending: readonly Pending[]): string[] {
  const counts = new Map<string, number>();
  for (const p of pending) counts.set(p.name, (counts.get(p.name) ?? 0) + 1);
  const unique = uniqueNamer();
  return pending.map((p) => unique((counts.get(p.name) ?? 0) > 1 && p.path !== '' ? `${p.path}${p.name}` : p.name));
}

function parseOpset(r: ProtoReader): string {
  let domain = '';
  let version = 0;
  for (let f = r.next(); f !== undefined; f = r.next()) {
    if (f.field === 1) domain = readerString(r, f, 'opset domain');
    else if (f.field === 2) version = varintAs(f, 'int64', r.where);
  }
  return `${domain === '' ? 'ai.onnx' : domain} ${version}`;
}

async function openOnnx(source: ByteSource, context: OpenContext): Promise<Checkpoint> {
  const where = source.name;
  const state: ScanState = {
    source,
    where,
    context,
    ops: new Map(),
    nodes: 0,
    subgraphs: 0,
    constants: 0,
    tensors: 0,
    externals: new Map(),
    budget: { values: 0 },
  };
  try {
    if (source.size === 0) throw new CheckpointFormatError(`${where} is empty, not an ONNX model.`);
    const cur = ProtoCursor.over(source);
    const metadata: Record<string, MetadataValue> = {};
    const opsets: string[] = [];
    const props: [string, string][] = [];
    let irVersion: number | undefined;
    let producer = '';
    let producerVersion = '';
    let functions = 0;
    let trainingInfo = 0;
    let graphs = 0;
    let graph: GraphScan | undefined;
    let mainNodes = 0;
    const pending: Pending[] = [];
    for (let f = await cur.next(); f !== undefined; f = await cur.next()) {
      switch (f.field) {
        case 1:
          irVersion = varintAs(f, 'int64', where);
          break;
        case 2:
          producer = await readString(cur, f, 'producer_name');
          break;
        case 3:
          producerVersion = await readString(cur, f, 'producer_version');
          break;
        case 4:
          metadata.domain = elide(await readString(cur, f, 'domain'));
          break;
        case 5:
          metadata.model_version = varintAs(f, 'int64', where);
          break;
        case 6:
          expectWire(f, WIRE_LEN, where);
          metadata.doc_string =
            f.length <= MAX_DOC_BYTES
              ? elide(decodeUtf8(await cur.payload(f, 'doc_string', MAX_DOC_BYTES)))
              : `(${formatBytes(f.length)} of text)`;
          break;
        case 7: {
          expectWire(f, WIRE_LEN, where);
          const scanned = await scanGraph(state, cur.child(f), '');
          mainNodes += scanned.nodes;
          pending.push(...scanned.pending);
          graph = graph === undefined ? scanned : graph;
          graphs++;
          break;
        }
        case 8:
          if (opsets.length < 1000) opsets.push(parseOpset(await cur.reader(f, 'opset_import', MAX_STRING_BYTES + 32)));
          break;
        case 14: {
          if (props.length >= 1000) break;
          const r = await cur.reader(f, 'metadata_props entry', 2 * MAX_STRING_BYTES + 32);
          let key = '';
          let value = '';
          for (let e = r.next(); e !== undefined; e = r.next()) {
            if (e.field === 1) key = readerString(r, e, 'metadata key');
            else if (e.field === 2) value = readerString(r, e, 'metadata value');
          }
          props.push([key, value]);
          break;
        }
        case 20:
          trainingInfo++;
          break;
        case 25:
          functions++;
          break;
        default:
          break;
      }
    }
    if (graph === undefined) {
      throw new CheckpointFormatError(
        `${where} is not an ONNX model: it has no graph${irVersion === undefined ? ' and no ir_version' : ''}.`,
      );
    }
    const names = finalNames(pending);
    const tensors: TensorEntry[] = [];
    for (let i = 0; i < pending.length; i++) {
      throwIfAborted(context.signal);
      const p = pending[i];
      const name = names[i];
      if (p === undefined || name === undefined) continue;
      const notes: string[] = [];
      if (p.origin !== 'initializer') notes.push(`from ${p.origin}`);
      if (p.path !== '') notes.push(`in subgraph ${p.path.slice(0, -1)}`);
      if (name !== p.name) notes.push(`named ${JSON.stringify(p.name)} in the file`);
      tensors.push(await p.build(name, notes.length > 0 ? notes.join('; ') : undefined));
    }

    const ordered: Record<string, MetadataValue> = {};
    if (irVersion !== undefined) ordered.ir_version = irVersion;
    if (opsets.length > 0) ordered.opset = elide(opsets.join(', '));
    if (producer !== '' || producerVersion !== '') ordered.producer = elide(`${producer} ${producerVersion}`.trim());
    Object.assign(ordered, metadata);
    ordered.graph = elide(graph.name);
    ordered.nodes = mainNodes;
    if (state.subgraphs > 0) {
      ordered.subgraphs = state.subgraphs;
      ordered['nodes (all graphs)'] = state.nodes;
    }
    ordered.initializers = graph.initializers;
    if (graph.sparse > 0) ordered['sparse initializers'] = graph.sparse;
    if (state.constants > 0) ordered['constant nodes with values'] = state.constants;
    if (graph.inputs.length > 0) ordered.inputs = elide(graph.inputs.slice(0, MAX_DESCRIBED_IO).join('; '));
    if (graph.outputs.length > 0) ordered.outputs = elide(graph.outputs.slice(0, MAX_DESCRIBED_IO).join('; '));
    if (graphs > 1) ordered.graphs = graphs;
    if (functions > 0) ordered.functions = functions;
    if (trainingInfo > 0) ordered.training_info = trainingInfo;
    if (state.externals.size > 0) ordered['external data files'] = elide([...state.externals.keys()].join(', '));
    const ops = [...state.ops.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    for (const [op, count] of ops.slice(0, 500)) ordered[`op.${op}`] = count;
    for (const [key, value] of props) ordered[`meta.${key}`] = elide(value);

    const opset = opsets.find((o) => o.startsWith('ai.onnx '))?.slice('ai.onnx '.length);
    const facts = [
      irVersion !== undefined ? `IR ${irVersion}` : undefined,
      opset !== undefined ? `opset ${opset}` : undefined,
      state.externals.size > 0 ? 'external data' : undefined,
    ].filter((x): x is string => x !== undefined);
    return {
      format: 'onnx',
      description: facts.length > 0 ? `ONNX (${facts.join(', ')})` : 'ONNX',
      tensors,
      metadata: ordered,
      close: closeOnce(async () => {
        await Promise.allSettled([...state.externals.values()].map((s) => s.close()));
        await source.close();
      }),
    };
  } catch (error) {
    await Promise.allSettled([...state.externals.values()].map((s) => s.close()));
    throw error;
  }
}

/** ModelProto field numbers and the wire type each must have. */
const MODEL_FIELDS: ReadonlyMap<number, number> = new Map([
  [1, WIRE_VARINT],
  [2, WIRE_LEN],
  [3, WIRE_LEN],
  [4, WIRE_LEN],
  [5, WIRE_VARINT],
  [6, WIRE_LEN],
  [7, WIRE_LEN],
  [8, WIRE_LEN],
  [14, WIRE_LEN],
  [20, WIRE_LEN],
  [25, WIRE_LEN],
]);

/** How much the first bytes look like a ModelProto: 2 = ir_version then valid fields, 1 = valid fields, 0 = not. */
function modelProtoEvidence(head: Uint8Array): number {
  const r = new ProtoReader(head, 0, 'head');
  let fields = 0;
  let ir = false;
  try {
    for (let f = r.next(); f !== undefined; f = r.next()) {
      if (MODEL_FIELDS.get(f.field) !== f.wireType) return 0;
      if (f.field === 1) {
        if (f.varint < 1n || f.varint > 100n) return 0;
        ir = fields === 0 || ir;
      }
      fields++;
    }
  } catch {
    // The head ends inside a field (normal for a model larger than the head): judge what was read.
  }
  if (ir) return 2;
  return fields >= 2 ? 1 : 0;
}

/** Reads ONNX models (`.onnx`): initializers, Constant values and subgraph tensors, with external data. */
export const onnxFormat: FormatReader = {
  id: 'onnx',
  label: 'ONNX',
  extensions: ['.onnx'],
  sniff(head: Uint8Array, fileName: string): number {
    try {
      const byName = fileName.toLowerCase().endsWith('.onnx');
      const evidence = modelProtoEvidence(head);
      if (evidence === 2) return byName ? 0.95 : 0.6;
      if (evidence === 1) return byName ? 0.8 : 0.2;
      return byName ? 0.3 : 0;
    } catch {
      return 0;
    }
  },
  open: openOnnx,
};
