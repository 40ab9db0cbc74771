/**
 * The device the native engine (onnxruntime-node) runs on: its CPU execution provider (MLAS, every core), its WebGPU
 * provider (Dawn: Vulkan, D3D12 or Metal, on any vendor's GPU; in the 1.30 binaries) or its CUDA provider (where the
 * user installed onnxruntime's CUDA binaries). A GPU provider is used only when it starts AND passes a self-check: one
 * run of a small graph of the ops the native graphs are made of (Gemm, Relu, Conv, ReduceSum), compared with the CPU
 * provider's result. Each provider is probed once per process. Every choice that is not the first device asked for
 * comes with the sentence that says why, for the progress, the status bar and the report. Never throws.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendName } from '../../protocol/vocabulary';
import { modelProto, nodeEmitter, valueInfoProto } from './onnxGraph';
import { firstLine, type OrtModuleLike, type OrtSessionLike } from './onnxRuntime';

/** A device of the native engine. */
export type NativeDevice = 'cpu' | 'webgpu' | 'cuda';

/** The onnxruntime execution provider name of each device. */
const PROVIDER: Readonly<Record<NativeDevice, string>> = { cpu: 'cpu', webgpu: 'webgpu', cuda: 'cuda' };

/** How each device is named to the user. */
const DEVICE_LABEL: Readonly<Record<NativeDevice, string>> = { cpu: 'CPU', webgpu: 'WebGPU', cuda: 'CUDA' };

/**
 * Largest accepted difference between a GPU provider's self-check result and the CPU provider's, relative to the
 * largest CPU value (max |gpu − cpu| / max |cpu|). float32 with TF32 tensor cores (CUDA's default) differs by about
 * 1e-4 on these sums; a broken driver or provider differs by far more.
 */
export const SELF_CHECK_TOLERANCE = 2e-3;

/**
 * The devices a backend preference tries, in order, or null when it does not use the native engine (`wasm`,
 * `tensorflow`, `cpu` are TensorFlow.js backends). `auto` tries CUDA, then WebGPU, then the CPU; `cuda` and `webgpu`
 * fall back to the CPU; `cpu-native` is the CPU provider alone.
 */
export function nativeDevicesFor(backend: BackendName): readonly NativeDevice[] | null {
  switch (backend) {
    case 'auto':
      return ['cuda', 'webgpu', 'cpu'];
    case 'cuda':
      return ['cuda', 'cpu'];
    case 'webgpu':
      return ['webgpu', 'cpu'];
    case 'cpu-native':
      return ['cpu'];
    case 'wasm':
    case 'tensorflow':
    case 'cpu':
      return null;
  }
}

/** The device chosen for the native engine. */
export interface NativeDeviceChoice {
  readonly device: NativeDevice;
  /**
   * Why a GPU device that was tried is not used (one clause per device), absent when the first device tried is the
   * one chosen. Under `auto`, a kind of GPU the machine does not have at all is not mentioned (the CPU is then simply
   * the choice), but one that is there and fails to start or fails its self-check is, e.g. "WebGPU unavailable:
   * Failed to get a WebGPU adapter …".
   */
  readonly reason?: string;
}

/** Result of probing one device. */
export type DeviceProbe =
  | { readonly ok: true; readonly difference: number }
  /** `absent`: no GPU of the kind is on the machine at all (not a failure of one that is). */
  | { readonly ok: false; readonly reason: string; readonly absent?: boolean };

/** Probes a GPU device: starts a session on it and runs the self-check against the CPU. Injected by tests. */
export type DeviceProber = (ort: OrtModuleLike, device: Exclude<NativeDevice, 'cpu'>) => Promise<DeviceProbe>;

/** The default prober's results, per device, for this process. */
const probes = new Map<NativeDevice, Promise<DeviceProbe>>();

/**
 * Chooses the device for `backend`'s native work: the first of `nativeDevicesFor(backend)` that starts and passes the
 * self-check (the CPU always does). Returns null for a TensorFlow.js-only preference. The default prober
 * (`selfCheckDevice`) probes each GPU device once per process. Never throws.
 */
export async function chooseNativeDevice(
  ort: OrtModuleLike,
  backend: BackendName,
  probe: DeviceProber = selfCheckDevice,
): Promise<NativeDeviceChoice | null> {
  const devices = nativeDevicesFor(backend);
  if (devices === null) return null;
  const reasons: string[] = [];
  for (const device of devices) {
    if (device === 'cpu') break;
    const result = await probeOnce(ort, device, probe);
    if (result.ok) return choice(device, reasons);
    // Under auto, a machine without such a GPU is no fallback: only a GPU that is there and fails is worth saying.
    if (backend !== 'auto' || result.absent !== true) reasons.push(result.reason);
  }
  return choice('cpu', reasons);
}

/** `probe`'s result for `device`; the default prober's is cached for the process (a probe starts a GPU context). */
function probeOnce(
  ort: OrtModuleLike,
  device: Exclude<NativeDevice, 'cpu'>,
  probe: DeviceProber,
): Promise<DeviceProbe> {
  const run = (): Promise<DeviceProbe> =>
    probe(ort, device).catch((e: unknown): DeviceProbe => ({ ok: false, reason: firstLine(e) }));
  if (probe !== selfCheckDevice) return run();
  let pending = probes.get(device);
  if (pending === undefined) {
    pending = run();
    probes.set(device, pending);
  }
  return pending;
}

