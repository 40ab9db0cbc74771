// Lean artifacts (--lean): the same predictor and layout as a full artifact, without the per-layer report, loss
// curve and verbatim reasons; every reader copes (decompress gives the same bytes, the reopened report says what was
// not stored, the Inspector's sections say so too).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CompressOptionsDto } from '../../src/protocol/compress';
import { LEAN_REPORT_NOTE } from '../../src/protocol/artifact';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS, ensureBackend } from '../../src/core/jobs/compress';
import { artifactReport } from '../../src/core/jobs/artifactDetail';
import { decompressArtifact } from '../../src/core/jobs/decompress';
import { readArtifact, writeArtifact, type VerbatimInput } from '../../src/core/nern/artifact';
import { CheckpointFormatError } from '../../src/core/io/errors';
import { artifactSections } from '../../webview/lib/artifactMeta';
import { FIXTURES } from '../helpers/fixtures';

const RESNET = join(FIXTURES, 'pytorch', 'resnet_tiny.pt');
const FAST: CompressOptionsDto = {
  ...DEFAULT_COMPRESS_OPTIONS,
  budget: { kind: 'hidden', hidden: 16 },
  steps: 30,
  backend: 'wasm',
};
let dir = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wl-lean-'));
  await ensureBackend('wasm');
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The `weight_lens` JSON of a safetensors artifact, parsed. */
function storedMeta(path: string): Record<string, unknown> {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as { __metadata__: { weight_lens: string } };
  return JSON.parse(header.__metadata__.weight_lens) as Record<string, unknown>;
}

void test('a lean artifact drops the report rows, loss curve and reasons, and decodes to the same bytes', async () => {
  const full = join(dir, 'full.nern.safetensors');
  const lean = join(dir, 'lean.nern.safetensors');
  const fullRun = await compressCheckpoint(RESNET, { ...FAST, out: full });
  const leanRun = await compressCheckpoint(RESNET, { ...FAST, lean: true, out: lean });
  // The run itself still reports everything it measured.
  assert.deepEqual(leanRun.layers, fullRun.layers);
  assert.ok(leanRun.lossCurve.length > 0);
  assert.ok(statSync(lean).size < statSync(full).size, `${statSync(lean).size} vs ${statSync(full).size}`);

  const raw = storedMeta(lean);
  assert.equal(raw.lean, true);
  const report = raw.report as Record<string, unknown>;
  assert.ok(!('layers' in report) && !('lossCurve' in report), Object.keys(report).join(', '));
  // Tensors are listed by name alone: the layer map and the stored entries give their shapes and dtypes.
  assert.ok(
    (raw.tensors as Record<string, unknown>[]).every((t) => Object.keys(t).join(',') === 'name,stored'),
    JSON.stringify(raw.tensors),
  );
  assert.equal(storedMeta(full).lean, undefined);

  const a = await readArtifact(lean);
  try {
    assert.equal(a.meta.lean, true);
    assert.deepEqual(a.meta.report.layers, []);
    assert.deepEqual(a.meta.report.lossCurve, []);
    assert.equal(a.meta.report.rmse, fullRun.rmse);
    const f = await readArtifact(full);
    try {
      // The same tensor list as the full artifact's once read, less the reasons.
      assert.deepEqual(
        a.meta.tensors,
        f.meta.tensors.map((t) => (t.stored === 'verbatim' ? { ...t, reason: '' } : t)),
      );
    } finally {
      await f.close();
    }
  } finally {
    await a.close();
  }
  const [fromFull] = await decompressArtifact(full, join(dir, 'full.decoded.safetensors'));
  const [fromLean] = await decompressArtifact(lean, join(dir, 'lean.decoded.safetensors'));
  assert.ok(fromFull !== undefined && fromLean !== undefined);
  assert.deepEqual(readFileSync(fromLean), readFileSync(fromFull));

  // Reopened (Reconstruction panel): the scalar figures, empty rows, and the flag that says why.
  const { report: reopened, plan } = await artifactReport(lean);
  // The stored bytes by component, as written.
  assert.equal(plan.bytes?.total, statSync(lean).size);
  assert.equal(
    plan.bytes.predictor + plan.bytes.permutations + plan.bytes.scales + plan.bytes.verbatim + plan.bytes.metadata,
    plan.bytes.total,
  );
  assert.equal(reopened.lean, true);
  assert.deepEqual(reopened.layers, []);
  assert.equal(reopened.relativeError, fullRun.relativeError);
  assert.equal((await artifactReport(full)).report.lean, undefined);
  // The Inspector's artifact detail says the report was not stored.
  const sections = artifactSections(JSON.stringify(raw));
  const rows = sections.flatMap((s) => s.rows);
  assert.ok(
    rows.some(([, v]) => v === LEAN_REPORT_NOTE),
    JSON.stringify(sections),
  );
  assert.ok(!sections.some((s) => s.title === 'Layers'));
});

void test('a lean artifact that lists a tensor by name alone with nothing stored for it is refused', async () => {
  const lean = join(dir, 'lean2.nern.safetensors');
  await compressCheckpoint(RESNET, { ...FAST, steps: 5, lean: true, out: lean });
  const a = await readArtifact(lean);
  const ghost = join(dir, 'ghost.nern.safetensors');
  try {
    const verbatim: VerbatimInput[] = a.meta.tensors
      .filter((t) => t.stored === 'verbatim')
      .map((t) => ({ name: t.name, dtype: t.storedDtype ?? 'F32', shape: t.shape, data: a.verbatimBytes(t.name) }));
    const tensors = [
      ...a.meta.tensors,
      { name: 'ghost', dtype: 'F32', shape: [2], stored: 'verbatim' as const, storedDtype: 'F32' as const },
    ];
    await writeArtifact(ghost, {
      meta: { ...a.meta, tensors },
      predictor: a.predictor,
      kernelMap: a.kernelMap,
      verbatim,
    });
  } finally {
    await a.close();
  }
  await assert.rejects(
    readArtifact(ghost),
    (e: unknown) =>
      e instanceof CheckpointFormatError &&
      /tensor "ghost" is listed by name alone but has no stored verbatim tensor\.$/.test(e.message),
  );
});
