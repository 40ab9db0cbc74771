// Compression end to end on real fixtures (PyTorch ResNet-ish CNN, published wake-word ONNX MLP): the artifact round
// trip restores every tensor (names, dtypes, shapes; verbatim tensors exact), the source is untouched, runs are
// byte-reproducible, cancellation leaves no file, no tfjs tensors leak, and hostile artifacts fail clearly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { CompressEvaluationDto, CompressOptionsDto } from '../../src/protocol/compress';
import {
  compressCheckpoint,
  DEFAULT_COMPRESS_OPTIONS,
  ensureBackend,
  planCompression,
} from '../../src/core/jobs/compress';
import { openCheckpoint } from '../../src/core/formats/registry';
import { CancelledError, CheckpointFormatError } from '../../src/core/io/errors';
import { readArtifact } from '../../src/core/nern/artifact';
import { readTensorValues } from '../../src/core/tensors/tensor';
import { ARTIFACT_METADATA_KEY, artifactSummary } from '../../webview/lib/artifactMeta';
import { inspectFile } from '../../src/core/jobs/inspect';
import type { CheckpointHeaderDto } from '../../src/protocol/inspect';
import { FIXTURES } from '../helpers/fixtures';

import { artifactReport } from '../../src/core/jobs/artifactDetail';
import { decompressArtifact } from '../../src/core/jobs/decompress';
const RESNET = join(FIXTURES, 'pytorch', 'resnet_tiny.pt');
const WAKE = join(FIXTURES, 'published', 'openwakeword', 'hello_deepa.onnx');
const FAST: CompressOptionsDto = {
  ...DEFAULT_COMPRESS_OPTIONS,
  budget: { kind: 'hidden', hidden: 16 },
  steps: 30,
  backend: 'wasm',
};
let dir = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wl-compress-'));
  await ensureBackend('wasm');
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

async function listing(path: string): Promise<string[]> {
  const c = await openCheckpoint(path);
  try {
    return c.tensors.map((t) => `${t.name} ${t.dtype} [${t.shape.join(',')}]`);
  } finally {
    await c.close();
  }
}

void test('planCompression resolves the budget without training', async () => {
  const plan = await planCompression(RESNET, FAST);
  assert.equal(plan.hidden, 16);
  assert.deepEqual(
    plan.represented.map((r) => r.name),
    ['layer2.0.conv1.weight', 'layer2.0.conv2.weight'],
  );
  assert.ok(plan.verbatim.some((v) => v.name === 'conv1.weight' && /tiny/.test(v.reason)));
});

