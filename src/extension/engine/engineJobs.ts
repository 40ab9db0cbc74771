/**
 * What the commands that run engine jobs from the editor share (compression, distillation, "Evaluate…"): checking the
 * engine's answer, a cancellable progress notification tied to the run's cancellation, throttled progress reports,
 * how a run's failure is told to the user (and to its panel), asking before overwriting an output, and running a
 * follow-up VS Code command (reveal, open in a panel) that may fail without harm.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RunEnd } from '../../protocol/panels';
import { numberedArtifactPath } from '../compress/compressChoices';
import { EngineError } from './engineClient';
import { exists } from '../evaluate/evaluatePickers';

/** The message of `error` (an Error's message, else its string form). */
export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `error` as an EngineError (anything else becomes one with reason `internal`). */
export function asEngineError(error: unknown): EngineError {
  return error instanceof EngineError ? error : new EngineError('internal', describe(error));
}

/** Logs an unexpected failure of command `name` (with its stack) and shows its message. */
export function reportUnexpected(log: vscode.LogOutputChannel, name: string, error: unknown): void {
  log.error(`${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  void vscode.window.showErrorMessage(`Weight Lens: ${describe(error)}`);
}

/**
 * Tells the user that `what` (e.g. "Compressing model.pt") failed: nothing when cancelled, the bare message for bad
 * input (it says what to change), else the message with "Show Log" (and the reason in the log).
 */
export function reportFailure(log: vscode.LogOutputChannel, what: string, error: EngineError): void {
  if (error.reason === 'cancelled') return;
  if (error.reason === 'badInput') {
    void vscode.window.showErrorMessage(error.message);
    return;
  }
  log.error(`${what} failed (${error.reason}): ${error.message}`);
  const showLog = 'Show Log';
  void vscode.window.showErrorMessage(`${what} failed: ${error.message}`, showLog).then((c) => {
    if (c === showLog) log.show();
  });
}

/** The end of a run that threw `error`, for its panel. */
export function runEnd(error: EngineError): RunEnd {
  return { status: error.reason === 'cancelled' ? 'cancelled' : 'failed', reason: error.reason, message: error.message };
}

/** Tells how run `what` (e.g. "Distilling x.nern.safetensors") ended with `error`: a cancellation is only logged, a failure reported (`reportFailure`). */
export function reportEnd(log: vscode.LogOutputChannel, what: string, error: EngineError): void {
  if (error.reason === 'cancelled') log.info(`${what} was cancelled.`);
  else reportFailure(log, what, error);
}

/** The progress a notification takes. */
export type NotificationProgress = vscode.Progress<{ message?: string; increment?: number }>;

/** Runs `body` under a cancellable progress notification titled `title`; cancelling the notification cancels `cancel`. */
export function withRunProgress<T>(title: string, cancel: vscode.CancellationTokenSource, body: (progress: NotificationProgress) => Promise<T>): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (progress, token) => {
    token.onCancellationRequested(() => {
      cancel.cancel();
    });
    return body(progress);
  });
}

/** Most often a notification's progress is updated, ms (a run streams far more events). */
const PROGRESS_INTERVAL_MS = 250;

/** Reports a run's percentage to a notification at most every 250 ms (and always at 100 %), as increments. */
export class ThrottledProgress {
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
  const choice = await vscode.window.showInformationMessage(message, show);
  if (choice === show) onShow();
}

/** Runs VS Code command `command`; a failure is logged as a warning starting with `failure` ("Could not reveal x"), never thrown. */
export async function executeOrWarn(log: vscode.LogOutputChannel, failure: string, command: string, ...args: unknown[]): Promise<void> {
  try {
    await vscode.commands.executeCommand(command, ...args);
  } catch (e) {
    log.warn(`${failure}: ${describe(e)}`);
  }
}
