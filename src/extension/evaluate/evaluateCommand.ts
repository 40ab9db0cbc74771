/**
 * The Reconstruction panel's "Evaluate…": runs the panel's artifact in a runnable model on data the user points to
 * (the same pickers and remembered choices as distillation), with the model's own weights as the reference. One
 * engine `eval/start` with `options.weights = <artifact>` reports the original model's accuracy, the artifact's
 * accuracy / PSNR / agreement / relative error and the confusion matrix of original against reconstructed classes;
 * progress and the result are folded into the panel (`eval/*` events), with a cancellable notification.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EvalOptionsDto, PreprocessDto } from '../../protocol/evaluate';
import type { ReconstructionEvent } from '../../protocol/panels';
import { evalDoneMessage, parseLimit } from '../distill/distillChoices';
import type { EngineClient } from '../engine/engineClient';
import { reportUnexpected, runEngineJob } from '../engine/engineJobs';
import { askPreprocess, preprocessItem, settingsBackend, type ModelPickers } from './evaluatePickers';
import type { ReconstructionEvaluator, ReconstructionPanel } from '../panels/reconstructionPanel';
import { inertLinks } from '../engine/notificationText';

/** Samples per forward pass offered by default (the engine's default). */
const DEFAULT_EVAL_BATCH = 64;
/** Largest batch accepted. */
const MAX_EVAL_BATCH = 4096;

/** What the evaluation quick pick settles. */
interface EvalPlan {
  limit?: number;
  batchSize: number;
  preprocess?: PreprocessDto;
}

/** Evaluates artifacts shown in Reconstruction panels; at most one run per panel. */
export class ArtifactEvaluator implements ReconstructionEvaluator, vscode.Disposable {
  private readonly runs = new Map<ReconstructionPanel, vscode.CancellationTokenSource>();
  /** Panels whose pickers are open (a second click is ignored meanwhile). */
  private readonly asking = new Set<ReconstructionPanel>();

  constructor(
    private readonly engine: EngineClient,
    private readonly log: vscode.LogOutputChannel,
    private readonly pickers: ModelPickers,
  ) {}

  evaluate(panel: ReconstructionPanel): void {
    if (this.runs.has(panel) || this.asking.has(panel)) return;
    this.asking.add(panel);
    this.ask(panel)
      .then((plan) => {
        this.asking.delete(panel);
        if (plan !== undefined) return this.run(panel, plan.model, plan.data, plan.plan);
        return undefined;
      })
      .catch((e: unknown) => {
        this.asking.delete(panel);
        reportUnexpected(this.log, 'Evaluate', e);
      });
  }

  cancel(panel: ReconstructionPanel): void {
    this.runs.get(panel)?.cancel();
  }

  dispose(): void {
    for (const c of this.runs.values()) c.cancel();
    this.runs.clear();
  }

  /** Model, data and settings for the panel's artifact; undefined when the user backs out. */
  private async ask(panel: ReconstructionPanel): Promise<{ model: string; data: string; plan: EvalPlan } | undefined> {
    const s = panel.snapshot;
    const artifact = s.artifact;
    if (artifact === undefined || s.status !== 'done') {
      void vscode.window.showInformationMessage('The artifact can be evaluated once it is written.');
      return undefined;
    }
    const name = path.basename(artifact);
    const model = await this.pickers.pickModel(
      `Evaluate ${name} (1/3): runnable model`,
      artifact,
      path.isAbsolute(s.source) ? s.source : undefined,
    );
    if (model === undefined) return undefined;
    const data = await this.pickers.pickData(`Evaluate ${name} (2/3): data`, model, artifact, 'evaluate');
    if (data === undefined) return undefined;
    const initial: EvalPlan = { batchSize: DEFAULT_EVAL_BATCH };
    const preprocess = this.pickers.rememberedPreprocess(model);
    if (preprocess !== undefined) initial.preprocess = preprocess;
    const plan = await this.pickSettings(name, model, data, initial);
    if (plan === undefined) return undefined;
    await this.pickers.choices.remember({
      artifact,
      model,
      data,
      role: 'evaluate',
      ...(plan.preprocess !== undefined ? { preprocess: plan.preprocess } : {}),
    });
    return { model, data, plan };
  }