function choice(device: NativeDevice, reasons: readonly string[]): NativeDeviceChoice {
  return { device, ...(reasons.length > 0 ? { reason: reasons.join('; ') } : {}) };
}

/** The CPU provider, asked for (no reason). */
export const CPU_DEVICE: NativeDeviceChoice = { device: 'cpu' };

/**
 * Opens what `open` builds (a session, a trainer) on `chosen`; a GPU that passed its self-check but refuses it (`open`
 * throws) is replaced by the CPU, and "<device> could not <what> (<error>)" joins the reason. Resolves to the value
 * and the device it is on; rejects with the CPU's error.
 */
export async function openOnDevice<T>(
  chosen: NativeDeviceChoice,
  what: string,
  open: (on: NativeDeviceChoice) => Promise<T>,
): Promise<{ value: T; on: NativeDeviceChoice }> {
  try {
    return { value: await open(chosen), on: chosen };
  } catch (e) {
    if (chosen.device === 'cpu') throw e;
    const why = `${chosen.device} could not ${what} (${firstLine(e)})`;
    const cpu: NativeDeviceChoice = {
      device: 'cpu',
      reason: chosen.reason !== undefined ? `${chosen.reason}; ${why}` : why,
    };
    return { value: await open(cpu), on: cpu };
  }
}

/**
 * The engine's name as progress, the status bar and reports show it: `onnxruntime (native, 2 threads)` on the CPU
 * provider, `onnxruntime (native, CUDA)` and `onnxruntime (native, WebGPU)` on a GPU.
 */
export function nativeEngineLabel(device: NativeDevice, threads: number): string {
  return device === 'cpu'
    ? `onnxruntime (native, ${threads} thread${threads === 1 ? '' : 's'})`
    : `onnxruntime (native, ${DEVICE_LABEL[device]})`;
}

/**
 * Session options on `device` shared by every native graph: `threads` intra-op threads (CPU work), sequential
 * execution, all graph optimisations, warnings and errors only, idle threads that sleep rather than spin (the machine
 * is shared with the editor), plus `extraSession` config entries.
 */
export function nativeSessionOptions(
  device: NativeDevice,
  threads: number,
  extraSession: Readonly<Record<string, string>> = {},
): Record<string, unknown> {
  return {
    executionProviders: [PROVIDER[device]],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    extra: { session: { 'intra_op.allow_spinning': '0', ...extraSession } },
  };
}

// The self-check graph: y = ReduceSum(Relu(X·W + b)) per row, and z = ReduceSum(Conv(I, K)): the dense and
// convolution kernels that the training and evaluation graphs spend their time in.
const ROWS = 64;
const COLS = 96;
const CONV_CHANNELS = 8;
const CONV_SIDE = 12;

/** The self-check model and its feeds (deterministic values in [−1, 1]). */
function selfCheckModel(): { bytes: Uint8Array; feeds: Record<string, { dims: number[]; data: Float32Array }> } {
  const nodes: Uint8Array[] = [];
  const emit = nodeEmitter(nodes);
  emit('Gemm', ['X', 'W', 'b'], ['h']);
  emit('Relu', ['h'], ['r']);
  emit(
    'ReduceSum',
    ['r'],
    ['y'],
    [
      { name: 'keepdims', i: 0 },
      { name: 'noop_with_empty_axes', i: 0 },
    ],
  );
  emit('Conv', ['I', 'K'], ['c'], [{ name: 'pads', ints: [1, 1, 1, 1] }]);
  emit('ReduceSum', ['c'], ['z'], [{ name: 'keepdims', i: 0 }]);
  const fill = (n: number, phase: number): Float32Array =>
    Float32Array.from({ length: n }, (_, i) => Math.sin(0.7 * i + phase));
  const shapes: Record<string, number[]> = {
    X: [ROWS, COLS],
    W: [COLS, COLS],
    b: [COLS],
    I: [2, CONV_CHANNELS, CONV_SIDE, CONV_SIDE],
    K: [CONV_CHANNELS, CONV_CHANNELS, 3, 3],
  };
  const feeds: Record<string, { dims: number[]; data: Float32Array }> = {};
  let phase = 0;
  for (const [name, dims] of Object.entries(shapes)) {
    feeds[name] = {
      dims,
      data: fill(
        dims.reduce((a, b) => a * b, 1),
        (phase += 1),
      ),
    };
  }
  const bytes = modelProto(
    'weight-lens-device-check',
    nodes,
    [],
    Object.entries(shapes).map(([name, dims]) => valueInfoProto(name, dims)),
    [valueInfoProto('y', []), valueInfoProto('z', [])],
  );
  return { bytes, feeds };
}

