/**
 * The `weight-lens` command line: argument parsing and printing over src/core, with no logic of its own.
 * Exit codes: 0 success; 2 bad input (the file is malformed, unsupported or hostile: one `error:` line on stderr);
 * 1 anything else (usage errors, internal failures).
 */
import { BadInputError, CancelledError, formatBytes } from '../core/io/errors';
import { inspectFile } from '../core/jobs/inspect';
import { otherValuesText, weightCounts, type InspectReportDto, type TotalsDto } from '../protocol/inspect';
import { parallelWith, StatisticsPool } from '../worker/statsPool';
import packageJson from '../../package.json';
import { parseArgs, UsageError } from './args';
import { COMPRESS_USAGE, compressCommand, DECOMPRESS_USAGE, decompressCommand } from './compressCommands';
import { formatInteger, formatStat, renderTable } from './format';
import { DISTILL_USAGE, distillCommand, EVAL_USAGE, evalCommand, PREPROCESS_USAGE } from './modelCommands';
import { SPECTRA_HELP, spectraCommand } from './spectraCommand';
import { CONVERT_HELP, convertCommand } from './convertCommand';
import { ATTACHMENT_HELP, attachmentCommand } from './attachmentCommand';
import { DIFF_HELP, diffCommand } from './diffCommand';
import { SWEEP_HELP, sweepCommand } from './sweepCommand';

import { DEFAULT_HISTOGRAM_BINS } from '../protocol/defaults';
import { LEAN_REPORT_NOTE } from '../protocol/artifact';
/** The package's own version (package.json, inlined by the bundler). */
const VERSION: string = packageJson.version;

const INSPECT_USAGE = `  weight-lens inspect FILE [--json] [--bins N] [--headers-only]
      List every tensor of FILE with dtype, shape, size and statistics.
      Formats: safetensors (and sharded *.safetensors.index.json), PyTorch .pt/.pth/.bin, ONNX, TF.js model.json,
      Keras .h5/.keras, NumPy .npy/.npz, GGUF.`;

const INSPECT_OPTIONS = `Options (inspect):
  --json           print one JSON document instead of a table
  --bins N         histogram bins (default ${DEFAULT_HISTOGRAM_BINS})
  --headers-only   skip statistics (instant, reads headers only)`;

const EXIT_CODES = 'Exit codes: 0 success, 2 bad input file, 1 other errors.';

const HELP = `weight-lens ${VERSION}: inspect, compress, evaluate and distill neural-network checkpoints

Usage:
${INSPECT_USAGE}
${COMPRESS_USAGE}
${DECOMPRESS_USAGE}
${EVAL_USAGE}
${DISTILL_USAGE}
${PREPROCESS_USAGE}
${SPECTRA_HELP}
${CONVERT_HELP}
${ATTACHMENT_HELP}
${DIFF_HELP}
${SWEEP_HELP}

${INSPECT_OPTIONS}
  --help, --version
  COMMAND --help   that command's help

${EXIT_CODES}`;

/** Each command's own help, printed by `weight-lens COMMAND --help` (or `-h`). */
const COMMAND_HELP: Readonly<Record<string, string>> = {
  inspect: `${INSPECT_USAGE}\n\n${INSPECT_OPTIONS}`,
  compress: COMPRESS_USAGE,
  decompress: DECOMPRESS_USAGE,
  eval: `${EVAL_USAGE}\n${PREPROCESS_USAGE}`,
  distill: `${DISTILL_USAGE}\n${PREPROCESS_USAGE}`,
  spectra: SPECTRA_HELP,
  convert: CONVERT_HELP,
  attachment: ATTACHMENT_HELP,
  diff: DIFF_HELP,
  sweep: `${SWEEP_HELP}\n${PREPROCESS_USAGE}`,
};

/**
 * The help `argv` asks for, when it asks for one: `COMMAND --help` or `COMMAND -h` anywhere before a `--` gives that
 * command's usage; undefined for any other command line (an unknown command is left to the usage error).
 */
export function requestedHelp(argv: readonly string[]): string | undefined {
  const [command, ...rest] = argv;
  if (command === undefined || !Object.hasOwn(COMMAND_HELP, command)) return undefined;
  const end = rest.indexOf('--');
  const flags = end < 0 ? rest : rest.slice(0, end);
  if (!flags.includes('--help') && !flags.includes('-h')) return undefined;
  return `weight-lens ${VERSION}\n\nUsage:\n${COMMAND_HELP[command] ?? ''}\n\n${EXIT_CODES}`;
}

/** Exit code for a file problem the user must fix. */
export const EXIT_BAD_INPUT = 2;
/** Exit code for usage errors and internal failures. */
export const EXIT_FAILURE = 1;

function totalsLine(label: string, t: TotalsDto): string[] {
  return [label, formatInteger(t.tensors), formatInteger(t.params), formatBytes(t.bytes)];
}

