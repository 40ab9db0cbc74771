// Texts about an evaluation that the CLI and the Reconstruction panel share (src/protocol/evaluate.ts): the weights
// bound from an artifact are counted in tensors, and said so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundTensorsText } from '../../../src/protocol/evaluate';

void test('bound weights are counted as tensors, not as weights', () => {
  assert.equal(
    boundTensorsText({ boundWeights: 97, unmatchedWeights: 3 }, 'the artifact'),
    "97 weight tensors came from the artifact, 3 kept the model's values",
  );
  assert.equal(boundTensorsText({ boundWeights: 1, unmatchedWeights: 0 }, 'r.pt'), '1 weight tensor came from r.pt');
  assert.equal(boundTensorsText({}, 'r.pt'), '');
});
