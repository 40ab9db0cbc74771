// Message batching for the Inspector: items wait at most one interval, full batches go at once, flush/clear/dispose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, type TimerApi } from '../../../../src/extension/inspector/batcher';

/** Hand-driven timers: `tick()` fires every scheduled callback. */
function fakeTimers(): TimerApi & { tick(): void; scheduled(): number } {
  let next = 1;
  const queue = new Map<number, () => void>();
  return {
    setTimeout: (cb) => {
      const id = next++;
      queue.set(id, cb);
      return id;
    },
    clearTimeout: (h) => {
      queue.delete(h as number);
    },
    tick: () => {
      const cbs = [...queue.values()];
      queue.clear();
      for (const cb of cbs) cb();
    },
    scheduled: () => queue.size,
  };
}

void test('items pushed within one interval are delivered together, in order', () => {
  const timers = fakeTimers();
  const out: number[][] = [];
  const b = new Batcher<number>((items) => out.push(items), 100, 1000, timers);
  b.push(1);
  b.push(2);
  b.push(3);
  assert.equal(timers.scheduled(), 1);
  assert.deepEqual(out, []);
  timers.tick();
  assert.deepEqual(out, [[1, 2, 3]]);
  b.push(4);
  timers.tick();
  assert.deepEqual(out, [[1, 2, 3], [4]]);
});

void test('a full batch is delivered immediately', () => {
  const timers = fakeTimers();
  const out: number[][] = [];
  const b = new Batcher<number>((items) => out.push(items), 100, 3, timers);
  for (let i = 0; i < 7; i++) b.push(i);
  assert.deepEqual(out, [
    [0, 1, 2],
    [3, 4, 5],
  ]);
  assert.equal(b.size, 1);
  timers.tick();
  assert.deepEqual(out.at(-1), [6]);
});

void test('flush delivers now; clear and dispose drop pending items', () => {
  const timers = fakeTimers();
  const out: string[][] = [];
  const b = new Batcher<string>((items) => out.push(items), 100, 1000, timers);
  b.flush();
  assert.deepEqual(out, []);
  b.push('a');
  b.flush();
  assert.deepEqual(out, [['a']]);
  assert.equal(timers.scheduled(), 0);
  b.push('b');
  b.clear();
  timers.tick();
  assert.deepEqual(out, [['a']]);
  b.dispose();
  b.push('c');
  b.flush();
  assert.deepEqual(out, [['a']]);
});

void test('real timers deliver after the interval', async () => {
  const out: number[][] = [];
  const b = new Batcher<number>((items) => out.push(items), 10);
  b.push(1);
  await new Promise((r) => setTimeout(r, 40));
  assert.deepEqual(out, [[1]]);
  b.dispose();
});
