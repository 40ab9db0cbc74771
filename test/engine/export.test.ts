// Export in the built engine worker (dist/worker.js in a real worker_threads Worker): convert/start writes a
// safetensors file that the worker's own inspect/open reads back with the same tensors, streaming one progress event
// per tensor; an output that is the input fails as badInput; cancel leaves no output and no temporary, and the worker
// keeps serving; convert/attachment writes a netron:attachment file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { NetronAttachmentDto } from '../../src/protocol/convert';
import { answerOf, exchange } from '../helpers/engineWire';

const root = join(__dirname, '..', '..');
const workerPath = join(root, 'dist', 'worker.js');
const RESNET = join(root, 'test', 'fixtures', 'models', 'resnet20_fmnist.pt');
const dir = mkdtempSync(join(tmpdir(), 'wl-engine-export-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

void test('convert/start streams progress per tensor and writes a file inspect/open reads back whole', async () => {
  const worker = new Worker(workerPath);
  try {
    const out = join(dir, 'resnet.safetensors');
    const x = await exchange(worker, 'convert/start', 1, { path: RESNET, out }, undefined, 120_000);
    const report = answerOf(x);
    assert.equal(report.format, 'pytorch');
    assert.equal(report.target, 'safetensors');
    assert.equal(report.output, out);
    const progress = x.events.map((e) => e.progress);
    assert.equal(progress.length, report.tensors);
    assert.deepEqual(
      progress.map((p) => p.index),
      Array.from({ length: report.tensors }, (_, i) => i),
    );
    assert.ok(progress.every((p) => p.total === report.tensors));

    const source = await exchange(worker, 'inspect/open', 2, { path: RESNET, histogramBins: 8 });
    const copy = await exchange(worker, 'inspect/open', 3, { path: out, histogramBins: 8 });
    answerOf(source);
    answerOf(copy);
    const headerOf = (events: typeof source.events) => {
      const h = events.find((e) => e.kind === 'inspect/header');
      assert.ok(h?.kind === 'inspect/header');
      return h.header;
    };
    const a = headerOf(source.events);
    const b = headerOf(copy.events);
    assert.equal(b.format, 'safetensors');
    assert.equal(b.tensors.length, a.tensors.length);
    assert.equal(b.tensors.length, report.tensors);
    assert.deepEqual(
      b.tensors.map((t) => [t.name, t.dtype, t.shape]),
      a.tensors.map((t) => [t.name, t.dtype, t.shape]),
    );
    const statsOf = (events: typeof source.events) =>
      events.flatMap((e) => (e.kind === 'inspect/tensorStats' ? [[e.index, e.stats] as const] : [])).sort();
    assert.deepEqual(statsOf(copy.events), statsOf(source.events), 'the same values, so the same statistics');
  } finally {
    await worker.terminate();
  }
});

void test('convert/start refuses to write over its input, and cancel leaves nothing behind', async () => {
  const worker = new Worker(workerPath);
  try {
    const input = join(dir, 'input.safetensors');
    copyFileSync(join(root, 'test', 'fixtures', 'safetensors', 'tiny_cnn.safetensors'), input);
    const before = readFileSync(input);
    const same = await exchange(worker, 'convert/start', 1, { path: input, out: join(dir, '.', 'input.safetensors') });
    assert.ok(same.end.kind === 'failed' && same.end.reason === 'badInput', JSON.stringify(same.end));
    assert.match(same.end.message, /is the input itself/);
    assert.deepEqual(readFileSync(input), before);

    const out = join(dir, 'cancelled.npz');
    let cancelled = false;
    const x = await exchange(worker, 'convert/start', 2, { path: RESNET, out }, (event) => {
      if (!cancelled && event.progress.index === 1) {
        cancelled = true;
        worker.postMessage({ kind: 'cancel', id: 2 });
      }
    });
    assert.ok(x.end.kind === 'failed' && x.end.reason === 'cancelled', JSON.stringify(x.end));
    assert.ok(!existsSync(out), 'no output');
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.endsWith('.tmp')),
      [],
      'no temporary',
    );
    const again = await exchange(worker, 'convert/start', 3, { path: RESNET, out });
    assert.equal(answerOf(again).target, 'npz');
    assert.ok(existsSync(out));
  } finally {
    await worker.terminate();
  }
});

void test('convert/attachment writes a netron:attachment file with statistics and spectra', async () => {
  const worker = new Worker(workerPath);
  try {
    const out = join(dir, 'resnet.attachment.json');
    const x = await exchange(
      worker,
      'convert/attachment',
      1,
      { path: RESNET, options: { out, spectra: true, maxRank: 0 } },
      undefined,
      120_000,
    );
    const report = answerOf(x);
    assert.equal(report.spectra, 19);
    const phases = new Set(x.events.map((e) => e.progress.phase));
    assert.deepEqual([...phases], ['statistics', 'spectra']);
    const data = JSON.parse(readFileSync(out, 'utf8')) as NetronAttachmentDto;
    assert.equal(data.signature, 'netron:attachment');
    assert.equal(data.metrics.length, report.metrics);
    assert.ok(data.metrics.some((m) => m.target === 'linear.weight' && m.name === 'stable_rank'));
  } finally {
    await worker.terminate();
  }
});
