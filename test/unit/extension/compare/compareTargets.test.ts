// "Compare With…" argument handling: the Explorer's (uri, uris[]) with one, two or more files selected, the editor
// title's single resource, and the palette's nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareTargets } from '../../../../src/extension/compare/compareTargets';

class FakeUri {
  constructor(readonly path: string) {}
}
const isUri = (x: unknown): x is FakeUri => x instanceof FakeUri;
const a = new FakeUri('/w/a.pt');
const b = new FakeUri('/w/b.safetensors');
const c = new FakeUri('/w/c.onnx');

void test('two selected files are compared in selection order', () => {
  assert.deepEqual(compareTargets(b, [a, b], isUri), { kind: 'both', a, b });
});

void test('one file (Explorer with one selected, or the editor title) asks for B', () => {
  assert.deepEqual(compareTargets(a, [a], isUri), { kind: 'askB', a });
  assert.deepEqual(compareTargets(a, undefined, isUri), { kind: 'askB', a });
  assert.deepEqual(compareTargets(undefined, [c], isUri), { kind: 'askB', a: c });
});

void test('the palette asks for both; more than two files is refused', () => {
  assert.deepEqual(compareTargets(undefined, undefined, isUri), { kind: 'askBoth' });
  assert.deepEqual(compareTargets('x', [1, 'y'], isUri), { kind: 'askBoth' });
  assert.deepEqual(compareTargets(a, [a, b, c], isUri), { kind: 'tooMany', count: 3 });
});
