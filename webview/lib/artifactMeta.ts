/**
 * Recognises a NeRN artifact from a checkpoint's metadata and reads the facts the Inspector's banner shows. The
 * `weight_lens` entry of a `.nern.safetensors` file's `__metadata__` holds the JSON that the engine's codec writes,
 * whose shared part is `ArtifactMetaSummary` (src/protocol/artifact.ts): this reads exactly those fields, and leaves
 * out any that are missing or of the wrong type (the file may be damaged or hand-made); it never throws. Pure: no DOM.
 */
import { ARTIFACT_KEY, LEAN_REPORT_NOTE, type ArtifactMetaSummary } from '../../src/protocol/artifact';
import { baseName, formatBytes } from './format';

/** Metadata key under which the engine stores the artifact description. */
export const ARTIFACT_METADATA_KEY = ARTIFACT_KEY;

/** What the Inspector banner says about an artifact (every field optional: the document may be partial). */
export interface ArtifactSummary {
  /** File name of the source checkpoint (`source.name`). */
  source?: string;
  /** Source size over the artifact file's size. */
  ratio?: number;
  /** Predictor width (`training.hidden`). */
  hidden?: number;
  /** Reconstruction steps (`training.steps`). */
  steps?: number;
  /** Kernel permutation (`training.permutation`). */
  permutation?: string;
  /** Reconstruction RMSE in weight units (`report.rmse`). */
  rmse?: number;
  /** Size of the source checkpoint in bytes (`source.bytes`). */
  sourceBytes?: number;
  /** Distillation steps, when the predictor was distilled (`distillation.settings.steps`). */
  distilledSteps?: number;
  /** Where a stopped-early phase was saved (`training.stoppedEarly`, `distillation.stoppedEarly`). */
  stoppedEarly?: { phase: 'reconstruction' | 'distillation'; step: number; steps: number };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `record[key]` when it is a finite number. */
function numberAt(record: unknown, key: string): number | undefined {
  if (!isRecord(record) || !Object.hasOwn(record, key)) return undefined;
  const v = record[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** `record[key]` when it is a non-empty string. */
function stringAt(record: unknown, key: string): string | undefined {
  if (!isRecord(record) || !Object.hasOwn(record, key)) return undefined;
  const v = record[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** `record[key]` when it is an object. */
function recordAt(record: unknown, key: string): Record<string, unknown> | undefined {
  if (!isRecord(record) || !Object.hasOwn(record, key)) return undefined;
  const v = record[key];
  return isRecord(v) ? v : undefined;
}

/**
 * Reads the artifact summary from checkpoint `metadata`, or `undefined` when it has no `weight_lens` entry (not an
 * artifact). The entry may be a JSON string or (from a reader that already parsed it) an object; unreadable JSON
 * gives an empty summary. The ratio is `source.bytes` over `artifactBytes` (the artifact file's size) when both are
 * known.
 */
export function artifactSummary(
  metadata: Readonly<Record<string, unknown>>,
  artifactBytes?: number,
): ArtifactSummary | undefined {
  if (!Object.hasOwn(metadata, ARTIFACT_KEY)) return undefined;
  const raw = metadata[ARTIFACT_KEY];
  if (raw === undefined || raw === null) return undefined;
  let doc: unknown = raw;
  if (typeof raw === 'string') {
    try {
      doc = JSON.parse(raw);
    } catch {
      return {};
    }
  }
  if (!isRecord(doc)) return {};
  const fields: { [K in keyof ArtifactMetaSummary]?: unknown } = doc;
  const summary: ArtifactSummary = {};
  const source = stringAt(fields.source, 'name');
  if (source !== undefined) summary.source = source;
  const sourceBytes = numberAt(fields.source, 'bytes');
  if (sourceBytes !== undefined) {
    summary.sourceBytes = sourceBytes;
    if (artifactBytes !== undefined && artifactBytes > 0) summary.ratio = sourceBytes / artifactBytes;
  }
  const hidden = numberAt(fields.training, 'hidden');
  if (hidden !== undefined) summary.hidden = hidden;
  const steps = numberAt(fields.training, 'steps');
  if (steps !== undefined) summary.steps = steps;
  const permutation = stringAt(fields.training, 'permutation');
  if (permutation !== undefined) summary.permutation = permutation;
  const rmse = numberAt(fields.report, 'rmse');
  if (rmse !== undefined) summary.rmse = rmse;
  const distilledSteps = numberAt(recordAt(fields.distillation, 'settings'), 'steps');
  if (distilledSteps !== undefined) summary.distilledSteps = distilledSteps;
  for (const phase of ['reconstruction', 'distillation'] as const) {
    const stop = recordAt(phase === 'reconstruction' ? fields.training : fields.distillation, 'stoppedEarly');
    const step = numberAt(stop, 'step');
    const of = numberAt(stop, 'steps');
    if (step !== undefined && of !== undefined) summary.stoppedEarly = { phase, step, steps: of };
  }
  return summary;
}

/** The banner sentence: "NeRN artifact: compressed from X, ratio R×, h = H, …" (only the facts that are known). */
export function artifactBannerText(summary: ArtifactSummary): string {
  const parts: string[] = [];
  parts.push(summary.source !== undefined ? `compressed from ${baseName(summary.source)}` : 'compressed checkpoint');
  if (summary.ratio !== undefined) parts.push(`ratio ${summary.ratio.toFixed(2)}×`);
  if (summary.hidden !== undefined) parts.push(`h = ${summary.hidden}`);
  if (summary.steps !== undefined) parts.push(`${summary.steps} steps`);
  if (summary.permutation !== undefined) parts.push(`${summary.permutation} permutation`);
  if (summary.rmse !== undefined) parts.push(`RMSE ${summary.rmse.toPrecision(3)}`);
  if (summary.distilledSteps !== undefined) parts.push(`distilled for ${summary.distilledSteps} steps`);
  const stop = summary.stoppedEarly;
  if (stop !== undefined)
    parts.push(
      `${stop.phase} stopped early and saved at step ${stop.step.toLocaleString('en-US')} of ${stop.steps.toLocaleString('en-US')}`,
    );
  return `NeRN artifact: ${parts.join(', ')}`;
}

/** One section of an artifact's description as the Inspector shows it: a title and label/value rows. */
export interface ArtifactSection {
  title: string;
  rows: [string, string][];
}

/** A JSON value as one short cell: numbers to 4 significant digits, lists and objects summarised. */
function cell(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : String(Number(v.toPrecision(4)));
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v))
    return v.every((x) => typeof x === 'number') && v.length <= 8 ? `[${v.join(', ')}]` : `${v.length} entries`;
  if (isRecord(v)) return `${Object.keys(v).length} fields`;
  return String(v);
}

/** The plain fields of `record` (in the file's order) as rows, skipping `skip`. */
function rowsOf(record: Record<string, unknown> | undefined, skip: readonly string[] = []): [string, string][] {
  if (record === undefined) return [];
  return Object.entries(record)
    .filter(([k]) => !skip.includes(k))
    .map(([k, v]): [string, string] => [k, cell(v)]);
}

/** Per-layer rows `name: shape · params · relative error` of a `layers` list of error rows. */
function layerRows(layers: unknown): [string, string][] {
  if (!Array.isArray(layers)) return [];
  return layers.filter(isRecord).map((l): [string, string] => {
    const rel = numberAt(l, 'relativeError');
    const params = numberAt(l, 'params');
    const shape = Array.isArray(l.shape) ? `[${l.shape.map(String).join(', ')}]` : '';
    return [
      stringAt(l, 'name') ?? '?',
      [
        shape,
        params === undefined ? '' : `${params.toLocaleString('en-US')} params`,
        rel === undefined ? '' : `${(rel * 100).toPrecision(3)} % relative error`,
      ]
        .filter((x) => x !== '')
        .join(' · '),
    ];
  });
}

/** The "report sidecar" row of a lean artifact whose report was read from its sidecar (undefined when none). */
function sidecarRow(v: unknown): [string, string][] | undefined {
  if (!isRecord(v)) return undefined;
  const path = stringAt(v, 'path');
  const bytes = numberAt(v, 'bytes');
  if (path === undefined || bytes === undefined) return undefined;
  return [
    ['report sidecar', `${baseName(path)} · ${formatBytes(bytes)}, beside the artifact (not counted in its size)`],
  ];
}

/**
 * The artifact's description (the `weight_lens` JSON, as a string or parsed) as readable sections instead of raw
 * JSON: Source, Training, Layers (each represented layer's shape, size and relative error), Report (the figures and
 * the loss curve's length) and Distillation when there was one. Missing or mistyped parts are left out; never throws.
 */
export function artifactSections(raw: unknown): ArtifactSection[] {
  let doc: unknown = raw;
  if (typeof raw === 'string') {
    try {
      doc = JSON.parse(raw);
    } catch {
      return [];
    }
  }
  if (!isRecord(doc)) return [];
  const fields: { [K in keyof ArtifactMetaSummary]?: unknown } = doc;
  const sections: ArtifactSection[] = [];
  const add = (title: string, rows: [string, string][]): void => {
    if (rows.length > 0) sections.push({ title, rows });
  };
  add('Source', rowsOf(recordAt(fields, 'source')));
  add('Training', rowsOf(recordAt(fields, 'training')));
  const report = recordAt(fields, 'report');
  add('Layers', layerRows(report?.layers));
  const curve = report?.lossCurve;
  add('Report', [
    ...rowsOf(report, ['layers', 'lossCurve']),
    ...(Array.isArray(curve) ? [['loss curve', `${curve.length} points`] as [string, string]] : []),
    ...(sidecarRow(fields.reportSidecar) ??
      (fields.lean === true ? [['not stored', LEAN_REPORT_NOTE] as [string, string]] : [])),
  ]);
  if (fields.verbatimStorage === 'f16' || fields.verbatimStorage === 'int8')
    add('Storage', [['verbatim tensors', fields.verbatimStorage === 'f16' ? 'float16' : 'int8, one scale per row']]);
  const d = recordAt(fields, 'distillation');
  if (d !== undefined) {
    add('Distillation', [
      ...rowsOf(d, ['settings', 'before', 'after', 'reconstruction', 'stoppedEarly']),
      ...rowsOf(recordAt(d, 'settings')),
      ...Object.entries(recordAt(d, 'before') ?? {}).map(([k, v]): [string, string] => [`before: ${k}`, cell(v)]),
      ...Object.entries(recordAt(d, 'after') ?? {}).map(([k, v]): [string, string] => [`after: ${k}`, cell(v)]),
      ...rowsOf(recordAt(d, 'stoppedEarly')).map(([k, v]): [string, string] => [`stopped early: ${k}`, v]),
    ]);
    add('Layers after distillation', layerRows(recordAt(d, 'reconstruction')?.layers));
  }
  return sections;
}
