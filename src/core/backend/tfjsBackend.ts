/**
 * The only place a TensorFlow.js backend is chosen. wasm (XNNPACK, SIMD) is the default everywhere; native
 * TensorFlow (`@tensorflow/tfjs-node-gpu`, `@tensorflow/tfjs-node`) and WebGPU (`webgpu` + `@tensorflow/tfjs-backend-webgpu`)
 * are optional accelerators, loaded only at run time and only if the user's machine has them installed. A missing or
 * broken optional backend never throws: initialisation falls back to wasm (then the pure-JS cpu backend) and says why.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { BackendName } from '../../protocol/vocabulary';
import { registerWasmGradients } from './wasmGradients';

// The wasm backend lacks some gradient kernels (convolution weight gradients among them); add them once.
registerWasmGradients();

/** What the user asked for (a `BACKEND_NAMES` entry). `auto` tries native TensorFlow, then a hardware WebGPU adapter, then wasm. */
export type BackendPreference = BackendName;

/** The backend that is now active, and why it is not the one asked for (absent when it is). */
export interface BackendChoice {
  /** tfjs backend name now active: 'wasm', 'tensorflow', 'webgpu' or 'cpu'. */
  name: string;
  /** One sentence per skipped candidate, joined with '; ', when the active backend differs from the preference. */
  fallbackReason?: string;
}

/** Options of `initBackend`. */
export interface BackendOptions {
  /**
   * Folder holding `tfjs-backend-wasm*.wasm`. Default: the running bundle's folder when the files are there (the
   * build copies them beside the bundles in dist/), else the installed `@tensorflow/tfjs-backend-wasm/dist`.
   */
  wasmDir?: string;
}

/** Loads an optional module by name; throws if it is not installed. Injected by tests. */
export type ModuleLoader = (name: string) => unknown;

/** Dependencies of backend selection, injectable so the fallback logic is testable without the optional packages. */
export interface BackendDeps {
  /** Loads optional packages (default: Node's `require`, resolved from this module's location). */
  load: ModuleLoader;
  /** Activates a registered tfjs backend; resolves false or throws if it cannot initialise. */
  activate: (name: string) => Promise<boolean>;
  /** Points the wasm backend at its binaries. */
  configureWasm: (dir: string) => void;
  /** Default wasm folder, or undefined if none found. */
  wasmDir: () => string | undefined;
}

const WASM_FILE = 'tfjs-backend-wasm-simd.wasm';

function moduleRequire(): NodeJS.Require {
  // In the CommonJS bundle and under tsx, __filename is this file (or the bundle); createRequire keeps esbuild from
  // trying to resolve the optional packages at build time.
  return createRequire(typeof __filename === 'string' ? __filename : path.join(process.cwd(), 'index.js'));
}

/** Finds the folder that holds the wasm binaries: beside the bundle first, then the installed package. */
export function defaultWasmDir(): string | undefined {
  const candidates: string[] = [];
  if (typeof __dirname === 'string') candidates.push(__dirname);
  try {
    candidates.push(path.dirname(moduleRequire().resolve('@tensorflow/tfjs-backend-wasm')));
  } catch {
    // not resolvable from here; fall through
  }
  return candidates.find((dir) => existsSync(path.join(dir, WASM_FILE)));
}

/** The real dependencies (Node `require`, tfjs activation, the installed wasm binaries). */
export const defaultBackendDeps: Readonly<BackendDeps> = {
  load: (name) => moduleRequire()(name) as unknown,
  activate: async (name) => {
    const ok = await tf.setBackend(name);
    if (ok) await tf.ready();
    return ok && tf.getBackend() === name;
  },
  configureWasm: (dir) => {
    setWasmPaths(dir.endsWith(path.sep) ? dir : dir + path.sep);
  },
  wasmDir: defaultWasmDir,
};

function message(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const first = text.split('\n')[0] ?? text;
  return first.length > 200 ? `${first.slice(0, 200)}…` : first;
}