/**
 * Runs the self-check model on `device`; resolves to [y, z]: y = Σ Relu(X·W + b) over X [64, 96], W [96, 96], b [96],
 * z = Σ Conv(I, K) over I [2, 8, 12, 12], K [8, 8, 3, 3] with pads 1, where each input is sin(0.7·i + k) in
 * row-major order (k = 1 … 5 for X, W, b, I, K).
 */
export async function runSelfCheck(ort: OrtModuleLike, device: NativeDevice): Promise<number[]> {
  const { bytes, feeds } = selfCheckModel();
  let session: OrtSessionLike | undefined;
  try {
    session = await ort.InferenceSession.create(bytes, nativeSessionOptions(device, 1));
    const inputs = Object.fromEntries(
      Object.entries(feeds).map(([name, f]) => [name, new ort.Tensor('float32', f.data, f.dims)]),
    );
    const out = await session.run(inputs);
    return ['y', 'z'].map((name) => {
      const data = out[name]?.data;
      if (!(data instanceof Float32Array) || data.length !== 1)
        throw new Error(`the self-check output ${name} is missing`);
      return data[0] ?? Number.NaN;
    });
  } finally {
    await session?.release();
  }
}

/**
 * The self-check of a GPU device: starts a session on it, runs the check graph there and on the CPU provider, and
 * passes when the results agree to `SELF_CHECK_TOLERANCE`. The failure reason names the device and says what failed
 * (the provider did not start, or its result differs by how much).
 */
export async function selfCheckDevice(ort: OrtModuleLike, device: Exclude<NativeDevice, 'cpu'>): Promise<DeviceProbe> {
  const label = DEVICE_LABEL[device];
  const absent = missingGpuDevice(device);
  if (absent !== null) return { ok: false, reason: `${label} unavailable: ${absent}`, absent: true };
  return probeProvider(ort, device);
}

/**
 * The self-check of `device`'s provider without the device-node pre-check: starts it, runs the check graph there and
 * on the CPU, and compares (`compareSelfCheck`). The reason of a provider that does not start is one sentence.
 */
export async function probeProvider(ort: OrtModuleLike, device: Exclude<NativeDevice, 'cpu'>): Promise<DeviceProbe> {
  const label = DEVICE_LABEL[device];
  let gpu: number[];
  try {
    gpu = await runSelfCheck(ort, device);
  } catch (e) {
    return { ok: false, reason: `${label} unavailable: ${providerFailure(device, e)}` };
  }
  const cpu = await runSelfCheck(ort, 'cpu');
  return compareSelfCheck(label, gpu, cpu);
}

/**
 * On Linux, why no GPU of `device`'s kind can be present (no NVIDIA device node for CUDA; no DRM render node nor
 * NVIDIA node for WebGPU), or null when one may be. Elsewhere always null (the provider itself is asked). This keeps
 * `auto` on a GPU-less machine from starting GPU contexts (and their driver messages) only to fail.
 */
export function missingGpuDevice(device: Exclude<NativeDevice, 'cpu'>, root = '/dev'): string | null {
  if (process.platform !== 'linux') return null;
  const nvidia = existsSync(join(root, 'nvidiactl')) || existsSync(join(root, 'nvidia0'));
  if (device === 'cuda') return nvidia ? null : `no NVIDIA GPU on this machine (no ${root}/nvidia0)`;
  let render = false;
  try {
    render = readdirSync(join(root, 'dri')).some((name) => name.startsWith('renderD'));
  } catch {
    render = false;
  }
  return nvidia || render ? null : `no GPU on this machine (no ${root}/dri render node, no ${root}/nvidia0)`;
}

/** onnxruntime's error when `device`'s provider fails to start, as one sentence a user can act on. */
function providerFailure(device: Exclude<NativeDevice, 'cpu'>, e: unknown): string {
  const text = firstLine(e);
  if (device === 'cuda' && /Failed to load shared library|providers_cuda/i.test(text))
    return "onnxruntime's CUDA provider is not installed, or the CUDA 12 and cuDNN 9 libraries it needs do not load";
  const adapter = /Failed to get a WebGPU adapter[^.]*/.exec(text);
  if (adapter !== null) return `${adapter[0]} (no Vulkan, D3D12 or Metal driver that Dawn accepts)`;
  return text;
}

/**
 * Compares a device's self-check results with the CPU's: passes when max |gpu − cpu| / max |cpu| ≤
 * `SELF_CHECK_TOLERANCE` and every value is finite.
 */
export function compareSelfCheck(label: string, gpu: readonly number[], cpu: readonly number[]): DeviceProbe {
  const scale = Math.max(...cpu.map(Math.abs));
  let worst = 0;
  for (let i = 0; i < cpu.length; i++) {
    const d = Math.abs((gpu[i] ?? Number.NaN) - (cpu[i] ?? 0));
    worst = Number.isFinite(d) ? Math.max(worst, d) : Number.POSITIVE_INFINITY;
  }
  const difference = scale > 0 ? worst / scale : worst;
  if (!(difference <= SELF_CHECK_TOLERANCE))
    return {
      ok: false,
      reason: `${label} failed its self-check (its result differs from the CPU's by ${difference.toExponential(2)} relative, more than ${SELF_CHECK_TOLERANCE})`,
    };
  return { ok: true, difference };
}
