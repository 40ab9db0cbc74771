/**
 * The pure part of "Distill Compressed Model…" and the Reconstruction panel's "Evaluate…": the distillation settings
 * offered in the quick pick (with their defaults and where those come from), parsing and validating what the user
 * types (numbers, preprocessing), the options argument other extensions and tests pass instead of dialogs, the output
 * path, the texts of the progress notification, the candidate files suggested for models and data, and the choices
 * remembered per artifact and per model. No `vscode` import, so it is unit-tested under Node.
 */
import * as path from 'node:path';
import type { BackendName } from '../../protocol/compress';
import { DEFAULT_DISTILL_OPTIONS, DISTILL_DEFAULT_SOURCES } from '../../protocol/defaults';
import type {
  DistillOptionsDto,
  DistillProgressDto,
  DistillReportDto,
  EvalMetricsDto,
  EvalReportDto,
  PreprocessDto,
} from '../../protocol/evaluate';
import type { MementoLike } from '../compress/compressHistory';
import type { Parsed } from '../compress/compressChoices';
import { BACKEND_NAMES, isOneOf } from '../../protocol/vocabulary';
import { formatEta } from '../../protocol/units';

// ---------------------------------------------------------------------------------------------------------------
// Settings

/** The numeric distillation options a user may edit in the settings quick pick. */
export type NumericDistillKey =
  | 'steps'
  | 'batchSize'
  | 'lr'
  | 'temperature'
  | 'klWeight'
  | 'featureWeight'
  | 'reconstructionWeight'
  | 'evalSamples'
  | 'evalEvery';

/** How one numeric setting is shown and validated. Bounds are inclusive unless `minExclusive` / `maxExclusive`. */
export interface NumericSetting {
  key: NumericDistillKey;
  /** Label in the quick pick ("Learning rate"). */
  label: string;
  /** What it means, for the input box prompt. */
  prompt: string;
  integer: boolean;
  min: number;
  max: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
}

/** The editable numeric settings in the order the quick pick lists them. Bounds match the engine's checks. */
export const DISTILL_SETTINGS: readonly NumericSetting[] = [
  {
    key: 'steps',
    label: 'Steps',
    prompt: 'Optimisation steps of the distillation',
    integer: true,
    min: 1,
    max: 10_000_000,
  },
  { key: 'batchSize', label: 'Batch size', prompt: 'Training images per step', integer: true, min: 1, max: 4096 },
  {
    key: 'lr',
    label: 'Learning rate',
    prompt: 'Peak Adam learning rate (cosine decay to 1 % after a 5 % warm-up)',
    integer: false,
    min: 0,
    max: 1,
    minExclusive: true,
    maxExclusive: true,
  },
  {
    key: 'temperature',
    label: 'Temperature',
    prompt: 'Softmax temperature T of the KL term (scaled by T²)',
    integer: false,
    min: 0,
    max: 100,
    minExclusive: true,
  },
  {
    key: 'klWeight',
    label: 'KL weight',
    prompt: 'Weight of KL(teacher ‖ student) on the logits',
    integer: false,
    min: 0,
    max: 1e6,
  },
  {
    key: 'featureWeight',
    label: 'Feature weight',
    prompt: 'Weight of the normalised feature-map term on block pre-activations (0 = off)',
    integer: false,
    min: 0,
    max: 1e6,
  },
  {
    key: 'reconstructionWeight',
    label: 'Reconstruction weight',
    prompt: 'Weight of the MSE to the original weights (0 = off)',
    integer: false,
    min: 0,
    max: 1e6,
  },
  {
    key: 'evalSamples',
    label: 'Held-out samples',
    prompt: 'Samples held out for the metric (the last ones of the data, or of the separate evaluation data)',
    integer: true,
    min: 1,
    max: 10_000_000,
  },
  {
    key: 'evalEvery',
    label: 'Evaluate every',
    prompt: 'Steps between held-out evaluations (0 = only before and after)',
    integer: true,
    min: 0,
    max: 10_000_000,
  },
];

