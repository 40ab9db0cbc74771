/**
 * "Distill Compressed Model…" in the editor: the second, decoupled phase of Choi et al. The flow picks the artifact
 * (argument, active editor, or a quick pick of the workspace's artifacts), the runnable model and the training data
 * (last choices first), then shows the settings with their defaults and where those come from, "Start" first, each
 * editable. The same command takes an options object (`{artifact, model, data, teacher?, evalData?, options?}`) so
 * tests and other extensions run it without dialogs; it then resolves to the report. A run shows a cancellable
 * progress notification and a live Distillation panel. All work is done by the engine worker (`distill/start`).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DEFAULT_DISTILL_OPTIONS } from '../../protocol/defaults';
import type { DistillOptionsDto, DistillReportDto, PreprocessDto } from '../../protocol/evaluate';
import { emptyDistillationSnapshot, type DistillationCommand } from '../../protocol/panels';

import {
  buildDistillOptions,
  checkDistillSettings,
  DISTILL_SETTINGS,
  distillDoneMessage,
  distillPercent,
  distillProgressMessage,
  formatSettingValue,
  isDistillArgument,
  parseDistillArgument,
  parseSetting,
  sameDataWarning,
  settingSource,
  type NumericDistillKey,
} from './distillChoices';
import { EngineError, errorMessage, type EngineClient } from '../engine/engineClient';
import { inertLinks } from '../engine/notificationText';
import { chooseOutputPath, executeOrWarn, offerToShow, reportUnexpected, runEngineJob } from '../engine/engineJobs';
import {
  askPreprocess,
  exists,
  preprocessItem,
  settingsBackend,
  workspaceBase,
  type ModelPickers,
} from '../evaluate/evaluatePickers';
import { DistillationPanels, type DistillationPanel } from '../panels/distillationPanel';

import { isArtifactName } from '../../protocol/paths';
import { distilledPathFor } from '../../protocol/paths';
/** Command ids of the distillation features (contributed in package.json). */
export const DISTILL_COMMANDS = {
  distillArtifact: 'weightLens.distillArtifact',
} as const;

/** One distillation to run. `options.out` is the output path. */
interface DistillRun {
  artifact: string;
  model: string;
  data: string;
  options: DistillOptionsDto & { out: string };
}

/** What the settings quick pick settles. */
interface DistillPlan {
  options: DistillOptionsDto;
  teacher?: string;
  evalData?: string;
  preprocess?: PreprocessDto;
}

/** Owns the distill command, its runs and the Distillation panels. */
export class DistillController implements vscode.Disposable {
  private readonly panels: DistillationPanels;
  /** Runs in progress by output path. */
  /** Running distillations by output path: their cancel and their Stop and Save. */
  private readonly runs = new Map<
    string,
    { cancel: vscode.CancellationTokenSource; stop: vscode.CancellationTokenSource }
  >();

  constructor(
    context: vscode.ExtensionContext,
    private readonly engine: EngineClient,
    private readonly log: vscode.LogOutputChannel,
    private readonly pickers: ModelPickers,
  ) {
    this.panels = new DistillationPanels(context.extensionUri, log);
  }

  /** Registers the command; the returned disposable also disposes this controller. */
  register(): vscode.Disposable {
    return vscode.Disposable.from(
      vscode.commands.registerCommand(DISTILL_COMMANDS.distillArtifact, (arg: unknown) => this.command(arg)),
      this,
    );
  }

  dispose(): void {
    for (const run of this.runs.values()) run.cancel.cancel();
    this.runs.clear();
    this.panels.dispose();
  }

  /**
   * The command: with an options object, runs without dialogs and resolves to the report (rejecting when the
   * arguments are wrong or the run fails); otherwise the interactive flow (errors are shown, never thrown).
   */
  private async command(arg: unknown): Promise<DistillReportDto | undefined> {
    if (isDistillArgument(arg)) {
      const parsed = parseDistillArgument(arg, workspaceBase());
      if (!parsed.ok) {
        void vscode.window.showErrorMessage(inertLinks(`Weight Lens: ${parsed.message}`));
        throw new Error(parsed.message);
      }
      const a = parsed.value;
      const options = buildDistillOptions(a.options, settingsBackend());
      if (a.teacher !== undefined) options.teacher = a.teacher;
      if (a.evalData !== undefined) options.evalData = a.evalData;
      const out = options.out ?? distilledPathFor(a.artifact);
      return this.run({ artifact: a.artifact, model: a.model, data: a.data, options: { ...options, out } }, false);
    }
    try {
      return await this.interactive(arg);
    } catch (e) {
      reportUnexpected(this.log, 'Distill', e);
      return undefined;
    }
  }

