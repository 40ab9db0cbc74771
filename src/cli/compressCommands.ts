/**
 * `weight-lens compress` and `weight-lens decompress`: argument parsing and printing over src/core/jobs/compress.ts.
 * Human mode prints the plan first, a progress line on stderr when it is a terminal, and a per-layer table at the end;
 * `--json` prints one JSON document (the report) on stdout.
 */
import { statSync } from 'node:fs';
import { formatBytes } from '../core/io/errors';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS } from '../core/jobs/compress';
import type { BackendName, BudgetDto, BudgetPlanDto, CompressOptionsDto } from '../protocol/compress';
import { artifactPathFor, decompressedPathFor } from '../protocol/paths';
import { DEFAULT_POINTWISE } from '../protocol/defaults';
import { interruptible, sweepStaleTemporaries } from './interrupt';
import { parseArgs, UsageError } from './args';
import { formatInteger, formatStat, renderTable } from './format';
import {
  BACKEND_NAMES,
  COMPRESS_METHODS,
  isOneOf,
  PERMUTATION_KINDS,
  POINTWISE_LAYOUTS,
  PREDICTOR_DTYPES,
  RECIPE_NAMES,
  VERBATIM_DTYPES,
} from '../protocol/vocabulary';

import { decompressArtifact } from '../core/jobs/decompress';
import type { GridEngine } from '../core/nern/nativeForward';
import { artifactReport } from '../core/jobs/artifactDetail';
import { isBaselineArtifact } from '../core/baselines/compressedArtifact';
import { LEAN_REPORT_NOTE } from '../protocol/artifact';
import { baselinePathFor } from '../core/baselines/compressBaseline';
/** Help text of `compress` (the CLI help and `weight-lens compress --help`). */
export const COMPRESS_USAGE = `  weight-lens compress FILE [--hidden H | --size FRACTION | --size-bytes N | --size-of-file F] [--steps N]
                      [--permutation crossfilter|infilter|none] [--seed S] [--dense] [--pointwise blocks|centre] [--rounds R]
                      [--round-scale X] [--recipe weight-lens|nern] [--backend auto|cpu-native|cuda|webgpu|wasm|tensorflow|cpu]
                      [--predictor-dtype f32|f16|int8|int4] [--verbatim-dtype f32|f16|int8] [--qat-steps N]
                      [--lean] [--sidecar] [--method M] [--out OUT] [--json]
      Train a NeRN predictor that regenerates FILE's convolution weights (and, with --dense, its matrices and
      other kernels, tiled into 3×3 blocks); write FILE's stem + .nern.safetensors (or OUT). Budget: predictor
      width H, or a FRACTION of the represented weights (default ${DEFAULT_COMPRESS_OPTIONS.budget.kind === 'fraction' ? DEFAULT_COMPRESS_OPTIONS.budget.fraction : ''}), or an artifact of N bytes, or of F × FILE's
      size: the widest predictor whose artifact fits, counting the predictor at --predictor-dtype, the packed
      permutations, the verbatim tensors at --verbatim-dtype and the metadata.
      --verbatim-dtype f16|int8 stores the float tensors kept verbatim (biases, normalisation, unrepresented
      layers) as float16, or as int8 codes with one scale per row (per tensor for vectors); decoding widens them
      back to their original dtype. Default f32: each in its own dtype, exact.
      --pointwise blocks (default) represents each 1×1 convolution's C_out × C_in matrix as 3×3 blocks, nine
      weights per predicted kernel; centre is NeRN's layout, each 1×1 weight the centre of its own predicted 3×3.
      Default ${DEFAULT_COMPRESS_OPTIONS.steps} steps, crossfilter permutation, seed 0. --rounds R > 1 re-trains on the previous
      round's reconstruction, each round's width × X (default 1) of the next. --recipe nern trains with
      NeRN's exact settings (encoding base 0.76, Ranger) as a reference; the default recipe learns much faster.
      --backend auto trains on the native onnxruntime engine when onnxruntime-node is installed (on a GPU that
        passes a self-check, else on the CPU), else on wasm; cpu-native, cuda and webgpu pick the native device.
      --qat-steps N (with --predictor-dtype int8 or int4) trains the last N steps quantisation-aware: on the
      predictor as it will be stored, with straight-through gradients (default 0: quantised after training).
      --lean leaves out what decoding does not need (the per-layer report, loss curve and verbatim reasons).
      --sidecar (implies --lean) writes that report and loss curve to ARTIFACT.report.json beside it, both files
      or neither; reopening the artifact (inspect, the Reconstruction panel) reads it from there.
      --method int8|int4|lowrank|prune writes a baseline instead (FILE's stem + .METHOD.safetensors): per-channel
      round-to-nearest int8 / int4, a truncated SVD per layer with ranks chosen by energy to meet --size or
      --size-bytes, or global magnitude pruning to that size (a bitmap marks the kept weights). Default nern.
      Ctrl-C once stops and saves the best predictor so far as an artifact marked as stopped early; twice aborts.`;

