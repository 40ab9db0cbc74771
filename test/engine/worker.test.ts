// The engine worker as the extension host uses it: the built dist/worker.js in a real worker_threads Worker, driven
// by protocol messages. Headers arrive before statistics; bad files fail as `badInput`; cancel stops a job.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { WorkerEvent, WorkerRequest } from '../../src/protocol/messages';
import { goodFixtures, hostileCases } from '../helpers/fixtures';

const workerPath = join(__dirname, '..', '..', 'dist', 'worker.js');

/** Sends `request` and collects events for its id until `done` or `failed`. */
async function exchange(worker: Worker, request: WorkerRequest, afterFirst?: (w: Worker) => void): Promise<WorkerEvent[]> {
  return new Promise((resolve, reject) => {
    const events: WorkerEvent[] = [];
    const timer = setTimeout(() => { reject(new Error(`no answer in 30 s; got ${events.map((e) => e.kind).join(', ')}`)); }, 30_000);
    const onMessage = (event: WorkerEvent): void => {
      if (!('id' in event) || event.id !== request.id) return;
      events.push(event);
      if (events.length === 1) afterFirst?.(worker);
      if (event.kind === 'inspect/done' || event.kind === 'failed') {
        clearTimeout(timer);
        worker.off('message', onMessage);
        resolve(events);
      }
    };
    worker.on('message', onMessage);
    worker.postMessage(request);
  });
}

test('the worker streams a header, then statistics for every tensor, then done', async () => {
  const fixture = goodFixtures().find((f) => f.format === 'safetensors') ?? goodFixtures()[0];
  assert.ok(fixture, 'a fixture exists');
  const worker = new Worker(workerPath);
  try {
    const events = await exchange(worker, { kind: 'inspect/open', id: 1, path: fixture.path, histogramBins: 16 });
    const first = events[0];
    assert.ok(first?.kind === 'inspect/header');
    assert.equal(first.header.tensors.length, fixture.tensors);
    const stats = events.filter((e) => e.kind === 'inspect/tensorStats' || e.kind === 'inspect/tensorError');
    assert.equal(stats.length, fixture.tensors);
    assert.equal(events.at(-1)?.kind, 'inspect/done');
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
    const events = await exchange(worker, { kind: 'inspect/open', id: 7, path: bad.path, histogramBins: 8 });
    const last = events.at(-1);
    assert.ok(last?.kind === 'failed', `ends in failed: ${JSON.stringify(last)}`);
    assert.equal(last.reason, 'badInput');
    assert.match(last.message, new RegExp(bad.message, 'i'));
    const again = await exchange(worker, { kind: 'inspect/open', id: 8, path: good.path, histogramBins: 8 });
    assert.equal(again.at(-1)?.kind, 'inspect/done');
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
  for (let i = 0; i < count; i++) header[`t${i}`] = { dtype: 'F32', shape: [elements], data_offsets: [i * elements * 4, (i + 1) * elements * 4] };
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
    const events = await exchange(worker, { kind: 'inspect/open', id: 3, path, histogramBins: 8 }, (w) => {
      w.postMessage({ kind: 'cancel', id: 3 } satisfies WorkerRequest);
    });
    const last = events.at(-1);
    assert.ok(last?.kind === 'failed', `ends in failed: ${JSON.stringify(last)}`);
    assert.equal(last.reason, 'cancelled');
    assert.ok(events.filter((e) => e.kind === 'inspect/tensorStats').length < 400, 'stopped before the end');
  } finally {
    await worker.terminate();
    rmSync(dirname(path), { recursive: true, force: true });
  }
});