void test('compress → decompress restores every tensor; verbatim exact; source untouched; no tensor leaks', async () => {
  const before = sha(RESNET);
  const out = join(dir, 'resnet.nern.safetensors');
  const tensorsBefore = tf.memory().numTensors;
  const evaluations: CompressEvaluationDto[] = [];
  let progress = 0;
  const report = await compressCheckpoint(
    RESNET,
    { ...FAST, out },
    { onProgress: () => progress++, onEvaluation: (e) => evaluations.push(e) },
  );
  assert.equal(tf.memory().numTensors, tensorsBefore, 'no tfjs tensors leak across a compress run');
  assert.equal(sha(RESNET), before, 'the source is never modified');
  assert.ok(progress > 0);
  assert.equal(report.backend, 'wasm');
  assert.equal(report.steps, 30);
  assert.equal(report.layers.length, 2);
  assert.ok(report.rmse > 0 && Number.isFinite(report.rmse));
  assert.ok(evaluations.length >= 2, 'evaluations stream during training, not only at the end');
  for (const e of evaluations) assert.ok(e.detail, `the evaluation at step ${e.step} carries live layer detail`);
  const final = evaluations.at(-1);
  assert.ok(final?.detail, 'the final evaluation carries the worst layer detail');
  assert.equal(
    final.detail.original.counts.reduce((a, b) => a + b, 0),
    report.layers.find((l) => l.name === final.detail?.name)?.params,
  );
  assert.equal(final.detail.original.edges.join(), final.detail.reconstructed.edges.join());
  assert.ok(final.detail.filter.original.length <= 64 && final.detail.filter.original[0]?.length === 9);

  // It is a plain safetensors file, listed by the ordinary reader.
  const names = await listing(out);
  assert.ok(names.some((n) => n.startsWith('predictor.0.weight F32 [240,16]')));
  assert.ok(names.some((n) => n.startsWith('verbatim.bn1.num_batches_tracked I64')));

  const decoded = join(dir, 'resnet.decompressed.safetensors');
  const tensorsBeforeDecode = tf.memory().numTensors;
  assert.deepEqual(await decompressArtifact(out, decoded), [decoded]);
  assert.equal(tf.memory().numTensors, tensorsBeforeDecode);
  assert.deepEqual(await listing(decoded), await listing(RESNET));

  const src = await openCheckpoint(RESNET);
  const dst = await openCheckpoint(decoded);
  try {
    for (const [i, t] of src.tensors.entries()) {
      const a = await readTensorValues(t);
      const b = await readTensorValues(dst.tensors[i]!);
      const layer = report.layers.find((l) => l.name === t.name);
      if (!layer) assert.deepEqual(b, a, `${t.name} is stored verbatim, exactly`);
      else {
        let se = 0;
        for (let j = 0; j < a.length; j++) se += (a[j]! - b[j]!) ** 2;
        assert.ok(
          Math.abs(Math.sqrt(se / a.length) - layer.rmse) < 1e-6,
          `${t.name}: decoded error equals the reported error`,
        );
      }
    }
  } finally {
    await src.close();
    await dst.close();
  }

  const reopened = await artifactReport(out);
  assert.equal(reopened.report.rmse, report.rmse);
  assert.deepEqual(reopened.report.layers, report.layers);
  assert.deepEqual(reopened.report.lossCurve, report.lossCurve);
  assert.equal(reopened.report.artifactBytes, report.artifactBytes);
  assert.equal(reopened.plan.hidden, 16);
  assert.equal(reopened.plan.verbatim.length, 36);

  // The Inspector's banner reads the metadata the writer produced (the shared schema in src/protocol/artifact.ts),
  // whole: the header's metadata strings are cut at 1 kB, so the engine adds the artifact's summary to the header.
  let header: CheckpointHeaderDto | undefined;
  await inspectFile(
    out,
    { headersOnly: true },
    {
      onHeader: (h) => {
        header = h;
      },
    },
  );
  assert.ok(header?.artifact !== undefined && 'summary' in header.artifact, JSON.stringify(header?.artifact));
  assert.match(String(header.metadata.weight_lens), /… \(\d+ characters\)$/);
  const banner = artifactSummary({ [ARTIFACT_METADATA_KEY]: header.artifact.summary }, report.artifactBytes);
  assert.deepEqual(banner, {
    source: 'resnet_tiny.pt',
    sourceBytes: report.sourceBytes,
    ratio: report.sourceBytes / report.artifactBytes,
    hidden: 16,
    steps: report.steps,
    permutation: report.permutation,
    rmse: report.rmse,
  });
});

void test('same seed and backend → byte-identical artifact; another seed differs', async () => {
  const a = join(dir, 'a.nern.safetensors');
  const b = join(dir, 'b.nern.safetensors');
  const c = join(dir, 'c.nern.safetensors');
  await compressCheckpoint(RESNET, { ...FAST, steps: 20, seed: 5, out: a });
  await compressCheckpoint(RESNET, { ...FAST, steps: 20, seed: 5, out: b });
  await compressCheckpoint(RESNET, { ...FAST, steps: 20, seed: 6, out: c });
  assert.equal(sha(a), sha(b));
  assert.notEqual(sha(a), sha(c));
});

