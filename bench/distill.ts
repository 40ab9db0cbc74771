/**
 * `npm run bench:distill`: speed of one distillation step on the project's ResNet-20 (test/fixtures/models/
 * resnet20_fmnist.onnx and its state dict) at h = 160, batch 64, default losses (KL at T = 1, reconstruction weight
 * 0.01), side by side:
 * - the native step (nern/ortDistill.ts: the whole step as one ONNX training graph in onnxruntime-node), per intra-op
 *   thread count, on a fixed preprocessed batch (teacher forward, regeneration, student forward and backward,
 *   backward into the predictor, Adam);
 * - the TensorFlow.js wasm step through the distillation job (`distillArtifact`, backend `wasm`), and the native one
 *   through the job (backend `auto`), both end to end (batch reading, augmentation and preprocessing included);
 * - PyTorch doing the identical step (bench/reference/distill_reference.py, Debian's python3-torch), per thread count.
 * The artifact is a phase-1 compression of a few steps: the step's cost does not depend on how well it reconstructs.
 * Asserts nothing.
 *
 * Run: node --import tsx bench/distill.ts [--hidden 160] [--steps 10] [--tfjs-steps 3] [--threads 1,2]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ensureBackend } from '../src/core/backend/tfjsBackend';
import { loadOnnxRuntime } from '../src/core/backend/onnxRuntime';
import { openDataset } from '../src/core/data/dataset';
import { weightTensors } from '../src/core/graph/execute';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS } from '../src/core/jobs/compress';
import { bindLayers, distillArtifact, DEFAULT_DISTILL_OPTIONS } from '../src/core/jobs/distill';
import { loadExecutableModel } from '../src/core/models/executableModel';
import { readArtifact } from '../src/core/nern/artifact';
import { buildDistillModels, OrtDistillTrainer } from '../src/core/nern/ortDistill';
import type { DistillProgressDto } from '../src/protocol/evaluate';
import { fixedBatchDistillStep } from './fixedBatchStep';

const ROOT = resolve(__dirname, '..');
const OUT = join(ROOT, 'bench', 'out');
const MODEL = join(ROOT, 'test', 'fixtures', 'models', 'resnet20_fmnist.onnx');
const STATE_DICT = join(ROOT, 'test', 'fixtures', 'models', 'resnet20_fmnist.pt');
const IMAGES = join(ROOT, 'test', 'fixtures', 'data', 'idx', 't10k-images-idx3-ubyte.gz');
const PYTHON = '/usr/bin/python3';
const BATCH = 64;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const row = (what: string, stepsPerSecond: number): string =>
  `${what.padEnd(44)}${stepsPerSecond.toFixed(2).padStart(8)} steps/s  ${(1000 / stepsPerSecond).toFixed(0).padStart(6)} ms/step`;

/** Steps/s of the job's training loop (its last progress event), with `steps` steps on `backend`. */
async function jobRate(
  artifact: string,
  backend: 'auto' | 'wasm',
  steps: number,
): Promise<{ rate: number; engine: string }> {
  let last: DistillProgressDto | undefined;
  const report = await distillArtifact(
    {
      artifact,
      model: MODEL,
      data: IMAGES,
      options: {
        ...DEFAULT_DISTILL_OPTIONS,
        steps,
        batchSize: BATCH,
        evalSamples: 16,
        evalEvery: 0,
        backend,
        out: join(OUT, `distill-${backend}.nern.safetensors`),
      },
    },
    { onProgress: (p) => (last = p) },
  );
  return { rate: last?.stepsPerSecond ?? NaN, engine: report.engineLabel ?? report.engine ?? '?' };
}

