// Tests of the GGUF reader against files written by test/fixtures/make/gguf.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openWith, contextFor, type ManifestFile, hostileCases } from '../../helpers/fixtures';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MemoryByteSource } from '../../../src/core/io/byteSource';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import type { Checkpoint } from '../../../src/core/formats/types';
import { GGML_TYPES, ggufFormat } from '../../../src/core/formats/gguf';

const FIXTURES = join(__dirname, '..', '..', 'fixtures', 'gguf');
const HOSTILE = join(__dirname, '..', '..', 'fixtures', 'hostile', 'gguf');

const context = contextFor;

const openPath = (path: string): Promise<Checkpoint> => openWith(ggufFormat, path);

function near(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

void test('reads every fixture in the manifest: names, types, shapes (outermost first), values', async () => {
  const manifest = JSON.parse(await readFile(join(FIXTURES, 'manifest.json'), 'utf8')) as { files: ManifestFile[] };
  for (const file of manifest.files) {
    const checkpoint = await openPath(join(FIXTURES, file.file));
    try {
      assert.equal(checkpoint.tensors.length, file.tensors);
      for (const [i, expected] of file.entries.entries()) {
        const tensor = checkpoint.tensors[i]!;
        const label = `${file.file}: ${expected.name}`;
        assert.equal(tensor.name, expected.name, label);
        assert.equal(tensor.dtype, expected.dtype, label);
        assert.deepEqual(tensor.shape, expected.shape, label);
        if (expected.sum === undefined) {
          assert.match(tensor.notDecodedReason ?? '', /not decoded/, label);
          continue;
        }
        const values: number[] = [];
        for await (const chunk of tensor.values({ maxElements: 100 })) {
          assert.ok(chunk.length <= 100, label);
          values.push(...chunk);
        }
        assert.equal(values.length, tensor.params, label);
        let sum = 0;
        let squares = 0;
        for (const v of values) {
          sum += v;
          squares += v * v;
        }
        assert.ok(near(sum, expected.sum), `${label}: sum ${sum} vs ${expected.sum}`);
        assert.ok(near(squares, expected.sumSquares!), `${label}: sumSquares`);
        assert.ok(
          values.slice(0, 4).every((v, k) => near(v, expected.first![k]!)),
          `${label}: first`,
        );
      }
    } finally {
      await checkpoint.close();
    }
  }
});

void test('bytes follow the ggml block sizes, and Q6_K is listed without decoding', async () => {
  const checkpoint = await openPath(join(FIXTURES, 'tiny_llama.gguf'));
  const byName = new Map(checkpoint.tensors.map((t) => [t.name, t]));
  assert.equal(byName.get('token_embd.weight')?.bytes, 64 * 32 * 4);
  assert.equal(byName.get('blk.0.attn_q.weight')?.bytes, 32 * 32 * 2);
  assert.equal(byName.get('blk.0.attn_k.weight')?.bytes, ((32 * 32) / 32) * 34);
  assert.equal(byName.get('blk.0.attn_v.weight')?.bytes, ((32 * 32) / 32) * 18);
  const q6 = byName.get('blk.0.ffn_q6k.weight')!;
  assert.equal(q6.dtype, 'Q6_K');
  assert.deepEqual(q6.shape, [2, 256]);
  assert.equal(q6.bytes, 2 * 210);
  assert.equal(q6.notDecodedReason, 'GGUF type Q6_K is not decoded');
  await assert.rejects(async () => {
    for await (const _ of q6.values()) {
      /* never reached */
    }
  }, /not decoded/);
  await checkpoint.close();
});

void test('metadata: scalars of every type, arrays summarised, long strings elided', async () => {
  const checkpoint = await openPath(join(FIXTURES, 'tiny_llama.gguf'));
  const m = checkpoint.metadata;
  assert.equal(checkpoint.description, 'GGUF v3');
  assert.equal(m['general.architecture'], 'llama');
  assert.equal(m['llama.context_length'], 128);
  assert.equal(m['llama.use_parallel_residual'], true);
  assert.equal(m['test.i8'], -5);
  assert.equal(m['test.u16'], 65000);
  assert.equal(m['test.i16'], -300);
  assert.equal(m['test.i32'], -70000);
  assert.equal(m['test.u64'], 2 ** 40 + 3);
  assert.equal(m['test.i64'], -(2 ** 50));
  assert.equal(m['test.f64'], 2.718281828459045);
  assert.equal(m['test.u8'], 200);
  assert.ok(Math.abs(Number(m['llama.attention.layer_norm_rms_epsilon']) - 1e-5) < 1e-10);
  assert.equal(m['test.short_array'], 'array[i32; 3] [1, -2, 3]');
  assert.match(String(m['tokenizer.ggml.tokens']), /^array\[string; 64\] \["<unk>", "<s>", "<\/s>"/);
  assert.equal(m['tokenizer.ggml.scores'], 'array[f32; 64]');
  assert.equal(m['test.nested'], 'array[array; 2]');
  const description = String(m['general.description']);
  assert.ok(description.length < 1100 && description.includes('3000 bytes'));
  assert.equal(m['gguf.alignment'], 32);
  await checkpoint.close();
  const v2 = await openPath(join(FIXTURES, 'plain_types_v2.gguf'));
  assert.equal(v2.description, 'GGUF v2');
  assert.equal(v2.metadata['gguf.alignment'], 64);
  await v2.close();
});

void test('every hostile GGUF fails with a clear CheckpointFormatError, quickly and without large allocations', async () => {
  const manifest = { cases: hostileCases('gguf') };
  assert.ok(manifest.cases.length >= 10);
  for (const c of manifest.cases) {
    const started = Date.now();
    const before = process.memoryUsage().arrayBuffers;
    await assert.rejects(openPath(join(HOSTILE, c.file)), (error: unknown) => {
      assert.ok(error instanceof CheckpointFormatError, `${c.file}: ${String(error)}`);
      // The file's own name must not be what satisfies the expected message.
      assert.match(error.message.split(c.file).join('<file>'), new RegExp(c.message), c.file);
      return true;
    });
    assert.ok(Date.now() - started < 2000, c.file);
    assert.ok(process.memoryUsage().arrayBuffers - before < 16 * 1024 * 1024, c.file);
  }
});

void test('sniff: magic is certain, the extension alone is a weak claim', () => {
  assert.equal(ggufFormat.sniff(Buffer.from('GGUF\x03\x00\x00\x00'), 'x.bin'), 1);
  assert.ok(ggufFormat.sniff(Buffer.from('nope'), 'x.gguf') < 0.5);
  assert.equal(ggufFormat.sniff(Buffer.from('nope'), 'x.bin'), 0);
  assert.equal(ggufFormat.sniff(new Uint8Array(0), ''), 0);
});

void test('the type table has the block geometry of ggml', () => {
  const expect: Record<string, [number, number]> = {
    F32: [1, 4],
    F16: [1, 2],
    BF16: [1, 2],
    Q4_0: [32, 18],
    Q4_1: [32, 20],
    Q5_0: [32, 22],
    Q5_1: [32, 24],
    Q8_0: [32, 34],
    Q8_1: [32, 36],
    Q2_K: [256, 84],
    Q3_K: [256, 110],
    Q4_K: [256, 144],
    Q5_K: [256, 176],
    Q6_K: [256, 210],
    Q8_K: [256, 292],
    IQ2_XXS: [256, 66],
    IQ2_XS: [256, 74],
    IQ3_XXS: [256, 98],
    IQ1_S: [256, 50],
    IQ4_NL: [32, 18],
    IQ3_S: [256, 110],
    IQ2_S: [256, 82],
    IQ4_XS: [256, 136],
    IQ1_M: [256, 56],
    TQ1_0: [256, 54],
    TQ2_0: [256, 66],
    MXFP4: [32, 17],
  };
  const byName = new Map([...GGML_TYPES.values()].map((t) => [t.name, t]));
  for (const [name, [elements, bytes]] of Object.entries(expect)) {
    assert.equal(byName.get(name)?.blockElements, elements, name);
    assert.equal(byName.get(name)?.blockBytes, bytes, name);
  }
});

void test('a hand-made Q8_0/Q4_0 file decodes exactly, and cancellation stops streaming', async () => {
  // One Q8_0 block (d = 0.5, q = -16..15) and one Q4_0 block (d = 0.25, nibbles 0..15 low / 15..0 high).
  const parts: Buffer[] = [];
  const u32 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  const u64 = (v: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    return b;
  };
  const str = (s: string): Buffer => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)]);
  parts.push(Buffer.from('GGUF'), u32(3), u64(2), u64(0));
  parts.push(str('q8'), u32(1), u64(32), u32(8), u64(0));
  parts.push(str('q4'), u32(2), u64(32), u64(1), u32(2), u64(64));
  let header = Buffer.concat(parts);
  header = Buffer.concat([header, Buffer.alloc((32 - (header.length % 32)) % 32)]);
  const q8 = Buffer.alloc(64);
  q8.writeUInt16LE(0x3800, 0); // 0.5 in f16
  for (let j = 0; j < 32; j++) q8.writeInt8(j - 16, 2 + j);
  const q4 = Buffer.alloc(18);
  q4.writeUInt16LE(0x3400, 0); // 0.25 in f16
  for (let j = 0; j < 16; j++) q4[2 + j] = j | ((15 - j) << 4);
  const file = Buffer.concat([header, q8, q4]);
  const checkpoint = await ggufFormat.open(new MemoryByteSource(file, 'hand.gguf'), context('hand.gguf'));
  const [a, b] = checkpoint.tensors;
  assert.deepEqual(b!.shape, [1, 32]);
  const values = async (t: typeof a): Promise<number[]> => {
    const out: number[] = [];
    for await (const chunk of t!.values()) out.push(...chunk);
    return out;
  };
  assert.deepEqual(
    await values(a),
    Array.from({ length: 32 }, (_, j) => (j - 16) * 0.5),
  );
  assert.deepEqual(await values(b), [
    ...Array.from({ length: 16 }, (_, j) => (j - 8) * 0.25),
    ...Array.from({ length: 16 }, (_, j) => (7 - j) * 0.25),
  ]);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(async () => {
    for await (const _ of a!.values({ signal: controller.signal })) {
      /* cancelled before the first chunk */
    }
  }, /cancelled/);
});