void test('cancellation rejects with CancelledError within a second and leaves no file', async () => {
  const sub = mkdtempSync(join(dir, 'cancel-'));
  const out = join(sub, 'x.nern.safetensors');
  const controller = new AbortController();
  const tensorsBefore = tf.memory().numTensors;
  let abortedAt = 0;
  const job = compressCheckpoint(
    RESNET,
    { ...FAST, steps: 100_000, out },
    {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step >= 20 && abortedAt === 0) {
          abortedAt = performance.now();
          controller.abort();
        }
      },
    },
  );
  await assert.rejects(job, CancelledError);
  assert.ok(performance.now() - abortedAt < 1000);
  assert.deepEqual(readdirSync(sub), [], 'no artifact and no temporary file');
  assert.equal(tf.memory().numTensors, tensorsBefore);
});

void test('Stop and Save keeps the predictor trained so far as a valid artifact marked as stopped early', async () => {
  const sub = mkdtempSync(join(dir, 'stop-'));
  const out = join(sub, 'x.nern.safetensors');
  const stop = new AbortController();
  const tensorsBefore = tf.memory().numTensors;
  const evaluations: number[] = [];
  const report = await compressCheckpoint(
    RESNET,
    { ...FAST, steps: 100_000, out },
    {
      stop: stop.signal,
      onProgress: (p) => {
        if (p.step >= 20) stop.abort();
      },
      onEvaluation: (e) => evaluations.push(e.step),
    },
  );
  assert.equal(tf.memory().numTensors, tensorsBefore);
  // Progress is reported every 200 steps here (500 points over 100,000): it stops right after the first report.
  assert.equal(report.steps, 200, `stopped after ${report.steps} steps`);
  assert.deepEqual(report.stoppedEarly, { step: report.steps, steps: 100_000 });
  assert.equal(evaluations.at(-1), report.steps, 'the last evaluation is of the predictor kept');
  assert.ok(report.relativeError > 0 && report.relativeError < 1.5);
  const a = await readArtifact(out);
  try {
    assert.deepEqual(a.meta.training.stoppedEarly, { step: report.steps, steps: 100_000 });
    assert.equal(a.meta.training.steps, report.steps);
  } finally {
    await a.close();
  }
  // It decodes like any artifact, and its stored report says it was stopped.
  const restored = await decompressArtifact(out, join(sub, 'restored.safetensors'));
  assert.equal(restored.length, 1);
  const reopened = await artifactReport(out);
  assert.deepEqual(reopened.report.stoppedEarly, report.stoppedEarly);
  assert.ok(Math.abs(reopened.report.relativeError - report.relativeError) < 1e-9);
});

void test('progressive rounds and dense tiling on the wake-word MLP (Gemm matrices)', async () => {
  const out = join(dir, 'wake.nern.safetensors');
  const report = await compressCheckpoint(WAKE, {
    ...FAST,
    budget: { kind: 'hidden', hidden: 8 },
    steps: 10,
    rounds: 2,
    roundWidthScale: 0.5,
    represent: { conv: true, dense: true },
    out,
  });
  assert.equal(report.steps, 20);
  assert.deepEqual(
    report.layers.map((l) => l.name),
    ['layer1.weight', 'blocks.0.fcn_layer.weight'],
  );
  const a = await readArtifact(out);
  try {
    assert.deepEqual(a.meta.training.roundWidths, [16, 8]);
    assert.equal(a.meta.predictor.hidden, 8);
    assert.deepEqual(a.meta.layers[0]?.tile, { kind: 'tiled', rows: 32, cols: 2400 });
  } finally {
    await a.close();
  }
  const decoded = join(dir, 'wake.safetensors');
  await decompressArtifact(out, decoded);
  assert.deepEqual(await listing(decoded), await listing(WAKE));
});

/** Rewrites an artifact's safetensors header (and optionally its metadata JSON) into a new file. */
function tamper(
  src: string,
  dst: string,
  edit: (header: Record<string, unknown>, meta: Record<string, unknown>) => void,
): string {
  const bytes = readFileSync(src);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const md = header.__metadata__ as Record<string, string>;
  const meta = JSON.parse(md.weight_lens!) as Record<string, unknown>;
  edit(header, meta);
  if ('weight_lens' in md) md.weight_lens = JSON.stringify(meta);
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(dst, Buffer.concat([prefix, json, bytes.subarray(8 + n)]));
  return dst;
}

