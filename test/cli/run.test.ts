// `weight-lens eval` and `weight-lens distill` as separate processes on the project's ResNet-20 and a few real
// Fashion-MNIST images: flags, the documented JSON, a written distilled artifact, and exit codes (2 with one `error:`
// line for unusable files, 1 for usage errors). Step and sample counts are tiny: what the numbers mean is tested
// in process by test/jobs/evaluateDistill.test.ts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const cli = join(root, 'dist', 'cli.js');
const MODEL = join(root, 'test', 'fixtures', 'models', 'resnet20_fmnist.onnx');
const STATE_DICT = join(root, 'test', 'fixtures', 'models', 'resnet20_fmnist.pt');
const IMAGES = join(root, 'test', 'fixtures', 'data', 'idx', 't10k-images-idx3-ubyte.gz');
const dir = mkdtempSync(join(tmpdir(), 'wl-cli-run-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 180_000, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

void test('eval --json prints {n, accuracy, agreement, relativeError}; flags override the sidecar', () => {
  const r = run(['eval', MODEL, '--data', IMAGES, '--weights', STATE_DICT, '--limit', '8', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as {
    n: number;
    accuracy: number;
    agreement: number;
    relativeError: number;
    psnr?: number;
    originalAccuracy: number;
  };
  assert.equal(j.n, 8);
  assert.equal(j.agreement, 1);
  assert.ok(j.relativeError < 1e-6);
  assert.equal(j.accuracy, j.originalAccuracy);
  assert.equal(j.psnr, undefined, 'classifiers report no PSNR');
  // Raw 0..255 inputs instead of the sidecar's normalisation: the model still runs, accuracy collapses.
  const raw = run(['eval', MODEL, '--data', IMAGES, '--layout', 'nchw', '--scale', '1', '--limit', '4', '--json']);
  assert.equal(raw.status, 0, raw.stderr);
  const rj = JSON.parse(raw.stdout) as { n: number; report: { preprocessSource: string } };
  assert.equal(rj.n, 4);
  assert.equal(rj.report.preprocessSource, 'options');
  const human = run(['eval', MODEL, '--data', IMAGES, '--limit', '4']);
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stdout, /original\s+4\s+\d+\.\d\d %/);
});

void test('distill writes the new artifact and reports before/after; bad inputs exit 2 in one line', () => {
  const artifact = join(dir, 'r.nern.safetensors');
  const c = run([
    'compress',
    STATE_DICT,
    '--hidden',
    '16',
    '--steps',
    '2',
    '--backend',
    'wasm',
    '--out',
    artifact,
    '--json',
  ]);
  assert.equal(c.status, 0, c.stderr);
  const out = join(dir, 'r2.nern.safetensors');
  const d = run([
    'distill',
    artifact,
    '--model',
    MODEL,
    '--data',
    IMAGES,
    '--steps',
    '2',
    '--batch-size',
    '2',
    '--eval-samples',
    '4',
    '--eval-every',
    '0',
    '--out',
    out,
    '--json',
  ]);
  assert.equal(d.status, 0, d.stderr);
  const report = JSON.parse(d.stdout) as {
    out: string;
    before: { n: number; agreement: number };
    after: { n: number };
    lossCurve: unknown[];
    boundLayers: number;
  };
  assert.equal(report.out, out);
  assert.equal(report.before.n, 4);
  assert.equal(report.after.n, 4);
  assert.equal(report.lossCurve.length, 2);
  assert.ok(existsSync(out));
  const bad = run(['eval', STATE_DICT, '--data', IMAGES]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^error: resnet20_fmnist\.pt is not a runnable model[^\n]*\n$/);
  const badData = run(['eval', MODEL, '--data', STATE_DICT]);
  assert.equal(badData.status, 2, badData.stderr);
  assert.equal(badData.stderr.split('\n').length, 2);
  const usage = run(['distill', artifact, '--data', IMAGES]);
  assert.equal(usage.status, 1);
  assert.match(usage.stderr, /needs --model/);
  const badLr = run(['distill', artifact, '--model', MODEL, '--data', IMAGES, '--lr', '5']);
  assert.equal(badLr.status, 2);
  assert.match(badLr.stderr, /^error: The learning rate must be between 0 and 1, not 5 \(--lr\)\.$/m);
});
