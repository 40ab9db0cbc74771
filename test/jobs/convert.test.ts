// The convert job on the committed fixtures written by PyTorch, ONNX, TF.js, Keras, NumPy, safetensors and GGUF
// tools: inspect(convert(x)) equals inspect(x) (names, shapes, dtypes where the output holds them, statistics and
// histograms), decoded values are bit-identical, and a safetensors → safetensors conversion reproduces each tensor's
// bytes. An input that
// is the output, a bad input, or an undecodable tensor leaves no output.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from '../helpers/fixtures';
import { convertFile } from '../../src/core/jobs/convert';
import { inspectFile } from '../../src/core/jobs/inspect';
import { openCheckpoint } from '../../src/core/formats/registry';
import { BadInputError } from '../../src/core/io/errors';
import type { TensorEntry } from '../../src/core/tensors/tensor';
import type { TensorStatsDto } from '../../src/protocol/inspect';

const dir = mkdtempSync(join(tmpdir(), 'wl-convert-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const SOURCES = [
  'pytorch/resnet_tiny.pt',
  'pytorch/dtypes.pth',
  'pytorch/shared_storage.pt',
  'onnx/mixed.onnx',
  'models/resnet20_fmnist.onnx',
  'tfjs/layers/model.json',
  'keras/model.keras',
  'numpy/weights_compressed.npz',
  'safetensors/all_dtypes.safetensors',
  'safetensors/sharded-model.safetensors.index.json',
  'gguf/plain_types_v2.gguf',
];

/** All of a tensor's decoded values as float64. */
async function valuesOf(t: TensorEntry): Promise<Float64Array> {
  const out = new Float64Array(t.params);
  let at = 0;
  for await (const chunk of t.values()) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** True when `a` and `b` hold the same numbers bit for bit as float64 (NaN equals NaN, -0 differs from +0). */
function sameValues(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** Statistics equal, with floating-point moments (mean, std, l2) to 1e-12 relative. */
function assertCloseStats(
  actual: TensorStatsDto | undefined,
  expected: TensorStatsDto | undefined,
  name: string,
): void {
  assert.equal(actual === undefined, expected === undefined, name);
  if (actual === undefined || expected === undefined) return;
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), name);
  for (const key of Object.keys(expected) as (keyof TensorStatsDto)[]) {
    const want: number | null = expected[key];
    const got: number | null = actual[key];
    if (typeof want === 'number' && typeof got === 'number' && ['mean', 'std', 'l2'].includes(key))
      assert.ok(Math.abs(got - want) <= 1e-12 * Math.max(1, Math.abs(want)), `${name} ${key}: ${got} vs ${want}`);
    else assert.equal(got, want, `${name} ${key}`);
  }
}

for (const source of SOURCES) {
  for (const ext of ['safetensors', 'npz']) {
    void test(`${source} → .${ext}: inspect and values unchanged`, async () => {
      const input = join(FIXTURES, source);
      const output = join(dir, `${source.replace(/\//g, '_')}.${ext}`);
      const report = await convertFile(input, output, { skipUndecoded: true });
      const before = await inspectFile(input);
      const afterwards = await inspectFile(output);
      const changed = new Map(report.changed.map((c) => [c.name, c]));
      const skipped = new Set(report.skipped.map((s) => s.name));
      const kept = before.tensors.filter((t) => !skipped.has(t.name));
      assert.equal(report.tensors, kept.length);
      assert.ok(kept.length > 0);
      assert.deepEqual(
        afterwards.tensors.map((t) => t.name),
        kept.map((t) => t.name),
      );
      for (const [i, a] of kept.entries()) {
        const b = afterwards.tensors[i]!;
        assert.deepEqual(b.shape, a.shape, a.name);
        const change = changed.get(a.name);
        assert.equal(b.dtype, change === undefined ? a.dtype : change.to, a.name);
        if (change !== undefined) assert.equal(change.from, a.dtype);
        // A sparse or expanded source sums its stored values weighted, in another order: the moments agree to rounding.
        assertCloseStats(b.stats, a.stats, a.name);
        assert.deepEqual(b.histogram, a.histogram, a.name);
      }
      const src = await openCheckpoint(input);
      const out = await openCheckpoint(output);
      try {
        const byName = new Map(out.tensors.map((t) => [t.name, t]));
        for (const t of src.tensors) {
          if (skipped.has(t.name)) continue;
          const u = byName.get(t.name);
          assert.ok(u, t.name);
          assert.ok(sameValues(await valuesOf(t), await valuesOf(u)), `values of ${t.name}`);
        }
      } finally {
        await src.close();
        await out.close();
      }
    });
  }
}

void test('quantised sources are dequantised to F32 and listed as such', async () => {
  const tfjs = await convertFile(join(FIXTURES, 'tfjs/layers/model.json'), join(dir, 'tfjs.safetensors'));
  assert.ok(tfjs.changed.some((c) => c.from === 'uint8 (quantized)' && c.to === 'F32' && c.dequantized));
  const gguf = await convertFile(join(FIXTURES, 'gguf/tiny_llama.gguf'), join(dir, 'gguf.safetensors'), {
    skipUndecoded: true,
  });
  assert.ok(gguf.changed.some((c) => c.from === 'Q8_0' && c.to === 'F32' && c.dequantized));
  assert.ok(gguf.skipped.some((s) => s.dtype === 'Q6_K'));
});

void test('safetensors → safetensors keeps every tensor byte for byte', async () => {
  const input = join(FIXTURES, 'safetensors/all_dtypes.safetensors');
  const output = join(dir, 'copy.safetensors');
  await convertFile(input, output);
  const sections = (bytes: Buffer): Map<string, Buffer> => {
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<
      string,
      { data_offsets?: [number, number] }
    >;
    const out = new Map<string, Buffer>();
    for (const [name, h] of Object.entries(header))
      if (h.data_offsets) out.set(name, bytes.subarray(8 + n + h.data_offsets[0], 8 + n + h.data_offsets[1]));
    return out;
  };
  const a = sections(readFileSync(input));
  const b = sections(readFileSync(output));
  assert.equal(b.size, a.size);
  for (const [name, bytes] of a) assert.ok(bytes.equals(b.get(name)!), name);
});

void test('refuses to overwrite the input; a bad input or an undecodable tensor leaves no output', async () => {
  const copy = join(dir, 'in.safetensors');
  copyFileSync(join(FIXTURES, 'safetensors/tiny_cnn.safetensors'), copy);
  const original = readFileSync(copy);
  await assert.rejects(convertFile(copy, copy), BadInputError);
  await assert.rejects(convertFile(copy, join(dir, '.', 'in.safetensors')), BadInputError);
  assert.ok(readFileSync(copy).equals(original));
  const bad = join(dir, 'bad.pt');
  writeFileSync(bad, readFileSync(join(FIXTURES, 'pytorch/resnet_tiny.pt')).subarray(0, 900));
  await assert.rejects(convertFile(bad, join(dir, 'bad.safetensors')), BadInputError);
  await assert.rejects(
    convertFile(join(FIXTURES, 'gguf/tiny_llama.gguf'), join(dir, 'q6k.npz')),
    /Q6_K.*cannot be decoded/,
  );
  await assert.rejects(convertFile(copy, join(dir, 'out.bin')), /\.safetensors or \.npz/);
  const left = readdirSync(dir).filter((n) => /^(bad\.safetensors|q6k\.npz|out\.bin)$|\.tmp$/.test(n));
  assert.deepEqual(left, []);
  assert.equal(existsSync(join(dir, 'bad.safetensors')), false);
});
