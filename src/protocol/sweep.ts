/**
 * Plain data of a method sweep (`weight-lens sweep`, the Budget panel's Compare methods…): what to compress with
 * which methods at which sizes, the per-run rows as they finish, and the final table with its Pareto front. The
 * engine's job (src/core/jobs/sweep.ts), the CLI and the webview read these types. Imports nothing heavy.
 */
import type { CompressOptionsDto } from './compress';
import type { DistillOptionsDto, PreprocessDto } from './evaluate';
import type { CompressMethod } from './vocabulary';

/** Sizes a sweep tries by default: fractions of the represented weights' float32 bytes. */
export const DEFAULT_SWEEP_SIZES: readonly number[] = [0.05, 0.1, 0.2, 0.4];

/** Methods whose size is fixed by the method itself (one run each, whatever the sizes). */
export const FIXED_SIZE_METHODS: readonly CompressMethod[] = ['int8', 'int4'];

/**
 * Parses sizes such as "0.05, 0.1, 20%" (commas or spaces) into sorted, distinct fractions in (0, 1]; undefined
 * when any part is not one, or for none or more than 12.
 */
export function parseSizes(text: string): number[] | undefined {
  const parts = text
    .split(/[,\s]+/)
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  if (parts.length === 0 || parts.length > 12) return undefined;
  const sizes: number[] = [];
  for (const p of parts) {
    const percent = p.endsWith('%');
    const n = Number(percent ? p.slice(0, -1) : p) / (percent ? 100 : 1);
    if (!(n > 0 && n <= 1)) return undefined;
    sizes.push(n);
  }
  return [...new Set(sizes)].sort((a, b) => a - b);
}

/** What a sweep needs. */
export interface SweepRequestDto {
  /** The checkpoint to compress. */
  checkpoint: string;
  /** The runnable model (ONNX or TF.js) whose weights the checkpoint holds, and the data it is scored on. */
  model: string;
  data: string;
  methods: CompressMethod[];
  /** Fractions of the represented weights' float32 bytes, each in (0, 1]. */
  sizes: number[];
  /** Compression options shared by every run (steps, seed, represent policy, predictor dtype…); budget and method
   * are set per run. */
  compress: CompressOptionsDto;
  /** Distillation steps added to each NeRN run (0 = reconstruction only). */
  distillSteps: number;
  /** Training data of the distillation phase (required when distillSteps > 0; never the scoring data). */
  distillData?: string;
  /** Distillation options besides steps (defaults: DEFAULT_DISTILL_OPTIONS). */
  distill?: Partial<DistillOptionsDto>;
  /** Score on at most this many samples of `data` (the first ones); default all. */
  limit?: number;
  preprocess?: PreprocessDto;
  /** Folder for the artifacts; default `<checkpoint stem>.sweep` beside the checkpoint. */
  outDir?: string;
  /** Artifacts the user made earlier from this checkpoint, scored as well and marked `own` (not compressed again). */
  ownArtifacts?: string[];
}

/** Which figure a sweep scores by: top-1 accuracy (classifiers with labels) or output PSNR in dB. */
export type SweepMetric = 'accuracy' | 'psnr';

/** One compressed artifact, scored. */
export interface SweepRowDto {
  method: CompressMethod;
  /** The size asked for (fraction of the represented weights' float32 bytes); absent for fixed-size methods. */
  size?: number;
  /** Whether the distillation phase ran on this artifact. */
  distilled: boolean;
  artifact: string;
  /** Bytes of the artifact file. */
  bytes: number;
  /** bytes / the source file's bytes. */
  fractionOfSource: number;
  /** The score (accuracy in [0, 1], or PSNR in dB) and its change against the original (accuracy: in points ×
   * 0.01, i.e. the same unit as the score; PSNR: absent, the original's own PSNR is infinite). */
  score: number;
  change?: number;
  /** Agreement of top-1 classes with the original model, in [0, 1]. */
  agreement: number;
  /** Compression (and distillation) wall time in seconds. */
  seconds: number;
  /** On the Pareto front: no other row is at most as big and at least as good, and better in one of the two. */
  pareto: boolean;
  /** One of the user's own earlier artifacts (`ownArtifacts`), scored but not made by the sweep. */
  own?: boolean;
}

/** A run that failed: the sweep goes on with the others. */
export interface SweepFailureDto {
  method: CompressMethod;
  size?: number;
  message: string;
}

/** Progress of a sweep: which run of how many, and what it is doing. */
export interface SweepProgressDto {
  run: number;
  runs: number;
  method: CompressMethod;
  size?: number;
  stage: 'original' | 'compress' | 'evaluate' | 'distill';
  /** Progress of the stage in [0, 1]. */
  fraction: number;
}

/** Verbs of the sweep's stages, as its progress reads (`compressing nern at 10 %`). */
const STAGE_VERBS: Readonly<Record<Exclude<SweepProgressDto['stage'], 'original'>, string>> = {
  compress: 'compressing',
  evaluate: 'scoring',
  distill: 'distilling',
};

/**
 * What a sweep is doing, in words for the progress notification and the Budget panel: `scoring the original`, or
 * the stage's verb, the method and the size asked for in percent (`compressing nern at 10 %`, `scoring int8`).
 */
export function describeSweepStage(progress: SweepProgressDto): string {
  if (progress.stage === 'original') return 'scoring the original';
  const size = progress.size !== undefined ? ` at ${Math.round(progress.size * 1000) / 10} %` : '';
  return `${STAGE_VERBS[progress.stage]} ${progress.method}${size}`;
}

/** The final table. */
export interface SweepReportDto {
  checkpoint: string;
  model: string;
  data: string;
  sourceBytes: number;
  metric: SweepMetric;
  /** The original model's score (accuracy; absent for PSNR, where the original is the reference). */
  original?: number;
  /** Samples scored. */
  samples: number;
  /** Rows sorted by bytes, smallest first. */
  rows: SweepRowDto[];
  failures: SweepFailureDto[];
  seconds: number;
}
