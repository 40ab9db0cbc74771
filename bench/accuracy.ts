/**
 * `npm run bench:accuracy`: what compression costs in accuracy, and what the distillation phase wins back, on the
 * project's ResNet-20 trained on Fashion-MNIST (test/fixtures/models/resnet20_fmnist.onnx + its state dict).
 *
 * For each predictor size (a fraction of the represented conv weights) it: compresses the state dict
 * (reconstruction only, phase 1), evaluates the ONNX graph on the artifact's weights over the 10,000 test images,
 * then distils the artifact (phase 2: KL to the original model on augmented training images, no labels) with the
 * test set as the held-out data, and evaluates again. Prints the original accuracy, and per size: the predictor's
 * share of the represented weights and of the whole file, reconstruction-only accuracy, and distilled accuracy (best
 * during the phase and final), with the change in points. Results are also written to bench/out/accuracy.json as
 * they come, so a partial run keeps its rows.
 *
 * Then the same for a non-classifier, the published ESRGAN-slim x2 super-resolution model (TF.js LayersModel): output
 * PSNR against the original model's output on held-out photo crops and on the package's own fixture image, after
 * reconstruction and after distillation on training crops (bench/reference/photo_crops.py writes both from the
 * photographs of Debian's `python3-skimage` with NumPy).
 *
 * Run: node --import tsx bench/accuracy.ts [--sizes 0.25,0.4] [--compress-steps 8000] [--distill-steps 200]
 *      [--eval-every 100] [--limit N] [--only resnet|esrgan] [--esrgan-hidden 100] [--esrgan-steps 4000]
 *   or: node --import tsx bench/accuracy.ts --only methods [--nern dtype:fraction:permutation:qatSteps,…]
 *      [--baseline-sizes 0.05,0.1,0.2,0.4] [--within 0.2] [--compress-steps 8000] [--distill-steps 200] [--limit N]
 *      [--esrgan [--esrgan-nern …] [--esrgan-steps 4000]]: the method comparison of bench/methodComparison.ts.
 * Data: Debian `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist; `apt-get install dataset-fashion-mnist`).
 * Reference (NERN.md): NeRN on ResNet-20 / CIFAR-10 loses 0.53 points at 43.8 % and 0.19 at 53.3 %.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS, planCompression } from '../src/core/jobs/compress';
import { distillArtifact, DEFAULT_DISTILL_OPTIONS } from '../src/core/jobs/distill';
import { evaluateModel } from '../src/core/jobs/evaluate';
import { isOneOf, PERMUTATION_KINDS, PREDICTOR_DTYPES } from '../src/protocol/vocabulary';
import { compareMethods, type ComparisonSetup, type NernConfig } from './methodComparison';

const ROOT = resolve(__dirname, '..');
const OUT = join(ROOT, 'bench', 'out');
const MODEL = join(ROOT, 'test', 'fixtures', 'models', 'resnet20_fmnist.onnx');
const STATE_DICT = join(ROOT, 'test', 'fixtures', 'models', 'resnet20_fmnist.pt');
const DATA = '/usr/share/datasets/fashion-mnist';
const TRAIN = join(DATA, 'train-images-idx3-ubyte.gz');
const TEST = join(DATA, 't10k-images-idx3-ubyte.gz');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const pct = (x: number | undefined): string => (x === undefined ? '   -   ' : `${(100 * x).toFixed(2)} %`);
const pts = (x: number | undefined, base: number): string =>
  x === undefined ? '' : `${100 * (x - base) >= 0 ? '+' : ''}${(100 * (x - base)).toFixed(2)}`;

interface Row {
  fraction: number;
  hidden: number;
  shareOfRepresented: number;
  shareOfFile: number;
  compressSteps: number;
  compressSeconds: number;
  reconstruction: number | undefined;
  distillSteps: number;
  distillSeconds: number;
  distilledBest: number | undefined;
  distilledBestStep: number;
  distilledFinal: number | undefined;
}

const ESRGAN = join(ROOT, 'test', 'fixtures', 'published', 'esrgan-slim', 'x2', 'model.json');
const PHOTOS = join(OUT, 'photos');

async function esrgan(): Promise<void> {
  if (!existsSync(`${PHOTOS}_train.npy`)) {
    execFileSync('/usr/bin/python3', [join(ROOT, 'bench', 'reference', 'photo_crops.py'), PHOTOS], {
      stdio: 'inherit',
    });
  }
  const hidden = Number(arg('esrgan-hidden') ?? 100);
  const steps = Number(arg('esrgan-steps') ?? 4000);
  const distillSteps = Number(arg('distill-steps') ?? 200);
  const artifact = join(OUT, `esrgan-slim-x2-h${hidden}-bench.nern.safetensors`);
  const report = await compressCheckpoint(ESRGAN, {
    ...DEFAULT_COMPRESS_OPTIONS,
    budget: { kind: 'hidden', hidden },
    steps,
    out: artifact,
  });
  const psnr = async (weights: string, data: string): Promise<number | undefined> =>
    (await evaluateModel(ESRGAN, data, { weights })).candidate.psnr;
  const before = {
    test: await psnr(artifact, `${PHOTOS}_test.npy`),
    fixture: await psnr(artifact, `${PHOTOS}_fixture.npy`),
  };
  console.log(
    `ESRGAN-slim x2: h ${hidden}, predictor ${((100 * report.predictorParams) / report.representedParams).toFixed(1)} % of ${report.representedParams} represented weights, ${steps} steps; reconstruction only: PSNR ${before.test?.toFixed(2)} dB on held-out crops, ${before.fixture?.toFixed(2)} dB on the fixture image`,
  );
  const out = join(OUT, `esrgan-slim-x2-h${hidden}-bench.distilled.nern.safetensors`);
  const started = performance.now();
  const d = await distillArtifact(
    {
      artifact,
      model: ESRGAN,
      data: `${PHOTOS}_train.npy`,
      options: {
        ...DEFAULT_DISTILL_OPTIONS,
        steps: distillSteps,
        batchSize: 16,
        evalData: `${PHOTOS}_test.npy`,
        evalSamples: 256,
        evalEvery: Math.max(1, Math.floor(distillSteps / 4)),
        out,
      },
    },
    {
      onEval: (e) => {
        process.stderr.write(`  distill esrgan: step ${e.step} held-out PSNR ${e.metrics.psnr?.toFixed(2)} dB\n`);
      },
    },
  );
  const after = { test: await psnr(out, `${PHOTOS}_test.npy`), fixture: await psnr(out, `${PHOTOS}_fixture.npy`) };
  console.log(
    `ESRGAN-slim x2 distilled (${distillSteps} steps, ${((performance.now() - started) / 1000).toFixed(0)} s): PSNR ${after.test?.toFixed(2)} dB on held-out crops (best ${d.best.metrics.psnr?.toFixed(2)} dB at step ${d.best.step}), ${after.fixture?.toFixed(2)} dB on the fixture image`,
  );
  writeFileSync(
    join(OUT, 'accuracy-esrgan.json'),
    JSON.stringify(
      {
        hidden,
        steps,
        distillSteps,
        share: report.predictorParams / report.representedParams,
        before,
        after,
        best: d.best,
      },
      null,
      1,
    ),
  );
}

/** NeRN configurations of option `flag` (`dtype:fraction:permutation:qatSteps,…`), or `fallback`'s. */
function nernConfigs(flag: string, fallback: string): NernConfig[] {
  return (arg(flag) ?? fallback).split(',').map((part) => {
    const [dtype, fraction, permutation, qat] = part.split(':');
    if (!isOneOf(PREDICTOR_DTYPES, dtype) || !isOneOf(PERMUTATION_KINDS, permutation))
      throw new Error(`--${flag} ${part}: expected dtype:fraction:permutation:qatSteps`);
    return { dtype, fraction: Number(fraction), permutation, qatSteps: Number(qat ?? 0) };
  });
}

