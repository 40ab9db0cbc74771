// The method sweep on the project's ResNet-20 (torch.save state dict, scored with its ONNX export on 64 real
// Fashion-MNIST test images): every run leaves an artifact that evaluates to the row's score, the table is sorted by
// bytes with a correct Pareto front, and bad requests are refused before any work.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_COMPRESS_OPTIONS, ensureBackend } from '../../src/core/jobs/compress';
import { evaluateModel } from '../../src/core/jobs/evaluate';
import { checkSweepRequest, markPareto, plannedRuns, sweepMethods } from '../../src/core/jobs/sweep';
import { BadInputError } from '../../src/core/io/errors';
import type { SweepRequestDto } from '../../src/protocol/sweep';
import { FIXTURES } from '../helpers/fixtures';

const MODEL = join(FIXTURES, 'models', 'resnet20_fmnist.onnx');
const STATE_DICT = join(FIXTURES, 'models', 'resnet20_fmnist.pt');
const IMAGES = join(FIXTURES, 'data', 'idx', 't10k-images-idx3-ubyte.gz');
let dir = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wl-sweep-'));
  await ensureBackend('wasm');
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function request(overrides: Partial<SweepRequestDto> = {}): SweepRequestDto {
  return {
    checkpoint: STATE_DICT,
    model: MODEL,
    data: IMAGES,
    methods: ['nern'],
    sizes: [0.1, 0.3],
    compress: { ...DEFAULT_COMPRESS_OPTIONS, steps: 40, backend: 'wasm' },
    distillSteps: 0,
    limit: 32,
    outDir: dir,
    ...overrides,
  };
}

void test('plannedRuns: each sized method at each size, fixed-size methods once', () => {
  assert.deepEqual(plannedRuns(['int8', 'nern', 'int4'], [0.1, 0.2]), [
    { method: 'int8' },
    { method: 'nern', size: 0.1 },
    { method: 'nern', size: 0.2 },
    { method: 'int4' },
  ]);
});

void test('markPareto keeps exactly the rows no other row beats on both size and score', () => {
  const rows = [
    { id: 'a', bytes: 100, score: 0.9, pareto: false },
    { id: 'b', bytes: 50, score: 0.8, pareto: false },
    { id: 'c', bytes: 60, score: 0.7, pareto: false }, // bigger and worse than b
    { id: 'd', bytes: 100, score: 0.85, pareto: false }, // as big as a, worse
    { id: 'e', bytes: 200, score: 0.95, pareto: false },
  ];
  const sorted = markPareto(rows);
  assert.deepEqual(
    sorted.map((r) => r.id),
    ['b', 'c', 'a', 'd', 'e'],
  );
  assert.deepEqual(
    sorted.filter((r) => r.pareto).map((r) => r.id),
    ['b', 'a', 'e'],
  );
});

void test('bad sweep requests are refused naming the option', () => {
  const refuses = (r: SweepRequestDto, option: string): void => {
    assert.throws(
      () => {
        checkSweepRequest(r);
      },
      (e: unknown) => e instanceof BadInputError && e.option === option,
    );
  };
  refuses(request({ methods: [] }), 'methods');
  refuses(request({ sizes: [1.5] }), 'sizes');
  refuses(request({ distillSteps: 10 }), 'distillData');
  refuses(request({ distillSteps: 10, distillData: IMAGES }), 'distillData');
});

void test('a NeRN sweep writes one artifact per size, each scoring what the table says', async () => {
  const seen: string[] = [];
  const report = await sweepMethods(request(), {
    onRow: (row) => seen.push(row.artifact),
  });
  assert.equal(report.metric, 'accuracy');
  assert.equal(report.samples, 32);
  assert.equal(report.rows.length, 2);
  assert.deepEqual(report.failures, []);
  assert.ok(report.original !== undefined && report.original > 0.5);
  const [small, large] = report.rows;
  assert.ok(small && large && small.bytes < large.bytes, 'sorted by bytes');
  assert.equal(small.size, 0.1);
  for (const row of report.rows) {
    assert.ok(existsSync(row.artifact));
    assert.equal(row.bytes, statSync(row.artifact).size);
    assert.ok(Math.abs(row.fractionOfSource - row.bytes / statSync(STATE_DICT).size) < 1e-12);
    // The row's score is what evaluating its artifact gives.
    const again = await evaluateModel(MODEL, IMAGES, { weights: row.artifact, limit: 32, backend: 'wasm' });
    assert.equal(row.score, again.candidate.accuracy);
    assert.equal(row.change, (again.candidate.accuracy ?? 0) - report.original);
  }
  assert.deepEqual(seen.sort(), report.rows.map((r) => r.artifact).sort());
});