void test('hostile or damaged artifacts fail with one clear CheckpointFormatError', async () => {
  const good = join(dir, 'good.nern.safetensors');
  await compressCheckpoint(RESNET, { ...FAST, steps: 5, out: good });
  const cases: [string, (h: Record<string, unknown>, m: Record<string, unknown>) => void, RegExp][] = [
    [
      'no-meta',
      (h) => {
        delete (h.__metadata__ as Record<string, string>).weight_lens;
      },
      /not a Weight Lens artifact/,
    ],
    [
      'version',
      (_h, m) => {
        m.version = 99;
      },
      /newer than this Weight Lens reads/,
    ],
    [
      'hidden',
      (_h, m) => {
        (m.predictor as Record<string, unknown>).hidden = 17;
      },
      /predictor\.0\.weight is F32 \[240, 16\], expected F32 \[240, 17\]/,
    ],
    [
      'inputs',
      (_h, m) => {
        (m.predictor as Record<string, unknown>).inputs = 7;
      },
      /encoding gives 240/,
    ],
    [
      'tile',
      (_h, m) => {
        (m.layers as Record<string, unknown>[])[0]!.tile = { kind: 'tiled', rows: 16, cols: 72 };
      },
      /does not fit its shape/,
    ],
    [
      'pointwise',
      (_h, m) => {
        (m.training as Record<string, unknown>).pointwise = 'center';
      },
      /training\.pointwise is "center", not one of blocks, centre/,
    ],
    [
      'missing-verbatim',
      (h) => {
        delete h['verbatim.fc.weight'];
      },
      /verbatim tensor "fc.weight" is missing/,
    ],
    [
      'perm',
      (h) => {
        // Point layer 1's packed permutation at the first bytes of layer 0's: the wrong length for its kernels.
        const p0 = h['layout.perm.0'] as { data_offsets: number[] };
        h['layout.perm.1'] = { dtype: 'U8', shape: [8], data_offsets: [p0.data_offsets[0], p0.data_offsets[0]! + 8] };
      },
      /stored permutation of layer .* (is 8 bytes, not the|not valid deflate|inflates to)/,
    ],
    [
      'bad-offsets',
      (h) => {
        (h['predictor.0.bias'] as { data_offsets: number[] }).data_offsets = [0, 10 ** 12];
      },
      /data section/,
    ],
    [
      'dup',
      (_h, m) => {
        (m.tensors as unknown[]).push((m.tensors as unknown[])[0]);
      },
      /listed twice/,
    ],
    [
      'perm-coding',
      (_h, m) => {
        (m.permutations as Record<string, unknown>[])[0]!.coding = 'zip';
      },
      /permutations\[0\]\.coding is "zip", not one of packed, deflate, identity, blocks/,
    ],
    [
      'perm-count',
      (_h, m) => {
        (m.permutations as unknown[]).pop();
      },
      /weight_lens\.permutations has \d+ entries but the layer map has \d+/,
    ],
    [
      'perm-bits',
      (_h, m) => {
        (m.permutations as Record<string, unknown>[])[0]!.bits = 3;
      },
      /recorded at 3 bits per index, but \d+ kernels need \d+/,
    ],
    [
      'lean-v3',
      (_h, m) => {
        m.version = 3;
        m.lean = true;
      },
      /weight_lens\.lean needs format version 4, but the artifact is version 3/,
    ],
    [
      'perm-v3',
      (_h, m) => {
        m.version = 3;
      },
      /weight_lens\.permutations needs format version 4, but the artifact is version 3/,
    ],
  ];
  for (const [name, edit, message] of cases) {
    const path = tamper(good, join(dir, `${name}.nern.safetensors`), edit);
    await assert.rejects(
      artifactReport(path),
      (e: unknown) => e instanceof CheckpointFormatError && message.test(e.message),
      name,
    );
  }
  writeFileSync(join(dir, 'short.nern.safetensors'), Buffer.from([1, 2, 3]));
  await assert.rejects(decompressArtifact(join(dir, 'short.nern.safetensors')), CheckpointFormatError);
  await assert.rejects(artifactReport(RESNET), CheckpointFormatError);
});

