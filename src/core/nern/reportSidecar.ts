/**
 * The report sidecar of a lean artifact (`--sidecar`): `<artifact>.report.json` beside it, with the per-layer report
 * and loss curve that `--lean` leaves out of the artifact, bound to it by the artifact's checksum. Written with the
 * artifact, both or neither; read back by whoever reopens the artifact (its report, the Inspector), which falls back
 * to "report not stored" when the sidecar is missing, damaged or belongs to another artifact.
 */
import { readFile, stat, unlink } from 'node:fs/promises';
import { FileByteSource } from '../io/byteSource';
import { writeAtomically } from '../io/atomicFile';
import { parseJsonBounded } from '../io/json';
import { REPORT_SIDECAR_FORMAT, type ArtifactReportSidecar, type ReportSidecarInfo } from '../../protocol/artifact';
import type { LayerErrorDto } from '../../protocol/compress';
import { reportSidecarPathFor } from '../../protocol/paths';
import { ARTIFACT_DIGEST_KEY, readHeader } from './artifact';

/** Largest sidecar read (a report of 100,000 layers and a 500-point loss curve is ~15 MB). */
const MAX_SIDECAR_BYTES = 64 * 1024 * 1024;
/** Deepest JSON nesting a sidecar has (object → list → row → shape list). */
const MAX_SIDECAR_DEPTH = 5;

/** The `weight_lens_sha256` checksum in the artifact's header, or undefined for an artifact without one. */
async function artifactDigest(artifact: string): Promise<string | undefined> {
  const source = await FileByteSource.open(artifact);
  try {
    const { metadata } = await readHeader(source, artifact);
    return Object.hasOwn(metadata, ARTIFACT_DIGEST_KEY) ? metadata[ARTIFACT_DIGEST_KEY] : undefined;
  } finally {
    await source.close();
  }
}

/**
 * Writes `artifact`'s report sidecar atomically, after the artifact itself was written by `writeArtifact`: when the
 * sidecar cannot be written (or `signal` aborts first), the artifact is removed too, so both appear or neither.
 * Resolves to the sidecar's path and size.
 */
export async function writeReportSidecar(
  artifact: string,
  report: { layers: LayerErrorDto[]; lossCurve: [number, number][] },
  signal?: AbortSignal,
): Promise<ReportSidecarInfo> {
  const path = reportSidecarPathFor(artifact);
  try {
    if (signal?.aborted === true) throw signal.reason;
    const digest = await artifactDigest(artifact);
    if (digest === undefined) throw new Error(`${artifact} has no checksum to bind a report sidecar to`);
    const sidecar: ArtifactReportSidecar = {
      format: REPORT_SIDECAR_FORMAT,
      version: 1,
      artifactSha256: digest,
      layers: report.layers,
      lossCurve: report.lossCurve,
    };
    const bytes = new TextEncoder().encode(JSON.stringify(sidecar) + '\n');
    await writeAtomically(path, async (handle) => {
      await handle.writeFile(bytes);
    });
    return { path, bytes: bytes.length };
  } catch (error) {
    await unlink(artifact).catch(() => undefined);
    throw error;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function layerRow(v: unknown): LayerErrorDto | undefined {
  if (!isRecord(v)) return undefined;
  const { name, shape, params, rmse, relativeError } = v;
  if (typeof name !== 'string' || !Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    return undefined;
  if (!finite(params) || !finite(rmse) || !finite(relativeError)) return undefined;
  return { name, shape: shape as number[], params, rmse, relativeError };
}

/**
 * The report sidecar beside the lean artifact `artifact`, when there is one that belongs to it (its `artifactSha256`
 * is the artifact's checksum) and is well formed: its per-layer rows, loss curve, path and size. Undefined for a
 * missing, oversized, malformed or foreign sidecar, which readers treat as "report not stored"; never throws for
 * the sidecar's sake.
 */
export async function readReportSidecar(
  artifact: string,
): Promise<(ReportSidecarInfo & { layers: LayerErrorDto[]; lossCurve: [number, number][] }) | undefined> {
  const path = reportSidecarPathFor(artifact);
  try {
    const info = await stat(path);
    if (!info.isFile() || info.size > MAX_SIDECAR_BYTES) return undefined;
    const digest = await artifactDigest(artifact);
    if (digest === undefined) return undefined;
    const bytes = await readFile(path);
    const parsed = parseJsonBounded(bytes, MAX_SIDECAR_DEPTH);
    if (!parsed.ok || !isRecord(parsed.value)) return undefined;
    const doc = parsed.value;
    if (doc.format !== REPORT_SIDECAR_FORMAT || doc.version !== 1 || doc.artifactSha256 !== digest) return undefined;
    if (!Array.isArray(doc.layers) || !Array.isArray(doc.lossCurve)) return undefined;
    const layers = doc.layers.map(layerRow);
    if (!layers.every((l) => l !== undefined)) return undefined;
    const lossCurve: [number, number][] = [];
    for (const p of doc.lossCurve as unknown[]) {
      if (!Array.isArray(p) || p.length !== 2 || !finite(p[0]) || !finite(p[1])) return undefined;
      lossCurve.push([p[0], p[1]]);
    }
    return { path, bytes: bytes.length, layers, lossCurve };
  } catch {
    return undefined;
  }
}
