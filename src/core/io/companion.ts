/**
 * The one rule for companion files: files a checkpoint names besides itself (TF.js weight shards, the shards of a
 * safetensors index, ONNX external data), and the optional files beside a dataset or a model (class names, the
 * preprocessing sidecar). A checkpoint is often a folder a stranger handed over, so a name it holds
 * must never reach a file the user did not open: a companion must resolve, after symbolic links, inside the folder of
 * the file the user opened. Every reader that opens a second file goes through `resolveCompanion` (via
 * `siblingOpenerFor` in byteSource.ts), so the rule lives here once.
 */
import { lstat, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep, win32 } from 'node:path';
import { CheckpointFormatError } from './errors';
import { recordRead } from './outputGuard';
import { quote } from './text';

/** True if `child` lies strictly inside `parent` (both absolute and normalised). */
function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** The real path of `path`, or undefined when it does not exist or cannot be resolved. */
async function real(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch {
    return undefined;
  }
}

/**
 * Resolves the companion `name` that the checkpoint at `openedPath` refers to, and returns the real path to open.
 *
 * The name must be relative, must not climb out of the folder (`../x`), and its real path (every symbolic link
 * resolved) must lie inside the real folder of `openedPath`. When `openedPath` is itself a link (the Hugging Face
 * cache links every file of a snapshot to a blob folder), a companion that resolves into the opened file's own real
 * folder is accepted too: that folder holds the bytes the user opened. Throws a one-sentence `CheckpointFormatError`
 * naming the checkpoint and the companion when the name is invalid, escapes, or does not exist.
 */
export async function resolveCompanion(openedPath: string, name: string): Promise<string> {
  if (name.length === 0 || name.includes('\0')) {
    throw new CheckpointFormatError(`${openedPath} refers to an invalid file name ${quote(name)}.`);
  }
  if (isAbsolute(name) || win32.isAbsolute(name)) {
    throw new CheckpointFormatError(
      `${openedPath} refers to ${quote(name)}, an absolute path outside its folder; refusing to read it.`,
    );
  }
  const folder = dirname(resolve(openedPath));
  const target = resolve(folder, name);
  if (!isInside(folder, target)) {
    throw new CheckpointFormatError(`${openedPath} refers to ${quote(name)}, outside its folder; refusing to read it.`);
  }
  const realTarget = await real(target);
  if (realTarget === undefined) {
    throw new CheckpointFormatError(`${openedPath} refers to ${quote(name)}, which is missing or unreadable.`);
  }
  const realFolder = (await real(folder)) ?? folder;
  const realOpened = await real(resolve(openedPath));
  const allowed = [realFolder, ...(realOpened !== undefined ? [dirname(realOpened)] : [])];
  if (!allowed.some((f) => isInside(f, realTarget))) {
    throw new CheckpointFormatError(
      `${openedPath} refers to ${quote(name)}, a link to a file outside its folder; refusing to read it.`,
    );
  }
  recordRead(realTarget);
  return realTarget;
}

/**
 * `resolveCompanion` for a companion that may be absent (a class-names file beside a dataset, a preprocessing
 * sidecar beside a model): undefined when nothing has that name, else the same checks and the same errors, so a link
 * that leads out of the folder is refused rather than silently ignored or followed.
 */
export async function resolveOptionalCompanion(openedPath: string, name: string): Promise<string | undefined> {
  try {
    await lstat(resolve(dirname(resolve(openedPath)), name));
  } catch {
    return undefined;
  }
  return resolveCompanion(openedPath, name);
}
