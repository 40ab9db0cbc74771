// The Δ histogram of one tensor pair on real files: the tiny ResNet as safetensors written with NumPy against its
// perturbed torch.save copy (test/fixtures/make/diff.py), checked against np.histogram of the float64 Δ that script
// wrote to test/fixtures/diff/histogram_reference.json; an identical pair across formats; bad requests and
// cancellation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from '../helpers/fixtures';
import { deltaHistogram } from '../../src/core/jobs/diffHistogram';
import { BadInputError, CancelledError } from '../../src/core/io/errors';

const TINY_PT = join(FIXTURES, 'pytorch', 'resnet_tiny.pt');
const TINY_ST = join(FIXTURES, 'diff', 'resnet_tiny.safetensors');
const PERTURBED = join(FIXTURES, 'diff', 'resnet_tiny_perturbed.pt');
const ARTIFACT = join(FIXTURES, 'artifacts', 'tiny_cnn_v2.nern.safetensors');
const DECODED = join(FIXTURES, 'artifacts', 'tiny_cnn_v2.decoded.safetensors');

interface ReferenceHistogram {
  a: string;
  b: string;
  bins: number;
  min: number;
  max: number;
  count: number;
  edges: number[];
  counts: number[];
}
const reference = JSON.parse(
  readFileSync(join(FIXTURES, 'diff', 'histogram_reference.json'), 'utf8'),
) as ReferenceHistogram[];

void test('the Δ histogram of each pair matches np.histogram of the float64 differences', async () => {
  assert.ok(reference.length >= 8);
  for (const r of reference) {
    const h = await deltaHistogram({ a: TINY_ST, tensorA: r.a, b: PERTURBED, tensorB: r.b, bins: r.bins });
    const what = `${r.a} (${r.bins} bins)`;
    assert.equal(h.a, r.a);
    assert.equal(h.b, r.b);
    assert.equal(h.count, r.count, what);
    assert.equal(h.nonFinite, 0, what);
    assert.equal(h.min, r.min, what);
    assert.equal(h.max, r.max, what);
    assert.deepEqual(h.histogram.counts, r.counts, what);
    assert.equal(h.histogram.edges.length, r.edges.length, what);
    for (const [i, e] of r.edges.entries()) {
      const got = h.histogram.edges[i] as number;
      assert.ok(Math.abs(got - e) <= 1e-12 * Math.max(1, Math.abs(e)), `${what} edge ${i}: ${got} vs ${e}`);
    }
  }
});

void test('one element moved: fc.bias has nine zero differences and one of 0.25 in the last bin', async () => {
  const h = await deltaHistogram({ a: TINY_ST, tensorA: 'fc.bias', b: PERTURBED, tensorB: 'module.fc.bias', bins: 4 });
  assert.equal(h.min, 0);
  assert.ok(h.max !== null && Math.abs(h.max - 0.25) < 1e-6, String(h.max));
  assert.deepEqual(h.histogram.counts, [9, 0, 0, 1]);
});

void test('an identical pair across formats (torch.save vs safetensors) has every Δ at 0', async () => {
  const h = await deltaHistogram({
    a: TINY_PT,
    tensorA: 'layer1.0.conv1.weight',
    b: TINY_ST,
    tensorB: 'layer1.0.conv1.weight',
    bins: 5,
  });
  assert.equal(h.min, 0);
  assert.equal(h.max, 0);
  // NumPy's range for a constant: (−0.5, 0.5); every value in the middle bin.
  assert.equal(h.histogram.edges[0], -0.5);
  assert.equal(h.histogram.edges[5], 0.5);
  assert.deepEqual(h.histogram.counts, [0, 0, h.count, 0, 0]);
});

void test('a compression artifact as one side is its reconstruction: Δ against its decompressed output is 0', async () => {
  // tiny_cnn_v2.decoded.safetensors is what `decompress` wrote from the artifact; 0.weight is a represented layer.
  const h = await deltaHistogram({ a: ARTIFACT, tensorA: '0.weight', b: DECODED, tensorB: '0.weight', bins: 8 });
  assert.deepEqual([h.count, h.nonFinite, h.min, h.max], [216, 0, 0, 0]);
  assert.equal(
    h.histogram.counts.reduce((n, c) => n + c, 0),
    216,
  );
  // Against the other direction's sign, the same: every position is exactly equal.
  const back = await deltaHistogram({ a: DECODED, tensorA: '0.weight', b: ARTIFACT, tensorB: '0.weight', bins: 8 });
  assert.deepEqual([back.min, back.max], [0, 0]);
});

void test('bad requests fail with one clear sentence', async () => {
  await assert.rejects(
    deltaHistogram({ a: TINY_ST, tensorA: 'nope.weight', b: PERTURBED, tensorB: 'module.conv1.weight', bins: 8 }),
    (e: unknown) => e instanceof BadInputError && /has no tensor "nope\.weight"/.test(e.message),
  );
  await assert.rejects(
    deltaHistogram({
      a: TINY_ST,
      tensorA: 'layer2.0.downsample.0.weight',
      b: PERTURBED,
      tensorB: 'module.layer2.0.downsample.0.weight',
      bins: 8,
    }),
    (e: unknown) => e instanceof BadInputError && /needs equal shapes/.test(e.message),
  );
  for (const bins of [0, 1025, 2.5]) {
    await assert.rejects(
      deltaHistogram({ a: TINY_ST, tensorA: 'conv1.weight', b: PERTURBED, tensorB: 'module.conv1.weight', bins }),
      (e: unknown) => e instanceof BadInputError && e.option === 'bins',
    );
  }
});

void test('an aborted signal cancels the histogram', async () => {
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(
    deltaHistogram(
      { a: TINY_ST, tensorA: 'conv1.weight', b: PERTURBED, tensorB: 'module.conv1.weight', bins: 8 },
      controller.signal,
    ),
    (e: unknown) => e instanceof CancelledError,
  );
});
