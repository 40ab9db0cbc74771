/**
 * `npm run fuzz`: mutation fuzzing of every checkpoint reader and of the artifact decoder, in-process, the way the
 * hostile corpus is checked. Per format, N mutants are made from the project's fixtures (bit flips, boundary values,
 * truncations, splices, JSON type confusion, varint overflows, pickle opcode swaps, mutations inside zip members with
 * their CRC fixed), and each runs through the reader and full statistics (`inspectFile`), or, for artifacts, through
 * `readArtifact` and decompression. Each case runs in a child process that is killed past the time limit or when its
 * memory grows past the limit. Outcomes are classified as accepted, format error (a one-line `CheckpointFormatError`),
 * other exception, hang, memory, or outside read (a file outside the case's folder was opened: every open is watched,
 * a self-check proves the watcher sees the readers' opens, and a 'companion redirect' mutation points shards and
 * external data out of the folder by `../`, absolute path or symbolic link); a format × outcome table is printed,
 * and every non-format failure is minimised (tail truncation, then restoring mutated bytes from the seed) and written
 * with its companions to a folder.
 *
 * Run: nice node --import tsx bench/fuzz.ts [--n 2000] [--formats safetensors,onnx,…] [--seed 1] [--timeout 10]
 *      [--memory 500] [--out bench/out/fuzz] [--no-minimise]
 * Not part of `npm test`: it takes minutes to hours. Reproducers worth keeping join test/fixtures/hostile/.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { crc32 } from 'node:zlib';

const ROOT = resolve(__dirname, '..');
const FIXTURES = join(ROOT, 'test', 'fixtures');

/** What happened to one case. 'outside read' (whatever else happened): a file outside the case's folder was opened. */
type Outcome = 'accepted' | 'format error' | 'other exception' | 'hang' | 'memory' | 'outside read';
const OUTCOMES: readonly Outcome[] = ['accepted', 'format error', 'other exception', 'hang', 'memory', 'outside read'];

/** A child's answer for one case. */
interface Answer {
  readonly outcome: 'accepted' | 'format error' | 'other exception' | 'outside read';
  readonly message: string;
}

/**
 * Records every file the process opens from now on (fs and fs/promises open, readFile and read streams, the ways the
 * readers and h5wasm open files), so a case can be checked for reads outside its own folder. Returns a function
 * that takes (and clears) the real paths opened since the last call.
 */
function watchOpens(): () => string[] {
  const load = createRequire(__filename);
  const fs = load('node:fs') as Record<string, unknown>;
  const fsp = load('node:fs/promises') as Record<string, unknown>;
  const seen: string[] = [];
  const note = (path: unknown): void => {
    if (typeof path === 'string') seen.push(resolve(path));
    else if (path instanceof URL) seen.push(resolve(path.pathname));
  };
  const wrap = (module: Record<string, unknown>, name: string): void => {
    const original = module[name];
    if (typeof original !== 'function') return;
    module[name] = function (this: unknown, path: unknown, ...rest: unknown[]): unknown {
      note(path);
      return (original as (...args: unknown[]) => unknown).call(this, path, ...rest);
    };
  };
  for (const name of ['open', 'openSync', 'readFile', 'readFileSync', 'createReadStream']) wrap(fs, name);
  for (const name of ['open', 'readFile']) wrap(fsp, name);
  syncBuiltinESMExports();
  return () => {
    const out = seen.splice(0).map((p) => {
      try {
        return realpathSync(p);
      } catch {
        return p;
      }
    });
    return [...new Set(out)];
  };
}