void test('the nern recipe trains with NeRN exactly as NERN.md specifies (encoding base 0.76, Ranger, no output scale)', async () => {
  const out = join(dir, 'resnet-nern.nern.safetensors');
  const report = await compressCheckpoint(RESNET, { ...FAST, steps: 12, recipe: 'nern', out });
  assert.equal(report.steps, 12);
  const a = await readArtifact(out);
  try {
    assert.deepEqual({ ...a.kernelMap.encoding }, { base: 0.76, levels: 40 });
    assert.equal(a.meta.training.optimizer, 'ranger');
    assert.ok(
      Array.from(a.kernelMap.outputScales).every((s) => s === 1),
      'no per-layer output scale',
    );
  } finally {
    await a.close();
  }
  // The default recipe uses the rising-frequency encoding instead.
  const fast = join(dir, 'resnet-fast.nern.safetensors');
  await compressCheckpoint(RESNET, { ...FAST, steps: 12, out: fast });
  const b = await readArtifact(fast);
  try {
    assert.deepEqual({ ...b.kernelMap.encoding }, { base: 1.15, levels: 40 });
    assert.equal(b.meta.training.optimizer, 'adam');
  } finally {
    await b.close();
  }
});

void test('a byte changed anywhere in an artifact is refused by its checksum; one without a checksum still reads', async () => {
  const good = join(dir, 'checked.nern.safetensors');
  await compressCheckpoint(RESNET, { ...FAST, steps: 5, out: good });
  const bytes = readFileSync(good);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { data_offsets?: number[] }
  > & { __metadata__: Record<string, string> };
  assert.match(header.__metadata__.weight_lens_sha256 ?? '', /^[0-9a-f]{64}$/);
  const a = await readArtifact(good);
  await a.close();
  const at = (tensor: string): number => 8 + n + (header[tensor]?.data_offsets?.[0] ?? 0);
  // One predictor weight, one verbatim value, one kernel permutation entry, and the last data byte.
  const places = {
    predictor: at('predictor.0.weight') + 5,
    verbatim: at('verbatim.fc.weight') + 2,
    perm: at('layout.perm.0'),
    last: bytes.length - 1,
  };
  for (const [name, offset] of Object.entries(places)) {
    const damaged = Buffer.from(bytes);
    damaged[offset] = (damaged[offset] ?? 0) ^ 0x01;
    const path = join(dir, `flip-${name}.nern.safetensors`);
    writeFileSync(path, damaged);
    if (name === 'perm') {
      // A packed permutation byte changed is no permutation (or no deflate stream) any more: the structural check speaks first.
      await assert.rejects(
        readArtifact(path),
        /not a permutation|repeats an index|outside 0…|deflate|inflates to|checksum/,
      );
      continue;
    }
    await assert.rejects(
      readArtifact(path),
      (e: unknown) => {
        assert.ok(e instanceof CheckpointFormatError, String(e));
        assert.match(
          e.message,
          /is damaged: its contents no longer match the SHA-256 checksum stored when it was written/,
        );
        return true;
      },
      name,
    );
  }
  // A description edited in a way that still parses (a different encoding base) is caught too.
  const edited = tamper(good, join(dir, 'edited.nern.safetensors'), (_h, m) => {
    (m.encoding as Record<string, unknown>).base = 1.25;
  });
  await assert.rejects(readArtifact(edited), /checksum/);
  // An artifact written before checksums existed has none and reads as before.
  const old = tamper(good, join(dir, 'unchecked.nern.safetensors'), (h) => {
    delete (h.__metadata__ as Record<string, string>).weight_lens_sha256;
  });
  const b = await readArtifact(old);
  await b.close();
});
