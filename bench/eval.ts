/**
 * `npm run bench:eval`: evaluation throughput (images/s) of the project's ResNet-20 (test/fixtures/models/
 * resnet20_fmnist.onnx) on the 10,000 Fashion-MNIST test images, batches of 64, side by side in one run:
 * - end to end (`evaluateModel`: decoding, preprocessing, forward passes, metrics) on the native engine
 *   (onnxruntime-node, backend `auto`) and on TensorFlow.js wasm (backend `wasm`);
 * - forward passes alone, per intra-op thread count for onnxruntime (1 thread for wasm, its only setting under Node);
 * - PyTorch on the same model and data (bench/reference/eval_reference.py), only where Debian's python3-torch is
 *   importable;
 * - the ESRGAN-slim x2 TF.js LayersModel (test/fixtures/published/esrgan-slim), forward passes on 64×64 crops of its
 *   sample image in batches of 4: onnxruntime on the graph lowered to ONNX (graph/onnxLowering.ts) per thread count,
 *   and TensorFlow.js wasm, with the largest output difference from wasm.
 * Accuracy is printed with each figure, so the engines are seen to agree. Asserts nothing.
 *
 * Run: node --import tsx bench/eval.ts [--threads 1,2] [--limit N] [--esrgan N (crops, default 32; 0 skips)]
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
import { decodeImage } from '../src/core/data/imageFolder';

const ROOT = resolve(__dirname, '..');
const OUT = join(ROOT, 'bench', 'out');
const MODEL = join(ROOT, 'test', 'fixtures', 'models', 'resnet20_fmnist.onnx');
const STATE_DICT = join(ROOT, 'test', 'fixtures', 'models', 'resnet20_fmnist.pt');
const DEBIAN = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz';
const FIXTURE = join(ROOT, 'test', 'fixtures', 'data', 'idx');
const PYTHON = '/usr/bin/python3';
const ESRGAN = join(ROOT, 'test', 'fixtures', 'published', 'esrgan-slim', 'x2', 'model.json');
const ESRGAN_IMAGE = join(ROOT, 'test', 'fixtures', 'published', 'esrgan-slim', 'assets', 'fixture.png');
const CROP = 64;
const ESRGAN_BATCH = 4;
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

  await esrganRows(Number(arg('esrgan') ?? 32), threadCounts);

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

/** Batches of `count` 64×64 crops of the ESRGAN sample image (values 0…255, NHWC), at 9 positions in turn. */
async function esrganBatches(count: number): Promise<InputBatch[]> {
  const image = await decodeImage(readFileSync(ESRGAN_IMAGE), ESRGAN_IMAGE);
  const starts = [0, 32, 64].flatMap((y) => [0, 32, 64].map((x) => [y, x] as const));
  const batches: InputBatch[] = [];
  for (let start = 0; start < count; start += ESRGAN_BATCH) {
    const n = Math.min(ESRGAN_BATCH, count - start);
    const data = new Float32Array(n * CROP * CROP * 3);
    for (let k = 0; k < n; k++) {
      const [top, left] = starts[(start + k) % starts.length] ?? [0, 0];
      for (let y = 0; y < CROP; y++)
        for (let x = 0; x < CROP; x++)
          for (let c = 0; c < 3; c++)
            data[((k * CROP + y) * CROP + x) * 3 + c] =
              image.data[((y + top) * image.width + x + left) * image.channels + c] ?? 0;
    }
    batches.push({ data, shape: [n, CROP, CROP, 3] });
  }
  return batches;
}

/** Forward passes of ESRGAN-slim on `count` crops: onnxruntime (lowered) per thread count, and TensorFlow.js wasm. */
async function esrganRows(count: number, threadCounts: number[]): Promise<void> {
  if (count <= 0) return;
  console.log(
    `\nESRGAN-slim x2 (TF.js LayersModel; onnxruntime runs it lowered to ONNX), forward passes on ${count} ${CROP}×${CROP} crops of its sample image, batches of ${ESRGAN_BATCH}`,
  );
  console.log('engine                               images/s  max |Δ| vs wasm / max |wasm|');
  const model = await loadExecutableModel(ESRGAN);
  const batches = await esrganBatches(count);
  const configs: { backend: 'auto' | 'wasm'; threads?: number }[] = [
    { backend: 'wasm' },
    ...threadCounts.map((threads) => ({ backend: 'auto' as const, threads })),
  ];
  let reference: Float32Array[] | undefined;
  for (const c of configs) {
    const runner = await openModelRunner(model, {
      backend: c.backend,
      ...(c.threads !== undefined ? { threads: c.threads } : {}),
    });
    const weights = await runner.prepare(new Map());
    try {
      const first = batches[0];
      if (first) await runner.forward(weights, first); // warm-up
      const outputs: Float32Array[] = [];
      const t0 = performance.now();
      for (const b of batches) outputs.push((await runner.forward(weights, b)).values);
      const seconds = (performance.now() - t0) / 1000;
      reference ??= outputs;
      let diff = 0;
      let scale = 0;
      outputs.forEach((o, i) => {
        const r = reference?.[i] ?? o;
        for (let k = 0; k < r.length; k++) {
          diff = Math.max(diff, Math.abs((o[k] ?? 0) - (r[k] ?? 0)));
          scale = Math.max(scale, Math.abs(r[k] ?? 0));
        }
      });
      const agreement = c.backend === 'wasm' ? '-' : (diff / scale).toExponential(1);
      const label =
        runner.engine === 'tfjs' && c.backend === 'auto' ? `${runner.label} (${runner.reason ?? ''})` : runner.label;
      console.log(`${label.padEnd(35)}${(count / seconds).toFixed(1).padStart(8)}  ${agreement}`);
    } finally {
      await weights.dispose();
      await runner.dispose();
    }
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