/** Whether `path` lies inside `folder` (both real, absolute). */
function inside(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

// ------------------------------------------------------------------------------------------------ child process

/** The child: runs each case it is sent and answers with its outcome. */
async function child(): Promise<void> {
  const { inspectFile } = await import('../src/core/jobs/inspect');
  const { CheckpointFormatError } = await import('../src/core/io/errors');
  const { readArtifact } = await import('../src/core/nern/artifact');
  const { decompressArtifact } = await import('../src/core/jobs/decompress');
  const { ensureBackend } = await import('../src/core/backend/tfjsBackend');
  const { H5_TEMP_PREFIX } = await import('../src/core/formats/keras');
  let backend = false;
  // The first HDF5 file compiles h5wasm: do it before any case is timed.
  await inspectFile(join(FIXTURES, 'keras', 'generic.h5'), { headersOnly: true });
  const takeOpens = watchOpens();
  // Files a case may open besides its own folder: the project's code and packages (lazy module loads) and the
  // Keras reader's own temporary copies of a .keras archive's weights (tmpdir()/weight-lens-keras-…).
  const root = realpathSync(ROOT);
  // The project's packages, also where node_modules is a link (a git worktree sharing another checkout's).
  const packages = realpathSync(join(ROOT, 'node_modules'));
  const temp = realpathSync(tmpdir());
  const allowed = (p: string): boolean =>
    inside(root, p) || inside(packages, p) || (inside(temp, p) && relative(temp, p).startsWith(H5_TEMP_PREFIX));
  const { FileByteSource } = await import('../src/core/io/byteSource');
  const run = async (format: string, path: string): Promise<void> => {
    if (format === 'self-check') {
      // Opens a file outside the case's folder the way the readers open files: must be seen as an outside read.
      await (await FileByteSource.open(join(dirname(dirname(path)), 'self-check-target'))).close();
      return;
    }
    if (format !== 'artifact') {
      await inspectFile(path, { bins: 16 });
      return;
    }
    if (!backend) {
      await ensureBackend('wasm');
      backend = true;
    }
    const a = await readArtifact(path);
    await a.close();
    const out = join(dirname(path), 'decoded.safetensors');
    try {
      await decompressArtifact(path, out, { backend: 'wasm' });
    } finally {
      rmSync(out, { force: true });
    }
  };
  process.on('message', (message: { format: string; path: string }) => {
    void (async (): Promise<void> => {
      let answer: Answer;
      takeOpens();
      try {
        await run(message.format, message.path);
        answer = { outcome: 'accepted', message: '' };
      } catch (error) {
        const e = error instanceof Error ? error : new Error(String(error));
        const oneLine = !e.message.includes('\n');
        answer =
          e instanceof CheckpointFormatError && oneLine
            ? { outcome: 'format error', message: e.message }
            : {
                outcome: 'other exception',
                message: `${e.name}: ${e.message.split('\n')[0] ?? ''} @ ${(e.stack ?? '')
                  .split('\n')
                  .slice(1, 3)
                  .map((l) => l.trim())
                  .join(' / ')}`,
              };
      }
      const folder = realpathSync(dirname(message.path));
      const outside = takeOpens().filter((p) => !inside(folder, p) && !allowed(p));
      if (outside.length > 0) answer = { outcome: 'outside read', message: `opened ${outside.join(', ')}` };
      process.send?.(answer);
    })();
  });
  process.send?.({ ready: true });
}

// ------------------------------------------------------------------------------------------------ runner

/** RSS of a process in bytes, from /proc (Linux); undefined elsewhere. */
function rssOf(pid: number): number | undefined {
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    return pages * 4096;
  } catch {
    return undefined;
  }
}

/** One child process at a time, restarted after a hang or a memory kill. */
class Runner {
  private proc: ChildProcess | undefined;
  private baseline = 0;
  constructor(
    private readonly timeoutMs: number,
    private readonly memoryBytes: number,
  ) {}

  private async start(): Promise<ChildProcess> {
    if (this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null) return this.proc;
    const proc = fork(__filename, ['--child'], {
      execArgv: ['--import', 'tsx', '--max-old-space-size=4096'],
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    await new Promise<void>((done, fail) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        fail(new Error('the fuzz child did not start within 120 s'));
      }, 120_000);
      proc.once('message', () => {
        clearTimeout(timer);
        done();
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        fail(new Error(`the fuzz child exited while starting (${String(code)})`));
      });
    });
    proc.removeAllListeners('exit');
    this.baseline = rssOf(proc.pid ?? 0) ?? 0;
    this.proc = proc;
    return proc;
  }

  async run(format: string, path: string): Promise<Answer | { outcome: 'hang' | 'memory'; message: string }> {
    const proc = await this.start();
    return new Promise((done) => {
      let settled = false;
      const finish = (value: Answer | { outcome: 'hang' | 'memory'; message: string }, kill: boolean): void => {
        if (settled) return;
        settled = true;
        clearInterval(watch);
        clearTimeout(timer);
        proc.removeAllListeners('message');
        proc.removeAllListeners('exit');
        if (kill) {
          proc.kill('SIGKILL');
          this.proc = undefined;
        }
        done(value);
      };
      const timer = setTimeout(() => {
        finish({ outcome: 'hang', message: `no answer in ${this.timeoutMs / 1000} s` }, true);
      }, this.timeoutMs);
      const watch = setInterval(() => {
        const rss = rssOf(proc.pid ?? 0);
        if (rss !== undefined && rss - this.baseline > this.memoryBytes) {
          finish({ outcome: 'memory', message: `grew by ${Math.round((rss - this.baseline) / 1e6)} MB` }, true);
        }
      }, 50);
      proc.once('message', (answer: Answer) => {
        finish(answer, false);
      });
      proc.once('exit', (code, signal) => {
        const what = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
        this.proc = undefined;
        finish({ outcome: 'other exception', message: `the process died (${what})` }, false);
      });
      proc.send({ format, path });
    });
  }

  stop(): void {
    this.proc?.kill('SIGKILL');
    this.proc = undefined;
  }
}

