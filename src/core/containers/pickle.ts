/**
 * A safe Python pickle reader (protocols 0–5) for PyTorch checkpoints. It is a small virtual machine that runs the
 * pickle opcodes but never executes anything: every value it builds is plain data (numbers, strings, bytes, lists,
 * tuples, dicts, sets) or one of a few inert records (a tensor, a storage reference, a NumPy dtype or array). The
 * `GLOBAL`/`STACK_GLOBAL` opcodes resolve names against an allowlist of what a state dict needs (tensor rebuild
 * functions, storage classes, `OrderedDict`, dtypes, NumPy scalars); `REDUCE`, `NEWOBJ` and `BUILD` apply only to
 * those names, each implemented here as a pure data constructor. Any other name (`os.system`, `builtins.eval`, …) is
 * refused by name before anything could use it.
 *
 * Hostile input is bounded: stack, memo and mark-stack sizes, container nesting (`LIMITS.maxNesting`), and every
 * length field is checked against the bytes that remain, so a lying length never allocates.
 */
import { CheckpointFormatError, formatBytes } from '../io/errors';
import { LIMITS } from '../io/limits';
import type { DType } from '../tensors/dtype';
import { parseDescr } from './npy';

/** A Python list (mutable). */
export interface PickleList {
  readonly kind: 'list';
  readonly items: PickleValue[];
}

/** A Python tuple (also `torch.Size`). */
export interface PickleTuple {
  readonly kind: 'tuple';
  readonly items: readonly PickleValue[];
}

/** A Python set or frozenset. */
export interface PickleSet {
  readonly kind: 'set';
  readonly frozen: boolean;
  readonly items: PickleValue[];
}

/** An allowlisted Python name used as a value (a dtype such as `torch.float16`, a storage class, `numpy.ndarray`). */
export interface PickleGlobal {
  readonly kind: 'global';
  readonly module: string;
  readonly name: string;
}

/**
 * An inert instance of an allowed class that has no data meaning of its own (`builtins.slice`, `torch.device`, or a
 * TorchScript `__torch__.*` module when `inertClass` allows it). `state` is what `BUILD` gave it, if anything.
 */
export interface PickleObject {
  readonly kind: 'object';
  /** `module.name` of the class. */
  readonly className: string;
  readonly args: readonly PickleValue[];
  state: PickleValue | undefined;
}

/** A reference to tensor storage saved beside the pickle (PyTorch persistent id `('storage', type, key, location, numel)`). */
export interface TorchStorage {
  readonly kind: 'storage';
  /** Storage class name, e.g. `FloatStorage`. */
  readonly storageType: string;
  /** PyTorch dtype name, e.g. `float32`. */
  readonly torchDtype: string;
  /** The decodable dtype, or undefined for complex and quantised storages. */
  readonly dtype: DType | undefined;
  /** Bytes per element. */
  readonly itemBytes: number;
  /** Key of the storage record (`data/<key>` in a zip checkpoint). */
  readonly key: string;
  /** Device it was saved from, e.g. `cpu` or `cuda:0`. */
  readonly location: string;
  /** Number of elements in the storage. */
  readonly numel: number;
}

/** A tensor rebuilt by `torch._utils._rebuild_tensor_v2` & co.: a strided view into a storage. Units are elements. */
export interface TorchTensor {
  readonly kind: 'tensor';
  readonly storage: TorchStorage;
  /** Offset of element 0 in the storage, in elements. */
  readonly storageOffset: number;
  readonly shape: readonly number[];
  /** Stride of each dimension, in elements. */
  readonly stride: readonly number[];
  readonly requiresGrad: boolean;
  /** True if it was saved as an `nn.Parameter`. */
  readonly parameter: boolean;
}

/** A NumPy dtype object (`numpy.dtype('f8')`, with the byte order set by `BUILD`). */
export interface NumpyDtype {
  readonly kind: 'npdtype';
  /** Type code without byte order, e.g. `f8`, `i4`, `b1`, `U5`. */
  readonly code: string;
  /** `<`, `>`, `|` or `=` as NumPy reports it. */
  byteOrder: string;
  /** True if it has named fields (a structured dtype, not decoded). */
  structured: boolean;
}

/** A NumPy array pickled in-band (`numpy.core.multiarray._reconstruct` + `BUILD`, or `_frombuffer`). */
export interface NumpyArray {
  readonly kind: 'ndarray';
  dtype: NumpyDtype | undefined;
  shape: readonly number[];
  fortranOrder: boolean;
  /** Raw element bytes, or undefined for object arrays (whose elements are pickled objects, not decoded). */
  data: Uint8Array | undefined;
}

/** A Python dict (also `collections.OrderedDict`): insertion-ordered entries with Python-like key equality. */
export class PickleDict {
  readonly kind = 'dict';
  /** Entries in insertion order. */
  readonly entries: [PickleValue, PickleValue][] = [];
  /** Instance attributes set by `BUILD` (a state dict's `_metadata`), if any. */
  attributes: PickleValue | undefined;
  private readonly index = new Map<unknown, number>();
  constructor(readonly ordered: boolean) {}

  /** Sets `key` to `value`, replacing an equal key's value in place (as Python does). */
  set(key: PickleValue, value: PickleValue): void {
    const k = dictKey(key);
    const at = this.index.get(k);
    if (at !== undefined) {
      const entry = this.entries[at];
      if (entry) entry[1] = value;
      return;
    }
    this.index.set(k, this.entries.length);
    this.entries.push([key, value]);
  }

  /** The value for a string key, or undefined. */
  get(key: string): PickleValue | undefined {
    const at = this.index.get(dictKey(key));
    return at === undefined ? undefined : this.entries[at]?.[1];
  }
}

/** Any value the safe unpickler can produce. Integers beyond 2^53 are `bigint`; bytes and bytearrays are `Uint8Array`. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleList
  | PickleTuple
  | PickleDict
  | PickleSet
  | PickleGlobal
  | PickleObject
  | TorchStorage
  | TorchTensor
  | NumpyDtype
  | NumpyArray;

/** Options of `unpickle`. */
export interface UnpickleOptions {
  /** Names the input in messages, e.g. `model.pt` or `model.pt:archive/data.pkl`. */
  readonly label: string;
  /**
   * Resolves a persistent id (`BINPERSID`/`PERSID`). Default: PyTorch storage references
   * `('storage', <storage class>, key, location, numel)`; anything else is refused.
   */
  readonly persistentLoad?: (pid: PickleValue) => PickleValue;
  /**
   * Classes outside the allowlist that may still be *instantiated as inert records* (never called): used for
   * TorchScript archives, whose `__torch__.*` module classes carry only a state dict. Default: none.
   */
  readonly inertClass?: (module: string, name: string) => boolean;
}

