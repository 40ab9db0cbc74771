/**
 * The pure part of the "Compress Checkpoint…" flow: the budget candidates offered, parsing and validating what the
 * user types (a predictor width, a target size), the compression options built from the settings, the artifact path
 * beside the source, and the texts of the progress notification, status bar and quick-pick descriptions. No `vscode`
 * import, so it is unit-tested under Node.
 */
import * as path from 'node:path';
import { formatBytes, formatCount, formatEta } from '../../protocol/units';
import type {
  BackendName,
  BudgetDto,
  BudgetPlanDto,
  CompressOptionsDto,
  CompressProgressDto,
  CompressReportDto,
  PermutationKind,
  PointwiseLayout,
  PredictorDtype,
  RecipeName,
  VerbatimDtype,
} from '../../protocol/compress';
import type { RunSummaryDto } from '../../protocol/panels';
import {
  BACKEND_NAMES,
  isOneOf,
  PERMUTATION_KINDS,
  POINTWISE_LAYOUTS,
  PREDICTOR_DTYPES,
  RECIPE_NAMES,
  VERBATIM_DTYPES,
} from '../../protocol/vocabulary';
import { DEFAULT_COMPRESS_OPTIONS, DEFAULT_POINTWISE } from '../../protocol/defaults';

/** Predictor sizes offered first, as fractions of the represented weights. */
export const BUDGET_FRACTIONS: readonly number[] = [0.25, 0.4, 0.5, 0.75];

/** Limits on what a user may type. */
export const INPUT_LIMITS = {
  /** Widest predictor accepted (hidden units). */
  maxHidden: 4096,
  /** Most training steps accepted. */
  maxSteps: 10_000_000,
} as const;

/** The `weightLens.compress.*` settings, validated. */
export interface CompressSettings {
  steps: number;
  permutation: PermutationKind;
  seed: number;
  representDense: boolean;
  /** `weightLens.compress.pointwise`: how 1×1 convolutions are represented (`DEFAULT_POINTWISE` when unset). */
  pointwise: PointwiseLayout;
  /** `weightLens.compress.recipe`: Weight Lens' defaults, or NeRN's exact settings for comparison. */
  recipe: RecipeName;
  /** `weightLens.compress.predictorDtype`: how the predictor's weights are stored (f32 when unset). */
  predictorDtype: PredictorDtype;
  /** `weightLens.compress.verbatimDtype`: how the verbatim float tensors are stored (f32 when unset). */
  verbatimDtype: VerbatimDtype;
}

/** What each predictor dtype costs, as the storage pick describes it. */
export const PREDICTOR_DTYPE_DESCRIPTIONS: Readonly<Record<PredictorDtype, string>> = {
  f32: 'float32, 4 bytes per predictor weight',
  f16: 'float16, 2 bytes per predictor weight',
  int8: 'int8 codes + a scale per output unit, 1 byte per weight',
  int4: 'int4 codes + a scale per output unit, ½ byte per weight',
};

/** What each verbatim dtype does, as the storage pick describes it. */
export const VERBATIM_DTYPE_DESCRIPTIONS: Readonly<Record<VerbatimDtype, string>> = {
  f32: 'each verbatim tensor in its own dtype, exact',
  f16: 'float32 verbatim tensors as float16',
  int8: 'float verbatim tensors as int8 codes + a scale per row',
};

/** The storage item's label in the budget pick, naming the dtypes the plans are for. */
export function storageLabel(settings: Pick<CompressSettings, 'predictorDtype' | 'verbatimDtype'>): string {
  return `Stored as: predictor ${settings.predictorDtype} · verbatim ${settings.verbatimDtype}…`;
}

