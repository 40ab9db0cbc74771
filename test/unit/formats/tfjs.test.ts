// The TF.js reader on fixtures written by test/fixtures/make/tfjs.py (our writer, TF.js's format: shards, uint8/
// uint16/float16 quantisation, string and complex weights), on the published ESRGAN-slim model, and on broken
// manifests and shards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openWith, type ManifestFile, hostileCases, readEveryTensor } from '../../helpers/fixtures';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tfjsFormat } from '../../../src/core/formats/tfjs';
import type { Checkpoint } from '../../../src/core/formats/types';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { readTensorValues } from '../../../src/core/tensors/tensor';

const FIXTURES = join(__dirname, '..', '..', 'fixtures');

const openFile = (path: string): Promise<Checkpoint> => openWith(tfjsFormat, path);

function closeTo(actual: number, expected: number, what: string): void {
  const tol = 1e-6 * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: read ${actual}, expected ${expected}`);
}

function manifest(group: string): ManifestFile[] {
  const parsed = JSON.parse(readFileSync(join(FIXTURES, group, 'manifest.json'), 'utf8')) as { files: ManifestFile[] };
  return parsed.files.filter((f) => f.format === 'tfjs');
}

for (const group of ['tfjs', 'published']) {
  for (const file of manifest(group)) {
    void test(`${group}/${file.file} matches its manifest`, async () => {
      const c = await openFile(join(FIXTURES, group, file.file));
      try {
        assert.equal(c.format, 'tfjs');
        assert.deepEqual(
          c.tensors.map((t) => t.name),
          file.entries.map((e) => e.name),
        );
        for (const [i, expected] of file.entries.entries()) {
          const t = c.tensors[i]!;
          assert.equal(t.dtype, expected.dtype, `${t.name} dtype`);
          assert.deepEqual(t.shape, expected.shape, `${t.name} shape`);
          if (expected.sum === undefined) {
            assert.ok(t.notDecodedReason, `${t.name} is listed as not decoded`);
            continue;
          }
          // Small chunks exercise reads that straddle shard boundaries.
          let sum = 0;
          let squares = 0;
          const first: number[] = [];
          for await (const chunk of t.values({ maxElements: 37 })) {
            for (const v of chunk) {
              sum += v;
              squares += v * v;
              if (first.length < 4) first.push(v);
            }
          }
          closeTo(sum, expected.sum, `${t.name} sum`);
          closeTo(squares, expected.sumSquares!, `${t.name} sum of squares`);
          expected.first!.forEach((v, k) => {
            closeTo(first[k]!, v, `${t.name}[${k}]`);
          });
        }
      } finally {
        await c.close();
      }
    });
  }
}

void test('LayersModel metadata, quantisation notes and sizes', async () => {
  const c = await openFile(join(FIXTURES, 'tfjs', 'layers', 'model.json'));
  try {
    assert.equal(c.description, 'TF.js LayersModel (Sequential, 3 shards)');
    assert.equal(c.metadata.format, 'layers-model');
    assert.equal(c.metadata['model class'], 'Sequential');
    assert.equal(c.metadata.layers, 5);
    assert.equal(c.metadata['weight groups'], 2);
    assert.equal(c.metadata['quantized weights'], 3);
    assert.match(String(c.metadata.convertedBy), /tfjs\.py/);
    const byName = new Map(c.tensors.map((t) => [t.name, t]));
    const q8 = byName.get('conv2/kernel')!;
    assert.equal(q8.dtype, 'uint8 (quantized)');
    assert.equal(q8.bytes, 3 * 3 * 8 * 8);
    assert.match(q8.note!, /uint8-quantised: value = q × [\d.e-]+ \+ -?[\d.e-]+; original dtype float32/);
    assert.equal(byName.get('conv2/bias')!.bytes, 16);
    assert.equal(byName.get('dense/kernel')!.dtype, 'float16 (quantized)');
    assert.equal(byName.get('dense/kernel')!.bytes, 160);
    assert.equal(byName.get('conv1/kernel')!.bytes, 864);
  } finally {
    await c.close();
  }
});

void test('GraphModel metadata and the published ESRGAN model', async () => {
  const g = await openFile(join(FIXTURES, 'tfjs', 'graph', 'model.json'));
  try {
    assert.equal(g.description, 'TF.js GraphModel (1 shard)');
    assert.equal(g.metadata.nodes, 5);
    assert.equal(g.metadata['op.Const'], 2);
    assert.equal(g.metadata['user.note'], 'fixture');
    const table = g.tensors.find((t) => t.name.endsWith('/table'))!;
    assert.equal(table.dtype, 'string');
    assert.equal(table.bytes, 4 * 4 + 5 + 4 + 10 + 0);
    await assert.rejects(readTensorValues(table), CheckpointFormatError);
    const qids = g.tensors.find((t) => t.name.endsWith('/qids'))!;
    assert.ok(
      (await readTensorValues(qids)).every((v) => Number.isInteger(v)),
      'int32 weights are rounded after dequantising',
    );
  } finally {
    await g.close();
  }
  const e = await openFile(join(FIXTURES, 'published', 'esrgan-slim', 'x2', 'model.json'));
  try {
    assert.equal(e.description, 'TF.js LayersModel (Functional, 1 shard)');
    assert.equal(e.metadata.generatedBy, 'keras v2.10.0');
    assert.equal(e.metadata.convertedBy, 'TensorFlow.js Converter v1.2.6');
    assert.equal(e.metadata['model name'], 'generator');
    assert.equal(typeof e.metadata.layers, 'number');
    assert.equal(
      e.tensors.reduce((s, t) => s + t.params, 0),
      222075,
    );
  } finally {
    await e.close();
  }
});

void test('the hostile TF.js corpus fails with the expected messages', async () => {
  const dir = join(FIXTURES, 'hostile', 'tfjs');
  const cases = hostileCases('tfjs');
  for (const c of cases) {
    const path = join(dir, c.file);
    if (c.file.endsWith('package.json')) {
      // No reader claims it: the registry reports it as unrecognised. The TF.js reader must not sniff it.
      assert.equal(tfjsFormat.sniff(readFileSync(path), 'package.json'), 0);
      await assert.rejects(openFile(path), /is not a TF\.js model\.json or weights manifest/);
      continue;
    }
    assert.ok(tfjsFormat.sniff(readFileSync(path), 'model.json') > 0.5, `${c.file} is sniffed as TF.js`);
    await assert.rejects(readEveryTensor(openFile(path)), (error: unknown) => {
      assert.ok(error instanceof CheckpointFormatError, `${c.file}: ${String(error)}`);
      assert.match(error.message, new RegExp(c.message, 'i'), c.file);
      assert.ok(!error.message.includes('\n'));
      return true;
    });
  }
});

void test('malformed manifests fail with one clear sentence', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tfjs-'));
  try {
    writeFileSync(join(dir, 's.bin'), new Uint8Array(64));
    const cases: [unknown, RegExp][] = [
      [{ modelTopology: {}, weightsManifest: {} }, /"weightsManifest" is not a list/],
      [
        { modelTopology: {}, weightsManifest: [{ paths: ['s.bin'] }] },
        /weight group 1 lacks its "paths" and "weights"/,
      ],
      [{ modelTopology: {}, weightsManifest: [{ paths: [7], weights: [] }] }, /invalid shard path 7/],
      [
        {
          modelTopology: {},
          weightsManifest: [{ paths: ['s.bin'], weights: [{ name: 'w', shape: ['a'], dtype: 'float32' }] }],
        },
        /shape entry "a"/,
      ],
      [
        {
          modelTopology: {},
          weightsManifest: [{ paths: ['s.bin'], weights: [{ name: 'w', shape: [-1], dtype: 'float32' }] }],
        },
        /invalid dimension -1/,
      ],
      [
        {
          modelTopology: {},
          weightsManifest: [{ paths: ['s.bin'], weights: [{ name: 'w', shape: [2], dtype: 'int64' }] }],
        },
        /dtype "int64", which TF\.js weights do not use/,
      ],
      [
        {
          modelTopology: {},
          weightsManifest: [
            {
              paths: ['s.bin'],
              weights: [{ name: 'w', shape: [2], dtype: 'float32', quantization: { dtype: 'uint8' } }],
            },
          ],
        },
        /lacks a finite "scale" and "min"/,
      ],
      [
        {
          modelTopology: {},
          weightsManifest: [
            {
              paths: ['s.bin'],
              weights: [{ name: 'w', shape: [2], dtype: 'int32', quantization: { dtype: 'float16' } }],
            },
          ],
        },
        /only for float32/,
      ],
      [
        {
          modelTopology: {},
          weightsManifest: [{ paths: ['s.bin'], weights: [{ name: 'w', shape: [20], dtype: 'float32' }] }],
        },
        /needs 80 B \(80 bytes\) but its shard file "s\.bin" holds only 64 B/,
      ],
      [
        {
          modelTopology: {},
          weightsManifest: [{ paths: ['s.bin'], weights: [{ name: 's', shape: [100], dtype: 'string' }] }],
        },
        /string weight "s" runs past the end/,
      ],
      [
        { modelTopology: {}, weightsManifest: [{ paths: ['/etc/passwd'], weights: [] }] },
        /weight shard "\/etc\/passwd"/,
      ],
      [{ hello: 1 }, /not a TF\.js model\.json or weights manifest/],
      [[1, 2], /not a TF\.js model\.json or weights manifest/],
    ];
    for (const [doc, pattern] of cases) {
      const p = join(dir, 'model.json');
      writeFileSync(p, JSON.stringify(doc));
      await assert.rejects(openFile(p), (error: unknown) => {
        assert.ok(error instanceof CheckpointFormatError, String(error));
        assert.match(error.message, pattern);
        return true;
      });
    }
    // Deep nesting is a clear error too, not a stack overflow.
    writeFileSync(join(dir, 'model.json'), `{"modelTopology": ${'['.repeat(200_000)}${']'.repeat(200_000)}}`);
    await assert.rejects(openFile(join(dir, 'model.json')), CheckpointFormatError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('duplicate names are disambiguated and empty shards are tolerated', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tfjs-'));
  try {
    writeFileSync(join(dir, 'a.bin'), new Uint8Array(new Float32Array([1, 2]).buffer));
    writeFileSync(join(dir, 'empty.bin'), new Uint8Array(0));
    writeFileSync(join(dir, 'b.bin'), new Uint8Array(new Float32Array([3, 4]).buffer));
    writeFileSync(
      join(dir, 'weights_manifest.json'),
      JSON.stringify([
        {
          paths: ['a.bin', 'empty.bin', 'b.bin'],
          weights: [
            { name: 'w', shape: [1], dtype: 'float32' },
            { name: 'w', shape: [3], dtype: 'float32' },
          ],
        },
      ]),
    );
    const c = await openFile(join(dir, 'weights_manifest.json'));
    assert.equal(c.description, 'TF.js weights manifest (3 shards)');
    assert.deepEqual(
      c.tensors.map((t) => t.name),
      ['w', 'w#2'],
    );
    assert.deepEqual([...(await readTensorValues(c.tensors[1]!))], [2, 3, 4]);
    await c.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('sniff claims TF.js JSON only', () => {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  assert.equal(tfjsFormat.sniff(readFileSync(join(FIXTURES, 'tfjs', 'layers', 'model.json')), 'model.json'), 0.95);
  assert.equal(
    tfjsFormat.sniff(
      readFileSync(join(FIXTURES, 'tfjs', 'manifest-only', 'weights_manifest.json')),
      'weights_manifest.json',
    ),
    0.8,
  );
  assert.equal(tfjsFormat.sniff(enc('\uFEFF  {"weightsManifest": []}'), 'x.json'), 0.9);
  assert.equal(tfjsFormat.sniff(readFileSync(join(__dirname, '..', '..', '..', 'package.json')), 'package.json'), 0);
  assert.equal(tfjsFormat.sniff(readFileSync(join(__dirname, '..', '..', '..', 'tsconfig.json')), 'tsconfig.json'), 0);
  assert.equal(tfjsFormat.sniff(enc('[1, 2, 3]'), 'a.json'), 0);
  assert.equal(tfjsFormat.sniff(enc('{"weight_map": {}}'), 'model.safetensors.index.json'), 0);
  assert.equal(tfjsFormat.sniff(Uint8Array.from([0x08, 0x07, 0x12]), 'model.onnx'), 0);
});

test('40,000 weights with one name get unique names in linear time', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tfjs-dup-'));
  try {
    const weights = Array.from({ length: 40_000 }, () => ({ name: 'w', shape: [], dtype: 'float32' }));
    writeFileSync(
      join(dir, 'model.json'),
      JSON.stringify({ format: 'layers-model', modelTopology: {}, weightsManifest: [{ paths: ['w.bin'], weights }] }),
    );
    writeFileSync(join(dir, 'w.bin'), new Uint8Array(4 * 40_000));
    const c = await openFile(join(dir, 'model.json'));
    try {
      assert.equal(new Set(c.tensors.map((t) => t.name)).size, 40_000);
      assert.deepEqual(
        c.tensors.slice(0, 3).map((t) => t.name),
        ['w', 'w#2', 'w#3'],
      );
      assert.equal(c.tensors[39_999]?.name, 'w#40000');
    } finally {
      await c.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
