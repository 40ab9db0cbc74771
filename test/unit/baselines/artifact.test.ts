// Baseline artifacts written from the project's real ResNet-20 checkpoint (PyTorch torch.save): the byte accounting
// equals the file actually written, decoding gives back the reconstruction the report describes and the verbatim
// tensors byte for byte, and a tampered or inconsistent artifact is refused with one clear sentence.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compressBaseline } from '../../../src/core/baselines/compressBaseline';
import { readBaselineArtifact } from '../../../src/core/baselines/artifact';
import { openCompressedArtifact } from '../../../src/core/baselines/compressedArtifact';
import { BASELINE_METHODS } from '../../../src/core/baselines/methods';
import { openCheckpoint } from '../../../src/core/formats/registry';
import { readTensorValues } from '../../../src/core/tensors/tensor';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { DTYPE_BYTES } from '../../../src/core/tensors/dtype';
import { DEFAULT_COMPRESS_OPTIONS } from '../../../src/core/jobs/compress';
import { inspectFile } from '../../../src/core/jobs/inspect';
import type { CheckpointHeaderDto } from '../../../src/protocol/inspect';
import { artifactLayerDetail, artifactLayerValues, artifactReport } from '../../../src/core/jobs/artifactDetail';

const RESNET = join(__dirname, '..', '..', 'fixtures', 'models', 'resnet20_fmnist.pt');
const dir = mkdtempSync(join(tmpdir(), 'wl-baselines-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function headerLength(path: string): number {
  return Number(readFileSync(path).readBigUInt64LE(0));
}

void test('every method: stored bytes + verbatim bytes + header = the file; the decoded error is the reported one', async () => {
  for (const method of BASELINE_METHODS) {
    const out = join(dir, `r.${method}.safetensors`);
    const report = await compressBaseline(RESNET, method, {
      ...DEFAULT_COMPRESS_OPTIONS,
      budget: { kind: 'fraction', fraction: 0.1 },
      out,
    });
    assert.equal(report.artifactBytes, statSync(out).size);
    const a = await readBaselineArtifact(out);
    try {
      const checkpoint = await openCheckpoint(RESNET);
      try {
        const verbatimBytes = a.meta.tensors.reduce(
          (s, t) => s + (t.stored === 'verbatim' ? t.shape.reduce((n, d) => n * d, 1) * DTYPE_BYTES[t.storedDtype] : 0),
          0,
        );
        assert.equal(8 + headerLength(out) + a.meta.report.storedBytes + verbatimBytes, statSync(out).size, method);
        if (method === 'lowrank' || method === 'prune')
          assert.ok(a.meta.report.storedBytes <= 0.1 * a.meta.report.representedParams * 4, method);
        if (method === 'int4') assert.ok(a.meta.report.storedBytes < 0.13 * a.meta.report.representedParams * 4);
        const recon = await a.reconstruction();
        let se = 0;
        for (const entry of checkpoint.tensors) {
          const original = await readTensorValues(entry);
          const r = recon.get(entry.name);
          if (r === undefined) {
            const stored = new Uint8Array(0);
            const chunks: Uint8Array[] = [stored];
            for await (const c of a.verbatimBytes(entry.name)) chunks.push(c);
            const bytes = Buffer.concat(chunks);
            if (entry.dtype === 'F32')
              assert.deepEqual(new Float32Array(Uint8Array.from(bytes).buffer), original, entry.name);
            else assert.equal(bytes.length, entry.params * DTYPE_BYTES[entry.dtype === 'I64' ? 'I64' : 'F32']);
            continue;
          }
          for (let i = 0; i < original.length; i++) se += ((r[i] ?? 0) - (original[i] ?? 0)) ** 2;
        }
        const rmse = Math.sqrt(se / a.meta.report.representedParams);
        assert.ok(Math.abs(rmse - report.rmse) <= 1e-9 + 1e-6 * report.rmse, `${method}: ${rmse} vs ${report.rmse}`);
        assert.ok(report.rmse > 0);
      } finally {
        await checkpoint.close();
      }
    } finally {
      await a.close();
    }
    const any = await openCompressedArtifact(out);
    assert.equal(any.method, method);
    await any.close();
  }
});

void test('a tampered baseline artifact is refused with one sentence naming the damage', async () => {
  const out = join(dir, 't.int4.safetensors');
  await compressBaseline(RESNET, 'int4', { ...DEFAULT_COMPRESS_OPTIONS, out });
  const bytes = readFileSync(out);
  // One flipped bit in the packed codes (the data section): the checksum catches it.
  const flipped = Buffer.from(bytes);
  const at = 8 + headerLength(out) + 100;
  flipped[at] = (flipped[at] ?? 0) ^ 0x10;
  writeFileSync(join(dir, 'flipped.safetensors'), flipped);
  await assert.rejects(
    openCompressedArtifact(join(dir, 'flipped.safetensors')),
    (e: unknown) =>
      e instanceof CheckpointFormatError && /damaged: its contents no longer match the SHA-256/.test(e.message),
  );
  // A rewritten description (a row count that does not match the shape; same length, so the header still parses).
  const text = bytes.toString('latin1');
  const edited = text.replace('\\"rows\\":16,', '\\"rows\\":17,');
  assert.notEqual(edited, text);
  writeFileSync(join(dir, 'edited.safetensors'), Buffer.from(edited, 'latin1'));
  await assert.rejects(
    openCompressedArtifact(join(dir, 'edited.safetensors')),
    (e: unknown) =>
      e instanceof CheckpointFormatError &&
      /not a valid Weight Lens baseline artifact: tensors\[\d+\]\.form is 17 × 144 but the tensor has 2304 values/.test(
        e.message,
      ),
  );
  // An unknown method.
  const hostile = text.replace('\\"method\\":\\"int4\\"', '\\"method\\":\\"int3\\"');
  writeFileSync(join(dir, 'hostile.safetensors'), Buffer.from(hostile, 'latin1'));
  await assert.rejects(
    openCompressedArtifact(join(dir, 'hostile.safetensors')),
    (e: unknown) => e instanceof CheckpointFormatError && /weight_lens\.method is "int3"/.test(e.message),
  );
});

void test('lowrank and prune refuse a predictor-width budget with a sentence', async () => {
  await assert.rejects(
    compressBaseline(RESNET, 'prune', {
      ...DEFAULT_COMPRESS_OPTIONS,
      budget: { kind: 'hidden', hidden: 32 },
      out: join(dir, 'x.safetensors'),
    }),
    /The prune method is sized by --size or --size-bytes/,
  );
});

void test('a baseline artifact reopens with its per-layer error report and original-vs-reconstructed detail', async () => {
  const out = join(dir, 'd.lowrank.safetensors');
  const report = await compressBaseline(RESNET, 'lowrank', {
    ...DEFAULT_COMPRESS_OPTIONS,
    budget: { kind: 'fraction', fraction: 0.2 },
    out,
  });
  const again = await artifactReport(out);
  assert.deepEqual(again.report.layers, report.layers);
  // A baseline's report says which method made it (its panel shows that there was no training).
  assert.equal(report.method, 'lowrank');
  assert.equal(again.report.method, 'lowrank');
  assert.equal(again.report.artifactBytes, report.artifactBytes);
  assert.equal(again.plan.represented.length, 18);
  const layer = 'layer3.2.conv2.weight';
  const values = await artifactLayerValues(out, layer, { source: RESNET });
  const a = await readBaselineArtifact(out);
  try {
    assert.deepEqual(values.recon, await a.reconstructTensor(layer));
  } finally {
    await a.close();
  }
  const row = report.layers.find((l) => l.name === layer);
  let se = 0;
  for (let i = 0; i < values.original.length; i++) se += ((values.recon[i] ?? 0) - (values.original[i] ?? 0)) ** 2;
  assert.ok(Math.abs(Math.sqrt(se / values.original.length) - (row?.rmse ?? 0)) < 1e-9);
  const detail = await artifactLayerDetail(out, layer, 3, 16, { source: RESNET });
  assert.equal(detail.filter.index, 3);
  assert.equal(detail.filter.count, 64);
  assert.equal(detail.filter.original.length, 64);
  await assert.rejects(
    artifactLayerDetail(out, 'linear.weight', 0, 16, { source: RESNET }),
    /has no represented layer/,
  );
  // The Inspector lists it as a plain safetensors file, without a NeRN banner claiming it is invalid.
  let header: CheckpointHeaderDto | undefined;
  const inspected = await inspectFile(
    out,
    { headersOnly: true },
    {
      onHeader: (h) => {
        header = h;
      },
    },
  );
  assert.ok(header);
  assert.equal(header.artifact, undefined);
  assert.ok(inspected.tensors.some((t) => t.name === `baseline.${layer}.u`));
});