// ------------------------------------------------------------------------------------------------ mutations

/** A small seeded PRNG (mulberry32), so a run is reproducible from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;
const int = (r: Random, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Random, xs: readonly T[]): T => xs[int(r, xs.length)] as T;

/** Boundary values, little-endian, of 1, 2, 4 and 8 bytes. */
const BOUNDARIES: readonly number[][] = [
  [0x00],
  [0xff],
  [0x7f],
  [0x80],
  [0x00, 0x00],
  [0xff, 0xff],
  [0xff, 0x7f],
  [0x00, 0x80],
  [0, 0, 0, 0],
  [0xff, 0xff, 0xff, 0xff],
  [0xff, 0xff, 0xff, 0x7f],
  [0, 0, 0, 0x80],
  [0, 0, 0, 0x40],
  [0, 0, 0, 0, 0, 0, 0, 0],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0],
  [0, 0, 0, 0, 0, 0, 0xf0, 0x7f],
  [0, 0, 0, 0, 0, 0, 0xf8, 0x7f],
  [0, 0, 0x80, 0x7f],
  [0, 0, 0xc0, 0x7f],
];

function bitFlips(r: Random, b: Uint8Array): Uint8Array {
  const out = Uint8Array.from(b);
  for (let k = 1 + int(r, 8); k > 0 && out.length > 0; k--) {
    const at = int(r, out.length);
    out[at] = (out[at] ?? 0) ^ (1 << int(r, 8));
  }
  return out;
}

function boundary(r: Random, b: Uint8Array): Uint8Array {
  const out = Uint8Array.from(b);
  const value = pick(r, BOUNDARIES);
  if (out.length === 0) return out;
  const at = int(r, Math.max(1, out.length - value.length));
  out.set(value.slice(0, out.length - at), at);
  return out;
}

function truncate(r: Random, b: Uint8Array): Uint8Array {
  return b.slice(0, int(r, b.length));
}

function splice(r: Random, b: Uint8Array, other: Uint8Array): Uint8Array {
  const from = int(r, other.length);
  const piece = other.subarray(from, from + 1 + int(r, Math.min(4096, other.length - from)));
  const at = int(r, b.length + 1);
  if (r() < 0.5) {
    const out = Uint8Array.from(b);
    out.set(piece.subarray(0, out.length - at), at);
    return out;
  }
  const out = new Uint8Array(b.length + piece.length);
  out.set(b.subarray(0, at));
  out.set(piece, at);
  out.set(b.subarray(at), at + piece.length);
  return out;
}

/** Overwrites a varint-looking position with an overlong or overflowing varint (protobuf files). */
function varintOverflow(r: Random, b: Uint8Array): Uint8Array {
  const forms = [
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
    [0xff, 0xff, 0xff, 0xff, 0x0f],
    [0x80, 0x80, 0x80, 0x80, 0x10],
    [0xff, 0xff, 0xff, 0xff, 0x07],
  ];
  const form = pick(r, forms);
  const out = Uint8Array.from(b);
  // Prefer a byte after a length-delimited tag (wire type 2), where a length lives.
  let at = int(r, Math.max(1, out.length));
  for (let tries = 0; tries < 64; tries++) {
    const i = int(r, Math.max(1, out.length - 1));
    if (((out[i] ?? 0) & 7) === 2) {
      at = i + 1;
      break;
    }
  }
  out.set(form.slice(0, Math.max(0, out.length - at)), Math.min(at, out.length));
  return out;
}

const PICKLE_OPCODES = Array.from('()]}tRbcqhXJKM\x85\x86\x87suea02.N\x88\x89G\x8a\x8cr\x94\x95', (c) =>
  c.charCodeAt(0),
);

/** Swaps opcode-like bytes of a pickle for other opcodes. */
function opcodeSwap(r: Random, b: Uint8Array): Uint8Array {
  const out = Uint8Array.from(b);
  for (let k = 1 + int(r, 4); k > 0 && out.length > 0; k--) {
    let at = int(r, out.length);
    for (let tries = 0; tries < 32 && !PICKLE_OPCODES.includes(out[at] ?? 0); tries++) at = int(r, out.length);
    out[at] = pick(r, PICKLE_OPCODES);
  }
  return out;
}

/** Marks a value that `toJson` writes as `[[[…0…]]]` nested that many levels (too deep to build as objects). */
const DEEP = '\u0000deep';

