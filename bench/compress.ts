/**
 * `npm run bench:compress`: compresses the project's Fashion-MNIST ResNet-20 (a real torch.save state dict) with the
 * Weight Lens engine at h = 160 and h = 180 (crossfilter), then trains the same predictor with the PyTorch reference
 * (bench/reference/nern_reference.py: same encoding, batch, sampling, optimiser, schedule and steps) on the same file,
 * and prints steps/s, kernels/s, GFLOP/s (6·B·MACs per step), final RMSE and the training time to reach RMSE
 * thresholds, side by side. Evaluation time is excluded from all timings on both sides.
 *
 * Run: node --import tsx bench/compress.ts [--steps 2000 | --quick] [--hidden 160,180] [--seed 0] [--eval-every N]
 *      [--threads 1,2] [--no-torch] [--retrain] [--engine compress|direct|cli] [--backend auto|wasm|cpu]
 * The checkpoint is bench/out/resnet20_fmnist.pt: copied from test/fixtures/models/ if there, otherwise trained by
 * bench/reference/train_resnet20.py (needs Debian's python3-torch and dataset-fashion-mnist; about 6 minutes).
 * `--engine compress` (default) calls compressCheckpoint (src/core/jobs/compress.ts) and times it from its progress and
 * evaluation callbacks; `--engine direct` calls the engine's trainReconstruction on the conv layers; `--engine cli` runs
 * `weight-lens compress FILE --hidden H --steps N --permutation crossfilter --seed S --json` from dist/cli.js (build
 * first) and takes its report: there the thresholds come from the batch-loss curve (an estimate of the full RMSE) and
 * the report's seconds, which include everything the command does besides loading.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { initBackend } from '../src/core/backend/tfjsBackend';
import { openCheckpoint } from '../src/core/formats/registry';
import type { KernelLayer } from '../src/core/nern/kernelMap';
import { MIN_REPRESENTED_PARAMS } from '../src/core/nern/budget';
import { nernPredictorSpec, predictorForwardMacs } from '../src/core/nern/predictor';
import { DEFAULT_TRAIN_OPTIONS, trainReconstruction } from '../src/core/nern/train';
import { readTensorValues } from '../src/core/tensors/tensor';
import type { BackendName, CompressReportDto } from '../src/protocol/compress';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS } from '../src/core/jobs/compress';

const ROOT = resolve(__dirname, '..');
const OUT_DIR = join(ROOT, 'bench', 'out');
const CHECKPOINT = join(OUT_DIR, 'resnet20_fmnist.pt');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'models', 'resnet20_fmnist.pt');
const PYTHON = '/usr/bin/python3';
/** RMSE thresholds as fractions of the weight RMS. */
const THRESHOLDS = [0.7, 0.5, 0.4];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const flag = (name: string): boolean => process.argv.includes(`--${name}`);
/** Backend preference of the compress runs: `auto` (default) trains natively on onnxruntime when installed. */
const COMPRESS_BACKEND = (arg('backend') ?? 'auto') as BackendName;

/** One training run's figures; times in seconds, RMSE in weight units. */
interface RunResult {
  side: string;
  hidden: number;
  threads: number;
  steps: number;
  batch: number;
  trainSeconds: number;
  /** [step, training seconds at that step (evaluations excluded), RMSE over all represented weights]. */
  evaluations: [number, number, number][];
  rmse: number;
  weightRms: number;
  predictorParams: number;
  load: string;
}

const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