/** The method comparison (methodComparison.ts) on the ResNet-20, and on ESRGAN-slim with `--esrgan`. */
async function methods(): Promise<void> {
  const compressSteps = Number(arg('compress-steps') ?? 8000);
  const distillSteps = Number(arg('distill-steps') ?? 200);
  const within = Number(arg('within') ?? 0.2);
  const limit = arg('limit') !== undefined ? Number(arg('limit')) : undefined;
  const baselineSizes = (arg('baseline-sizes') ?? '0.05,0.1,0.2,0.4').split(',').map(Number);
  const configs = nernConfigs(
    'nern',
    'f32:0.4:crossfilter:0,int8:0.24:none:2000,int8:0.15:infilter:2000,int4:0.45:none:2000',
  );
  const resnet: ComparisonSetup = {
    label: 'ResNet-20 / Fashion-MNIST',
    checkpoint: STATE_DICT,
    model: MODEL,
    data: TEST,
    distillData: TRAIN,
    outDir: join(OUT, 'methods-resnet20'),
    ...(limit !== undefined ? { limit } : {}),
  };
  mkdirSync(resnet.outDir, { recursive: true });
  const plan = await planCompression(STATE_DICT, DEFAULT_COMPRESS_OPTIONS);
  await compareMethods(resnet, plan.representedParams, baselineSizes, configs, compressSteps, distillSteps, within);
  if (process.argv.includes('--esrgan')) {
    if (!existsSync(`${PHOTOS}_train.npy`)) {
      execFileSync('/usr/bin/python3', [join(ROOT, 'bench', 'reference', 'photo_crops.py'), PHOTOS], {
        stdio: 'inherit',
      });
    }
    const setup: ComparisonSetup = {
      label: 'ESRGAN-slim x2 / photo crops (PSNR against the original model)',
      checkpoint: ESRGAN,
      model: ESRGAN,
      data: `${PHOTOS}_test.npy`,
      distillData: `${PHOTOS}_train.npy`,
      outDir: join(OUT, 'methods-esrgan'),
      distill: { batchSize: 16 },
    };
    mkdirSync(setup.outDir, { recursive: true });
    const esrganPlan = await planCompression(ESRGAN, DEFAULT_COMPRESS_OPTIONS);
    await compareMethods(
      setup,
      esrganPlan.representedParams,
      baselineSizes,
      nernConfigs('esrgan-nern', 'f32:0.465:crossfilter:0,int8:0.45:crossfilter:2000'),
      Number(arg('esrgan-steps') ?? 4000),
      distillSteps,
      within,
    );
  }
}