  /** The artifact: the command's argument (a menu's file), the active editor's artifact, or a quick pick. */
  private async artifactFor(arg: unknown): Promise<string | undefined> {
    if (arg instanceof vscode.Uri) return arg.scheme === 'file' ? arg.fsPath : undefined;
    const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    if (
      (input instanceof vscode.TabInputText || input instanceof vscode.TabInputCustom) &&
      input.uri.scheme === 'file' &&
      isArtifactName(path.basename(input.uri.fsPath))
    ) {
      return input.uri.fsPath;
    }
    return this.pickers.pickArtifact('Distill (1/4): compressed model');
  }

  /** The checkpoint an artifact was compressed from (to suggest models beside it); undefined when it cannot be read. */
  private async sourceOf(artifact: string): Promise<string | undefined> {
    try {
      const { report } = await this.engine.call('compress/openArtifact', { artifact });
      const source = report.source;
      return path.isAbsolute(source) ? source : undefined;
    } catch (e) {
      this.log.debug(`Could not read the source of ${artifact}: ${errorMessage(e)}`);
      return undefined;
    }
  }

  private async interactive(arg: unknown): Promise<DistillReportDto | undefined> {
    const artifact = await this.artifactFor(arg);
    if (artifact === undefined) return undefined;
    if (this.runs.has(distilledPathFor(artifact))) {
      await offerToShow(`${path.basename(artifact)} is already being distilled.`, 'Show Distillation', () => {
        this.panels.reveal(distilledPathFor(artifact));
      });
      return undefined;
    }
    const source = await this.sourceOf(artifact);
    const name = path.basename(artifact);
    const model = await this.pickers.pickModel(`Distill ${name} (2/4): runnable model`, artifact, source);
    if (model === undefined) return undefined;
    const data = await this.pickers.pickData(`Distill ${name} (3/4): training data`, model, artifact, 'train');
    if (data === undefined) return undefined;
    const remembered = this.pickers.choices.forArtifact(artifact);
    const initial: DistillPlan = { options: buildDistillOptions({}, settingsBackend()) };
    if (remembered?.teacher !== undefined && remembered.model === model && (await exists(remembered.teacher)))
      initial.teacher = remembered.teacher;
    const preprocess = this.pickers.rememberedPreprocess(model);
    if (preprocess !== undefined) initial.preprocess = preprocess;
    const plan = await this.pickSettings(artifact, model, data, initial);
    if (plan === undefined) return undefined;
    const out = await chooseOutputPath(distilledPathFor(artifact), 'distillation');
    if (out === undefined) return undefined;
    await this.pickers.choices.remember({
      artifact,
      model,
      data,
      role: 'train',
      ...(plan.teacher !== undefined ? { teacher: plan.teacher } : {}),
      ...(plan.preprocess !== undefined ? { preprocess: plan.preprocess } : {}),
    });
    const options: DistillOptionsDto & { out: string } = { ...plan.options, out };
    if (plan.teacher !== undefined) options.teacher = plan.teacher;
    if (plan.evalData !== undefined) options.evalData = plan.evalData;
    if (plan.preprocess !== undefined) options.preprocess = plan.preprocess;
    try {
      return await this.run({ artifact, model, data, options }, true);
    } catch {
      return undefined; // already shown
    }
  }

