/**
 * Recognises a NeRN artifact from a checkpoint's metadata and reads the facts the Inspector's banner shows. The
 * `weight_lens` entry of a `.nern.safetensors` file's `__metadata__` holds the JSON that the engine's codec writes,
 * whose shared part is `ArtifactMetaSummary` (src/protocol/artifact.ts): this reads exactly those fields, and leaves
 * out any that are missing or of the wrong type (the file may be damaged or hand-made); it never throws. Pure: no DOM.
 */
import { ARTIFACT_KEY, type ArtifactMetaSummary } from '../../src/protocol/artifact';
import { baseName } from './format';

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
  return `NeRN artifact: ${parts.join(', ')}`;
}
