/**
 * `weight-lens eval` and `weight-lens distill`: argument parsing and printing over src/core/jobs/evaluate.ts and
 * src/core/jobs/distill.ts. Human mode prints a short summary (and a progress line on stderr when it is a terminal);
 * `--json` prints one JSON document on stdout: `{n, accuracy?, agreement, psnr?, relativeError, …}` for eval, the
 * report for distill.
 */
import { DEFAULT_DISTILL_OPTIONS, DISTILL_DEFAULT_SOURCES, distillArtifact } from '../core/jobs/distill';
import { evaluateModel } from '../core/jobs/evaluate';
import {
  boundTensorsText,
  describePreprocess,
  type DistillOptionsDto,
  type EvalMetricsDto,
  type PreprocessDto,
  type PreprocessSource,
} from '../protocol/evaluate';
import { distilledPathFor } from '../protocol/paths';
import { isOneOf, PREDICTOR_DTYPES } from '../protocol/vocabulary';
import { interruptible, sweepStaleTemporaries } from './interrupt';
import { parseArgs, UsageError, type OptionType } from './args';
import { backendOption } from './compressCommands';
import { formatInteger, renderTable } from './format';

/** Help text of `eval` (the CLI help and `weight-lens eval --help`). */
export const EVAL_USAGE = `  weight-lens eval MODEL --data D [--weights W] [--limit N] [--batch-size B] [preprocessing] [--json]
      Run MODEL (ONNX .onnx or TF.js model.json) on dataset D on its own weights and on W (a checkpoint with matching
      tensor names, or a compression artifact) and report top-1 accuracy (with labels), agreement with the original
      predictions, and for non-classifiers output PSNR and relative error.
      D: IDX (*-images-idx3-ubyte[.gz], labels paired by name), CIFAR binary batch, .npy/.npz, or a folder of
      class subfolders of PNG/JPEG images.`;

/** Help text of `distill`. */
export const DISTILL_USAGE = `  weight-lens distill ARTIFACT --model MODEL --data D [--teacher MODEL2] [--steps N] [--out OUT] [--json]
                      [--batch-size B] [--lr X] [--temperature T] [--kl-weight X] [--feature-weight X]
                      [--reconstruction-weight X] [--no-augment] [--eval-data D2] [--eval-samples N]
                      [--eval-every N] [--seed S] [--predictor-dtype f32|f16|int8|int4] [--no-qat]
                      [preprocessing]
      Phase 2 (Choi et al.): train ARTIFACT's predictor so MODEL on the regenerated weights matches the teacher
      (MODEL on its own weights, or MODEL2) by KL on the logits; no labels needed. Writes a new artifact
      (default ARTIFACT stem + .distilled.nern.safetensors). Defaults: ${DEFAULT_DISTILL_OPTIONS.steps} steps, batch ${DEFAULT_DISTILL_OPTIONS.batchSize}, lr ${DEFAULT_DISTILL_OPTIONS.lr},
      T ${DEFAULT_DISTILL_OPTIONS.temperature}, KL weight ${DEFAULT_DISTILL_OPTIONS.klWeight}, feature weight ${DEFAULT_DISTILL_OPTIONS.featureWeight}, reconstruction weight ${DEFAULT_DISTILL_OPTIONS.reconstructionWeight}, held out: last ${DEFAULT_DISTILL_OPTIONS.evalSamples} samples.
      (${DISTILL_DEFAULT_SOURCES.lr}; ${DISTILL_DEFAULT_SOURCES.temperature}.)
      --predictor-dtype: how the predictor will be stored (default: the artifact's, else f32); for int8 and int4
      training is quantisation-aware and the held-out metrics are the quantised predictor's. --no-qat trains in
      float instead (quantised afterwards), to measure what quantisation-aware training buys.
      Ctrl-C once stops and saves the best predictor so far as an artifact marked as stopped early; twice aborts.`;

/** Help text of the preprocessing flags that `eval` and `distill` share. */
export const PREPROCESS_USAGE = `  Preprocessing (eval, distill; default: MODEL's sidecar <model>.weightlens.json, else raw values):
      --scale S  --mean M[,M,M]  --std S[,S,S]  --pad P  --crop HxW  --resize HxW  --layout nchw|nhwc
      applied in this order: scale, mean/std, pad, crop, resize (only when given), layout`;

/** Help text of the two commands (appended to the CLI help). */
export const MODEL_HELP = `${EVAL_USAGE}\n${DISTILL_USAGE}\n${PREPROCESS_USAGE}`;

