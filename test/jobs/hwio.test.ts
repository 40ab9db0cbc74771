// TensorFlow.js / Keras convolutions ([kh, kw, C_in, C_out], 'hwio'): the tile transposes them to the predictor's
// [C_out, C_in, k, k] and back exactly; planning a TF.js checkpoint (ESRGAN-slim) represents its 3×3 and 1×1 convs;
// compress → decompress keeps every name, shape, dtype and the HWIO value order; artifacts from before layouts
// existed (conv tiles without `layout`) still read as 'oihw'.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { CompressOptionsDto } from '../../src/protocol/compress';
import {
  compressCheckpoint,
  DEFAULT_COMPRESS_OPTIONS,
  ensureBackend,
  planCompression,
} from '../../src/core/jobs/compress';
import { openCheckpoint } from '../../src/core/formats/registry';
import { readArtifact } from '../../src/core/nern/artifact';
import { classifyTensor } from '../../src/core/nern/budget';
import { reconstructLayers } from '../../src/core/nern/kernelMap';
import {
  convLayoutFor,
  fromKernels,
  hwioToOihw,
  kernelShape,
  oihwToHwio,
  tileFor,
  tileMatches,
  toKernels,
  type TileSpec,
} from '../../src/core/nern/tiling';
import { readTensorValues } from '../../src/core/tensors/tensor';
import { FIXTURES } from '../helpers/fixtures';