/** The setting descriptor of `key`. */
export function distillSetting(key: NumericDistillKey): NumericSetting {
  const s = DISTILL_SETTINGS.find((d) => d.key === key);
  if (s === undefined) throw new Error(`unknown distillation setting ${key}`);
  return s;
}

function bounds(s: NumericSetting): string {
  const lo = `${s.min}${s.minExclusive === true ? ' (exclusive)' : ''}`;
  const hi = `${s.max.toLocaleString('en-US')}${s.maxExclusive === true ? ' (exclusive)' : ''}`;
  return `from ${lo} to ${hi}`;
}

/**
 * Parses what the user typed for setting `key`: a whole number (`_` and `,` separators allowed) or a decimal or
 * exponent number (`3e-5`), within the setting's bounds. The message is one sentence for the input box.
 */
export function parseSetting(key: NumericDistillKey, text: string): Parsed<number> {
  const s = distillSetting(key);
  const t = s.integer ? text.trim().replace(/[_,]/g, '') : text.trim();
  const n = t === '' ? NaN : Number(t);
  if (!Number.isFinite(n))
    return {
      ok: false,
      message: `Enter ${s.label.toLowerCase()} as ${s.integer ? 'a whole number' : 'a number, e.g. 3e-5'}.`,
    };
  if (s.integer && !Number.isInteger(n)) return { ok: false, message: `${s.label} must be a whole number.` };
  const low = s.minExclusive === true ? n <= s.min : n < s.min;
  const high = s.maxExclusive === true ? n >= s.max : n > s.max;
  if (low || high) return { ok: false, message: `${s.label} must be ${bounds(s)}.` };
  return { ok: true, value: n };
}

/** A setting's value as the quick pick shows it (`300`, `3e-5`, `0.01`). */
export function formatSettingValue(key: NumericDistillKey, value: number): string {
  if (distillSetting(key).integer) return value.toLocaleString('en-US');
  if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e5)) return value.toExponential();
  return String(Number(value.toPrecision(6)));
}

/**
 * Where a setting's current value comes from, for the quick pick's description: the default with its stated origin,
 * or that it was changed for this run (or passed in by the caller).
 */
export function settingSource(key: NumericDistillKey | 'augment', value: number | boolean): string {
  const fallback = DEFAULT_DISTILL_OPTIONS[key];
  if (value === fallback) return `default · ${DISTILL_DEFAULT_SOURCES[key]}`;
  return `changed for this run (default ${typeof fallback === 'number' ? formatSettingValue(key as NumericDistillKey, fallback) : fallback ? 'on' : 'off'})`;
}

/**
 * Checks a whole option set the way the engine will (so the user hears about it before the worker starts): every
 * numeric setting within bounds and at least one loss weight above 0. Returns one sentence, or undefined when fine.
 */
export function checkDistillSettings(o: Pick<DistillOptionsDto, NumericDistillKey>): string | undefined {
  for (const s of DISTILL_SETTINGS) {
    const p = parseSetting(s.key, String(o[s.key]));
    if (!p.ok) return p.message;
  }
  if (o.klWeight + o.featureWeight + o.reconstructionWeight === 0)
    return 'At least one of the KL, feature and reconstruction weights must be above 0.';
  return undefined;
}

/** The full options of a run: the defaults, then `overrides`, with the backend the settings choose. */
export function buildDistillOptions(overrides: Partial<DistillOptionsDto>, backend: BackendName): DistillOptionsDto {
  const o: DistillOptionsDto = { ...DEFAULT_DISTILL_OPTIONS, backend, ...overrides };
  if (overrides.backend === undefined) o.backend = backend;
  return o;
}

// ---------------------------------------------------------------------------------------------------------------
// Preprocessing typed by the user

const LAYOUTS = ['NCHW', 'NHWC'] as const;

function finiteList(value: unknown, min: number, max: number): number[] | undefined {
  const list = typeof value === 'number' ? [value] : value;
  if (!Array.isArray(list) || list.length < min || list.length > max) return undefined;
  return list.every((v): v is number => typeof v === 'number' && Number.isFinite(v)) ? list : undefined;
}

