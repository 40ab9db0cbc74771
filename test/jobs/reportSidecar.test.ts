// The report sidecar (--sidecar): a lean artifact plus `<artifact>.report.json` with the per-layer report and loss
// curve it leaves out, written both or neither; readers (the reopened report, the Inspector's sections, CLI inspect)
// use it when it belongs to the artifact and say "report not stored" when it is missing or foreign. Sizes count the
// artifact alone, the sidecar separately.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CompressOptionsDto } from '../../src/protocol/compress';
import { LEAN_REPORT_NOTE } from '../../src/protocol/artifact';
import { reportSidecarPathFor } from '../../src/protocol/paths';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS, ensureBackend } from '../../src/core/jobs/compress';
import { artifactReport } from '../../src/core/jobs/artifactDetail';
import { inspectFile } from '../../src/core/jobs/inspect';
import { readArtifact } from '../../src/core/nern/artifact';
import { artifactSections } from '../../webview/lib/artifactMeta';
import { compressOptionsFromArgs } from '../../src/cli/compressCommands';
import { FIXTURES } from '../helpers/fixtures';

const RESNET = join(FIXTURES, 'pytorch', 'resnet_tiny.pt');
const FAST: CompressOptionsDto = {
  ...DEFAULT_COMPRESS_OPTIONS,
  budget: { kind: 'hidden', hidden: 12 },
  steps: 30,
  backend: 'wasm',
};
let dir = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wl-sidecar-'));
  await ensureBackend('wasm');
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The Inspector's rows of section `title` for the artifact at `path`. */
async function sectionRows(path: string, title: string): Promise<[string, string][]> {
  const report = await inspectFile(path, { headersOnly: true });
  assert.ok(report.artifact !== undefined && 'summary' in report.artifact, JSON.stringify(report.artifact));
  return artifactSections(report.artifact.summary).find((s) => s.title === title)?.rows ?? [];
}

void test('--sidecar writes a lean artifact and its report beside it; reopening reads the report from there', async () => {
  const out = join(dir, 'with.nern.safetensors');
  const run = await compressCheckpoint(RESNET, { ...FAST, sidecar: true, out });
  const sidecar = reportSidecarPathFor(out);
  assert.equal(sidecar, `${out}.report.json`);
  assert.ok(existsSync(sidecar));
  // The run's sizes: the artifact alone, the sidecar separately.
  assert.equal(run.artifactBytes, statSync(out).size);
  assert.deepEqual(run.sidecar, { path: sidecar, bytes: statSync(sidecar).size });
  const a = await readArtifact(out);
  assert.equal(a.meta.lean, true);
  assert.deepEqual(a.meta.report.layers, []);
  await a.close();
  const doc = JSON.parse(readFileSync(sidecar, 'utf8')) as Record<string, unknown>;
  assert.equal(doc.format, 'weight-lens-nern-report');
  assert.match(String(doc.artifactSha256), /^[0-9a-f]{64}$/);

  const { report } = await artifactReport(out);
  assert.equal(report.lean, true);
  assert.deepEqual(report.layers, run.layers);
  assert.deepEqual(report.lossCurve, run.lossCurve);
  assert.deepEqual(report.sidecar, run.sidecar);
  assert.equal(report.artifactBytes, statSync(out).size);
  const rows = await sectionRows(out, 'Report');
  assert.ok(
    rows.some(([k, v]) => k === 'report sidecar' && v.startsWith('with.nern.safetensors.report.json')),
    JSON.stringify(rows),
  );
  assert.ok(!rows.some(([k]) => k === 'not stored'));
  assert.equal((await sectionRows(out, 'Layers')).length, run.layers.length);
});

void test('without a sidecar that belongs to it, a lean artifact says its report was not stored', async () => {
  const out = join(dir, 'lean.nern.safetensors');
  await compressCheckpoint(RESNET, { ...FAST, lean: true, out });
  const alone = await artifactReport(out);
  assert.deepEqual(alone.report.layers, []);
  assert.equal(alone.report.sidecar, undefined);
  assert.ok((await sectionRows(out, 'Report')).some(([k, v]) => k === 'not stored' && v === LEAN_REPORT_NOTE));
  assert.match(LEAN_REPORT_NOTE, /^Report not stored/);
  // A sidecar from another artifact (here: of a run with another seed) is not this one's report.
  const other = join(dir, 'other.nern.safetensors');
  await compressCheckpoint(RESNET, { ...FAST, seed: 7, sidecar: true, out: other });
  writeFileSync(reportSidecarPathFor(out), readFileSync(reportSidecarPathFor(other)));
  const foreign = await artifactReport(out);
  assert.deepEqual(foreign.report.layers, []);
  assert.equal(foreign.report.sidecar, undefined);
  // Damaged sidecars are ignored the same way, never a crash.
  for (const text of ['{', '[]', JSON.stringify({ format: 'weight-lens-nern-report', version: 1 })]) {
    writeFileSync(reportSidecarPathFor(other), text);
    const damaged = await artifactReport(other);
    assert.deepEqual(damaged.report.layers, [], text);
    assert.equal(damaged.report.sidecar, undefined, text);
  }
});

void test('both or neither: a run whose sidecar cannot be written leaves no artifact', async () => {
  const out = join(dir, 'blocked.nern.safetensors');
  // A folder where the sidecar should go makes its rename fail after the artifact was written.
  mkdirSync(join(reportSidecarPathFor(out), 'inside'), { recursive: true });
  await assert.rejects(compressCheckpoint(RESNET, { ...FAST, sidecar: true, out }));
  assert.ok(!existsSync(out), 'no artifact without its sidecar');
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.startsWith('.blocked')),
    [],
    'no temporaries left',
  );
});

void test('the CLI: --sidecar implies --lean and applies to NeRN artifacts only', () => {
  const { options } = compressOptionsFromArgs(['m.pt', '--sidecar']);
  assert.equal(options.sidecar, true);
  assert.equal(options.lean, true);
  assert.throws(() => compressOptionsFromArgs(['m.pt', '--sidecar', '--method', 'int8']), /NeRN artifacts only/);
  assert.throws(
    () => compressOptionsFromArgs(['m.pt', '--verbatim-dtype', 'int4']),
    /--verbatim-dtype must be one of f32, f16, int8/,
  );
  assert.equal(compressOptionsFromArgs(['m.pt', '--verbatim-dtype', 'int8']).options.verbatimDtype, 'int8');
});
