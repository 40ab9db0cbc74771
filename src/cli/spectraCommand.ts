/**
 * `weight-lens spectra FILE [--json] [--max-rank N] [--bins N] [--values]`: WeightWatcher's spectral diagnostics per
 * layer over src/core/jobs/spectra.ts. Human mode prints a per-layer table (α, α-weighted, stable rank, log norms,
 * MP soft rank, WeightWatcher's reading of α) and the skipped tensors, with a progress line on stderr when it is a
 * terminal; `--json` prints the report (`--values` adds every layer's singular values).
 */
import { NATIVE_MIN_SIDE } from '../core/analysis/nativeLinalg';
import { spectraOfFile } from '../core/jobs/spectra';
import { DEFAULT_SPECTRA_OPTIONS } from '../protocol/defaults';
import {
  OVER_TRAINED_ALPHA,
  UNDER_TRAINED_ALPHA,
  type LayerSpectrumDto,
  type SpectraOptionsDto,
  type SpectraReportDto,
} from '../protocol/spectra';
import { parseArgs, UsageError } from './args';
import { formatInteger, renderTable } from './format';
import { interruptible } from './interrupt';

/** The spectra command's lines of the CLI's help. */
export const SPECTRA_HELP = `  weight-lens spectra FILE [--json] [--max-rank N] [--bins N] [--values]
      WeightWatcher's spectral diagnostics of every 2-D matrix and 4-D convolution (kh·kw slices pooled):
      power-law α of the ESD of WᵀW (x_min by the smallest KS distance), α-weighted, stable rank, log spectral
      and Frobenius norms, MP soft rank. α below ${OVER_TRAINED_ALPHA} may mean over-trained, above ${UNDER_TRAINED_ALPHA} under-trained.
      --max-rank N   exact SVD up to N on a matrix's smaller side, else its top N singular values by a
                     randomized SVD (default ${DEFAULT_SPECTRA_OPTIONS.maxRank}; 0: always exact)
      --bins N       log bins of each ESD histogram in --json (default ${DEFAULT_SPECTRA_OPTIONS.bins})
      --values       with --json, include each layer's singular values`;

/** Fixed-point with `digits` decimals, or '—' for null. */
function fixed(value: number | null, digits: number): string {
  return value === null ? '—' : value.toFixed(digits);
}

/** How a layer's spectrum was computed, for the table. */
export function methodLabel(layer: LayerSpectrumDto): string {
  return layer.method.kind === 'exact'
    ? 'exact'
    : `top ${layer.method.rank} of ${layer.m} (randomized, ${layer.method.powerIterations} power iterations)`;
}

/** Runs `weight-lens spectra`; resolves to the exit code. */
export async function spectraCommand(argv: readonly string[]): Promise<number> {
  const { positional, options } = parseArgs(argv, {
    json: 'boolean',
    'max-rank': 'integer',
    bins: 'integer',
    values: 'boolean',
  });
  const [file, ...rest] = positional;
  if (file === undefined || rest.length > 0) throw new UsageError('spectra takes exactly one FILE');
  const json = options.json === true;
  if (options.values === true && !json) throw new UsageError('--values needs --json');
  const spectraOptions: SpectraOptionsDto = {
    maxRank: typeof options['max-rank'] === 'number' ? options['max-rank'] : DEFAULT_SPECTRA_OPTIONS.maxRank,
    bins: typeof options.bins === 'number' ? options.bins : DEFAULT_SPECTRA_OPTIONS.bins,
    ...(options.values === true ? { includeValues: true } : {}),
  };
  const tty = process.stderr.isTTY;
  const report = await interruptible((signal) =>
    spectraOfFile(file, spectraOptions, {
      signal,
      onProgress: (p) => {
        if (tty)
          process.stderr.write(
            `\rlayer ${p.index + 1}/${p.total} ${p.name}  ${Math.round(100 * p.fraction)} %`.padEnd(100),
          );
      },
    }),
  );
  if (tty) process.stderr.write('\r'.padEnd(101) + '\r');
  if (json) {
    process.stdout.write(JSON.stringify(report) + '\n');
    return 0;
  }
  const rows = report.layers.map((l) => [
    l.name,
    `[${l.shape.join(', ')}]`,
    formatInteger(l.evalCount),
    fixed(l.alpha, 3),
    fixed(l.alphaWeighted, 3),
    fixed(l.stableRank, 2),
    fixed(l.logSpectralNorm, 3),
    fixed(l.logNorm, 3),
    fixed(l.mpSoftRank, 3),
    l.warning ?? '',
    methodLabel(l),
  ]);
  const out = [
    `${report.file}  ·  ${report.layers.length} layers  ·  ${report.seconds.toFixed(1)} s  ·  ${engineLabel(report)}`,
    '',
    renderTable(
      [
        'name',
        'shape',
        'evals',
        'α',
        'α-weighted',
        'stable rank',
        'log λmax',
        'log ‖W‖F²',
        'MP soft rank',
        'reading',
        'spectrum',
      ],
      rows,
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'l'],
    ),
    '',
    `α: power-law exponent of the ESD of WᵀW (WeightWatcher: below ${OVER_TRAINED_ALPHA} may be over-trained, above ${UNDER_TRAINED_ALPHA} under-trained).`,
    'Convolutions pool their kh·kw slices; their eigenvalues are scaled by ½ as WeightWatcher does (conv2d_norm).',
  ];
  if (report.layers.some((l) => l.method.kind === 'randomized'))
    out.push(
      'Randomized spectra hold only the top singular values: α is fitted on those, the Frobenius norm is exact, and no MP soft rank is computed.',
    );
  if (report.skipped.length > 0) {
    out.push('', `skipped ${report.skipped.length}:`);
    for (const s of report.skipped) out.push(`  ${s.name} [${s.shape.join(', ')}]: ${s.reason}`);
  }
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

/** Which engine decomposed the large matrices, with the reason when it is not the native one. */
function engineLabel(report: SpectraReportDto): string {
  return report.engine === 'onnxruntime'
    ? `SVD of sides ≥ ${NATIVE_MIN_SIDE} on onnxruntime`
    : `JavaScript${report.engineReason ? ` (${report.engineReason})` : ''}`;
}
