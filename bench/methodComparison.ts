/**
 * The method comparison of `npm run bench:accuracy` (`--only methods`): on the project's ResNet-20 trained on
 * Fashion-MNIST, every built-in baseline (int8, int4, low-rank, pruning) and NeRN at float32, int8 and int4
 * predictors, each written as a real artifact by the sweep job (jobs/sweep.ts) and scored on the 10,000 test images by
 * the ONNX graph. NeRN configurations are distilled on the training images (never on the test images, which only
 * score). Each row gives the bytes of the represented convolutions (everything stored for them: predictor,
 * permutations, scales, or the baselines' codes, factors and masks) as a share of those convolutions' float32 bytes,
 * the whole file beside it, and the accuracy change. The table ends with, per method, the smallest artifact within
 * `--within` points (default 0.2) of the original, so the winner is read off plainly, whichever method it is.
 *
 * The same comparison runs on ESRGAN-slim x2 (a TF.js LayersModel; output PSNR on held-out photo crops) when
 * `--esrgan` is given.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileByteSource } from '../src/core/io/byteSource';
import { DEFAULT_COMPRESS_OPTIONS } from '../src/core/jobs/compress';
import { readHeader } from '../src/core/nern/artifact';
import { sweepMethods } from '../src/core/jobs/sweep';
import type { CompressOptionsDto, PermutationKind, PredictorDtype } from '../src/protocol/compress';
import type { SweepReportDto, SweepRowDto } from '../src/protocol/sweep';
import type { CompressMethod } from '../src/protocol/vocabulary';

/** One NeRN configuration of the comparison. */
export interface NernConfig {
  /** Predictor parameters as a fraction of the represented weights. */
  fraction: number;
  dtype: PredictorDtype;
  permutation: PermutationKind;
  /** Quantisation-aware reconstruction steps at the end (int8/int4 only). */
  qatSteps: number;
}

/** What the comparison runs on. */
export interface ComparisonSetup {
  label: string;
  checkpoint: string;
  model: string;
  /** Scoring data (never trained on). */
  data: string;
  /** Distillation training data. */
  distillData: string;
  outDir: string;
  limit?: number;
  /** Extra distillation options (batch size for a large model, …). */
  distill?: { batchSize?: number };
}

/** One scored artifact with its byte split. */
export interface ComparisonRow {
  label: string;
  method: CompressMethod;
  distilled: boolean;
  artifact: string;
  /** Bytes stored for the represented weights (file − metadata − verbatim tensors). */
  representedBytes: number;
  /** representedBytes / the represented weights' float32 bytes. */
  representedShare: number;
  fileBytes: number;
  fileShare: number;
  score: number;
  /** Score change (accuracy: fraction, ×100 for points; PSNR rows: absent). */
  change?: number;
  seconds: number;
}

/**
 * Data bytes of the artifact's tensors named `verbatim.*`, and the metadata bytes (prefix + header), from its header
 * as the artifact reader checks it (nern/artifact.ts `readHeader`; baseline artifacts share the container).
 */
async function verbatimAndHeaderBytes(path: string): Promise<{ verbatim: number; metadata: number }> {
  const source = await FileByteSource.open(path);
  try {
    const { tensors, dataStart } = await readHeader(source, path);
    let verbatim = 0;
    for (const [name, t] of tensors) if (name.startsWith('verbatim.')) verbatim += t.length;
    return { verbatim, metadata: dataStart };
  } finally {
    await source.close();
  }
}

const pointsOf = (change: number | undefined): string =>
  change === undefined ? '' : `${change >= 0 ? '+' : '−'}${Math.abs(100 * change).toFixed(2)}`;

/** One printable line of a row. */
export function describeRow(r: ComparisonRow, metric: SweepReportDto['metric']): string {
  const score =
    metric === 'accuracy' ? `${(100 * r.score).toFixed(2)} % (${pointsOf(r.change)})` : `${r.score.toFixed(2)} dB`;
  return `| ${r.label}${r.distilled ? ', distilled' : ''} | ${(r.representedBytes / 1000).toFixed(1)} kB = ${(100 * r.representedShare).toFixed(2)} % | ${(r.fileBytes / 1000).toFixed(1)} kB = ${(100 * r.fileShare).toFixed(1)} % | ${score} | ${r.seconds.toFixed(0)} s |`;
}

/**
 * Runs the comparison: the baselines (int8, int4 once; low-rank and pruning at `baselineSizes`), then each NeRN
 * configuration with `distillSteps` of distillation. `representedParams` is the represented weights' count (for the
 * float32 byte share). Rows are printed as they come and written to `<outDir>/methods.json`.
 */
