// Decoding on the native engine: the predictor's forward pass as one onnxruntime graph gives TensorFlow.js's
// predictions to float rounding on real artifacts; decompress and evaluation use it under `auto`, name the engine,
// fall back to TensorFlow.js with the reason, and stop on cancel without writing anything.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBackend } from '../../src/core/backend/tfjsBackend';
import { missingGpuDevice } from '../../src/core/backend/nativeDevice';
import { openCheckpoint } from '../../src/core/formats/registry';
import { CancelledError } from '../../src/core/io/errors';
import { compressCheckpoint } from '../../src/core/jobs/compress';
import { decompressArtifact } from '../../src/core/jobs/decompress';
import { readArtifact } from '../../src/core/nern/artifact';
import { predictGrid } from '../../src/core/nern/kernelMap';
import { openNativeForward, predictGridOnBestEngine, type GridEngine } from '../../src/core/nern/nativeForward';
import { Predictor } from '../../src/core/nern/predictor';
import { readTensorValues } from '../../src/core/tensors/tensor';
import { FIXTURES } from '../helpers/fixtures';
import { projectOrt } from '../helpers/ort';

const { skip: NEEDS_ORT } = projectOrt();
const PREVIOUS = join(FIXTURES, 'artifacts', 'tiny_cnn_v2.nern.safetensors');
const RESNET20 = join(FIXTURES, 'models', 'resnet20_fmnist.pt');
const dir = mkdtempSync(join(tmpdir(), 'wl-native-decode-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** ‖a − b‖ / ‖b‖ (float64 sums). */
function relativeDifference(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
    n += (b[i] ?? 0) ** 2;
  }
  return Math.sqrt(d / n);
}

async function tensors(path: string): Promise<Map<string, Float32Array>> {
  const c = await openCheckpoint(path);
  try {
    const out = new Map<string, Float32Array>();
    for (const t of c.tensors) out.set(t.name, await readTensorValues(t));
    return out;
  } finally {
    await c.close();
  }
}

void test(
  'the native forward pass gives the TensorFlow.js predictions on a real artifact to 1e-5',
  { skip: NEEDS_ORT },
  async () => {
    await ensureBackend('wasm');
    const a = await readArtifact(PREVIOUS);
    try {
      const predictor = Predictor.fromWeights(a.predictor);
      let tfjs: Float32Array;
      try {
        tfjs = predictGrid(predictor, a.kernelMap);
      } finally {
        predictor.dispose();
      }
      const engines: GridEngine[] = [];
      const { predictions, engine } = await predictGridOnBestEngine(a.predictor, a.kernelMap, 'cpu-native', {
        chunk: 100,
        onEngine: (e) => engines.push(e),
      });
      assert.deepEqual(engines, [engine], 'told once, before the rows');
      assert.match(engine.label, /^onnxruntime \(native, \d+ threads?\)$/);
      assert.equal(engine.reason, undefined);
      const diff = relativeDifference(predictions, tfjs);
      assert.ok(diff <= 1e-5, `native vs tfjs predictions differ by ${diff}`);
    } finally {
      await a.close();
    }
  },
);

void test(
  'decompress under auto decodes natively, names the engine, and agrees with wasm to 1e-5 per tensor',
  { skip: NEEDS_ORT },
  async () => {
    const artifact = join(dir, 'resnet20.nern.safetensors');
    await compressCheckpoint(RESNET20, {
      budget: { kind: 'hidden', hidden: 24 },
      steps: 20,
      permutation: 'none',
      seed: 1,
      represent: { conv: true, dense: false },
      backend: 'wasm',
      rounds: 1,
      roundWidthScale: 1,
      out: artifact,
    });
    const seen: Record<string, GridEngine[]> = { auto: [], wasm: [], cuda: [] };
    const rows: number[] = [];
    const decoded: Record<string, Map<string, Float32Array>> = {};
    for (const backend of ['auto', 'wasm', 'cuda'] as const) {
      const out = join(dir, `resnet20.${backend}.safetensors`);
      await decompressArtifact(artifact, out, {
        backend,
        onEngine: (e) => seen[backend]?.push(e),
        ...(backend === 'auto' ? { onRows: (done: number) => rows.push(done) } : {}),
      });
      decoded[backend] = await tensors(out);
    }
    assert.match(seen.auto?.[0]?.label ?? '', /^onnxruntime \(native, \d+ threads?\)$/);
    assert.deepEqual(
      seen.wasm,
      [{ label: 'tfjs (wasm)' }],
      'a TensorFlow.js backend by name is no fallback: no reason',
    );
    // Asked for CUDA on a machine without one: the native CPU provider, and why.
    const noCuda = missingGpuDevice('cuda');
    if (noCuda !== null) {
      assert.match(seen.cuda?.[0]?.label ?? '', /^onnxruntime \(native, \d+ threads?\)$/);
      assert.equal(seen.cuda?.[0]?.reason, `CUDA unavailable: ${noCuda}`);
    }
    // ResNet-20's grid: its 29,712 kernels less conv1's 16 (144 weights, stored verbatim), chunk by chunk to the last.
    assert.equal(rows.at(-1), 29_696);
    assert.ok(rows.length >= 4 && rows.every((r, i) => i === 0 || r > (rows[i - 1] ?? 0)));
    const native = decoded.auto ?? new Map<string, Float32Array>();
    const wasm = decoded.wasm ?? new Map<string, Float32Array>();
    assert.deepEqual([...native.keys()], [...wasm.keys()]);
    const a = await readArtifact(artifact);
    const represented = new Set(a.meta.tensors.filter((t) => t.stored === 'represented').map((t) => t.name));
    await a.close();
    assert.equal(represented.size, 18, "ResNet-20's 3×3 convolutions but conv1");
    for (const [name, values] of native) {
      const reference = wasm.get(name) ?? new Float32Array(0);
      if (!represented.has(name)) {
        assert.deepEqual(values, reference, `${name} is verbatim: the same values`);
        continue;
      }
      const diff = relativeDifference(values, reference);
      assert.ok(diff <= 1e-5, `${name}: native vs wasm ${diff}`);
    }
  },
);

void test('a cancelled native decode rejects with CancelledError and writes no file', { skip: NEEDS_ORT }, async () => {
  const out = join(dir, 'cancelled.safetensors');
  const controller = new AbortController();
  await assert.rejects(
    decompressArtifact(PREVIOUS, out, {
      backend: 'auto',
      signal: controller.signal,
      onEngine: () => {
        controller.abort();
      },
    }),
    CancelledError,
  );
  assert.equal(existsSync(out), false);
});

void test('openNativeForward refuses a TensorFlow.js backend and a predictor whose weights do not fit', async () => {
  const a = await readArtifact(PREVIOUS);
  try {
    const r = await openNativeForward(a.predictor, 'wasm');
    assert.deepEqual(r, { ok: false, reason: 'the wasm backend is a TensorFlow.js backend' });
    if (NEEDS_ORT === false) {
      const first = a.predictor.layers[0];
      assert.ok(first);
      const broken = {
        ...a.predictor,
        layers: [{ ...first, bias: first.bias.subarray(1) }, ...a.predictor.layers.slice(1)],
      };
      const bad = await openNativeForward(broken, 'cpu-native');
      assert.ok(!bad.ok);
      assert.match(bad.reason, /onnxruntime could not run the predictor \(predictor layer 0 does not hold/);
    }
  } finally {
    await a.close();
  }
});
