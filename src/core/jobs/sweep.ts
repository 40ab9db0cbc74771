/**
 * The method sweep: compresses one checkpoint with every method at every size, scores each artifact with the runnable
 * model on the user's data, optionally distils the NeRN ones, and returns one table with its Pareto front (smallest
 * file at each score). It is only orchestration over the compress, distill and evaluate jobs, so every row is an
 * artifact the user can open, decompress or evaluate again, and a run that fails is reported and the sweep goes on.
 */
import { mkdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { CompressOptionsDto } from '../../protocol/compress';
import { DEFAULT_DISTILL_OPTIONS } from '../../protocol/defaults';
import { checkpointStem } from '../../protocol/paths';
import type { EvalMetricsDto } from '../../protocol/evaluate';
import {
  FIXED_SIZE_METHODS,
  type SweepMetric,
  type SweepProgressDto,
  type SweepReportDto,
  type SweepRequestDto,
  type SweepRowDto,
} from '../../protocol/sweep';
import { COMPRESS_METHODS, isOneOf, type CompressMethod } from '../../protocol/vocabulary';
import { BadInputError, CancelledError, throwIfAborted } from '../io/errors';
import { compressCheckpoint } from './compress';
import { distillArtifact } from './distill';
import { evaluateModel } from './evaluate';

/** Callbacks and cancellation of a sweep. */
export interface SweepHooks {
  signal?: AbortSignal;
  onProgress?: (progress: SweepProgressDto) => void;
  /** Each row as soon as its artifact is scored (Pareto flags are only final in the report). */
  onRow?: (row: SweepRowDto) => void;
}

/** One planned run: a method, and the size asked for unless the method's size is fixed. */
interface PlannedRun {
  method: CompressMethod;
  size?: number;
}

/** The runs of a sweep, in order: each method at each size (fixed-size methods once). */
export function plannedRuns(methods: readonly CompressMethod[], sizes: readonly number[]): PlannedRun[] {
  const runs: PlannedRun[] = [];
  for (const method of methods) {
    if (FIXED_SIZE_METHODS.includes(method)) runs.push({ method });
    else for (const size of sizes) runs.push({ method, size });
  }
  return runs;
}

/**
 * Marks the Pareto front of `rows` in place (smaller bytes and higher score are better): a row is on it when no
 * other row is at most as big and at least as good with one of the two strictly. Returns the rows sorted by bytes,
 * then by score, best first.
 */
export function markPareto<T extends { bytes: number; score: number; pareto: boolean }>(rows: T[]): T[] {
  for (const row of rows) {
    row.pareto = !rows.some(
      (other) =>
        other !== row &&
        other.bytes <= row.bytes &&
        other.score >= row.score &&
        (other.bytes < row.bytes || other.score > row.score),
    );
  }
  return rows.sort((a, b) => a.bytes - b.bytes || b.score - a.score);
}

/** Checks a sweep request; throws BadInputError naming the option. */
export function checkSweepRequest(request: SweepRequestDto): void {
  if (request.methods.length === 0)
    throw new BadInputError('A sweep needs at least one method.', { option: 'methods' });
  for (const m of request.methods) {
    if (!isOneOf(COMPRESS_METHODS, m))
      throw new BadInputError(`Unknown method ${JSON.stringify(m)}; use ${COMPRESS_METHODS.join(', ')}.`, {
        option: 'methods',
      });
  }
  const sized = request.methods.some((m) => !FIXED_SIZE_METHODS.includes(m));
  if (sized && request.sizes.length === 0)
    throw new BadInputError('A sweep needs at least one size.', { option: 'sizes' });
  for (const s of request.sizes) {
    if (!(s > 0 && s <= 1)) throw new BadInputError(`Sizes are fractions in (0, 1], not ${s}.`, { option: 'sizes' });
  }
  if (!Number.isInteger(request.distillSteps) || request.distillSteps < 0)
    throw new BadInputError(`Distillation steps must be a whole number ≥ 0, not ${request.distillSteps}.`, {
      option: 'distillSteps',
    });
  if (request.distillSteps > 0 && request.distillData === undefined)
    throw new BadInputError(
      'Distillation needs training data of its own (not the data the sweep scores on): name it.',
      { option: 'distillData' },
    );
  if (request.distillSteps > 0 && request.distillData === request.data)
    throw new BadInputError(
      'The distillation data is the data the sweep scores on; train on other data, or the scores flatter NeRN.',
      { option: 'distillData' },
    );
}

/** The artifact a run writes in `folder`: `<stem>-<size %>.<method>.safetensors` (NeRN: `.nern.safetensors`). */
export function sweepArtifactPath(folder: string, stem: string, run: PlannedRun): string {
  const size = run.size !== undefined ? `-${Number((run.size * 100).toPrecision(3))}pct` : '';
  return join(folder, `${stem}${size}.${run.method}.safetensors`);
}

/** The score of `metrics` by `metric`. */
function scoreOf(metrics: EvalMetricsDto, metric: SweepMetric): number {
  return metric === 'accuracy' ? (metrics.accuracy ?? metrics.agreement) : (metrics.psnr ?? 0);
}

/**
 * Runs the sweep. Artifacts go to `request.outDir` (default `<stem>.sweep/` beside the checkpoint); an existing
 * artifact of the same name is replaced. Resolves to the table; rejects with CancelledError when `signal` aborts.
 */
export async function sweepMethods(request: SweepRequestDto, hooks: SweepHooks = {}): Promise<SweepReportDto> {
  checkSweepRequest(request);
  const { signal } = hooks;
  const started = performance.now();
  const stem = checkpointStem(request.checkpoint);
  const folder = request.outDir ?? join(dirname(request.checkpoint), `${stem}.sweep`);
  await mkdir(folder, { recursive: true });
  const sourceBytes = (await stat(request.checkpoint)).size;
  const runs = plannedRuns(request.methods, request.sizes);
  const evalOptions = {
    ...(request.limit !== undefined ? { limit: request.limit } : {}),
    ...(request.preprocess !== undefined ? { preprocess: request.preprocess } : {}),
    backend: request.compress.backend,
  };
  const progress = (run: number, planned: PlannedRun, stage: SweepProgressDto['stage'], fraction: number): void => {
    hooks.onProgress?.({
      run,
      runs: runs.length,
      method: planned.method,
      ...(planned.size !== undefined ? { size: planned.size } : {}),
      stage,
      fraction,
    });
  };
  // The original once: its accuracy is the reference every row's change is measured against.
  const first: PlannedRun = { method: request.methods[0] ?? 'nern' };
  progress(0, first, 'original', 0);
  const baseline = await evaluateModel(request.model, request.data, evalOptions, {
    ...(signal ? { signal } : {}),
    onProgress: (done, total) => {
      progress(0, first, 'original', total > 0 ? done / total : 0);
    },
  });
  const metric: SweepMetric = baseline.classifier && baseline.originalAccuracy !== undefined ? 'accuracy' : 'psnr';
  const original = metric === 'accuracy' ? baseline.originalAccuracy : undefined;
  const rows: SweepRowDto[] = [];
  const failures: SweepReportDto['failures'] = [];

  const score = async (
    index: number,
    planned: PlannedRun,
    artifact: string,
    distilled: boolean,
    seconds: number,
    own = false,
  ): Promise<void> => {
    progress(index, planned, 'evaluate', 0);
    const report = await evaluateModel(
      request.model,
      request.data,
      { ...evalOptions, weights: artifact },
      {
        ...(signal ? { signal } : {}),
        onProgress: (done, total) => {
          progress(index, planned, 'evaluate', total > 0 ? done / total : 0);
        },
      },
    );
    const value = scoreOf(report.candidate, metric);
    const bytes = (await stat(artifact)).size;
    const row: SweepRowDto = {
      method: planned.method,
      ...(planned.size !== undefined ? { size: planned.size } : {}),
      distilled,
      artifact,
      bytes,
      fractionOfSource: bytes / sourceBytes,
      score: value,
      ...(original !== undefined ? { change: value - original } : {}),
      agreement: report.candidate.agreement,
      seconds,
      pareto: false,
      ...(own ? { own: true } : {}),
    };
    rows.push(row);
    hooks.onRow?.(row);
  };

  for (const [i, planned] of runs.entries()) {
    throwIfAborted(signal);
    const index = i + 1;
    const out = sweepArtifactPath(folder, stem, planned);
    try {
      progress(index, planned, 'compress', 0);
      const t0 = performance.now();
      const options: CompressOptionsDto = {
        ...request.compress,
        method: planned.method,
        ...(planned.size !== undefined ? { budget: { kind: 'fraction', fraction: planned.size } } : {}),
        out,
      };
      await compressCheckpoint(request.checkpoint, options, {
        ...(signal ? { signal } : {}),
        onProgress: (p) => {
          progress(index, planned, 'compress', p.steps > 0 ? p.step / p.steps : 0);
        },
      });
      const compressSeconds = (performance.now() - t0) / 1000;
      await score(index, planned, out, false, compressSeconds);
      if (planned.method === 'nern' && request.distillSteps > 0 && request.distillData !== undefined) {
        progress(index, planned, 'distill', 0);
        const t1 = performance.now();
        const distilledOut = out.replace(/\.nern\.safetensors$/, '.distilled.nern.safetensors');
        await distillArtifact(
          {
            artifact: out,
            model: request.model,
            data: request.distillData,
            options: {
              ...DEFAULT_DISTILL_OPTIONS,
              ...request.distill,
              steps: request.distillSteps,
              backend: request.compress.backend,
              out: distilledOut,
              ...(request.preprocess !== undefined ? { preprocess: request.preprocess } : {}),
            },
          },
          {
            ...(signal ? { signal } : {}),
            onProgress: (p) => {
              progress(index, planned, 'distill', p.steps > 0 ? p.step / p.steps : 0);
            },
          },
        );
        await score(index, planned, distilledOut, true, compressSeconds + (performance.now() - t1) / 1000);
      }
    } catch (error) {
      if (error instanceof CancelledError || signal?.aborted === true) throw error;
      if (!(error instanceof BadInputError)) throw error;
      failures.push({
        method: planned.method,
        ...(planned.size !== undefined ? { size: planned.size } : {}),
        message: error.message,
      });
    }
  }
  for (const artifact of request.ownArtifacts ?? []) {
    throwIfAborted(signal);
    try {
      await score(runs.length, { method: 'nern' }, artifact, false, 0, true);
    } catch (error) {
      if (error instanceof CancelledError || signal?.aborted === true) throw error;
      if (!(error instanceof BadInputError)) throw error;
      failures.push({ method: 'nern', message: `${basename(artifact)}: ${error.message}` });
    }
  }
  return {
    checkpoint: request.checkpoint,
    model: request.model,
    data: request.data,
    sourceBytes,
    metric,
    ...(original !== undefined ? { original } : {}),
    samples: baseline.candidate.n,
    rows: markPareto(rows),
    failures,
    seconds: (performance.now() - started) / 1000,
  };
}
