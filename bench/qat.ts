/**
 * `npm run bench:qat`: what quantisation-aware training buys for an int8 or int4 predictor, on the project's ResNet-20
 * trained on Fashion-MNIST (test/fixtures/models/resnet20_fmnist.onnx + its state dict).
 *
 * At one predictor size it trains a float predictor (reconstruction, phase 1) and, per target dtype, one whose last
 * `--qat-steps` steps are quantisation-aware (same seed and steps). Each predictor is quantised with
 * tensors/quantize.ts (`quantizedPredictorWeights`: one scale per output unit, biases float32) into a copy of the
 * artifact, and that copy is what is evaluated on the test images: so every accuracy below is that of the predictor
 * as an int8/int4 artifact stores it, whatever the artifact writer of this checkout stores. Then per dtype it distils
 * (phase 2) the post-hoc-quantised predictor without and with quantisation-aware distillation, and the
 * quantisation-aware reconstruction with it, and evaluates each quantised result the same way. Rows are printed as
 * they come and written to bench/out/qat.json.
 *
 * Run: node --import tsx bench/qat.ts [--fraction 0.4] [--steps 3000] [--qat-steps 1000] [--distill-steps 150]
 *      [--dtypes int8,int4] [--limit N] [--distill-lr X]
 * Data: Debian `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist). `--limit N`: the first N test images.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS } from '../src/core/jobs/compress';
import { distillArtifact, DEFAULT_DISTILL_OPTIONS } from '../src/core/jobs/distill';
import { evaluateModel } from '../src/core/jobs/evaluate';
import { readArtifact, writeArtifact, type VerbatimInput } from '../src/core/nern/artifact';
import { layerShapes, predictorQuantBits, quantizedPredictorWeights } from '../src/core/nern/predictor';
import type { QuantizedPredictorDtype } from '../src/core/nern/train';
import type { PredictorDtype } from '../src/protocol/vocabulary';

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

const pct = (x: number | undefined): string => (x === undefined ? '-' : `${(100 * x).toFixed(2)} %`);
const pts = (x: number | undefined, base: number): string =>
  x === undefined ? '' : `${100 * (x - base) >= 0 ? '+' : ''}${(100 * (x - base)).toFixed(2)}`;

/** Writes a copy of artifact `src` whose predictor is quantised to `dtype` by tensors/quantize.ts (stored as float32). */
async function quantizedCopy(src: string, dst: string, dtype: QuantizedPredictorDtype): Promise<void> {
  const a = await readArtifact(src);
  try {
    const verbatim: VerbatimInput[] = a.meta.tensors
      .filter((t) => t.stored === 'verbatim')
      .map((t) => ({ name: t.name, dtype: t.storedDtype ?? 'F32', shape: t.shape, data: a.verbatimBytes(t.name) }));
    const bits = predictorQuantBits(dtype) ?? 8;
    await writeArtifact(dst, {
      meta: a.meta,
      predictor: quantizedPredictorWeights(a.predictor, bits),
      kernelMap: a.kernelMap,
      verbatim,
    });
  } finally {
    await a.close();
  }
}

/** Bytes of a predictor of `hidden` width stored as `dtype`: codes (int4 packed 2 a byte) + f32 scales + f32 biases. */
function predictorBytes(hidden: number, dtype: PredictorDtype): number {
  const bytesPer = { f32: 4, f16: 2, int8: 1, int4: 0.5 }[dtype];
  return layerShapes({ inputs: 240, hidden, outputs: 9, depth: 4 }).reduce(
    (n, [i, o]) => n + Math.ceil(i * o * bytesPer) + (dtype.startsWith('int') ? 4 * o : 0) + 4 * o,
    0,
  );
}

interface Row {
  dtype: QuantizedPredictorDtype;
  predictorBytes: number;
  shareOfRepresentedBytes: number;
  postHoc?: number;
  qat?: number;
  distilledFloat?: number;
  distilledQat?: number;
  distilledQatFromQat?: number;
}