/**
 * Validates a preprocessing object (JSON from the user, or read back from workspace state): returns a clean
 * `PreprocessDto` or a one-sentence reason. Unknown fields are refused by name.
 */
export function checkPreprocess(value: unknown): Parsed<PreprocessDto> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return {
      ok: false,
      message: 'Preprocessing must be an object such as {"scale": 0.0039, "mean": [0.5], "std": [0.25]}.',
    };
  const v = value as Record<string, unknown>;
  const known = new Set(['scale', 'mean', 'std', 'pad', 'resize', 'layout']);
  const unknown = Object.keys(v).filter((k) => !known.has(k));
  if (unknown.length > 0)
    return {
      ok: false,
      message: `Unknown preprocessing field ${unknown.map((k) => JSON.stringify(k)).join(', ')}; known: scale, mean, std, pad, resize, layout.`,
    };
  const p: PreprocessDto = {};
  if (v.scale !== undefined) {
    if (typeof v.scale !== 'number' || !Number.isFinite(v.scale) || v.scale === 0)
      return { ok: false, message: 'scale must be a finite number other than 0, e.g. 1/255.' };
    p.scale = v.scale;
  }
  if (v.mean !== undefined) {
    const m = finiteList(v.mean, 1, 4);
    if (m === undefined) return { ok: false, message: 'mean must be 1 to 4 numbers (one per channel).' };
    p.mean = m;
  }
  if (v.std !== undefined) {
    const s = finiteList(v.std, 1, 4);
    if (s === undefined || s.some((x) => x <= 0))
      return { ok: false, message: 'std must be 1 to 4 positive numbers (one per channel).' };
    p.std = s;
  }
  if (v.pad !== undefined) {
    const pad = finiteList(v.pad, 1, 4);
    if (
      pad === undefined ||
      (pad.length !== 1 && pad.length !== 4) ||
      pad.some((x) => !Number.isInteger(x) || x < 0 || x > 4096)
    ) {
      return {
        ok: false,
        message: 'pad must be one whole number of pixels or four (top, bottom, left, right), each 0 to 4096.',
      };
    }
    p.pad = pad;
  }
  if (v.resize !== undefined) {
    const r = finiteList(v.resize, 2, 2);
    if (r === undefined || r.some((x) => !Number.isInteger(x) || x < 1 || x > 16384))
      return { ok: false, message: 'resize must be a height and a width in pixels, e.g. 32x32.' };
    p.resize = [r[0] ?? 1, r[1] ?? 1];
  }
  if (v.layout !== undefined) {
    const l = typeof v.layout === 'string' ? v.layout.toUpperCase() : '';
    const layout = LAYOUTS.find((x) => x === l);
    if (layout === undefined) return { ok: false, message: 'layout must be NCHW or NHWC.' };
    p.layout = layout;
  }
  return { ok: true, value: p };
}

function numberToken(text: string): number {
  const frac = /^\s*([+-]?\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)\s*$/.exec(text);
  if (frac?.[1] !== undefined && frac[2] !== undefined) return Number(frac[1]) / Number(frac[2]);
  return text.trim() === '' ? NaN : Number(text);
}

/**
 * Parses preprocessing as the user types it: empty (the model's sidecar, else raw values: `undefined`), a JSON
 * object, or `key=value` pairs separated by spaces or semicolons, e.g. `scale=1/255 mean=0.286 std=0.353
 * layout=NCHW pad=2 resize=32x32` (lists comma-separated).
 */
