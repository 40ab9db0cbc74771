// `weight-lens compress` / `decompress` as separate processes on a real PyTorch fixture: the documented JSON, the
// round trip inspect(decompress(compress(x))) ≡ inspect(x) (names, dtypes, shapes; verbatim statistics identical),
// byte reproducibility, an untouched source, and exit 2 for a hostile artifact.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const cli = join(root, 'dist', 'cli.js');
const RESNET = join(root, 'test', 'fixtures', 'pytorch', 'resnet_tiny.pt');
const dir = mkdtempSync(join(tmpdir(), 'wl-cli-compress-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

interface Inspected {
  tensors: {
    name: string;
    dtype: string;
    shape: number[];
    stats?: { mean: number; l2: number; min: number; max: number };
  }[];
}

void test('compress --json prints the documented report; decompress restores the checkpoint', () => {
  const before = sha(RESNET);
  const out = join(dir, 'r.nern.safetensors');
  const r = run([
    'compress',
    RESNET,
    '--hidden',
    '16',
    '--steps',
    '30',
    '--seed',
    '1',
    '--backend',
    'wasm',
    '--out',
    out,
    '--json',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as Record<string, unknown>;
  for (const key of [
    'predictorParams',
    'representedParams',
    'verbatimParams',
    'ratio',
    'artifactBytes',
    'sourceBytes',
    'steps',
    'seconds',
    'backend',
    'rmse',
    'layers',
  ]) {
    assert.ok(key in report, key);
  }
  assert.equal(report.steps, 30);
  assert.equal(report.backend, 'wasm');
  const layers = report.layers as {
    name: string;
    shape: number[];
    params: number;
    rmse: number;
    relativeError: number;
  }[];
  assert.deepEqual(
    layers.map((l) => l.name),
    ['layer2.0.conv1.weight', 'layer2.0.conv2.weight'],
  );
  for (const l of layers) assert.ok(l.rmse > 0 && l.relativeError > 0 && l.params > 0 && l.shape.length === 4);
  assert.equal(sha(RESNET), before, 'source unchanged');

  // Same seed again → byte-identical artifact.
  const again = join(dir, 'r2.nern.safetensors');
  assert.equal(
    run([
      'compress',
      RESNET,
      '--hidden',
      '16',
      '--steps',
      '30',
      '--seed',
      '1',
      '--backend',
      'wasm',
      '--out',
      again,
      '--json',
    ]).status,
    0,
  );
  assert.equal(sha(again), sha(out));

  const decoded = join(dir, 'r.safetensors');
  const d = run(['decompress', out, '--out', decoded, '--json']);
  assert.equal(d.status, 0, d.stderr);
  assert.deepEqual((JSON.parse(d.stdout) as { outputs: string[] }).outputs, [decoded]);

  const a = JSON.parse(run(['inspect', RESNET, '--json']).stdout) as Inspected;
  const b = JSON.parse(run(['inspect', decoded, '--json']).stdout) as Inspected;
  assert.deepEqual(
    b.tensors.map((t) => [t.name, t.dtype, t.shape]),
    a.tensors.map((t) => [t.name, t.dtype, t.shape]),
  );
  const represented = new Set(layers.map((l) => l.name));
  for (const [i, t] of a.tensors.entries()) {
    if (!represented.has(t.name)) assert.deepEqual(b.tensors[i]?.stats, t.stats, `${t.name} verbatim`);
  }
});

void test('compress prints the plan and a per-layer table; bad options are usage errors', () => {
  const r = run([
    'compress',
    RESNET,
    '--size',
    '2',
    '--steps',
    '5',
    '--backend',
    'wasm',
    '--out',
    join(dir, 'h.nern.safetensors'),
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /predictor: width \d+/);
  assert.match(r.stdout, /layer\s+shape\s+params\s+rmse\s+relative error/);
  assert.equal(run(['compress', RESNET, '--hidden', '8', '--size', '0.5']).status, 1);
  assert.equal(run(['compress', RESNET, '--permutation', 'zigzag']).status, 1);
});

void test('a hostile artifact and an impossible budget exit 2 with one error line', () => {
  const bad = join(dir, 'bad.nern.safetensors');
  const header = Buffer.from(
    JSON.stringify({ __metadata__: { weight_lens: '{"format":"weight-lens-nern","version":1}' } }),
  );
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(bad, Buffer.concat([prefix, header]));
  const r = run(['decompress', bad]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^error: .*not a valid Weight Lens artifact/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  const tooSmall = run(['compress', RESNET, '--size-bytes', '100', '--out', join(dir, 'x.nern.safetensors')]);
  assert.equal(tooSmall.status, 2, tooSmall.stderr);
  assert.equal(run(['decompress', RESNET]).status, 2);
});

void test('compress --predictor-dtype int8 stores a smaller artifact that decompresses', () => {
  const sizes: Record<string, number> = {};
  for (const dtype of ['f32', 'int8']) {
    const out = join(dir, `dtype-${dtype}.nern.safetensors`);
    const common = ['--hidden', '16', '--steps', '20', '--seed', '1', '--backend', 'wasm', '--json'];
    const r = run(['compress', RESNET, ...common, '--predictor-dtype', dtype, '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { artifactBytes: number };
    assert.equal(report.artifactBytes, statSync(out).size);
    sizes[dtype] = report.artifactBytes;
    if (dtype === 'int8') {
      const d = run(['decompress', out, '--out', join(dir, 'dtype-int8.pt'), '--json']);
      assert.equal(d.status, 0, d.stderr);
    }
  }
  // 4825 predictor weights and biases: the weights shrink from 4 bytes to 1, plus one float32 scale per output unit.
  assert.ok(sizes.int8! < sizes.f32! - 8000, JSON.stringify(sizes));
});

void test('compress --size-of-file F --predictor-dtype int4 --lean writes a lean artifact within F × the file', () => {
  const out = join(dir, 'lean-int4.nern.safetensors');
  const target = Math.floor(0.75 * statSync(RESNET).size);
  const common = ['--steps', '10', '--backend', 'wasm', '--predictor-dtype', 'int4', '--lean', '--out', out];
  const r = run(['compress', RESNET, '--size-of-file', '0.75', ...common]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /at most: predictor .* \(int4\), permutations .*, metadata /);
  assert.match(r.stdout, /lean artifact: the per-layer report and loss curve above were not stored in it/);
  assert.ok(statSync(out).size <= target, `${statSync(out).size} > ${target}`);
  // The same width as --size-bytes with that many bytes.
  const again = run(['compress', RESNET, '--size-bytes', String(target), ...common, '--json']);
  assert.equal(again.status, 0, again.stderr);
  assert.equal((JSON.parse(again.stdout) as { artifactBytes: number }).artifactBytes, statSync(out).size);
  assert.equal(run(['compress', RESNET, '--size-of-file', '1.5']).status, 1);
  assert.equal(run(['compress', RESNET, '--size-of-file', '0.2', '--size-bytes', '9000']).status, 1);
  assert.equal(run(['compress', RESNET, '--lean', '--method', 'int8']).status, 1);
});
