// The diff job on real files: the project's ResNet-20 saved by torch.save and exported to ONNX by torch.onnx, the
// tiny ResNet as torch.save and as safetensors written with NumPy (test/fixtures/make/diff.py), and a perturbed
// torch.save copy under DataParallel names whose expected statuses and NumPy float64 statistics that script wrote
// to test/fixtures/diff/reference.json; a renamed copy for --map; int8 and NeRN artifacts as one side, against
// decompress; cancellation between tensors and inside one; and the shape-order fallback for a renamed layer.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { FIXTURES } from '../helpers/fixtures';
import { diffFiles, mapTensorName, normaliseTensorName, parseNameMap } from '../../src/core/jobs/diff';
import { convertFile } from '../../src/core/jobs/convert';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS } from '../../src/core/jobs/compress';
import { decompressArtifact } from '../../src/core/jobs/decompress';
import { compressBaseline } from '../../src/core/baselines/compressBaseline';
import { openCompressedArtifact } from '../../src/core/baselines/compressedArtifact';
import { openCheckpoint } from '../../src/core/formats/registry';
import { writeSafetensors } from '../../src/core/formats/safetensors';
import { BadInputError, CancelledError } from '../../src/core/io/errors';
import type { DiffMatch, DiffReportDto, TensorDiffStatus } from '../../src/protocol/diff';

const TINY = join(FIXTURES, 'pytorch', 'resnet_tiny.pt');
const TINY_ST = join(FIXTURES, 'diff', 'resnet_tiny.safetensors');
const PERTURBED = join(FIXTURES, 'diff', 'resnet_tiny_perturbed.pt');
const RENAMED = join(FIXTURES, 'diff', 'resnet_tiny_renamed.pt');
const RESNET_PT = join(FIXTURES, 'models', 'resnet20_fmnist.pt');
const RESNET_ONNX = join(FIXTURES, 'models', 'resnet20_fmnist.onnx');

interface ReferenceRow {
  a?: string;
  b?: string;
  status: TensorDiffStatus;
  delta?: { count: number; maxAbs: number; rms: number; relative: number; cosine: number };
}
interface Reference {
  rows: ReferenceRow[];
  counts: Partial<Record<TensorDiffStatus, number>>;
  compared: number;
  maxAbs: number;
  relative: number;
  cosine: number;
  integerTensors: { a: number; b: number };
}
interface MapReference {
  rules: string[];
  renamed: number[];
  rows: (ReferenceRow & { a: string; b: string })[];
  unmapped: { same: number; removed: number };
}
const reference = JSON.parse(readFileSync(join(FIXTURES, 'diff', 'reference.json'), 'utf8')) as Record<
  DiffMatch,
  Reference
