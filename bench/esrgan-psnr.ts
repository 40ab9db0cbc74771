/**
 * `npm run bench:esrgan`: an end-to-end fidelity check of compression on a real published model. Runs the ESRGAN-slim
 * x2 TF.js LayersModel (test/fixtures/published/esrgan-slim) on its fixture image (output A), compares A with the
 * published expected output (sanity), compresses the model's 3×3 / 1×1 convolutions with a NeRN predictor, loads the
 * reconstructed weights back into the same model by weight name, runs it again (output B) and prints PSNR(A, B) and
 * PSNR(B, expected). Images are compared as the 8-bit RGB a user would see (outputs clipped to 0…255 and rounded).
 *
 * Run: node --import tsx bench/esrgan-psnr.ts [--hidden 100] [--steps 2000 | --quick] [--seed 0]
 *      [--permutation crossfilter] [--engine direct|compress|cli] [--dense]
 * `direct` (default) calls the engine's trainReconstruction on the 3×3 and 1×1 conv kernels, transposed from TF's
 * [kh, kw, in, out] to [out, in, kh, kw] and back. `compress` calls compressCheckpoint + decompressArtifact on
 * model.json (`--dense` also lets it tile tensors it does not see as convolutions) and reads the decompressed
 * safetensors through the format registry; `cli` does the same with `weight-lens compress` / `decompress` from
 * dist/cli.js (build first).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { decode } from 'fast-png';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { initBackend } from '../src/core/backend/tfjsBackend';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS } from '../src/core/jobs/compress';
import { openCheckpoint } from '../src/core/formats/registry';
import type { KernelLayer } from '../src/core/nern/kernelMap';
import { trainReconstruction } from '../src/core/nern/train';
import { readTensorValues } from '../src/core/tensors/tensor';

import { decompressArtifact } from '../src/core/jobs/decompress';
const ROOT = resolve(__dirname, '..');
const FIXTURE_DIR = join(ROOT, 'test/fixtures/published/esrgan-slim');
const MODEL = join(FIXTURE_DIR, 'x2/model.json');
const INPUT_PNG = join(FIXTURE_DIR, 'assets/fixture.png');
const EXPECTED_PNG = join(FIXTURE_DIR, 'assets/samples/2x/result.png');
const OUT_DIR = join(ROOT, 'bench/out');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** An RGB image, 0…255 per channel, row-major [h, w, 3]. */
interface Rgb {
  width: number;
  height: number;
  data: Float32Array;
}

function readRgb(path: string): Rgb {
  const png = decode(readFileSync(path));
  if (png.depth !== 8 || png.channels < 3)
    throw new Error(`${path}: expected an 8-bit RGB(A) PNG, got depth ${png.depth}, ${png.channels} channels`);
  const n = png.width * png.height;
  const data = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = png.data[i * png.channels + c] ?? 0;
  return { width: png.width, height: png.height, data };
}

/** PSNR in dB between two same-sized 8-bit images (peak 255); Infinity if identical. */
function psnr(a: Rgb, b: Rgb): number {
  if (a.width !== b.width || a.height !== b.height)
    throw new Error(`PSNR of ${a.width}×${a.height} vs ${b.width}×${b.height}`);
  let se = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = (a.data[i] ?? 0) - (b.data[i] ?? 0);
    se += d * d;
  }
  const mse = se / a.data.length;
  return mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((255 * 255) / mse);
}

async function loadModel(): Promise<tfl.LayersModel> {
  const json = JSON.parse(readFileSync(MODEL, 'utf8')) as {
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  };
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) buffers.push(readFileSync(join(dirname(MODEL), p)));
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData }));
}

