/**
 * "Weight Lens: Compare With…" (`weightLens.compareWith`): from the Explorer with two checkpoints selected it
 * compares them; with one (Explorer or the Inspector's toolbar) it asks for the other; from the palette it asks for
 * both. The comparison runs in the engine worker (`diff/start`) under a cancellable progress notification, and the
 * report opens in a Compare panel, whose Δ histograms (`diff/histogram`) are computed in the worker on demand.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DELTA_HISTOGRAM_BINS } from '../../protocol/compare';
import type { DiffMatch } from '../../protocol/diff';
import { CHECKPOINT_EXTENSIONS } from '../fileKinds';
import type { EngineClient } from '../engine/engineClient';
import { reportUnexpected, runEngineJob } from '../engine/engineJobs';
import { ComparePanels } from '../panels/comparePanel';
import { compareTargets } from './compareTargets';

/** The command's id (contributed in package.json). */
export const COMPARE_WITH_COMMAND = 'weightLens.compareWith';

function isUri(x: unknown): x is vscode.Uri {
  return x instanceof vscode.Uri;
}

/** Bins of the Δ histograms: the Inspector's `weightLens.histogramBins`, clamped to what `diff/histogram` accepts. */
function histogramBins(): number {
  const bins = vscode.workspace
    .getConfiguration('weightLens')
    .get<number>('histogramBins', DELTA_HISTOGRAM_BINS.default);
  return Number.isSafeInteger(bins)
    ? Math.min(DELTA_HISTOGRAM_BINS.max, Math.max(DELTA_HISTOGRAM_BINS.min, bins))
    : DELTA_HISTOGRAM_BINS.default;
}

/** Asks for one checkpoint file (`which` is `A` or `B`), starting beside `near` when given. */
async function askForCheckpoint(which: 'A' | 'B', near: vscode.Uri | undefined): Promise<vscode.Uri | undefined> {
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: which === 'A' ? 'Compare' : 'Compare With',
    title:
      which === 'A'
        ? 'Weight Lens: the checkpoint to compare (A)'
        : `Weight Lens: compare ${near === undefined ? 'A' : path.basename(near.fsPath)} with… (B)`,
    ...(near !== undefined ? { defaultUri: vscode.Uri.joinPath(near, '..') } : {}),
    filters: { Checkpoints: [...CHECKPOINT_EXTENSIONS], 'All files': ['*'] },
  });
  return picked?.[0];
}

/** Registers "Compare With…" and owns its panels. */
export class CompareController {
  private readonly panels: ComparePanels;

  constructor(
    context: vscode.ExtensionContext,
    private readonly engine: EngineClient,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.panels = new ComparePanels(
      context.extensionUri,
      (request, token) => this.engine.call('diff/histogram', { ...request, bins: histogramBins() }, undefined, token),
      (a, b, match) => {
        void this.run(a, b, match);
      },
      log,
    );
  }

  /** The command registration and the panels, disposed together. */
  register(): vscode.Disposable {
    const command = vscode.commands.registerCommand(COMPARE_WITH_COMMAND, async (arg: unknown, all: unknown) => {
      try {
        await this.compareWith(arg, all);
      } catch (e) {
        reportUnexpected(this.log, 'Compare With…', e);
      }
    });
    return vscode.Disposable.from(command, this.panels);
  }

  private async compareWith(arg: unknown, all: unknown): Promise<void> {
    const targets = compareTargets(arg, all, isUri);
    let a: vscode.Uri | undefined;
    let b: vscode.Uri | undefined;
    switch (targets.kind) {
      case 'tooMany':
        void vscode.window.showInformationMessage(
          `Compare With… compares two checkpoints; ${targets.count} files are selected.`,
        );
        return;
      case 'both':
        ({ a, b } = targets);
        break;
      case 'askB':
        a = targets.a;
        b = await askForCheckpoint('B', a);
        break;
      case 'askBoth':
        a = await askForCheckpoint('A', undefined);
        if (a !== undefined) b = await askForCheckpoint('B', a);
        break;
    }
    if (a === undefined || b === undefined) return;
    if (a.scheme !== 'file' || b.scheme !== 'file') {
      void vscode.window.showErrorMessage('Weight Lens compares checkpoints on a local or remote file system only.');
      return;
    }
    await this.run(a.fsPath, b.fsPath);
  }

  /**
   * Compares `a` with `b` (pairing by `match`) in the worker under a notification and shows the report; a failure is
   * reported there.
   */
  private async run(a: string, b: string, match: DiffMatch = 'name'): Promise<void> {
    const cancel = new vscode.CancellationTokenSource();
    try {
      const report = await runEngineJob(this.engine, this.log, {
        title: `Comparing ${path.basename(a)} with ${path.basename(b)}`,
        kind: 'diff/start',
        params: { a, b, options: match === 'name' ? {} : { match } },
        cancel,
        progress: ({ progress: p }) => ({
          // Elements compared move within big tensors; before the first chunk, pairs started.
          percent:
            p.elementsTotal > 0 ? (100 * p.elementsDone) / p.elementsTotal : p.total > 0 ? (100 * p.done) / p.total : 0,
          message: `${p.done} / ${p.total} tensors · ${p.name}`,
        }),
      });
      this.log.info(
        `Compared ${a} with ${b} in ${report.seconds.toFixed(2)} s: ${report.tensors.length} rows, identical: ${report.summary.identical}.`,
      );
      this.panels.show(report);
    } catch {
      // runEngineJob told the user (a cancellation is only logged).
    } finally {
      cancel.dispose();
    }
  }
}