/** Help text of `decompress`. */
export const DECOMPRESS_USAGE = `  weight-lens decompress ARTIFACT [--out FILE] [--backend B] [--json]
      Regenerate the full checkpoint (every original tensor, name, dtype and shape) as safetensors. A NeRN
      artifact's predictor runs on the native engine where onnxruntime-node loads (--backend as for compress),
      else on TensorFlow.js; the engine is named on stderr (and in --json as engine, engineReason).`;

/** Help text of the two commands (appended to the CLI help). */
export const COMPRESS_HELP = `${COMPRESS_USAGE}\n${DECOMPRESS_USAGE}`;

/** The `--backend` option of any command (default `fallback`); a usage error for anything but a backend name. */
export function backendOption(
  options: Record<string, string | number | boolean>,
  fallback: BackendName = 'auto',
): BackendName {
  const backend = options.backend ?? fallback;
  if (!isOneOf(BACKEND_NAMES, backend)) throw new UsageError(`--backend must be one of ${BACKEND_NAMES.join(', ')}`);
  return backend;
}

function num(options: Record<string, string | number | boolean>, name: string): number | undefined {
  const v = options[name];
  return typeof v === 'number' ? v : undefined;
}

/** Parses compress arguments into options (exported for tests). */
export function compressOptionsFromArgs(argv: readonly string[]): {
  file: string;
  options: CompressOptionsDto;
  json: boolean;
} {
  const { positional, options } = parseArgs(argv, {
    hidden: 'integer',
    size: 'number',
    'size-bytes': 'integer',
    'size-of-file': 'number',
    steps: 'integer',
    permutation: 'string',
    seed: 'integer',
    dense: 'boolean',
    'no-conv': 'boolean',
    pointwise: 'string',
    rounds: 'integer',
    'round-scale': 'number',
    recipe: 'string',
    'predictor-dtype': 'string',
    'verbatim-dtype': 'string',
    'qat-steps': 'integer',
    lean: 'boolean',
    sidecar: 'boolean',
    method: 'string',
    backend: 'string',
    out: 'string',
    json: 'boolean',
  });
  const [file, ...rest] = positional;
  if (file === undefined || rest.length > 0) throw new UsageError('compress takes exactly one FILE');
  const hidden = num(options, 'hidden');
  const size = num(options, 'size');
  let sizeBytes = num(options, 'size-bytes');
  const sizeOfFile = num(options, 'size-of-file');
  if ([hidden, size, sizeBytes, sizeOfFile].filter((v) => v !== undefined).length > 1)
    throw new UsageError('give only one of --hidden, --size, --size-bytes, --size-of-file');
  if (sizeOfFile !== undefined) {
    if (!(sizeOfFile > 0 && sizeOfFile < 1))
      throw new UsageError('--size-of-file must be a fraction of the source file between 0 and 1 (e.g. 0.1)');
    let fileBytes: number;
    try {
      fileBytes = statSync(file).size;
    } catch {
      throw new UsageError(`cannot read the size of ${file}`);
    }
    sizeBytes = Math.max(1, Math.floor(sizeOfFile * fileBytes));
  }
  let budget: BudgetDto = DEFAULT_COMPRESS_OPTIONS.budget;
  if (hidden !== undefined) {
    if (hidden < 1 || hidden > 4096) throw new UsageError('--hidden must be between 1 and 4096');
    budget = { kind: 'hidden', hidden };
  } else if (size !== undefined) {
    if (!(size > 0 && size <= 100))
      throw new UsageError('--size must be a fraction of the represented weights, above 0 (e.g. 0.5)');
    budget = { kind: 'fraction', fraction: size };
  } else if (sizeBytes !== undefined) {
    if (sizeBytes < 1) throw new UsageError('--size-bytes must be positive');
    budget = { kind: 'bytes', bytes: sizeBytes };
  }
  const steps = num(options, 'steps') ?? DEFAULT_COMPRESS_OPTIONS.steps;
  if (steps < 1 || steps > 10_000_000) throw new UsageError('--steps must be between 1 and 10,000,000');
  const permutation = options.permutation ?? DEFAULT_COMPRESS_OPTIONS.permutation;
  if (!isOneOf(PERMUTATION_KINDS, permutation))
    throw new UsageError(`--permutation must be one of ${PERMUTATION_KINDS.join(', ')}`);
  const pointwise = options.pointwise ?? DEFAULT_POINTWISE;
  if (!isOneOf(POINTWISE_LAYOUTS, pointwise))
    throw new UsageError(`--pointwise must be one of ${POINTWISE_LAYOUTS.join(', ')}`);
  const backend = backendOption(options, DEFAULT_COMPRESS_OPTIONS.backend);
  const seed = num(options, 'seed') ?? 0;
  if (seed < 0 || seed > 2 ** 32 - 1) throw new UsageError('--seed must be between 0 and 4294967295');
  const rounds = num(options, 'rounds') ?? 1;
  if (rounds < 1 || rounds > 16) throw new UsageError('--rounds must be between 1 and 16');
  const roundWidthScale = num(options, 'round-scale') ?? 1;
  if (!(roundWidthScale > 0 && roundWidthScale <= 1)) throw new UsageError('--round-scale must be in (0, 1]');
  const out = typeof options.out === 'string' ? options.out : undefined;
  const recipe = options.recipe ?? RECIPE_NAMES[0];
  if (!isOneOf(RECIPE_NAMES, recipe)) throw new UsageError(`--recipe must be one of ${RECIPE_NAMES.join(', ')}`);
  const predictorDtype = options['predictor-dtype'];
  if (predictorDtype !== undefined && !isOneOf(PREDICTOR_DTYPES, predictorDtype))
    throw new UsageError(`--predictor-dtype must be one of ${PREDICTOR_DTYPES.join(', ')}`);
  const verbatimDtype = options['verbatim-dtype'];
  if (verbatimDtype !== undefined && !isOneOf(VERBATIM_DTYPES, verbatimDtype))
    throw new UsageError(`--verbatim-dtype must be one of ${VERBATIM_DTYPES.join(', ')}`);
  const qatSteps = num(options, 'qat-steps');
  if (qatSteps !== undefined && (qatSteps < 0 || qatSteps > steps))
    throw new UsageError('--qat-steps must be between 0 and --steps');
  if (qatSteps !== undefined && qatSteps > 0 && predictorDtype !== 'int8' && predictorDtype !== 'int4')
    throw new UsageError('--qat-steps needs --predictor-dtype int8 or int4');
  const method = options.method;
  if (method !== undefined && !isOneOf(COMPRESS_METHODS, method))
    throw new UsageError(`--method must be one of ${COMPRESS_METHODS.join(', ')}`);
  const lean = options.lean === true;
  if (lean && method !== undefined && method !== 'nern')
    throw new UsageError('--lean applies to NeRN artifacts only (--method nern)');
  const sidecar = options.sidecar === true;
  if (sidecar && method !== undefined && method !== 'nern')
    throw new UsageError('--sidecar applies to NeRN artifacts only (--method nern)');
  if (verbatimDtype !== undefined && method !== undefined && method !== 'nern')
    throw new UsageError('--verbatim-dtype applies to NeRN artifacts only (--method nern)');
  return {
    file,
    json: options.json === true,
    options: {
      budget,
      steps,
      permutation,
      seed,
      backend,
      rounds,
      roundWidthScale,
      recipe,
      represent: { conv: options['no-conv'] !== true, dense: options.dense === true, pointwise },
      ...(predictorDtype !== undefined ? { predictorDtype } : {}),
      ...(verbatimDtype !== undefined ? { verbatimDtype } : {}),
      ...(qatSteps !== undefined ? { qatSteps } : {}),
      ...(method !== undefined ? { method } : {}),
      ...(lean || sidecar ? { lean: true } : {}),
      ...(sidecar ? { sidecar } : {}),
      ...(out !== undefined ? { out } : {}),
    },
  };
}