export function parsePreprocess(text: string): Parsed<PreprocessDto | undefined> {
  const t = text.trim();
  if (t === '') return { ok: true, value: undefined };
  if (t.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(t);
    } catch {
      return {
        ok: false,
        message:
          'That is not valid JSON; write e.g. {"scale": 0.0039, "mean": [0.286], "std": [0.353]} or scale=1/255 mean=0.286 std=0.353.',
      };
    }
    return checkPreprocess(json);
  }
  const raw: Record<string, unknown> = {};
  for (const part of t.split(/[\s;]+/).filter((x) => x !== '')) {
    const m = /^([a-zA-Z]+)\s*[=:]\s*(.+)$/.exec(part);
    if (m?.[1] === undefined || m[2] === undefined)
      return { ok: false, message: `Write each setting as key=value (e.g. scale=1/255), not ${JSON.stringify(part)}.` };
    const key = m[1].toLowerCase();
    const value = m[2];
    if (key === 'layout') raw.layout = value;
    else if (key === 'resize') {
      const r = /^(\d+)\s*[x×,]\s*(\d+)$/i.exec(value);
      raw.resize = r?.[1] !== undefined && r[2] !== undefined ? [Number(r[1]), Number(r[2])] : value;
    } else if (key === 'scale') raw.scale = numberToken(value);
    else if (key === 'mean' || key === 'std' || key === 'pad') raw[key] = value.split(',').map(numberToken);
    else raw[key] = value;
  }
  return checkPreprocess(raw);
}

/** Preprocessing as the quick pick shows it (`scale=0.003922 mean=0.286 std=0.353 layout=NCHW`); the inverse of `parsePreprocess`. */
export function formatPreprocess(p: PreprocessDto): string {
  const n = (x: number): string => String(Number(x.toPrecision(4)));
  const parts: string[] = [];
  if (p.scale !== undefined) parts.push(`scale=${Math.abs(p.scale - 1 / 255) < 1e-12 ? '1/255' : n(p.scale)}`);
  if (p.mean !== undefined) parts.push(`mean=${p.mean.map(n).join(',')}`);
  if (p.std !== undefined) parts.push(`std=${p.std.map(n).join(',')}`);
  if (p.pad !== undefined) parts.push(`pad=${p.pad.join(',')}`);
  if (p.resize !== undefined) parts.push(`resize=${p.resize[0]}x${p.resize[1]}`);
  if (p.layout !== undefined) parts.push(`layout=${p.layout}`);
  return parts.join(' ');
}

// ---------------------------------------------------------------------------------------------------------------
// The command's options argument

/** What `weightLens.distillArtifact` accepts instead of dialogs (paths absolute, or relative to `base`). */
export interface DistillArgument {
  artifact: string;
  model: string;
  data: string;
  teacher?: string;
  evalData?: string;
  options: Partial<DistillOptionsDto>;
}

function pathOf(value: unknown): string | undefined {
  if (typeof value === 'string' && value.trim() !== '') return value;
  // A vscode.Uri (or anything with a file-system path).
  if (typeof value === 'object' && value !== null && typeof (value as { fsPath?: unknown }).fsPath === 'string')
    return (value as { fsPath: string }).fsPath;
  return undefined;
}

/** True if `arg` is meant as the options object (it names an artifact, a model or data), not a file from a menu. */
export function isDistillArgument(arg: unknown): arg is Record<string, unknown> {
  if (typeof arg !== 'object' || arg === null || Array.isArray(arg)) return false;
  const a = arg as Record<string, unknown>;
  return 'artifact' in a || 'model' in a || 'data' in a;
}

/**
 * Validates the options argument: `{artifact, model, data, teacher?, evalData?, options?}` with paths as strings or
 * URIs (relative ones resolved against `base`), and `options` a subset of `DistillOptionsDto` whose numbers pass the
 * same checks as the quick pick. Returns one sentence naming the first problem.
 */