> & { map: MapReference };
const dir = mkdtempSync(join(tmpdir(), 'wl-diff-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function close(actual: number | null | undefined, expected: number, what: string): void {
  assert.ok(typeof actual === 'number', what);
  assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

function assertIdentical(report: DiffReportDto, pairs: number): void {
  assert.equal(report.summary.identical, true, JSON.stringify(report.tensors.find((t) => t.status !== 'same')));
  assert.equal(report.summary.counts.same, pairs);
  assert.equal(report.summary.maxAbs, 0);
  assert.equal(report.summary.relative, 0);
  for (const row of report.tensors) {
    assert.equal(row.status, 'same');
    assert.equal(row.delta?.maxAbs, 0);
  }
}

void test('names are normalised by dropping module., model. and _orig_mod. prefixes', () => {
  assert.equal(normaliseTensorName('module._orig_mod.model.layer.weight'), 'layer.weight');
  assert.equal(normaliseTensorName('encoder.model.x'), 'encoder.model.x');
  assert.equal(normaliseTensorName('model.'), 'model.');
});

void test('one model as torch.save, ONNX and safetensors gives zero differences', async () => {
  const ptOnnx = await diffFiles(RESNET_PT, RESNET_ONNX);
  assertIdentical(ptOnnx, 97);
  assert.equal(ptOnnx.summary.compared, 270_810);
  // The integer bookkeeping each format keeps its own way: BatchNorm step counters, ONNX shape constants.
  assert.deepEqual(ptOnnx.integerTensorsLeftOut, { a: 19, b: 36 });
  const all = await diffFiles(RESNET_PT, RESNET_ONNX, { includeIntegers: true });
  assert.equal(all.summary.counts.removed, 19);
  assert.equal(all.summary.counts.added, 36);
  assert.ok(all.tensors.filter((t) => t.status === 'removed').every((t) => t.a?.name.endsWith('num_batches_tracked')));

  const ptSt = await diffFiles(TINY, TINY_ST, { includeIntegers: true });
  assertIdentical(ptSt, 38);
  const onnxAsSt = join(dir, 'resnet20.safetensors');
  await convertFile(RESNET_ONNX, onnxAsSt);
  assertIdentical(await diffFiles(RESNET_PT, onnxAsSt), 97);
  assertIdentical(await diffFiles(RESNET_ONNX, onnxAsSt, { includeIntegers: true }), 133);
});

for (const match of ['name', 'shape'] as const) {
  void test(`a perturbed copy under DataParallel names (--match ${match}) gives NumPy's statuses and statistics`, async () => {
    const want = reference[match];
    const report = await diffFiles(TINY, PERTURBED, { match });
    for (const status of Object.keys(report.summary.counts) as TensorDiffStatus[])
      assert.equal(report.summary.counts[status], want.counts[status] ?? 0, status);
    assert.deepEqual(report.integerTensorsLeftOut, want.integerTensors);
    assert.equal(report.tensors.length, want.rows.length);
    for (const w of want.rows) {
      const row = report.tensors.find((r) => r.a?.name === w.a && r.b?.name === w.b);
      assert.ok(row, `row ${w.a} / ${w.b}`);
      assert.equal(row.status, w.status, `${w.a} / ${w.b}`);
      if (w.delta) {
        const delta = row.delta;
        assert.ok(delta, `${w.a} has no delta`);
        assert.equal(delta.count, w.delta.count);
        close(delta.maxAbs, w.delta.maxAbs, `${w.a} maxAbs`);
        close(delta.rms, w.delta.rms, `${w.a} rms`);
        close(delta.relative, w.delta.relative, `${w.a} relative`);
        close(delta.cosine, w.delta.cosine, `${w.a} cosine`);
      }
    }
    assert.equal(report.summary.compared, want.compared);
    close(report.summary.maxAbs, want.maxAbs, 'summary maxAbs');
    close(report.summary.relative, want.relative, 'summary relative');
    close(report.summary.cosine, want.cosine, 'summary cosine');
    // Worst first: structural rows, then value changes by relative change, then the same tensors.
    const rank = (s: TensorDiffStatus): number =>
      ({ reshaped: 0, removed: 1, added: 2, 'dtype-changed': 3, changed: 3, same: 4 })[s];
    for (let i = 1; i < report.tensors.length; i++) {
      const [p, q] = [report.tensors[i - 1]!, report.tensors[i]!];
      assert.ok(rank(p.status) <= rank(q.status));
      if (rank(p.status) === 3 && rank(q.status) === 3) assert.ok(p.delta!.relative! >= q.delta!.relative!);
    }
    if (match === 'shape') {
      const renamed = report.tensors.find((r) => r.a?.name === 'fc.weight');
      assert.ok(renamed);
      assert.equal(renamed.b?.name, 'module.head.weight');
      assert.equal(renamed.matchedBy, 'shape');
      assert.equal(renamed.status, 'same');
    }
  });
}

void test('a comparison can be cancelled between tensors', async () => {
  const controller = new AbortController();
  await assert.rejects(
    diffFiles(
      RESNET_PT,
      RESNET_ONNX,
      {},
      {
        signal: controller.signal,
        onPair: (i) => {
          if (i === 3) controller.abort();
        },
      },
    ),
    CancelledError,
  );
});

void test('--map rules: exact names win over prefixes, longer prefixes over shorter, wrapper prefixes are seen through', () => {
  const rules = parseNameMap(['features.=backbone.', 'features.0.=stem.', 'fc.weight=head.weight', 'aux.=']);
  assert.deepEqual(mapTensorName(rules, 'features.3.weight'), { name: 'backbone.3.weight', rule: rules[0] });
  assert.equal(mapTensorName(rules, 'features.0.weight').name, 'stem.weight');
  assert.equal(mapTensorName(rules, 'module.features.3.bias').name, 'backbone.3.bias');
  assert.equal(mapTensorName(rules, 'fc.weight').name, 'head.weight');
  assert.equal(mapTensorName(rules, 'fc.weight.x').rule, undefined);
  assert.equal(mapTensorName(rules, 'aux.conv.weight').name, 'conv.weight');
  assert.equal(mapTensorName(rules, 'features.').rule, undefined);
  for (const bad of [['features.'], ['=x'], ['fc.weight='], ['features.=backbone'], ['a=b', 'a=c']]) {
    assert.throws(
      () => parseNameMap(bad),
      (e: unknown) =>
        e instanceof BadInputError && e.option === 'map' && /\.$/.test(e.message) && !e.message.includes('\n'),
      bad.join(' '),
    );
  }
});

void test("--map pairs a renamed torch.save copy with the original, with NumPy's statistics", async () => {
  const want = reference.map;
  const unmapped = await diffFiles(TINY, RENAMED);
  assert.equal(unmapped.summary.counts.same, want.unmapped.same);
  assert.equal(unmapped.summary.counts.removed, want.unmapped.removed);
  assert.equal(unmapped.summary.counts.added, want.unmapped.removed);
  const report = await diffFiles(TINY, RENAMED, { map: want.rules });
  assert.deepEqual(
    report.map,
    want.rules.map((rule, i) => ({ rule, renamed: want.renamed[i] })),
  );
  assert.equal(report.summary.counts.removed + report.summary.counts.added, 0);
  assert.equal(report.tensors.length, want.rows.length);
  for (const w of want.rows) {
    const row = report.tensors.find((r) => r.a?.name === w.a);
    assert.ok(row, w.a);
    assert.equal(row.b?.name, w.b);
    assert.equal(row.status, w.status, w.a);
    assert.equal(row.matchedBy, 'name');
    const rule = want.rules.find((r) => w.a === r.split('=')[0] || w.a.startsWith(r.split('=')[0] ?? ''));
    assert.equal(row.mappedBy, w.a === w.b ? undefined : rule, w.a);
    assert.ok(row.delta && w.delta);
    assert.equal(row.delta.count, w.delta.count);
    close(row.delta.maxAbs, w.delta.maxAbs, `${w.a} maxAbs`);
    close(row.delta.rms, w.delta.rms, `${w.a} rms`);
    close(row.delta.relative, w.delta.relative, `${w.a} relative`);
    close(row.delta.cosine, w.delta.cosine, `${w.a} cosine`);
  }
  assert.equal(report.tensors[0]?.a?.name, 'fc.bias');
  assert.equal(report.summary.counts.changed, 1);
  const typo = await diffFiles(TINY, RENAMED, { map: ['layer3.=stage3.'] });
  assert.deepEqual(typo.map, [{ rule: 'layer3.=stage3.', renamed: 0 }]);
  await assert.rejects(diffFiles(TINY, RENAMED, { map: ['layer1'] }), BadInputError);
});

/** The rows of `report` by A's name. */
function rowsByName(report: DiffReportDto): Map<string, DiffReportDto['tensors'][number]> {
  return new Map(report.tensors.map((r) => [r.a?.name ?? '', r]));
}

/** Asserts that `artifact` diffed against `original` gives the rows that its decompressed checkpoint gives. */
async function assertDiffAsDecompressed(artifact: string, original: string, tolerance: number): Promise<DiffReportDto> {
  const direct = await diffFiles(artifact, original);
  const decompressed = join(dir, `${basename(artifact)}.decompressed.safetensors`);
  await decompressArtifact(artifact, decompressed, { backend: 'wasm' });
  const viaFile = await diffFiles(decompressed, original);
  assert.equal(viaFile.a.artifact, undefined);
  assert.deepEqual(direct.summary.counts, viaFile.summary.counts);
  const want = rowsByName(viaFile);
  for (const [name, row] of rowsByName(direct)) {
    const w = want.get(name);
    assert.ok(w && row.delta && w.delta, name);
    assert.equal(row.status, w.status, name);
    for (const key of ['maxAbs', 'rms', 'relative', 'cosine'] as const) {
      const [x, y] = [row.delta[key] ?? NaN, w.delta[key] ?? NaN];
      assert.ok(Math.abs(x - y) <= tolerance * Math.max(Math.abs(y), 1e-30), `${name} ${key}: ${x} vs ${y}`);
    }
  }
  return direct;
}

void test('an int8 artifact as one side is its reconstruction: as decompress gives it, within scale/2', async () => {
  const artifact = join(dir, 'resnet20.int8.safetensors');
  await compressBaseline(RESNET_PT, 'int8', { ...DEFAULT_COMPRESS_OPTIONS, out: artifact });
  // Decoding in memory and decoding to a file give the same float32 values, so the figures agree exactly.
  const report = await assertDiffAsDecompressed(artifact, RESNET_PT, 0);
  const meta = await openCompressedArtifact(artifact);
  const represented = meta.tensors.filter((t) => t.stored === 'represented').map((t) => t.name);
  await meta.close();
  assert.deepEqual(report.a.artifact, {
    method: 'int8',
    sourceName: 'resnet20_fmnist.pt',
    represented: represented.length,
  });
  assert.ok(represented.length >= 18, String(represented.length));
  assert.equal(report.b.artifact, undefined);
  assert.equal(report.summary.counts.same + report.summary.counts.changed, 97);
  // The per-output-channel scales the artifact stores, read as plain safetensors tensors.
  const stored = await openCheckpoint(artifact);
  try {
    const rows = rowsByName(report);
    for (const name of represented) {
      const scales = stored.tensors.find((t) => t.name === `baseline.${name}.scales`);
      assert.ok(scales, name);
      let largest = 0;
      for await (const chunk of scales.values()) for (const s of chunk) largest = Math.max(largest, s);
      const row = rows.get(name);
      assert.equal(row?.status, 'changed', name);
      assert.ok(row.delta !== undefined && row.delta.maxAbs > 0, name);
      assert.ok(row.delta.maxAbs <= (largest / 2) * (1 + 1e-6), `${name}: ${row.delta.maxAbs} > ${largest / 2}`);
      assert.ok((row.delta.cosine ?? 0) > 0.999, name);
    }
    for (const row of report.tensors)
      if (!represented.includes(row.a?.name ?? '')) assert.equal(row.status, 'same', row.a?.name);
  } finally {
    await stored.close();
  }
  // Either side may be the artifact.
  const reversed = await diffFiles(RESNET_PT, artifact);
  assert.equal(reversed.b.artifact?.method, 'int8');
  assert.equal(reversed.summary.maxAbs, report.summary.maxAbs);
});

void test('a NeRN artifact as one side is its predictor run layer by layer: as decompress gives it', async () => {
  const source = join(dir, 'resnet20_fmnist.pt');
  copyFileSync(RESNET_PT, source);
  const artifact = join(dir, 'resnet20.nern.safetensors');
  await compressCheckpoint(source, {
    ...DEFAULT_COMPRESS_OPTIONS,
    budget: { kind: 'hidden', hidden: 8 },
    steps: 20,
    permutation: 'none',
    seed: 0,
    backend: 'wasm',
    rounds: 1,
    out: artifact,
  });
  // One layer's prediction against all layers' at once: equal up to float32 rounding.
  const report = await assertDiffAsDecompressed(artifact, source, 1e-5);
  const side = report.a.artifact;
  assert.ok(side);
  assert.equal(side.method, 'nern');
  assert.equal(side.sourceName, 'resnet20_fmnist.pt');
  assert.ok(side.represented > 0);
  assert.ok(report.summary.counts.changed >= side.represented);
});

void test('a comparison can be cancelled inside a big tensor, between chunks, and reports its progress', async () => {
  // 4 Mi float32 values on each side (16 MB): four 1 Mi-element chunks.
  const n = 4 * 1024 * 1024;
  const values = new Float32Array(n).map((_, i) => Math.sin(i));
  const [pa, pb] = [join(dir, 'big-a.safetensors'), join(dir, 'big-b.safetensors')];
  await writeSafetensors(pa, [{ name: 'w', dtype: 'F32', shape: [2048, 2048], data: values }]);
  values[n - 1] = 2;
  await writeSafetensors(pb, [{ name: 'w', dtype: 'F32', shape: [2048, 2048], data: values }]);
  const seen: number[] = [];
  const whole = await diffFiles(pa, pb, {}, { onValues: (done, total) => seen.push(done / total) });
  assert.deepEqual(seen, [0.25, 0.5, 0.75, 1]);
  assert.equal(whole.tensors[0]?.status, 'changed');
  const controller = new AbortController();
  const progress: number[] = [];
  await assert.rejects(
    diffFiles(
      pa,
      pb,
      {},
      {
        signal: controller.signal,
        onValues: (done) => {
          progress.push(done);
          controller.abort();
        },
      },
    ),
    CancelledError,
  );
  assert.deepEqual(progress, [1024 * 1024]);
});
