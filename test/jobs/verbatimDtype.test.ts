// Verbatim tensors narrowed to f16 or int8 (--verbatim-dtype, format 5) on the project's trained ResNet-20: what
// decompression gives back equals NumPy's narrowing of the same tensors (test/fixtures/verbatim/resnet20_verbatim.npz,
// written by test/fixtures/make/verbatim_reference.py), the represented tensors are untouched, the planner's bytes
// are the written file's, and tampered narrowed data is refused with one clear error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CompressOptionsDto } from '../../src/protocol/compress';
import { VERBATIM_DTYPES, type VerbatimDtype } from '../../src/protocol/vocabulary';
import {
  compressCheckpoint,
  DEFAULT_COMPRESS_OPTIONS,
  ensureBackend,
  planCompression,
} from '../../src/core/jobs/compress';
import { decompressArtifact } from '../../src/core/jobs/decompress';
import { openCheckpoint } from '../../src/core/formats/registry';
import type { Checkpoint } from '../../src/core/formats/types';
import { readArtifact } from '../../src/core/nern/artifact';
import { measureArtifactBytes } from '../../src/core/nern/artifactSize';
import { CheckpointFormatError } from '../../src/core/io/errors';
import { readTensorValues } from '../../src/core/tensors/tensor';
import { loadExecutableModel, loadWeightSource } from '../../src/core/models/executableModel';
import { FIXTURES } from '../helpers/fixtures';

const RESNET20 = join(FIXTURES, 'models', 'resnet20_fmnist.pt');
const REFERENCE = join(FIXTURES, 'verbatim', 'resnet20_verbatim.npz');
const FAST: CompressOptionsDto = {
  ...DEFAULT_COMPRESS_OPTIONS,
  budget: { kind: 'hidden', hidden: 8 },
  steps: 4,
  backend: 'wasm',
};
let dir = '';
const artifacts = new Map<VerbatimDtype, string>();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wl-verbatim-'));
  await ensureBackend('wasm');
  for (const verbatimDtype of VERBATIM_DTYPES) {
    const out = join(dir, `r20-${verbatimDtype}.nern.safetensors`);
    await compressCheckpoint(RESNET20, { ...FAST, verbatimDtype, out });
    artifacts.set(verbatimDtype, out);
  }
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function valuesOf(checkpoint: Checkpoint, name: string): Promise<Float32Array> {
  const entry = checkpoint.tensors.find((t) => t.name === name);
  assert.ok(entry, `${name} is there`);
  return Float32Array.from(await readTensorValues(entry));
}

/** The reference's tensor names (each original tensor NAME has NAME.f16, NAME.int8… beside it). */
function referenceNames(reference: Checkpoint): string[] {
  return reference.tensors.map((t) => t.name).filter((n) => !/\.(f16|int8)(\.codes|\.scales)?$/.test(n));
}

void test('decompressed verbatim tensors equal NumPy f16 and int8 narrowing of ResNet-20; represented ones are unchanged', async () => {
  const reference = await openCheckpoint(REFERENCE);
  const decoded = new Map<VerbatimDtype, Checkpoint>();
  try {
    for (const [dtype, path] of artifacts) {
      const [out] = await decompressArtifact(path, join(dir, `r20-${dtype}.decoded.safetensors`));
      assert.ok(out);
      decoded.set(dtype, await openCheckpoint(out));
    }
    const names = referenceNames(reference);
    assert.ok(names.length > 50, `${names.length} verbatim float tensors`);
    for (const name of names) {
      const original = await valuesOf(reference, name);
      assert.deepEqual(await valuesOf(decoded.get('f32')!, name), original, `${name} f32 is exact`);
      const f16 = await valuesOf(reference, `${name}.f16`);
      assert.deepEqual(await valuesOf(decoded.get('f16')!, name), f16, `${name} f16`);
      const int8 = await valuesOf(reference, `${name}.int8`);
      assert.deepEqual(await valuesOf(decoded.get('int8')!, name), int8, `${name} int8`);
      // Every decoded tensor keeps its original dtype.
      for (const c of decoded.values()) assert.equal(c.tensors.find((t) => t.name === name)?.dtype, 'F32');
    }
    // Integer tensors (BatchNorm's num_batches_tracked) stay exact, and the represented layers decode identically.
    const f32 = decoded.get('f32')!;
    for (const t of f32.tensors) {
      if (names.includes(t.name)) continue;
      const want = await valuesOf(f32, t.name);
      for (const dtype of ['f16', 'int8'] as const) {
        const c = decoded.get(dtype)!;
        assert.equal(c.tensors.find((x) => x.name === t.name)?.dtype, t.dtype, `${t.name} ${dtype} dtype`);
        assert.deepEqual(await valuesOf(c, t.name), want, `${t.name} ${dtype}`);
      }
    }
  } finally {
    await reference.close();
    for (const c of decoded.values()) await c.close();
  }
});

