/**
 * The output-path rules, written once: where compression, decompression and distillation write by default, where a
 * model's preprocessing sidecar lives, and which names are artifacts. The engine, the CLI and the extension all call
 * these, so a default path is the same wherever a job starts. Pure string functions (no `node:path`, so webviews can
 * use them too): both `/` and `\` separate folders, and a result keeps the folder of its input verbatim.
 */

/** Suffix of a NeRN artifact's file name. */
export const ARTIFACT_SUFFIX = '.nern.safetensors';

/** Suffix of a sharded safetensors checkpoint's index file. */
const INDEX_SUFFIX = '.safetensors.index.json';

/** `path` split into its folder part (with the trailing separator, possibly empty) and its base name. */
function splitPath(path: string): { folder: string; name: string } {
  const cut = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1;
  return { folder: path.slice(0, cut), name: path.slice(cut) };
}

/** `name` without a case-insensitive `suffix`, or unchanged when it does not end with it. */
function stripSuffix(name: string, suffix: string): string {
  return name.toLowerCase().endsWith(suffix) ? name.slice(0, -suffix.length) : name;
}

/** `name` without its last extension (`model.pt` → `model`); a name that is all extension (`.pt`) is kept. */
function stripExtension(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
}

/** True when the base name `fileName` is a NeRN artifact's (`*.nern.safetensors`, any case). */
export function isArtifactName(fileName: string): boolean {
  return fileName.toLowerCase().endsWith(ARTIFACT_SUFFIX);
}

/**
 * The artifact a compression of `source` writes: `<stem>.nern.safetensors` in the same folder, where the stem drops
 * the checkpoint's extension (`model.pt` → `model.nern.safetensors`, `model.safetensors.index.json` →
 * `model.nern.safetensors`). Never equal to `source`: compressing an artifact `x.nern.safetensors` gives
 * `x.nern.nern.safetensors`.
 */
export function artifactPathFor(source: string): string {
  return `${splitPath(source).folder}${checkpointStem(source)}${ARTIFACT_SUFFIX}`;
}

/**
 * The stem outputs made from checkpoint `source` are named after: its base name without the checkpoint's extension
 * (`model.pt` → `model`, `model.safetensors.index.json` → `model`); `model` when nothing is left.
 */
export function checkpointStem(source: string): string {
  const { name } = splitPath(source);
  const stem = name.toLowerCase().endsWith(INDEX_SUFFIX) ? stripSuffix(name, INDEX_SUFFIX) : stripExtension(name);
  return stem === '' ? 'model' : stem;
}

/** The checkpoint a decompression of `artifact` writes: `<stem>.decompressed.safetensors` beside it. */
export function decompressedPathFor(artifact: string): string {
  const { folder, name } = splitPath(artifact);
  const stem = stripSuffix(stripSuffix(name, ARTIFACT_SUFFIX), '.safetensors') || name;
  return `${folder}${stem}.decompressed.safetensors`;
}

/**
 * The artifact a distillation of `artifact` writes: `<stem>.distilled.nern.safetensors` beside it. For an artifact
 * that is already distilled this is its own name, which the job refuses as an output: the user names another.
 */
export function distilledPathFor(artifact: string): string {
  const { folder, name } = splitPath(artifact);
  const stem = stripSuffix(stripSuffix(stripSuffix(name, ARTIFACT_SUFFIX), '.safetensors'), '.distilled');
  return `${folder}${stem}.distilled${ARTIFACT_SUFFIX}`;
}

/**
 * The report sidecar of a lean artifact (`--sidecar`): `<artifact>.report.json` beside it, holding the per-layer report
 * and loss curve the artifact leaves out.
 */
export function reportSidecarPathFor(artifact: string): string {
  return `${artifact}.report.json`;
}

/** The sidecar that states a model's preprocessing: `<model without extension>.weightlens.json` beside it. */
export function sidecarPathFor(model: string): string {
  const { folder, name } = splitPath(model);
  return `${folder}${stripExtension(name)}.weightlens.json`;
}
