// `weight-lens sweep` as a separate process on the project's ResNet-20 (torch.save state dict, scored with its ONNX
// export on real Fashion-MNIST test images): the table with its Pareto front, the JSON report whose rows name files
// of the bytes they state, compress flags passed through to every run, and usage errors for flags a sweep sets per
// run. What each row's score means is tested in process (test/jobs/sweep.test.ts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SweepReportDto } from '../../src/protocol/sweep';
import { sweepRequestFromArgs } from '../../src/cli/sweepCommand';

const root = join(__dirname, '..', '..');
const cli = join(root, 'dist', 'cli.js');
const FIXTURES = join(root, 'test', 'fixtures');
const STATE_DICT = join(FIXTURES, 'models', 'resnet20_fmnist.pt');
const MODEL = join(FIXTURES, 'models', 'resnet20_fmnist.onnx');
const IMAGES = join(FIXTURES, 'data', 'idx', 't10k-images-idx3-ubyte.gz');
const dir = mkdtempSync(join(tmpdir(), 'wl-sweep-cli-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const common = [STATE_DICT, '--model', MODEL, '--data', IMAGES, '--limit', '24', '--steps', '15', '--backend', 'wasm'];

void test('sweep --json: one row per method and size, each naming an artifact of the bytes it states, the front marked', () => {
  const out = join(dir, 'json');
  const r = run(['sweep', ...common, '--methods', 'nern,int4', '--sizes', '0.1,0.3', '--out-dir', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as SweepReportDto;
  assert.equal(report.metric, 'accuracy');
  assert.equal(report.samples, 24);
  // Rows are sorted by bytes: int4 (its own fixed 12.5 % of the float32 weights plus scales) is smaller than NeRN at 10 %,
  // whose file also holds the permutations and the metadata.
  assert.deepEqual(
    report.rows.map((row) => [row.method, row.size]),
    [
      ['int4', undefined],
      ['nern', 0.1],
      ['nern', 0.3],
    ],
  );
  const int4 = report.rows[0]!;
  assert.ok(int4.artifact.endsWith('.int4.safetensors'), int4.artifact);

  for (const row of report.rows) {
    assert.equal(statSync(row.artifact).size, row.bytes, row.artifact);
    assert.ok(row.artifact.startsWith(out), row.artifact);
    assert.ok(row.score >= 0 && row.score <= 1);
  }
  assert.ok(report.rows[1]!.bytes < report.rows[2]!.bytes, 'the smaller size gives the smaller file');
  assert.ok(int4.pareto, 'the smallest row is always on the front');
  assert.deepEqual(report.failures, []);
});

void test('sweep prints one table with the original accuracy and the starred front', () => {
  const r = run(['sweep', ...common, '--methods', 'nern', '--sizes', '20%', '--out-dir', join(dir, 'table')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /original accuracy \d+\.\d\d %/);
  assert.match(r.stdout, /method\s+size\s+bytes\s+of file\s+accuracy\s+points\s+agreement\s+seconds/);
  assert.match(r.stdout, /★\s+nern\s+20 %\s/);
  assert.match(r.stdout, /Pareto front/);
});

void test('sweep refuses flags it sets per run and incomplete requests, naming the flag', () => {
  for (const [args, pattern] of [
    [['--size', '0.2'], /--size is set per run by a sweep/],
    [['--out', 'x.safetensors'], /--out is set per run/],
    [['--methods', 'nern,zip'], /--methods takes nern, int8, int4, lowrank, prune, not zip/],
    [['--sizes', '0,2'], /--sizes must be/],
    [['--distill-steps', '5'], /--distill-steps needs --distill-data/],
  ] as const) {
    const r = run(['sweep', ...common, ...args]);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, pattern);
  }
  const noModel = run(['sweep', STATE_DICT, '--data', IMAGES]);
  assert.equal(noModel.status, 1);
  assert.match(noModel.stderr, /sweep needs --model/);
});

void test('compress flags reach every run; the sweep keeps its own flags and their values', () => {
  const { request, json } = sweepRequestFromArgs([
    ...common,
    '--dense',
    '--seed',
    '7',
    '--predictor-dtype',
    'int8',
    '--methods',
    'nern,int4',
    '--distill-steps',
    '3',
    '--distill-data',
    IMAGES,
    '--scale',
    '0.5',
    '--json',
  ]);
  assert.equal(json, true);
  assert.deepEqual(request.methods, ['nern', 'int4']);
  assert.equal(request.limit, 24);
  assert.equal(request.distillSteps, 3);
  assert.deepEqual(request.preprocess, { scale: 0.5 });
  assert.equal(request.compress.steps, 15);
  assert.equal(request.compress.seed, 7);
  assert.equal(request.compress.backend, 'wasm');
  assert.equal(request.compress.predictorDtype, 'int8');
  assert.deepEqual(request.compress.represent, { conv: true, dense: true, pointwise: 'blocks' });
});