/** The preprocessing flags that `eval`, `distill` and `sweep` share, with their types. */
export const PREPROCESS_OPTIONS: Readonly<Record<string, OptionType>> = {
  scale: 'number',
  mean: 'string',
  std: 'string',
  pad: 'integer',
  crop: 'string',
  resize: 'string',
  layout: 'string',
};

function numberList(value: string, name: string): number[] {
  const parts = value.split(',').map((v) => Number(v.trim()));
  if (parts.length < 1 || parts.length > 4 || parts.some((n) => !Number.isFinite(n)))
    throw new UsageError(`--${name} must be 1 to 4 comma-separated numbers, got ${JSON.stringify(value)}`);
  return parts;
}

/** Parses the preprocessing flags (exported for tests); undefined when none is given. */
export function preprocessFromOptions(options: Record<string, string | number | boolean>): PreprocessDto | undefined {
  const p: PreprocessDto = {};
  if (typeof options.scale === 'number') {
    if (options.scale === 0) throw new UsageError('--scale must not be 0');
    p.scale = options.scale;
  }
  if (typeof options.mean === 'string') p.mean = numberList(options.mean, 'mean');
  if (typeof options.std === 'string') {
    p.std = numberList(options.std, 'std');
    if (p.std.some((s) => s <= 0)) throw new UsageError('--std values must be positive');
  }
  if (typeof options.pad === 'number') {
    if (options.pad < 0 || options.pad > 4096) throw new UsageError('--pad must be between 0 and 4096');
    p.pad = [options.pad];
  }
  for (const key of ['crop', 'resize'] as const) {
    const text = options[key];
    if (typeof text !== 'string') continue;
    const m = /^(\d{1,5})x(\d{1,5})$/i.exec(text);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1)
      throw new UsageError(`--${key} must be HxW (e.g. 32x32), got ${JSON.stringify(text)}`);
    p[key] = [Number(m[1]), Number(m[2])];
  }
  if (typeof options.layout === 'string') {
    const l = options.layout.toUpperCase();
    if (l !== 'NCHW' && l !== 'NHWC') throw new UsageError('--layout must be nchw or nhwc');
    p.layout = l;
  }
  return Object.keys(p).length > 0 ? p : undefined;
}

/** How the report names where its preprocessing came from. */
const PREPROCESS_SOURCE_TEXT: Readonly<Record<PreprocessSource, string>> = {
  options: 'from the flags',
  sidecar: "from the model's .weightlens.json",
  default: 'defaults: no sidecar and no flags',
};

function percent(x: number | undefined): string {
  return x === undefined ? '-' : `${(100 * x).toFixed(2)} %`;
}

function metricCells(m: EvalMetricsDto): string[] {
  return [
    formatInteger(m.n),
    percent(m.accuracy),
    percent(m.agreement),
    m.psnr === undefined ? '-' : `${m.psnr.toFixed(2)} dB`,
    m.relativeError.toExponential(3),
  ];
}