  /**
   * The settings quick pick: "Start distillation" first, then every setting with its value and where it comes from
   * (the default's origin, or "changed for this run"); choosing one edits it (an input box with validation, a
   * toggle, or a picker) and shows the list again.
   */
  private async pickSettings(
    artifact: string,
    model: string,
    data: string,
    initial: DistillPlan,
  ): Promise<DistillPlan | undefined> {
    const plan: DistillPlan = { ...initial, options: { ...initial.options } };
    type Item = vscode.QuickPickItem & {
      action?: 'start' | 'augment' | 'teacher' | 'evalData' | 'preprocess' | 'warning';
      key?: NumericDistillKey;
    };
    let active: string | undefined;
    for (;;) {
      const o = plan.options;
      const pre = await preprocessItem(model, plan.preprocess);
      const warning = sameDataWarning(data, plan.evalData, this.pickers.choices.dataFor('evaluate', model, artifact));
      const items: Item[] = [
        ...(warning !== undefined
          ? [{ label: '$(warning) Training data is also evaluation data', detail: warning, action: 'warning' as const }]
          : []),
        {
          label: '$(play) Start distillation',
          description: `${o.steps.toLocaleString('en-US')} steps · batch ${o.batchSize} · lr ${formatSettingValue('lr', o.lr)} · ${path.basename(data)}`,
          action: 'start',
        },
        { label: 'Training', kind: vscode.QuickPickItemKind.Separator },
        ...DISTILL_SETTINGS.map((s): Item => ({
          label: `${s.label}: ${formatSettingValue(s.key, o[s.key])}`,
          description: settingSource(s.key, o[s.key]),
          key: s.key,
        })),
        {
          label: `Augmentation: ${o.augment ? 'on' : 'off'}`,
          description: settingSource('augment', o.augment),
          action: 'augment',
        },
        { label: 'Inputs', kind: vscode.QuickPickItemKind.Separator },
        {
          label: `Teacher: ${plan.teacher === undefined ? 'the model on its original weights' : path.basename(plan.teacher)}`,
          description:
            plan.teacher === undefined
              ? "default · Choi et al.'s phase 2 distils from the uncompressed model"
              : plan.teacher,
          action: 'teacher',
        },
        {
          label: `Held-out data: ${plan.evalData === undefined ? `the last ${o.evalSamples.toLocaleString('en-US')} samples of the training data` : path.basename(plan.evalData)}`,
          description: plan.evalData === undefined ? 'default · not trained on' : plan.evalData,
          action: 'evalData',
        },
        { label: pre.label, description: pre.description, action: 'preprocess' },
      ];
      const picked = await new Promise<Item | undefined>((resolve) => {
        const qp = vscode.window.createQuickPick<Item>();
        qp.title = `Distill ${path.basename(artifact)} (4/4): settings`;
        qp.placeholder = 'Start, or choose a setting to change it for this run';
        qp.ignoreFocusOut = true;
        qp.items = items;
        const again = items.find((i) => i.label.split(':')[0] === active);
        if (again !== undefined) qp.activeItems = [again];
        let chosen: Item | undefined;
        qp.onDidAccept(() => {
          chosen = qp.selectedItems[0] ?? qp.activeItems[0];
          qp.hide();
        });
        qp.onDidHide(() => {
          qp.dispose();
          resolve(chosen);
        });
        qp.show();
      });
      if (picked === undefined) return undefined;
      active = picked.label.split(':')[0];
      if (picked.action === 'start') {
        const problem = checkDistillSettings(o);
        if (problem === undefined) {
          if (warning !== undefined) void vscode.window.showWarningMessage(inertLinks(warning));
          return plan;
        }
        void vscode.window.showWarningMessage(inertLinks(problem));
      } else if (picked.action === 'warning') {
        // Shown in full as the item's detail; choosing it just shows the list again.
      } else if (picked.action === 'augment') {
        o.augment = !o.augment;
      } else if (picked.action === 'teacher') {
        const teacher = await this.pickers.pickModel(
          `Distill ${path.basename(artifact)}: teacher`,
          artifact,
          undefined,
          [
            {
              label: '$(check) The model on its original weights',
              description: `default · ${path.basename(model)}`,
              value: '',
            },
          ],
        );
        if (teacher !== undefined) {
          if (teacher === '' || teacher === model) delete plan.teacher;
          else plan.teacher = teacher;
        }
      } else if (picked.action === 'evalData') {
        const evalData = await this.pickers.pickData(
          `Distill ${path.basename(artifact)}: held-out data`,
          model,
          artifact,
          'evaluate',
          [
            {
              label: '$(check) The last samples of the training data',
              description: 'default · held out, not trained on',
              value: '',
            },
          ],
        );
        if (evalData !== undefined) {
          if (evalData === '') delete plan.evalData;
          else plan.evalData = evalData;
        }
      } else if (picked.action === 'preprocess') {
        const answer = await askPreprocess(plan.preprocess);
        if (answer !== undefined) {
          if (answer.value === undefined) delete plan.preprocess;
          else plan.preprocess = answer.value;
        }
      } else if (picked.key !== undefined) {
        const key = picked.key;
        const setting = DISTILL_SETTINGS.find((s) => s.key === key);
        if (setting === undefined) continue;
        const text = await vscode.window.showInputBox({
          title: setting.label,
          value: formatSettingValue(key, o[key]).replace(/,/g, ''),
          prompt: `${setting.prompt}. Default ${formatSettingValue(key, DEFAULT_DISTILL_OPTIONS[key])}.`,
          ignoreFocusOut: true,
          validateInput: (t) => {
            const p = parseSetting(key, t);
            return p.ok ? undefined : p.message;
          },
        });
        if (text !== undefined) {
          const p = parseSetting(key, text);
          if (p.ok) o[key] = p.value;
        }
      }
    }
  }