export function parseDistillArgument(arg: Record<string, unknown>, base: string | undefined): Parsed<DistillArgument> {
  const resolvePath = (p: string): string => (path.isAbsolute(p) || base === undefined ? p : path.resolve(base, p));
  const required = ['artifact', 'model', 'data'] as const;
  const paths: Partial<Record<(typeof required)[number], string>> = {};
  for (const key of required) {
    const p = pathOf(arg[key]);
    if (p === undefined) return { ok: false, message: `The distill options need "${key}" (a file path).` };
    paths[key] = resolvePath(p);
  }
  const out: DistillArgument = {
    artifact: paths.artifact ?? '',
    model: paths.model ?? '',
    data: paths.data ?? '',
    options: {},
  };
  for (const key of ['teacher', 'evalData'] as const) {
    if (arg[key] === undefined) continue;
    const p = pathOf(arg[key]);
    if (p === undefined) return { ok: false, message: `"${key}" must be a file path.` };
    out[key] = resolvePath(p);
  }
  const raw = arg.options;
  if (raw !== undefined) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      return { ok: false, message: '"options" must be an object of distillation options.' };
    const o = raw as Record<string, unknown>;
    for (const [key, value] of Object.entries(o)) {
      if (value === undefined) continue;
      const setting = DISTILL_SETTINGS.find((s) => s.key === key);
      if (setting !== undefined) {
        if (typeof value !== 'number') return { ok: false, message: `options.${key} must be a number.` };
        const p = parseSetting(setting.key, String(value));
        if (!p.ok) return p;
        out.options[setting.key] = p.value;
      } else if (key === 'augment') {
        if (typeof value !== 'boolean') return { ok: false, message: 'options.augment must be true or false.' };
        out.options.augment = value;
      } else if (key === 'seed') {
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
          return { ok: false, message: 'options.seed must be a whole number ≥ 0.' };
        out.options.seed = value;
      } else if (key === 'backend') {
        if (!isOneOf(BACKEND_NAMES, value))
          return { ok: false, message: `options.backend must be one of ${BACKEND_NAMES.join(', ')}.` };
        out.options.backend = value;
      } else if (key === 'preprocess') {
        const p = checkPreprocess(value);
        if (!p.ok) return p;
        out.options.preprocess = p.value;
      } else if (key === 'out' || key === 'teacher' || key === 'evalData') {
        const p = pathOf(value);
        if (p === undefined) return { ok: false, message: `options.${key} must be a file path.` };
        out.options[key] = resolvePath(p);
      } else {
        return { ok: false, message: `Unknown distillation option "${key}".` };
      }
    }
  }
  if (out.teacher === undefined && out.options.teacher !== undefined) out.teacher = out.options.teacher;
  if (out.evalData === undefined && out.options.evalData !== undefined) out.evalData = out.options.evalData;
  const merged = { ...DEFAULT_DISTILL_OPTIONS, ...out.options };
  if (merged.klWeight + merged.featureWeight + merged.reconstructionWeight === 0)
    return { ok: false, message: 'At least one of the KL, feature and reconstruction weights must be above 0.' };
  return { ok: true, value: out };
}

// ---------------------------------------------------------------------------------------------------------------
// Paths and texts

/** Percent (0…100, whole) of a distillation's steps done. */
export function distillPercent(p: DistillProgressDto): number {
  if (p.steps <= 0) return 0;
  return Math.max(0, Math.min(100, Math.floor((p.step / p.steps) * 100)));
}

/**
 * Message of the progress notification, with the time left from the speed so far and the engine running the steps:
 * `step 12 / 300 · about 3 min 26 s left · loss 0.123 · KL 0.101 · 1.40 steps/s on onnxruntime (native, 2 threads)`.
 */
export function distillProgressMessage(p: DistillProgressDto): string {
  const v = (x: number): string => (Number.isFinite(x) ? x.toPrecision(3) : String(x));
  const speed = p.stepsPerSecond >= 10 ? p.stepsPerSecond.toFixed(0) : p.stepsPerSecond.toFixed(2);
  const eta = formatEta(p.step, p.steps, p.stepsPerSecond);
  return `step ${p.step} / ${p.steps}${eta === '' ? '' : ` · ${eta}`} · loss ${v(p.loss)} · KL ${v(p.kl)} · ${speed} steps/s${p.engineLabel !== undefined ? ` on ${p.engineLabel}` : ''}`;
}

/** A metric set in one phrase: `accuracy 91.2 %` for classifiers with labels, `PSNR 31.20 dB` for images, else agreement. */
export function metricPhrase(m: EvalMetricsDto): string {
  if (m.accuracy !== undefined) return `accuracy ${(m.accuracy * 100).toFixed(1)} %`;
  if (m.psnr !== undefined) return `PSNR ${m.psnr.toFixed(2)} dB`;
  return `agreement ${(m.agreement * 100).toFixed(1)} %`;
}