/** JSON text of a mutated document, with deep-nesting markers expanded as text. */
function toJson(value: unknown): string {
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v !== null && typeof v === 'object' && Object.hasOwn(v, DEEP))
      return `\u0001${String((v as Record<string, unknown>)[DEEP])}\u0001`;
    return v;
  });
  return text.replace(/"\\u0001(\d+)\\u0001"/g, (_m, n: string) => `${'['.repeat(Number(n))}0${']'.repeat(Number(n))}`);
}

/** Sets an own property, even `__proto__` (as JSON.parse would), never the prototype. */
function setKey(record: object, key: string, value: unknown): void {
  Object.defineProperty(record, key, { value, writable: true, enumerable: true, configurable: true });
}

/** A hostile JSON value of a random kind. */
function confusingValue(r: Random, depth = 0): unknown {
  switch (int(r, 14)) {
    case 0:
      return null;
    case 1:
      return pick(r, [-1, 0, 2 ** 53, 2 ** 64, 1e308, -1e308, 0.5, 2 ** 31, 2 ** 32 - 1, 1e21]);
    case 2:
      return pick(r, [
        '',
        '__proto__',
        'constructor',
        '../../etc/passwd',
        '/etc/passwd',
        'x'.repeat(70_000),
        'F32',
        'float32',
        '\u0000',
      ]);
    case 3:
      return true;
    case 4:
      return [];
    case 5:
      return {};
    case 6:
      return Array.from({ length: 1 + int(r, 5) }, () => pick(r, [2 ** 31, 0, -1, 1e9, 2 ** 40]));
    case 7:
      return { [DEEP]: pick(r, [100, 5000, 200_000]) }; // deep nesting, written out by `toJson`
    case 8: {
      const o = {};
      setKey(o, pick(r, ['__proto__', 'constructor', 'toString']), depth < 3 ? confusingValue(r, depth + 1) : 1);
      return o;
    }
    case 9:
      return Array.from({ length: pick(r, [1000, 100_000]) }, () => 1);
    case 10:
      return depth < 3 ? [confusingValue(r, depth + 1), confusingValue(r, depth + 1)] : 1;
    case 11:
      return {
        dtype: pick(r, ['F32', '__proto__', 'float32', 'uint8', 'BF16']),
        shape: [pick(r, [0, 1, 2 ** 20, 2 ** 31])],
        data_offsets: [0, pick(r, [0, 4, 2 ** 40])],
      };
    case 12:
      return 'A'.repeat(pick(r, [10, 1000]));
    default:
      return -0;
  }
}

/** Most bytes of JSON a mutation may add (so the fuzzer itself never builds gigabytes). */
const MAX_ADDED_JSON = 20_000_000;

/** How many copies of `value` fit in MAX_ADDED_JSON, at most `wanted`. */
function affordable(value: unknown, wanted: number): number {
  return Math.max(1, Math.min(wanted, Math.floor(MAX_ADDED_JSON / Math.max(1, toJson(value).length))));
}

/** Every path to a value inside `v` (keys and indices), breadth-limited. */
function jsonPaths(
  v: unknown,
  prefix: (string | number)[] = [],
  out: (string | number)[][] = [],
  depth = 0,
): (string | number)[][] {
  if (out.length > 4000 || depth > 12) return out;
  out.push(prefix);
  if (Array.isArray(v)) v.slice(0, 64).forEach((x: unknown, i) => jsonPaths(x, [...prefix, i], out, depth + 1));
  else if (v !== null && typeof v === 'object')
    for (const k of Object.keys(v).slice(0, 256))
      jsonPaths((v as Record<string, unknown>)[k], [...prefix, k], out, depth + 1);
  return out;
}

/** Replaces a random node of the JSON document, adds entries, or duplicates one many times. */
function confuseJson(r: Random, doc: unknown): unknown {
  const paths = jsonPaths(doc);
  const path = pick(r, paths);
  const root = structuredClone(doc);
  let parent: unknown = undefined;
  let node: unknown = root;
  for (const key of path) {
    parent = node;
    node = (node as Record<string | number, unknown>)[key];
  }
  const last = path[path.length - 1];
  const kind = int(r, 4);
  if (kind === 0 && node !== null && typeof node === 'object' && !Array.isArray(node)) {
    // Add entries: many copies of an existing value under new names, or hostile keys.
    const record = node as Record<string, unknown>;
    const values = Object.values(record);
    const value = values.length > 0 ? pick(r, values) : confusingValue(r);
    const count = affordable(value, pick(r, [1, 10, 1000, 50_000]));
    for (let i = 0; i < count; i++) {
      const key = r() < 0.1 ? pick(r, ['__proto__', 'constructor', '__metadata__']) : `fz${i}`;
      setKey(record, key, structuredClone(value));
    }
    return root;
  }
  if (kind === 1 && Array.isArray(node) && node.length > 0) {
    const item: unknown = node[int(r, node.length)];
    const copies = affordable(item, pick(r, [2, 1000, 40_000]));
    for (let i = 0; i < copies; i++) node.push(structuredClone(item));
    return root;
  }
  if (parent === undefined || last === undefined) return confusingValue(r);
  setKey(parent as object, String(last), confusingValue(r));
  return root;
}