function torchAvailable(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Makes sure bench/out/resnet20_fmnist.pt exists (copy of the committed fixture, or trained now). */
function ensureCheckpoint(): void {
  mkdirSync(OUT_DIR, { recursive: true });
  if (existsSync(CHECKPOINT) && !flag('retrain')) return;
  if (existsSync(FIXTURE) && !flag('retrain')) {
    copyFileSync(FIXTURE, CHECKPOINT);
    console.log(`checkpoint: copied ${FIXTURE}`);
    return;
  }
  if (torchAvailable() === null) {
    throw new Error(
      `${CHECKPOINT} is missing and ${PYTHON} cannot import torch: install Debian's python3-torch (apt-get install -y python3-torch) to train it`,
    );
  }
  if (!existsSync('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz')) {
    throw new Error('Fashion-MNIST is missing: apt-get install -y dataset-fashion-mnist');
  }
  console.log('checkpoint: training ResNet-20 on Fashion-MNIST (2 epochs, about 6 minutes)…');
  execFileSync(
    PYTHON,
    [
      join(ROOT, 'bench/reference/train_resnet20.py'),
      join(OUT_DIR, 'resnet20_fmnist'),
      '--epochs',
      '2',
      '--threads',
      '1',
      '--seed',
      '0',
    ],
    { stdio: 'inherit' },
  );
}

/** The 3×3 / 1×1 conv weights of the checkpoint, in file order, as the engine's layers. */
async function loadKernelLayers(path: string): Promise<KernelLayer[]> {
  const checkpoint = await openCheckpoint(path);
  try {
    const layers: KernelLayer[] = [];
    for (const t of checkpoint.tensors) {
      const [, , kh, kw] = t.shape;
      if (t.shape.length === 4 && kh === kw && (kh === 3 || kh === 1)) {
        layers.push({ name: t.name, shape: t.shape, values: await readTensorValues(t) });
      }
    }
    return layers;
  } finally {
    await checkpoint.close();
  }
}

/** Timing of a run from its progress and evaluation callbacks, excluding in-loop evaluation time. */
class RunClock {
  readonly evaluations: [number, number, number][] = [];
  evalSeconds = 0;
  private first: { at: number; step: number; sps: number } | null = null;
  private last = { at: 0, step: 0 };

  progress(step: number, stepsPerSecond: number): void {
    const at = performance.now() / 1000;
    this.first ??= { at, step, sps: stepsPerSecond };
    this.last = { at, step };
  }

  /** In-loop evaluations run right after the progress report of the same step: their time is excluded. */
  evaluation(step: number, rmse: number, finalStep: number, weightRms: number): void {
    const at = performance.now() / 1000;
    this.evaluations.push([step, this.trainTime(this.last.at), rmse]);
    console.log(
      `  step ${step}: rmse ${rmse.toFixed(5)} (${(rmse / weightRms).toFixed(3)} of rms) at ${this.trainTime(this.last.at).toFixed(0)} s; load ${load()}`,
    );
    if (step === this.last.step && step < finalStep) this.evalSeconds += at - this.last.at;
  }

  /** Training seconds up to the last progress report (the first window is extrapolated back to step 0). */
  trainTime(at = this.last.at): number {
    if (!this.first) return 0;
    return at - this.first.at + this.first.step / this.first.sps - this.evalSeconds;
  }
}

/** The engine's reconstruction on the checkpoint's conv layers (wasm backend, one thread). */
async function runEngine(
  layers: KernelLayer[],
  hidden: number,
  steps: number,
  seed: number,
  evalEvery: number,
): Promise<RunResult> {
  const clock = new RunClock();
  const loadBefore = load();
  const result = await trainReconstruction(
    layers,
    { hidden, steps, seed, permutation: 'crossfilter', evalEvery, progressEvery: 10 },
    {
      onProgress: (p) => {
        clock.progress(p.step, p.stepsPerSecond);
      },
      onEvaluation: (e) => {
        clock.evaluation(e.step, e.rmse, steps, e.weightRms);
      },
    },
  );
  const trainSeconds = result.trainSeconds - clock.evalSeconds;
  const last = clock.evaluations.at(-1);
  if (last) last[1] = trainSeconds;
  return {
    side: 'Weight Lens trainReconstruction (wasm)',
    hidden,
    threads: 1,
    steps: result.steps,
    batch: Math.min(result.options.batchSize, result.representedWeights / 9),
    trainSeconds,
    evaluations: clock.evaluations,
    rmse: result.evaluation.rmse,
    weightRms: result.evaluation.weightRms,
    predictorParams: result.predictorParameters,
    load: `${loadBefore} → ${load()}`,
  };
}

/** `compressCheckpoint` (src/core/jobs/compress.ts) on the checkpoint, writing the artifact to bench/out/. */
async function runCompress(hidden: number, steps: number, seed: number, weightRms: number): Promise<RunResult> {
  const clock = new RunClock();
  const loadBefore = load();
  let backend = '?';
  let rms = weightRms;
  const report = await compressCheckpoint(
    CHECKPOINT,
    {
      ...DEFAULT_COMPRESS_OPTIONS,
      budget: { kind: 'hidden', hidden },
      steps,
      permutation: 'crossfilter',
      seed,
      backend: COMPRESS_BACKEND,
      out: join(OUT_DIR, `resnet20_fmnist-h${hidden}.nern.safetensors`),
    },
    {
      onBackend: (c) => {
        backend = c.name;
      },
      onProgress: (p) => {
        backend = p.backend; // the engine that runs the steps (native onnxruntime or a tfjs backend)
        clock.progress(p.step, p.stepsPerSecond);
      },
      onEvaluation: (e) => {
        rms = e.weightRms; // over the tensors compress represents
        clock.evaluation(e.step, e.rmse, steps, e.weightRms);
      },
    },
  );
  const trainSeconds = clock.trainTime();
  const last = clock.evaluations.at(-1);
  if (last?.[0] === report.steps) last[1] = trainSeconds;
  else clock.evaluations.push([report.steps, trainSeconds, report.rmse]);
  console.log(
    `  artifact ${report.artifact}: ${report.artifactBytes} B of ${report.sourceBytes} B (ratio ${report.ratio.toFixed(2)}), ` +
      `predictor ${report.predictorParams} params for ${report.representedParams} represented weights; command ${report.seconds.toFixed(0)} s`,
  );
  return {
    side: `Weight Lens compressCheckpoint (${backend})`,
    hidden: report.hidden,
    threads: /(\d+) threads?\)/.exec(backend)?.[1] !== undefined ? Number(/(\d+) threads?\)/.exec(backend)?.[1]) : 1,
    steps: report.steps,
    batch: Math.min(DEFAULT_TRAIN_OPTIONS.batchSize, report.representedParams / 9),
    trainSeconds,
    evaluations: clock.evaluations,
    rmse: report.rmse,
    weightRms: rms,
    predictorParams: report.predictorParams,
    load: `${loadBefore} → ${load()}`,
  };
}