/** Runs the model on an image (input 0…255) and returns the 8-bit output (clipped, rounded). */
function upscale(model: tfl.LayersModel, image: Rgb): Rgb {
  const out = tf.tidy(() => {
    const x = tf.tensor4d(image.data, [1, image.height, image.width, 3]);
    const y = model.predict(x) as tf.Tensor4D;
    return tf.round<tf.Tensor4D>(tf.clipByValue(y, 0, 255));
  });
  const [, h, w] = out.shape;
  const data = out.dataSync() as Float32Array;
  out.dispose();
  return { width: w, height: h, data: Float32Array.from(data) };
}

/** The model's weights by manifest name (`layer/kernel`, `layer/bias`), as [values, shape]. */
function weightsByName(
  model: tfl.LayersModel,
): Map<string, { layer: tfl.layers.Layer; index: number; shape: number[] }> {
  const map = new Map<string, { layer: tfl.layers.Layer; index: number; shape: number[] }>();
  for (const layer of model.layers) {
    layer.weights.forEach((w, index) => {
      const suffix = w.originalName.split('/').at(-1) ?? w.originalName;
      map.set(`${layer.name}/${suffix}`, { layer, index, shape: w.shape.map((d) => d ?? 0) });
    });
  }
  return map;
}

/** TF [kh, kw, in, out] → [out, in, kh, kw] (and back with `inverse`). */
function transposeKernel(values: Float32Array, shape: readonly number[], inverse: boolean): Float32Array {
  const [kh = 0, kw = 0, cin = 0, cout = 0] = shape;
  const out = new Float32Array(values.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) {
          const tfIndex = ((y * kw + x) * cin + i) * cout + o;
          const ptIndex = ((o * cin + i) * kh + y) * kw + x;
          if (inverse) out[tfIndex] = values[ptIndex] ?? 0;
          else out[ptIndex] = values[tfIndex] ?? 0;
        }
  return out;
}

/** Reconstructed conv kernels by weight name (TF layout), trained with the engine directly. */
async function reconstructDirect(
  hidden: number,
  steps: number,
  seed: number,
  permutation: 'crossfilter' | 'infilter' | 'none',
): Promise<Map<string, Float32Array>> {
  const checkpoint = await openCheckpoint(MODEL);
  const layers: KernelLayer[] = [];
  const tfShapes: number[][] = [];
  try {
    for (const t of checkpoint.tensors) {
      const [kh = 0, kw = 0, cin = 0, cout = 0] = t.shape;
      if (t.shape.length === 4 && kh === kw && (kh === 3 || kh === 1)) {
        layers.push({
          name: t.name,
          shape: [cout, cin, kh, kw],
          values: transposeKernel(await readTensorValues(t), t.shape, false),
        });
        tfShapes.push([...t.shape]);
      }
    }
  } finally {
    await checkpoint.close();
  }
  const start = performance.now();
  const result = await trainReconstruction(
    layers,
    { hidden, steps, seed, permutation, evalEvery: Math.max(10, Math.floor(steps / 4 / 10) * 10) },
    {
      onEvaluation: (e) => {
        console.log(
          `  step ${e.step}: rmse ${e.rmse.toExponential(3)} (${(e.rmse / e.weightRms).toFixed(3)} of rms ${e.weightRms.toExponential(3)}) ${((performance.now() - start) / 1000).toFixed(0)} s`,
        );
      },
    },
  );
  const represented = result.representedWeights;
  console.log(
    `engine: ${layers.length} conv layers, ${represented} represented weights, predictor h=${hidden} ${result.predictorParameters} params ` +
      `(${((100 * result.predictorParameters) / represented).toFixed(1)} % of represented), ${steps} steps in ${result.trainSeconds.toFixed(0)} s`,
  );
  const map = new Map<string, Float32Array>();
  layers.forEach((l, i) => {
    const values = result.reconstruction[i];
    const shape = tfShapes[i];
    if (values && shape) map.set(l.name, transposeKernel(values, shape, true));
  });
  return map;
}

