// `weight-lens convert` and `weight-lens diff` as separate processes: the summary lines, the JSON reports, and exit
// codes (2 with one `error:` line for a bad input or an output that is the input, 1 for usage errors). What the
// numbers mean is tested in process (test/jobs/convert.test.ts, test/jobs/diff.test.ts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DiffReportDto } from '../../src/protocol/diff';

const root = join(__dirname, '..', '..');
const cli = join(root, 'dist', 'cli.js');
const FIX = join(root, 'test', 'fixtures');
const dir = mkdtempSync(join(tmpdir(), 'wl-cli-convert-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

void test('convert writes safetensors and npz and lists dequantised tensors; diff finds them identical', () => {
  const st = join(dir, 'tfjs.safetensors');
  const r = run(['convert', join(FIX, 'tfjs', 'layers', 'model.json'), st]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /tfjs\.safetensors: 6 tensors, 898 values/);
  assert.match(r.stdout, /conv2\/kernel: uint8 \(quantized\) → F32 \(dequantised\)/);
  const npz = join(dir, 'resnet.npz');
  assert.equal(run(['convert', join(FIX, 'models', 'resnet20_fmnist.pt'), npz]).status, 0);
  const d = run(['diff', join(FIX, 'models', 'resnet20_fmnist.onnx'), npz, '--json']);
  assert.equal(d.status, 0, d.stderr);
  const report = JSON.parse(d.stdout) as DiffReportDto;
  assert.equal(report.summary.identical, true);
  assert.equal(report.summary.counts.same, 97);
  assert.equal(report.b.format, 'numpy');
});

void test('diff prints the summary and the rows that differ, worst first', () => {
  const r = run(['diff', join(FIX, 'pytorch', 'resnet_tiny.pt'), join(FIX, 'diff', 'resnet_tiny_perturbed.pt')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /different: 25 same, 3 changed, 2 added, 2 removed, 1 reshaped, 1 dtype-changed/);
  assert.match(r.stdout, /status\s+tensor\s+A\s+B\s+max \|Δ\|\s+RMS Δ\s+‖Δ‖\/‖A‖\s+cos\(A, B\)/);
  const lines = r.stdout.split('\n');
  const first = lines.findIndex((l) => l.startsWith('reshaped'));
  const changed = lines.findIndex((l) => l.startsWith('changed'));
  assert.ok(first > 0 && changed > first);
  assert.match(lines[changed] ?? '', /fc\.bias → module\.fc\.bias\s+F32 \[10\]\s+F32 \[10\]\s+0\.2500/);
  const shape = run([
    'diff',
    join(FIX, 'pytorch', 'resnet_tiny.pt'),
    join(FIX, 'diff', 'resnet_tiny_perturbed.pt'),
    '--match',
    'shape',
  ]);
  assert.match(shape.stdout, /26 same/);
});

void test('diff --map renames A before matching, repeatable and in both spellings; a bad rule exits 2 in one line', () => {
  const renamed = join(FIX, 'diff', 'resnet_tiny_renamed.pt');
  const tiny = join(FIX, 'pytorch', 'resnet_tiny.pt');
  const r = run([
    'diff',
    tiny,
    renamed,
    '--map',
    'layer1.=stage1.',
    '--map=layer2.=stage2.',
    '--map',
    'fc.weight=classifier.weight',
    '--map',
    'fc.bias=classifier.bias',
    '--map',
    'layer3.=stage3.',
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /different: 31 same, 1 changed\n/);
  assert.match(r.stdout, /--map layer1\.=stage1\.: renamed 12 tensors of A/);
  assert.match(r.stdout, /--map fc\.weight=classifier\.weight: renamed 1 tensor of A\n/);
  assert.match(r.stdout, /--map layer3\.=stage3\.: renamed nothing/);
  assert.match(r.stdout, /changed\s+fc\.bias → classifier\.bias\s+F32 \[10\]\s+F32 \[10\]\s+0\.5000/);
  const bad = run(['diff', tiny, renamed, '--map', 'layer1.=stage1']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^error: The renaming rule "layer1\.=stage1" maps the prefix/);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.equal(run(['diff', tiny, renamed, '--map']).status, 1);
});

void test('diff with an artifact as one side compares its reconstruction and says so', () => {
  const artifact = join(dir, 'resnet20.int8.safetensors');
  const model = join(FIX, 'models', 'resnet20_fmnist.pt');
  assert.equal(run(['compress', model, '--method', 'int8', '--out', artifact]).status, 0);
  const r = run(['diff', artifact, model]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /^A .*resnet20\.int8\.safetensors \(int8 artifact, compared as its reconstruction of resnet20_fmnist\.pt: 116 tensors, 18 decoded\)\n/,
  );
  assert.match(r.stdout, /different: 79 same, 18 changed/);
  const json = JSON.parse(run(['diff', model, artifact, '--json']).stdout) as DiffReportDto;
  assert.deepEqual(json.b.artifact, { method: 'int8', sourceName: 'resnet20_fmnist.pt', represented: 18 });
  assert.equal(json.a.artifact, undefined);
});

void test('exit codes: 2 for a bad input or an output that is the input, leaving nothing; 1 for usage errors', () => {
  const input = join(FIX, 'safetensors', 'tiny_cnn.safetensors');
  const same = run(['convert', input, input]);
  assert.equal(same.status, 2);
  assert.match(same.stderr, /^error: .*is the input itself/);
  const bad = run(['convert', join(root, 'README.md'), join(dir, 'readme.safetensors')]);
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.equal(existsSync(join(dir, 'readme.safetensors')), false);
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.endsWith('.tmp')),
    [],
  );
  assert.equal(run(['convert', input]).status, 1);
  assert.equal(run(['diff', input, input, '--match', 'size']).status, 1);
  const missing = run(['diff', input, join(dir, 'nope.pt')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /^error: /);
});

void test('convert --help and diff --help print their usage', () => {
  const convert = run(['convert', '--help']);
  assert.equal(convert.status, 0);
  assert.match(convert.stdout, /weight-lens convert IN OUT\.safetensors\|OUT\.npz \[--json\] \[--skip-undecoded\]/);
  const diff = run(['diff', 'a', 'b', '-h']);
  assert.equal(diff.status, 0);
  assert.match(
    diff.stdout,
    /weight-lens diff A B \[--json\] \[--match name\|shape\] \[--map FROM=TO\]\.\.\. \[--all\]/,
  );
  assert.doesNotMatch(diff.stdout, /weight-lens convert /);
});
