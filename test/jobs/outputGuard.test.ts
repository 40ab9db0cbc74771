// A job never writes over a file it reads: the checkpoint, a shard of a sharded checkpoint, the model, the data, or
// the artifact; after symbolic links too. The refused job exits with a clear error and leaves every input intact.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBackend } from '../../src/core/backend/tfjsBackend';
import { BadInputError } from '../../src/core/io/errors';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS } from '../../src/core/jobs/compress';
import { decompressArtifact } from '../../src/core/jobs/decompress';
import { DEFAULT_DISTILL_OPTIONS, distillArtifact } from '../../src/core/jobs/distill';
import { FIXTURES } from '../helpers/fixtures';

const dir = mkdtempSync(join(tmpdir(), 'wl-output-guard-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});
const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const refused =
  (pattern: RegExp) =>
  (e: unknown): boolean =>
    e instanceof BadInputError && e.option === 'out' && pattern.test(e.message);

void test('compressing a sharded checkpoint onto one of its shards, or a link to it, is refused and the shard is kept', async () => {
  await ensureBackend('wasm');
  for (const n of [1, 2, 3])
    copyFileSync(
      join(FIXTURES, 'safetensors', `sharded-model-0000${n}-of-00003.safetensors`),
      join(dir, `sharded-model-0000${n}-of-00003.safetensors`),
    );
  copyFileSync(
    join(FIXTURES, 'safetensors', 'sharded-model.safetensors.index.json'),
    join(dir, 'sharded-model.safetensors.index.json'),
  );
  const index = join(dir, 'sharded-model.safetensors.index.json');
  const shard = join(dir, 'sharded-model-00002-of-00003.safetensors');
  symlinkSync(shard, join(dir, 'link-to-shard.safetensors'));
  const before = sha(shard);
  const options = {
    ...DEFAULT_COMPRESS_OPTIONS,
    budget: { kind: 'hidden', hidden: 8 } as const,
    steps: 2,
    backend: 'wasm' as const,
    represent: { conv: true, dense: true },
  };
  for (const out of [shard, join(dir, 'link-to-shard.safetensors'), index]) {
    await assert.rejects(
      compressCheckpoint(index, { ...options, out }),
      refused(/which this job reads|refers to and this job reads/),
      out,
    );
  }
  assert.equal(sha(shard), before);
});

void test('distilling onto the model or the data, and decompressing onto the artifact, are refused', async () => {
  await ensureBackend('wasm');
  const model = join(dir, 'resnet20_fmnist.onnx');
  copyFileSync(join(FIXTURES, 'models', 'resnet20_fmnist.onnx'), model);
  const data = join(FIXTURES, 'data', 'idx', 't10k-images-idx3-ubyte.gz');
  const artifact = join(dir, 'r.nern.safetensors');
  await compressCheckpoint(join(FIXTURES, 'models', 'resnet20_fmnist.pt'), {
    ...DEFAULT_COMPRESS_OPTIONS,
    budget: { kind: 'hidden', hidden: 8 },
    steps: 2,
    backend: 'wasm',
    out: artifact,
  });
  const before = sha(model);
  const options = { ...DEFAULT_DISTILL_OPTIONS, steps: 1, batchSize: 4, evalSamples: 4, evalEvery: 0 };
  await assert.rejects(
    distillArtifact({ artifact, model, data, options: { ...options, out: model } }),
    refused(/resnet20_fmnist\.onnx, which this job reads/),
  );
  await assert.rejects(
    distillArtifact({ artifact, model, data, options: { ...options, out: data } }),
    refused(/which this job reads/),
  );
  await assert.rejects(
    distillArtifact({ artifact, model, data, options: { ...options, out: artifact } }),
    refused(/which this job reads/),
  );
  await assert.rejects(decompressArtifact(artifact, artifact), refused(/which this job reads/));
  assert.equal(sha(model), before);
});
