/**
 * What the commands that run engine jobs from the editor share (compression, decompression, distillation,
 * "Evaluate…"): `runEngineJob`, which runs one engine request under a cancellable progress notification with
 * throttled progress reports and tells the user (and the run's panel) how it failed; asking before overwriting an
 * output; and running a follow-up VS Code command (reveal, open in a panel) that may fail without harm.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EngineAnswer, EngineCallKind, EngineEvent, EngineParams } from '../../protocol/engine';
import type { RunEnd } from '../../protocol/panels';
import { numberedArtifactPath } from '../compress/compressChoices';
import { EngineError, errorMessage, type EngineClient } from './engineClient';
import { inertLinks } from './notificationText';
import { exists } from '../evaluate/evaluatePickers';

/** `error` as an EngineError (anything else becomes one with reason `internal`). */
export function asEngineError(error: unknown): EngineError {
  return error instanceof EngineError ? error : new EngineError('internal', errorMessage(error));
}

/** Logs an unexpected failure of command `name` (with its stack) and shows its message. */
export function reportUnexpected(log: vscode.LogOutputChannel, name: string, error: unknown): void {
  log.error(`${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  void vscode.window.showErrorMessage(inertLinks(`Weight Lens: ${errorMessage(error)}`));
}

/**
 * Tells the user that `what` (e.g. "Compressing model.pt") failed: nothing when cancelled, the bare message for bad
 * input (it says what to change), else the message with "Show Log" (and the reason in the log).
 */
export function reportFailure(log: vscode.LogOutputChannel, what: string, error: EngineError): void {
  if (error.reason === 'cancelled') return;
  if (error.reason === 'badInput') {
    void vscode.window.showErrorMessage(inertLinks(error.message));
    return;
  }
  log.error(`${what} failed (${error.reason}): ${error.message}`);
  const showLog = 'Show Log';
  void vscode.window.showErrorMessage(inertLinks(`${what} failed: ${error.message}`), showLog).then((c) => {
    if (c === showLog) log.show();
  });
}

/** The end of a run that threw `error`, for its panel. */
function runEnd(error: EngineError): RunEnd {
  return {
    status: error.reason === 'cancelled' ? 'cancelled' : 'failed',
    reason: error.reason,
    message: error.message,
  };
}

/** Tells how run `what` (e.g. "Distilling x.nern.safetensors") ended with `error`: a cancellation is only logged, a failure reported (`reportFailure`). */
function reportEnd(log: vscode.LogOutputChannel, what: string, error: EngineError): void {
  if (error.reason === 'cancelled') log.info(`${what} was cancelled.`);
  else reportFailure(log, what, error);
}

/** The progress a notification takes. */
type NotificationProgress = vscode.Progress<{ message?: string; increment?: number }>;

/** Most often a notification's progress is updated, ms (a run streams far more events). */
const PROGRESS_INTERVAL_MS = 250;

/** Reports a run's percentage to a notification at most every 250 ms (and always at 100 %), as increments. */
class ThrottledProgress {
  private last = 0;
  private percentValue = 0;

  constructor(private readonly progress: NotificationProgress) {}

  /** The highest percentage reported so far (0 to 100). */
  get percent(): number {
    return this.percentValue;
  }

  /** Reports `percent` (0 to 100) with `message()` unless the last report was too recent; true when it reported. */
  report(percent: number, message: () => string): boolean {
    const now = Date.now();
    if (now - this.last < PROGRESS_INTERVAL_MS && percent < 100) return false;
    this.last = now;
    this.progress.report({ message: message(), increment: Math.max(0, percent - this.percentValue) });
    this.percentValue = Math.max(this.percentValue, percent);
    return true;
  }
}

/** What a notification shows for one event: a percentage (0 to 100; throttled) and a sentence. */
export interface JobProgress {
  /** Percent done, 0 to 100; absent: only `message` is shown, at once (a status sentence). */
  percent?: number;
  message: string;
}

/** One long engine request to run under a notification (see `runEngineJob`). */
export interface EngineJob<K extends EngineCallKind> {
  /** The notification's title, which failure messages also start with ("Compressing model.pt"). */
  readonly title: string;
  readonly kind: K;
  readonly params: EngineParams<K>;
  /** Cancels the job; the caller owns (and disposes) it. The notification's Cancel button cancels it too. */
  readonly cancel: vscode.CancellationTokenSource;
  /** Stop and Save: firing it asks the job to end early and write what it has (the job then answers as usual). */
  readonly stop?: vscode.CancellationTokenSource;
  /** Called with each streamed event, e.g. a panel's `apply` (events keep their stream's name up to the webview). */
  readonly onEvent?: (event: EngineEvent<K>) => void;
  /** What the notification shows for an event; undefined: nothing. */
  readonly progress?: (event: EngineEvent<K>) => JobProgress | undefined;
  /** Called when the notification showed a new percentage: the highest so far, and the event that brought it. */
  readonly onReported?: (percent: number, event: EngineEvent<K>) => void;
  /** Called when the job failed or was cancelled, before the user is told (e.g. the panel's `…/ended` event). */
  readonly onEnded?: (end: RunEnd) => void;
}

/**
 * Runs `job` on `engine` under a cancellable progress notification and resolves with its answer. When it fails or is
 * cancelled, calls `onEnded`, tells the user (`reportEnd`: a cancellation is only logged, bad input shown as is,
 * anything else with "Show Log") and rejects with the `EngineError`, so a caller only catches to stop.
 */
export async function runEngineJob<K extends EngineCallKind>(
  engine: EngineClient,
  log: vscode.LogOutputChannel,
  job: EngineJob<K>,
): Promise<EngineAnswer<K>> {
  const options = { location: vscode.ProgressLocation.Notification, title: job.title, cancellable: true };
  try {
    return await vscode.window.withProgress(options, (progress, token) => {
      token.onCancellationRequested(() => {
        job.cancel.cancel();
      });
      const reporter = new ThrottledProgress(progress);
      const onEvent = (event: EngineEvent<K>): void => {
        job.onEvent?.(event);
        const shown = job.progress?.(event);
        if (shown === undefined) return;
        if (shown.percent === undefined) progress.report({ message: shown.message });
        else if (reporter.report(shown.percent, () => shown.message)) job.onReported?.(reporter.percent, event);
      };
      return engine.call(job.kind, job.params, onEvent, job.cancel.token, job.stop?.token);
    });
  } catch (e) {
    const error = asEngineError(e);
    job.onEnded?.(runEnd(error));
    reportEnd(log, job.title, error);
    throw error;
  }
}

/**
 * `out`, or when a file of that name exists, what the user chooses: overwrite it, keep both (the first free numbered
 * name), or cancel (undefined). `what` names the new output in the question ("compression", "distillation").
 */
export async function chooseOutputPath(out: string, what: string): Promise<string | undefined> {
  if (!(await exists(out))) return out;
  const overwrite = 'Overwrite';
  const keepBoth = 'Keep Both';
  const answer = await vscode.window.showWarningMessage(
    `${path.basename(out)} already exists.`,
    { modal: true, detail: `Replace it with the new ${what}, or write the new one under a numbered name?` },
    overwrite,
    keepBoth,
  );
  if (answer === overwrite) return out;
  if (answer !== keepBoth) return undefined;
  for (let n = 2; n < 1000; n++) {
    const candidate = numberedArtifactPath(out, n);
    if (!(await exists(candidate))) return candidate;
  }
  return undefined;
}

/** Asks whether to show a run already in progress (`message`, one button `show`); calls `onShow` when chosen. */
export async function offerToShow(message: string, show: string, onShow: () => void): Promise<void> {
  const choice = await vscode.window.showInformationMessage(inertLinks(message), show);
  if (choice === show) onShow();
}

/** Runs VS Code command `command`; a failure is logged as a warning starting with `failure` ("Could not reveal x"), never thrown. */
export async function executeOrWarn(
  log: vscode.LogOutputChannel,
  failure: string,
  command: string,
  ...args: unknown[]
): Promise<void> {
  try {
    await vscode.commands.executeCommand(command, ...args);
  } catch (e) {
    log.warn(`${failure}: ${errorMessage(e)}`);
  }
}
