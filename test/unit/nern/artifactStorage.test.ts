// Artifact format 3: the predictor's weights stored as f16 or int8/int4 codes with one float32 scale per output unit.
// The decoded predictor equals the dequantised float form (tensors/quantize.ts) exactly, the bytes saved are exactly
// those of the smaller weight tensors, tampered quantised artifacts are refused with one clear line, and an artifact
// written by the previous format (test/fixtures/artifacts, made by the pre-v3 CLI) still decodes byte for byte.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ARTIFACT_DIGEST_KEY,
  permName,
  predictorScaleName,
  readArtifact,
  SCALES_NAME,
  VERBATIM_PREFIX,
  writeArtifact,
  type ArtifactMeta,
  type OpenArtifact,
  type VerbatimInput,
} from '../../../src/core/nern/artifact';
import { layerShapes } from '../../../src/core/nern/predictor';
import { writeSafetensors, type SafetensorsTensorInput } from '../../../src/core/formats/safetensors';
import { dequantizeMatrix, packInt4, quantizeMatrix, roundToF16 } from '../../../src/core/tensors/quantize';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { decompressArtifact } from '../../../src/core/jobs/decompress';
import { ARTIFACT_KEY } from '../../../src/protocol/artifact';
import { FIXTURES } from '../../helpers/fixtures';

