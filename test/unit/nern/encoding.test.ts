// Positional encoding: NERN.md's test vector, the layout of the 240 inputs, and that per-row encoding matches the
// whole-grid encoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeGrid,
  encodePoint,
  encodeRows,
  encodingWidth,
  gridOffsets,
  NERN_ENCODING,
} from '../../../src/core/nern/encoding';

function close(actual: ArrayLike<number>, expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  expected.forEach((e, i) => {
    assert.ok(Math.abs((actual[i] ?? NaN) - e) <= tol, `${what}[${i}] = ${actual[i]}, expected ${e}`);
  });
}

void test('encoding width is 240 for base 0.76 and 40 levels', () => {
  assert.equal(encodingWidth(), 240);
  assert.equal(encodingWidth({ base: 0.5, levels: 10 }), 60);
  assert.deepEqual(NERN_ENCODING, { base: 0.76, levels: 40 });
});

void test('NERN.md test vector p = (0/19, 1/16, 2/3)', () => {
  const e = encodePoint(0 / 19, 1 / 16, 2 / 3);
  assert.equal(e.length, 240);
  close(e.subarray(0, 4), [0, 1, 0, 1], 1e-6, 'e[0:4]');
  close(e.subarray(80, 84), [0.19509, 0.98079, 0.14867, 0.98889], 1e-5, 'e[80:84]');
  close(e.subarray(160, 164), [0.86603, -0.5, 0.99978, -0.02094], 1e-5, 'e[160:164]');
  close(e.subarray(238, 240), [4.7e-5, 1.0], 1e-6, 'e[238:240]');
  // Level i of component 2: sin/cos(2/3 · 0.76^i · π).
  for (const i of [0, 7, 39]) {
    const x = (2 / 3) * Math.pow(0.76, i) * Math.PI;
    close(e.subarray(160 + 2 * i, 162 + 2 * i), [Math.sin(x), Math.cos(x)], 1e-6, `level ${i}`);
  }
});

void test('grid encoding: layer-major, filter-major rows with coordinates (l/L, f/Cout, c/Cin)', () => {
  const layers = [
    { cout: 2, cin: 3 },
    { cout: 4, cin: 1 },
  ];
  assert.deepEqual(gridOffsets(layers), [0, 6, 10]);
  const grid = encodeGrid(layers);
  assert.equal(grid.length, 10 * 240);
  // Row 4 = layer 0, t = 4 → f = 1, c = 1.
  close(grid.subarray(4 * 240, 5 * 240), Array.from(encodePoint(0, 1 / 2, 1 / 3)), 1e-7, 'row 4');
  // Row 9 = layer 1, t = 3 → f = 3, c = 0.
  close(grid.subarray(9 * 240, 10 * 240), Array.from(encodePoint(1 / 2, 3 / 4, 0)), 1e-7, 'row 9');
  const rows = [9, 0, 4, 6];
  const some = encodeRows(layers, rows, new Float32Array(rows.length * 240));
  rows.forEach((r, i) => {
    close(
      some.subarray(i * 240, (i + 1) * 240),
      Array.from(grid.subarray(r * 240, (r + 1) * 240)),
      0,
      `encodeRows ${r}`,
    );
  });
  assert.throws(() => encodeRows(layers, [10], new Float32Array(240)), RangeError);
});
