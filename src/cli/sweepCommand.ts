/**
 * `weight-lens sweep CHECKPOINT --model MODEL --data DATA [--methods …] [--sizes …] [--json]`: the method sweep of
 * src/core/jobs/sweep.ts from the command line. The sweep's own flags are taken out first; every other flag is a
 * compress flag (parsed by `compressOptionsFromArgs`, so the two commands accept the same ones) applied to each run,
 * except the budget, which `--sizes` sets per run. Human mode prints one table (method, bytes, fraction of the
 * source, score and its change, agreement, seconds, the Pareto front starred) with a progress line on stderr when it
 * is a terminal; `--json` prints the report.
 */
import { formatBytes } from '../core/io/errors';
import { sweepMethods } from '../core/jobs/sweep';
import { DEFAULT_SWEEP_SIZES, parseSizes, type SweepReportDto, type SweepRequestDto } from '../protocol/sweep';
import { COMPRESS_METHODS, isOneOf, type CompressMethod } from '../protocol/vocabulary';
import { parseArgs, UsageError, type OptionType } from './args';
import { compressOptionsFromArgs } from './compressCommands';
import { formatInteger, renderTable } from './format';
import { interruptible } from './interrupt';
import { PREPROCESS_OPTIONS, preprocessFromOptions } from './modelCommands';

/** Help text of `sweep` (the CLI help and `weight-lens sweep --help`). */
export const SWEEP_HELP = `  weight-lens sweep CHECKPOINT --model MODEL --data D [--methods M,M…] [--sizes S,S…] [--limit N]
                    [--distill-steps N --distill-data D2] [--out-dir DIR] [compress flags] [preprocessing] [--json]
      Compress CHECKPOINT with every method (default ${COMPRESS_METHODS.join(',')}) at every size (fractions of
      the represented weights' float32 bytes, default ${DEFAULT_SWEEP_SIZES.join(',')}; int8 and int4 have their
      own size), score each artifact with MODEL on D (accuracy, or output PSNR for non-classifiers) and print one
      table, smallest first, with the Pareto front starred. --distill-steps adds the distillation phase to the NeRN
      rows, trained on D2 (never the scoring data). Compress flags (--steps, --seed, --predictor-dtype, --dense…)
      apply to every run. Artifacts go to DIR (default CHECKPOINT stem + .sweep/ beside it).`;

/** The sweep's own flags; everything else is passed to the compress parser. */
const SWEEP_OPTIONS: Readonly<Record<string, OptionType>> = {
  model: 'string',
  data: 'string',
  methods: 'string',
  sizes: 'string',
  limit: 'integer',
  'distill-steps': 'integer',
  'distill-data': 'string',
  'out-dir': 'string',
  json: 'boolean',
  ...PREPROCESS_OPTIONS,
};

/** Compress flags that set the method, the budget or the output, which a sweep sets per run. */
const PER_RUN_FLAGS = ['method', 'hidden', 'size', 'size-bytes', 'out'];

/** The name of a `--flag` or `--flag=value` argument, or undefined for a positional one. */
function flagName(arg: string): string | undefined {
  if (!arg.startsWith('--') || arg === '--') return undefined;
  const eq = arg.indexOf('=');
  return arg.slice(2, eq < 0 ? undefined : eq);
}

/** Splits `argv` into the sweep's own arguments and the compress flags (a flag's value travels with it). */
function splitArgs(argv: readonly string[]): { own: string[]; compress: string[] } {
  const own: string[] = [];
  const compress: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const name = flagName(arg);
    if (name === undefined) {
      own.push(arg);
      continue;
    }
    if (PER_RUN_FLAGS.includes(name))
      throw new UsageError(`--${name} is set per run by a sweep; use --sizes (and --out-dir) instead`);
    const type = SWEEP_OPTIONS[name];
    const target = type !== undefined ? own : compress;
    target.push(arg);
    // The value of a `--flag value` pair goes where its flag goes; a compress flag's type is the compress
    // parser's, so a following argument that is not a flag is taken as its value unless the flag is boolean there.
    const next = argv[i + 1];
    if (arg.includes('=') || next === undefined || next.startsWith('--')) continue;
    if (type !== undefined ? type !== 'boolean' : !COMPRESS_BOOLEAN_FLAGS.includes(name)) {
      target.push(next);
      i++;
    }
  }
  return { own, compress };
}

/** Compress flags that take no value (so an argument after one of them is positional). */
const COMPRESS_BOOLEAN_FLAGS = ['dense', 'no-conv', 'json'];