/** Every tensor of a checkpoint by name. */
async function readAll(path: string): Promise<Map<string, Float32Array>> {
  const checkpoint = await openCheckpoint(path);
  try {
    const map = new Map<string, Float32Array>();
    for (const t of checkpoint.tensors) map.set(t.name, await readTensorValues(t));
    return map;
  } finally {
    await checkpoint.close();
  }
}

/** compressCheckpoint + decompressArtifact (src/core/jobs/compress.ts) on model.json; every decompressed tensor by name. */
async function reconstructCompress(
  hidden: number,
  steps: number,
  seed: number,
  permutation: 'crossfilter' | 'infilter' | 'none',
  dense: boolean,
): Promise<Map<string, Float32Array>> {
  mkdirSync(OUT_DIR, { recursive: true });
  const artifact = join(OUT_DIR, `esrgan-slim-x2-h${hidden}.nern.safetensors`);
  const start = performance.now();
  const r = await compressCheckpoint(
    MODEL,
    {
      ...DEFAULT_COMPRESS_OPTIONS,
      budget: { kind: 'hidden', hidden },
      steps,
      permutation,
      seed,
      backend: 'wasm',
      represent: { conv: true, dense },
      out: artifact,
    },
    {
      onEvaluation: (e) => {
        console.log(
          `  step ${e.step}: rmse ${e.rmse.toExponential(3)} (${(e.rmse / e.weightRms).toFixed(3)} of rms ${e.weightRms.toExponential(3)}) ${((performance.now() - start) / 1000).toFixed(0)} s`,
        );
      },
    },
  );
  console.log(
    `compressCheckpoint: predictor ${r.predictorParams} params for ${r.representedParams} represented weights ` +
      `(${((100 * r.predictorParams) / r.representedParams).toFixed(1)} %), ${r.verbatimParams} verbatim; rmse ${r.rmse.toExponential(3)}, ${r.seconds.toFixed(0)} s, ` +
      `artifact ${r.artifactBytes} B of ${r.sourceBytes} B (ratio ${r.ratio.toFixed(2)})`,
  );
  const [restored] = await decompressArtifact(
    artifact,
    join(OUT_DIR, `esrgan-slim-x2-h${hidden}.restored.safetensors`),
  );
  if (restored === undefined) throw new Error('decompressArtifact wrote no file');
  return readAll(restored);
}

