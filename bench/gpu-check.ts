/**
 * `bench/gpu-check` (`npm run bench:gpu-check`): the native engine on each GPU execution provider this machine has,
 * against onnxruntime's CPU provider, on the project's ResNet-20 (test/fixtures/models/resnet20_fmnist.pt and .onnx)
 * and the Fashion-MNIST test images, in one run of at most 10 minutes. First the device self-checks
 * (nativeDevice.ts): why each GPU device is or is not usable. Then, for each device that passes:
 * - one distillation step from the same state and batch on the GPU and on the CPU (nern/ortDistill.ts): the
 *   largest relative difference of the loss and of the predictor gradient (max |Δ| / max |cpu|);
 * - compression (`compressCheckpoint`, `--steps` reconstruction steps at h = `--hidden`, seed 0) on each device:
 *   steps/s, and the two decoded reconstructions compared (`diffFiles`: ‖Δ‖/‖cpu‖ over all represented weights and
 *   for the worst layer);
 * - distillation (`distillArtifact`, `--steps` steps, batch 64) of the CPU's artifact on each device: steps/s, the
 *   loss curves' largest relative difference, and the distilled reconstructions compared likewise.
 * Training for many steps in float32 on two devices drifts apart by rounding alone; the one-step figures say whether
 * the device computes the same step, the end-of-run figures how far that drift goes. With no GPU (or no native
 * engine) it prints the reasons and exits 0. Asserts nothing. `--cpu-as-device` runs the whole comparison with the
 * CPU provider in the GPU's place (every difference is then 0): a check of the script on a machine without a GPU.
 *
 * Run: bench/gpu-check [--steps 200] [--hidden 160] [--cpu-as-device]   (the wrapper sets up Vulkan for WebGPU)
 */
import { mkdirSync, rmSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ensureBackend } from '../src/core/backend/tfjsBackend';
import { loadOnnxRuntime, type OrtModuleLike } from '../src/core/backend/onnxRuntime';
import { nativeEngineLabel, selfCheckDevice, type NativeDevice } from '../src/core/backend/nativeDevice';
import { openDataset } from '../src/core/data/dataset';
import { weightTensors } from '../src/core/graph/execute';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS } from '../src/core/jobs/compress';
import { diffFiles } from '../src/core/jobs/diff';
import { bindLayers, distillArtifact, DEFAULT_DISTILL_OPTIONS } from '../src/core/jobs/distill';
import { loadExecutableModel } from '../src/core/models/executableModel';
import { readArtifact } from '../src/core/nern/artifact';
import { buildDistillModels, OrtDistillTrainer } from '../src/core/nern/ortDistill';
import type { BackendName } from '../src/protocol/vocabulary';
import { fixedBatchDistillStep } from './fixedBatchStep';

const ROOT = resolve(__dirname, '..');
const OUT = join(ROOT, 'bench', 'out', 'gpu-check');
const MODEL = join(ROOT, 'test', 'fixtures', 'models', 'resnet20_fmnist.onnx');
const STATE_DICT = join(ROOT, 'test', 'fixtures', 'models', 'resnet20_fmnist.pt');
const IMAGES = join(ROOT, 'test', 'fixtures', 'data', 'idx', 't10k-images-idx3-ubyte.gz');
const BATCH = 64;
/** The GPU devices, in the order `auto` tries them, with the backend preference that asks for each. */
const GPU_DEVICES: readonly { device: Exclude<NativeDevice, 'cpu'>; backend: BackendName }[] = [
  { device: 'cuda', backend: 'cuda' },
  { device: 'webgpu', backend: 'webgpu' },
];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

/** max |a − b| / max |b| (b the CPU's values); Infinity when a value is not finite or the lengths differ. */
function maxRelative(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs((a[i] ?? NaN) - (b[i] ?? NaN));
    worst = Number.isFinite(d) ? Math.max(worst, d) : Number.POSITIVE_INFINITY;
    scale = Math.max(scale, Math.abs(b[i] ?? 0));
  }
  return scale > 0 ? worst / scale : worst;
}