/** Finds the JSON part of a file (the whole file, or a safetensors header) and mutates it as JSON. */
function jsonMutation(r: Random, b: Uint8Array, format: string): Uint8Array | undefined {
  const text = new TextDecoder().decode(b);
  if (format === 'safetensors' && b.length >= 10 && b[8] === 0x7b) {
    const n = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
    if (8 + n > b.length) return undefined;
    let json: Buffer;
    try {
      // A seed that earlier mutations nested too deeply for JSON.stringify is skipped, not a fuzzer crash.
      json = Buffer.from(toJson(confuseJson(r, JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))))));
    } catch {
      return undefined;
    }
    const out = new Uint8Array(8 + json.length + (b.length - 8 - n));
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    out.set(b.subarray(8 + n), 8 + json.length);
    return out;
  }
  if (!text.trimStart().startsWith('{') && !text.trimStart().startsWith('[')) return undefined;
  try {
    return new TextEncoder().encode(toJson(confuseJson(r, JSON.parse(text))));
  } catch {
    return undefined;
  }
}

/** Mutates the artifact's `weight_lens` metadata JSON (a JSON string inside the safetensors header). */
function artifactMetaMutation(r: Random, b: Uint8Array): Uint8Array | undefined {
  const n = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > b.length) return undefined;
  const header = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) as {
    __metadata__?: Record<string, string>;
  };
  const md = header.__metadata__;
  const json = md?.weight_lens;
  if (md === undefined || json === undefined) return undefined;
  try {
    md.weight_lens = toJson(confuseJson(r, JSON.parse(json)));
  } catch {
    return undefined; // nested too deeply by earlier mutations to parse: skip this seed
  }
  // Drop the checksum now and then, so that the structural checks behind it are fuzzed too.
  if (r() < 0.7) delete md.weight_lens_sha256;
  const bytes = Buffer.from(JSON.stringify(header));
  const out = new Uint8Array(8 + bytes.length + (b.length - 8 - n));
  new DataView(out.buffer).setBigUint64(0, BigInt(bytes.length), true);
  out.set(bytes, 8);
  out.set(b.subarray(8 + n), 8 + bytes.length);
  return out;
}

