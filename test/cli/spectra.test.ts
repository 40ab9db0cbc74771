// `weight-lens spectra` as a separate process on the project's ResNet-20: the table, the documented JSON (with
// --values and --max-rank), and exit codes (2 with one `error:` line for a file that is not a checkpoint, 1 for usage
// errors). What the numbers mean is tested in process against NumPy (test/unit/analysis/spectra.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { SpectraReportDto } from '../../src/protocol/spectra';

const root = join(__dirname, '..', '..');
const cli = join(root, 'dist', 'cli.js');
const RESNET = join(root, 'test', 'fixtures', 'models', 'resnet20_fmnist.pt');

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

void test('spectra prints α, stable rank and the reading per layer, and the skipped tensors', () => {
  const r = run(['spectra', RESNET]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /name\s+shape\s+evals\s+α\s+α-weighted\s+stable rank/);
  assert.match(r.stdout, /layer2\.1\.conv2\.weight\s+\[32, 32, 3, 3\]\s+288\s+10\.698\s.*under-trained\s+exact/);
  assert.match(r.stdout, /conv1\.weight \[16, 1, 3, 3\]: 9 eigenvalues/);
  assert.match(r.stdout, /below 2 may be over-trained, above 6 under-trained/);
});

void test('spectra --json [--values] [--max-rank N] prints the report', () => {
  const r = run(['spectra', RESNET, '--json', '--values', '--max-rank', '40', '--bins', '30']);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as SpectraReportDto;
  assert.equal(report.format, 'pytorch');
  assert.equal(report.layers.length, 19);
  assert.deepEqual(report.options, { maxRank: 40, bins: 30, includeValues: true });
  // onnxruntime-node is a dev dependency here, so the native route is taken and said.
  assert.equal(report.engine, 'onnxruntime', report.engineReason);
  assert.match(run(['spectra', RESNET]).stdout, /SVD of sides ≥ 192 on onnxruntime/);
  const big = report.layers.find((l) => l.name === 'layer3.0.conv2.weight')!;
  assert.deepEqual(big.method, { kind: 'randomized', rank: 40, powerIterations: 4 });
  assert.equal(big.singularValues?.length, 9 * 40);
  const small = report.layers.find((l) => l.name === 'layer1.0.conv1.weight')!;
  assert.deepEqual(small.method, { kind: 'exact' });
  assert.equal(small.esd.edges.length, 31);
});

void test('spectra exit codes: 2 for a file that is not a checkpoint, 1 for usage errors', () => {
  const bad = run(['spectra', join(root, 'README.md')]);
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /^error: /);
  assert.equal(bad.stdout, '');
  const usage = run(['spectra', RESNET, '--values']);
  assert.equal(usage.status, 1);
  assert.match(usage.stderr, /--values needs --json/);
  const negative = run(['spectra', RESNET, '--max-rank', '-3']);
  assert.equal(negative.status, 2);
  assert.match(negative.stderr, /\(--max-rank\)/);
});
