// How often a compression re-predicts every grid row for its live per-layer errors: about 20 times a run for small
// models, and no more than a tenth of the training compute for large ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { liveEvaluationInterval } from '../../../src/core/jobs/compress';

void test('live evaluations: ~20 per run, ≥ 25 steps apart, and at most a tenth of the compute for a large grid', () => {
  // The project's ResNet-20 (29,696 grid rows, batch 4,096): the grid costs 7 % of 25 steps, so every 25 or steps/20.
  assert.equal(liveEvaluationInterval(500, 29_696, 4096), 25);
  assert.equal(liveEvaluationInterval(2000, 29_696, 4096), 100);
  // ResNet-50 with 1×1 convolutions as blocks (2,654,880 rows): one grid pass costs about 216 steps' forward passes,
  // so a live evaluation at most every 2,161 steps: none in a 500-step run, only the final one.
  assert.equal(liveEvaluationInterval(500, 2_654_880, 4096), 2161);
  // In every case the live passes stay within the share: rows per interval ≤ 0.1 · 3 · batch · interval.
  for (const rows of [100, 29_696, 500_000, 13_400_000]) {
    const every = liveEvaluationInterval(1000, rows, 4096);
    assert.ok(rows <= 0.1 * 3 * 4096 * every, `${rows} rows every ${every} steps`);
  }
});