/** `weight-lens compress` from dist/cli.js; thresholds from the report's batch-loss curve. */
function runCli(hidden: number, steps: number, seed: number, weightRms: number): RunResult {
  const cli = join(ROOT, 'dist/cli.js');
  if (!existsSync(cli)) throw new Error('dist/cli.js is missing: run `npm run build` first (or use --engine direct)');
  const artifact = join(OUT_DIR, `resnet20_fmnist-h${hidden}.nern.safetensors`);
  const loadBefore = load();
  const out = execFileSync(
    process.execPath,
    [
      cli,
      'compress',
      CHECKPOINT,
      '--hidden',
      String(hidden),
      '--steps',
      String(steps),
      '--permutation',
      'crossfilter',
      '--seed',
      String(seed),
      '--out',
      artifact,
      '--json',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 1024 * 1024 },
  );
  const r = JSON.parse(out) as CompressReportDto;
  const perStep = r.seconds / Math.max(1, r.steps);
  return {
    side: `weight-lens compress (${r.backend})`,
    hidden: r.hidden,
    threads: 1,
    steps: r.steps,
    batch: Math.min(DEFAULT_TRAIN_OPTIONS.batchSize, r.representedParams / 9),
    trainSeconds: r.seconds,
    evaluations: [
      ...r.lossCurve.map(([step, loss]): [number, number, number] => [step, step * perStep, loss]),
      [r.steps, r.seconds, r.rmse],
    ],
    rmse: r.rmse,
    weightRms,
    predictorParams: r.predictorParams,
    load: `${loadBefore} → ${load()}`,
  };
}

interface TorchJson {
  threads: number;
  hidden: number;
  batch: number;
  steps: number;
  weightRms: number;
  predictorParams: number;
  trainSeconds: number;
  stepsPerSecond: number;
  evaluations: [number, number, number][];
  rmse: number | null;
}

