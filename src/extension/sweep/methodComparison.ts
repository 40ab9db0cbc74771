/**
 * Compare methods… (the Budget panel's button): asks for the runnable model, the data to score on, the methods and
 * the sizes, then runs the sweep in the engine worker under a cancellable progress notification, and keeps each
 * source's comparison (rows as they come, then the table) for the Budget panel to draw. One comparison per source
 * at a time; starting another on the same source asks to stop the first.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CompressOptionsDto } from '../../protocol/compress';
import type { MethodComparisonDto } from '../../protocol/panels';
import {
  DEFAULT_SWEEP_SIZES,
  describeSweepStage,
  FIXED_SIZE_METHODS,
  parseSizes,
  type SweepRequestDto,
} from '../../protocol/sweep';
import { COMPRESS_METHOD_DETAIL, COMPRESS_METHODS } from '../../protocol/vocabulary';
import type { EngineClient } from '../engine/engineClient';
import { asEngineError, runEngineJob } from '../engine/engineJobs';
import { inertLinks } from '../engine/notificationText';
import type { ModelPickers } from '../evaluate/evaluatePickers';

/** The comparisons of every source, and the runs in flight. */
export class MethodComparisons implements vscode.Disposable {
  private readonly bySource = new Map<string, MethodComparisonDto>();
  private readonly running = new Map<string, vscode.CancellationTokenSource>();

  /**
   * @param options compression options of the user's settings (steps, seed, backend…) for the sweep's runs.
   * @param changed called whenever a source's comparison changes, so its Budget panel can be redrawn.
   */
  constructor(
    private readonly engine: EngineClient,
    private readonly log: vscode.LogOutputChannel,
    private readonly pickers: ModelPickers,
    private readonly options: () => CompressOptionsDto,
    private readonly changed: (source: string) => void,
  ) {}

  /** The comparison of `source`, if one was started. */
  view(source: string): MethodComparisonDto | undefined {
    return this.bySource.get(source);
  }

  /** Stops the comparison running on `source`, if any. */
  cancel(source: string): void {
    this.running.get(source)?.cancel();
  }

  dispose(): void {
    for (const c of this.running.values()) c.cancel();
    this.running.clear();
  }

  /** Asks for what to compare, then runs the sweep on `source`; `ownArtifacts` are the user's earlier runs. */
  async compare(source: string, ownArtifacts: readonly string[]): Promise<void> {
    if (this.running.has(source)) {
      const stop = 'Stop It';
      const answer = await vscode.window.showWarningMessage(
        `A comparison of ${path.basename(source)} is already running.`,
        stop,
      );
      if (answer === stop) this.cancel(source);
      return;
    }
    const title = `Compare methods on ${path.basename(source)}`;
    const model = await this.pickers.pickModel(`${title}: the runnable model`, undefined, source);
    if (model === undefined) return;
    const data = await this.pickers.pickData(`${title}: the data to score on`, model, undefined, 'evaluate');
    if (data === undefined) return;
    const picked = await vscode.window.showQuickPick(
      COMPRESS_METHODS.map((m) => ({ label: m, detail: COMPRESS_METHOD_DETAIL[m], picked: true, method: m })),
      { title: `${title}: methods`, canPickMany: true, ignoreFocusOut: true },
    );
    if (picked === undefined || picked.length === 0) return;
    const methods = picked.map((p) => p.method);
    let sizes: number[] = [...DEFAULT_SWEEP_SIZES];
    if (methods.some((m) => !FIXED_SIZE_METHODS.includes(m))) {
      const text = await vscode.window.showInputBox({
        title: `${title}: sizes`,
        prompt: 'Fractions of the represented weights’ float32 bytes (int8 and int4 have their own size)',
        value: DEFAULT_SWEEP_SIZES.join(', '),
        ignoreFocusOut: true,
        validateInput: (t) =>
          parseSizes(t) === undefined
            ? 'Sizes are fractions in (0, 1] or percentages, e.g. 0.05, 0.1, 20%.'
            : undefined,
      });
      const parsed = text === undefined ? undefined : parseSizes(text);
      if (parsed === undefined) return;
      sizes = parsed;
    }
    const preprocess = this.pickers.rememberedPreprocess(model);
    const request: SweepRequestDto = {
      checkpoint: source,
      model,
      data,
      methods,
      sizes,
      compress: this.options(),
      distillSteps: 0,
      ownArtifacts: [...ownArtifacts],
      ...(preprocess !== undefined ? { preprocess } : {}),
    };
    await this.run(source, request);
  }

  private async run(source: string, request: SweepRequestDto): Promise<void> {
    const comparison: MethodComparisonDto = { rows: [] };
    this.bySource.set(source, comparison);
    this.changed(source);
    const cancel = new vscode.CancellationTokenSource();
    this.running.set(source, cancel);
    this.log.info(
      `Comparing ${request.methods.join(', ')} at ${request.sizes.join(', ')} on ${source} with ${request.model} and ${request.data}.`,
    );
    try {
      const report = await runEngineJob(this.engine, this.log, {
        title: `Comparing methods on ${path.basename(source)}`,
        kind: 'sweep/start',
        params: request,
        cancel,
        onEvent: (event) => {
          if (event.kind === 'sweep/row') comparison.rows.push(event.row);
          else comparison.progress = event.progress;
          this.changed(source);
        },
        progress: (event) => {
          if (event.kind !== 'sweep/progress') return undefined;
          const p = event.progress;
          return {
            percent: Math.floor(((Math.max(0, p.run - 1) + p.fraction) / Math.max(1, p.runs)) * 100),
            message: `${p.run} / ${p.runs}: ${describeSweepStage(p)}`,
          };
        },
      });
      comparison.report = report;
      comparison.rows = report.rows;
      delete comparison.progress;
      const front = report.rows.filter((r) => r.pareto && r.own !== true);
      const smallest = front[0];
      const message =
        smallest === undefined
          ? `Compared ${request.methods.length} methods on ${path.basename(source)}: no run finished.`
          : `Compared ${report.rows.length} runs on ${path.basename(source)} in ${Math.round(report.seconds)} s; smallest on the front: ${smallest.method} at ${(100 * smallest.fractionOfSource).toFixed(1)} % of the file.`;
      void vscode.window.showInformationMessage(inertLinks(message));
    } catch (e) {
      const error = asEngineError(e);
      const runs = comparison.progress?.runs;
      const done = `${comparison.rows.length}${runs !== undefined ? ` of ${runs}` : ''}`;
      comparison.stopped =
        error.reason === 'cancelled' ? `Stopped after ${done} runs.` : `Failed after ${done} runs: ${error.message}`;
      delete comparison.progress;
    } finally {
      this.running.delete(source);
      cancel.dispose();
      this.changed(source);
    }
  }
}