/**
 * The message shown when a distillation finishes, with the engine that trained (and why it is not the one asked for):
 * `Distilled r.nern.safetensors: accuracy 12.5 % → 80.0 % (held out, 16 samples). Wrote r.distilled.nern.safetensors.
 * Trained on onnxruntime (native, 2 threads).`
 */
export function distillDoneMessage(r: DistillReportDto): string {
  const stopped =
    r.stoppedEarly === undefined
      ? ''
      : `Stopped early and saved after step ${r.stoppedEarly.step.toLocaleString('en-US')} of ${r.stoppedEarly.steps.toLocaleString('en-US')}. `;
  return `${stopped}Distilled ${path.basename(r.artifact)}: ${metricPhrase(r.before)} → ${metricPhrase(r.after).replace(/^[a-zA-Z]+ /, '')} (held out, ${r.after.n} samples). Wrote ${path.basename(r.out)}.${trainedOn(r)}`;
}

/** ` Trained on <engine> (<reason>).` for a report that names its engine, else ''. */
function trainedOn(r: DistillReportDto): string {
  if (r.engineLabel === undefined) return '';
  return ` Trained on ${r.engineLabel}${r.engineReason !== undefined ? ` (${r.engineReason})` : ''}.`;
}

/** The message shown when an evaluation finishes: `r.nern.safetensors in resnet20.onnx: accuracy 93.8 % → 9.4 % (32 samples).` */
export function evalDoneMessage(r: EvalReportDto): string {
  const weights = r.weights === undefined ? 'the model' : path.basename(r.weights);
  const c = r.candidate;
  if (r.originalAccuracy !== undefined && c.accuracy !== undefined) {
    const points = (c.accuracy - r.originalAccuracy) * 100;
    const change = `${points < 0 ? '−' : '+'}${Math.abs(points).toFixed(1)} points`;
    return `${weights} in ${path.basename(r.model)}: accuracy ${(r.originalAccuracy * 100).toFixed(1)} % → ${(c.accuracy * 100).toFixed(1)} % (${change}, ${c.n} samples).`;
  }
  return `${weights} in ${path.basename(r.model)}: ${metricPhrase(c)}, relative error ${c.relativeError.toPrecision(3)} (${c.n} samples).`;
}

/** Parses the evaluation's sample limit: empty or `all` for every sample (undefined), else a whole number ≥ 1. */
export function parseLimit(text: string): Parsed<number | undefined> {
  const t = text.trim().toLowerCase().replace(/[_,]/g, '');
  if (t === '' || t === 'all') return { ok: true, value: undefined };
  if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > 10_000_000)
    return { ok: false, message: 'Enter the number of samples to evaluate (a whole number ≥ 1), or "all".' };
  return { ok: true, value: Number(t) };
}

// ---------------------------------------------------------------------------------------------------------------
// Candidate files

/** True if a file name (base name) is a runnable model the engine runs: ONNX or a TF.js `model.json`. */
export function isModelName(name: string): boolean {
  return /\.onnx$/i.test(name) || /^model\.json$/i.test(name);
}

/**
 * True if a file name (base name) is a dataset file the engine reads: IDX images (`*-idx3-ubyte[.gz]`, not the
 * labels), CIFAR binary batches, `.npy` / `.npz` arrays.
 */
export function isDataName(name: string): boolean {
  const n = name.toLowerCase();
  if (/labels?[-_.]/.test(n)) return false;
  if (/idx\d-ubyte(\.gz)?$/.test(n)) return true;
  if (/\.(npy|npz)$/.test(n)) return !n.endsWith('.weightlens.json');
  return /^(data_batch_\d+|test_batch|train|test)\.bin$/.test(n);
}

/**
 * Image-folder datasets implied by image files: `root/<class>/<image>` gives `root`. Distinct, in first-seen order,
 * at most `limit`.
 */