function printPlan(plan: BudgetPlanDto): void {
  const lines = [
    `predictor: width ${plan.hidden}, ${formatInteger(plan.predictorParams)} parameters = ${(100 * plan.fractionOfRepresented).toFixed(1)} % of ${formatInteger(plan.representedParams)} represented weights`,
    `verbatim: ${formatInteger(plan.verbatimParams)} parameters in ${plan.verbatim.length} tensors; estimated artifact ${formatBytes(plan.artifactBytes)} (source ${formatBytes(plan.sourceBytes)})`,
    ...(plan.bytes !== undefined
      ? [
          `  at most: predictor ${formatBytes(plan.bytes.predictor)} (${plan.predictorDtype ?? 'f32'}), permutations ${formatBytes(plan.bytes.permutations)}, scales ${formatBytes(plan.bytes.scales)}, verbatim ${formatBytes(plan.bytes.verbatim)} (${plan.verbatimDtype ?? 'f32'}), metadata ${formatBytes(plan.bytes.metadata)}`,
        ]
      : []),
    '',
    renderTable(
      ['represented', 'shape', 'params'],
      plan.represented.map((t) => [t.name, `[${t.shape.join(', ')}]`, formatInteger(t.params)]),
      ['l', 'l', 'r'],
    ),
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

/** `weight-lens compress`. */
export async function compressCommand(argv: readonly string[]): Promise<number> {
  const { file, options, json } = compressOptionsFromArgs(argv);
  const baseline = options.method !== undefined && options.method !== 'nern' ? options.method : undefined;
  await sweepStaleTemporaries(options.out ?? (baseline ? baselinePathFor(file, baseline) : artifactPathFor(file)));
  const tty = process.stderr.isTTY;
  const logged = progressLog();
  return interruptible(
    async (signal, stop) => {
      const report = await compressCheckpoint(file, options, {
        signal: signal,
        stop,
        onPlan: (plan) => {
          if (!json) printPlan(plan);
        },
        onBackend: (choice) => {
          if (!json && options.backend !== 'auto' && choice.fallbackReason !== undefined)
            process.stderr.write(`backend: ${choice.name} (${choice.fallbackReason})\n`);
        },
        onProgress: (p) => {
          const line = `round ${p.round}  step ${p.step}/${p.steps}  loss ${formatStat(p.loss)}  ${p.stepsPerSecond.toFixed(1)} steps/s  ${p.backend}`;
          if (tty) process.stderr.write(`\r${line}   `);
          else if (logged.due()) process.stderr.write(`${line}\n`);
        },
        onReconstruction: (done, total) => {
          if (tty) process.stderr.write(`\r${kernelProgressLine(done, total)}   `);
          else if (logged.due()) process.stderr.write(`${kernelProgressLine(done, total)}\n`);
        },
      });
      if (tty) process.stderr.write('\n');
      if (json) {
        process.stdout.write(JSON.stringify(report) + '\n');
        return 0;
      }
      const rows = report.layers.map((l) => [
        l.name,
        `[${l.shape.join(', ')}]`,
        formatInteger(l.params),
        formatStat(l.rmse),
        `${(100 * l.relativeError).toFixed(1)} %`,
      ]);
      process.stdout.write(
        [
          renderTable(['layer', 'shape', 'params', 'rmse', 'relative error'], rows, ['l', 'l', 'r', 'r', 'r']),
          '',
          `rmse ${formatStat(report.rmse)} over ${formatInteger(report.representedParams)} represented weights; ${baseline ? baseline : `${report.steps} steps`} in ${report.seconds.toFixed(1)} s${baseline ? '' : ` on ${report.backend}`}`,
          `${report.artifact}: ${formatBytes(report.artifactBytes)} (source ${formatBytes(report.sourceBytes)}, ratio ${report.ratio.toFixed(2)}×)`,
          ...(report.sidecar !== undefined
            ? [
                `report sidecar: ${report.sidecar.path} (${formatBytes(report.sidecar.bytes)}, not counted in the artifact's size): the per-layer report and loss curve the lean artifact leaves out`,
              ]
            : options.lean === true
              ? ['lean artifact: the per-layer report and loss curve above were not stored in it']
              : []),
          ...(report.stoppedEarly !== undefined
            ? [
                `stopped early: saved after step ${formatInteger(report.stoppedEarly.step)} of ${formatInteger(report.stoppedEarly.steps)}`,
              ]
            : []),
        ].join('\n') + '\n',
      );
      return 0;
    },
    { saveOnInterrupt: true },
  );
}

/** Seconds between progress lines when stderr is not a terminal (a log file, a pipe): none for shorter jobs. */
const PROGRESS_LOG_SECONDS = 10;

/**
 * When stderr is not a terminal, progress is logged as whole lines, one at most every `PROGRESS_LOG_SECONDS` from
 * the job's start: `due()` is true when the next line may be written (and starts the next interval).
 */
function progressLog(): { due: () => boolean } {
  let last = performance.now();
  return {
    due: () => {
      const now = performance.now();
      if (now - last < PROGRESS_LOG_SECONDS * 1000) return false;
      last = now;
      return true;
    },
  };
}

/** The progress text of a whole-grid prediction. */
function kernelProgressLine(done: number, total: number): string {
  return `predicting every kernel: ${formatInteger(done)} of ${formatInteger(total)} rows (${Math.floor((100 * done) / total)} %)`;
}

/** `weight-lens decompress`. */
export async function decompressCommand(argv: readonly string[]): Promise<number> {
  const { positional, options } = parseArgs(argv, { out: 'string', backend: 'string', json: 'boolean' });
  const [artifact, ...rest] = positional;
  if (artifact === undefined || rest.length > 0) throw new UsageError('decompress takes exactly one ARTIFACT');
  const backend = backendOption(options);
  const started = performance.now();
  const out = typeof options.out === 'string' ? options.out : undefined;
  await sweepStaleTemporaries(out ?? decompressedPathFor(artifact));
  const tty = process.stderr.isTTY;
  const logged = progressLog();
  let engine: GridEngine | undefined;
  const outputs = await interruptible((signal) =>
    decompressArtifact(artifact, out, {
      backend,
      signal,
      onEngine: (e) => {
        engine = e;
        if (options.json !== true)
          process.stderr.write(`predicting on ${e.label}${e.reason !== undefined ? ` (${e.reason})` : ''}\n`);
      },
      onRows: (done, total) => {
        if (tty) process.stderr.write(`\r${kernelProgressLine(done, total)}   ${done === total ? '\n' : ''}`);
        else if (logged.due()) process.stderr.write(`${kernelProgressLine(done, total)}\n`);
      },
    }),
  );
  // What the artifact's report is, on stderr so that stdout stays the written paths.
  if (options.json !== true && !(await isBaselineArtifact(artifact))) {
    const { report } = await artifactReport(artifact);
    process.stderr.write(
      report.sidecar !== undefined
        ? `report: from the sidecar ${report.sidecar.path} (${formatBytes(report.sidecar.bytes)})\n`
        : report.lean === true
          ? `${LEAN_REPORT_NOTE}\n`
          : '',
    );
  }
  const seconds = (performance.now() - started) / 1000;
  if (options.json === true) {
    const decoded = engine
      ? { engine: engine.label, ...(engine.reason !== undefined ? { engineReason: engine.reason } : {}) }
      : {};
    process.stdout.write(JSON.stringify({ artifact, outputs, seconds, ...decoded }) + '\n');
  } else process.stdout.write(`${outputs.join('\n')}\n`);
  return 0;
}