/** Stored zip members: name, data range, local header offset and central directory entry offset. */
function zipMembers(b: Uint8Array): { name: string; start: number; size: number; local: number; central: number }[] {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let eocd = -1;
  for (let i = b.length - 22; i >= Math.max(0, b.length - 65_557); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return [];
  const count = view.getUint16(eocd + 10, true);
  let p = view.getUint32(eocd + 16, true);
  const out: { name: string; start: number; size: number; local: number; central: number }[] = [];
  for (let k = 0; k < count && p + 46 <= b.length; k++) {
    if (view.getUint32(p, true) !== 0x02014b50) break;
    const method = view.getUint16(p + 10, true);
    const size = view.getUint32(p + 20, true);
    const nameLength = view.getUint16(p + 28, true);
    const extra = view.getUint16(p + 30, true);
    const comment = view.getUint16(p + 32, true);
    const local = view.getUint32(p + 42, true);
    const name = new TextDecoder().decode(b.subarray(p + 46, p + 46 + nameLength));
    if (method === 0 && local + 30 <= b.length) {
      const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
      if (start + size <= b.length) out.push({ name, start, size, local, central: p });
    }
    p += 46 + nameLength + extra + comment;
  }
  return out;
}

/** Mutates inside one stored zip member (data.pkl first) and fixes its CRC, so the damage reaches the parser. */
function zipMemberMutation(r: Random, b: Uint8Array, format: string): Uint8Array | undefined {
  const members = zipMembers(b);
  if (members.length === 0) return undefined;
  const pkl = members.find((m) => m.name.endsWith('data.pkl'));
  const member = pkl !== undefined && r() < 0.7 ? pkl : pick(r, members);
  const body = b.subarray(member.start, member.start + member.size);
  const mutated =
    member.name.endsWith('.pkl') && r() < 0.6
      ? opcodeSwap(r, body)
      : member.name.endsWith('.json')
        ? (jsonMutation(r, body, format) ?? bitFlips(r, body)).subarray(0, body.length)
        : pick(r, [bitFlips, boundary])(r, body);
  const out = Uint8Array.from(b);
  const patch =
    mutated.length === body.length
      ? mutated
      : (() => {
          const same = new Uint8Array(body.length);
          same.set(mutated.subarray(0, body.length));
          return same;
        })();
  out.set(patch, member.start);
  const crc = crc32(patch);
  const view = new DataView(out.buffer);
  view.setUint32(member.local + 14, crc, true);
  view.setUint32(member.central + 16, crc, true);
  return out;
}

/** One mutant of `seed` and the name of the mutation. */
/** The name of the link, in every case folder, that stands in for companion `name`: same length, pointing outside. */
function outsideLinkName(name: string): string {
  return `~${name.slice(1)}`;
}

/**
 * Redirects one companion the seed names (a TF.js shard, an index's shard, ONNX external data) out of the case's
 * folder: to a link of the same length that points outside (any format, bytes replaced in place), or, in JSON seeds,
 * to `../…` or an absolute path outside. A reader that follows it shows up as an outside read.
 */
function companionRedirect(
  r: Random,
  seed: Uint8Array,
  companions: readonly string[],
  outside: string,
): Uint8Array | undefined {
  const text = new TextDecoder('latin1').decode(seed);
  const named = companions.filter((c) => c.length > 1 && text.includes(c));
  if (named.length === 0) return undefined;
  const name = pick(r, named);
  const json = text.trimStart().startsWith('{');
  const target = json && r() < 0.5 ? pick(r, [`../${basename(outside)}`, outside]) : outsideLinkName(name);
  const at = [...text.matchAll(new RegExp(name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g'))].map((m) => m.index);
  const one = r() < 0.5;
  const chosen = one ? [pick(r, at)] : at;
  const encoded = new TextEncoder().encode(target);
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const i of chosen) {
    parts.push(seed.subarray(from, i), encoded);
    from = i + name.length;
  }
  parts.push(seed.subarray(from));
  const out = Buffer.concat(parts);
  return encoded.length === name.length || json ? out : undefined;
}

function mutate(
  r: Random,
  format: string,
  seed: Uint8Array,
  others: readonly Uint8Array[],
  companions: readonly string[] = [],
  outside = '',
): { bytes: Uint8Array; how: string } {
  const isZip = seed[0] === 0x50 && seed[1] === 0x4b;
  const choices: [string, () => Uint8Array | undefined][] = [
    ['bit flips', () => bitFlips(r, seed)],
    ['boundary value', () => boundary(r, seed)],
    ['truncation', () => truncate(r, seed)],
    ['splice', () => splice(r, seed, others.length > 0 ? pick(r, others) : seed)],
  ];
  if (companions.length > 0 && outside !== '')
    choices.push(['companion redirect', () => companionRedirect(r, seed, companions, outside)]);
  if (format === 'safetensors' || format === 'tfjs' || format === 'artifact') {
    choices.push(['JSON type confusion', () => jsonMutation(r, seed, format === 'artifact' ? 'safetensors' : format)]);
    choices.push(['JSON type confusion', () => jsonMutation(r, seed, format === 'artifact' ? 'safetensors' : format)]);
  }
  if (format === 'artifact')
    choices.push(
      ['artifact metadata confusion', () => artifactMetaMutation(r, seed)],
      ['artifact metadata confusion', () => artifactMetaMutation(r, seed)],
    );
  if (format === 'onnx')
    choices.push(
      ['varint overflow', () => varintOverflow(r, seed)],
      ['varint overflow', () => varintOverflow(r, seed)],
    );
  if (isZip)
    choices.push(
      ['zip member (CRC fixed)', () => zipMemberMutation(r, seed, format)],
      ['zip member (CRC fixed)', () => zipMemberMutation(r, seed, format)],
    );
  if (format === 'pytorch') choices.push(['pickle opcode swap', () => zipMemberMutation(r, seed, format)]);
  for (let tries = 0; tries < 8; tries++) {
    const [how, make] = pick(r, choices);
    const bytes = make();
    if (bytes !== undefined) return { bytes, how };
  }
  return { bytes: bitFlips(r, seed), how: 'bit flips' };
}

// ------------------------------------------------------------------------------------------------ seeds

interface Seed {
  readonly format: string;
  /** The file that is mutated. */
  readonly path: string;
  readonly bytes: Uint8Array;
}

/** The fixtures of every format (files up to 2 MB, so a case stays fast), from the fixture manifests. */
function seeds(): Seed[] {
  const out: Seed[] = [];
  for (const group of readdirSync(FIXTURES)) {
    const manifest = join(FIXTURES, group, 'manifest.json');
    if (group === 'hostile' || !existsSync(manifest)) continue;
    const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { files?: { file: string; format: string }[] };
    for (const f of parsed.files ?? []) {
      const path = join(FIXTURES, group, f.file);
      if (!existsSync(path) || statSync(path).size > 2 * 1024 * 1024) continue;
      out.push({ format: f.format, path, bytes: Uint8Array.from(readFileSync(path)) });
    }
  }
  return out;
}

/** Names of the companions of `seed`: the other files of its folder. */
function companionNames(seed: Seed): string[] {
  const folder = dirname(seed.path);
  return readdirSync(folder).filter((name) => {
    const from = join(folder, name);
    return from !== seed.path && name !== 'manifest.json' && statSync(from).isFile();
  });
}

/** Copies the companions of `seed` (the other files of its folder, ≤ 20 MB in all) into `dir`. */
function copyCompanions(seed: Seed, dir: string): void {
  const folder = dirname(seed.path);
  let total = 0;
  for (const name of companionNames(seed)) {
    const from = join(folder, name);
    total += statSync(from).size;
    if (total > 20 * 1024 * 1024) break;
    copyFileSync(from, join(dir, name));
  }
}

// ------------------------------------------------------------------------------------------------ minimising

/** A failure's signature: its outcome, and for exceptions the error's name and first words. */
function signature(result: { outcome: string; message: string }): string {
  if (result.outcome !== 'other exception') return result.outcome;
  return `${result.outcome}: ${result.message.split(' @ ')[0]?.replace(/\d+/g, 'N').slice(0, 80) ?? ''}`;
}

/**
 * Shrinks a failing mutant while it keeps failing the same way: cut the tail (halving), then put back runs of the
 * seed's bytes where the mutant differs. Bounded attempts; hangs get fewer (each costs the time limit).
 */
async function minimise(runner: Runner, seed: Seed, dir: string, bytes: Uint8Array, want: string): Promise<Uint8Array> {
  const main = join(dir, basename(seed.path));
  const still = async (candidate: Uint8Array): Promise<boolean> => {
    writeFileSync(main, candidate);
    return signature(await runner.run(seed.format, main)) === want;
  };
  let best = bytes;
  let budget = want === 'hang' || want === 'memory' ? 6 : 40;
  for (let cut = Math.floor(best.length / 2); cut >= 1 && budget > 0; cut = Math.floor(cut / 2)) {
    while (best.length - cut > 0 && budget-- > 0) {
      const candidate = best.subarray(0, best.length - cut);
      if (!(await still(candidate))) break;
      best = candidate;
    }
  }
  if (best.length === seed.bytes.length) {
    // Restore differing bytes from the seed, in halves, while the failure remains.
    const diff: number[] = [];
    for (let i = 0; i < best.length; i++) if (best[i] !== seed.bytes[i]) diff.push(i);
    for (let size = Math.ceil(diff.length / 2); size >= 1 && budget > 0; size = Math.floor(size / 2)) {
      for (let start = 0; start < diff.length && budget-- > 0; start += size) {
        const candidate = Uint8Array.from(best);
        for (const i of diff.slice(start, start + size)) candidate[i] = seed.bytes[i] ?? 0;
        if (await still(candidate)) best = candidate;
      }
      if (size === 1) break;
    }
  }
  return best;
}

// ------------------------------------------------------------------------------------------------ main

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Writes a small artifact to fuzz: a 5-step compression of the tiny ResNet fixture. */
async function artifactSeed(dir: string): Promise<Seed> {
  const { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS, ensureBackend } = await import('../src/core/jobs/compress');
  await ensureBackend('wasm');
  const path = join(dir, 'model.nern.safetensors');
  await compressCheckpoint(join(FIXTURES, 'pytorch', 'resnet_tiny.pt'), {
    ...DEFAULT_COMPRESS_OPTIONS,
    budget: { kind: 'hidden', hidden: 8 },
    steps: 5,
    backend: 'wasm',
    out: path,
  });
  return { format: 'artifact', path, bytes: Uint8Array.from(readFileSync(path)) };
}

async function main(): Promise<void> {
  const n = Number(flag('n') ?? 2000);
  const seedValue = Number(flag('seed') ?? 1);
  const timeoutMs = Number(flag('timeout') ?? 10) * 1000;
  const memoryBytes = Number(flag('memory') ?? 500) * 1e6;
  const outDir = resolve(flag('out') ?? join(ROOT, 'bench', 'out', 'fuzz'));
  const minimiseFailures = !process.argv.includes('--no-minimise');
  const work = mkdtempSync(join(tmpdir(), 'weight-lens-fuzz-'));
  const all = seeds();
  const wanted = flag('formats')?.split(',') ?? [
    'safetensors',
    'pytorch',
    'onnx',
    'tfjs',
    'keras',
    'numpy',
    'gguf',
    'artifact',
  ];
  if (wanted.includes('artifact')) all.push(await artifactSeed(work));
  const runner = new Runner(timeoutMs, memoryBytes);
  mkdirSync(join(work, 'self-check'));
  const outsideTarget = join(work, 'self-check-target');
  writeFileSync(outsideTarget, 'outside the case folder');
  const check = await runner.run('self-check', join(work, 'self-check', 'none'));
  if (check.outcome !== 'outside read') {
    runner.stop();
    throw new Error(
      `the open watcher missed a read outside the case's folder (${check.outcome}); outside reads would go unseen`,
    );
  }
  const table = new Map<string, Map<Outcome, number>>();
  const failures = new Map<string, { format: string; how: string; message: string; file: string }>();
  const started = Date.now();
  try {
    for (const format of wanted) {
      const mine = all.filter((s) => s.format === format);
      if (mine.length === 0) continue;
      const counts = new Map<Outcome, number>(OUTCOMES.map((o) => [o, 0]));
      table.set(format, counts);
      const r = prng(seedValue * 7919 + format.length * 131 + format.charCodeAt(0));
      // One working folder per seed, holding its companions; the mutant takes the seed's own name.
      const dirs = new Map<Seed, string>();
      for (const [i, s] of mine.entries()) {
        const dir = join(work, `${format}-${i}`);
        mkdirSync(dir);
        copyCompanions(s, dir);
        // Names that differ only in their first character share one link (all links lead to the same place).
        for (const c of companionNames(s)) {
          const link = join(dir, outsideLinkName(c));
          if (!existsSync(link)) symlinkSync(outsideTarget, link);
        }
        dirs.set(s, dir);
      }
      for (let k = 0; k < n; k++) {
        const seed = pick(r, mine);
        const dir = dirs.get(seed) ?? work;
        const { bytes, how } = mutate(
          r,
          format,
          seed.bytes,
          mine.map((s) => s.bytes),
          companionNames(seed),
          outsideTarget,
        );
        const main = join(dir, basename(seed.path));
        writeFileSync(main, bytes);
        const result = await runner.run(format, main);
        counts.set(result.outcome, (counts.get(result.outcome) ?? 0) + 1);
        if (result.outcome !== 'accepted' && result.outcome !== 'format error') {
          const sig = `${format} ${signature(result)}`;
          if (!failures.has(sig)) {
            const small = minimiseFailures ? await minimise(runner, seed, dir, bytes, signature(result)) : bytes;
            const id = createHash('sha256').update(small).digest('hex').slice(0, 12);
            const target = join(outDir, format, `${result.outcome.replace(' ', '-')}-${id}`);
            mkdirSync(target, { recursive: true });
            copyCompanions(seed, target);
            writeFileSync(join(target, basename(seed.path)), small);
            writeFileSync(
              join(target, 'README.txt'),
              `${format}: ${result.outcome} after ${how}, minimised from ${bytes.length} to ${small.length} bytes\nseed: ${seed.path}\n${result.message}\n`,
            );
            failures.set(sig, { format, how, message: result.message, file: join(target, basename(seed.path)) });
          }
        }
        if ((k + 1) % 100 === 0)
          process.stderr.write(`${format}: ${k + 1}/${n} (${Math.round((Date.now() - started) / 1000)} s)\n`);
      }
      process.stderr.write(`${format} done: ${OUTCOMES.map((o) => `${o} ${String(counts.get(o) ?? 0)}`).join(', ')}\n`);
    }
  } finally {
    runner.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const header = ['format', ...OUTCOMES];
  const rows = [...table].map(([format, counts]) => [format, ...OUTCOMES.map((o) => String(counts.get(o) ?? 0))]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  console.log(
    `\n${n} mutants per format, seed ${seedValue}, limits ${timeoutMs / 1000} s and ${memoryBytes / 1e6} MB, ${Math.round((Date.now() - started) / 1000)} s\n`,
  );
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  if (failures.size > 0) {
    console.log(`\n${failures.size} distinct non-format failures (minimised reproducers under ${outDir}):`);
    for (const [sig, f] of failures) console.log(`- ${sig} (${f.how}): ${f.message.slice(0, 300)}\n  ${f.file}`);
  }
}

if (process.argv.includes('--child')) void child();
else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
