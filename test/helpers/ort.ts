/**
 * onnxruntime-node in tests: the reference runtime that graph and native-training tests compare against. The package
 * is optional, so where it cannot be loaded those tests skip with the reason, except where it is expected to be
 * installed (CI, or WEIGHT_LENS_REQUIRE_ORT=1): there a missing onnxruntime-node fails them instead of hiding them.
 */
import { createRequire } from 'node:module';
import { loadOnnxRuntime, type OrtLoad, type OrtModuleLike } from '../../src/core/backend/onnxRuntime';

/**
 * True when onnxruntime-node must be present: WEIGHT_LENS_REQUIRE_ORT=1 (=0 turns it off), otherwise when `CI` is set
 * to anything but "" / "0" / "false" (CI services set CI=true).
 */
export const ORT_REQUIRED = ((): boolean => {
  const explicit = process.env.WEIGHT_LENS_REQUIRE_ORT;
  if (explicit !== undefined && explicit !== '') return explicit === '1';
  const ci = process.env.CI;
  return ci !== undefined && !['', '0', 'false'].includes(ci.toLowerCase());
})();

/**
 * The `skip` option of a test that needs onnxruntime-node, given why it cannot be loaded (`undefined` when it loads):
 * the reason where the package is optional; `false` where it is required, so the test runs and must fail on it.
 */
export function ortSkip(unavailable: string | undefined): string | false {
  if (unavailable === undefined || ORT_REQUIRED) return false;
  return unavailable;
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
    cached = `onnxruntime-node cannot be loaded (${e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e)})`;
  }
  return cached;
}

/** Runs `model` (path or bytes) in onnxruntime with float32 `feeds`; returns outputs as Float32Array + dims. */
export async function runOrt(
  ort: Ort,
  model: string | Uint8Array,
  feeds: Record<string, { data: Float32Array; dims: number[] }>,
): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
  const session = await ort.InferenceSession.create(model);
  const inputs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(feeds)) inputs[k] = new ort.Tensor('float32', v.data, v.dims);
  const out = await session.run(inputs);
  await session.release?.();
  const result: Record<string, { data: Float32Array; dims: number[] }> = {};
  for (const [k, v] of Object.entries(out)) {
    // Boolean outputs become 0/1, int64 ones numbers.
    result[k] = { data: Float32Array.from(v.data as ArrayLike<number | bigint | boolean>, Number), dims: [...v.dims] };
  }
  return result;
}

/** onnxruntime-node as the project itself loads it, for tests of the native engine. */
export interface ProjectOrt {
  /** `loadOnnxRuntime()`'s result. */
  readonly loaded: OrtLoad;
  /** The `skip` option of a test that needs it (`ortSkip` of the reason it cannot be loaded). */
  readonly skip: string | false;
  /** The loaded module; throws (failing the test) where it cannot be loaded. */
  readonly ort: () => OrtModuleLike;
}

/** Loads onnxruntime-node through the project's loader once per call site; never throws. */
export function projectOrt(): ProjectOrt {
  const loaded = loadOnnxRuntime();
  return {
    loaded,
    skip: ortSkip(loaded.ok ? undefined : `onnxruntime-node is optional and absent here (${loaded.reason})`),
    ort: () => {
      if (!loaded.ok) throw new Error(`onnxruntime-node is expected here but cannot be loaded (${loaded.reason})`);
      return loaded.ort;
    },
  };
}
