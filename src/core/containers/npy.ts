/**
 * NumPy `.npy` headers (format versions 1.0, 2.0 and 3.0): the magic string, the header length, and the header
 * itself, a Python dict literal such as `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`. The dict is
 * parsed by a tiny literal parser that knows strings, numbers, booleans, None, tuples, lists and dicts — it never
 * evaluates anything. Used by the NumPy format reader (`.npy`, `.npz`) and by dataset loaders.
 */
import { CheckpointFormatError, formatBytes } from '../io/errors';
import { LIMITS } from '../io/limits';
import { quote } from '../io/text';
import { DTYPE_BYTES, type DType } from '../tensors/dtype';
import { checkShape } from '../tensors/tensor';

/** The six magic bytes every `.npy` file starts with: `\x93NUMPY`. */
export const NPY_MAGIC = Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

/** Bytes of the fixed preamble needed to learn the header length (magic, version, and a 2- or 4-byte length). */
export const NPY_PREAMBLE_BYTES = 12;

/** Largest header accepted: NumPy itself refuses headers over 10,000 bytes by default; we allow generous room. */
export const NPY_MAX_HEADER_BYTES = 1024 * 1024;

/** What the fixed preamble says: format version and where the header and the data start. */
export interface NpyPreamble {
  /** Format version, e.g. `[1, 0]`. */
  readonly version: readonly [number, number];
  /** Byte offset of the header dict text (10 for version 1, 12 for versions 2 and 3). */
  readonly headerOffset: number;
  /** Length of the header dict text in bytes. */
  readonly headerLength: number;
  /** Byte offset of the first data byte: `headerOffset + headerLength`. */
  readonly dataOffset: number;
}

/** A parsed `.npy` header. */
export interface NpyHeader extends NpyPreamble {
  /** The `descr` string as written, e.g. `<f4`, `>i8`, `|b1`. */
  readonly descr: string;
  /** Element type, or undefined when `descr` names a type Weight Lens does not decode (see `unsupportedReason`). */
  readonly dtype: DType | undefined;
  /** Why the dtype cannot be decoded (complex, strings, objects, structured arrays, …), when `dtype` is undefined. */
  readonly unsupportedReason?: string;
  /** Bytes per element as `descr` declares them (also for unsupported types, when the size is known, else 0). */
  readonly itemBytes: number;
  /** False for big-endian data (`>`); single-byte types report true. */
  readonly littleEndian: boolean;
  /** True if the data is stored column-major (Fortran order). */
  readonly fortranOrder: boolean;
  /** Dimensions as the header lists them (the logical shape, outermost first, whatever the storage order). */
  readonly shape: readonly number[];
  /** Element count: product of `shape`. */
  readonly params: number;
  /** Bytes of array data that follow the header: `params * itemBytes`. */
  readonly dataBytes: number;
}

/** True if `head` starts with the `.npy` magic. */
export function hasNpyMagic(head: Uint8Array): boolean {
  if (head.length < NPY_MAGIC.length) return false;
  for (let i = 0; i < NPY_MAGIC.length; i++) if (head[i] !== NPY_MAGIC[i]) return false;
  return true;
}

/** Parses the fixed preamble from the first `NPY_PREAMBLE_BYTES` (or more) bytes of a `.npy` stream. */
export function parseNpyPreamble(head: Uint8Array, name: string): NpyPreamble {
  if (!hasNpyMagic(head)) {
    throw new CheckpointFormatError(`${name} is not a NumPy .npy file: it does not start with the \\x93NUMPY magic.`);
  }
  if (head.length < 10)
    throw new CheckpointFormatError(`${name} is truncated: its .npy preamble is cut after ${head.length} bytes.`);
  const major = head[6] ?? 0;
  const minor = head[7] ?? 0;
  let headerOffset: number;
  let headerLength: number;
  if (major === 1) {
    headerOffset = 10;
    headerLength = (head[8] ?? 0) | ((head[9] ?? 0) << 8);
  } else if (major === 2 || major === 3) {
    if (head.length < 12)
      throw new CheckpointFormatError(`${name} is truncated: its .npy preamble is cut after ${head.length} bytes.`);
    headerOffset = 12;
    headerLength = ((head[8] ?? 0) | ((head[9] ?? 0) << 8) | ((head[10] ?? 0) << 16) | ((head[11] ?? 0) << 24)) >>> 0;
  } else {
    throw new CheckpointFormatError(
      `${name} uses .npy format version ${major}.${minor}; versions 1.0, 2.0 and 3.0 are supported.`,
    );
  }
  if (headerLength > NPY_MAX_HEADER_BYTES) {
    throw new CheckpointFormatError(
      `${name} declares a ${formatBytes(headerLength)} .npy header, over the ${formatBytes(NPY_MAX_HEADER_BYTES)} limit.`,
    );
  }
  return { version: [major, minor], headerOffset, headerLength, dataOffset: headerOffset + headerLength };
}