async function main(): Promise<void> {
  if (!existsSync(TRAIN) || !existsSync(TEST)) {
    console.error(`Fashion-MNIST is not at ${DATA}; install it with: apt-get install dataset-fashion-mnist`);
    process.exitCode = 1;
    return;
  }
  mkdirSync(OUT, { recursive: true });
  const fraction = Number(arg('fraction') ?? 0.4);
  const steps = Number(arg('steps') ?? 3000);
  const qatSteps = Number(arg('qat-steps') ?? 1000);
  const distillSteps = Number(arg('distill-steps') ?? 150);
  const distillLr = Number(arg('distill-lr') ?? DEFAULT_DISTILL_OPTIONS.lr);
  const dtypes = (arg('dtypes') ?? 'int8,int4').split(',') as QuantizedPredictorDtype[];
  const limit = arg('limit') !== undefined ? Number(arg('limit')) : undefined;
  const testSamples = limit ?? 10_000;
  const lim = limit !== undefined ? { limit } : {};
  const accuracy = async (weights: string): Promise<number | undefined> =>
    (await evaluateModel(MODEL, TEST, { weights, ...lim })).candidate.accuracy;

  const original = await evaluateModel(MODEL, TEST, lim);
  const base = original.originalAccuracy ?? 0;
  console.log(`original: ${pct(base)} on ${original.candidate.n} Fashion-MNIST test images`);

  const compress = async (name: string, dtype?: QuantizedPredictorDtype): Promise<string> => {
    const out = join(OUT, `qat-${name}.nern.safetensors`);
    const started = performance.now();
    const r = await compressCheckpoint(
      STATE_DICT,
      {
        ...DEFAULT_COMPRESS_OPTIONS,
        budget: { kind: 'fraction', fraction },
        steps,
        out,
        ...(dtype ? { predictorDtype: dtype, qatSteps } : {}),
      },
      {
        onProgress: (p) => {
          if (p.step % 1000 === 0)
            process.stderr.write(
              `  ${name}: step ${p.step}/${p.steps} loss ${p.loss.toPrecision(3)} on ${p.backend}\n`,
            );
        },
      },
    );
    console.log(
      `compress ${name}: h ${r.hidden} (${((100 * r.predictorParams) / r.representedParams).toFixed(1)} % of ${r.representedParams} weights), ${steps} steps${dtype ? ` (last ${qatSteps} quantisation-aware, ${dtype})` : ''}, rmse ${r.rmse.toExponential(3)}${dtype ? ' (quantised)' : ''}, ${((performance.now() - started) / 1000).toFixed(0)} s on ${r.backend}`,
    );
    hidden = r.hidden;
    represented = r.representedParams;
    return out;
  };
  let hidden = 0;
  let represented = 1;
  const float = await compress('float');
  console.log(`float predictor: ${pct(await accuracy(float))} (${pts(await accuracy(float), base)})`);
  const rows: Row[] = [];
  const save = (): void => {
    writeFileSync(
      join(OUT, 'qat.json'),
      JSON.stringify(
        { originalAccuracy: base, testSamples, fraction, hidden, steps, qatSteps, distillSteps, rows },
        null,
        1,
      ),
    );
  };
  const distil = async (
    from: string,
    dtype: QuantizedPredictorDtype,
    qat: boolean,
    name: string,
  ): Promise<number | undefined> => {
    const out = join(OUT, `qat-${name}.distilled.nern.safetensors`);
    const started = performance.now();
    const d = await distillArtifact(
      {
        artifact: from,
        model: MODEL,
        data: TRAIN,
        options: {
          ...DEFAULT_DISTILL_OPTIONS,
          steps: distillSteps,
          lr: distillLr,
          evalEvery: 0,
          evalData: TEST,
          evalSamples: testSamples,
          predictorDtype: dtype,
          qat,
          out,
        },
      },
      {},
    );
    const q = join(OUT, `qat-${name}.distilled.q.nern.safetensors`);
    await quantizedCopy(out, q, dtype);
    const acc = await accuracy(q);
    console.log(
      `distil ${name} (${dtype}, ${qat ? 'quantisation-aware' : 'float, quantised after'}): before ${pct(d.before.accuracy)}, after ${pct(d.after.accuracy)}; quantised artifact ${pct(acc)} (${pts(acc, base)}), ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    return acc;
  };
  for (const dtype of dtypes) {
    const bytes = predictorBytes(hidden, dtype);
    const row: Row = { dtype, predictorBytes: bytes, shareOfRepresentedBytes: bytes / (4 * represented) };
    rows.push(row);
    const postHoc = join(OUT, `qat-float-${dtype}.q.nern.safetensors`);
    await quantizedCopy(float, postHoc, dtype);
    row.postHoc = await accuracy(postHoc);
    console.log(`${dtype} post-hoc: ${pct(row.postHoc)} (${pts(row.postHoc, base)})`);
    save();
    const qat = await compress(`qat-${dtype}`, dtype);
    const qatQ = join(OUT, `qat-qat-${dtype}.q.nern.safetensors`);
    await quantizedCopy(qat, qatQ, dtype);
    row.qat = await accuracy(qatQ);
    console.log(`${dtype} with ${qatSteps} quantisation-aware steps: ${pct(row.qat)} (${pts(row.qat, base)})`);
    save();
    row.distilledFloat = await distil(float, dtype, false, `float-${dtype}-noqat`);
    save();
    row.distilledQat = await distil(float, dtype, true, `float-${dtype}-qat`);
    save();
    row.distilledQatFromQat = await distil(qat, dtype, true, `qat-${dtype}-qat`);
    save();
  }
  console.log('');
  console.log(
    `| predictor | bytes / represented f32 | post-hoc quantised | + ${qatSteps} QAT steps | distilled, float then quantised | distilled with QAT | QAT reconstruction + QAT distillation |`,
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const cell = (x: number | undefined): string => `${pct(x)} (${pts(x, base)})`;
    console.log(
      `| ${r.dtype}, h ${hidden} | ${(100 * r.shareOfRepresentedBytes).toFixed(1)} % | ${cell(r.postHoc)} | ${cell(r.qat)} | ${cell(r.distilledFloat)} | ${cell(r.distilledQat)} | ${cell(r.distilledQatFromQat)} |`,
    );
  }
  console.log(
    `original ${pct(base)} on ${original.candidate.n} test images; ${steps} reconstruction steps, ${distillSteps} distillation steps`,
  );
}

void main();