/** Reads and clamps the compression settings through `get(key, fallback)` (e.g. a `WorkspaceConfiguration.get`). */
export function readCompressSettings(get: (key: string) => unknown): CompressSettings {
  const steps = get('compress.steps');
  const permutation = get('compress.permutation');
  const seed = get('compress.seed');
  const dense = get('compress.representDense');
  const pointwise = get('compress.pointwise');
  const recipe = get('compress.recipe');
  const predictorDtype = get('compress.predictorDtype');
  const verbatimDtype = get('compress.verbatimDtype');
  return {
    steps:
      typeof steps === 'number' && Number.isFinite(steps)
        ? Math.min(INPUT_LIMITS.maxSteps, Math.max(1, Math.round(steps)))
        : 2000,
    permutation: isOneOf(PERMUTATION_KINDS, permutation) ? permutation : DEFAULT_COMPRESS_OPTIONS.permutation,
    seed: typeof seed === 'number' && Number.isFinite(seed) ? Math.max(0, Math.round(seed)) : 0,
    representDense: dense === true,
    pointwise: isOneOf(POINTWISE_LAYOUTS, pointwise) ? pointwise : DEFAULT_POINTWISE,
    recipe: isOneOf(RECIPE_NAMES, recipe) ? recipe : 'weight-lens',
    predictorDtype: isOneOf(PREDICTOR_DTYPES, predictorDtype) ? predictorDtype : 'f32',
    verbatimDtype: isOneOf(VERBATIM_DTYPES, verbatimDtype) ? verbatimDtype : 'f32',
  };
}

/** The `weightLens.backend` setting as a backend name (`auto` when unknown). */
export function backendName(raw: unknown): BackendName {
  return isOneOf(BACKEND_NAMES, raw) ? raw : 'auto';
}

/** Options for a plan or a run. */
export function buildOptions(
  settings: CompressSettings,
  budget: BudgetDto,
  backend: BackendName,
  overrides: { permutation?: PermutationKind; steps?: number; out?: string } = {},
): CompressOptionsDto {
  const options: CompressOptionsDto = {
    budget,
    steps: overrides.steps ?? settings.steps,
    permutation: overrides.permutation ?? settings.permutation,
    seed: settings.seed,
    represent: { conv: true, dense: settings.representDense, pointwise: settings.pointwise },
    backend,
    rounds: 1,
    roundWidthScale: 1,
    recipe: settings.recipe,
  };
  // Only what differs from f32 is passed, so a plan and a run of f32 storage carry the same options as before.
  if (settings.predictorDtype !== 'f32') options.predictorDtype = settings.predictorDtype;
  if (settings.verbatimDtype !== 'f32') options.verbatimDtype = settings.verbatimDtype;
  if (overrides.out !== undefined) options.out = overrides.out;
  return options;
}

/** Result of parsing user input: a value, or a one-sentence reason it is not accepted. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** Parses a predictor width: a whole number from 1 to `INPUT_LIMITS.maxHidden`. */
export function parseWidth(text: string): Parsed<number> {
  const t = text.trim();
  if (!/^\d+$/.test(t))
    return { ok: false, message: 'Enter the predictor width as a whole number of hidden units, e.g. 64.' };
  const n = Number(t);
  if (n < 1 || n > INPUT_LIMITS.maxHidden)
    return { ok: false, message: `The width must be between 1 and ${INPUT_LIMITS.maxHidden}.` };
  return { ok: true, value: n };
}

/** Parses a step count: a whole number from 1 to `INPUT_LIMITS.maxSteps` (`_` and `,` separators allowed). */
export function parseSteps(text: string): Parsed<number> {
  const t = text.trim().replace(/[_,]/g, '');
  if (!/^\d+$/.test(t))
    return { ok: false, message: 'Enter the number of training steps as a whole number, e.g. 2000.' };
  const n = Number(t);
  if (n < 1 || n > INPUT_LIMITS.maxSteps)
    return {
      ok: false,
      message: `The step count must be between 1 and ${INPUT_LIMITS.maxSteps.toLocaleString('en-US')}.`,
    };
  return { ok: true, value: n };
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gib: 1024 ** 3,
};