/**
 * Parses a whole `.npy` header from `bytes`, which must hold at least the first `dataOffset` bytes of the stream
 * (call `parseNpyPreamble` first to learn how many). Validates the dict keys, dtype and shape.
 */
export function parseNpyHeader(bytes: Uint8Array, name: string): NpyHeader {
  const preamble = parseNpyPreamble(bytes, name);
  if (bytes.length < preamble.dataOffset) {
    throw new CheckpointFormatError(
      `${name} is truncated: its .npy header needs ${preamble.dataOffset} bytes but only ${bytes.length} are present.`,
    );
  }
  const raw = bytes.subarray(preamble.headerOffset, preamble.dataOffset);
  const text = preamble.version[0] === 3 ? new TextDecoder('utf-8').decode(raw) : latin1(raw);
  let dict: PyValue;
  try {
    dict = parsePythonLiteral(text);
  } catch (error) {
    if (error instanceof LiteralError)
      throw new CheckpointFormatError(`${name} has a malformed .npy header (${error.message}).`);
    throw error;
  }
  if (!(dict instanceof Map)) throw new CheckpointFormatError(`${name} has a malformed .npy header: it is not a dict.`);
  const descr = dict.get('descr');
  const fortran = dict.get('fortran_order');
  const shapeValue = dict.get('shape');
  if (typeof descr !== 'string') {
    throw new CheckpointFormatError(
      `${name} stores a structured (record) array, which is not a tensor and is not supported.`,
    );
  }
  if (typeof fortran !== 'boolean')
    throw new CheckpointFormatError(
      `${name} has a malformed .npy header: 'fortran_order' is missing or not a boolean.`,
    );
  if (!Array.isArray(shapeValue) || !shapeValue.every((d): d is number => typeof d === 'number')) {
    throw new CheckpointFormatError(
      `${name} has a malformed .npy header: 'shape' is missing or not a tuple of integers.`,
    );
  }
  const shape = shapeValue;
  const params = checkShape(name, shape);
  const type = parseDescr(descr);
  const dataBytes = params * type.itemBytes;
  if (!Number.isSafeInteger(dataBytes))
    throw new CheckpointFormatError(`${name} declares an array of impossible size.`);
  return {
    ...preamble,
    descr,
    dtype: type.dtype,
    ...(type.reason !== undefined ? { unsupportedReason: type.reason } : {}),
    itemBytes: type.itemBytes,
    littleEndian: type.littleEndian,
    fortranOrder: fortran,
    shape,
    params,
    dataBytes,
  };
}

/** What a NumPy type string means for decoding. */
export interface DescrInfo {
  /** The decodable element type, or undefined (then `reason` says why). */
  readonly dtype: DType | undefined;
  /** Bytes per element as declared (0 when unknown, e.g. object arrays). */
  readonly itemBytes: number;
  /** False for big-endian (`>`) multi-byte types. */
  readonly littleEndian: boolean;
  /** Why the type is not decoded, when `dtype` is undefined. */
  readonly reason?: string;
}

/** Maps a NumPy type string (`<f4`, `>i8`, `|b1`, `<c8`, `|O`, …) to a `DType`, or says why it cannot. */
export function parseDescr(descr: string): DescrInfo {
  const match = /^([<>|=]?)([a-zA-Z])(\d*)$/.exec(descr);
  if (!match)
    return {
      dtype: undefined,
      itemBytes: 0,
      littleEndian: true,
      reason: `NumPy dtype ${quote(descr, 60)} is not supported`,
    };
  const order = match[1] ?? '';
  const kind = match[2] ?? '';
  const size = match[3] === undefined || match[3] === '' ? 0 : Number(match[3]);
  const littleEndian = order !== '>';
  const table: Record<string, DType | undefined> = {
    b1: 'BOOL',
    i1: 'I8',
    i2: 'I16',
    i4: 'I32',
    i8: 'I64',
    u1: 'U8',
    u2: 'U16',
    u4: 'U32',
    u8: 'U64',
    f2: 'F16',
    f4: 'F32',
    f8: 'F64',
  };
  const code = `${kind}${size}`;
  const dtype = Object.hasOwn(table, code) ? table[code] : undefined;
  if (dtype !== undefined && DTYPE_BYTES[dtype] === size)
    return { dtype, itemBytes: size, littleEndian: size === 1 ? true : littleEndian };
  const what: Record<string, string> = {
    c: 'complex numbers',
    U: 'unicode strings',
    S: 'byte strings',
    a: 'byte strings',
    O: 'Python objects (pickled)',
    V: 'raw void records',
    M: 'datetimes',
    m: 'timedeltas',
    f: `${size * 8}-bit floats`,
    i: `${size * 8}-bit integers`,
    u: `${size * 8}-bit unsigned integers`,
  };
  const itemBytes = kind === 'U' ? size * 4 : kind === 'O' ? 0 : size;
  return {
    dtype: undefined,
    itemBytes,
    littleEndian,
    reason: `NumPy dtype ${quote(descr, 60)} (${(Object.hasOwn(what, kind) ? what[kind] : undefined) ?? 'unknown kind'}) is not supported`,
  };
}

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/**
 * Reorders a whole array stored in Fortran (column-major) order into row-major order. `data` holds all
 * `product(shape)` elements of `itemBytes` bytes each; returns a new buffer of the same length (or `data` itself when
 * the order makes no difference: rank ≤ 1 or at most one element).
 */