/** Compress + decompress through the CLI; every tensor of the decompressed file by name. */
async function reconstructCli(
  hidden: number,
  steps: number,
  seed: number,
  permutation: string,
): Promise<Map<string, Float32Array>> {
  const cli = join(ROOT, 'dist/cli.js');
  if (!existsSync(cli)) throw new Error('dist/cli.js is missing: run `npm run build` first (or pass --engine direct)');
  mkdirSync(OUT_DIR, { recursive: true });
  const artifact = join(OUT_DIR, `esrgan-slim-x2-h${hidden}.nern.safetensors`);
  const restored = join(OUT_DIR, `esrgan-slim-x2-h${hidden}.restored.safetensors`);
  const start = performance.now();
  const report = execFileSync(
    process.execPath,
    [
      cli,
      'compress',
      MODEL,
      '--hidden',
      String(hidden),
      '--steps',
      String(steps),
      '--permutation',
      permutation,
      '--seed',
      String(seed),
      '--out',
      artifact,
      '--json',
    ],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const r = JSON.parse(report) as {
    predictorParams: number;
    representedParams: number;
    rmse: number;
    seconds: number;
    ratio: number;
    artifactBytes: number;
    sourceBytes: number;
  };
  console.log(
    `weight-lens compress: predictor ${r.predictorParams} params for ${r.representedParams} represented weights ` +
      `(${((100 * r.predictorParams) / r.representedParams).toFixed(1)} %), rmse ${r.rmse.toExponential(3)}, ${r.seconds.toFixed(0)} s, ` +
      `artifact ${r.artifactBytes} B of ${r.sourceBytes} B (ratio ${r.ratio.toFixed(2)}), wall ${((performance.now() - start) / 1000).toFixed(0)} s`,
  );
  execFileSync(process.execPath, [cli, 'decompress', artifact, '--out', restored], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return readAll(restored);
}

async function main(): Promise<void> {
  const hidden = Number(arg('hidden') ?? '100');
  const steps = process.argv.includes('--quick') ? 300 : Number(arg('steps') ?? '2000');
  const seed = Number(arg('seed') ?? '0');
  const permutation = (arg('permutation') ?? 'crossfilter') as 'crossfilter' | 'infilter' | 'none';
  const engine = arg('engine') ?? 'direct';
  const backend = await initBackend('wasm');
  console.log(
    `backend ${backend.name}; ESRGAN-slim x2, h=${hidden}, ${steps} steps, ${permutation}, seed ${seed}, engine ${engine}`,
  );

  const model = await loadModel();
  const input = readRgb(INPUT_PNG);
  const expected = readRgb(EXPECTED_PNG);
  let t0 = performance.now();
  const a = upscale(model, input);
  console.log(
    `original model: ${input.width}×${input.height} → ${a.width}×${a.height} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const psnrAExpected = psnr(a, expected);
  console.log(`PSNR(A, published result.png) = ${psnrAExpected.toFixed(2)} dB (sanity: the model runs as published)`);

  const reconstructed =
    engine === 'cli'
      ? await reconstructCli(hidden, steps, seed, permutation)
      : engine === 'compress'
        ? await reconstructCompress(hidden, steps, seed, permutation, process.argv.includes('--dense'))
        : await reconstructDirect(hidden, steps, seed, permutation);
  const byName = weightsByName(model);
  let replaced = 0;
  let se = 0;
  let ss = 0;
  let n = 0;
  for (const [name, values] of reconstructed) {
    const target = byName.get(name);
    if (!target) continue;
    const current = target.layer.getWeights();
    const old = current[target.index];
    if (!old) continue;
    if (values.length !== old.size)
      throw new Error(`${name}: reconstructed ${values.length} values, the model has ${old.size}`);
    const before = old.dataSync();
    let changed = false;
    for (let i = 0; i < values.length; i++) {
      const d = (values[i] ?? 0) - (before[i] ?? 0);
      if (d !== 0) changed = true;
      se += d * d;
      ss += (before[i] ?? 0) ** 2;
    }
    n += values.length;
    if (changed) replaced++;
    const next = current.map((w, i) => (i === target.index ? tf.tensor(values, target.shape) : w));
    target.layer.setWeights(next);
    next[target.index]?.dispose();
  }
  console.log(
    `loaded ${reconstructed.size} tensors by name (${replaced} differ from the original); weight rmse ${Math.sqrt(se / Math.max(1, n)).toExponential(3)}, ` +
      `weight rms ${Math.sqrt(ss / Math.max(1, n)).toExponential(3)} over ${n} values`,
  );
  t0 = performance.now();
  const b = upscale(model, input);
  console.log(`reconstructed model ran in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`PSNR(A, B) = ${psnr(a, b).toFixed(2)} dB   (original vs reconstructed model output)`);
  console.log(
    `PSNR(B, published result.png) = ${psnr(b, expected).toFixed(2)} dB   (A: ${psnrAExpected.toFixed(2)} dB)`,
  );
  // Reference point: nearest-neighbour upscaling of the input against the published output.
  const nearest: Rgb = { width: a.width, height: a.height, data: new Float32Array(a.data.length) };
  for (let y = 0; y < a.height; y++)
    for (let x = 0; x < a.width; x++)
      for (let c = 0; c < 3; c++)
        nearest.data[(y * a.width + x) * 3 + c] = input.data[((y >> 1) * input.width + (x >> 1)) * 3 + c] ?? 0;
  console.log(`reference: PSNR(nearest-neighbour 2×, A) = ${psnr(nearest, a).toFixed(2)} dB`);
  model.dispose();
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
