/**
 * `weight-lens attachment IN [--out OUT.json] [--no-spectra] [--max-rank N] [--json]`: a Netron attachment
 * (`netron:attachment` JSON) of IN's per-tensor statistics and spectral metrics over src/core/jobs/netronAttachment.ts,
 * with a progress line on stderr when it is a terminal and a one-line summary on stdout; `--json` prints the report.
 */
import { writeNetronAttachment } from '../core/jobs/netronAttachment';
import { DEFAULT_SPECTRA_OPTIONS } from '../protocol/defaults';
import { parallelWith, StatisticsPool } from '../worker/statsPool';
import packageJson from '../../package.json';
import { parseArgs, UsageError } from './args';
import { formatInteger } from './format';
import { interruptible } from './interrupt';

/** The attachment command's lines of the CLI's help. */
export const ATTACHMENT_HELP = `  weight-lens attachment IN [--out OUT.json] [--no-spectra] [--max-rank N] [--json]
      Write a Netron attachment (netron:attachment JSON) of IN: per tensor min, max, mean, std, sparsity,
      zeros, abs max, norm and non-finite count (as inspect computes them), and for every 2-D matrix and
      convolution WeightWatcher's alpha, alpha_weighted, stable_rank, log_spectral_norm, log_norm,
      mp_softrank and spectral_norm (as spectra computes them). Open the model in Netron, then open the
      attachment over it: the figures show in each tensor's sidebar. Written atomically; never overwrites IN.
      --out OUT.json  where to write it (default: beside IN, IN's name without its extension + .attachment.json)
      --no-spectra    statistics only (fast: no SVDs)
      --max-rank N    as for spectra (default ${DEFAULT_SPECTRA_OPTIONS.maxRank}; 0: always exact)`;

/** Runs `weight-lens attachment`; resolves to the exit code. */
export async function attachmentCommand(argv: readonly string[]): Promise<number> {
  const { positional, options } = parseArgs(argv, {
    out: 'string',
    'no-spectra': 'boolean',
    'max-rank': 'integer',
    json: 'boolean',
  });
  const [input, ...rest] = positional;
  if (input === undefined || rest.length > 0) throw new UsageError('attachment takes exactly one IN');
  const spectra = options['no-spectra'] !== true;
  if (!spectra && options['max-rank'] !== undefined)
    throw new UsageError('--max-rank needs spectra (drop --no-spectra)');
  const tty = process.stderr.isTTY;
  let pool: StatisticsPool | undefined;
  const report = await interruptible((signal) =>
    writeNetronAttachment(
      input,
      {
        ...(typeof options.out === 'string' ? { out: options.out } : {}),
        spectra,
        maxRank: typeof options['max-rank'] === 'number' ? options['max-rank'] : DEFAULT_SPECTRA_OPTIONS.maxRank,
      },
      {
        signal,
        producer: `weight-lens ${packageJson.version}`,
        parallel: parallelWith(() => (pool ??= new StatisticsPool()), input),
        onProgress: (p) => {
          if (tty) process.stderr.write(`\r${p.phase} ${p.index + 1}/${p.total} ${p.name}`.padEnd(100));
        },
      },
    ),
  ).finally(() => pool?.close());
  if (tty) process.stderr.write('\r'.padEnd(101) + '\r');
  if (options.json === true) {
    process.stdout.write(JSON.stringify(report) + '\n');
    return 0;
  }
  process.stdout.write(
    `${report.output}: Netron attachment of ${formatInteger(report.tensors)} tensors' statistics` +
      (spectra ? ` and ${formatInteger(report.spectra)} layers' spectra` : '') +
      ` (${formatInteger(report.metrics)} metrics, ${formatInteger(report.metadata)} metadata rows) from ${report.format} (${report.seconds.toFixed(1)} s)\n`,
  );
  return 0;
}
