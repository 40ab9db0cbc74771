// The Reconstruction panel's detail cache: answers by (layer, filter), the worst-filter answer found under its filter,
// pending and failed requests, the size bound, and clamping of a typed filter number.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LayerDetailDto } from '../../../../src/protocol/compress';
import { clampFilter, DetailCache, detailKey } from '../../../../webview/lib/detailCache';

const detail = (name: string, index: number): LayerDetailDto => ({
  name,
  original: { edges: [0, 1], counts: [9] },
  reconstructed: { edges: [0, 1], counts: [9] },
  filter: { index, count: 8, kh: 3, kw: 3, original: [[index]], reconstructed: [[index]] },
});

void test('answers are cached per (layer, filter); the worst-filter answer is found under its index too', () => {
  const c = new DetailCache();
  assert.equal(c.get('a', 1), undefined);
  c.markPending('a', 1);
  assert.ok(c.isPending('a', 1));
  c.put('a', 1, detail('a', 1));
  assert.ok(!c.isPending('a', 1));
  assert.equal(c.get('a', 1)?.filter.index, 1);
  assert.equal(c.get('a', undefined), undefined, 'no worst-filter answer yet');
  c.markPending('a', undefined);
  c.put('a', undefined, detail('a', 5));
  assert.ok(!c.isPending('a', undefined));
  assert.equal(c.get('a', undefined)?.filter.index, 5);
  assert.equal(c.get('a', 5)?.filter.index, 5);
  assert.equal(c.get('b', 1), undefined);
  c.clear();
  assert.equal(c.size, 0);
  assert.equal(c.get('a', undefined), undefined);
});

void test('failures are remembered until cleared; the oldest answers go first past the limit', () => {
  const c = new DetailCache(2);
  c.markPending('a', 0);
  c.fail('a', 0, 'the source is missing');
  assert.ok(!c.isPending('a', 0));
  assert.equal(c.failure('a', 0), 'the source is missing');
  c.clearFailures();
  assert.equal(c.failure('a', 0), undefined);
  c.put('a', 0, detail('a', 0));
  c.put('a', 1, detail('a', 1));
  c.put('a', 2, detail('a', 2));
  assert.equal(c.size, 2);
  assert.equal(c.get('a', 0), undefined);
  assert.ok(c.get('a', 2));
  assert.notEqual(detailKey('a', 0), detailKey('a', undefined));
});

void test('a typed filter number is made whole and clamped to the layer', () => {
  assert.equal(clampFilter('3', 8), 3);
  assert.equal(clampFilter(' 12 ', 8), 7);
  assert.equal(clampFilter('-4', 8), 0);
  assert.equal(clampFilter('2.9', 8), 2);
  assert.equal(clampFilter('', 8), undefined);
  assert.equal(clampFilter('x', 8), undefined);
  assert.equal(clampFilter('500', undefined), 500);
  assert.equal(clampFilter('5', 0), 0);
});
