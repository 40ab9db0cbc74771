/**
 * A job never writes over a file it reads. Besides the files a user names (the checkpoint, the model, the teacher,
 * the data), readers open companions (shards, external data) that only the file names; a read ledger, kept per job
 * through AsyncLocalStorage, records every companion `resolveCompanion` hands out while the job runs, so the output
 * check at write time covers them too. Paths are compared after symbolic links are resolved.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { BadInputError } from './errors';

/** Real paths of the companion files read in the current job (absent outside `withReadLedger`). */
const ledger = new AsyncLocalStorage<Set<string>>();

/** Runs `job` with a fresh read ledger, so that `refuseOutputOverInputs` inside it also sees its companions. */
export function withReadLedger<T>(job: () => Promise<T>): Promise<T> {
  return ledger.run(new Set<string>(), job);
}

/** Records that the current job reads the file at `realPath` (called for every companion file resolved). */
export function recordRead(realPath: string): void {
  ledger.getStore()?.add(realPath);
}

/** `path` with every symbolic link resolved; for a file that does not exist yet, its absolute path. */
async function realOrAbsolute(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return resolve(path);
  }
}

/**
 * Throws a `BadInputError` (option `out`) when `out` resolves, after symbolic links, to one of `inputs` or to a
 * companion file the current job has read. `what` names the job's output in the message ("The artifact").
 */
export async function refuseOutputOverInputs(
  out: string,
  inputs: readonly string[],
  what = 'The output',
): Promise<void> {
  const target = await realOrAbsolute(out);
  for (const input of inputs) {
    if ((await realOrAbsolute(input)) === target) {
      throw new BadInputError(`${what} ${out} is ${input}, which this job reads; choose another output.`, {
        option: 'out',
      });
    }
  }
  if (ledger.getStore()?.has(target) === true) {
    throw new BadInputError(
      `${what} ${out} is a file that ${inputs[0] ?? 'the input'} refers to and this job reads; choose another output.`,
      { option: 'out' },
    );
  }
}