void test('evaluation binds the widened verbatim tensors, the NumPy values, not the stored codes', async () => {
  const model = await loadExecutableModel(join(FIXTURES, 'models', 'resnet20_fmnist.onnx'));
  const reference = await openCheckpoint(REFERENCE);
  try {
    for (const dtype of ['f16', 'int8'] as const) {
      const bound = await loadWeightSource(artifacts.get(dtype)!, model);
      assert.equal(bound.fromArtifact, true);
      for (const name of ['conv1.weight', 'linear.weight', 'bn1.running_var', 'layer3.2.bn2.bias']) {
        const want = await valuesOf(reference, `${name}.${dtype}`);
        assert.deepEqual(bound.weights.get(name), want, `${dtype} ${name}`);
      }
    }
  } finally {
    await reference.close();
  }
});

void test('the int8 artifact stores NumPy’s codes and its per-row scales in one verbatim_scales tensor', async () => {
  const reference = await openCheckpoint(REFERENCE);
  const stored = await openCheckpoint(artifacts.get('int8')!);
  try {
    const scales = await valuesOf(stored, 'verbatim_scales');
    let at = 0;
    // The scales follow the artifact's tensor order, which is the checkpoint's.
    for (const name of referenceNames(reference)) {
      const codes = stored.tensors.find((t) => t.name === `verbatim.${name}`);
      assert.equal(codes?.dtype, 'I8', name);
      assert.deepEqual(await valuesOf(stored, `verbatim.${name}`), await valuesOf(reference, `${name}.int8.codes`));
      const want = await valuesOf(reference, `${name}.int8.scales`);
      assert.deepEqual(scales.subarray(at, at + want.length), want, `${name} scales`);
      at += want.length;
    }
    assert.equal(at, scales.length);
  } finally {
    await reference.close();
    await stored.close();
  }
  const a = await readArtifact(artifacts.get('int8')!);
  assert.equal(a.meta.version, 5);
  assert.equal(a.meta.verbatimStorage, 'int8');
  await a.close();
  const plain = await readArtifact(artifacts.get('f32')!);
  assert.equal(plain.meta.version, 4);
  assert.equal(plain.meta.verbatimStorage, undefined);
  await plain.close();
});

void test('the planned bytes of the verbatim tensors are the written ones, per verbatim dtype and with --lean', async () => {
  const reference = await openCheckpoint(REFERENCE);
  let floatParams = 0;
  let rows = 0;
  for (const t of reference.tensors) {
    if (!referenceNames(reference).includes(t.name)) continue;
    floatParams += t.params;
    rows += t.shape.length >= 2 ? (t.shape[0] ?? 0) : 1;
  }
  await reference.close();
  const f32 = await measureArtifactBytes(artifacts.get('f32')!);
  const integers = f32.verbatim - 4 * floatParams; // the I64 num_batches_tracked counters, kept exact
  assert.ok(integers > 0);
  const want: Record<VerbatimDtype, number> = {
    f32: f32.verbatim,
    f16: 2 * floatParams + integers,
    int8: floatParams + 4 * rows + integers,
  };
  for (const lean of [false, true]) {
    for (const verbatimDtype of VERBATIM_DTYPES) {
      const out = lean ? join(dir, `lean-${verbatimDtype}.nern.safetensors`) : artifacts.get(verbatimDtype)!;
      if (lean) await compressCheckpoint(RESNET20, { ...FAST, verbatimDtype, lean, out });
      const measured = await measureArtifactBytes(out);
      const plan = await planCompression(RESNET20, { ...FAST, verbatimDtype, lean });
      const what = `${verbatimDtype}${lean ? ' lean' : ''}`;
      const planned = plan.bytes;
      assert.ok(planned, what);
      assert.equal(measured.total, statSync(out).size, what);
      assert.equal(measured.verbatim, want[verbatimDtype], what);
      assert.equal(planned.verbatim, measured.verbatim, what);
      assert.equal(planned.predictor, measured.predictor, what);
      assert.ok(
        planned.metadata >= measured.metadata,
        `${what}: metadata planned ${planned.metadata}, written ${measured.metadata}`,
      );
      assert.ok(plan.artifactBytes >= measured.total, what);
      if (verbatimDtype !== 'f32') assert.equal(plan.verbatimDtype, verbatimDtype);
      // A lean artifact still decodes: its narrowed tensors are listed by name alone.
      const a = await readArtifact(out);
      assert.equal(a.meta.tensors.filter((t) => t.storage !== undefined).length, verbatimDtype === 'f32' ? 0 : 79);
      await a.close();
    }
  }
});

