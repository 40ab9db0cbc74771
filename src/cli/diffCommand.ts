/**
 * `weight-lens diff A B [--json] [--match name|shape] [--map FROM=TO]... [--all]`: compares the weights of two checkpoints over
 * src/core/jobs/diff.ts. Human mode prints the whole-model summary, then every tensor that is not the same, worst
 * first, with max |Δ|, RMS Δ, ‖Δ‖/‖A‖ and cos(A, B); `--json` prints the report with every row.
 */
import { diffFiles } from '../core/jobs/diff';
import type { DiffFileDto, DiffSideDto, TensorDiffDto } from '../protocol/diff';
import { parseArgs, UsageError } from './args';
import { formatInteger, renderTable } from './format';
import { interruptible } from './interrupt';

/** The diff command's lines of the CLI's help. */
export const DIFF_HELP = `  weight-lens diff A B [--json] [--match name|shape] [--map FROM=TO]... [--all]
      Compare the weights of two checkpoints in any two supported formats. Tensors are paired by name after
      dropping module. / model. / _orig_mod. prefixes; each is same, changed, added, removed, reshaped or
      dtype-changed, with max |Δ|, RMS Δ, ‖Δ‖/‖A‖ and cos(A, B) for compared pairs, worst first. A or B may be
      a Weight Lens compression artifact: its decoded reconstruction is compared.
      --match shape   also pair the remaining tensors by equal shape in file order (renamed layers)
      --map FROM=TO   rename A's tensors before matching (repeatable): an exact name, or a prefix ending in '.'
                      (--map features.=backbone.)
      --all           also compare integer and boolean tensors (step counters, shape constants)`;

/** `argv` without its `--NAME VALUE` and `--NAME=VALUE` occurrences, and their values in order (a repeatable option). */
function takeRepeated(argv: readonly string[], name: string): { values: string[]; rest: string[] } {
  const values: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg.startsWith(`--${name}=`)) values.push(arg.slice(name.length + 3));
    else if (arg === `--${name}`) {
      const value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
      values.push(value);
      i++;
    } else rest.push(arg);
  }
  return { values, rest };
}

/** A number in 4 significant digits (exponent form when small or large), or '—'. */
function sig(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  if (value === 0) return '0';
  const abs = Math.abs(value);
  return abs < 1e-3 || abs >= 1e5 ? value.toExponential(3) : value.toPrecision(4);
}

function sideText(s: DiffSideDto | undefined): string {
  return s === undefined ? '—' : `${s.dtype} [${s.shape.join(', ')}]`;
}

/** What a side is: format and tensor count, and for an artifact, that its reconstruction was compared. */
function sideSummary(side: DiffFileDto): string {
  const tensors = `${formatInteger(side.tensors)} tensors`;
  const { artifact } = side;
  if (artifact === undefined) return `${side.format}, ${tensors}`;
  return `${artifact.method} artifact, compared as its reconstruction of ${artifact.sourceName}: ${tensors}, ${formatInteger(artifact.represented)} decoded`;
}

function nameOf(row: TensorDiffDto): string {
  const a = row.a?.name;
  const b = row.b?.name;
  if (a !== undefined && b !== undefined && a !== b) return `${a} → ${b}`;
  return a ?? b ?? '';
}

/** Runs `weight-lens diff`; resolves to the exit code. */
export async function diffCommand(argv: readonly string[]): Promise<number> {
  const { values: map, rest: others } = takeRepeated(argv, 'map');
  const { positional, options } = parseArgs(others, { json: 'boolean', match: 'string', all: 'boolean' });
  const [a, b, ...rest] = positional;
  if (a === undefined || b === undefined || rest.length > 0) throw new UsageError('diff takes exactly A and B');
  const match = options.match ?? 'name';
  if (match !== 'name' && match !== 'shape') throw new UsageError('--match takes name or shape');
  const tty = process.stderr.isTTY;
  // One progress line on a terminal: the tensor under way and the share of all values compared, redrawn at most
  // every 200 ms (a 64 MB tensor takes several chunks; a 2 GB file, seconds).
  let tensor = '';
  let drawn = 0;
  const draw = (text: string): void => {
    process.stderr.write(`\r${text}`.slice(0, 100).padEnd(100));
  };
  const report = await interruptible((signal) =>
    diffFiles(
      a,
      b,
      { match, includeIntegers: options.all === true, map },
      {
        signal,
        onPair: (index, total, name) => {
          tensor = `tensor ${index + 1}/${total} ${name}`;
          if (tty) draw(tensor);
        },
        onValues: (done, total) => {
          const now = performance.now();
          if (!tty || now - drawn < 200) return;
          drawn = now;
          draw(`${((100 * done) / Math.max(1, total)).toFixed(0)}% of ${formatInteger(total)} values  ${tensor}`);
        },
      },
    ),
  );
  if (tty) process.stderr.write('\r'.padEnd(101) + '\r');
  if (options.json === true) {
    process.stdout.write(JSON.stringify(report) + '\n');
    return 0;
  }
  const { summary } = report;
  const counts = Object.entries(summary.counts)
    .filter(([, n]) => n > 0)
    .map(([status, n]) => `${formatInteger(n)} ${status}`)
    .join(', ');
  const out = [
    `A ${report.a.file} (${sideSummary(report.a)})`,
    `B ${report.b.file} (${sideSummary(report.b)})`,
    `${summary.identical ? 'identical' : 'different'}: ${counts}`,
    `over ${formatInteger(summary.compared)} compared values: max |Δ| ${sig(summary.maxAbs)}, ‖Δ‖/‖A‖ ${sig(summary.relative)}, cos(A, B) ${sig(summary.cosine)}`,
  ];
  for (const r of report.map ?? [])
    out.push(
      r.renamed > 0
        ? `--map ${r.rule}: renamed ${formatInteger(r.renamed)} tensor${r.renamed === 1 ? '' : 's'} of A`
        : `--map ${r.rule}: renamed nothing (no tensor of A has that name or prefix)`,
    );
  const left = report.integerTensorsLeftOut;
  if (left.a + left.b > 0)
    out.push(
      `not compared: ${formatInteger(left.a)} integer/boolean tensors of A, ${formatInteger(left.b)} of B (--all compares them)`,
    );
  const rows = report.tensors
    .filter((r) => r.status !== 'same')
    .map((r) => [
      r.status,
      nameOf(r),
      sideText(r.a),
      sideText(r.b),
      sig(r.delta?.maxAbs),
      sig(r.delta?.rms),
      sig(r.delta?.relative),
      sig(r.delta?.cosine),
    ]);
  if (rows.length > 0)
    out.push(
      '',
      renderTable(['status', 'tensor', 'A', 'B', 'max |Δ|', 'RMS Δ', '‖Δ‖/‖A‖', 'cos(A, B)'], rows, [
        'l',
        'l',
        'l',
        'l',
        'r',
        'r',
        'r',
        'r',
      ]),
    );
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}