export function fortranToRowMajor(data: Uint8Array, shape: readonly number[], itemBytes: number): Uint8Array {
  const rank = shape.length;
  const n = data.length / itemBytes;
  if (rank <= 1 || n <= 1) return data;
  const out = new Uint8Array(data.length);
  // Column-major strides in elements: stride[0] = 1, stride[k] = stride[k-1] * shape[k-1].
  const strides = new Array<number>(rank).fill(1);
  for (let k = 1; k < rank; k++) strides[k] = (strides[k - 1] ?? 1) * (shape[k - 1] ?? 1);
  const index = new Array<number>(rank).fill(0);
  let src = 0;
  for (let dst = 0; dst < n; dst++) {
    const from = src * itemBytes;
    const to = dst * itemBytes;
    for (let b = 0; b < itemBytes; b++) out[to + b] = data[from + b] ?? 0;
    // Advance the row-major multi-index (last dimension fastest) and the matching column-major offset.
    for (let k = rank - 1; k >= 0; k--) {
      const dim = shape[k] ?? 1;
      const stride = strides[k] ?? 1;
      const next = (index[k] ?? 0) + 1;
      if (next < dim) {
        index[k] = next;
        src += stride;
        break;
      }
      index[k] = 0;
      src -= (dim - 1) * stride;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// A minimal Python literal parser (the subset `repr` of a dict of strings, ints, bools and tuples produces).

/** A parsed Python literal. Tuples and lists are arrays; dicts are Maps keyed by string. */
export type PyValue = string | number | boolean | null | PyValue[] | Map<string, PyValue>;

class LiteralError extends Error {}

/** Parses one Python literal (dict/tuple/list/str/int/float/bool/None). Throws on anything else; never evaluates. */
export function parsePythonLiteral(text: string): PyValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new LiteralError(`${what} at character ${i}`);
  };
  const skip = (): void => {
    while (i < text.length && /\s/.test(text.charAt(i))) i++;
  };
  const value = (depth: number): PyValue => {
    if (depth > LIMITS.maxNesting) fail('nesting too deep');
    skip();
    const c = text.charAt(i);
    if (c === '{') {
      i++;
      const map = new Map<string, PyValue>();
      for (;;) {
        skip();
        if (text.charAt(i) === '}') {
          i++;
          return map;
        }
        const key = value(depth + 1);
        if (typeof key !== 'string') fail('a dict key that is not a string');
        skip();
        if (text.charAt(i) !== ':') fail("expected ':'");
        i++;
        map.set(key as string, value(depth + 1));
        skip();
        if (text.charAt(i) === ',') i++;
        else if (text.charAt(i) !== '}') fail("expected ',' or '}'");
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const items: PyValue[] = [];
      for (;;) {
        skip();
        if (text.charAt(i) === close) {
          i++;
          return items;
        }
        items.push(value(depth + 1));
        skip();
        if (text.charAt(i) === ',') i++;
        else if (text.charAt(i) !== close) fail(`expected ',' or '${close}'`);
      }
    }
    if (c === "'" || c === '"') {
      i++;
      let s = '';
      while (i < text.length && text.charAt(i) !== c) {
        if (text.charAt(i) === '\\') {
          i++;
          const e = text.charAt(i);
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e;
        } else {
          s += text.charAt(i);
        }
        i++;
      }
      if (i >= text.length) fail('unterminated string');
      i++;
      return s;
    }
    const word = /^[A-Za-z_]+|^[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)L?/.exec(text.slice(i, i + 64));
    if (!word) return fail('unexpected character');
    const token = word[0];
    i += token.length;
    if (token === 'True') return true;
    if (token === 'False') return false;
    if (token === 'None') return null;
    const n = Number(token.replace(/L$/, ''));
    if (Number.isNaN(n)) fail(`unexpected word ${JSON.stringify(token)}`);
    return n;
  };
  const result = value(0);
  skip();
  if (i !== text.length) fail('trailing characters');
  return result;
}