async function main(): Promise<void> {
  const only = arg('only');
  if (only === 'esrgan') {
    await esrgan();
    return;
  }
  if (only === 'methods') {
    await methods();
    return;
  }
  if (!existsSync(TRAIN) || !existsSync(TEST)) {
    console.error(`Fashion-MNIST is not at ${DATA}; install it with: apt-get install dataset-fashion-mnist`);
    process.exitCode = 1;
    return;
  }
  mkdirSync(OUT, { recursive: true });
  const sizes = (arg('sizes') ?? '0.25,0.4').split(',').map(Number);
  const compressSteps = Number(arg('compress-steps') ?? 8000);
  const distillSteps = Number(arg('distill-steps') ?? 200);
  const evalEvery = Number(arg('eval-every') ?? 100);
  const limit = arg('limit') !== undefined ? Number(arg('limit')) : undefined;
  const testSamples = limit ?? 10_000;

  const original = await evaluateModel(MODEL, TEST, limit !== undefined ? { limit } : {});
  const base = original.originalAccuracy ?? 0;
  console.log(
    `original ResNet-20 (ONNX graph on the wasm executor): ${pct(base)} top-1 on ${original.candidate.n} Fashion-MNIST test images (${(original.durationMs / 1000).toFixed(1)} s)`,
  );
  const rows: Row[] = [];
  const save = (): void => {
    writeFileSync(join(OUT, 'accuracy.json'), JSON.stringify({ originalAccuracy: base, testSamples, rows }, null, 1));
  };
  for (const fraction of sizes) {
    const artifact = join(OUT, `resnet20_fmnist-f${fraction}.nern.safetensors`);
    let started = performance.now();
    const report = await compressCheckpoint(
      STATE_DICT,
      { ...DEFAULT_COMPRESS_OPTIONS, budget: { kind: 'fraction', fraction }, steps: compressSteps, out: artifact },
      {
        onProgress: (p) => {
          if (p.step % 1000 === 0)
            process.stderr.write(
              `  compress ${fraction}: step ${p.step}/${p.steps} loss ${p.loss.toPrecision(3)} ${p.stepsPerSecond.toFixed(1)} steps/s on ${p.backend}\n`,
            );
        },
      },
    );
    const compressSeconds = (performance.now() - started) / 1000;
    const recon = await evaluateModel(MODEL, TEST, { weights: artifact, ...(limit !== undefined ? { limit } : {}) });
    console.log(
      `size ${fraction}: h ${report.hidden}, predictor ${report.predictorParams} = ${((100 * report.predictorParams) / report.representedParams).toFixed(1)} % of ${report.representedParams} represented weights; reconstruction only ${pct(recon.candidate.accuracy)} (${pts(recon.candidate.accuracy, base)} points), rmse ${report.rmse.toExponential(3)} after ${compressSteps} steps in ${compressSeconds.toFixed(0)} s`,
    );
    started = performance.now();
    const distilled = await distillArtifact(
      {
        artifact,
        model: MODEL,
        data: TRAIN,
        options: {
          ...DEFAULT_DISTILL_OPTIONS,
          steps: distillSteps,
          evalEvery,
          evalData: TEST,
          evalSamples: testSamples,
          out: join(OUT, `resnet20_fmnist-f${fraction}.distilled.nern.safetensors`),
        },
      },
      {
        onProgress: (p) => {
          if (p.step % 20 === 0)
            process.stderr.write(
              `  distill ${fraction}: step ${p.step}/${p.steps} loss ${p.loss.toPrecision(3)} ${p.stepsPerSecond.toFixed(2)} steps/s\n`,
            );
        },
        onEval: (e) => {
          process.stderr.write(`  distill ${fraction}: step ${e.step} test accuracy ${pct(e.metrics.accuracy)}\n`);
        },
      },
    );
    const distillSeconds = (performance.now() - started) / 1000;
    const row: Row = {
      fraction,
      hidden: report.hidden,
      shareOfRepresented: report.predictorParams / report.representedParams,
      shareOfFile: report.artifactBytes / report.sourceBytes,
      compressSteps,
      compressSeconds,
      reconstruction: recon.candidate.accuracy,
      distillSteps,
      distillSeconds,
      distilledBest: distilled.best.metrics.accuracy,
      distilledBestStep: distilled.best.step,
      distilledFinal: distilled.after.accuracy,
    };
    rows.push(row);
    save();
    console.log(
      `size ${fraction}: distilled best ${pct(row.distilledBest)} (step ${row.distilledBestStep}, ${pts(row.distilledBest, base)} points), final ${pct(row.distilledFinal)} (${pts(row.distilledFinal, base)} points) after ${distillSteps} steps in ${distillSeconds.toFixed(0)} s`,
    );
  }
  console.log('');
  console.log(
    `| predictor / represented | artifact / file | reconstruction only | distilled best | distilled final | (original ${pct(base)}) |`,
  );
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${(100 * r.shareOfRepresented).toFixed(1)} % (h ${r.hidden}) | ${(100 * r.shareOfFile).toFixed(1)} % | ${pct(r.reconstruction)} (${pts(r.reconstruction, base)}) | ${pct(r.distilledBest)} (${pts(r.distilledBest, base)}) | ${pct(r.distilledFinal)} (${pts(r.distilledFinal, base)}) | |`,
    );
  }
  if (only !== 'resnet') await esrgan();
}

void main();
