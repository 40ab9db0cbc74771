// Weight comparison in the built engine worker (dist/worker.js in a real worker_threads Worker): `diff/start` on the
// tiny ResNet (safetensors written with NumPy) against its perturbed torch.save copy streams progress and answers
// the report whose statuses test/fixtures/make/diff.py wrote; `diff/histogram` answers np.histogram's bins of a
// changed pair; a bad pair fails as bad input; cancel stops a comparison of the ResNet-20's torch.save and ONNX
// files as `cancelled`, and the worker serves the next request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { answerOf, exchange } from '../helpers/engineWire';
import type { TensorDiffStatus } from '../../src/protocol/diff';

const root = join(__dirname, '..', '..');
const workerPath = join(root, 'dist', 'worker.js');
const FIXTURES = join(root, 'test', 'fixtures');
const TINY_ST = join(FIXTURES, 'diff', 'resnet_tiny.safetensors');
const PERTURBED = join(FIXTURES, 'diff', 'resnet_tiny_perturbed.pt');
const RESNET_PT = join(FIXTURES, 'models', 'resnet20_fmnist.pt');
const TINY_PT = join(FIXTURES, 'pytorch', 'resnet_tiny.pt');
const RENAMED = join(FIXTURES, 'diff', 'resnet_tiny_renamed.pt');
const RESNET_ONNX = join(FIXTURES, 'models', 'resnet20_fmnist.onnx');

const reference = JSON.parse(readFileSync(join(FIXTURES, 'diff', 'reference.json'), 'utf8')) as {
  name: {
    rows: { a?: string; status: TensorDiffStatus; delta?: { relative: number } }[];
    counts: Partial<Record<TensorDiffStatus, number>>;
  };
  map: { rules: string[]; rows: { status: TensorDiffStatus }[]; unmapped: { same: number; removed: number } };
};
const histograms = JSON.parse(readFileSync(join(FIXTURES, 'diff', 'histogram_reference.json'), 'utf8')) as {
  a: string;
  b: string;
  bins: number;
  counts: number[];
  edges: number[];
}[];

void test('diff/start streams progress and answers the report; diff/histogram answers the Δ bins', async () => {
  const worker = new Worker(workerPath);
  try {
    const x = await exchange(worker, 'diff/start', 1, { a: TINY_ST, b: PERTURBED, options: {} });
    const progress = x.events.map((e) => e.progress);
    const first = progress[0];
    assert.ok(first !== undefined, 'at least one diff/progress event');
    assert.equal(first.done, 0);
    assert.equal(first.name, 'conv1.weight');
    const report = answerOf(x);
    assert.equal(first.total, report.tensors.filter((t) => t.a !== undefined && t.b !== undefined).length);
    for (const [status, n] of Object.entries(report.summary.counts))
      assert.equal(n, reference.name.counts[status as TensorDiffStatus] ?? 0, status);
    // Worst first: the value rows start with NumPy's largest ‖Δ‖/‖A‖.
    const valued = (s: TensorDiffStatus): boolean => s === 'changed' || s === 'dtype-changed';
    const worst = reference.name.rows
      .filter((row) => valued(row.status))
      .reduce((m, row) => ((row.delta?.relative ?? 0) > (m.delta?.relative ?? 0) ? row : m));
    assert.equal(report.tensors.find((t) => valued(t.status))?.a?.name, worst.a);

    const r = histograms.find((h) => h.a === 'layer1.0.conv2.weight' && h.bins === 64);
    assert.ok(r !== undefined);
    const h = await exchange(worker, 'diff/histogram', 2, {
      a: TINY_ST,
      b: PERTURBED,
      tensorA: r.a,
      tensorB: r.b,
      bins: r.bins,
    });
    const answer = answerOf(h);
    assert.deepEqual(answer.histogram.counts, r.counts);
    assert.equal(answer.histogram.edges.length, r.edges.length);

    const bad = await exchange(worker, 'diff/histogram', 3, {
      a: TINY_ST,
      b: PERTURBED,
      tensorA: 'layer2.0.downsample.0.weight',
      tensorB: 'module.layer2.0.downsample.0.weight',
      bins: 16,
    });
    assert.ok(bad.end.kind === 'failed' && bad.end.reason === 'badInput', JSON.stringify(bad.end));
    assert.match(bad.end.message, /needs equal shapes/);
  } finally {
    await worker.terminate();
  }
});

void test('cancel stops a comparison as cancelled, and the worker serves the next request', async () => {
  const worker = new Worker(workerPath);
  try {
    let cancelled = false;
    const x = await exchange(worker, 'diff/start', 4, { a: RESNET_PT, b: RESNET_ONNX, options: {} }, () => {
      if (!cancelled) {
        cancelled = true;
        worker.postMessage({ kind: 'cancel', id: 4 });
      }
    });
    assert.ok(cancelled);
    assert.ok(x.end.kind === 'failed' && x.end.reason === 'cancelled', JSON.stringify(x.end));
    const again = await exchange(worker, 'diff/start', 5, { a: RESNET_PT, b: RESNET_ONNX, options: {} });
    const report = answerOf(again);
    assert.equal(report.summary.identical, true);
    assert.ok(report.summary.counts.same > 0);
  } finally {
    await worker.terminate();
  }
});

void test('diff/start passes renaming rules (map) to the comparison', async () => {
  const worker = new Worker(workerPath);
  try {
    const want = reference.map;
    const unmapped = answerOf(await exchange(worker, 'diff/start', 6, { a: TINY_PT, b: RENAMED, options: {} }));
    assert.equal(unmapped.summary.counts.same, want.unmapped.same);
    assert.equal(unmapped.summary.counts.removed, want.unmapped.removed);
    const mapped = answerOf(
      await exchange(worker, 'diff/start', 7, { a: TINY_PT, b: RENAMED, options: { map: want.rules } }),
    );
    for (const status of ['same', 'changed', 'removed', 'added'] as const)
      assert.equal(mapped.summary.counts[status], want.rows.filter((r) => r.status === status).length, status);
  } finally {
    await worker.terminate();
  }
});
