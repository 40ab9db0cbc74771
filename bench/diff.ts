/**
 * `npm run bench:diff`: `weight-lens diff` on two big safetensors files against a NumPy reference on the same files
 * in one run. bench/reference/diff_reference.py writes A and B (float32 [4096, 4096] tensors of 64 MiB, B = A + small
 * noise on every other tensor) into a temporary folder, streaming; then the installed CLI (`dist/cli.js diff A B
 * --json`) and the NumPy reference (np.memmap, 4 Mi values per window, float64 sums) each run as a child process
 * under /usr/bin/time, which gives wall seconds and peak RSS the same way for both. Both read the files from the page
 * cache the generation left. Prints both side by side, the worst disagreement between their figures, and the
 * CLI's peak RSS for `--version` (the process's floor). The aim: two 2 GB files under 400 MB peak RSS.
 * Deletes the folder at the end. Asserts nothing.
 *
 * Run: node --import tsx bench/diff.ts [--gb 2]   (GiB per file, whole 64 MiB tensors; needs 2 × that free in the
 * temporary folder, Debian's python3-numpy and /usr/bin/time)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DiffReportDto } from '../src/protocol/diff';

const PYTHON = '/usr/bin/python3';
const TIME = '/usr/bin/time';
const root = resolve(__dirname, '..');
const cli = join(root, 'dist', 'cli.js');
const reference = join(root, 'bench', 'reference', 'diff_reference.py');
const args = process.argv.slice(2);
const at = args.indexOf('--gb');
const gb = at >= 0 ? Number(args[at + 1]) : 2;
const TENSOR_BYTES = 64 * 1024 * 1024;

/** The NumPy reference's output. */
interface ReferenceStats {
  rows: { name: string; maxAbs: number; rms: number; relative: number; cosine: number }[];
  compared: number;
  maxAbs: number;
  relative: number;
  cosine: number;
  seconds: number;
  peakRssKb: number;
}

/** Runs `command args` under /usr/bin/time; returns stdout, wall seconds and peak RSS in MB. */
function timed(command: string, argv: string[]): { stdout: string; seconds: number; peakRssMb: number } {
  const report = join(folder, 'time.txt');
  const r = spawnSync(TIME, ['-f', '%e %M', '-o', report, command, ...argv], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`${command} ${argv.join(' ')} exited ${String(r.status)}`);
  const [seconds, kb] = readFileSync(report, 'utf8').trim().split('\n').pop()?.split(' ').map(Number) ?? [];
  return { stdout: r.stdout, seconds: seconds ?? NaN, peakRssMb: (kb ?? NaN) / 1024 };
}

/** |x − y| / max(|y|, tiny): the relative disagreement of our figure `x` with NumPy's `y`. */
function disagreement(x: number | null | undefined, y: number): number {
  return Math.abs((x ?? NaN) - y) / Math.max(Math.abs(y), 1e-300);
}

if (!(gb > 0)) throw new Error('--gb takes a positive number of GiB per file');
if (!existsSync(cli)) throw new Error('dist/cli.js is missing: run `npm run build` first');
const tensors = Math.max(1, Math.round((gb * 2 ** 30) / TENSOR_BYTES));
const fileBytes = tensors * TENSOR_BYTES;
const { bavail, bsize } = statfsSync(tmpdir());
if (bavail * bsize < 2 * fileBytes + 2 ** 30)
  throw new Error(
    `${tmpdir()} has ${((bavail * bsize) / 2 ** 30).toFixed(1)} GiB free; two files of ${(fileBytes / 2 ** 30).toFixed(2)} GiB need more: pass a smaller --gb`,
  );
