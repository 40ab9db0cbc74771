// Locates the committed fixtures and their manifests (written by test/fixtures/make/*), shared by the unit and CLI tests.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileByteSource, siblingOpenerFor } from '../../src/core/io/byteSource';
import type { Checkpoint, FormatReader, OpenContext } from '../../src/core/formats/types';
import { readTensorValues } from '../../src/core/tensors/tensor';

/** Absolute path of test/fixtures. */
export const FIXTURES = join(__dirname, '..', 'fixtures');

/** One tensor's expected facts, computed by the generating tool (NumPy/PyTorch/ONNX). */
export interface ManifestEntry {
  name: string;
  dtype: string;
  shape: number[];
  sum?: number;
  sumSquares?: number;
  first?: number[];
}

/** One good fixture file. */
export interface ManifestFile {
  file: string;
  format: string;
  tensors: number;
  entries: ManifestEntry[];
}

/** One hostile or broken file and the error it must produce. */
export interface HostileCase {
  file: string;
  why: string;
  message: string;
}

/** Every good fixture, with its absolute path, across all `test/fixtures/<dir>/manifest.json` files. */
export function goodFixtures(): (ManifestFile & { path: string; group: string })[] {
  const out: (ManifestFile & { path: string; group: string })[] = [];
  for (const group of readdirSync(FIXTURES)) {
    const manifest = join(FIXTURES, group, 'manifest.json');
    if (group === 'hostile' || !existsSync(manifest)) continue;
    const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { files?: ManifestFile[] };
    for (const f of parsed.files ?? []) out.push({ ...f, path: join(FIXTURES, group, f.file), group });
  }
  return out;
}

/** Every hostile case across `test/fixtures/hostile/<format>/manifest.json`, or only those of `group`. */
export function hostileCases(group?: string): (HostileCase & { path: string; group: string })[] {
  const base = join(FIXTURES, 'hostile');
  if (!existsSync(base)) return [];
  const out: (HostileCase & { path: string; group: string })[] = [];
  for (const name of group === undefined ? readdirSync(base) : [group]) {
    const manifest = join(base, name, 'manifest.json');
    if (!existsSync(manifest)) continue;
    const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { cases?: HostileCase[] };
    for (const c of parsed.cases ?? []) out.push({ ...c, path: join(base, name, c.file), group: name });
  }
  return out;
}

/** The `OpenContext` a reader gets for a file on disk (siblings confined to its folder). */
export function contextFor(path: string): OpenContext {
  return { path, siblings: siblingOpenerFor(path) };
}

/** Opens `path` with one specific reader (bypassing sniffing); closes the file if opening fails. */
export async function openWith(reader: FormatReader, path: string): Promise<Checkpoint> {
  const source = await FileByteSource.open(path);
  try {
    return await reader.open(source, contextFor(path));
  } catch (error) {
    await source.close();
    throw error;
  }
}

/** Opens a checkpoint, reads every tensor's values (so damage anywhere in the data surfaces) and closes it. */
export async function readEveryTensor(opening: Promise<Checkpoint>): Promise<void> {
  const checkpoint = await opening;
  try {
    for (const t of checkpoint.tensors) await readTensorValues(t);
  } finally {
    await checkpoint.close();
  }
}
