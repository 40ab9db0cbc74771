/**
 * `npm run bench:eval`: evaluation throughput (images/s) of the project's ResNet-20 (test/fixtures/models/
 * resnet20_fmnist.onnx) on the 10,000 Fashion-MNIST test images, batches of 64, side by side in one run:
 * - end to end (`evaluateModel`: decoding, preprocessing, forward passes, metrics) on the native engine
 *   (onnxruntime-node, backend `auto`) and on TensorFlow.js wasm (backend `wasm`);
 * - forward passes alone, per intra-op thread count for onnxruntime (1 thread for wasm, its only setting under Node);
 * - PyTorch on the same model and data (bench/reference/eval_reference.py), only where Debian's python3-torch is
 *   importable.
 * Accuracy is printed with each figure, so the engines are seen to agree. Asserts nothing.
 *
 * Run: node --import tsx bench/eval.ts [--threads 1,2] [--limit N]
 * Data: Debian `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist). Without it, the 64 fixture images are
 * repeated to 10,000 (written to bench/out/) and the output says so.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'fflate';
import { ensureBackend } from '../src/core/backend/tfjsBackend';
import { openDataset } from '../src/core/data/dataset';
import { readInputBatch, type InputBatch } from '../src/core/data/batches';
import { evaluateModel } from '../src/core/jobs/evaluate';
import { resolvePreprocessing } from '../src/core/models/preprocessing';
import { loadExecutableModel } from '../src/core/models/executableModel';
import { openModelRunner } from '../src/core/models/runner';

const ROOT = resolve(__dirname, '..');
const OUT = join(ROOT, 'bench', 'out');
const MODEL = join(ROOT, 'test', 'fixtures', 'models', 'resnet20_fmnist.onnx');
const STATE_DICT = join(ROOT, 'test', 'fixtures', 'models', 'resnet20_fmnist.pt');
const DEBIAN = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz';
const FIXTURE = join(ROOT, 'test', 'fixtures', 'data', 'idx');
const PYTHON = '/usr/bin/python3';
const BATCH = 64;
const SAMPLES = 10_000;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** The fixture's 64 images and labels repeated to `count`, as raw IDX files in bench/out; returns the images path. */
function repeatedFixture(count: number): string {
  mkdirSync(OUT, { recursive: true });
  const repeat = (file: string, headerBytes: number, itemBytes: number, out: string): void => {
    const raw = gunzipSync(readFileSync(join(FIXTURE, file)));
    const items = raw.subarray(headerBytes);
    const n = items.length / itemBytes;
    const bytes = new Uint8Array(headerBytes + count * itemBytes);
    bytes.set(raw.subarray(0, headerBytes));
    new DataView(bytes.buffer).setUint32(4, count, false);
    for (let i = 0; i < count; i++)
      bytes.set(items.subarray((i % n) * itemBytes, ((i % n) + 1) * itemBytes), headerBytes + i * itemBytes);
    writeFileSync(join(OUT, out), bytes);
  };
  repeat('t10k-images-idx3-ubyte.gz', 16, 28 * 28, 'repeated-images-idx3-ubyte');
  repeat('t10k-labels-idx1-ubyte.gz', 8, 1, 'repeated-labels-idx1-ubyte');
  return join(OUT, 'repeated-images-idx3-ubyte');
}

const pct = (x: number | undefined): string => (x === undefined ? '-' : `${(100 * x).toFixed(2)} %`);
const rate = (x: number): string => x.toFixed(0).padStart(8);

async function main(): Promise<void> {
  const limit = Number(arg('limit') ?? SAMPLES);
  const threadCounts = (arg('threads') ?? [...new Set([1, availableParallelism()])].join(',')).split(',').map(Number);
  let data = DEBIAN;
  let note = `the ${Math.min(limit, SAMPLES)} Fashion-MNIST test images (${DEBIAN})`;
  if (!existsSync(DEBIAN)) {
    data = repeatedFixture(SAMPLES);
    note = `the 64 fixture images repeated to ${SAMPLES} (Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist)`;
  }
  const choice = await ensureBackend('wasm');
  console.log(`ResNet-20 (${MODEL}), batches of ${BATCH}, on ${note}`);
  console.log(
    `machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}); tfjs backend ${choice.name}\n`,
  );

  console.log('end to end (evaluateModel: decode, preprocess, forward, metrics)');
  console.log('engine                               images/s  accuracy');
  for (const backend of ['auto', 'wasm'] as const) {
    const r = await evaluateModel(MODEL, data, { backend, batchSize: BATCH, limit });
    const engine = `${r.backend}${r.engineReason !== undefined && backend === 'auto' ? ` (${r.engineReason})` : ''}`;
    console.log(`${engine.padEnd(35)}${rate(r.candidate.n / (r.durationMs / 1000))}  ${pct(r.originalAccuracy)}`);
  }

  console.log('\nforward passes only (batches decoded and preprocessed beforehand)');
  console.log('engine                               images/s');
  const model = await loadExecutableModel(MODEL);
  const dataset = await openDataset(data);
  const batches: InputBatch[] = [];
  try {
    const { spec } = await resolvePreprocessing(model, dataset);
    const n = Math.min(limit, dataset.size);
    for (let start = 0; start < n; start += BATCH) {
      batches.push(
        await readInputBatch(
          dataset,
          Array.from({ length: Math.min(BATCH, n - start) }, (_, i) => start + i),
          spec,
        ),
      );
    }
  } finally {
    await dataset.close();
  }
  const images = batches.reduce((s, b) => s + b.shape[0], 0);
  const configs: { backend: 'auto' | 'wasm'; threads?: number }[] = [
    ...threadCounts.map((threads) => ({ backend: 'auto' as const, threads })),
    { backend: 'wasm' },
  ];
  for (const c of configs) {
    const runner = await openModelRunner(model, {
      backend: c.backend,
      ...(c.threads !== undefined ? { threads: c.threads } : {}),
    });
    const weights = await runner.prepare(new Map());
    try {
      const first = batches[0];
      if (first) await runner.forward(weights, first); // warm-up
      const t0 = performance.now();
      for (const b of batches) await runner.forward(weights, b);
      const seconds = (performance.now() - t0) / 1000;
      console.log(`${runner.label.padEnd(35)}${rate(images / seconds)}`);
    } finally {
      await weights.dispose();
      await runner.dispose();
    }
  }

  console.log('\nPyTorch (bench/reference/eval_reference.py, same state dict, data decoded beforehand)');
  const torch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (torch.status !== 0 || !existsSync(DEBIAN)) {
    console.log(
      `  not run: ${torch.status !== 0 ? `${PYTHON} cannot import torch (Debian's python3-torch is not installed)` : 'it reads the Debian Fashion-MNIST files'}`,
    );
    return;
  }
  const out = execFileSync(
    PYTHON,
    [
      join(ROOT, 'bench', 'reference', 'eval_reference.py'),
      STATE_DICT,
      '--threads',
      threadCounts.join(','),
      '--batch',
      String(BATCH),
    ],
    { encoding: 'utf8' },
  );
  console.log('engine                               images/s  accuracy');
  for (const line of out.trim().split('\n')) {
    const r = JSON.parse(line) as { threads: number; imagesPerSecond: number; accuracy: number };
    console.log(
      `${`PyTorch ${r.threads} thread${r.threads === 1 ? '' : 's'}`.padEnd(35)}${rate(r.imagesPerSecond)}  ${pct(r.accuracy)}`,
    );
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
