// `weight-lens compress --method …` as separate processes on the project's real ResNet-20 (PyTorch torch.save): an
// int4 baseline artifact, decompressed back into the full checkpoint (names, dtypes, shapes; verbatim tensors
// identical), and a usage error for an unknown method.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const cli = join(root, 'dist', 'cli.js');
const RESNET = join(root, 'test', 'fixtures', 'models', 'resnet20_fmnist.pt');
const dir = mkdtempSync(join(tmpdir(), 'wl-cli-baselines-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Inspected {
  tensors: { name: string; dtype: string; shape: number[]; stats?: { mean: number; l2: number } }[];
}

void test('compress --method int4 writes a baseline artifact that decompress turns back into the checkpoint', () => {
  const out = join(dir, 'r.int4.safetensors');
  const r = run(['compress', RESNET, '--method', 'int4', '--out', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as {
    artifactBytes: number;
    representedParams: number;
    relativeError: number;
    layers: { name: string; relativeError: number }[];
  };
  assert.equal(report.artifactBytes, statSync(out).size);
  // int4 codes: half a byte per represented weight plus one scale per output channel, beside the verbatim tensors.
  assert.ok(report.artifactBytes < statSync(RESNET).size / 4, `${report.artifactBytes} bytes`);
  assert.ok(report.relativeError > 0.01 && report.relativeError < 0.2, `relative error ${report.relativeError}`);
  assert.equal(report.layers.length, 18);

  const decoded = join(dir, 'r.safetensors');
  const d = run(['decompress', out, '--out', decoded, '--json']);
  assert.equal(d.status, 0, d.stderr);
  const a = JSON.parse(run(['inspect', RESNET, '--json']).stdout) as Inspected;
  const b = JSON.parse(run(['inspect', decoded, '--json']).stdout) as Inspected;
  assert.deepEqual(
    b.tensors.map((t) => [t.name, t.dtype, t.shape]),
    a.tensors.map((t) => [t.name, t.dtype, t.shape]),
  );
  const represented = new Set(report.layers.map((l) => l.name));
  for (const [i, t] of a.tensors.entries()) {
    if (!represented.has(t.name)) assert.deepEqual(b.tensors[i]?.stats, t.stats, `${t.name} verbatim`);
    else assert.notDeepEqual(b.tensors[i]?.stats, t.stats, `${t.name} quantised`);
  }
});

void test('compress --method with an unknown name is a usage error', () => {
  const r = run(['compress', RESNET, '--method', 'int3', '--out', join(dir, 'x.safetensors')]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /--method must be one of nern, int8, int4, lowrank, prune/);
});