async function main(): Promise<void> {
  const hidden = Number(arg('hidden', '160'));
  const steps = Number(arg('steps', '10'));
  const tfjsSteps = Number(arg('tfjs-steps', '3'));
  const threadCounts = arg('threads', [1, availableParallelism()].filter((v, i, a) => a.indexOf(v) === i).join(','))
    .split(',')
    .map(Number);
  mkdirSync(OUT, { recursive: true });
  console.log(`CPU: ${cpus()[0]?.model ?? '?'} × ${availableParallelism()}`);
  await ensureBackend('wasm');
  const artifactPath = join(OUT, `distill-h${hidden}.nern.safetensors`);
  console.log(`Compressing the ResNet-20 at h = ${hidden} (a few phase-1 steps)…`);
  await compressCheckpoint(STATE_DICT, {
    ...DEFAULT_COMPRESS_OPTIONS,
    budget: { kind: 'hidden', hidden },
    steps: 5,
    backend: 'wasm',
    out: artifactPath,
  });

  const model = await loadExecutableModel(MODEL);
  const artifact = await readArtifact(artifactPath);
  const data = await openDataset(IMAGES);
  const original = weightTensors(model.graph, model.weights);
  const { bound } = bindLayers(artifact, model.graph, 'resnet20');
  const layersJson = join(OUT, 'distill-layers.json');
  writeFileSync(
    layersJson,
    JSON.stringify(
      bound.map((b) => ({ name: b.name, kernels: b.kernels, scale: b.scale, kernelShape: b.layer.kernelShape })),
    ),
  );
  console.log(
    `${bound.length} represented layers, ${bound.reduce((n, b) => n + b.kernels, 0)} kernels regenerated per step, batch ${BATCH}\n`,
  );

  console.log('Weight Lens, native step alone (onnxruntime-node, a fixed batch)');
  const ORT = loadOnnxRuntime();
  if (!ORT.ok) console.log(`  not run: ${ORT.reason}`);
  else {
    const { spec, x } = await fixedBatchDistillStep(model, artifact, data, original, bound, BATCH, steps + 2);
    const built = buildDistillModels(spec);
    if ('reason' in built) console.log(`  not run: ${built.reason}`);
    else {
      for (const threads of threadCounts) {
        const trainer = await OrtDistillTrainer.create(ORT.ort, spec, built.models, { threads });
        try {
          await trainer.step(x.data, x.data);
          await trainer.step(x.data, x.data);
          const t0 = performance.now();
          for (let i = 0; i < steps; i++) await trainer.step(x.data, x.data);
          console.log(
            row(
              `  onnxruntime, ${threads} thread${threads === 1 ? '' : 's'}`,
              steps / ((performance.now() - t0) / 1000),
            ),
          );
        } finally {
          await trainer.dispose();
        }
      }
    }
  }
  tf.dispose(Object.values(original));
  await artifact.close();
  await data.close();

  console.log('\nWeight Lens, the distillation job end to end (batch reading, augmentation, preprocessing included)');
  const native = await jobRate(artifactPath, 'auto', steps);
  console.log(row(`  backend auto (${native.engine})`, native.rate));
  const wasm = await jobRate(artifactPath, 'wasm', tfjsSteps);
  console.log(row(`  backend wasm (${wasm.engine})`, wasm.rate));

  console.log('\nPyTorch (bench/reference/distill_reference.py, the identical step on a fixed batch)');
  const torch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (torch.status !== 0) {
    console.log(`  not run: ${PYTHON} cannot import torch (Debian's python3-torch is not installed)`);
    return;
  }
  const out = execFileSync(
    PYTHON,
    [
      join(ROOT, 'bench', 'reference', 'distill_reference.py'),
      '--pt',
      STATE_DICT,
      '--layers',
      layersJson,
      '--hidden',
      String(hidden),
      '--batch',
      String(BATCH),
      '--steps',
      String(steps),
      '--threads',
      threadCounts.join(','),
    ],
    { encoding: 'utf8' },
  );
  for (const line of out.trim().split('\n')) {
    if (!line.startsWith('JSON ')) {
      console.log(`  ${line}`);
      continue;
    }
    const r = JSON.parse(line.slice(5)) as { threads: number; stepsPerSecond: number };
    console.log(row(`  PyTorch, ${r.threads} thread${r.threads === 1 ? '' : 's'}`, r.stepsPerSecond));
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