/**
 * Parses a target size: bytes with an optional unit (`800 kB`, `1.5 MB`, `2 MiB`), or a percentage of the source
 * file (`30 %`, needs `sourceBytes`). The result must be positive and smaller than the source.
 */
export function parseSize(text: string, sourceBytes?: number): Parsed<BudgetDto> {
  const t = text.trim().toLowerCase();
  const percent = /^(\d+(?:\.\d+)?)\s*%$/.exec(t);
  if (percent?.[1] !== undefined) {
    if (sourceBytes === undefined || sourceBytes <= 0)
      return { ok: false, message: 'The source size is not known; give the size in bytes, e.g. 2 MB.' };
    const p = Number(percent[1]);
    if (p <= 0 || p >= 100) return { ok: false, message: 'A percentage of the source must be between 0 and 100.' };
    return { ok: true, value: { kind: 'bytes', bytes: Math.round((sourceBytes * p) / 100) } };
  }
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(t);
  const unit = m?.[2] ?? '';
  const scale = SIZE_UNITS[unit];
  if (m?.[1] === undefined || scale === undefined)
    return { ok: false, message: 'Enter a size such as 800 kB, 1.5 MB or 30 % (of the source file).' };
  const bytes = Math.round(Number(m[1]) * scale);
  if (bytes <= 0) return { ok: false, message: 'The target size must be more than 0 bytes.' };
  if (sourceBytes !== undefined && sourceBytes > 0 && bytes >= sourceBytes) {
    return { ok: false, message: `The target size must be smaller than the source (${formatBytes(sourceBytes)}).` };
  }
  return { ok: true, value: { kind: 'bytes', bytes } };
}

/** Byte and count units, like the CLI and the webviews (the shared implementations in src/protocol/units). */
export { formatBytes, formatCount };

/**
 * Label of a fraction budget item, short and led by the compression ratio once the plan is known, so a narrow quick
 * pick never cuts it off: `4.0× smaller · predictor 25 %`; before: `Predictor 25 % of represented weights`.
 */
export function fractionLabel(fraction: number, plan?: BudgetPlanDto): string {
  const percent = Math.round(fraction * 100);
  if (plan === undefined || plan.artifactBytes <= 0) return `Predictor ${percent} % of represented weights`;
  return `${(plan.sourceBytes / plan.artifactBytes).toFixed(1)}× smaller · predictor ${percent} %`;
}

/** Quick-pick description of a plan (the ratio is in the label): width, predictor size, artifact size. */
export function describePlan(plan: BudgetPlanDto): string {
  return `h = ${plan.hidden} · ${formatCount(plan.predictorParams)} params · artifact ≈ ${formatBytes(plan.artifactBytes)}`;
}

/**
 * Message of the progress notification, with the time left from the current speed:
 * `step 120 / 2000 · about 22 s left · loss 1.2e-3 · 85 steps/s · wasm`.
 */
export function progressMessage(p: CompressProgressDto): string {
  const loss = Number.isFinite(p.loss) ? p.loss.toPrecision(3) : String(p.loss);
  const round = p.round > 1 ? ` · round ${p.round}` : '';
  const speed = p.stepsPerSecond >= 10 ? p.stepsPerSecond.toFixed(0) : p.stepsPerSecond.toFixed(1);
  const eta = formatEta(p.step, p.steps, p.stepsPerSecond);
  return `step ${p.step} / ${p.steps}${eta === '' ? '' : ` · ${eta}`} · loss ${loss} · ${speed} steps/s · ${p.backend}${round}`;
}

/** Percent done (0…100, whole) of a progress sample. */
export function percentDone(p: CompressProgressDto): number {
  if (p.steps <= 0) return 0;
  return Math.max(0, Math.min(100, Math.floor((p.step / p.steps) * 100)));
}

