/**
 * Outputs appear whole or not at all: a file is written under a hidden temporary name beside its target and renamed
 * over it at the end. This module names those temporaries, keeps the process-wide set of the ones being written, so
 * that a signal handler can remove them before the process exits, and removes stale ones that an earlier process
 * left behind when it was killed (SIGKILL, power loss) before it could clean up.
 */
import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Temporaries being written by this process (absolute or as given), removed by `removeLiveTemporariesSync`. */
const live = new Set<string>();

/** The temporary beside `target`: `.<name>.<12 hex digits>.tmp` in the same folder, so the rename is atomic. */
export function temporaryPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
}

/** True when the base name `name` is a temporary of the output whose base name is `targetName`. */
export function isTemporaryOf(name: string, targetName: string): boolean {
  const prefix = `.${targetName}.`;
  return name.startsWith(prefix) && /^[0-9a-f]{12}\.tmp$/.test(name.slice(prefix.length));
}

/** Registers `temp` as being written (until `forgetTemporary`). */
export function trackTemporary(temp: string): void {
  live.add(temp);
}

/** `temp` was renamed or removed: it no longer needs cleaning up. */
export function forgetTemporary(temp: string): void {
  live.delete(temp);
}

/**
 * Writes `target` whole or not at all: `write` fills a fresh temporary beside it (opened exclusively, tracked for the
 * signal handlers), which is synced, closed and renamed over `target` when `write` resolves. When `write` throws,
 * the temporary is closed and removed, `target` is left as it was, and the error propagates.
 */
export async function writeAtomically(target: string, write: (handle: FileHandle) => Promise<void>): Promise<void> {
  const temp = temporaryPathFor(target);
  const handle = await open(temp, 'wx');
  trackTemporary(temp);
  let ok = false;
  try {
    await write(handle);
    await handle.sync();
    await handle.close();
    await rename(temp, target);
    ok = true;
  } finally {
    if (!ok) {
      await handle.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
    }
    forgetTemporary(temp);
  }
}

/**
 * Removes every temporary this process is writing, synchronously (for signal handlers and `exit`), and returns
 * their paths. Errors are ignored: a temporary that is already gone needs nothing.
 */
export function removeLiveTemporariesSync(): string[] {
  const removed: string[] = [];
  for (const temp of live) {
    try {
      unlinkSync(temp);
      removed.push(temp);
    } catch {
      // already renamed or removed
    }
  }
  live.clear();
  return removed;
}

/**
 * Removes temporaries of `target` that no live write of this process owns: leftovers of an earlier run that was
 * killed. Resolves to the paths removed (empty when there were none or the folder cannot be listed).
 */
export async function removeStaleTemporaries(target: string): Promise<string[]> {
  const folder = dirname(target);
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const path = join(folder, name);
    if (!isTemporaryOf(name, basename(target)) || live.has(path)) continue;
    try {
      await unlink(path);
      removed.push(path);
    } catch {
      // removed by someone else meanwhile
    }
  }
  return removed;
}