function isMissingModule(e: unknown, name: string): boolean {
  return (
    e instanceof Error && (e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && e.message.includes(`'${name}'`)
  );
}

type Attempt = { ok: true; note?: string } | { ok: false; reason: string };

async function tryTensorflow(deps: BackendDeps): Promise<Attempt> {
  const reasons: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      deps.load(pkg); // registers the 'tensorflow' backend as a side effect
    } catch (e) {
      reasons.push(isMissingModule(e, pkg) ? `${pkg} is not installed` : `${pkg} failed to load (${message(e)})`);
      continue;
    }
    try {
      // Typed as always present, but returns null for an unregistered name.
      if ((tf.findBackendFactory('tensorflow') as unknown) == null) {
        reasons.push(`${pkg} loaded but registered no 'tensorflow' backend`);
        continue;
      }
      if (await deps.activate('tensorflow')) {
        return reasons.length === 0 ? { ok: true } : { ok: true, note: `using ${pkg} because ${reasons.join(', ')}` };
      }
      reasons.push(`${pkg} loaded but its backend did not initialise`);
    } catch (e) {
      reasons.push(`${pkg} backend failed to initialise (${message(e)})`);
    }
  }
  return { ok: false, reason: `native TensorFlow unavailable: ${reasons.join(', ')}` };
}

/** The part of the `webgpu` npm package (Dawn bindings) that is used here. */
interface DawnModule {
  create: (flags: string[]) => GpuLike;
  globals: Record<string, unknown>;
}
interface GpuLike {
  requestAdapter: (options?: unknown) => Promise<AdapterLike | null>;
}
interface AdapterLike {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string };
}

const SOFTWARE_ADAPTERS = /llvmpipe|lavapipe|swiftshader|softpipe|software|microsoft basic render/i;

async function tryWebgpu(deps: BackendDeps, requireHardware: boolean): Promise<Attempt> {
  let dawn: DawnModule;
  try {
    dawn = deps.load('webgpu') as DawnModule;
    if (typeof dawn.create !== 'function')
      return { ok: false, reason: 'WebGPU unavailable: the webgpu package has no create()' };
  } catch (e) {
    return {
      ok: false,
      reason: isMissingModule(e, 'webgpu')
        ? 'WebGPU unavailable: the optional webgpu package is not installed'
        : `WebGPU unavailable: the webgpu package failed to load (${message(e)})`,
    };
  }
  try {
    const g = globalThis as unknown as { navigator?: { gpu?: unknown } };
    Object.assign(globalThis, dawn.globals);
    const gpu = dawn.create([]);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (adapter === null) return { ok: false, reason: 'WebGPU unavailable: no GPU adapter was found' };
    const info = adapter.info;
    const label = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s).join(' ');
    if (requireHardware && SOFTWARE_ADAPTERS.test(label)) {
      return { ok: false, reason: `WebGPU skipped: the only adapter is a software renderer (${label})` };
    }
    // tfjs-backend-webgpu reads navigator.gpu when its backend is created.
    if (typeof g.navigator !== 'object') {
      Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    } else {
      Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
    }
  } catch (e) {
    return { ok: false, reason: `WebGPU unavailable: Dawn failed to start (${message(e)})` };
  }
  try {
    deps.load('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    return {
      ok: false,
      reason: isMissingModule(e, '@tensorflow/tfjs-backend-webgpu')
        ? 'WebGPU unavailable: @tensorflow/tfjs-backend-webgpu is not installed'
        : `WebGPU unavailable: @tensorflow/tfjs-backend-webgpu failed to load (${message(e)})`,
    };
  }
  try {
    if (await deps.activate('webgpu')) return { ok: true };
    return { ok: false, reason: 'WebGPU unavailable: the tfjs webgpu backend did not initialise' };
  } catch (e) {
    return { ok: false, reason: `WebGPU unavailable: the tfjs webgpu backend failed (${message(e)})` };
  }
}