const exp = (x: number | null): string => (x === null ? 'n/a' : x.toExponential(2));
const line = (what: string, value: string): void => {
  console.log(`  ${what.padEnd(50)}${value}`);
};

/** The decoded reconstructions of two artifacts compared: ‖Δ‖/‖cpu‖ over all tensors, and the worst tensor's. */
async function compareArtifacts(cpuPath: string, gpuPath: string): Promise<string> {
  const d = await diffFiles(cpuPath, gpuPath);
  const worst = d.tensors.reduce<{ name: string; relative: number } | undefined>((w, t) => {
    const r = t.delta?.relative ?? 0;
    return w === undefined || r > w.relative ? { name: t.a?.name ?? '?', relative: r } : w;
  }, undefined);
  return `‖Δ‖/‖cpu‖ ${exp(d.summary.relative)} over ${d.summary.compared.toLocaleString('en-US')} weights; worst ${worst?.name ?? '-'} ${exp(worst?.relative ?? null)}`;
}

interface RunFigures {
  label: string;
  reason?: string;
  stepsPerSecond: number;
  out: string;
  losses: number[];
}

/** `compressCheckpoint` on `backend`: its speed from the last progress event, the engine that ran it. */
async function compressOn(backend: BackendName, steps: number, hidden: number, tag: string): Promise<RunFigures> {
  let rate = NaN;
  const out = join(OUT, `compress-${tag}.nern.safetensors`);
  const report = await compressCheckpoint(
    STATE_DICT,
    {
      ...DEFAULT_COMPRESS_OPTIONS,
      budget: { kind: 'hidden', hidden },
      steps,
      seed: 0,
      backend,
      out,
    },
    { onProgress: (p) => (rate = p.stepsPerSecond) },
  );
  return {
    label: report.backend,
    ...(report.engineReason !== undefined ? { reason: report.engineReason } : {}),
    stepsPerSecond: rate,
    out,
    losses: report.lossCurve.map(([, l]) => l),
  };
}

/** `distillArtifact` of `artifact` on `backend`: speed, engine, loss curve. */
async function distillOn(backend: BackendName, artifact: string, steps: number, tag: string): Promise<RunFigures> {
  let rate = NaN;
  const out = join(OUT, `distill-${tag}.nern.safetensors`);
  const report = await distillArtifact(
    {
      artifact,
      model: MODEL,
      data: IMAGES,
      options: { ...DEFAULT_DISTILL_OPTIONS, steps, batchSize: BATCH, evalSamples: 256, evalEvery: 0, backend, out },
    },
    { onProgress: (p) => (rate = p.stepsPerSecond) },
  );
  return {
    label: report.engineLabel ?? report.engine ?? '?',
    ...(report.engineReason !== undefined ? { reason: report.engineReason } : {}),
    stepsPerSecond: rate,
    out,
    losses: report.lossCurve.map(([, l]) => l),
  };
}

/** One native distillation step on `device` from the artifact's predictor on a fixed batch: losses and gradient. */
async function oneStep(
  ort: OrtModuleLike,
  device: NativeDevice,
  artifactPath: string,
): Promise<{ loss: number; gradient: Float32Array } | { reason: string }> {
  const model = await loadExecutableModel(MODEL);
  const artifact = await readArtifact(artifactPath);
  const data = await openDataset(IMAGES);
  const original = weightTensors(model.graph, model.weights);
  try {
    const { bound } = bindLayers(artifact, model.graph, 'resnet20');
    const { spec, x } = await fixedBatchDistillStep(model, artifact, data, original, bound, BATCH, 10, {
      gradientOutputs: true,
    });
    const built = buildDistillModels(spec);
    if ('reason' in built) return { reason: built.reason };
    const trainer = await OrtDistillTrainer.create(ort, spec, built.models, {
      threads: availableParallelism(),
      device,
    });
    try {
      const { loss } = await trainer.step(x.data, x.data);
      const parts = trainer.lastGradients;
      const gradient = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        gradient.set(p, at);
        at += p.length;
      }
      return { loss, gradient };
    } finally {
      await trainer.dispose();
    }
  } finally {
    tf.dispose(Object.values(original));
    await artifact.close();
    await data.close();
  }
}