/** The PyTorch reference with the engine's defaults (Adam 1e-2, warm-up ≤ 100 / a fifth, cosine, per-layer scale, base 1.15). */
function runTorch(
  hidden: number,
  steps: number,
  seed: number,
  evalEvery: number,
  threads: number,
  minParams: number,
): RunResult {
  const warmup = Math.min(DEFAULT_TRAIN_OPTIONS.warmupSteps, Math.floor(steps / 5));
  const args = [
    join(ROOT, 'bench/reference/nern_reference.py'),
    '--pt',
    CHECKPOINT,
    '--hidden',
    String(hidden),
    '--steps',
    String(steps),
    '--batch',
    String(DEFAULT_TRAIN_OPTIONS.batchSize),
    '--optimizer',
    'adam',
    '--lr',
    '1e-2',
    '--warmup',
    String(warmup),
    '--scale',
    'layer',
    '--permutation',
    'crossfilter',
    '--base',
    String(DEFAULT_TRAIN_OPTIONS.encoding.base),
    '--levels',
    String(DEFAULT_TRAIN_OPTIONS.encoding.levels),
    '--eval-every',
    String(evalEvery),
    '--seed',
    String(seed),
    '--threads',
    String(threads),
    '--json',
    '--min-params',
    String(minParams),
  ];
  const loadBefore = load();
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`PyTorch reference failed (exit ${String(r.status)}): ${r.stderr.slice(-2000)}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('JSON '));
  if (line === undefined) throw new Error(`PyTorch reference printed no JSON line:\n${r.stdout.slice(-2000)}`);
  const j = JSON.parse(line.slice(5)) as TorchJson;
  return {
    side: 'PyTorch ' + (torchAvailable() ?? '?'),
    hidden,
    threads: j.threads,
    steps: j.steps,
    batch: j.batch,
    trainSeconds: j.trainSeconds,
    evaluations: j.evaluations,
    rmse: j.rmse ?? Number.NaN,
    weightRms: j.weightRms,
    predictorParams: j.predictorParams,
    load: `${loadBefore} → ${load()}`,
  };
}

/** Training seconds at the first evaluation at or below `fraction` of the weight RMS, or null. */
function timeTo(r: RunResult, fraction: number): string {
  const hit = r.evaluations.find(([, , rmse]) => rmse <= fraction * r.weightRms);
  return hit ? `${hit[1].toFixed(0)} s @${hit[0]}` : '—';
}

function table(results: RunResult[]): void {
  const header = [
    'side',
    'h',
    'thr',
    'steps',
    'steps/s',
    'kernels/s',
    'GFLOP/s',
    'RMSE',
    'RMSE/RMS',
    ...THRESHOLDS.map((t) => `→${t}·RMS`),
    'load (1/5/15 min)',
  ];
  const rows = results.map((r) => {
    const sps = r.steps / r.trainSeconds;
    const flops = 6 * r.batch * predictorForwardMacs(nernPredictorSpec(r.hidden));
    return [
      r.side,
      String(r.hidden),
      String(r.threads),
      String(r.steps),
      sps.toFixed(2),
      (sps * r.batch).toFixed(0),
      ((sps * flops) / 1e9).toFixed(1),
      r.rmse.toFixed(5),
      (r.rmse / r.weightRms).toFixed(3),
      ...THRESHOLDS.map((t) => timeTo(r, t)),
      r.load,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const fmt = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(fmt(row));
  console.log('\nRMSE / weight RMS by step (training seconds):');
  for (const r of results) {
    const curve = r.evaluations
      .map(([step, sec, rmse]) => `${step}:${(rmse / r.weightRms).toFixed(3)}(${sec.toFixed(0)}s)`)
      .join(' ');
    console.log(`  ${r.side} h=${r.hidden}: ${curve}`);
  }
}

async function main(): Promise<void> {
  const steps = flag('quick') ? 300 : Number(arg('steps') ?? '2000');
  const hiddens = (arg('hidden') ?? '160,180').split(',').map(Number);
  const seed = Number(arg('seed') ?? '0');
  // As compressCheckpoint does: about 20 evaluations per run.
  const evalEvery = Number(arg('eval-every') ?? String(Math.max(25, Math.round(steps / 20))));
  const threadChoices = (arg('threads') ?? '1,2').split(',').map(Number);
  ensureCheckpoint();
  const engine = arg('engine') ?? 'compress';
  // compressCheckpoint stores tiny tensors (ResNet-20's 144-weight stem conv) verbatim: represent the same set everywhere.
  const minParams = MIN_REPRESENTED_PARAMS;
  const layers = (await loadKernelLayers(CHECKPOINT)).filter((l) => l.values.length >= minParams);
  const backend = await initBackend('wasm');
  console.log(
    `${CHECKPOINT}: ${layers.length} represented conv layers, ${layers.reduce((n, l) => n + l.values.length / 9, 0)} kernels; ` +
      `${steps} steps, crossfilter, seed ${seed}, evaluation every ${evalEvery} steps; engine ${engine}, backend ${backend.name}; load ${load()}`,
  );
  const results: RunResult[] = [];
  let ss = 0;
  let n = 0;
  for (const l of layers) {
    for (const v of l.values) ss += v * v;
    n += l.values.length;
  }
  const weightRms = Math.sqrt(ss / n);
  for (const hidden of hiddens) {
    console.log(`engine (${engine}) h=${hidden}…`);
    if (engine === 'cli') {
      results.push(runCli(hidden, steps, seed, weightRms));
    } else if (engine === 'compress') {
      results.push(await runCompress(hidden, steps, seed, weightRms));
    } else {
      results.push(await runEngine(layers, hidden, steps, seed, evalEvery));
    }
  }
  if (flag('no-torch')) {
    table(results);
    return;
  }
  const version = torchAvailable();
  if (version === null) {
    table(results);
    throw new Error(
      `${PYTHON} cannot import torch: install Debian's python3-torch for the PyTorch side (or pass --no-torch)`,
    );
  }
  // Pick PyTorch's fastest thread count with a short probe at the largest width.
  let threads = threadChoices[0] ?? 1;
  if (threadChoices.length > 1) {
    let best = 0;
    for (const t of threadChoices) {
      const probe = runTorch(Math.max(...hiddens), 40, seed, 0, t, minParams);
      const sps = probe.steps / probe.trainSeconds;
      console.log(`PyTorch probe: ${t} thread(s) → ${sps.toFixed(2)} steps/s (load ${probe.load})`);
      if (sps > best) {
        best = sps;
        threads = t;
      }
    }
  }
  for (const hidden of hiddens) {
    console.log(`PyTorch h=${hidden}, ${threads} thread(s)…`);
    results.push(runTorch(hidden, steps, seed, evalEvery, threads, minParams));
  }
  table(results);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