/** `weight-lens eval`. */
export async function evalCommand(argv: readonly string[]): Promise<number> {
  const { positional, options } = parseArgs(argv, {
    data: 'string',
    weights: 'string',
    limit: 'integer',
    'batch-size': 'integer',
    backend: 'string',
    json: 'boolean',
    ...PREPROCESS_OPTIONS,
  });
  const [model, ...rest] = positional;
  if (model === undefined || rest.length > 0) throw new UsageError('eval takes exactly one MODEL');
  if (typeof options.data !== 'string') throw new UsageError('eval needs --data D');
  const limit = typeof options.limit === 'number' ? options.limit : undefined;
  if (limit !== undefined && limit < 1) throw new UsageError('--limit must be at least 1');
  const batchSize = typeof options['batch-size'] === 'number' ? options['batch-size'] : undefined;
  if (batchSize !== undefined && (batchSize < 1 || batchSize > 4096))
    throw new UsageError('--batch-size must be between 1 and 4096');
  const preprocess = preprocessFromOptions(options);
  const tty = process.stderr.isTTY && options.json !== true;
  let engine = '';
  const data = options.data;
  const report = await interruptible((signal) =>
    evaluateModel(
      model,
      data,
      {
        ...(typeof options.weights === 'string' ? { weights: options.weights } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(batchSize !== undefined ? { batchSize } : {}),
        ...(preprocess ? { preprocess } : {}),
        backend: backendOption(options),
      },
      {
        signal,
        onEngine: (e) => {
          engine = e.label;
          if (options.json !== true)
            process.stderr.write(`engine: ${e.label}${e.reason !== undefined ? ` (${e.reason})` : ''}\n`);
        },
        onProgress: (done, total) => {
          if (tty) process.stderr.write(`\r${done}/${total} samples  ${engine}   `);
        },
      },
    ),
  );
  if (tty) process.stderr.write('\n');
  if (options.json === true) {
    const c = report.candidate;
    process.stdout.write(
      JSON.stringify({
        n: c.n,
        ...(c.accuracy !== undefined ? { accuracy: c.accuracy } : {}),
        agreement: c.agreement,
        ...(c.psnr !== undefined ? { psnr: c.psnr } : {}),
        relativeError: c.relativeError,
        ...(report.originalAccuracy !== undefined ? { originalAccuracy: report.originalAccuracy } : {}),
        report,
      }) + '\n',
    );
    return 0;
  }
  const rows = [
    [
      'original',
      formatInteger(report.candidate.n),
      percent(report.originalAccuracy),
      '100.00 %',
      report.classifier ? '-' : '∞',
      '0',
    ],
  ];
  if (report.weights !== undefined) rows.push([report.weights, ...metricCells(report.candidate)]);
  process.stdout.write(
    [
      `${report.model} on ${report.data} (${report.classifier ? `classifier, ${report.classes ?? 0} classes` : 'regression / image output'})`,
      `preprocessing (${PREPROCESS_SOURCE_TEXT[report.preprocessSource]}): ${describePreprocess(report.preprocess)}`,
      ...(report.warnings ?? []).map((w) => `warning: ${w}`),
      renderTable(['weights', 'samples', 'accuracy', 'agreement', 'PSNR', 'relative error'], rows, [
        'l',
        'r',
        'r',
        'r',
        'r',
        'r',
      ]),
      report.weights !== undefined ? boundTensorsText(report, report.weights) : '',
      `${(report.durationMs / 1000).toFixed(1)} s on ${report.backend}${report.engineReason !== undefined ? ` (${report.engine === 'tfjs' ? 'TensorFlow.js: ' : ''}${report.engineReason})` : ''}`,
    ]
      .filter((l) => l !== '')
      .join('\n') + '\n',
  );
  return 0;
}

/** Parses distill arguments into options (exported for tests). */
export function distillOptionsFromArgs(argv: readonly string[]): {
  artifact: string;
  model: string;
  data: string;
  options: DistillOptionsDto;
  json: boolean;
} {
  const { positional, options } = parseArgs(argv, {
    model: 'string',
    data: 'string',
    teacher: 'string',
    steps: 'integer',
    out: 'string',
    json: 'boolean',
    'batch-size': 'integer',
    lr: 'number',
    temperature: 'number',
    'kl-weight': 'number',
    'feature-weight': 'number',
    'reconstruction-weight': 'number',
    'no-augment': 'boolean',
    'eval-data': 'string',
    'eval-samples': 'integer',
    'eval-every': 'integer',
    seed: 'integer',
    backend: 'string',
    'predictor-dtype': 'string',
    'no-qat': 'boolean',
    ...PREPROCESS_OPTIONS,
  });
  const [artifact, ...rest] = positional;
  if (artifact === undefined || rest.length > 0) throw new UsageError('distill takes exactly one ARTIFACT');
  if (typeof options.model !== 'string')
    throw new UsageError('distill needs --model MODEL (the runnable ONNX or TF.js model)');
  if (typeof options.data !== 'string') throw new UsageError('distill needs --data D (training images)');
  const n = (name: string): number | undefined => (typeof options[name] === 'number' ? options[name] : undefined);
  const d = DEFAULT_DISTILL_OPTIONS;
  const preprocess = preprocessFromOptions(options);
  const predictorDtype = options['predictor-dtype'];
  if (predictorDtype !== undefined && !isOneOf(PREDICTOR_DTYPES, predictorDtype))
    throw new UsageError(`--predictor-dtype must be one of ${PREDICTOR_DTYPES.join(', ')}`);
  const o: DistillOptionsDto = {
    steps: n('steps') ?? d.steps,
    batchSize: n('batch-size') ?? d.batchSize,
    lr: n('lr') ?? d.lr,
    temperature: n('temperature') ?? d.temperature,
    klWeight: n('kl-weight') ?? d.klWeight,
    featureWeight: n('feature-weight') ?? d.featureWeight,
    reconstructionWeight: n('reconstruction-weight') ?? d.reconstructionWeight,
    augment: options['no-augment'] !== true,
    evalSamples: n('eval-samples') ?? d.evalSamples,
    evalEvery: n('eval-every') ?? d.evalEvery,
    seed: n('seed') ?? d.seed,
    backend: backendOption(options),
    ...(typeof options.teacher === 'string' ? { teacher: options.teacher } : {}),
    ...(typeof options['eval-data'] === 'string' ? { evalData: options['eval-data'] } : {}),
    ...(typeof options.out === 'string' ? { out: options.out } : {}),
    ...(preprocess ? { preprocess } : {}),
    ...(predictorDtype !== undefined ? { predictorDtype } : {}),
    ...(options['no-qat'] === true ? { qat: false } : {}),
  };
  return { artifact, model: options.model, data: options.data, options: o, json: options.json === true };
}

/** `weight-lens distill`. */
export async function distillCommand(argv: readonly string[]): Promise<number> {
  const { artifact, model, data, options, json } = distillOptionsFromArgs(argv);
  await sweepStaleTemporaries(options.out ?? distilledPathFor(artifact));
  const tty = process.stderr.isTTY && !json;
  return interruptible(
    async (signal, stop) => {
      const report = await distillArtifact(
        { artifact, model, data, options },
        {
          signal: signal,
          stop,
          onStatus: (m) => {
            if (!json) process.stderr.write(`${tty ? '\r' : ''}${m}\n`);
          },
          onProgress: (p) => {
            if (tty)
              process.stderr.write(
                `\rstep ${p.step}/${p.steps}  loss ${p.loss.toPrecision(4)}  kl ${p.kl.toPrecision(3)}  ${p.stepsPerSecond.toFixed(2)} steps/s   `,
              );
          },
          onEval: (e) => {
            if (!json)
              process.stderr.write(
                `${tty ? '\n' : ''}held-out at step ${e.step}: accuracy ${percent(e.metrics.accuracy)}, agreement ${percent(e.metrics.agreement)}${e.metrics.psnr !== undefined ? `, PSNR ${e.metrics.psnr.toFixed(2)} dB` : ''}\n`,
              );
          },
        },
      );
      if (json) {
        process.stdout.write(JSON.stringify(report) + '\n');
        return 0;
      }
      const rows = [
        ['phase 1 (reconstruction)', ...metricCells(report.before)],
        [`best (step ${report.best.step})`, ...metricCells(report.best.metrics)],
        ['after distillation', ...metricCells(report.after)],
      ];
      process.stdout.write(
        [
          renderTable(['held-out', 'samples', 'accuracy', 'agreement', 'PSNR', 'relative error'], rows, [
            'l',
            'r',
            'r',
            'r',
            'r',
            'r',
          ]),
          `preprocessing (${PREPROCESS_SOURCE_TEXT[report.preprocessSource]}): ${describePreprocess(report.preprocess)}`,
          ...(report.warnings ?? []).map((w) => `warning: ${w}`),
          report.teacherAccuracy !== undefined ? `teacher accuracy ${percent(report.teacherAccuracy)}` : '',
          report.predictorDtype !== undefined && report.predictorDtype !== 'f32'
            ? `metrics of the ${report.predictorDtype} predictor; training ${report.qat === true ? 'quantisation-aware' : 'in float (--no-qat)'}`
            : '',
          `${report.boundLayers} represented layers used by the model${report.unboundLayers > 0 ? `, ${report.unboundLayers} not` : ''}; ${report.options.steps} steps in ${(report.durationMs / 1000).toFixed(1)} s on ${report.engineLabel ?? (report.engine === 'onnxruntime' ? 'onnxruntime (native)' : `tfjs (${report.backend})`)}${report.engineReason !== undefined ? ` (${report.engineReason})` : ''}`,
          `held-out evaluations on ${report.evalEngine ?? 'tfjs'}${report.evalEngineReason !== undefined ? ` (${report.evalEngineReason})` : ''}`,
          `wrote ${report.out}`,
          report.stoppedEarly !== undefined
            ? `stopped early: saved after step ${formatInteger(report.stoppedEarly.step)} of ${formatInteger(report.stoppedEarly.steps)}`
            : '',
        ]
          .filter((l) => l !== '')
          .join('\n') + '\n',
      );
      return 0;
    },
    { saveOnInterrupt: true },
  );
}