function speedLine(what: string, gpu: RunFigures, cpu: RunFigures): void {
  line(
    `${what} steps/s`,
    `${gpu.stepsPerSecond.toFixed(2)} on ${gpu.label} · ${cpu.stepsPerSecond.toFixed(2)} on ${cpu.label} (×${(gpu.stepsPerSecond / cpu.stepsPerSecond).toFixed(2)})`,
  );
  if (gpu.reason !== undefined) line(`${what} fallback`, gpu.reason);
  line(`${what} loss curves, max relative Δ`, exp(maxRelative(gpu.losses, cpu.losses)));
}

async function main(): Promise<void> {
  const steps = Number(arg('steps', '200'));
  const hidden = Number(arg('hidden', '160'));
  console.log(`CPU: ${cpus()[0]?.model ?? '?'} × ${availableParallelism()}`);
  const loaded = loadOnnxRuntime();
  if (!loaded.ok) {
    console.log(`No native engine: ${loaded.reason}. Nothing to check.`);
    return;
  }
  const { ort } = loaded;
  console.log('Device self-checks (one Gemm/Relu/Conv graph on the device against the CPU provider):');
  const usable: { device: NativeDevice; backend: BackendName }[] = [];
  if (process.argv.includes('--cpu-as-device')) {
    line('cpu', 'standing in for a GPU (--cpu-as-device)');
    usable.push({ device: 'cpu', backend: 'cpu-native' });
  }
  for (const d of GPU_DEVICES) {
    // The reason of a device the machine does not have names the missing device node (selfCheckDevice).
    const probe = await selfCheckDevice(ort, d.device);
    if (probe.ok) {
      line(d.device, `passes: relative difference ${exp(probe.difference)}`);
      usable.push(d);
    } else line(d.device, probe.reason);
  }
  if (usable.length === 0) {
    console.log(
      'No GPU execution provider is usable here: the native engine runs on the CPU provider. Nothing to check.',
    );
    return;
  }

  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  await ensureBackend('wasm');
  console.log(`\nOn the CPU provider: compression, ${steps} steps at h = ${hidden}…`);
  const cpuCompress = await compressOn('cpu-native', steps, hidden, 'cpu');
  line('compression', `${cpuCompress.stepsPerSecond.toFixed(2)} steps/s on ${cpuCompress.label}`);
  console.log(`On the CPU provider: distillation, ${steps} steps, batch ${BATCH}…`);
  const cpuDistill = await distillOn('cpu-native', cpuCompress.out, steps, 'cpu');
  line('distillation', `${cpuDistill.stepsPerSecond.toFixed(2)} steps/s on ${cpuDistill.label}`);
  const cpuStep = await oneStep(ort, 'cpu', cpuCompress.out);

  for (const d of usable) {
    console.log(`\n${nativeEngineLabel(d.device, availableParallelism())} against ${cpuCompress.label}:`);
    try {
      const step = await oneStep(ort, d.device, cpuCompress.out);
      if ('reason' in step) line('one distillation step', `not run: ${step.reason}`);
      else if ('reason' in cpuStep) line('one distillation step', `not run: ${cpuStep.reason}`);
      else {
        line(
          'one distillation step, loss relative Δ',
          exp(Math.abs(step.loss - cpuStep.loss) / Math.abs(cpuStep.loss)),
        );
        line('one distillation step, gradient max relative Δ', exp(maxRelative(step.gradient, cpuStep.gradient)));
      }
      const gpuCompress = await compressOn(d.backend, steps, hidden, d.device);
      speedLine('compression', gpuCompress, cpuCompress);
      line('compression reconstructions', await compareArtifacts(cpuCompress.out, gpuCompress.out));
      const gpuDistill = await distillOn(d.backend, cpuCompress.out, steps, d.device);
      speedLine('distillation', gpuDistill, cpuDistill);
      line('distilled reconstructions', await compareArtifacts(cpuDistill.out, gpuDistill.out));
    } catch (e) {
      line('failed', e instanceof Error ? e.message : String(e));
    }
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