const PREVIOUS = join(FIXTURES, 'artifacts', 'tiny_cnn_v2.nern.safetensors');
const PREVIOUS_DECODED = join(FIXTURES, 'artifacts', 'tiny_cnn_v2.decoded.safetensors');
const dir = mkdtempSync(join(tmpdir(), 'wl-artifact-storage-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function verbatimOf(art: OpenArtifact): Promise<VerbatimInput[]> {
  const out: VerbatimInput[] = [];
  for (const t of art.meta.tensors) {
    if (t.stored !== 'verbatim' || t.storedDtype === undefined) continue;
    const chunks: Uint8Array[] = [];
    for await (const c of art.verbatimBytes(t.name)) chunks.push(c);
    out.push({ name: t.name, dtype: t.storedDtype, shape: t.shape, data: Buffer.concat(chunks) });
  }
  return out;
}

/** Bytes of a safetensors file's data section (file size − 8 − header length). */
function dataBytes(path: string): number {
  const raw = readFileSync(path);
  return raw.length - 8 - Number(raw.readBigUInt64LE(0));
}

async function rewrite(storage: ArtifactMeta['predictorStorage'], name: string): Promise<string> {
  const art = await readArtifact(PREVIOUS);
  try {
    const out = join(dir, name);
    const { predictorStorage: _drop, ...rest } = art.meta;
    const meta: ArtifactMeta = { ...rest, ...(storage ? { version: 3, predictorStorage: storage } : {}) };
    await writeArtifact(out, {
      meta,
      predictor: art.predictor,
      kernelMap: art.kernelMap,
      verbatim: await verbatimOf(art),
    });
    return out;
  } finally {
    await art.close();
  }
}

void test('the previous-format fixture still reads and decodes to the bytes the previous version wrote', async () => {
  const art = await readArtifact(PREVIOUS);
  try {
    assert.ok(art.meta.version <= 2);
    assert.equal(art.meta.predictorStorage, undefined);
  } finally {
    await art.close();
  }
  // Those bytes were written with the predictor on TensorFlow.js wasm; the same engine gives the same bytes (the
  // native engine agrees to float rounding: test/jobs/nativeDecode.test.ts).
  const [decoded] = await decompressArtifact(PREVIOUS, join(dir, 'prev.decoded.safetensors'), { backend: 'wasm' });
  assert.ok(decoded !== undefined);
  assert.deepEqual(readFileSync(decoded), readFileSync(PREVIOUS_DECODED));
});

void test('f16, int8 and int4 artifacts decode to the dequantised float predictor exactly; bytes saved are exact', async () => {
  const src = await readArtifact(PREVIOUS);
  const f32 = await rewrite(undefined, 'f32.nern.safetensors');
  try {
    const shapes = layerShapes(src.predictor.spec);
    for (const storage of ['f16', 'int8', 'int4'] as const) {
      const path = await rewrite(storage, `${storage}.nern.safetensors`);
      const art = await readArtifact(path);
      try {
        assert.equal(art.meta.version, 4, 'new artifacts store packed permutations (format 4)');
        assert.equal(art.meta.predictorStorage, storage);
        assert.equal(art.bytes, statSync(path).size);
        let saved = 0;
        art.predictor.layers.forEach((layer, i) => {
          const [fanIn, fanOut] = shapes[i]!;
          const w = src.predictor.layers[i]!.weight;
          const expected =
            storage === 'f16'
              ? roundToF16(w)
              : dequantizeMatrix(quantizeMatrix(w, fanIn, fanOut, storage === 'int4' ? 4 : 8, 'column'));
          assert.deepEqual(layer.weight, expected, `${storage} layer ${i}`);
          assert.deepEqual(layer.bias, src.predictor.layers[i]!.bias);
          const n = fanIn * fanOut;
          const stored = storage === 'f16' ? 2 * n : (storage === 'int8' ? n : Math.ceil(n / 2)) + 4 * fanOut;
          saved += 4 * n - stored;
        });
        assert.ok(saved > 0);
        assert.equal(dataBytes(f32) - dataBytes(path), saved, storage);
        assert.ok(statSync(path).size < statSync(f32).size);
      } finally {
        await art.close();
      }
    }
  } finally {
    await src.close();
  }
});

/** Writes an int8/int4-style artifact by hand, with `tamper` changing its tensors or metadata. */
async function tampered(
  name: string,
  storage: string,
  tamper: (tensors: SafetensorsTensorInput[], meta: Record<string, unknown>) => void,
): Promise<string> {
  const art = await readArtifact(PREVIOUS);
  try {
    const shapes = layerShapes(art.predictor.spec);
    const tensors: SafetensorsTensorInput[] = [];
    art.predictor.layers.forEach((layer, i) => {
      const [fanIn, fanOut] = shapes[i]!;
      const q = quantizeMatrix(layer.weight, fanIn, fanOut, storage === 'int4' ? 4 : 8, 'column');
      if (storage === 'int4') {
        const packed = packInt4(q.codes);
        tensors.push({ name: `predictor.${i}.weight`, dtype: 'U8', shape: [packed.length], data: packed });
      } else tensors.push({ name: `predictor.${i}.weight`, dtype: 'I8', shape: [fanIn, fanOut], data: q.codes });
      tensors.push({ name: predictorScaleName(i), dtype: 'F32', shape: [fanOut], data: q.scales });
      tensors.push({ name: `predictor.${i}.bias`, dtype: 'F32', shape: [fanOut], data: layer.bias });
    });
    art.kernelMap.permutations.forEach((perm, l) =>
      tensors.push({ name: permName(l), dtype: 'U16', shape: [perm.length], data: Uint16Array.from(perm) }),
    );
    const scales = art.kernelMap.outputScales;
    tensors.push({ name: SCALES_NAME, dtype: 'F32', shape: [scales.length], data: scales });
    for (const v of await verbatimOf(art))
      tensors.push({ name: VERBATIM_PREFIX + v.name, dtype: v.dtype, shape: v.shape, data: v.data });
    const meta = { ...art.meta, version: 3, predictorStorage: storage } as Record<string, unknown>;
    tamper(tensors, meta);
    const out = join(dir, name);
    const json = JSON.stringify(meta);
    await writeSafetensors(
      out,
      tensors,
      { [ARTIFACT_KEY]: json, format: 'pt' },
      { digest: { key: ARTIFACT_DIGEST_KEY, prefix: new TextEncoder().encode(json) } },
    );
    return out;
  } finally {
    await art.close();
  }
}

void test('tampered quantised artifacts are refused with one clear line', async () => {
  const sound = await tampered('sound.nern.safetensors', 'int8', () => undefined);
  const opened = await readArtifact(sound); // the untampered hand-written form reads
  await opened.close();
  const cases: [string, string, (t: SafetensorsTensorInput[], m: Record<string, unknown>) => void, RegExp][] = [
    [
      'scales.nern.safetensors',
      'int8',
      (t) => {
        const i = t.findIndex((x) => x.name === predictorScaleName(0));
        const s = t[i]!;
        t[i] = { ...s, shape: [s.shape[0]! - 1], data: new Float32Array(s.shape[0]! - 1) };
      },
      /weight_scale is F32 \[\d+\], expected F32/,
    ],
    [
      'codes.nern.safetensors',
      'int4',
      (t) => {
        const i = t.findIndex((x) => x.name === 'predictor.0.weight');
        const s = t[i]!;
        t[i] = { ...s, shape: [s.shape[0]! + 1], data: new Uint8Array(s.shape[0]! + 1) };
      },
      /predictor\.0\.weight is U8 \[\d+\], expected U8/,
    ],
    ['dtype.nern.safetensors', 'int3', () => undefined, /predictorStorage is "int3", not one of f16, int8, int4/],
    [
      'version.nern.safetensors',
      'int8',
      (_t, m) => {
        m.version = 2;
      },
      /predictorStorage needs format version 3/,
    ],
    [
      'neg.nern.safetensors',
      'int8',
      (t) => {
        const i = t.findIndex((x) => x.name === 'predictor.0.weight');
        const codes = Int8Array.from(t[i]!.data as Int8Array);
        codes[0] = -128;
        t[i] = { ...t[i]!, data: codes };
      },
      /int8 codes outside/,
    ],
  ];
  for (const [name, storage, tamper, message] of cases) {
    const path = await tampered(name, storage, tamper);
    await assert.rejects(readArtifact(path), (e: unknown) => {
      assert.ok(e instanceof CheckpointFormatError, `${name}: ${String(e)}`);
      assert.match(e.message, message);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  }
});

void test('a format-3 int4 fixture (written by the format-3 CLI) still decodes byte for byte, and again as format 4', async () => {
  const v3 = join(FIXTURES, 'artifacts', 'tiny_cnn_v3_int4.nern.safetensors');
  const v3Decoded = readFileSync(join(FIXTURES, 'artifacts', 'tiny_cnn_v3_int4.decoded.safetensors'));
  const art = await readArtifact(v3);
  let rewritten = '';
  try {
    assert.equal(art.meta.version, 3);
    assert.equal(art.meta.predictorStorage, 'int4');
    assert.equal(art.meta.permutations, undefined, 'format 3 stores U16 indices');
    // Written again by this version: packed permutations, the same decoded bytes.
    rewritten = join(dir, 'v3-as-v4.nern.safetensors');
    await writeArtifact(rewritten, {
      meta: art.meta,
      predictor: art.predictor,
      kernelMap: art.kernelMap,
      verbatim: await verbatimOf(art),
    });
  } finally {
    await art.close();
  }
  const [decoded] = await decompressArtifact(v3, join(dir, 'v3.decoded.safetensors'), { backend: 'wasm' });
  assert.ok(decoded !== undefined);
  assert.deepEqual(readFileSync(decoded), v3Decoded);
  const again = await readArtifact(rewritten);
  try {
    assert.equal(again.meta.version, 4);
    assert.equal(again.meta.permutations?.length, again.meta.layers.length);
  } finally {
    await again.close();
  }
  const [decodedAgain] = await decompressArtifact(rewritten, join(dir, 'v4.decoded.safetensors'), { backend: 'wasm' });
  assert.ok(decodedAgain !== undefined);
  assert.deepEqual(readFileSync(decodedAgain), v3Decoded);
  assert.ok(statSync(rewritten).size < statSync(v3).size);
});