export function imageFolders(imagePaths: readonly string[], limit = 20): string[] {
  const out: string[] = [];
  for (const p of imagePaths) {
    const root = path.dirname(path.dirname(p));
    if (!out.includes(root)) out.push(root);
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * Orders candidate paths for a quick pick: the remembered ones first (in the order given), then those in one of the
 * `near` folders (in that order of folders), then the rest by depth and name. Duplicates are dropped.
 */
export function rankCandidates(
  paths: readonly string[],
  near: readonly string[],
  remembered: readonly string[] = [],
): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  const add = (p: string): void => {
    if (!seen.has(p)) {
      seen.add(p);
      out.push(p);
    }
  };
  for (const p of remembered) add(p);
  const nearIndex = (p: string): number => {
    const i = near.findIndex((dir) => path.dirname(p) === dir);
    return i < 0 ? near.length : i;
  };
  const depth = (p: string): number => p.split(/[\\/]/).length;
  const rest = [...new Set(paths)].sort(
    (a, b) => nearIndex(a) - nearIndex(b) || depth(a) - depth(b) || a.localeCompare(b),
  );
  for (const p of rest) add(p);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Remembered choices

/** Storage key in workspaceState. */
export const CHOICES_KEY = 'weightLens.run.choices';
/** Most artifacts and most models remembered (each); the least recently used are dropped first. */
export const MAX_REMEMBERED = 100;

/**
 * What a dataset was chosen for: `evaluate` (Evaluate…, and distillation's held-out data) or `train` (distillation's
 * training data). The two are remembered apart, so a test set used to evaluate is never offered first to train on.
 */
export type DataRole = 'evaluate' | 'train';

/** The last runnable model (and data, teacher) used with an artifact. */
export interface ArtifactChoice {
  model: string;
  /** The data last evaluated on. */
  data?: string;
  /** The data last distilled on. */
  trainData?: string;
  teacher?: string;
  /** When it was chosen, milliseconds since the epoch. */
  at: number;
}

/** The last data (and the preprocessing the user typed, if any) used with a runnable model. */
export interface ModelChoice {
  /** The data last evaluated on. */
  data?: string;
  /** The data last distilled on. */
  trainData?: string;
  preprocess?: PreprocessDto;
  at: number;
}

/**
 * A warning when distillation would train on data it is also judged on: the training data is the held-out data file
 * (`heldOut`), or a file the artifact or model was evaluated on (`evaluated`); undefined otherwise. Paths are compared
 * resolved, so `./d/x.gz` and `/w/d/x.gz` are the same file.
 */
export function sameDataWarning(
  train: string,
  heldOut: string | undefined,
  evaluated: readonly string[],
): string | undefined {
  const same = (a: string, b: string): boolean => path.resolve(a) === path.resolve(b);
  const name = path.basename(train);
  if (heldOut !== undefined && same(train, heldOut))
    return `The training data ${name} is also the held-out data: the held-out metric would be measured on images the predictor was trained on. Choose other held-out data, or the default (the last samples of the training data, not trained on).`;
  if (evaluated.some((e) => same(train, e)))
    return `The training data ${name} is the data this model was evaluated on: distilling on it makes later evaluations on it look better than they are. Train on a separate split (e.g. the training images) if you have one.`;
  return undefined;
}

interface ChoiceStore {
  artifacts: Record<string, ArtifactChoice>;
  models: Record<string, ModelChoice>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readArtifactChoice(v: unknown): ArtifactChoice | undefined {
  if (!isRecord(v) || typeof v.model !== 'string' || typeof v.at !== 'number') return undefined;
  const c: ArtifactChoice = { model: v.model, at: v.at };
  if (typeof v.data === 'string') c.data = v.data;
  if (typeof v.trainData === 'string') c.trainData = v.trainData;
  if (typeof v.teacher === 'string') c.teacher = v.teacher;
  return c;
}

function readModelChoice(v: unknown): ModelChoice | undefined {
  if (!isRecord(v) || typeof v.at !== 'number') return undefined;
  if (typeof v.data !== 'string' && typeof v.trainData !== 'string') return undefined;
  const c: ModelChoice = { at: v.at };
  if (typeof v.data === 'string') c.data = v.data;
  if (typeof v.trainData === 'string') c.trainData = v.trainData;
  if (v.preprocess !== undefined) {
    const p = checkPreprocess(v.preprocess);
    if (p.ok) c.preprocess = p.value;
  }
  return c;
}

function newest<T extends { at: number }>(entries: Record<string, T>, limit: number): Record<string, T> {
  return Object.fromEntries(
    Object.entries(entries)
      .sort((a, b) => b[1].at - a[1].at)
      .slice(0, limit),
  );
}

/**
 * The model, data, teacher and preprocessing a user last chose, remembered per artifact and per model (in
 * `ExtensionContext.workspaceState`, so per workspace) and offered first next time. Malformed stored entries are
 * ignored; at most `MAX_REMEMBERED` artifacts and models are kept.
 */
export class RememberedChoices {
  constructor(private readonly memento: MementoLike) {}

  private read(): ChoiceStore {
    const raw = this.memento.get(CHOICES_KEY);
    const store: ChoiceStore = { artifacts: {}, models: {} };
    if (!isRecord(raw)) return store;
    if (isRecord(raw.artifacts)) {
      for (const [k, v] of Object.entries(raw.artifacts)) {
        const c = readArtifactChoice(v);
        if (c !== undefined) store.artifacts[k] = c;
      }
    }
    if (isRecord(raw.models)) {
      for (const [k, v] of Object.entries(raw.models)) {
        const c = readModelChoice(v);
        if (c !== undefined) store.models[k] = c;
      }
    }
    return store;
  }

  /** The last choice made for `artifact`. */
  forArtifact(artifact: string): ArtifactChoice | undefined {
    return this.read().artifacts[artifact];
  }

  /** The last choice made for `model`. */
  forModel(model: string): ModelChoice | undefined {
    return this.read().models[model];
  }

  /**
   * The data last chosen for `role` with `model`, then with `artifact` (distinct, most specific first). Data chosen
   * for the other role is never among them.
   */
  dataFor(role: DataRole, model: string, artifact: string | undefined): string[] {
    const key = role === 'train' ? 'trainData' : 'data';
    const store = this.read();
    const found = [store.models[model]?.[key], artifact === undefined ? undefined : store.artifacts[artifact]?.[key]];
    return [...new Set(found.filter((p): p is string => p !== undefined))];
  }

  /**
   * Remembers a run's choices: the model (with data and teacher) for `artifact` when given, and the data with the
   * preprocessing the user typed for `model` (no `preprocess` forgets an earlier one: the sidecar applies again).
   * `role` (default `evaluate`) says what the data was for; the other role's remembered data is kept.
   */
  async remember(
    choice: {
      artifact?: string;
      model: string;
      data: string;
      role?: DataRole;
      teacher?: string;
      preprocess?: PreprocessDto;
    },
    now = Date.now(),
  ): Promise<void> {
    const store = this.read();
    const key = choice.role === 'train' ? 'trainData' : 'data';
    if (choice.artifact !== undefined) {
      const before = store.artifacts[choice.artifact];
      const a: ArtifactChoice = { model: choice.model, at: now };
      // The other role's data belongs to the same model only.
      if (before !== undefined && before.model === choice.model) {
        if (before.data !== undefined) a.data = before.data;
        if (before.trainData !== undefined) a.trainData = before.trainData;
      }
      a[key] = choice.data;
      if (choice.teacher !== undefined) a.teacher = choice.teacher;
      store.artifacts[choice.artifact] = a;
    }
    const beforeModel = store.models[choice.model];
    const m: ModelChoice = { at: now };
    if (beforeModel?.data !== undefined) m.data = beforeModel.data;
    if (beforeModel?.trainData !== undefined) m.trainData = beforeModel.trainData;
    m[key] = choice.data;
    if (choice.preprocess !== undefined) m.preprocess = choice.preprocess;
    store.models[choice.model] = m;
    await this.memento.update(CHOICES_KEY, {
      artifacts: newest(store.artifacts, MAX_REMEMBERED),
      models: newest(store.models, MAX_REMEMBERED),
    });
  }
}