function printReport(report: InspectReportDto): void {
  const out: string[] = [];
  out.push(report.file);
  const counts = weightCounts(report.byDtype);
  const other = otherValuesText(counts);
  out.push(
    `format: ${report.description}  ·  ${formatBytes(report.bytes)}  ·  ${formatInteger(report.totals.tensors)} tensors  ·  ${formatInteger(counts.float)} float weights${other !== '' ? ` (${other})` : ''}`,
  );
  const artifact = report.artifact;
  if (artifact !== undefined && 'problem' in artifact) out.push(`NeRN artifact: ${artifact.problem}`);
  else if (artifact !== undefined) {
    const s = artifact.summary;
    out.push(
      `NeRN artifact: format version ${s.version}, verbatim tensors ${s.verbatimStorage === 'f16' ? 'as float16' : s.verbatimStorage === 'int8' ? 'as int8 codes with per-row scales' : 'in their own dtypes'}`,
    );
    out.push(
      s.reportSidecar !== undefined
        ? `report: ${s.report.layers.length} layers and ${s.report.lossCurve.length} loss points from the sidecar ${s.reportSidecar.path} (${formatBytes(s.reportSidecar.bytes)}, not counted in the artifact's ${formatBytes(report.bytes)})`
        : s.lean === true
          ? LEAN_REPORT_NOTE
          : `report: ${s.report.layers.length} layers and ${s.report.lossCurve.length} loss points, stored in the artifact`,
    );
  }
  out.push('');
  const rows = report.tensors.map((t) => {
    const s = t.stats;
    const statCells = s
      ? [
          formatStat(s.mean),
          formatStat(s.std),
          formatStat(s.min),
          formatStat(s.max),
          t.params ? `${((100 * s.zeros) / t.params).toFixed(1)}%` : '-',
          s.nonFinite ? formatInteger(s.nonFinite) : '0',
        ]
      : [t.notDecoded !== undefined ? 'not decoded' : '-', '', '', '', '', ''];
    return [t.name, t.dtype, `[${t.shape.join(', ')}]`, formatInteger(t.params), formatBytes(t.bytes), ...statCells];
  });
  out.push(
    renderTable(['name', 'dtype', 'shape', 'params', 'bytes', 'mean', 'std', 'min', 'max', 'zeros', 'nan/inf'], rows, [
      'l',
      'l',
      'l',
      'r',
      'r',
      'r',
      'r',
      'r',
      'r',
      'r',
      'r',
    ]),
  );
  out.push('');
  const totals = [
    totalsLine('total', report.totals),
    ...Object.entries(report.byDtype).map(([dtype, t]) => totalsLine(`dtype ${dtype}`, t)),
    ...Object.entries(report.byKind).map(([kind, t]) => totalsLine(`kind ${kind}`, t)),
  ];
  out.push(renderTable(['', 'tensors', 'params', 'bytes'], totals, ['l', 'r', 'r', 'r']));
  process.stdout.write(out.join('\n') + '\n');
}

async function inspectCommand(argv: readonly string[]): Promise<number> {
  const { positional, options } = parseArgs(argv, { json: 'boolean', bins: 'integer', 'headers-only': 'boolean' });
  const [file, ...rest] = positional;
  if (file === undefined || rest.length > 0) throw new UsageError('inspect takes exactly one FILE');
  const bins = typeof options.bins === 'number' ? options.bins : DEFAULT_HISTOGRAM_BINS;
  if (bins < 1 || bins > 65536) throw new UsageError('--bins must be between 1 and 65536');
  let pool: StatisticsPool | undefined;
  const report = await inspectFile(file, {
    bins,
    headersOnly: options['headers-only'] === true,
    parallel: parallelWith(() => (pool ??= new StatisticsPool()), file),
  }).finally(() => pool?.close());
  if (options.json === true) {
    const { format, file: path, bytes, tensors, totals } = report;
    process.stdout.write(
      JSON.stringify({
        format,
        file: path,
        bytes,
        description: report.description,
        metadata: report.metadata,
        tensors,
        totals,
        byDtype: report.byDtype,
        byKind: report.byKind,
        ...(report.artifact !== undefined ? { artifact: report.artifact } : {}),
      }) + '\n',
    );
  } else {
    printReport(report);
  }
  return 0;
}

/** Flags whose name is not the kebab-case form of the options key they set. */
const FLAG_OF_OPTION: Readonly<Record<string, string>> = {
  roundWidthScale: '--round-scale',
  budget: '--hidden, --size or --size-bytes',
};

/**
 * A bad-input message with the CLI's hint: an error about one option (`error.option`, an options-DTO key) ends with
 * the flag that sets it, e.g. "The learning rate must be between 0 and 1, not 5 (--lr)."
 */
export function withFlagHint(error: BadInputError): string {
  if (error.option === undefined) return error.message;
  const flag = Object.hasOwn(FLAG_OF_OPTION, error.option)
    ? FLAG_OF_OPTION[error.option]
    : `--${error.option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  return `${error.message.replace(/\.$/, '')} (${flag}).`;
}

/** Runs the CLI with `argv` (without node and script) and resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    const help = requestedHelp(argv);
    if (help !== undefined) {
      process.stdout.write(help + '\n');
      return 0;
    }
    switch (command) {
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(HELP + '\n');
        return command === undefined ? EXIT_FAILURE : 0;
      case '--version':
        process.stdout.write(VERSION + '\n');
        return 0;
      case 'inspect':
        return await inspectCommand(rest);
      case 'compress':
        return await compressCommand(rest);
      case 'decompress':
        return await decompressCommand(rest);
      case 'eval':
        return await evalCommand(rest);
      case 'distill':
        return await distillCommand(rest);
      case 'spectra':
        return await spectraCommand(rest);
      case 'convert':
        return await convertCommand(rest);
      case 'attachment':
        return await attachmentCommand(rest);
      case 'diff':
        return await diffCommand(rest);
      case 'sweep':
        return await sweepCommand(rest);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (error instanceof BadInputError) {
      process.stderr.write(`error: ${withFlagHint(error)}\n`);
      return EXIT_BAD_INPUT;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`error: ${error.message} (see weight-lens --help)\n`);
      return EXIT_FAILURE;
    }
    if (error instanceof CancelledError) {
      process.stderr.write('error: cancelled\n');
      return EXIT_FAILURE;
    }
    process.stderr.write(
      `error: internal failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return EXIT_FAILURE;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`error: internal failure: ${String(error)}\n`);
      process.exitCode = EXIT_FAILURE;
    },
  );
}