  /** "Evaluate" first, then the sample limit, batch size and preprocessing, each editable. */
  private async pickSettings(
    name: string,
    model: string,
    data: string,
    initial: EvalPlan,
  ): Promise<EvalPlan | undefined> {
    const plan: EvalPlan = { ...initial };
    type Item = vscode.QuickPickItem & { action?: 'start' | 'limit' | 'batch' | 'preprocess' };
    for (;;) {
      const pre = await preprocessItem(model, plan.preprocess);
      const items: Item[] = [
        {
          label: '$(play) Evaluate',
          description: `${path.basename(model)} on ${path.basename(data)}, original weights vs ${name}`,
          action: 'start',
        },
        { label: 'Settings', kind: vscode.QuickPickItemKind.Separator },
        {
          label: `Samples: ${plan.limit === undefined ? 'all' : plan.limit.toLocaleString('en-US')}`,
          description: plan.limit === undefined ? 'default · every sample of the data' : 'the first ones',
          action: 'limit',
        },
        {
          label: `Batch size: ${plan.batchSize}`,
          description:
            plan.batchSize === DEFAULT_EVAL_BATCH ? 'default · samples per forward pass' : 'changed for this run',
          action: 'batch',
        },
        { label: pre.label, description: pre.description, action: 'preprocess' },
      ];
      const picked = await vscode.window.showQuickPick(items, {
        title: `Evaluate ${name} (3/3): settings`,
        placeHolder: 'Evaluate, or choose a setting to change it',
        ignoreFocusOut: true,
      });
      if (picked === undefined) return undefined;
      if (picked.action === 'start') return plan;
      if (picked.action === 'limit') {
        const text = await vscode.window.showInputBox({
          title: 'Samples',
          value: plan.limit === undefined ? 'all' : String(plan.limit),
          prompt: 'Evaluate the first N samples of the data, or "all"',
          ignoreFocusOut: true,
          validateInput: (t) => {
            const p = parseLimit(t);
            return p.ok ? undefined : p.message;
          },
        });
        if (text !== undefined) {
          const p = parseLimit(text);
          if (p.ok) {
            if (p.value === undefined) delete plan.limit;
            else plan.limit = p.value;
          }
        }
      } else if (picked.action === 'batch') {
        const check = (t: string): string | undefined => {
          const n = Number(t.trim());
          return Number.isInteger(n) && n >= 1 && n <= MAX_EVAL_BATCH
            ? undefined
            : `The batch size must be a whole number from 1 to ${MAX_EVAL_BATCH}.`;
        };
        const text = await vscode.window.showInputBox({
          title: 'Batch size',
          value: String(plan.batchSize),
          prompt: 'Samples per forward pass',
          ignoreFocusOut: true,
          validateInput: check,
        });
        if (text !== undefined && check(text) === undefined) plan.batchSize = Number(text.trim());
      } else if (picked.action === 'preprocess') {
        const answer = await askPreprocess(plan.preprocess);
        if (answer !== undefined) {
          if (answer.value === undefined) delete plan.preprocess;
          else plan.preprocess = answer.value;
        }
      }
    }
  }

  /** Runs the evaluation, folding progress and the result into the panel (while it still shows the same run). */
  private async run(panel: ReconstructionPanel, model: string, data: string, plan: EvalPlan): Promise<void> {
    const snapshot = panel.snapshot;
    const artifact = snapshot.artifact;
    if (artifact === undefined) return;
    const apply = (event: ReconstructionEvent): void => {
      if (!panel.isDisposed && panel.snapshot === snapshot) panel.apply(event);
    };
    const cancel = new vscode.CancellationTokenSource();
    this.runs.set(panel, cancel);
    const options: EvalOptionsDto = { weights: artifact, batchSize: plan.batchSize, backend: settingsBackend() };
    if (plan.limit !== undefined) options.limit = plan.limit;
    if (plan.preprocess !== undefined) options.preprocess = plan.preprocess;
    apply({ kind: 'eval/started', model, data });
    this.log.info(
      `Evaluating ${artifact} in ${model} on ${data}${plan.limit === undefined ? '' : ` (first ${plan.limit} samples)`}.`,
    );
    try {
      const report = await runEngineJob(this.engine, this.log, {
        title: `Evaluating ${path.basename(artifact)} in ${path.basename(model)}`,
        kind: 'eval/start',
        params: { model, data, options },
        cancel,
        onEvent: apply,
        progress: (event) => ({
          percent: event.total > 0 ? Math.floor((event.done / event.total) * 100) : 0,
          message: `${event.done} / ${event.total} samples${event.engine !== undefined ? ` on ${event.engine}` : ''}`,
        }),
        onEnded: (end) => {
          apply({ kind: 'eval/ended', ...end });
        },
      });
      apply({ kind: 'eval/done', report });
      const message = evalDoneMessage(report);
      const why =
        report.engineReason === undefined
          ? ''
          : `, ${report.engine === 'tfjs' ? 'TensorFlow.js' : 'not the device asked for'} because ${report.engineReason}`;
      this.log.info(
        `${message} (${(report.durationMs / 1000).toFixed(1)} s on ${report.backend}${why}; preprocessing from ${report.preprocessSource})`,
      );
      void vscode.window.showInformationMessage(inertLinks(message));
    } catch {
      // Told to the panel and the user by runEngineJob.
    } finally {
      this.runs.delete(panel);
      cancel.dispose();
    }
  }
}
