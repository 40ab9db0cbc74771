/**
 * The native engine's device choice (backend/nativeDevice.ts): which devices each backend preference tries, the
 * self-check graph against a float64 JavaScript reference, the comparison rule, the device-node pre-check, the real
 * providers of this machine's onnxruntime-node, and a compression and an evaluation run under the new preferences,
 * each reporting the device it used and why any GPU was not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  chooseNativeDevice,
  compareSelfCheck,
  missingGpuDevice,
  openOnDevice,
  nativeDevicesFor,
  probeProvider,
  runSelfCheck,
  SELF_CHECK_TOLERANCE,
  type DeviceProbe,
} from '../../../src/core/backend/nativeDevice';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS } from '../../../src/core/jobs/compress';
import { evaluateModel } from '../../../src/core/jobs/evaluate';
import { BACKEND_NAMES } from '../../../src/protocol/vocabulary';
import { projectOrt } from '../../helpers/ort';

const { loaded, skip } = projectOrt();
const FIXTURES = join(__dirname, '..', '..', 'fixtures');
const RESNET_PT = join(FIXTURES, 'models', 'resnet20_fmnist.pt');
const RESNET_ONNX = join(FIXTURES, 'models', 'resnet20_fmnist.onnx');
const IDX = join(FIXTURES, 'data', 'idx', 't10k-images-idx3-ubyte.gz');

void test('each backend preference tries its devices in order, the CPU last; TensorFlow.js ones none', () => {
  assert.deepEqual(nativeDevicesFor('auto'), ['cuda', 'webgpu', 'cpu']);
  assert.deepEqual(nativeDevicesFor('cuda'), ['cuda', 'cpu']);
  assert.deepEqual(nativeDevicesFor('webgpu'), ['webgpu', 'cpu']);
  assert.deepEqual(nativeDevicesFor('cpu-native'), ['cpu']);
  for (const b of ['wasm', 'tensorflow', 'cpu'] as const) assert.equal(nativeDevicesFor(b), null);
  // Every name a user can give has an answer.
  for (const b of BACKEND_NAMES) assert.doesNotThrow(() => nativeDevicesFor(b));
});

void test(
  'the self-check graph computes Σ Relu(X·W + b) and Σ Conv(I, K) as a float64 reference does',
  { skip },
  async () => {
    if (!loaded.ok) return;
    const [y, z] = await runSelfCheck(loaded.ort, 'cpu');
    const fill = (n: number, phase: number): number[] => Array.from({ length: n }, (_, i) => Math.sin(0.7 * i + phase));
    const X = fill(64 * 96, 1);
    const W = fill(96 * 96, 2);
    const b = fill(96, 3);
    let yRef = 0;
    for (let r = 0; r < 64; r++) {
      for (let c = 0; c < 96; c++) {
        let h = b[c] ?? 0;
        for (let k = 0; k < 96; k++) h += (X[r * 96 + k] ?? 0) * (W[k * 96 + c] ?? 0);
        yRef += Math.max(0, h);
      }
    }
    const I = fill(2 * 8 * 12 * 12, 4);
    const K = fill(8 * 8 * 9, 5);
    let zRef = 0;
    for (let n = 0; n < 2; n++)
      for (let o = 0; o < 8; o++)
        for (let yy = 0; yy < 12; yy++)
          for (let xx = 0; xx < 12; xx++)
            for (let c = 0; c < 8; c++)
              for (let i = 0; i < 3; i++)
                for (let j = 0; j < 3; j++) {
                  const sy = yy + i - 1;
                  const sx = xx + j - 1;
                  if (sy < 0 || sy >= 12 || sx < 0 || sx >= 12) continue;
                  zRef += (I[((n * 8 + c) * 12 + sy) * 12 + sx] ?? 0) * (K[((o * 8 + c) * 3 + i) * 3 + j] ?? 0);
                }
    assert.ok(Math.abs((y ?? 0) - yRef) <= 1e-4 * Math.abs(yRef), `y ${y} vs ${yRef}`);
    assert.ok(Math.abs((z ?? 0) - zRef) <= 1e-4 * Math.max(1, Math.abs(zRef)), `z ${z} vs ${zRef}`);
  },
);

void test('a device passes its self-check only within the tolerance, and never with a non-finite result', () => {
  assert.deepEqual(compareSelfCheck('CUDA', [100, 50], [100, 50]), { ok: true, difference: 0 });
  const close = compareSelfCheck('CUDA', [100.01, 50], [100, 50]);
  assert.ok(close.ok && close.difference <= SELF_CHECK_TOLERANCE);
  const far = compareSelfCheck('WebGPU', [101, 50], [100, 50]);
  assert.equal(far.ok, false);
  assert.match(
    (far as { reason: string }).reason,
    /^WebGPU failed its self-check \(its result differs from the CPU's by 1\.00e-2 relative/,
  );
  assert.equal(compareSelfCheck('CUDA', [Number.NaN, 50], [100, 50]).ok, false);
});

void test(
  'on Linux, no device node means no GPU is tried, and the reason names what is missing',
  { skip: process.platform !== 'linux' && 'Linux only' },
  () => {
    const root = mkdtempSync(join(tmpdir(), 'wl-dev-'));
    try {
      assert.match(missingGpuDevice('cuda', root) ?? '', /no NVIDIA GPU on this machine/);
      assert.match(missingGpuDevice('webgpu', root) ?? '', /no GPU on this machine/);
      mkdirSync(join(root, 'dri'));
      writeFileSync(join(root, 'dri', 'card0'), '');
      assert.notEqual(missingGpuDevice('webgpu', root), null, 'a card node without a render node is not enough');
      writeFileSync(join(root, 'dri', 'renderD128'), '');
      assert.equal(missingGpuDevice('webgpu', root), null);
      assert.notEqual(missingGpuDevice('cuda', root), null, 'a render node is not an NVIDIA device');
      writeFileSync(join(root, 'nvidia0'), '');
      assert.equal(missingGpuDevice('cuda', root), null);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
);

void test('auto takes the first GPU that passes, and says why the ones before it did not', { skip }, async () => {
  if (!loaded.ok) return;
  const asked: string[] = [];
  const probe =
    (ok: readonly string[]) =>
    (_: unknown, device: 'cuda' | 'webgpu'): Promise<DeviceProbe> => {
      asked.push(device);
      return Promise.resolve(
        ok.includes(device) ? { ok: true, difference: 0 } : { ok: false, reason: `${device} is absent` },
      );
    };
  const webgpu = await chooseNativeDevice(loaded.ort, 'auto', probe(['webgpu']));
  assert.deepEqual(webgpu, { device: 'webgpu', reason: 'cuda is absent' });
  const none = await chooseNativeDevice(loaded.ort, 'auto', probe([]));
  assert.deepEqual(none, { device: 'cpu', reason: 'cuda is absent; webgpu is absent' });
  const cuda = await chooseNativeDevice(loaded.ort, 'cuda', probe(['cuda', 'webgpu']));
  assert.deepEqual(cuda, { device: 'cuda' });
  asked.length = 0;
  assert.deepEqual(await chooseNativeDevice(loaded.ort, 'cpu-native', probe(['cuda'])), {
    device: 'cpu',
  });
  assert.equal(await chooseNativeDevice(loaded.ort, 'wasm', probe(['cuda'])), null);
  assert.deepEqual(asked, [], 'cpu-native and wasm probe no GPU');
});

void test('a GPU that refuses what is opened on it is replaced by the CPU, and the reason says so', async () => {
  const opened: string[] = [];
  const open = (on: { device: string }): Promise<string> => {
    opened.push(on.device);
    return on.device === 'cuda'
      ? Promise.reject(new Error('no kernel for Foo\nmore'))
      : Promise.resolve(`on ${on.device}`);
  };
  assert.deepEqual(await openOnDevice({ device: 'cuda', reason: 'WebGPU skipped' }, 'load the model', open), {
    value: 'on cpu',
    on: { device: 'cpu', reason: 'WebGPU skipped; cuda could not load the model (no kernel for Foo)' },
  });
  assert.deepEqual(await openOnDevice({ device: 'webgpu' }, 'load the model', open), {
    value: 'on webgpu',
    on: { device: 'webgpu' },
  });
  assert.deepEqual(opened, ['cuda', 'cpu', 'webgpu']);
  await assert.rejects(
    openOnDevice({ device: 'cpu' }, 'load the model', () => Promise.reject(new Error('bad model'))),
    /bad model/,
  );
});

void test("this machine's GPU providers either pass the self-check or fail with one sentence", { skip }, async () => {
  if (!loaded.ok) return;
  for (const device of ['webgpu', 'cuda'] as const) {
    const result = await probeProvider(loaded.ort, device);
    if (result.ok) assert.ok(result.difference <= SELF_CHECK_TOLERANCE);
    else {
      assert.match(result.reason, device === 'cuda' ? /^CUDA unavailable: / : /^WebGPU unavailable: /);
      assert.ok(!result.reason.includes('\n') && result.reason.length < 300, result.reason);
    }
  }
});

void test(
  'compression under cuda and evaluation under cpu-native run on the native engine and say which device',
  { skip },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wl-dev-'));
    try {
      const report = await compressCheckpoint(RESNET_PT, {
        ...DEFAULT_COMPRESS_OPTIONS,
        backend: 'cuda',
        steps: 20,
        budget: { kind: 'fraction', fraction: 0.05 },
        out: join(dir, 'r.nern.safetensors'),
      });
      assert.match(report.backend, /^onnxruntime \(native, /);
      if (report.backend.includes('threads')) assert.match(report.engineReason ?? '', /^CUDA unavailable: /);
      else assert.equal(report.backend, 'onnxruntime (native, CUDA)');
      const evaluation = await evaluateModel(RESNET_ONNX, IDX, { backend: 'cpu-native', limit: 16 });
      assert.equal(evaluation.engine, 'onnxruntime');
      assert.match(evaluation.backend, /^onnxruntime \(native, \d+ threads?\)$/);
      assert.equal(evaluation.engineReason, undefined, 'the CPU was asked for: nothing fell back');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