/**
 * The engine's short name for the status bar: `onnxruntime CPU` for the native engine's `onnxruntime (native, N
 * threads)`, `onnxruntime CUDA` / `onnxruntime WebGPU` on a GPU, else the tfjs backend as named.
 */
export function engineShortName(backend: string): string {
  const native = /^onnxruntime \(native, (.+)\)$/.exec(backend);
  if (native === null) return backend.split(' ')[0] ?? backend;
  const device = native[1] ?? '';
  return `onnxruntime ${/^\d+ threads?$/.test(device) ? 'CPU' : device}`;
}

/** The status bar text while compressing: percent done and the engine that trains. */
export function statusBarText(p: CompressProgressDto | undefined): string {
  return p === undefined
    ? '$(sync~spin) Weight Lens: compressing…'
    : `$(sync~spin) Weight Lens: compressing ${percentDone(p)} % · ${engineShortName(p.backend)}`;
}

/** The status bar tooltip while compressing: the full engine name, and why another device was not used. */
export function statusBarTooltip(p: CompressProgressDto): string {
  return `Weight Lens trains on ${p.backend}${p.engineReason !== undefined ? ` (${p.engineReason})` : ''}. Click to show the Reconstruction panel.`;
}

/** A relative error as a percentage with a sensible precision: `31.2 %`, `0.42 %`, `0.0031 %`. */
export function relativePercent(x: number): string {
  const p = 100 * x;
  if (p >= 10) return `${p.toFixed(1)} %`;
  if (p >= 0.01 || p === 0) return `${Number(p.toPrecision(2))} %`;
  return `${p.toExponential(1)} %`;
}

/**
 * The message shown when a run finishes, headlined by the relative weight error (an RMSE alone looks negligible
 * whatever it costs) and the range of the per-layer errors: `Compressed r.pt 2.10× (1.1 MB → 520 kB): weights
 * reconstructed with 31.2 % relative error (per layer 22.0 %–65.3 %). Evaluate it to see what that costs in accuracy.`
 */
export function doneMessage(report: CompressReportDto): string {
  const errors = report.layers.map((l) => l.relativeError);
  const range =
    errors.length > 1
      ? ` (per layer ${relativePercent(Math.min(...errors))}–${relativePercent(Math.max(...errors))})`
      : '';
  const stopped =
    report.stoppedEarly === undefined
      ? ''
      : `Stopped early and saved after step ${report.stoppedEarly.step.toLocaleString('en-US')} of ${report.stoppedEarly.steps.toLocaleString('en-US')}. `;
  return `${stopped}Compressed ${path.basename(report.source)} ${report.ratio.toFixed(2)}× (${formatBytes(report.sourceBytes)} → ${formatBytes(report.artifactBytes)}): weights reconstructed with ${relativePercent(report.relativeError)} relative error${range}. Evaluate it to see what that costs in accuracy.`;
}

/** The run summary remembered for the Budget panel's size/error curve. */
export function runSummary(report: CompressReportDto, finishedAt: number): RunSummaryDto {
  return {
    source: report.source,
    artifact: report.artifact,
    hidden: report.hidden,
    fraction: report.representedParams > 0 ? report.predictorParams / report.representedParams : 0,
    rmse: report.rmse,
    ratio: report.ratio,
    artifactBytes: report.artifactBytes,
    steps: report.steps,
    permutation: report.permutation,
    finishedAt,
  };
}

/**
 * The `n`-th alternative name of an artifact path, for "keep both": `model.nern.safetensors` → `model-2.nern.safetensors`
 * (n ≥ 2). Paths without the `.nern.safetensors` ending get the number before their extension.
 */
export function numberedArtifactPath(artifact: string, n: number): string {
  const suffix = '.nern.safetensors';
  if (artifact.toLowerCase().endsWith(suffix)) return `${artifact.slice(0, -suffix.length)}-${n}${suffix}`;
  const ext = path.extname(artifact);
  return `${artifact.slice(0, artifact.length - ext.length)}-${n}${ext}`;
}