const folder = mkdtempSync(join(tmpdir(), 'wl-bench-diff-'));
try {
  const a = join(folder, 'a.safetensors');
  const b = join(folder, 'b.safetensors');
  process.stderr.write(
    `writing two files of ${tensors} × 64 MiB float32 (${(fileBytes / 2 ** 30).toFixed(2)} GiB each) with NumPy into ${folder} …\n`,
  );
  const started = performance.now();
  const gen = spawnSync(PYTHON, ['-P', reference, 'generate', folder, String(tensors)], { stdio: 'inherit' });
  if (gen.status !== 0) throw new Error('bench/reference/diff_reference.py generate failed (needs python3-numpy)');
  process.stderr.write(`written in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);

  const floor = timed(process.execPath, [cli, '--version']);
  const ours = timed(process.execPath, [cli, 'diff', a, b, '--json']);
  const report = JSON.parse(ours.stdout) as DiffReportDto;
  const numpy = timed(PYTHON, ['-P', reference, 'stats', a, b]);
  const ref = JSON.parse(numpy.stdout) as ReferenceStats;

  let worst = 0;
  let worstWhat = '';
  for (const want of ref.rows) {
    const row = report.tensors.find((t) => t.a?.name === want.name);
    if (row?.delta === undefined) throw new Error(`weight-lens diff has no compared row for ${want.name}`);
    for (const key of ['maxAbs', 'rms', 'relative'] as const) {
      const d = want[key] === 0 ? Math.abs(row.delta[key] ?? NaN) : disagreement(row.delta[key], want[key]);
      if (d > worst || Number.isNaN(d)) [worst, worstWhat] = [d, `${want.name} ${key}`];
    }
    const d = disagreement(1 - (row.delta.cosine ?? NaN), 1 - want.cosine);
    if (want.cosine !== 1 && (d > worst || Number.isNaN(d))) [worst, worstWhat] = [d, `${want.name} 1 − cos`];
  }
  const changed = report.summary.counts.changed;
  const same = report.summary.counts.same;
  const gbps = (s: number): string => ((2 * fileBytes) / 2 ** 30 / s).toFixed(2);
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(26) : c.padStart(12))).join('');
  const out = [
    '',
    `two safetensors files of ${(fileBytes / 2 ** 30).toFixed(2)} GiB (${tensors} × [4096, 4096] float32), B = A + N(0, 0.001²) on ${Math.ceil(tensors / 2)} tensors`,
    line(['', 'wall s', 'GiB/s read', 'peak RSS MB', 'max |Δ|', '‖Δ‖/‖A‖', 'cos(A, B)']),
    line([
      'weight-lens diff --json',
      ours.seconds.toFixed(2),
      gbps(ours.seconds),
      ours.peakRssMb.toFixed(0),
      report.summary.maxAbs.toExponential(4),
      (report.summary.relative ?? NaN).toExponential(4),
      (report.summary.cosine ?? NaN).toFixed(8),
    ]),
    line([
      'NumPy memmap, 4 Mi windows',
      numpy.seconds.toFixed(2),
      gbps(numpy.seconds),
      numpy.peakRssMb.toFixed(0),
      ref.maxAbs.toExponential(4),
      ref.relative.toExponential(4),
      ref.cosine.toFixed(8),
    ]),
    `weight-lens --version: ${floor.peakRssMb.toFixed(0)} MB peak RSS (the process's floor); the NumPy process timed its comparison alone at ${ref.seconds.toFixed(2)} s`,
    `statuses: ${same} same, ${changed} changed (expected ${tensors - Math.ceil(tensors / 2)} and ${Math.ceil(tensors / 2)}); ${report.summary.compared.toLocaleString('en-US')} values compared (NumPy ${ref.compared.toLocaleString('en-US')})`,
    `largest disagreement with NumPy over every tensor's max |Δ|, RMS Δ, ‖Δ‖/‖A‖ and 1 − cos: ${worst.toExponential(2)} relative (${worstWhat || '—'})`,
    `aim: peak RSS < 400 MB → ${ours.peakRssMb < 400 ? 'met' : 'NOT met'}`,
  ];
  process.stdout.write(out.join('\n') + '\n');
} finally {
  rmSync(folder, { recursive: true, force: true });
}