  /**
   * Runs a distillation with a cancellable notification and a live Distillation panel. Resolves to the report;
   * rejects with an EngineError when it fails or is cancelled (the panel and, unless cancelled, a message say why).
   */
  private async run(run: DistillRun, interactive: boolean): Promise<DistillReportDto> {
    const out = run.options.out;
    if (this.runs.has(out)) {
      this.panels.reveal(out);
      throw new EngineError(
        'badInput',
        `${path.basename(out)} is already being written by a distillation in progress.`,
      );
    }
    const cancel = new vscode.CancellationTokenSource();
    const stop = new vscode.CancellationTokenSource();
    this.runs.set(out, { cancel, stop });
    const snapshot = emptyDistillationSnapshot({
      artifact: run.artifact,
      model: run.model,
      data: run.data,
      out,
      options: run.options,
      ...(run.options.teacher !== undefined ? { teacher: run.options.teacher } : {}),
    });
    const panel = this.panels.show(
      out,
      snapshot,
      (command, p) => {
        this.onPanelCommand(command, p);
      },
      true,
    );
    this.log.info(
      `Distilling ${run.artifact} with ${run.model} on ${run.data} → ${out} (${run.options.steps} steps, batch ${run.options.batchSize}, lr ${run.options.lr}, ${run.options.backend}).`,
    );
    try {
      const report = await runEngineJob(this.engine, this.log, {
        title: `Distilling ${path.basename(run.artifact)}`,
        kind: 'distill/start',
        params: { artifact: run.artifact, model: run.model, data: run.data, options: run.options },
        cancel,
        stop,
        onEvent: (event) => {
          panel.apply(event);
        },
        progress: (event) => {
          if (event.kind === 'distill/status') return { message: event.message };
          if (event.kind !== 'distill/progress') return undefined;
          return { percent: distillPercent(event.progress), message: distillProgressMessage(event.progress) };
        },
        onEnded: (end) => {
          panel.apply({ kind: 'distill/ended', ...end });
        },
      });
      panel.apply({ kind: 'distill/done', report });
      this.finished(report, interactive);
      return report;
    } finally {
      this.runs.delete(out);
      cancel.dispose();
      stop.dispose();
    }
  }

  /** Logs the result and offers to open it (without waiting for the answer: a caller awaiting the command gets the report at once). */
  private finished(report: DistillReportDto, interactive: boolean): void {
    const message = distillDoneMessage(report);
    this.log.info(`${message} (${(report.durationMs / 1000).toFixed(1)} s on ${report.backend})`);
    const open = 'Open in Reconstruction';
    const reveal = 'Reveal Artifact';
    void vscode.window.showInformationMessage(inertLinks(message), open, reveal).then((choice) => {
      if (choice === open) void this.openReconstruction(report.out);
      else if (choice === reveal) void this.reveal(report.out);
    });
    if (interactive) this.panels.get(report.out)?.reveal(true);
  }

  private onPanelCommand(command: DistillationCommand, panel: DistillationPanel): void {
    const s = panel.snapshot;
    switch (command) {
      case 'cancel':
        this.runs.get(s.out)?.cancel.cancel();
        break;
      case 'stopAndSave':
        this.runs.get(s.out)?.stop.cancel();
        break;
      case 'revealArtifact':
        void this.reveal(s.out);
        break;
      case 'openReconstruction':
        void this.openReconstruction(s.out);
        break;
    }
  }

  private reveal(file: string): Promise<void> {
    return executeOrWarn(this.log, `Could not reveal ${file}`, 'revealInExplorer', vscode.Uri.file(file));
  }

  private openReconstruction(file: string): Promise<void> {
    return executeOrWarn(
      this.log,
      `Could not open ${file} in the Reconstruction panel`,
      'weightLens.showReconstruction',
      vscode.Uri.file(file),
    );
  }
}