/** Result of `unpickle`: the value and where the pickle's STOP opcode ended (a stream may hold several pickles). */
export interface UnpickleResult {
  readonly value: PickleValue;
  /** Offset just after the STOP opcode. */
  readonly end: number;
}

/** Most entries on the pickle stack at once: pickle batches containers in runs of 1000 items, so 1 Mi is generous. */
const MAX_STACK = 1 << 20;
/** Most memo slots: a state dict memoises ~10 objects per tensor, so 16 Mi covers LIMITS.maxTensors-sized files. */
const MAX_MEMO = 1 << 24;
/** Longest text line of a protocol-0 opcode holding a number or a name. */
const MAX_LINE = 64 * 1024;
/** Largest LONG1/LONG4 integer accepted, in bytes: real pickles never exceed a few dozen. */
const MAX_LONG_BYTES = 4096;

/** Storage classes a state dict may name, with the element type each holds. */
const STORAGE_TYPES: Readonly<Record<string, { torchDtype: string; itemBytes: number; dtype: DType | undefined }>> = {
  FloatStorage: { torchDtype: 'float32', itemBytes: 4, dtype: 'F32' },
  DoubleStorage: { torchDtype: 'float64', itemBytes: 8, dtype: 'F64' },
  HalfStorage: { torchDtype: 'float16', itemBytes: 2, dtype: 'F16' },
  BFloat16Storage: { torchDtype: 'bfloat16', itemBytes: 2, dtype: 'BF16' },
  LongStorage: { torchDtype: 'int64', itemBytes: 8, dtype: 'I64' },
  IntStorage: { torchDtype: 'int32', itemBytes: 4, dtype: 'I32' },
  ShortStorage: { torchDtype: 'int16', itemBytes: 2, dtype: 'I16' },
  CharStorage: { torchDtype: 'int8', itemBytes: 1, dtype: 'I8' },
  ByteStorage: { torchDtype: 'uint8', itemBytes: 1, dtype: 'U8' },
  BoolStorage: { torchDtype: 'bool', itemBytes: 1, dtype: 'BOOL' },
  UInt16Storage: { torchDtype: 'uint16', itemBytes: 2, dtype: 'U16' },
  UInt32Storage: { torchDtype: 'uint32', itemBytes: 4, dtype: 'U32' },
  UInt64Storage: { torchDtype: 'uint64', itemBytes: 8, dtype: 'U64' },
  Float8_e4m3fnStorage: { torchDtype: 'float8_e4m3fn', itemBytes: 1, dtype: 'F8_E4M3' },
  Float8_e5m2Storage: { torchDtype: 'float8_e5m2', itemBytes: 1, dtype: 'F8_E5M2' },
  Float8_e4m3fnuzStorage: { torchDtype: 'float8_e4m3fnuz', itemBytes: 1, dtype: undefined },
  Float8_e5m2fnuzStorage: { torchDtype: 'float8_e5m2fnuz', itemBytes: 1, dtype: undefined },
  ComplexFloatStorage: { torchDtype: 'complex64', itemBytes: 8, dtype: undefined },
  ComplexDoubleStorage: { torchDtype: 'complex128', itemBytes: 16, dtype: undefined },
  QInt8Storage: { torchDtype: 'qint8', itemBytes: 1, dtype: undefined },
  QUInt8Storage: { torchDtype: 'quint8', itemBytes: 1, dtype: undefined },
  QInt32Storage: { torchDtype: 'qint32', itemBytes: 4, dtype: undefined },
  QUInt4x2Storage: { torchDtype: 'quint4x2', itemBytes: 1, dtype: undefined },
  QUInt2x4Storage: { torchDtype: 'quint2x4', itemBytes: 1, dtype: undefined },
  UntypedStorage: { torchDtype: 'uint8', itemBytes: 1, dtype: 'U8' },
};

/** `torch.<dtype>` names that may appear as values (saved configs, newer tensor metadata). */
const TORCH_DTYPES = new Set([
  'float32',
  'float',
  'float64',
  'double',
  'float16',
  'half',
  'bfloat16',
  'int64',
  'long',
  'int32',
  'int',
  'int16',
  'short',
  'int8',
  'uint8',
  'bool',
  'uint16',
  'uint32',
  'uint64',
  'complex64',
  'cfloat',
  'complex128',
  'cdouble',
  'float8_e4m3fn',
  'float8_e5m2',
  'float8_e4m3fnuz',
  'float8_e5m2fnuz',
  'qint8',
  'quint8',
  'qint32',
  'quint4x2',
  'contiguous_format',
  'channels_last',
  'preserve_format',
  'strided',
]);

/** Python 2 module names that protocol ≤ 2 pickles use for Python 3 names (`fix_imports`). */
const PY2_MODULES: Readonly<Record<string, string>> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

/** Callables that `REDUCE`/`NEWOBJ` may apply, as `module.name`. Each is implemented by `callGlobal` as a data constructor. */
const CALLABLE = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch._tensor._rebuild_from_type_v2',
  'torch.Size',
  'torch.device',
  'builtins.set',
  'builtins.frozenset',
  'builtins.slice',
  'builtins.bytearray',
  'builtins.bytes',
  'builtins.list',
  'builtins.tuple',
  'builtins.dict',
  '_codecs.encode',
  'numpy.dtype',
  'numpy.core.multiarray.scalar',
  'numpy._core.multiarray.scalar',
  'numpy.core.multiarray._reconstruct',
  'numpy._core.multiarray._reconstruct',
  'numpy.core.numeric._frombuffer',
  'numpy._core.numeric._frombuffer',
  'torch.jit._pickle.build_intlist',
  'torch.jit._pickle.build_doublelist',
  'torch.jit._pickle.build_boollist',
  'torch.jit._pickle.build_tensorlist',
  'torch.jit._pickle.restore_type_tag',
]);

/** True if `module.name` may be named by a checkpoint (callable or used as a plain value). */
function isAllowed(module: string, name: string): boolean {
  const full = `${module}.${name}`;
  if (CALLABLE.has(full)) return true;
  if ((module === 'torch' || module === 'torch.storage') && Object.prototype.hasOwnProperty.call(STORAGE_TYPES, name))
    return true;
  if (module === 'torch' && TORCH_DTYPES.has(name)) return true;
  if (full === 'torch.Tensor' || full === 'torch.nn.parameter.Parameter' || full === 'numpy.ndarray') return true;
  return false;
}

