/**
 * Recognises a NeRN artifact from a checkpoint's metadata: the `weight_lens` key of a `.nern.safetensors` file's
 * `__metadata__` holds a JSON document (source name, settings, ratio…). This reads the few facts the Inspector's
 * banner shows, tolerating missing or differently nested fields; it never throws. Pure: no DOM.
 */

import { baseName } from './format';

/** Metadata key under which the engine stores the artifact description. */
export const ARTIFACT_METADATA_KEY = 'weight_lens';

/** What the Inspector banner says about an artifact (every field optional: the document may be partial). */
export interface ArtifactSummary {
  source?: string;
  ratio?: number;
  hidden?: number;
  steps?: number;
  permutation?: string;
  rmse?: number;
  /** Size of the source checkpoint in bytes. */
  sourceBytes?: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The first finite number found under any of `keys` in `objects` (searched in order). */
function findNumber(objects: readonly Record<string, unknown>[], keys: readonly string[]): number | undefined {
  for (const o of objects) {
    for (const k of keys) {
      const v = o[k];
      if (typeof v === 'number' && Number.isFinite(v)) return v;
      if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
    }
  }
  return undefined;
}

function findString(objects: readonly Record<string, unknown>[], keys: readonly string[]): string | undefined {
  for (const o of objects) {
    for (const k of keys) {
      const v = o[k];
      if (typeof v === 'string' && v !== '') return v;
    }
  }
  return undefined;
}

/**
 * Reads the artifact summary from checkpoint `metadata`, or `undefined` when it has no `weight_lens` entry. The
 * entry may be a JSON string or (from a reader that already parsed it) an object; fields are looked up at the top
 * level and in nested `source`, `training`, `settings`, `options`, `predictor`, `budget` and `report` objects. Without
 * a stored ratio, it is the source's `bytes` over `artifactBytes` (the artifact file's size) when both are known.
 */
export function artifactSummary(metadata: Readonly<Record<string, unknown>>, artifactBytes?: number): ArtifactSummary | undefined {
  const raw = metadata[ARTIFACT_METADATA_KEY];
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
  const nested = ['source', 'training', 'settings', 'options', 'predictor', 'budget', 'report', 'sizes'].map((k) => doc[k]).filter(isRecord);
  const objects = [doc, ...nested];
  const summary: ArtifactSummary = {};
  const source = typeof doc.source === 'string' ? doc.source : findString(objects, ['sourceName', 'name', 'file', 'path', 'source']);
  if (source !== undefined) summary.source = source;
  const sourceBytes = findNumber(objects, ['sourceBytes', 'bytes']);
  if (sourceBytes !== undefined) summary.sourceBytes = sourceBytes;
  const ratio = findNumber(objects, ['ratio', 'compressionRatio']) ?? (sourceBytes !== undefined && artifactBytes !== undefined && artifactBytes > 0 ? sourceBytes / artifactBytes : undefined);
  if (ratio !== undefined) summary.ratio = ratio;
  const hidden = findNumber(objects, ['hidden', 'width', 'hiddenSize']);
  if (hidden !== undefined) summary.hidden = hidden;
  const steps = findNumber(objects, ['steps']);
  if (steps !== undefined) summary.steps = steps;
  const rmse = findNumber(objects, ['rmse']);
  if (rmse !== undefined) summary.rmse = rmse;
  const permutation = findString(objects, ['permutation']);
  if (permutation !== undefined) summary.permutation = permutation;
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
  return `NeRN artifact: ${parts.join(', ')}`;
}