import { layerDetail } from '../../src/core/nern/layerDetail';
import { decompressArtifact } from '../../src/core/jobs/decompress';
const ESRGAN = join(FIXTURES, 'published', 'esrgan-slim', 'x2', 'model.json');
const RESNET = join(FIXTURES, 'pytorch', 'resnet_tiny.pt');
const FAST: CompressOptionsDto = {
  ...DEFAULT_COMPRESS_OPTIONS,
  budget: { kind: 'hidden', hidden: 16 },
  steps: 20,
  backend: 'wasm',
};
let dir = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wl-hwio-'));
  await ensureBackend('wasm');
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Deterministic pseudo-random floats in [-1, 1). */
function noise(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

void test('convLayoutFor: TF.js and Keras kernels are HWIO, every other format OIHW', () => {
  assert.equal(convLayoutFor('tfjs'), 'hwio');
  assert.equal(convLayoutFor('keras'), 'hwio');
  for (const f of ['pytorch', 'onnx', 'safetensors', 'numpy', 'gguf'] as const) assert.equal(convLayoutFor(f), 'oihw');
});

void test('tileFor / kernelShape / tileMatches with the HWIO layout', () => {
  assert.deepEqual(tileFor([3, 3, 64, 32], 'hwio'), { kind: 'conv', k: 3, layout: 'hwio' });
  assert.deepEqual(tileFor([1, 1, 128, 64], 'hwio'), { kind: 'conv', k: 1, layout: 'hwio' });
  assert.deepEqual(
    tileFor([3, 3, 16, 1], 'hwio'),
    { kind: 'conv', k: 3, layout: 'hwio' },
    'a depthwise kernel is C_out = 1',
  );
  assert.deepEqual(tileFor([5, 5, 64, 64], 'hwio'), { kind: 'tiled', rows: 5, cols: 20480 });
  assert.deepEqual(
    tileFor([64, 64, 3, 3], 'hwio'),
    { kind: 'tiled', rows: 64, cols: 576 },
    'OIHW-looking shapes are not convs under HWIO',
  );
  assert.deepEqual(tileFor([3, 3, 64, 32]), { kind: 'tiled', rows: 3, cols: 6144 }, 'the default layout stays OIHW');
  assert.deepEqual(kernelShape({ kind: 'conv', k: 3, layout: 'hwio' }, [3, 3, 64, 32]), [32, 64, 3, 3]);
  assert.deepEqual(kernelShape({ kind: 'conv', k: 1, layout: 'hwio' }, [1, 1, 128, 64]), [64, 128, 1, 1]);
  assert.ok(tileMatches({ kind: 'conv', k: 3, layout: 'hwio' }, [3, 3, 64, 32], 'hwio'));
  assert.ok(!tileMatches({ kind: 'conv', k: 3, layout: 'oihw' }, [3, 3, 64, 32], 'hwio'));
  assert.ok(!tileMatches({ kind: 'conv', k: 3, layout: 'hwio' }, [64, 32, 3, 3], 'hwio'));
  assert.ok(!tileMatches({ kind: 'conv', k: 1, layout: 'hwio' }, [3, 3, 64, 32], 'hwio'));
  assert.ok(
    !tileMatches({ kind: 'conv', k: 3, layout: 'hwio' }, [3, 3, 64, 32]),
    'an OIHW source cannot claim HWIO convs',
  );
  // Artifacts of TF.js sources written before layouts tiled HWIO convs as plain matrices: still accepted.
  assert.ok(tileMatches({ kind: 'tiled', rows: 3, cols: 6144 }, [3, 3, 64, 32], 'hwio'));
  assert.ok(tileMatches({ kind: 'tiled', rows: 64, cols: 576 }, [64, 64, 3, 3], 'hwio'));
  assert.ok(!tileMatches({ kind: 'tiled', rows: 64, cols: 576 }, [64, 64, 3, 3]), 'an OIHW 3×3 conv is never tiled');
  assert.ok(!tileMatches({ kind: 'tiled', rows: 64, cols: 575 }, [64, 64, 3, 3], 'hwio'));
});

void test('toKernels / fromKernels transpose HWIO ↔ [out, in, kh, kw] exactly', () => {
  // Known example: [kh=3, kw=3, C_in=2, C_out=4], values = their HWIO index.
  const shape = [3, 3, 2, 4];
  const tile: TileSpec = { kind: 'conv', k: 3, layout: 'hwio' };
  const values = Float32Array.from({ length: 72 }, (_, i) => i);
  const kernels = toKernels(values, tile, shape);
  // Element (y=1, x=2, i=1, o=3): HWIO index ((1·3+2)·2+1)·4+3 = 47; OIHW index ((3·2+1)·3+1)·3+2 = 68.
  assert.equal(kernels[68], 47);
  // Element (y=0, x=0, i=0, o=1): HWIO index 1; OIHW index ((1·2+0)·3+0)·3+0 = 18.
  assert.equal(kernels[18], 1);
  // Filter o=0, channel i=0 is the 3×3 kernel of HWIO positions (y, x, 0, 0) = (y·3+x)·8.
  assert.deepEqual(Array.from(kernels.subarray(0, 9)), [0, 8, 16, 24, 32, 40, 48, 56, 64]);
  assert.deepEqual(fromKernels(kernels, tile, shape), values);

  for (const [s, seed] of [
    [[3, 3, 5, 7], 1],
    [[1, 1, 13, 6], 2],
    [[3, 3, 9, 1], 3],
    [[3, 3, 1, 1], 4],
  ] as const) {
    const n = s.reduce((a: number, d) => a * d, 1);
    const v = noise(n, seed);
    const t = tileFor(s, 'hwio');
    assert.ok(t?.kind === 'conv');
    const k = toKernels(v, t, s);
    assert.equal(k.length, n);
    assert.notEqual(k, v, 'HWIO kernels are a new array');
    assert.deepEqual(fromKernels(k, t, s), v, `round trip of [${s.join(', ')}]`);
    assert.deepEqual(oihwToHwio(hwioToOihw(v, s), s), v);
    // Same multiset of values.
    assert.deepEqual(
      Array.from(k).sort((a, b) => a - b),
      Array.from(v).sort((a, b) => a - b),
    );
  }
  // OIHW conv tiles pass through untouched.
  const o = noise(8 * 4 * 9, 5);
  assert.equal(toKernels(o, { kind: 'conv', k: 3, layout: 'oihw' }, [8, 4, 3, 3]), o);
  assert.throws(() => hwioToOihw(new Float32Array(10), [3, 3, 2, 4]), RangeError);
});

void test('classifyTensor names HWIO kernel sizes in its reasons', () => {
  const t = (shape: number[]) => ({
    name: 'UPN1/kernel',
    dtype: 'F32',
    shape,
    params: shape.reduce((a, d) => a * d, 1),
  });
  const r = classifyTensor(t([5, 5, 64, 64]), { conv: true, dense: false }, 'hwio');
  assert.ok(!r.represented && /5×5 kernel/.test(r.reason), JSON.stringify(r));
  assert.deepEqual(classifyTensor(t([3, 3, 64, 64]), { conv: true, dense: false }, 'hwio'), {
    represented: true,
    tile: { kind: 'conv', k: 3, layout: 'hwio' },
  });
});

void test('layerDetail shows an HWIO tensor as [C_out, C_in, kh, kw] filters', () => {
  const shape = [3, 3, 2, 4];
  const values = Float32Array.from({ length: 72 }, (_, i) => i);
  const recon = Float32Array.from(values);
  recon[47] = 1000; // (y=1, x=2, i=1, o=3): filter 3 has the largest error
  const d = layerDetail('k', shape, { kind: 'conv', k: 3, layout: 'hwio' }, values, recon, 8, 'hwio');
  assert.equal(d.filter.index, 3);
  assert.equal(d.filter.kh, 3);
  assert.equal(d.filter.original.length, 2);
  assert.equal(d.filter.original[1]?.[5], 47);
  assert.equal(d.filter.reconstructed[1]?.[5], 1000);
});

const ESRGAN_CONVS = [
  'F_0/kernel',
  'F_1_1/kernel',
  'F_2_1/kernel',
  'F_m1/kernel',
  'GFF_1/kernel',
  'GFF_2/kernel',
  'LFF_1/kernel',
  'LFF_2/kernel',
  'UPN2/kernel',
  'UPN3/kernel',
];

void test('planning the TF.js ESRGAN with represent.conv only represents its 3×3 and 1×1 convolutions', async () => {
  const plan = await planCompression(ESRGAN, { ...FAST, represent: { conv: true, dense: false } });
  assert.deepEqual(plan.represented.map((r) => r.name).sort(), [...ESRGAN_CONVS].sort());
  const why = new Map(plan.verbatim.map((v) => [v.name, v.reason]));
  assert.match(why.get('UPN1/kernel') ?? '', /5×5 kernel/);
  assert.match(why.get('SR/kernel') ?? '', /tiny/, '[3, 3, 12, 3] has only 324 parameters');
  assert.match(why.get('F_0/bias') ?? '', /vector/);
  // With dense tiling the 5×5 kernel is represented too (as a tiled matrix).
  const dense = await planCompression(ESRGAN, { ...FAST, represent: { conv: true, dense: true } });
  assert.deepEqual(dense.represented.map((r) => r.name).sort(), [...ESRGAN_CONVS, 'UPN1/kernel'].sort());
});

/** name → { dtype, shape, values } of every tensor of a checkpoint. */
async function load(path: string): Promise<Map<string, { dtype: string; shape: number[]; values: Float32Array }>> {
  const c = await openCheckpoint(path);
  try {
    const out = new Map<string, { dtype: string; shape: number[]; values: Float32Array }>();
    for (const t of c.tensors)
      out.set(t.name, { dtype: t.dtype, shape: [...t.shape], values: await readTensorValues(t) });
    return out;
  } finally {
    await c.close();
  }
}

void test('compress → decompress of the TF.js ESRGAN (1×1 as NeRN centres) keeps names, shapes, dtypes and HWIO order', async () => {
  const out = join(dir, 'esrgan.nern.safetensors');
  const report = await compressCheckpoint(ESRGAN, {
    ...FAST,
    represent: { conv: true, dense: false, pointwise: 'centre' },
    out,
  });
  let kernelsOf: Float32Array[] = [];
  let layerNames: string[] = [];
  assert.equal(report.layers.length, ESRGAN_CONVS.length);

  const a = await readArtifact(out);
  try {
    assert.equal(a.meta.version, 4, 'new artifacts (HWIO ones included) are format version 4');
    assert.equal(a.meta.source.format, 'tfjs');
    const f0 = a.meta.layers.find((l) => l.name === 'F_0/kernel');
    assert.deepEqual(f0?.tile, { kind: 'conv', k: 3, layout: 'hwio' });
    assert.deepEqual(f0.kernelShape, [64, 64, 3, 3]);
    const gff = a.meta.layers.find((l) => l.name === 'GFF_1/kernel');
    assert.deepEqual(gff?.kernelShape, [64, 128, 1, 1]);
    for (const l of a.meta.layers) assert.equal(l.tile.kind === 'conv' && l.tile.layout, 'hwio', l.name);
    kernelsOf = reconstructLayers(a.predictor, a.kernelMap);
    layerNames = a.meta.layers.map((l) => l.name);
  } finally {
    await a.close();
  }

  const decoded = join(dir, 'esrgan.safetensors');
  await decompressArtifact(out, decoded, { backend: 'wasm' });
  const src = await load(ESRGAN);
  const dec = await load(decoded);
  // Independently of the report: the decompressed HWIO tensor, transposed, is the predictor's [out, in, k, k] output.
  for (const [l, name] of layerNames.entries()) {
    const d = dec.get(name);
    const k = kernelsOf[l];
    assert.ok(d && k, name);
    const t = hwioToOihw(d.values, d.shape);
    let worst = 0;
    for (let i = 0; i < k.length; i++) worst = Math.max(worst, Math.abs((t[i] ?? 0) - (k[i] ?? 0)));
    assert.ok(
      worst <= 1e-6,
      `${name}: decompressed HWIO values sit at their transposed kernel positions (max diff ${worst})`,
    );
  }
  assert.deepEqual([...dec.keys()].sort(), [...src.keys()].sort());
  const represented = new Set(ESRGAN_CONVS);
  for (const [name, s] of src) {
    const d = dec.get(name);
    assert.ok(d, name);
    assert.equal(d.dtype, s.dtype, `${name} dtype`);
    assert.deepEqual(d.shape, s.shape, `${name} shape`);
    if (!represented.has(name)) {
      assert.deepEqual(d.values, s.values, `${name} is stored verbatim, exactly`);
      continue;
    }
    // The reconstruction is in the original HWIO order: its error against the original is the reported one.
    let se = 0;
    for (let i = 0; i < s.values.length; i++) se += ((d.values[i] ?? 0) - (s.values[i] ?? 0)) ** 2;
    const rmse = Math.sqrt(se / s.values.length);
    const reported = report.layers.find((l) => l.name === name)?.rmse ?? NaN;
    assert.ok(
      Math.abs(rmse - reported) <= 1e-4 * reported + 1e-9,
      `${name}: decompressed rmse ${rmse} vs reported ${reported}`,
    );
  }
});

void test('compress → decompress of the TF.js ESRGAN with 1×1 convolutions as blocks of their [C_in, C_out] matrix', async () => {
  const out = join(dir, 'esrgan.blocks.nern.safetensors');
  const report = await compressCheckpoint(ESRGAN, { ...FAST, represent: { conv: true, dense: false }, out });
  const a = await readArtifact(out);
  let gffKernels: Float32Array | undefined;
  try {
    assert.equal(a.meta.training.pointwise, 'blocks');
    const l = a.meta.layers.findIndex((x) => x.name === 'GFF_1/kernel');
    const gff = a.meta.layers[l];
    // [1, 1, 128, 64] in memory is the [128, 64] matrix: ⌈128/3⌉ × ⌈64/3⌉ blocks of 3×3.
    assert.deepEqual(gff?.tile, { kind: 'tiled', rows: 128, cols: 64 });
    assert.deepEqual(gff.kernelShape, [43, 22, 3, 3]);
    gffKernels = reconstructLayers(a.predictor, a.kernelMap)[l];
  } finally {
    await a.close();
  }
  const decoded = join(dir, 'esrgan.blocks.safetensors');
  await decompressArtifact(out, decoded, { backend: 'wasm' });
  const src = (await load(ESRGAN)).get('GFF_1/kernel');
  const dec = (await load(decoded)).get('GFF_1/kernel');
  assert.ok(src && dec && gffKernels);
  assert.deepEqual(dec.shape, [1, 1, 128, 64]);
  // The decompressed tensor is the predicted blocks with their padding dropped, in the source's own value order …
  const expected = fromKernels(gffKernels, { kind: 'tiled', rows: 128, cols: 64 }, [1, 1, 128, 64]);
  let worst = 0;
  for (let i = 0; i < expected.length; i++)
    worst = Math.max(worst, Math.abs((dec.values[i] ?? 0) - (expected[i] ?? 0)));
  assert.ok(worst <= 1e-6, `max diff ${worst}`);
  // … and its error against the original is the reported one.
  let se = 0;
  for (let i = 0; i < src.values.length; i++) se += ((dec.values[i] ?? 0) - (src.values[i] ?? 0)) ** 2;
  const rmse = Math.sqrt(se / src.values.length);
  const reported = report.layers.find((x) => x.name === 'GFF_1/kernel')?.rmse ?? NaN;
  assert.ok(Math.abs(rmse - reported) <= 1e-4 * reported + 1e-9, `decompressed rmse ${rmse} vs reported ${reported}`);
});

void test('artifacts whose conv tiles have no layout (written before layouts) still read, as OIHW', async () => {
  const out = join(dir, 'resnet.nern.safetensors');
  await compressCheckpoint(RESNET, { ...FAST, out });
  const bytes = readFileSync(out);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as {
    __metadata__: { weight_lens: string; weight_lens_sha256?: string };
  };
  // Artifacts written before layouts also predate checksums.
  assert.match(header.__metadata__.weight_lens_sha256 ?? '', /^[0-9a-f]{64}$/);
  delete header.__metadata__.weight_lens_sha256;
  const meta = JSON.parse(header.__metadata__.weight_lens) as {
    version: number;
    layers: { tile: Record<string, unknown> }[];
  };
  assert.equal(meta.version, 4, 'new artifacts store packed permutations, format version 4');
  assert.ok(meta.layers.length > 0);
  for (const l of meta.layers) {
    assert.equal(l.tile.layout, 'oihw');
    delete l.tile.layout;
  }
  header.__metadata__.weight_lens = JSON.stringify(meta);
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const old = join(dir, 'old.nern.safetensors');
  writeFileSync(old, Buffer.concat([prefix, json, bytes.subarray(8 + n)]));

  const a = await readArtifact(old);
  try {
    for (const l of a.meta.layers)
      assert.deepEqual(l.tile, { kind: 'conv', k: l.tile.kind === 'conv' ? l.tile.k : 0, layout: 'oihw' });
  } finally {
    await a.close();
  }
  const fresh = join(dir, 'fresh.safetensors');
  const legacy = join(dir, 'legacy.safetensors');
  await decompressArtifact(out, fresh, { backend: 'wasm' });
  await decompressArtifact(old, legacy, { backend: 'wasm' });
  const x = readFileSync(fresh);
  const y = readFileSync(legacy);
  // Same tensors, same bytes after the header (the header embeds only the source name, identical here).
  assert.deepEqual(y.subarray(8 + Number(y.readBigUInt64LE(0))), x.subarray(8 + Number(x.readBigUInt64LE(0))));

  // An unknown layout is refused clearly.
  for (const l of meta.layers) l.tile.layout = 'nchw';
  header.__metadata__.weight_lens = JSON.stringify(meta);
  const bad = Buffer.from(JSON.stringify(header));
  prefix.writeBigUInt64LE(BigInt(bad.length));
  const badPath = join(dir, 'bad.nern.safetensors');
  writeFileSync(badPath, Buffer.concat([prefix, bad, bytes.subarray(8 + n)]));
  await assert.rejects(readArtifact(badPath), /layout is "nchw", not oihw or hwio/);
});

void test('the source size of a sharded TF.js model counts its weight shards, not only model.json', async () => {
  const plan = await planCompression(ESRGAN, { ...DEFAULT_COMPRESS_OPTIONS, backend: 'wasm' });
  const modelJson = statSync(ESRGAN).size;
  const shard = statSync(join(dirname(ESRGAN), 'group1-shard1of1.bin')).size;
  assert.equal(plan.sourceBytes, modelJson + shard);
});