/**
 * Most scalars a tuple key may hold (nested tuples included) to be compared by value; larger ones (a hostile 20,000-
 * element key) are compared by identity, so building a dict stays linear in the pickle's size.
 */
const MAX_TUPLE_KEY_ITEMS = 64;

/** The value key of a scalar: equal numbers, strings and booleans collide as in Python. */
function scalarKey(key: PickleValue): string | undefined {
  if (key === null) return 'N';
  switch (typeof key) {
    case 'string':
      return `s${key}`;
    case 'number':
      return `n${String(key)}`;
    case 'bigint':
      return `n${key.toString()}`;
    case 'boolean':
      return `n${key ? 1 : 0}`;
    default:
      return undefined;
  }
}

/** The value key of a tuple of scalars and small tuples, or undefined when it is too large or holds other objects. */
function tupleKey(tuple: PickleTuple, budget: { left: number }): string | undefined {
  const parts: string[] = [];
  for (const item of tuple.items) {
    if (--budget.left < 0) return undefined;
    const scalar = scalarKey(item);
    if (scalar !== undefined) {
      parts.push(scalar);
      continue;
    }
    if (
      item === null ||
      typeof item !== 'object' ||
      item instanceof Uint8Array ||
      item instanceof PickleDict ||
      item.kind !== 'tuple'
    )
      return undefined;
    const nested = tupleKey(item, budget);
    if (nested === undefined) return undefined;
    parts.push(`(${nested})`);
  }
  return parts.join('\u0000');
}

/**
 * A key for Python-like dict equality: equal numbers, strings and booleans collide, and so do equal small tuples of
 * them; other objects (and large tuples) by identity.
 */
function dictKey(key: PickleValue): unknown {
  const scalar = scalarKey(key);
  if (scalar !== undefined) return scalar;
  if (
    key !== null &&
    typeof key === 'object' &&
    !(key instanceof Uint8Array) &&
    !(key instanceof PickleDict) &&
    key.kind === 'tuple'
  ) {
    const value = tupleKey(key, { left: MAX_TUPLE_KEY_ITEMS });
    if (value !== undefined) return `t${value}`;
  }
  return key;
}

/** A short description of a value's type for messages (`a str`, `a list`, …). */
export function describeValue(v: PickleValue): string {
  if (v === null) return 'None';
  if (v instanceof Uint8Array) return 'bytes';
  switch (typeof v) {
    case 'boolean':
      return 'a bool';
    case 'number':
      return Number.isInteger(v) ? 'an int' : 'a float';
    case 'bigint':
      return 'an int';
    case 'string':
      return 'a str';
    default:
      if (v instanceof PickleDict) return 'a dict';
      switch (v.kind) {
        case 'global':
          return `${v.module}.${v.name}`;
        case 'object':
          return `a ${v.className} object`;
        case 'storage':
          return `a ${v.storageType}`;
        case 'tensor':
          return 'a tensor';
        case 'npdtype':
          return 'a NumPy dtype';
        case 'ndarray':
          return 'a NumPy array';
        default:
          return `a ${v.kind}`;
      }
  }
}

/** A short Python-like rendering of a value for messages and metadata (at most `limit` characters). */
export function shortRepr(v: PickleValue, limit = 60): string {
  let text: string;
  if (v === null) text = 'None';
  else if (v instanceof Uint8Array) text = `<${v.length} bytes>`;
  else if (typeof v === 'string') text = JSON.stringify(v);
  else if (typeof v === 'boolean') text = v ? 'True' : 'False';
  else if (typeof v === 'number' || typeof v === 'bigint') text = String(v);
  else text = describeValue(v);
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/** Signed little-endian two's-complement integer of `bytes`, as a number when safe and a bigint otherwise. */
function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i] ?? 0);
  if (((bytes[bytes.length - 1] ?? 0) & 0x80) !== 0) v -= 1n << BigInt(bytes.length * 8);
  return toNumberIfSafe(v);
}

function toNumberIfSafe(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Parses Python's `repr` escapes of a protocol-0 `STRING` line (without the quotes) to a latin-1 string. */
function unescapePyString(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? '';
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = text[++i] ?? '';
    switch (n) {
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case '0':
        out += '\0';
        break;
      case 'x':
        out += String.fromCharCode(parseInt(text.slice(i + 1, i + 3), 16) || 0);
        i += 2;
        break;
      default:
        out += n;
    }
  }
  return out;
}

/** Decodes a protocol-0 `UNICODE` line (raw-unicode-escape: `\uXXXX`, `\UXXXXXXXX`, other bytes latin-1). */
function rawUnicodeEscape(text: string): string {
  return text.replace(
    /\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g,
    (_m, four: string | undefined, eight: string | undefined) => {
      const code = parseInt(four ?? eight ?? '0', 16);
      return code <= 0x10ffff ? String.fromCodePoint(code) : '\ufffd';
    },
  );
}