/** Parses sweep arguments into a request and the output mode (exported for tests). */
export function sweepRequestFromArgs(argv: readonly string[]): { request: SweepRequestDto; json: boolean } {
  const split = splitArgs(argv);
  const { positional, options } = parseArgs(split.own, SWEEP_OPTIONS);
  const [checkpoint, ...rest] = positional;
  if (checkpoint === undefined || rest.length > 0) throw new UsageError('sweep takes exactly one CHECKPOINT');
  const model = options.model;
  const data = options.data;
  if (typeof model !== 'string') throw new UsageError('sweep needs --model MODEL (the ONNX or TF.js model to score)');
  if (typeof data !== 'string') throw new UsageError('sweep needs --data D (the data to score on)');
  const methods: CompressMethod[] = [];
  const methodsText = typeof options.methods === 'string' ? options.methods : COMPRESS_METHODS.join(',');
  for (const m of methodsText.split(',').map((s) => s.trim())) {
    if (!isOneOf(COMPRESS_METHODS, m)) throw new UsageError(`--methods takes ${COMPRESS_METHODS.join(', ')}, not ${m}`);
    if (!methods.includes(m)) methods.push(m);
  }
  const sizes = typeof options.sizes === 'string' ? parseSizes(options.sizes) : [...DEFAULT_SWEEP_SIZES];
  if (sizes === undefined)
    throw new UsageError('--sizes must be 1 to 12 fractions in (0, 1], e.g. 0.05,0.1,0.2 or 5%,10%');
  const distillSteps = typeof options['distill-steps'] === 'number' ? options['distill-steps'] : 0;
  if (distillSteps < 0 || distillSteps > 1_000_000)
    throw new UsageError('--distill-steps must be between 0 and 1,000,000');
  const distillData = typeof options['distill-data'] === 'string' ? options['distill-data'] : undefined;
  if (distillSteps > 0 && distillData === undefined)
    throw new UsageError('--distill-steps needs --distill-data D2 (training data, not the scoring data)');
  const limit = typeof options.limit === 'number' ? options.limit : undefined;
  if (limit !== undefined && limit < 1) throw new UsageError('--limit must be at least 1');
  const preprocess = preprocessFromOptions(options);
  const { options: compress } = compressOptionsFromArgs([checkpoint, ...split.compress]);
  const outDir = typeof options['out-dir'] === 'string' ? options['out-dir'] : undefined;
  return {
    json: options.json === true,
    request: {
      checkpoint,
      model,
      data,
      methods,
      sizes,
      compress,
      distillSteps,
      ...(distillData !== undefined ? { distillData } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...(preprocess !== undefined ? { preprocess } : {}),
      ...(outDir !== undefined ? { outDir } : {}),
    },
  };
}

/** The score column's text: accuracy in % (with its change in points) or PSNR in dB. */
function scoreText(report: SweepReportDto, score: number, change: number | undefined): [string, string] {
  if (report.metric === 'psnr') return [`${score.toFixed(2)} dB`, ''];
  const points = change === undefined ? '' : `${change >= 0 ? '+' : '−'}${Math.abs(100 * change).toFixed(2)}`;
  return [`${(100 * score).toFixed(2)} %`, points];
}

/** The human table of a sweep report. */
export function renderSweep(report: SweepReportDto): string {
  const rows = report.rows.map((r) => {
    const [score, change] = scoreText(report, r.score, r.change);
    return [
      r.pareto ? '★' : '',
      r.own === true ? `${r.method} (own)` : r.distilled ? `${r.method} + distill` : r.method,
      r.size !== undefined ? `${Number((100 * r.size).toPrecision(3))} %` : '—',
      formatBytes(r.bytes),
      `${(100 * r.fractionOfSource).toFixed(1)} %`,
      score,
      change,
      `${(100 * r.agreement).toFixed(1)} %`,
      r.seconds.toFixed(1),
    ];
  });
  const metricName = report.metric === 'accuracy' ? 'accuracy' : 'PSNR';
  const lines = [
    `${report.checkpoint}  ·  ${formatBytes(report.sourceBytes)}  ·  scored on ${formatInteger(report.samples)} samples of ${report.data}`,
    report.original !== undefined ? `original accuracy ${(100 * report.original).toFixed(2)} %` : '',
    '',
    renderTable(['', 'method', 'size', 'bytes', 'of file', metricName, 'points', 'agreement', 'seconds'], rows, [
      'l',
      'l',
      'r',
      'r',
      'r',
      'r',
      'r',
      'r',
      'r',
    ]),
    '',
    `★ Pareto front: no other row is at most as big and at least as good. ${report.seconds.toFixed(1)} s in all.`,
  ];
  for (const f of report.failures)
    lines.push(`failed: ${f.method}${f.size !== undefined ? ` at ${100 * f.size} %` : ''}: ${f.message}`);
  return lines.filter((l, i) => l !== '' || i > 1).join('\n');
}

/** Runs `weight-lens sweep`; resolves to the exit code (1 when every run failed). */
export async function sweepCommand(argv: readonly string[]): Promise<number> {
  const { request, json } = sweepRequestFromArgs(argv);
  const tty = process.stderr.isTTY;
  const report = await interruptible((signal) =>
    sweepMethods(request, {
      signal,
      onProgress: (p) => {
        if (tty)
          process.stderr.write(
            `\rrun ${p.run}/${p.runs} ${p.method}${p.size !== undefined ? ` ${Number((100 * p.size).toPrecision(3))} %` : ''} ${p.stage} ${Math.round(100 * p.fraction)} %`.padEnd(
              80,
            ),
          );
      },
    }),
  );
  if (tty) process.stderr.write('\r'.padEnd(81) + '\r');
  process.stdout.write((json ? JSON.stringify(report) : renderSweep(report)) + '\n');
  return report.rows.length === 0 && report.failures.length > 0 ? 1 : 0;
}
