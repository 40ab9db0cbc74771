// The Compare panel's shaping on a real report: the tiny ResNet (safetensors written with NumPy) against its
// perturbed torch.save copy (test/fixtures/make/diff.py), compared by the core diff job; the per-layer bars, the
// summary line and the table rows are checked against the statuses and NumPy figures in reference.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from '../../../helpers/fixtures';
import { diffFiles } from '../../../../src/core/jobs/diff';
import type { TensorDiffStatus } from '../../../../src/protocol/diff';
import { compareRow, layerChanges, layerChangeTrace, layerOf, summaryLine } from '../../../../webview/lib/compareModel';

const TINY_ST = join(FIXTURES, 'diff', 'resnet_tiny.safetensors');
const PERTURBED = join(FIXTURES, 'diff', 'resnet_tiny_perturbed.pt');
const reference = JSON.parse(readFileSync(join(FIXTURES, 'diff', 'reference.json'), 'utf8')) as {
  name: {
    rows: { a?: string; status: TensorDiffStatus; delta?: { relative: number } }[];
    counts: Partial<Record<TensorDiffStatus, number>>;
  };
};

void test('layerOf drops the last segment only', () => {
  assert.equal(layerOf('layer1.0.conv1.weight'), 'layer1.0.conv1');
  assert.equal(layerOf('bias'), 'bias');
  assert.equal(layerOf('.hidden'), '.hidden');
});

void test('layer bars, summary line and rows of a real comparison', async () => {
  const report = await diffFiles(TINY_ST, PERTURBED);
  const { layers, unbounded } = layerChanges(report);
  assert.equal(unbounded.length, 0);
  // One bar per layer with a tensor whose values moved, each its tensors' largest NumPy ‖Δ‖/‖A‖, worst first.
  const expected = new Map<string, { relative: number; tensor: string }>();
  for (const row of reference.name.rows) {
    const relative = row.delta?.relative ?? 0;
    if (row.a === undefined || !(relative > 0)) continue;
    const layer = layerOf(row.a);
    const known = expected.get(layer);
    if (known === undefined || relative > known.relative) expected.set(layer, { relative, tensor: row.a });
  }
  assert.deepEqual(
    layers.map((l) => l.layer),
    [...expected.entries()].sort((x, y) => y[1].relative - x[1].relative).map(([k]) => k),
  );
  for (const l of layers) {
    const e = expected.get(l.layer);
    assert.ok(e !== undefined);
    assert.equal(l.worst.a?.name, e.tensor);
    assert.ok(Math.abs(l.relative - e.relative) <= 1e-9 * e.relative, `${l.layer}: ${l.relative} vs ${e.relative}`);
  }
  const trace = layerChangeTrace(layers, '#123456');
  assert.equal(trace.x[0], (layers[0]?.relative ?? 0) * 100);
  assert.deepEqual(
    trace.customdata,
    layers.map((l) => l.layer),
  );

  const line = summaryLine(report);
  assert.match(line, /^Different: /);
  for (const [status, n] of Object.entries(reference.name.counts)) assert.ok(line.includes(`${n} ${status}`), line);

  const rows = report.tensors.map(compareRow);
  const reshaped = rows.find((r) => r.status === 'reshaped');
  assert.ok(reshaped !== undefined);
  assert.equal(reshaped.maxAbs, '—');
  assert.match(reshaped.shape, /^\[16, 8, 1, 1\] → \[16, 8\]$/);
  assert.equal(reshaped.histogram, undefined);
  const dtype = rows.find((r) => r.status === 'dtype-changed');
  assert.equal(dtype?.dtype, 'F32 → F16');
  assert.ok(dtype.histogram !== undefined);
  assert.ok(rows.filter((r) => r.status === 'same').every((r) => r.histogram === undefined));
  const changed = rows.filter((r) => r.status === 'changed');
  assert.ok(changed.length > 0 && changed.every((r) => r.histogram !== undefined && r.relative.endsWith(' %')));
});