/**
 * Runs the pickle in `bytes` from `start` and returns the value at its STOP opcode. Never executes anything; throws
 * `CheckpointFormatError` naming any global outside the allowlist, any malformed or truncated opcode, and any
 * stack/memo/nesting/length limit exceeded.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions, start = 0): UnpickleResult {
  return new Machine(bytes, options).run(start);
}

class Machine {
  private pos = 0;
  private stack: PickleValue[] = [];
  private readonly marks: number[] = [];
  private readonly memo: PickleValue[] = [];
  private readonly sparseMemo = new Map<number, PickleValue>();
  private readonly depth = new WeakMap<object, number>();
  private readonly view: DataView;
  private readonly label: string;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly options: UnpickleOptions,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.label = options.label;
  }

  private err(message: string): CheckpointFormatError {
    return new CheckpointFormatError(`${this.label} ${message}`);
  }
  private fail(message: string): never {
    throw this.err(message);
  }

  // ---- input ----

  private need(n: number, what: string): void {
    if (!Number.isSafeInteger(n) || n < 0 || this.pos + n > this.bytes.length) {
      this.fail(
        `is truncated or corrupt: its pickle needs ${formatBytes(n)} for ${what} at offset ${this.pos} but only ${formatBytes(Math.max(0, this.bytes.length - this.pos))} remain.`,
      );
    }
  }
  private take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  private u8(): number {
    this.need(1, 'a 1-byte argument');
    return this.bytes[this.pos++] ?? 0;
  }
  private u16(): number {
    this.need(2, 'a 2-byte argument');
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  private u32(): number {
    this.need(4, 'a 4-byte argument');
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private i32(): number {
    this.need(4, 'a 4-byte argument');
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private u64(what: string): number {
    this.need(8, 'an 8-byte length');
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    const v = hi * 0x100000000 + lo;
    if (hi >= 0x200000) this.fail(`is corrupt: its pickle declares ${what} of ${v} bytes, beyond any real file.`);
    return v;
  }
  /** A protocol-0 text argument up to (not including) the next newline. */
  private line(limit = MAX_LINE): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) this.fail(`is truncated: a text opcode at offset ${this.pos} has no terminating newline.`);
    if (end - this.pos > limit)
      this.fail(`is corrupt: a text opcode argument at offset ${this.pos} is ${formatBytes(end - this.pos)} long.`);
    const text = latin1(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return text;
  }

  // ---- stack ----

  /** Stack index where the current marked run starts: values below it belong to an enclosing run. */
  private base(): number {
    return this.marks[this.marks.length - 1] ?? 0;
  }
  private push(v: PickleValue): void {
    if (this.stack.length >= MAX_STACK)
      this.fail(`has a pickle whose stack grows past ${MAX_STACK} entries; refusing it as hostile.`);
    this.stack.push(v);
  }
  private pop(): PickleValue {
    const v = this.stack.length > this.base() ? this.stack.pop() : undefined;
    if (v === undefined) this.fail(`is corrupt: its pickle pops from an empty stack at offset ${this.pos - 1}.`);
    return v;
  }
  private top(): PickleValue {
    const v = this.stack.length > this.base() ? this.stack[this.stack.length - 1] : undefined;
    if (v === undefined) this.fail(`is corrupt: its pickle reads an empty stack at offset ${this.pos - 1}.`);
    return v;
  }
  /** POP: drops the top value, or the mark itself when nothing is above it (as Python does). */
  private discard(): void {
    if (this.marks.length > 0 && this.stack.length === this.base()) this.marks.pop();
    else this.pop();
  }
  private pushMark(): void {
    if (this.marks.length >= LIMITS.maxNesting) {
      this.fail(`nests pickle MARKs deeper than ${LIMITS.maxNesting} levels; refusing it as hostile.`);
    }
    this.marks.push(this.stack.length);
  }
  /** Pops everything above the most recent MARK (and the mark itself). */
  private popMark(): PickleValue[] {
    const at = this.marks.pop();
    if (at === undefined)
      this.fail(`is corrupt: its pickle closes a MARK that was never opened (offset ${this.pos - 1}).`);
    return this.stack.splice(at);
  }

  // ---- memo ----

  private memoPut(index: number, v: PickleValue): void {
    if (index === this.memo.length) {
      if (this.memo.length + this.sparseMemo.size >= MAX_MEMO)
        this.fail(`uses more than ${MAX_MEMO} pickle memo slots; refusing it as hostile.`);
      this.memo.push(v);
      // Fold a contiguous run of earlier out-of-order slots back into the dense array.
      while (this.sparseMemo.size > 0 && this.sparseMemo.has(this.memo.length)) {
        const next = this.sparseMemo.get(this.memo.length) ?? null;
        this.sparseMemo.delete(this.memo.length);
        this.memo.push(next);
      }
    } else if (index < this.memo.length) {
      this.memo[index] = v;
    } else {
      if (!Number.isSafeInteger(index) || index < 0) this.fail(`is corrupt: invalid pickle memo slot ${index}.`);
      if (this.memo.length + this.sparseMemo.size >= MAX_MEMO)
        this.fail(`uses more than ${MAX_MEMO} pickle memo slots; refusing it as hostile.`);
      this.sparseMemo.set(index, v);
    }
  }
  private memoGet(index: number): PickleValue {
    const v = index < this.memo.length ? this.memo[index] : this.sparseMemo.get(index);
    if (v === undefined)
      this.fail(`is corrupt or hostile: its pickle refers to memo slot ${index}, which was never stored.`);
    return v;
  }

  // ---- nesting ----

  private depthOf(v: PickleValue): number {
    return v !== null && typeof v === 'object' ? (this.depth.get(v) ?? 0) : 0;
  }
  /** Records that `child` is now inside `container`, failing when the nesting passes `LIMITS.maxNesting`. */
  private nest(container: object, child: PickleValue): void {
    const d = this.depthOf(child) + 1;
    if (d > (this.depth.get(container) ?? 0)) {
      if (d > LIMITS.maxNesting)
        this.fail(`nests containers deeper than ${LIMITS.maxNesting} levels; refusing it as hostile.`);
      this.depth.set(container, d);
    }
  }
  private makeTuple(items: PickleValue[]): PickleTuple {
    const t: PickleTuple = { kind: 'tuple', items };
    for (const item of items) this.nest(t, item);
    return t;
  }

  // ---- the loop ----

  run(start: number): UnpickleResult {
    this.pos = start;
    for (;;) {
      const at = this.pos;
      if (at >= this.bytes.length) this.fail(`is truncated: its pickle ends at offset ${at} without a STOP opcode.`);
      const op = this.bytes[this.pos++] ?? 0;
      switch (op) {
        case 0x80: {
          // PROTO
          const proto = this.u8();
          if (proto > 5) this.fail(`uses pickle protocol ${proto}; only protocols 0–5 are known.`);
          break;
        }
        case 0x95: {
          // FRAME: a length hint only
          const n = this.u64('a frame');
          this.need(n, 'a pickle frame');
          break;
        }
        case 0x2e: // STOP
          return { value: this.pop(), end: this.pos };
        case 0x28:
          this.pushMark();
          break; // MARK
        case 0x30:
          this.discard();
          break; // POP
        case 0x31:
          this.popMark();
          break; // POP_MARK
        case 0x32:
          this.push(this.top());
          break; // DUP
        case 0x4e:
          this.push(null);
          break; // NONE
        case 0x88:
          this.push(true);
          break; // NEWTRUE
        case 0x89:
          this.push(false);
          break; // NEWFALSE
        case 0x4a:
          this.push(this.i32());
          break; // BININT
        case 0x4b:
          this.push(this.u8());
          break; // BININT1
        case 0x4d:
          this.push(this.u16());
          break; // BININT2
        case 0x8a:
          this.push(decodeLong(this.take(this.u8(), 'a LONG1 integer')));
          break; // LONG1
        case 0x8b: {
          // LONG4
          const n = this.i32();
          if (n < 0 || n > MAX_LONG_BYTES) this.fail(`is corrupt or hostile: its pickle has a ${n}-byte integer.`);
          this.push(decodeLong(this.take(n, 'a LONG4 integer')));
          break;
        }
        case 0x49:
          this.push(this.parseIntLine(this.line()));
          break; // INT
        case 0x4c:
          this.push(this.parseIntLine(this.line().replace(/L$/, '')));
          break; // LONG
        case 0x46: {
          // FLOAT
          const text = this.line().trim();
          const v = Number(text);
          if (text === '' || (Number.isNaN(v) && !/^[-+]?nan$/i.test(text)))
            this.fail(`is corrupt: invalid FLOAT literal ${JSON.stringify(text.slice(0, 40))}.`);
          this.push(v);
          break;
        }
        case 0x47: {
          // BINFLOAT (big-endian)
          this.need(8, 'a float');
          this.push(this.view.getFloat64(this.pos, false));
          this.pos += 8;
          break;
        }
        case 0x58:
          this.push(utf8.decode(this.take(this.u32(), 'a string')));
          break; // BINUNICODE
        case 0x8c:
          this.push(utf8.decode(this.take(this.u8(), 'a string')));
          break; // SHORT_BINUNICODE
        case 0x8d:
          this.push(utf8.decode(this.take(this.u64('a string'), 'a string')));
          break; // BINUNICODE8
        case 0x56:
          this.push(rawUnicodeEscape(this.line(this.bytes.length)));
          break; // UNICODE
        case 0x53: {
          // STRING: a quoted repr
          const text = this.line(this.bytes.length);
          const q = text[0];
          if (text.length < 2 || (q !== "'" && q !== '"') || text[text.length - 1] !== q)
            this.fail('is corrupt: a STRING opcode is not quoted.');
          this.push(unescapePyString(text.slice(1, -1)));
          break;
        }
        case 0x54: {
          // BINSTRING (Python 2 str, decoded as latin-1)
          const n = this.i32();
          if (n < 0) this.fail('is corrupt: a BINSTRING has a negative length.');
          this.push(latin1(this.take(n, 'a string')));
          break;
        }
        case 0x55:
          this.push(latin1(this.take(this.u8(), 'a string')));
          break; // SHORT_BINSTRING
        case 0x42:
          this.push(this.take(this.u32(), 'bytes').slice());
          break; // BINBYTES
        case 0x43:
          this.push(this.take(this.u8(), 'bytes').slice());
          break; // SHORT_BINBYTES
        case 0x8e:
          this.push(this.take(this.u64('bytes'), 'bytes').slice());
          break; // BINBYTES8
        case 0x96:
          this.push(this.take(this.u64('a bytearray'), 'a bytearray').slice());
          break; // BYTEARRAY8
        case 0x97:
          throw this.err('uses an out-of-band pickle buffer (NEXT_BUFFER), which a checkpoint file cannot supply.');
        case 0x98:
          break; // READONLY_BUFFER: no-op on in-band data
        case 0x29:
          this.push({ kind: 'tuple', items: [] });
          break; // EMPTY_TUPLE
        case 0x85:
          this.push(this.makeTuple([this.pop()]));
          break; // TUPLE1
        case 0x86: {
          // TUPLE2
          const b = this.pop();
          const a = this.pop();
          this.push(this.makeTuple([a, b]));
          break;
        }
        case 0x87: {
          // TUPLE3
          const c = this.pop();
          const b = this.pop();
          const a = this.pop();
          this.push(this.makeTuple([a, b, c]));
          break;
        }
        case 0x74:
          this.push(this.makeTuple(this.popMark()));
          break; // TUPLE
        case 0x5d:
          this.push({ kind: 'list', items: [] });
          break; // EMPTY_LIST
        case 0x6c: {
          // LIST
          const list: PickleList = { kind: 'list', items: [] };
          for (const item of this.popMark()) this.appendTo(list, item);
          this.push(list);
          break;
        }
        case 0x61: {
          // APPEND
          const item = this.pop();
          this.appendTo(this.top(), item);
          break;
        }
        case 0x65: {
          // APPENDS
          const items = this.popMark();
          const target = this.top();
          for (const item of items) this.appendTo(target, item);
          break;
        }
        case 0x7d:
          this.push(new PickleDict(false));
          break; // EMPTY_DICT
        case 0x64: {
          // DICT
          const items = this.popMark();
          const dict = new PickleDict(false);
          this.setItems(dict, items);
          this.push(dict);
          break;
        }
        case 0x73: {
          // SETITEM
          const value = this.pop();
          const key = this.pop();
          this.setItems(this.top(), [key, value]);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        }
        case 0x8f:
          this.push({ kind: 'set', frozen: false, items: [] });
          break; // EMPTY_SET
        case 0x90: {
          // ADDITEMS
          const items = this.popMark();
          const target = this.top();
          if (
            target === null ||
            typeof target !== 'object' ||
            target instanceof Uint8Array ||
            target instanceof PickleDict ||
            target.kind !== 'set'
          ) {
            this.fail(`is corrupt: its pickle adds set items to ${describeValue(target)}.`);
          }
          for (const item of items) {
            target.items.push(item);
            this.nest(target, item);
          }
          break;
        }
        case 0x91: {
          // FROZENSET
          const set: PickleSet = { kind: 'set', frozen: true, items: this.popMark() };
          for (const item of set.items) this.nest(set, item);
          this.push(set);
          break;
        }
        case 0x71:
          this.memoPut(this.u8(), this.top());
          break; // BINPUT
        case 0x72:
          this.memoPut(this.u32(), this.top());
          break; // LONG_BINPUT
        case 0x70:
          this.memoPut(this.parseIndexLine(), this.top());
          break; // PUT
        case 0x94:
          this.memoPut(this.memo.length, this.top());
          break; // MEMOIZE
        case 0x68:
          this.push(this.memoGet(this.u8()));
          break; // BINGET
        case 0x6a:
          this.push(this.memoGet(this.u32()));
          break; // LONG_BINGET
        case 0x67:
          this.push(this.memoGet(this.parseIndexLine()));
          break; // GET
        case 0x63: {
          // GLOBAL
          const module = this.line();
          const name = this.line();
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string')
            this.fail('is corrupt: STACK_GLOBAL needs two strings.');
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = this.pop();
          const callable = this.pop();
          this.push(this.call(callable, this.argsOf(args, 'REDUCE')));
          break;
        }
        case 0x81: {
          // NEWOBJ
          const args = this.pop();
          const cls = this.pop();
          this.push(this.instantiate(cls, this.argsOf(args, 'NEWOBJ')));
          break;
        }
        case 0x92: {
          // NEWOBJ_EX
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!(kwargs instanceof PickleDict) || kwargs.entries.length > 0)
            this.fail('uses NEWOBJ_EX with keyword arguments, which is not supported.');
          this.push(this.instantiate(cls, this.argsOf(args, 'NEWOBJ_EX')));
          break;
        }
        case 0x69: {
          // INST: module, name lines, then args since MARK
          const module = this.line();
          const name = this.line();
          const cls = this.resolveGlobal(module, name);
          this.push(this.instantiate(cls, this.popMark()));
          break;
        }
        case 0x6f: {
          // OBJ: MARK cls args... OBJ
          const items = this.popMark();
          const cls = items.shift();
          if (cls === undefined) this.fail('is corrupt: OBJ without a class.');
          this.push(this.instantiate(cls, items));
          break;
        }
        case 0x62: {
          // BUILD
          const state = this.pop();
          this.build(this.top(), state);
          break;
        }
        case 0x51:
          this.push(this.persistentLoad(this.pop()));
          break; // BINPERSID
        case 0x50:
          this.push(this.persistentLoad(this.line()));
          break; // PERSID
        case 0x82:
        case 0x83:
        case 0x84:
          throw this.err(
            'uses the pickle extension registry (EXT opcodes), which a checkpoint never needs; refusing it.',
          );
        default:
          this.fail(
            `is corrupt or not a pickle: unknown pickle opcode 0x${op.toString(16).padStart(2, '0')} at offset ${at}.`,
          );
      }
    }
  }

  private parseIntLine(text: string): number | bigint | boolean {
    const t = text.trim();
    if (t === '01') return true;
    if (t === '00') return false;
    if (!/^[-+]?\d+$/.test(t)) this.fail(`is corrupt: invalid INT literal ${JSON.stringify(t.slice(0, 40))}.`);
    return toNumberIfSafe(BigInt(t));
  }
  private parseIndexLine(): number {
    const t = this.line().trim();
    if (!/^\d{1,15}$/.test(t)) this.fail(`is corrupt: invalid memo index ${JSON.stringify(t.slice(0, 40))}.`);
    return Number(t);
  }

  private appendTo(target: PickleValue, item: PickleValue): void {
    if (
      target === null ||
      typeof target !== 'object' ||
      target instanceof Uint8Array ||
      target instanceof PickleDict ||
      target.kind !== 'list'
    ) {
      this.fail(`is corrupt or unsupported: its pickle appends to ${describeValue(target)}.`);
    }
    target.items.push(item);
    this.nest(target, item);
  }

  private setItems(target: PickleValue, items: readonly PickleValue[]): void {
    if (!(target instanceof PickleDict))
      this.fail(`is corrupt or unsupported: its pickle sets items on ${describeValue(target)}.`);
    if (items.length % 2 !== 0) this.fail('is corrupt: SETITEMS has an odd number of items.');
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i] ?? null;
      const value = items[i + 1] ?? null;
      target.set(key, value);
      this.nest(target, key);
      this.nest(target, value);
    }
  }

  private argsOf(args: PickleValue, opcode: string): PickleValue[] {
    if (
      args === null ||
      typeof args !== 'object' ||
      args instanceof Uint8Array ||
      args instanceof PickleDict ||
      args.kind !== 'tuple'
    ) {
      this.fail(`is corrupt: ${opcode} needs an argument tuple but got ${describeValue(args)}.`);
    }
    return [...args.items];
  }

  // ---- globals ----

  private resolveGlobal(rawModule: string, name: string): PickleGlobal {
    // Own keys only: a module or class name from the file must never reach Object.prototype.
    const module = (Object.hasOwn(PY2_MODULES, rawModule) ? PY2_MODULES[rawModule] : undefined) ?? rawModule;
    if (isAllowed(module, name) || this.options.inertClass?.(module, name) === true)
      return { kind: 'global', module, name };
    const shown = `${module}.${name}`.slice(0, 200);
    throw new CheckpointFormatError(
      `${this.label} refers to the Python global ${shown}, which Weight Lens does not allow in a checkpoint (only plain tensors and containers are accepted); it was not executed.`,
    );
  }

  private asGlobal(v: PickleValue, what: string): PickleGlobal {
    if (
      v === null ||
      typeof v !== 'object' ||
      v instanceof Uint8Array ||
      v instanceof PickleDict ||
      v.kind !== 'global'
    ) {
      this.fail(`is corrupt: its pickle ${what} ${describeValue(v)}, which is not callable.`);
    }
    return v;
  }

  /** NEWOBJ / INST / OBJ: `cls.__new__(cls, *args)` for the allowed classes; inert records for allowed inert classes. */
  private instantiate(clsValue: PickleValue, args: PickleValue[]): PickleValue {
    const cls = this.asGlobal(clsValue, 'instantiates');
    const full = `${cls.module}.${cls.name}`;
    if (CALLABLE.has(full) && !full.includes('._'))
      return this.call(cls, full === 'collections.OrderedDict' ? [] : args);
    if (this.options.inertClass?.(cls.module, cls.name) === true) {
      const obj: PickleObject = { kind: 'object', className: full, args, state: undefined };
      for (const a of args) this.nest(obj, a);
      return obj;
    }
    this.fail(`instantiates ${full}, which is not a data class Weight Lens accepts.`);
  }

  /** REDUCE: applies an allowed callable to `args`, as a pure data constructor. */
  private call(callableValue: PickleValue, args: PickleValue[]): PickleValue {
    const fn = this.asGlobal(callableValue, 'calls');
    const full = `${fn.module}.${fn.name}`;
    const arg = (i: number): PickleValue => args[i] ?? null;
    switch (full) {
      case 'collections.OrderedDict':
      case 'builtins.dict': {
        const dict = new PickleDict(full === 'collections.OrderedDict');
        const init = args[0];
        if (init !== undefined) {
          if (init instanceof PickleDict) {
            for (const [k, v] of init.entries) dict.set(k, v);
          } else {
            for (const pair of this.sequence(init, full)) {
              const kv = this.sequence(pair, full);
              if (kv.length !== 2) this.fail(`is corrupt: ${full} got a pair of ${kv.length} items.`);
              dict.set(kv[0] ?? null, kv[1] ?? null);
            }
          }
          for (const [k, v] of dict.entries) {
            this.nest(dict, k);
            this.nest(dict, v);
          }
        }
        return dict;
      }
      case 'torch._utils._rebuild_tensor':
      case 'torch._utils._rebuild_tensor_v2':
        return this.rebuildTensor(arg(0), arg(1), arg(2), arg(3), arg(4) === true, false);
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state': {
        const t = arg(0);
        if (
          t === null ||
          typeof t !== 'object' ||
          t instanceof Uint8Array ||
          t instanceof PickleDict ||
          t.kind !== 'tensor'
        ) {
          this.fail(`is corrupt: ${full} got ${describeValue(t)} instead of a tensor.`);
        }
        return { ...t, requiresGrad: arg(1) === true, parameter: true };
      }
      case 'torch._tensor._rebuild_from_type_v2': {
        const inner = this.asGlobal(arg(0), 'rebuilds with');
        const type = this.asGlobal(arg(1), 'rebuilds as');
        const typeName = `${type.module}.${type.name}`;
        if (typeName !== 'torch.Tensor' && typeName !== 'torch.nn.parameter.Parameter') {
          this.fail(`rebuilds a tensor as ${typeName}, which is not a tensor class Weight Lens accepts.`);
        }
        return this.call(inner, this.argsOf(arg(2), full));
      }
      case 'torch.Size':
      case 'builtins.tuple':
        return this.makeTuple(args.length === 0 ? [] : this.sequence(arg(0), full));
      case 'builtins.list': {
        const list: PickleList = { kind: 'list', items: [] };
        if (args.length > 0) for (const item of this.sequence(arg(0), full)) this.appendTo(list, item);
        return list;
      }
      case 'torch.jit._pickle.build_intlist':
      case 'torch.jit._pickle.build_doublelist':
      case 'torch.jit._pickle.build_boollist':
      case 'torch.jit._pickle.build_tensorlist':
      case 'torch.jit._pickle.restore_type_tag':
        // TorchScript's typed-container markers: the first argument is the plain value.
        return arg(0);
      case 'torch.device': {
        const type = arg(0);
        const index = arg(1);
        if (typeof type !== 'string') this.fail(`is corrupt: torch.device got ${describeValue(type)}.`);
        return typeof index === 'number' ? `${type}:${index}` : type;
      }
      case 'builtins.set':
      case 'builtins.frozenset': {
        const set: PickleSet = {
          kind: 'set',
          frozen: full === 'builtins.frozenset',
          items: args.length === 0 ? [] : this.sequence(arg(0), full),
        };
        for (const item of set.items) this.nest(set, item);
        return set;
      }
      case 'builtins.slice': {
        const obj: PickleObject = { kind: 'object', className: full, args, state: undefined };
        for (const a of args) this.nest(obj, a);
        return obj;
      }
      case 'builtins.bytes':
      case 'builtins.bytearray': {
        if (args.length === 0) return new Uint8Array(0);
        const a = arg(0);
        if (a instanceof Uint8Array) return a.slice();
        if (typeof a === 'string') return this.encode(a, args.length > 1 ? arg(1) : 'latin-1', full);
        if (a !== null && typeof a === 'object' && !(a instanceof PickleDict) && a.kind === 'list') {
          const out = new Uint8Array(a.items.length);
          a.items.forEach((v, i) => {
            out[i] = typeof v === 'number' ? v & 0xff : 0;
          });
          return out;
        }
        throw this.err(`is corrupt: ${full} got ${describeValue(a)}.`);
      }
      case '_codecs.encode': {
        const text = arg(0);
        if (typeof text !== 'string') this.fail(`is corrupt: _codecs.encode got ${describeValue(text)}.`);
        return this.encode(text, args.length > 1 ? arg(1) : 'utf-8', full);
      }
      case 'numpy.dtype': {
        const spec = arg(0);
        if (typeof spec !== 'string') this.fail(`is corrupt: numpy.dtype got ${describeValue(spec)}.`);
        const m = /^([<>|=]?)(.*)$/.exec(spec);
        return { kind: 'npdtype', code: m?.[2] ?? spec, byteOrder: m?.[1] ?? '=', structured: false };
      }
      case 'numpy.core.multiarray.scalar':
      case 'numpy._core.multiarray.scalar':
        return this.numpyScalar(arg(0), arg(1));
      case 'numpy.core.multiarray._reconstruct':
      case 'numpy._core.multiarray._reconstruct':
        return { kind: 'ndarray', dtype: undefined, shape: [0], fortranOrder: false, data: undefined };
      case 'numpy.core.numeric._frombuffer':
      case 'numpy._core.numeric._frombuffer': {
        const data = arg(0);
        const dtype = arg(1);
        const array: NumpyArray = {
          kind: 'ndarray',
          dtype: undefined,
          shape: this.intTuple(arg(2), 'a NumPy shape'),
          fortranOrder: arg(3) === 'F',
          data: undefined,
        };
        if (
          dtype !== null &&
          typeof dtype === 'object' &&
          !(dtype instanceof Uint8Array) &&
          !(dtype instanceof PickleDict) &&
          dtype.kind === 'npdtype'
        )
          array.dtype = dtype;
        if (data instanceof Uint8Array) array.data = data;
        return array;
      }
      default:
        this.fail(`calls ${full}, which is a name it may mention but not call.`);
    }
  }

  private sequence(v: PickleValue, what: string): PickleValue[] {
    if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof PickleDict)) {
      if (v.kind === 'list' || v.kind === 'tuple' || v.kind === 'set') return [...v.items];
    }
    if (v instanceof PickleDict) return v.entries.map(([k]) => k);
    this.fail(`is corrupt: ${what} expected a sequence but got ${describeValue(v)}.`);
  }

  private intTuple(v: PickleValue, what: string): number[] {
    const items = this.sequence(v, what);
    if (items.length > LIMITS.maxRank)
      this.fail(`has ${what} of ${items.length} dimensions, more than the ${LIMITS.maxRank} allowed.`);
    return items.map((x) => {
      if (typeof x !== 'number' || !Number.isSafeInteger(x)) this.fail(`is corrupt: ${what} contains ${shortRepr(x)}.`);
      return x;
    });
  }

  private encode(text: string, encoding: PickleValue, what: string): Uint8Array {
    const enc = typeof encoding === 'string' ? encoding.toLowerCase().replace(/_/g, '-') : '';
    if (enc === 'latin1' || enc === 'latin-1' || enc === 'iso-8859-1' || enc === 'ascii') {
      const out = new Uint8Array(text.length);
      for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
      return out;
    }
    if (enc === 'utf-8' || enc === 'utf8') return new TextEncoder().encode(text);
    this.fail(`uses ${what} with encoding ${shortRepr(encoding)}, which is not supported.`);
  }

  private rebuildTensor(
    storage: PickleValue,
    offset: PickleValue,
    size: PickleValue,
    stride: PickleValue,
    requiresGrad: boolean,
    parameter: boolean,
  ): TorchTensor {
    if (
      storage === null ||
      typeof storage !== 'object' ||
      storage instanceof Uint8Array ||
      storage instanceof PickleDict ||
      storage.kind !== 'storage'
    ) {
      this.fail(`is corrupt: a tensor is rebuilt from ${describeValue(storage)} instead of a storage.`);
    }
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
      this.fail(`is corrupt: a tensor has storage offset ${shortRepr(offset)}.`);
    const shape = this.intTuple(size, 'a tensor shape');
    const strides = this.intTuple(stride, 'a tensor stride');
    if (strides.length !== shape.length)
      this.fail(`is corrupt: a tensor has shape [${shape.join(', ')}] but ${strides.length} strides.`);
    return { kind: 'tensor', storage, storageOffset: offset, shape, stride: strides, requiresGrad, parameter };
  }

  private numpyScalar(dtype: PickleValue, data: PickleValue): PickleValue {
    if (
      dtype === null ||
      typeof dtype !== 'object' ||
      dtype instanceof Uint8Array ||
      dtype instanceof PickleDict ||
      dtype.kind !== 'npdtype'
    ) {
      this.fail(`is corrupt: a NumPy scalar has dtype ${describeValue(dtype)}.`);
    }
    if (!(data instanceof Uint8Array)) this.fail(`is corrupt: a NumPy scalar has data ${describeValue(data)}.`);
    const info = parseDescr(`${dtype.byteOrder === '>' ? '>' : '<'}${dtype.code}`);
    if (info.dtype === undefined || info.itemBytes !== data.length) {
      // Strings, complex numbers, datetimes: kept as an inert record naming the dtype.
      return { kind: 'object', className: `numpy.${dtype.code}`, args: [data], state: undefined };
    }
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const le = info.littleEndian;
    switch (info.dtype) {
      case 'BOOL':
        return (data[0] ?? 0) !== 0;
      case 'F64':
        return view.getFloat64(0, le);
      case 'F32':
        return view.getFloat32(0, le);
      case 'F16': {
        const bits = view.getUint16(0, le);
        const sign = bits & 0x8000 ? -1 : 1;
        const exp = (bits >> 10) & 0x1f;
        const frac = bits & 0x3ff;
        if (exp === 0) return sign * frac * 2 ** -24;
        if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
        return sign * (1 + frac / 1024) * 2 ** (exp - 15);
      }
      case 'I64':
        return toNumberIfSafe(view.getBigInt64(0, le));
      case 'U64':
        return toNumberIfSafe(view.getBigUint64(0, le));
      case 'I32':
        return view.getInt32(0, le);
      case 'U32':
        return view.getUint32(0, le);
      case 'I16':
        return view.getInt16(0, le);
      case 'U16':
        return view.getUint16(0, le);
      case 'I8':
        return view.getInt8(0);
      default:
        return view.getUint8(0);
    }
  }

  /** BUILD: sets state on the few objects that take one; everything else is refused. */
  private build(target: PickleValue, state: PickleValue): void {
    if (target instanceof PickleDict) {
      // OrderedDict.__reduce__ passes the instance __dict__ (a state dict's `_metadata`) as state.
      target.attributes = state;
      this.nest(target, state);
      return;
    }
    if (target !== null && typeof target === 'object' && !(target instanceof Uint8Array)) {
      switch (target.kind) {
        case 'tensor':
          return; // Tensor.__setstate__ of old files: requires_grad/hooks only; nothing to keep.
        case 'object':
          target.state = state;
          this.nest(target, state);
          return;
        case 'npdtype': {
          // (version, byteorder, subarray, names, fields, elsize, alignment, flags)
          const items = this.sequence(state, 'numpy.dtype state');
          const order = items[1];
          if (typeof order === 'string') target.byteOrder = order;
          if ((items[3] ?? null) !== null || (items[2] ?? null) !== null) target.structured = true;
          return;
        }
        case 'ndarray': {
          // (version, shape, dtype, is_fortran, rawdata)
          const items = this.sequence(state, 'numpy.ndarray state');
          const offset = items.length === 5 ? 1 : 0;
          target.shape = this.intTuple(items[offset] ?? null, 'a NumPy shape');
          const dtype = items[offset + 1] ?? null;
          if (
            dtype !== null &&
            typeof dtype === 'object' &&
            !(dtype instanceof Uint8Array) &&
            !(dtype instanceof PickleDict) &&
            dtype.kind === 'npdtype'
          )
            target.dtype = dtype;
          target.fortranOrder = items[offset + 2] === true;
          const raw = items[offset + 3] ?? null;
          target.data =
            raw instanceof Uint8Array
              ? raw
              : typeof raw === 'string'
                ? this.encode(raw, 'latin-1', 'an ndarray')
                : undefined;
          return;
        }
        default:
          break;
      }
    }
    this.fail(`is corrupt or unsupported: its pickle sets state (BUILD) on ${describeValue(target)}.`);
  }

  private persistentLoad(pid: PickleValue): PickleValue {
    if (this.options.persistentLoad) return this.options.persistentLoad(pid);
    return this.torchStorage(pid);
  }

  /** PyTorch zip checkpoints: `('storage', <storage class>, key, location, numel)`. */
  private torchStorage(pid: PickleValue): TorchStorage {
    const items =
      pid !== null &&
      typeof pid === 'object' &&
      !(pid instanceof Uint8Array) &&
      !(pid instanceof PickleDict) &&
      pid.kind === 'tuple'
        ? pid.items
        : undefined;
    if (items?.[0] !== 'storage')
      this.fail(`is corrupt: unknown persistent id (${describeValue(pid)}); only tensor storages are supported.`);
    if (items.length !== 5)
      this.fail(
        `has a storage reference with ${items.length} fields; only the torch>=1.6 layout (5 fields) is supported.`,
      );
    const type = this.asGlobal(items[1] ?? null, 'names a storage type');
    const info = Object.hasOwn(STORAGE_TYPES, type.name) ? STORAGE_TYPES[type.name] : undefined;
    if (info === undefined) this.fail(`names storage type ${type.module}.${type.name}, which is not a tensor storage.`);
    const key = items[2];
    const location = items[3];
    const numel = items[4];
    if (typeof key !== 'string' && typeof key !== 'number')
      this.fail(`is corrupt: a storage key is ${describeValue(key ?? null)}.`);
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0 || numel > LIMITS.maxTensorElements) {
      this.fail(`is corrupt: storage ${String(key)} claims ${shortRepr(numel ?? null)} elements.`);
    }
    return {
      kind: 'storage',
      storageType: type.name,
      torchDtype: info.torchDtype,
      dtype: info.dtype,
      itemBytes: info.itemBytes,
      key: String(key),
      location: typeof location === 'string' ? location : shortRepr(location ?? null),
      numel,
    };
  }
}