export async function compareMethods(
  setup: ComparisonSetup,
  representedParams: number,
  baselineSizes: readonly number[],
  nern: readonly NernConfig[],
  compressSteps: number,
  distillSteps: number,
  within: number,
): Promise<ComparisonRow[]> {
  const representedF32 = 4 * representedParams;
  const rows: ComparisonRow[] = [];
  // What the sweeps report about the original (the same for every sweep of one setup).
  const scored: { metric: SweepReportDto['metric']; original?: number } = { metric: 'accuracy' };
  const save = (): void => {
    writeFileSync(join(setup.outDir, 'methods.json'), JSON.stringify({ setup, ...scored, rows }, null, 1));
  };
  const collect = async (report: SweepReportDto, labelOf: (row: SweepRowDto) => string): Promise<void> => {
    scored.metric = report.metric;
    if (report.original !== undefined) scored.original = report.original;
    for (const r of report.rows) {
      const { verbatim, metadata } = await verbatimAndHeaderBytes(r.artifact);
      const representedBytes = r.bytes - verbatim - metadata;
      const row: ComparisonRow = {
        label: labelOf(r),
        method: r.method,
        distilled: r.distilled,
        artifact: r.artifact,
        representedBytes,
        representedShare: representedBytes / representedF32,
        fileBytes: r.bytes,
        fileShare: r.fractionOfSource,
        score: r.score,
        ...(r.change !== undefined ? { change: r.change } : {}),
        seconds: r.seconds,
      };
      rows.push(row);
      console.log(describeRow(row, scored.metric));
    }
    for (const f of report.failures) console.log(`  failed: ${f.method} ${f.size ?? ''}: ${f.message}`);
    save();
  };
  const common = {
    checkpoint: setup.checkpoint,
    model: setup.model,
    data: setup.data,
    ...(setup.limit !== undefined ? { limit: setup.limit } : {}),
  };
  const progress = (p: { run: number; runs: number; method: string; stage: string; fraction: number }): void => {
    if (p.fraction === 0) process.stderr.write(`  ${setup.label}: run ${p.run}/${p.runs} ${p.method} ${p.stage}\n`);
  };
  console.log(
    `\n${setup.label}: represented weights ${representedParams} (${(representedF32 / 1000).toFixed(1)} kB as float32)`,
  );
  console.log(
    '| method | represented weights stored (share of float32) | whole file (share of source) | score | seconds |',
  );
  console.log('|---|---|---|---|---|');
  const baselines = await sweepMethods(
    {
      ...common,
      methods: ['int8', 'int4', 'lowrank', 'prune'],
      sizes: [...baselineSizes],
      compress: { ...DEFAULT_COMPRESS_OPTIONS },
      distillSteps: 0,
      outDir: join(setup.outDir, 'baselines'),
    },
    { onProgress: progress },
  );
  if (baselines.original !== undefined)
    console.log(`  (original: ${(100 * baselines.original).toFixed(2)} % on ${baselines.samples} samples)`);
  await collect(baselines, (r) => (r.size !== undefined ? `${r.method} at ${(100 * r.size).toFixed(0)} %` : r.method));
  for (const config of nern) {
    const label = `NeRN ${config.dtype} predictor, ${(100 * config.fraction).toFixed(0)} % of params, ${config.permutation}${config.qatSteps > 0 ? `, ${config.qatSteps} QAT steps` : ''}`;
    const compress: CompressOptionsDto = {
      ...DEFAULT_COMPRESS_OPTIONS,
      steps: compressSteps,
      permutation: config.permutation,
      predictorDtype: config.dtype,
      ...(config.qatSteps > 0 ? { qatSteps: config.qatSteps } : {}),
      lean: true,
    };
    const report = await sweepMethods(
      {
        ...common,
        methods: ['nern'],
        sizes: [config.fraction],
        compress,
        distillSteps,
        distillData: setup.distillData,
        ...(setup.distill !== undefined ? { distill: setup.distill } : {}),
        outDir: join(setup.outDir, `nern-${config.dtype}-${config.fraction}-${config.permutation}`),
      },
      { onProgress: progress },
    );
    await collect(report, () => label);
  }
  console.log('');
  const { metric, original } = scored;
  if (metric === 'accuracy' && original !== undefined) {
    console.log(
      `Smallest artifact within ${within} points of the original (${(100 * original).toFixed(2)} %), per method:`,
    );
    for (const method of ['int8', 'int4', 'lowrank', 'prune', 'nern'] as const) {
      const ok = rows
        .filter((r) => r.method === method && r.change !== undefined && 100 * r.change >= -within)
        .sort((a, b) => a.representedBytes - b.representedBytes);
      const best = ok[0];
      console.log(
        best ? `  ${method}: ${describeRow(best, metric)}` : `  ${method}: none of its rows is within ${within} points`,
      );
    }
  }
  return rows;
}
