// Sizes typed into Compare methods… and `weight-lens sweep --sizes`: fractions or percentages, sorted and distinct.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSizes } from '../../../src/protocol/sweep';

void test('parseSizes reads fractions and percentages, sorted and without repeats', () => {
  assert.deepEqual(parseSizes('0.4, 0.05 0.1,20%'), [0.05, 0.1, 0.2, 0.4]);
  assert.deepEqual(parseSizes('10%,0.1'), [0.1]);
  assert.deepEqual(parseSizes('1'), [1]);
});

void test('parseSizes refuses sizes outside (0, 1], words, and empty or overlong lists', () => {
  for (const bad of ['', '0', '1.5', '-0.1', '150%', 'half', '0.1,,x', Array(13).fill('0.1').join(',')])
    assert.equal(parseSizes(bad), undefined, bad);
});
