// Backend selection: optional native/WebGPU backends missing or broken must fall back (tensorflow/webgpu → wasm → cpu)
// with a reason, never throw. Optional packages are simulated with an injected module loader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import {
  defaultBackendDeps,
  defaultWasmDir,
  initBackend,
  selectBackend,
  type BackendDeps,
} from '../../../src/core/backend/tfjsBackend';

function missing(name: string): Error {
  const e = new Error(`Cannot find module '${name}'\nRequire stack: …`) as NodeJS.ErrnoException;
  e.code = 'MODULE_NOT_FOUND';
  return e;
}

/** Deps whose loader knows only the given fake modules; everything else is "not installed". */
function depsWith(modules: Record<string, () => unknown>, overrides: Partial<BackendDeps> = {}): BackendDeps {
  return {
    ...defaultBackendDeps,
    load: (name) => {
      const make = modules[name];
      if (!make) throw missing(name);
      return make();
    },
    ...overrides,
  };
}

void test('wasm is found beside the sources or the bundle and starts without a fallback', async () => {
  assert.ok(defaultWasmDir(), 'wasm binaries found');
  const choice = await initBackend('wasm');
  assert.deepEqual(choice, { name: 'wasm' });
  assert.equal(tf.getBackend(), 'wasm');
});

void test('tensorflow preference without tfjs-node falls back to wasm and says why', async () => {
  const choice = await selectBackend('tensorflow', undefined, depsWith({}));
  assert.equal(choice.name, 'wasm');
  assert.match(choice.fallbackReason ?? '', /@tensorflow\/tfjs-node-gpu is not installed/);
  assert.match(choice.fallbackReason ?? '', /@tensorflow\/tfjs-node is not installed/);
});

void test('webgpu preference without the webgpu package falls back to wasm', async () => {
  const choice = await selectBackend('webgpu', undefined, depsWith({}));
  assert.equal(choice.name, 'wasm');
  assert.match(choice.fallbackReason ?? '', /webgpu package is not installed/);
});

void test('auto tries tensorflow and webgpu, picks wasm, and reports both reasons', async () => {
  const choice = await selectBackend('auto', undefined, depsWith({}));
  assert.equal(choice.name, 'wasm');
  assert.match(choice.fallbackReason ?? '', /native TensorFlow unavailable/);
  assert.match(choice.fallbackReason ?? '', /WebGPU unavailable/);
  const real = await initBackend('auto');
  assert.equal(real.name, 'wasm');
  assert.ok(real.fallbackReason);
});

void test('auto skips a software WebGPU adapter; an explicit webgpu without the tfjs backend falls back', async () => {
  const fakeDawn = (description: string) => () => ({
    globals: {},
    create: () => ({ requestAdapter: () => Promise.resolve({ info: { vendor: 'mesa', description } }) }),
  });
  const auto = await selectBackend(
    'auto',
    undefined,
    depsWith({ webgpu: fakeDawn('llvmpipe (LLVM 15.0.6, 256 bits)') }),
  );
  assert.equal(auto.name, 'wasm');
  assert.match(auto.fallbackReason ?? '', /software renderer/);
  const explicit = await selectBackend('webgpu', undefined, depsWith({ webgpu: fakeDawn('NVIDIA H100') }));
  assert.equal(explicit.name, 'wasm');
  assert.match(explicit.fallbackReason ?? '', /tfjs-backend-webgpu is not installed/);
  const noAdapter = await selectBackend(
    'webgpu',
    undefined,
    depsWith({
      webgpu: () => ({ globals: {}, create: () => ({ requestAdapter: () => Promise.resolve(null) }) }),
    }),
  );
  assert.match(noAdapter.fallbackReason ?? '', /no GPU adapter/);
});

void test('a broken tfjs-node-gpu (missing CUDA) falls through to a working tfjs-node', async () => {
  const choice = await selectBackend(
    'tensorflow',
    undefined,
    depsWith({
      '@tensorflow/tfjs-node-gpu': () => {
        throw new Error('libcudart.so.11.0: cannot open shared object file');
      },
      '@tensorflow/tfjs-node': () => {
        // What the real package does on import: register a 'tensorflow' backend.
        tf.registerBackend('tensorflow', () => new MathBackendCPU());
        return {};
      },
    }),
  );
  assert.equal(choice.name, 'tensorflow');
  assert.match(choice.fallbackReason ?? '', /tfjs-node-gpu failed to load \(libcudart/);
  assert.equal(tf.getBackend(), 'tensorflow');
  tf.removeBackend('tensorflow');
  await initBackend('wasm');
});

void test('wasm binaries missing → cpu; cpu asked → cpu with no reason; never throws for optional backends', async () => {
  const noWasm = await selectBackend('wasm', undefined, depsWith({}, { wasmDir: () => undefined }));
  assert.equal(noWasm.name, 'cpu');
  assert.match(noWasm.fallbackReason ?? '', /wasm unavailable/);
  assert.deepEqual(await selectBackend('cpu', undefined, depsWith({})), { name: 'cpu' });
  const failing = depsWith({}, { activate: () => Promise.reject(new Error('boom')) });
  await assert.rejects(selectBackend('auto', undefined, failing), /No TensorFlow.js backend could start/);
  await initBackend('wasm');
});