/** Rewrites an artifact's header (without its checksum, as an artifact from before checksums) and its data. */
function tamper(
  src: string,
  dst: string,
  edit: (
    header: Record<string, { dtype?: string; shape?: number[]; data_offsets?: number[] }>,
    meta: Record<string, unknown>,
  ) => void,
  data?: (bytes: Buffer) => Buffer,
): string {
  const bytes = readFileSync(src);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype?: string; shape?: number[]; data_offsets?: number[] }
  >;
  const md = header.__metadata__ as unknown as Record<string, string>;
  delete md.weight_lens_sha256;
  const meta = JSON.parse(md.weight_lens ?? '{}') as Record<string, unknown>;
  edit(header, meta);
  md.weight_lens = JSON.stringify(meta);
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const body = Buffer.from(bytes.subarray(8 + n));
  writeFileSync(dst, Buffer.concat([prefix, json, data ? data(body) : body]));
  return dst;
}

void test('tampered narrowed verbatim data is refused with one clear CheckpointFormatError', async () => {
  const good = artifacts.get('int8')!;
  const untouched = tamper(good, join(dir, 'unchecked.nern.safetensors'), () => {});
  await (await readArtifact(untouched)).close();
  type Edit = Parameters<typeof tamper>[2];
  const scalesOffset = (h: Parameters<Edit>[0]): number => h.verbatim_scales?.data_offsets?.[0] ?? 0;
  const cases: [string, Edit, RegExp, ((b: Buffer, h: Parameters<Edit>[0]) => Buffer)?][] = [
    [
      'scales as F16',
      (h) => {
        const s = h.verbatim_scales!;
        s.dtype = 'F16';
        s.shape = [2 * (s.shape?.[0] ?? 0)];
      },
      /tensor verbatim_scales is F16 \[\d+\], expected F32 \[\d+\]/,
    ],
    [
      'scales one short',
      (h) => {
        const s = h.verbatim_scales!;
        s.shape = [(s.shape?.[0] ?? 1) - 1];
        s.data_offsets = [s.data_offsets![0]!, s.data_offsets![1]! - 4];
      },
      /expected F32 \[\d+\] \(one scale per row of the int8 verbatim tensors\)/,
    ],
    [
      'scales missing',
      (h) => {
        delete h.verbatim_scales;
      },
      /tensor verbatim_scales is missing \(79 verbatim tensors are stored as int8\)/,
    ],
    [
      'negative scale',
      () => {},
      /verbatim_scales holds scales that are negative or not finite/,
      (b, h) => {
        b.writeFloatLE(-1, scalesOffset(h));
        return b;
      },
    ],
    [
      'codes as F32 claimed',
      (h, m) => {
        const t = h['verbatim.linear.bias']!;
        t.dtype = 'U8';
        (m.tensors as Record<string, unknown>[]).forEach((x) => {
          if (x.name === 'linear.bias') x.storedDtype = 'U8';
        });
      },
      /verbatim tensor "linear.bias" \(F32\) should be stored as I8 under verbatim storage int8, but is U8/,
    ],
    [
      'claimed by version 4',
      (_h, m) => {
        m.version = 4;
      },
      /verbatimStorage needs format version 5, but the artifact is version 4/,
    ],
    [
      'unknown storage',
      (_h, m) => {
        m.verbatimStorage = 'int3';
      },
      /verbatimStorage is "int3", not f16 or int8/,
    ],
    ['truncated', () => {}, /spans bytes .* but needs|too short|exceeds/, (b) => b.subarray(0, b.length - 7)],
  ];
  for (const [name, edit, message, data] of cases) {
    const path = join(dir, `${name.replace(/ /g, '-')}.nern.safetensors`);
    let header: Parameters<Edit>[0] = {};
    tamper(good, path, (h, m) => {
      header = h;
      edit(h, m);
    });
    if (data) tamper(good, path, edit, (b) => data(b, header));
    await assert.rejects(
      readArtifact(path),
      (e: unknown) => {
        assert.ok(e instanceof CheckpointFormatError, `${name}: ${String(e)}`);
        assert.match(e.message, message, name);
        assert.match(e.message, /is not a valid Weight Lens artifact/, name);
        return true;
      },
      name,
    );
  }
  // An int8 code of −128 (never written) is refused when the tensor is decoded.
  const header = (() => {
    const b = readFileSync(untouched);
    const n = Number(b.readBigUInt64LE(0));
    return { n, h: JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets?: number[] }> };
  })();
  const bytes = readFileSync(untouched);
  bytes[8 + header.n + (header.h['verbatim.linear.weight']?.data_offsets?.[0] ?? 0) + 3] = 0x80;
  const minus128 = join(dir, 'minus128.nern.safetensors');
  writeFileSync(minus128, bytes);
  await assert.rejects(decompressArtifact(minus128, join(dir, 'minus128.decoded.safetensors')), (e: unknown) => {
    assert.ok(e instanceof CheckpointFormatError, String(e));
    assert.match(e.message, /verbatim tensor "linear.weight" is damaged: it holds the int8 code −128 at element 3/);
    return true;
  });
});
