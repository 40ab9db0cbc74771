// The Reconstruction panel's event folding (src/protocol/panels.ts): the whole-grid prediction's progress is held
// while it runs and dropped when training resumes or the run is done.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyReconstructionEvent, type ReconstructionSnapshot } from '../../../src/protocol/panels';

void test('compress/reconstructing is shown until training resumes or the run is done', () => {
  const s: ReconstructionSnapshot = { source: '/m.pt', status: 'running', loss: [], details: [] };
  applyReconstructionEvent(s, { kind: 'compress/reconstructing', done: 8192, total: 20_000 });
  assert.deepEqual(s.reconstructing, { done: 8192, total: 20_000 });
  const progress = { step: 10, steps: 20, round: 1, loss: 0.5, lr: 1e-3, stepsPerSecond: 3, backend: 'wasm' };
  applyReconstructionEvent(s, { kind: 'compress/progress', progress });
  assert.equal(s.reconstructing, undefined);
  applyReconstructionEvent(s, { kind: 'compress/reconstructing', done: 20_000, total: 20_000 });
  assert.deepEqual(s.reconstructing, { done: 20_000, total: 20_000 });
});
