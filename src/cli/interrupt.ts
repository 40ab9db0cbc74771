/**
 * Ctrl-C and SIGTERM for the CLI's long commands. The first signal aborts the job, which stops at its next check,
 * removes its temporary file and rejects with CancelledError. If it has not settled within `GRACE_MS` (a
 * distillation step or an evaluation batch can run for seconds), the process removes every temporary it is writing
 * and exits at once: outputs are only ever written under a temporary name and renamed when whole, so nothing a user
 * keeps is lost. A second signal exits at once too.
 *
 * Commands that can keep their work (compress, distill) ask for Stop and Save: there the first Ctrl-C only fires the
 * job's stop signal (it ends training after the step under way and writes what it has, marked as stopped early, and
 * the command ends normally); a second Ctrl-C, or SIGTERM at any time, aborts as above.
 */
import { basename } from 'node:path';
import { removeLiveTemporariesSync, removeStaleTemporaries } from '../core/io/atomicFile';

/** How long a job may take to stop after a signal before the process exits without it (milliseconds). */
export const GRACE_MS = 800;

/** Exit codes of a process ended by a signal, as shells report them (128 + signal number). */
const EXIT_CODE: Readonly<Record<'SIGINT' | 'SIGTERM', number>> = { SIGINT: 130, SIGTERM: 143 };

/** Removes live temporaries, says so on stderr, and exits with the signal's code. */
function exitNow(signal: 'SIGINT' | 'SIGTERM'): never {
  removeLiveTemporariesSync();
  process.stderr.write('error: cancelled\n');
  process.exit(EXIT_CODE[signal]);
}

/** What the first Ctrl-C of a Stop and Save command prints on stderr. */
export const STOP_NOTICE = 'stopping after this step and saving the predictor so far (Ctrl-C again to abort)';

/**
 * Runs `job` with an AbortSignal that SIGINT and SIGTERM abort (see the module comment), and resolves or rejects as
 * the job does; after an aborting signal it exits with 128 + the signal's number instead. With `saveOnInterrupt`,
 * the first SIGINT fires the job's stop signal (the second argument) instead of aborting. The handlers are removed
 * when it settles.
 */
export async function interruptible<T>(
  job: (signal: AbortSignal, stop: AbortSignal) => Promise<T>,
  options: { saveOnInterrupt?: boolean } = {},
): Promise<T> {
  const controller = new AbortController();
  const stop = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let received: 'SIGINT' | 'SIGTERM' | undefined;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    if (received !== undefined) exitNow(signal);
    if (options.saveOnInterrupt === true && signal === 'SIGINT' && !stop.signal.aborted) {
      stop.abort();
      process.stderr.write(`\n${STOP_NOTICE}\n`);
      return;
    }
    received = signal;
    controller.abort();
    timer = setTimeout(() => exitNow(signal), GRACE_MS);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await job(controller.signal, stop.signal);
  } catch (error) {
    // Stopped by the signal (or failing while it stopped): exit as a signalled process does.
    if (received !== undefined) exitNow(received);
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (timer !== undefined) clearTimeout(timer);
  }
}

/**
 * Removes temporaries of `target` that an earlier run left when it was killed (SIGKILL, power loss), and says so on
 * stderr in one line, before a command writes `target`.
 */
export async function sweepStaleTemporaries(target: string): Promise<void> {
  const removed = await removeStaleTemporaries(target);
  if (removed.length > 0) {
    process.stderr.write(
      `note: removed ${removed.length} temporary file${removed.length === 1 ? '' : 's'} an interrupted earlier run left beside ${basename(target)}\n`,
    );
  }
}
