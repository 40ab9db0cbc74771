// The engine worker as the extension host uses it: the built dist/worker.js in a real worker_threads Worker, driven
// by protocol messages. Headers arrive before statistics; bad files fail as `badInput`; cancel stops a job.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { EngineInbound } from '../../src/protocol/engine';
import { answerOf, exchange } from '../helpers/engineWire';
import { goodFixtures, hostileCases } from '../helpers/fixtures';

const workerPath = join(__dirname, '..', '..', 'dist', 'worker.js');

test('the worker streams a header, then statistics for every tensor, then answers', async () => {
  const fixture = goodFixtures().find((f) => f.format === 'safetensors') ?? goodFixtures()[0];
  assert.ok(fixture, 'a fixture exists');
  const worker = new Worker(workerPath);
  try {
    const x = await exchange(worker, 'inspect/open', 1, { path: fixture.path, histogramBins: 16 }, undefined, 30_000);
    const events = x.events;
    const first = events[0];
    assert.ok(first?.kind === 'inspect/header');
    assert.equal(first.header.tensors.length, fixture.tensors);
    const stats = events.filter((e) => e.kind === 'inspect/tensorStats' || e.kind === 'inspect/tensorError');
    assert.equal(stats.length, fixture.tensors);
    assert.ok(answerOf(x).seconds >= 0);
    for (const e of events) if (e.kind === 'inspect/tensorStats') assert.equal(e.histogram.counts.length, 16);
  } finally {
    await worker.terminate();
  }
});

test('a hostile file fails as badInput and the worker keeps serving', async () => {
  const bad = hostileCases()[0];
  const good = goodFixtures()[0];
  assert.ok(bad && good);
  const worker = new Worker(workerPath);
  try {
    const last = (await exchange(worker, 'inspect/open', 7, { path: bad.path, histogramBins: 8 }, undefined, 30_000))
      .end;
    assert.ok(last.kind === 'failed', `ends in failed: ${JSON.stringify(last)}`);
    assert.equal(last.reason, 'badInput');
    assert.match(last.message, new RegExp(bad.message, 'i'));
    const again = await exchange(worker, 'inspect/open', 8, { path: good.path, histogramBins: 8 }, undefined, 30_000);
    assert.equal(again.end.kind, 'answer');
  } finally {
    await worker.terminate();
  }
});

/**
 * Writes a safetensors file of `count` float32 tensors of `elements` zeros each into a temp folder. Only the header is
 * written: the data is a hole made by extending the file (sparse where the file system allows), so a large file costs
 * neither disk writes nor memory.
 */
function writeLargeSafetensors(count: number, elements: number): string {
  const header: Record<string, unknown> = {};
  for (let i = 0; i < count; i++)
    header[`t${i}`] = { dtype: 'F32', shape: [elements], data_offsets: [i * elements * 4, (i + 1) * elements * 4] };
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const path = join(mkdtempSync(join(tmpdir(), 'wl-cancel-')), 'large.safetensors');
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, Buffer.concat([length, json]));
    ftruncateSync(fd, 8 + json.length + count * elements * 4);
  } finally {
    closeSync(fd);
  }
  return path;
}

test('cancel stops a running inspection with reason cancelled', async () => {
  // 400 tensors × 256 Ki values (400 MB) take seconds to scan; the cancel is sent as soon as the header arrives.
  const path = writeLargeSafetensors(400, 256 * 1024);
  const worker = new Worker(workerPath);
  try {
    let sent = false;
    const x = await exchange(
      worker,
      'inspect/open',
      3,
      { path, histogramBins: 8 },
      (_event, w) => {
        if (sent) return;
        sent = true;
        w.postMessage({ kind: 'cancel', id: 3 } satisfies EngineInbound);
      },
      30_000,
    );
    const last = x.end;
    assert.ok(last.kind === 'failed', `ends in failed: ${JSON.stringify(last)}`);
    assert.equal(last.reason, 'cancelled');
    assert.ok(x.events.filter((e) => e.kind === 'inspect/tensorStats').length < 400, 'stopped before the end');
  } finally {
    await worker.terminate();
    rmSync(dirname(path), { recursive: true, force: true });
  }
});

test('a request of a kind the worker does not serve fails as internal, naming it', async () => {
  const worker = new Worker(workerPath);
  try {
    const failed = new Promise<unknown>((resolve) => {
      worker.on('message', (m: { id?: number }) => {
        if (m.id === 4) resolve(m);
      });
    });
    worker.postMessage({ kind: 'compress/nothing', id: 4, params: {} });
    const message = 'The engine has no request compress/nothing.';
    assert.deepEqual(await failed, { kind: 'failed', id: 4, reason: 'internal', message });
  } finally {
    await worker.terminate();
  }
});
