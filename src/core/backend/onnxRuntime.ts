/**
 * The optional native engine, `onnxruntime-node`: the part of its API the project uses, and its loading at run time.
 * The package is an optional dependency (the platform packages of the extension carry it; the universal package
 * does not), so loading never throws: a missing or broken package yields a one-line reason that callers put in
 * their reports before falling back to TensorFlow.js. It is looked up beside the running bundle first
 * (`dist/native/node_modules`, where a platform package ships it), then by Node's usual resolution.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

/** The part of an onnxruntime tensor used here. `data` is a typed array (BigInt64Array for int64 outputs). */
export interface OrtTensorLike {
  readonly data: unknown;
  readonly dims: readonly number[];
  /** Element type name ('float32', 'int64'…). */
  readonly type?: string;
}

/** The part of an onnxruntime inference session used here. */
export interface OrtSessionLike {
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  release(): Promise<void>;
  /** Names of the graph inputs the session takes (every real session has them). */
  readonly inputNames?: readonly string[];
  /** Names of the graph outputs it returns. */
  readonly outputNames?: readonly string[];
}

/** The part of the `onnxruntime-node` module used here. */
export interface OrtModuleLike {
  Tensor: {
    new (type: 'float32', data: Float32Array, dims: readonly number[]): OrtTensorLike;
    new (type: 'float64', data: Float64Array, dims: readonly number[]): OrtTensorLike;
  };
  InferenceSession: {
    /** A session on ModelProto bytes, or on the model file at a path (external data is read beside it). */
    create(model: Uint8Array | string, options: Record<string, unknown>): Promise<OrtSessionLike>;
  };
}

/** Result of trying to load onnxruntime-node. */
export type OrtLoad = { ok: true; ort: OrtModuleLike } | { ok: false; reason: string };

/** Loads an optional module by name; throws if it is not installed. */
export type OrtModuleLoader = (name: string) => unknown;

/** Package name of the optional native runtime. */
export const ORT_PACKAGE = 'onnxruntime-node';

/**
 * Folder, relative to the bundles in dist/, where a platform-specific extension package ships onnxruntime-node and
 * its one dependency (as `node_modules/onnxruntime-node`, `node_modules/onnxruntime-common`).
 */
export const BUNDLED_NATIVE_DIR = 'native';

function hereFile(): string {
  return typeof __filename === 'string' ? __filename : path.join(process.cwd(), 'index.js');
}

function defaultLoader(name: string): unknown {
  // createRequire keeps esbuild from resolving the optional package at build time (it must stay external).
  const native = path.join(path.dirname(hereFile()), BUNDLED_NATIVE_DIR);
  if (existsSync(path.join(native, 'node_modules', name)))
    return createRequire(path.join(native, 'index.js'))(name) as unknown;
  return createRequire(hereFile())(name) as unknown;
}

/** The first line of an error's message, at most 200 characters (for one-line reasons). */
export function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const first = text.split('\n')[0] ?? text;
  return first.length > 200 ? `${first.slice(0, 200)}…` : first;
}

/** Loads `onnxruntime-node` if installed and usable; never throws (the reason says why not). */
export function loadOnnxRuntime(load: OrtModuleLoader = defaultLoader): OrtLoad {
  let mod: unknown;
  try {
    mod = load(ORT_PACKAGE);
  } catch (e) {
    const missing =
      e instanceof Error &&
      (e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' &&
      e.message.includes(`'${ORT_PACKAGE}'`);
    return {
      ok: false,
      reason: missing ? `${ORT_PACKAGE} is not installed` : `${ORT_PACKAGE} failed to load (${firstLine(e)})`,
    };
  }
  const m = mod as Partial<OrtModuleLike> | null;
  if (typeof m?.Tensor !== 'function' || typeof m.InferenceSession?.create !== 'function') {
    return { ok: false, reason: `${ORT_PACKAGE} loaded but has no Tensor / InferenceSession.create` };
  }
  return { ok: true, ort: m as OrtModuleLike };
}
