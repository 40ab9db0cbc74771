// Sizes typed into Compare methods… and `weight-lens sweep --sizes`: fractions or percentages, sorted and distinct;
// and the words the progress notification and the Budget panel use for each stage of a sweep.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeSweepStage, parseSizes } from '../../../src/protocol/sweep';

void test('parseSizes reads fractions and percentages, sorted and without repeats', () => {
  assert.deepEqual(parseSizes('0.4, 0.05 0.1,20%'), [0.05, 0.1, 0.2, 0.4]);
  assert.deepEqual(parseSizes('10%,0.1'), [0.1]);
  assert.deepEqual(parseSizes('1'), [1]);
});

void test('parseSizes refuses sizes outside (0, 1], words, and empty or overlong lists', () => {
  for (const bad of ['', '0', '1.5', '-0.1', '150%', 'half', '0.1,,x', Array(13).fill('0.1').join(',')])
    assert.equal(parseSizes(bad), undefined, bad);
});

void test('describeSweepStage names the stage, the method and the size in percent', () => {
  const at = { run: 1, runs: 4, fraction: 0.5 } as const;
  // The original is scored before any run: its method field is only the first method asked for.
  assert.equal(describeSweepStage({ ...at, run: 0, method: 'nern', stage: 'original' }), 'scoring the original');
  assert.equal(describeSweepStage({ ...at, method: 'nern', size: 0.1, stage: 'compress' }), 'compressing nern at 10 %');
  assert.equal(
    describeSweepStage({ ...at, method: 'prune', size: 0.125, stage: 'evaluate' }),
    'scoring prune at 12.5 %',
  );
  assert.equal(describeSweepStage({ ...at, method: 'int8', stage: 'evaluate' }), 'scoring int8');
  assert.equal(describeSweepStage({ ...at, method: 'nern', size: 0.4, stage: 'distill' }), 'distilling nern at 40 %');
});
