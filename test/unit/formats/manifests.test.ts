// Every committed fixture (written by PyTorch, NumPy, h5py, ONNX, or a published model) is opened through the
// format registry and compared with the manifest its generating tool wrote: format, tensor count, names, dtypes,
// shapes, and value sums/first values decoded from the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openCheckpoint } from '../../../src/core/formats/registry';
import { goodFixtures } from '../../helpers/fixtures';

const fixtures = goodFixtures();

test('there are fixtures for every format', () => {
  const formats = new Set(fixtures.map((f) => f.format));
  for (const f of ['safetensors', 'pytorch', 'onnx', 'tfjs', 'keras', 'numpy', 'gguf'])
    assert.ok(formats.has(f), `no fixture of format ${f}`);
});

function closeTo(actual: number, expected: number, what: string): void {
  const tol = 1e-5 * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: read ${actual}, manifest says ${expected}`);
}

for (const fixture of fixtures) {
  test(`${fixture.group}/${fixture.file} matches its manifest`, async () => {
    const checkpoint = await openCheckpoint(fixture.path);
    try {
      assert.equal(checkpoint.format, fixture.format);
      assert.equal(checkpoint.tensors.length, fixture.tensors, 'tensor count');
      const byName = new Map(checkpoint.tensors.map((t) => [t.name, t]));
      for (const expected of fixture.entries) {
        const tensor = byName.get(expected.name);
        assert.ok(tensor, `tensor ${expected.name} is listed`);
        assert.equal(tensor.dtype, expected.dtype, `${expected.name} dtype`);
        assert.deepEqual([...tensor.shape], expected.shape, `${expected.name} shape`);
        if (expected.sum === undefined) continue;
        let sum = 0;
        let sumSquares = 0;
        const first: number[] = [];
        let count = 0;
        for await (const chunk of tensor.values({ maxElements: 1000 })) {
          for (const v of chunk) {
            sum += v;
            sumSquares += v * v;
            if (first.length < 4) first.push(v);
          }
          count += chunk.length;
        }
        assert.equal(count, tensor.params, `${expected.name} value count`);
        closeTo(sum, expected.sum, `${expected.name} sum`);
        closeTo(sumSquares, expected.sumSquares ?? NaN, `${expected.name} sum of squares`);
        (expected.first ?? []).forEach((v, i) => {
          closeTo(first[i] ?? NaN, v, `${expected.name}[${i}]`);
        });
      }
    } finally {
      await checkpoint.close();
    }
  });
}