async function tryWasm(deps: BackendDeps, options: BackendOptions | undefined): Promise<Attempt> {
  const dir = options?.wasmDir ?? deps.wasmDir();
  if (dir === undefined) return { ok: false, reason: `wasm unavailable: ${WASM_FILE} was not found` };
  try {
    deps.configureWasm(dir);
    if (await deps.activate('wasm')) return { ok: true };
    return { ok: false, reason: `wasm unavailable: the backend did not initialise from ${dir}` };
  } catch (e) {
    return { ok: false, reason: `wasm unavailable: ${message(e)}` };
  }
}

async function tryCpu(deps: BackendDeps): Promise<Attempt> {
  try {
    if (await deps.activate('cpu')) return { ok: true };
    return { ok: false, reason: 'cpu backend did not initialise' };
  } catch (e) {
    return { ok: false, reason: `cpu backend failed (${message(e)})` };
  }
}

/**
 * Selection logic with injected dependencies (exported for tests; callers use `initBackend`). Candidates are tried in
 * order; the first that activates wins, and the reasons of those skipped before it become `fallbackReason`.
 * Throws only if even the pure-JS cpu backend cannot start.
 */
export async function selectBackend(
  preference: BackendPreference,
  options: BackendOptions | undefined,
  deps: BackendDeps,
): Promise<BackendChoice> {
  type Candidate = [string, () => Promise<Attempt>];
  const tensorflow: Candidate = ['tensorflow', () => tryTensorflow(deps)];
  const wasm: Candidate = ['wasm', () => tryWasm(deps, options)];
  const cpu: Candidate = ['cpu', () => tryCpu(deps)];
  let order: Candidate[];
  switch (preference) {
    // TensorFlow.js work of a native preference (what has no native graph) runs on the fastest tfjs backend, on the
    // CPU for `cpu-native`.
    case 'auto':
    case 'cuda':
      order = [tensorflow, ['webgpu', () => tryWebgpu(deps, true)], wasm, cpu];
      break;
    case 'cpu-native':
    case 'tensorflow':
      order = [tensorflow, wasm, cpu];
      break;
    case 'webgpu':
      order = [['webgpu', () => tryWebgpu(deps, false)], wasm, cpu];
      break;
    case 'wasm':
      order = [wasm, cpu];
      break;
    case 'cpu':
      order = [cpu];
      break;
  }
  const reasons: string[] = [];
  for (const [name, attempt] of order) {
    const result = await attempt();
    if (result.ok) {
      if (result.note !== undefined) reasons.push(result.note);
      if (reasons.length === 0) return { name };
      return { name, fallbackReason: reasons.join('; ') };
    }
    reasons.push(result.reason);
  }
  throw new Error(`No TensorFlow.js backend could start: ${reasons.join('; ')}`);
}

/**
 * Chooses and activates the tfjs backend for this process (call once, before any tensor work). Never throws for a
 * missing optional backend: falls back (tensorflow/webgpu → wasm → cpu) and reports why in `fallbackReason`.
 */
export async function initBackend(preference: BackendPreference, options?: BackendOptions): Promise<BackendChoice> {
  return selectBackend(preference, options, defaultBackendDeps);
}

let backendInit: { pref: BackendPreference; choice: Promise<BackendChoice> } | undefined;

/**
 * Initialises the backend for `pref` once per process, and again only when a different preference is asked for (a
 * failed initialisation is forgotten, so the next call retries). What compression, evaluation and distillation call.
 */
export function ensureBackend(pref: BackendPreference): Promise<BackendChoice> {
  if (backendInit?.pref !== pref) {
    const choice = initBackend(pref);
    backendInit = { pref, choice };
    choice.catch(() => {
      if (backendInit?.choice === choice) backendInit = undefined;
    });
  }
  return backendInit.choice;
}

/** The backend already initialised in this process, whatever preference chose it; else `ensureBackend(pref)`. */
export function ensureSomeBackend(pref: BackendPreference): Promise<BackendChoice> {
  return backendInit?.choice ?? ensureBackend(pref);
}
