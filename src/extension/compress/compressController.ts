/**
 * Compression in the editor: the "Compress Checkpoint…" flow (budget and permutation quick picks whose items show
 * the planned predictor size, then a cancellable progress notification and a status-bar item while the engine
 * trains), the Reconstruction and Budget panels, "Show Reconstruction" for an artifact, and "Decompress". All work is
 * done by the engine worker through `compress/*` requests; this module only asks, shows and remembers run summaries.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { PERMUTATION_KINDS, PREDICTOR_DTYPES, VERBATIM_DTYPES } from '../../protocol/vocabulary';
import { DEFAULT_COMPRESS_OPTIONS } from '../../protocol/defaults';
import type {
  BudgetDto,
  BudgetPlanDto,
  CompressReportDto,
  LayerDetailDto,
  PermutationKind,
} from '../../protocol/compress';
import {
  emptySnapshot,
  type BudgetViewDto,
  type ReconstructionCommand,
  type ReconstructionSnapshot,
} from '../../protocol/panels';
import { RunHistory } from './compressHistory';
import {
  backendName,
  BUDGET_FRACTIONS,
  buildOptions,
  describePlan,
  doneMessage,
  fractionLabel,
  parseSize,
  parseSteps,
  parseWidth,
  percentDone,
  PREDICTOR_DTYPE_DESCRIPTIONS,
  progressMessage,
  readCompressSettings,
  runSummary,
  statusBarText,
  statusBarTooltip,
  storageLabel,
  VERBATIM_DTYPE_DESCRIPTIONS,
  type CompressSettings,
} from './compressChoices';
import { EngineError, type EngineClient } from '../engine/engineClient';
import {
  asEngineError,
  chooseOutputPath,
  offerToShow,
  reportFailure,
  reportUnexpected,
  runEngineJob,
} from '../engine/engineJobs';
import { CHECKPOINT_EXTENSIONS, isCheckpointName } from '../fileKinds';
import { BudgetPanel } from '../panels/budgetPanel';
import type { ModelPickers } from '../evaluate/evaluatePickers';
import { MethodComparisons } from '../sweep/methodComparison';
import {
  ReconstructionPanels,
  type ReconstructionEvaluator,
  type ReconstructionPanel,
} from '../panels/reconstructionPanel';

import { artifactPathFor, isArtifactName } from '../../protocol/paths';
import { DEFAULT_SPECTRA_OPTIONS } from '../../protocol/defaults';
import type { SpectraComparisonDto } from '../../protocol/spectra';
import { inertLinks } from '../engine/notificationText';
/** Command ids of the compression features (contributed in package.json). */
export const COMPRESS_COMMANDS = {
  compressCheckpoint: 'weightLens.compressCheckpoint',
  showReconstruction: 'weightLens.showReconstruction',
  showBudget: 'weightLens.showBudget',
  decompressArtifact: 'weightLens.decompressArtifact',
} as const;

/** A compression in progress. */
interface Run {
  readonly source: string;
  readonly artifact: string;
  readonly cancel: vscode.CancellationTokenSource;
  /** Stop and Save: ends training early and writes the predictor so far. */
  readonly stop: vscode.CancellationTokenSource;
  percent: number;
}

/** Budget quick-pick items. */
interface BudgetItem extends vscode.QuickPickItem {
  budget?: BudgetDto;
  custom?: 'width' | 'size';
  /** The item that changes the predictor and verbatim dtypes the plans (and the run) are for. */
  storage?: true;
  plan?: BudgetPlanDto;
}

/** Owns the compression commands, runs, panels and the status-bar item. */
export class CompressController implements vscode.Disposable {
  private readonly runs = new Map<string, Run>();
  private readonly panels: ReconstructionPanels;
  private readonly budget: BudgetPanel;
  private readonly comparisons: MethodComparisons;
  private readonly history: RunHistory;
  private readonly statusItem: vscode.StatusBarItem;
  /** Latest plan per source, for the Budget panel. */
  private readonly plans = new Map<string, BudgetPlanDto>();
  private statusRun: Run | undefined;

  /** `evaluator` runs the Reconstruction panels' "Evaluate…" (without one, the button only logs that it is unavailable). */
  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly engine: EngineClient,
    private readonly log: vscode.LogOutputChannel,
    pickers: ModelPickers,
    evaluator?: ReconstructionEvaluator,
  ) {
    this.panels = new ReconstructionPanels(
      context.extensionUri,
      log,
      (snapshot, layer, filter) => this.layerDetail(snapshot, layer, filter),
      evaluator,
      (snapshot, layer) => this.layerSpectra(snapshot, layer),
    );
    this.history = new RunHistory(context.globalState);
    this.comparisons = new MethodComparisons(
      engine,
      log,
      pickers,
      () => buildOptions(this.settings(), DEFAULT_COMPRESS_OPTIONS.budget, this.backend()),
      (source) => {
        this.budget.refresh(this.budgetView(source));
      },
    );
    this.budget = new BudgetPanel(
      context.extensionUri,
      {
        clearRuns: async (source) => {
          await this.history.clear(source);
          return this.budgetView(source);
        },
        compare: (source) =>
          this.comparisons.compare(
            source,
            this.history.runs(source).map((r) => r.artifact),
          ),
        cancelCompare: (source) => {
          this.comparisons.cancel(source);
        },
        openArtifact: (artifact) => this.showReconstruction(vscode.Uri.file(artifact)),
      },
      log,
    );
    this.statusItem = vscode.window.createStatusBarItem('weightLens.compress', vscode.StatusBarAlignment.Left, 10);
    this.statusItem.name = 'Weight Lens compression';
  }

  /** Registers the commands; the returned disposable also disposes this controller. */
  register(): vscode.Disposable {
    const guard =
      <A extends unknown[]>(name: string, body: (...args: A) => Promise<void>) =>
      (...args: A): void => {
        body(...args).catch((e: unknown) => {
          reportUnexpected(this.log, name, e);
        });
      };
    return vscode.Disposable.from(
      vscode.commands.registerCommand(
        COMPRESS_COMMANDS.compressCheckpoint,
        guard('Compress', (arg: unknown) => this.compress(arg)),
      ),
      vscode.commands.registerCommand(
        COMPRESS_COMMANDS.showReconstruction,
        guard('Show Reconstruction', (arg: unknown) => this.showReconstruction(arg)),
      ),
      vscode.commands.registerCommand(
        COMPRESS_COMMANDS.showBudget,
        guard('Show Budget', (arg: unknown) => this.showBudget(arg)),
      ),
      vscode.commands.registerCommand(
        COMPRESS_COMMANDS.decompressArtifact,
        guard('Decompress', (arg: unknown) => this.decompress(arg)),
      ),
      this,
    );
  }

  dispose(): void {
    for (const run of this.runs.values()) run.cancel.cancel();
    this.runs.clear();
    this.panels.dispose();
    this.budget.dispose();
    this.comparisons.dispose();
    this.statusItem.dispose();
  }

  // -------------------------------------------------------------------------------------------------------------
  // Targets and settings

  private settings(): CompressSettings {
    const config = vscode.workspace.getConfiguration('weightLens');
    return readCompressSettings((key) => config.get(key));
  }

  private backend(): ReturnType<typeof backendName> {
    const raw = vscode.workspace.getConfiguration('weightLens').get<string>('backend', 'auto');
    const backend = backendName(raw);
    return !vscode.workspace.isTrusted && backend !== 'cpu' ? 'wasm' : backend;
  }

  /** The file a command acts on: its argument, else the active editor's file (when it fits), else ask. */
  private async target(arg: unknown, want: 'checkpoint' | 'artifact'): Promise<vscode.Uri | undefined> {
    if (arg instanceof vscode.Uri) return arg;
    const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    if (
      (input instanceof vscode.TabInputText || input instanceof vscode.TabInputCustom) &&
      input.uri.scheme === 'file'
    ) {
      const name = path.basename(input.uri.fsPath);
      if (want === 'artifact' ? isArtifactName(name) : isCheckpointName(name)) return input.uri;
    }
    const picked = await vscode.window.showOpenDialog({
      canSelectMany: false,
      openLabel: want === 'artifact' ? 'Open Artifact' : 'Compress',
      title: want === 'artifact' ? 'Choose a NeRN artifact (*.nern.safetensors)' : 'Choose a checkpoint to compress',
      filters:
        want === 'artifact'
          ? { 'NeRN artifacts': ['safetensors'] }
          : {
              Checkpoints: [...CHECKPOINT_EXTENSIONS],
              'All files': ['*'],
            },
    });
    return picked?.[0];
  }

  // -------------------------------------------------------------------------------------------------------------
  // Compress Checkpoint…

  private async compress(arg: unknown): Promise<void> {
    const uri = await this.target(arg, 'checkpoint');
    if (uri === undefined) return;
    if (uri.scheme !== 'file') {
      void vscode.window.showErrorMessage(
        `Weight Lens compresses checkpoints on disk; ${uri.toString()} is not a file it can read.`,
      );
      return;
    }
    const source = uri.fsPath;
    const existing = [...this.runs.values()].find((r) => r.source === source);
    if (existing) {
      await offerToShow(`${path.basename(source)} is already being compressed.`, 'Show Reconstruction', () => {
        this.panels.reveal(existing.artifact);
      });
      return;
    }
    let settings = this.settings();
    const backend = this.backend();
    let picked: { budget: BudgetDto; plan?: BudgetPlanDto } | undefined;
    // Changing the storage dtypes re-plans every budget for them.
    for (;;) {
      const answer = await this.pickBudget(source, settings, backend);
      if (answer === undefined) return;
      if (answer === 'storage') {
        settings = (await this.pickStorage(settings)) ?? settings;
        continue;
      }
      picked = answer;
      break;
    }
    const choice = await this.pickPermutation(settings);
    if (choice === undefined) return;
    // Nothing is overwritten without asking.
    const artifact = await chooseOutputPath(artifactPathFor(source), 'compression');
    if (artifact === undefined) return;
    const options = buildOptions(settings, picked.budget, backend, {
      permutation: choice.permutation,
      steps: choice.steps,
      out: artifact,
    });
    await this.run(source, artifact, options, picked.plan);
  }

  /** Plans `budget` for `source`; rejects with an EngineError. */
  private async plan(
    source: string,
    budget: BudgetDto,
    settings: CompressSettings,
    backend: ReturnType<typeof backendName>,
    token?: vscode.CancellationToken,
  ): Promise<BudgetPlanDto> {
    const options = buildOptions(settings, budget, backend);
    const plan = await this.engine.call('compress/plan', { path: source, options }, undefined, token);
    this.plans.set(source, plan);
    return plan;
  }

  /** The budget quick pick; items are planned in parallel and show their predictor size when known. */
  private pickBudget(
    source: string,
    settings: CompressSettings,
    backend: ReturnType<typeof backendName>,
  ): Promise<{ budget: BudgetDto; plan?: BudgetPlanDto } | 'storage' | undefined> {
    const qp = vscode.window.createQuickPick<BudgetItem>();
    qp.title = `Compress ${path.basename(source)} (1/2): predictor budget · predictor ${settings.predictorDtype}, verbatim ${settings.verbatimDtype}`;
    qp.placeholder = 'Choose the predictor size (the planned width and artifact size appear as each plan arrives)';
    qp.matchOnDescription = true;
    qp.ignoreFocusOut = true;
    const cts = new vscode.CancellationTokenSource();
    const fixed: BudgetItem[] = BUDGET_FRACTIONS.map((fraction) => ({
      label: fractionLabel(fraction),
      description: 'planning…',
      budget: { kind: 'fraction', fraction },
    }));
    const custom: BudgetItem[] = [
      { label: '', kind: vscode.QuickPickItemKind.Separator },
      { label: 'Custom width…', description: 'predictor hidden units', custom: 'width' },
      { label: 'Custom size…', description: 'target artifact size, e.g. 1.5 MB or 30 %', custom: 'size' },
      { label: '', kind: vscode.QuickPickItemKind.Separator },
      {
        label: `$(settings-gear) ${storageLabel(settings)}`,
        description: 'change the stored dtypes for this run (the sizes above are planned for them)',
        storage: true,
      },
    ];
    // Labels change as plans arrive (they lead with the ratio); the active item is kept by what it stands for.
    const keyOf = (i: BudgetItem | undefined): string | undefined =>
      i?.budget?.kind === 'fraction' ? `f${i.budget.fraction}` : i?.storage === true ? 'storage' : i?.custom;
    const refresh = (): void => {
      const active = keyOf(qp.activeItems[0]);
      qp.items = [...fixed, ...custom];
      const again = active === undefined ? undefined : qp.items.find((i) => keyOf(i) === active);
      if (again) qp.activeItems = [again];
    };
    refresh();
    qp.busy = true;
    let outstanding = fixed.length;
    let sourceBytes: number | undefined;
    let firstError: EngineError | undefined;
    fixed.forEach((item, i) => {
      const budget = item.budget;
      if (budget === undefined) return;
      this.plan(source, budget, settings, backend, cts.token)
        .then(
          (plan) => {
            sourceBytes = plan.sourceBytes;
            fixed[i] = {
              ...item,
              label: budget.kind === 'fraction' ? fractionLabel(budget.fraction, plan) : item.label,
              plan,
              description: describePlan(plan),
            };
          },
          (e: unknown) => {
            const err = asEngineError(e);
            firstError ??= err;
            fixed[i] = { ...item, description: err.reason === 'cancelled' ? '' : `could not plan: ${err.message}` };
          },
        )
        .finally(() => {
          outstanding--;
          if (outstanding === 0) qp.busy = false;
          refresh();
          if (
            outstanding === 0 &&
            fixed.every((f) => f.plan === undefined) &&
            firstError !== undefined &&
            firstError.reason !== 'cancelled'
          ) {
            qp.hide();
            reportFailure(this.log, `Planning ${path.basename(source)}`, firstError);
          }
        });
    });
    return new Promise((resolve) => {
      let result: { budget: BudgetDto; plan?: BudgetPlanDto } | 'storage' | undefined;
      let custom: 'width' | 'size' | undefined;
      qp.onDidAccept(() => {
        const item = qp.selectedItems[0] ?? qp.activeItems[0];
        if (item === undefined) return;
        if (item.budget !== undefined) {
          result = { budget: item.budget };
          if (item.plan !== undefined) result.plan = item.plan;
        } else if (item.custom !== undefined) {
          custom = item.custom;
        } else if (item.storage === true) {
          result = 'storage';
        } else {
          return;
        }
        qp.hide();
      });
      qp.onDidHide(() => {
        cts.cancel();
        cts.dispose();
        qp.dispose();
        if (custom === undefined) {
          resolve(result);
          return;
        }
        this.askCustomBudget(custom, sourceBytes).then(
          (budget) => {
            resolve(budget === undefined ? undefined : { budget });
          },
          () => {
            resolve(undefined);
          },
        );
      });
      qp.show();
    });
  }

  /** Picks the predictor dtype, then the verbatim dtype, for this run; undefined when either pick is dismissed. */
  private async pickStorage(settings: CompressSettings): Promise<CompressSettings | undefined> {
    const predictorDtype = await pickDtype(
      PREDICTOR_DTYPES,
      settings.predictorDtype,
      PREDICTOR_DTYPE_DESCRIPTIONS,
      'Stored as (1/2): predictor dtype',
      'How the predictor network’s weights are stored in the artifact',
    );
    if (predictorDtype === undefined) return undefined;
    const verbatimDtype = await pickDtype(
      VERBATIM_DTYPES,
      settings.verbatimDtype,
      VERBATIM_DTYPE_DESCRIPTIONS,
      'Stored as (2/2): verbatim dtype',
      'How the tensors kept verbatim (biases, normalisation, unrepresented layers) are stored',
    );
    if (verbatimDtype === undefined) return undefined;
    return { ...settings, predictorDtype, verbatimDtype };
  }

  private async askCustomBudget(
    kind: 'width' | 'size',
    sourceBytes: number | undefined,
  ): Promise<BudgetDto | undefined> {
    if (kind === 'width') {
      const text = await vscode.window.showInputBox({
        title: 'Predictor width',
        prompt: 'Hidden units of the predictor network (wider: larger artifact, lower error)',
        placeHolder: 'e.g. 64',
        ignoreFocusOut: true,
        validateInput: (t) => {
          const p = parseWidth(t);
          return p.ok ? undefined : p.message;
        },
      });
      if (text === undefined) return undefined;
      const p = parseWidth(text);
      return p.ok ? { kind: 'hidden', hidden: p.value } : undefined;
    }
    const text = await vscode.window.showInputBox({
      title: 'Target artifact size',
      prompt: 'Size of the compressed file: bytes with a unit (800 kB, 1.5 MB) or a percentage of the source (30 %)',
      placeHolder: 'e.g. 1.5 MB',
      ignoreFocusOut: true,
      validateInput: (t) => {
        const p = parseSize(t, sourceBytes);
        return p.ok ? undefined : p.message;
      },
    });
    if (text === undefined) return undefined;
    const p = parseSize(text, sourceBytes);
    return p.ok ? p.value : undefined;
  }

  /** The permutation quick pick (with an item to change the step count). */
  private async pickPermutation(
    settings: CompressSettings,
  ): Promise<{ permutation: PermutationKind; steps: number } | undefined> {
    let steps = settings.steps;
    const descriptions: Record<PermutationKind, string> = {
      crossfilter: 'recommended: sorts kernels across filters so neighbouring coordinates hold similar kernels',
      infilter: 'sorts kernels within each filter only',
      none: 'no permutation (baseline)',
    };
    for (;;) {
      type Item = vscode.QuickPickItem & { permutation?: PermutationKind; steps?: true };
      const order = [settings.permutation, ...PERMUTATION_KINDS.filter((p) => p !== settings.permutation)];
      const items: Item[] = [
        ...order.map((p): Item => ({ label: p, description: descriptions[p], permutation: p })),
        { label: '', kind: vscode.QuickPickItemKind.Separator },
        {
          label: `$(settings-gear) Training steps: ${steps.toLocaleString('en-US')}…`,
          description: 'change for this run',
          steps: true,
        },
      ];
      const picked = await vscode.window.showQuickPick(items, {
        title: `Compress (2/2): kernel permutation · ${steps.toLocaleString('en-US')} steps`,
        placeHolder: 'Choose how kernels are ordered before the predictor learns them',
        ignoreFocusOut: true,
        matchOnDescription: false,
      });
      if (picked === undefined) return undefined;
      if (picked.permutation !== undefined) return { permutation: picked.permutation, steps };
      const text = await vscode.window.showInputBox({
        title: 'Training steps',
        value: String(steps),
        prompt: 'Optimiser steps for this run (the default comes from weightLens.compress.steps)',
        ignoreFocusOut: true,
        validateInput: (t) => {
          const p = parseSteps(t);
          return p.ok ? undefined : p.message;
        },
      });
      if (text !== undefined) {
        const p = parseSteps(text);
        if (p.ok) steps = p.value;
      }
    }
  }

  /** Runs a compression with a progress notification, the status-bar item and a live Reconstruction panel. */
  private async run(
    source: string,
    artifact: string,
    options: ReturnType<typeof buildOptions>,
    plan: BudgetPlanDto | undefined,
  ): Promise<void> {
    const cancel = new vscode.CancellationTokenSource();
    const stop = new vscode.CancellationTokenSource();
    const run: Run = { source, artifact, cancel, stop, percent: 0 };
    this.runs.set(artifact, run);
    const snapshot = emptySnapshot(source, artifact);
    if (plan !== undefined) snapshot.plan = plan;
    const panel = this.panels.show(artifact, snapshot, this.commandHandler(), true);
    this.showStatus(run);
    this.log.info(
      `Compressing ${source} → ${artifact} (${JSON.stringify(options.budget)}, ${options.steps} steps, ${options.permutation}, ${options.backend}).`,
    );
    let report: CompressReportDto | undefined;
    try {
      report = await runEngineJob(this.engine, this.log, {
        title: `Compressing ${path.basename(source)}`,
        kind: 'compress/start',
        params: { path: source, options },
        cancel,
        stop,
        onEvent: (event) => {
          panel.apply(event);
          if (event.kind === 'compress/planned') this.plans.set(source, event.plan);
        },
        progress: (event) =>
          event.kind === 'compress/progress'
            ? { percent: percentDone(event.progress), message: progressMessage(event.progress) }
            : event.kind === 'compress/reconstructing' && event.done < event.total
              ? { message: `predicting every kernel: ${Math.floor((100 * event.done) / event.total)} % of the rows` }
              : undefined,
        onReported: (percent, event) => {
          run.percent = percent;
          if (this.statusRun !== run || event.kind !== 'compress/progress') return;
          this.statusItem.text = statusBarText(event.progress);
          this.statusItem.tooltip = statusBarTooltip(event.progress);
        },
        onEnded: (end) => {
          panel.apply({ kind: 'compress/ended', ...end });
        },
      });
      panel.apply({ kind: 'compress/done', report });
    } catch {
      // Told to the panel and the user by runEngineJob.
    } finally {
      this.runs.delete(artifact);
      cancel.dispose();
      stop.dispose();
      this.hideStatus(run);
    }
    if (report !== undefined) await this.finished(report);
  }

  private async finished(report: CompressReportDto): Promise<void> {
    this.log.info(`${doneMessage(report)} Artifact: ${report.artifact}`);
    await this.history.add(runSummary(report, Date.now()));
    this.budget.refresh(this.budgetView(report.source));
    const show = 'Show Reconstruction';
    const reveal = 'Reveal Artifact';
    const choice = await vscode.window.showInformationMessage(inertLinks(doneMessage(report)), show, reveal);
    if (choice === show) this.panels.reveal(report.artifact);
    else if (choice === reveal) await this.reveal(report.artifact);
  }

  private showStatus(run: Run): void {
    this.statusRun = run;
    this.statusItem.text = statusBarText(undefined);
    this.statusItem.tooltip = `Compressing ${run.source}. Click to show the Reconstruction panel.`;
    this.statusItem.command = {
      title: 'Show Reconstruction',
      command: COMPRESS_COMMANDS.showReconstruction,
      arguments: [vscode.Uri.file(run.artifact)],
    };
    this.statusItem.show();
  }

  private hideStatus(run: Run): void {
    if (this.statusRun !== run) return;
    const next = [...this.runs.values()].pop();
    if (next) {
      this.statusRun = next;
      this.statusItem.text = `$(sync~spin) Weight Lens: compressing ${next.percent} %`;
      this.statusItem.command = {
        title: 'Show Reconstruction',
        command: COMPRESS_COMMANDS.showReconstruction,
        arguments: [vscode.Uri.file(next.artifact)],
      };
    } else {
      this.statusRun = undefined;
      this.statusItem.hide();
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Panels and artifacts

  private commandHandler(): (command: ReconstructionCommand, panel: ReconstructionPanel) => void {
    return (command, panel) => {
      const s = panel.snapshot;
      const artifact = s.artifact;
      switch (command) {
        case 'cancel':
          if (artifact !== undefined) this.runs.get(artifact)?.cancel.cancel();
          break;
        case 'stopAndSave':
          if (artifact !== undefined) this.runs.get(artifact)?.stop.cancel();
          break;
        case 'showBudget':
          void this.showBudget(vscode.Uri.file(s.source), s);
          break;
        case 'revealArtifact':
          if (artifact !== undefined) void this.reveal(artifact);
          break;
        case 'decompress':
          if (artifact !== undefined)
            void vscode.commands.executeCommand(COMPRESS_COMMANDS.decompressArtifact, vscode.Uri.file(artifact));
          break;
      }
    };
  }

  private async reveal(file: string): Promise<void> {
    await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(file));
  }

  /**
   * The detail of one layer at one filter (undefined: the worst) of a panel's written artifact, made by the engine
   * from the artifact and the source checkpoint (the run's source path when known, else the file beside the artifact).
   */
  private async layerDetail(
    snapshot: ReconstructionSnapshot,
    layer: string,
    filter: number | undefined,
  ): Promise<LayerDetailDto> {
    const artifact = snapshot.artifact;
    if (artifact === undefined) throw new Error('The artifact has not been written yet.');
    return this.engine.call('compress/detail', {
      artifact,
      layer,
      ...(filter !== undefined ? { filter } : {}),
      ...(path.isAbsolute(snapshot.source) ? { source: snapshot.source } : {}),
    });
  }

  /** Original and reconstructed spectra of one layer of the panel's artifact, computed in the engine worker. */
  private async layerSpectra(snapshot: ReconstructionSnapshot, layer: string): Promise<SpectraComparisonDto> {
    const artifact = snapshot.artifact;
    if (artifact === undefined) throw new Error('The artifact has not been written yet.');
    return this.engine.call('spectra/artifactLayer', {
      artifact,
      layer,
      options: { ...DEFAULT_SPECTRA_OPTIONS },
      ...(path.isAbsolute(snapshot.source) ? { source: snapshot.source } : {}),
    });
  }

  /** Opens an artifact's report from disk. */
  private async openArtifact(artifact: string): Promise<{ report: CompressReportDto; plan: BudgetPlanDto }> {
    const answer = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: `Reading ${path.basename(artifact)}` },
      () => this.engine.call('compress/openArtifact', { artifact }),
    );
    this.plans.set(answer.report.source, answer.plan);
    return { report: answer.report, plan: answer.plan };
  }

  private async showReconstruction(arg: unknown): Promise<void> {
    if (!(arg instanceof vscode.Uri)) {
      const latest = this.panels.latest;
      if (latest) {
        latest.reveal();
        return;
      }
    }
    const uri = arg instanceof vscode.Uri ? arg : await this.target(arg, 'artifact');
    if (uri === undefined) return;
    const file = uri.fsPath;
    if (this.panels.reveal(file)) return;
    // A source checkpoint with a run in progress or a panel open: show that.
    const bySource = [...this.runs.values()].find((r) => r.source === file);
    if (bySource && this.panels.reveal(bySource.artifact)) return;
    if (!isArtifactName(path.basename(file))) {
      const artifact = artifactPathFor(file);
      if (this.panels.reveal(artifact)) return;
    }
    try {
      const { report, plan } = await this.openArtifact(file);
      const snapshot: ReconstructionSnapshot = {
        ...emptySnapshot(report.source, file),
        status: 'done',
        plan,
        report,
        loss: report.lossCurve.map(([s, l]): [number, number] => [s, l]),
      };
      this.panels.show(file, snapshot, this.commandHandler());
    } catch (e) {
      reportFailure(this.log, `Opening ${path.basename(file)}`, asEngineError(e));
    }
  }

  private budgetView(source: string): BudgetViewDto {
    const view: BudgetViewDto = { source, runs: this.history.runs(source) };
    const plan = this.plans.get(source);
    if (plan !== undefined) view.plan = plan;
    const comparison = this.comparisons.view(source);
    if (comparison !== undefined) view.comparison = comparison;
    return view;
  }

  private async showBudget(arg: unknown, from?: ReconstructionSnapshot): Promise<void> {
    let source: string | undefined;
    if (from !== undefined) {
      source = from.source;
      const plan = from.report === undefined ? from.plan : (from.plan ?? this.plans.get(source));
      if (plan !== undefined) this.plans.set(source, plan);
    } else if (arg instanceof vscode.Uri) {
      source = arg.fsPath;
      if (isArtifactName(path.basename(source))) {
        try {
          const { report } = await this.openArtifact(source);
          source = report.source;
        } catch (e) {
          reportFailure(this.log, `Opening ${path.basename(source)}`, asEngineError(e));
          return;
        }
      }
    } else {
      source = this.panels.latest?.snapshot.source ?? this.budget.source;
      if (source === undefined) {
        const uri = await this.target(arg, 'checkpoint');
        source = uri?.fsPath;
      }
    }
    if (source === undefined) return;
    if (!this.plans.has(source)) {
      // Plan the default budget so the panel has something to show.
      const settings = this.settings();
      const fraction = BUDGET_FRACTIONS[2] ?? 0.5;
      try {
        await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Window, title: `Planning ${path.basename(source)}` },
          () => this.plan(source, { kind: 'fraction', fraction }, settings, this.backend()),
        );
      } catch (e) {
        const err = asEngineError(e);
        if (err.reason !== 'cancelled') this.log.warn(`Planning ${source} for the Budget panel failed: ${err.message}`);
      }
    }
    this.budget.show(this.budgetView(source));
  }

  private async decompress(arg: unknown): Promise<void> {
    const uri = await this.target(arg, 'artifact');
    if (uri === undefined) return;
    const artifact = uri.fsPath;
    const cancel = new vscode.CancellationTokenSource();
    let outputs: string[];
    let engine: string | undefined;
    let engineReason: string | undefined;
    try {
      const title = `Decompressing ${path.basename(artifact)}`;
      const job = { title, kind: 'compress/decompress', params: { artifact }, cancel } as const;
      ({ outputs, engine, engineReason } = await runEngineJob(this.engine, this.log, job));
    } catch {
      return; // told to the user by runEngineJob
    } finally {
      cancel.dispose();
    }
    try {
      const first = outputs[0];
      const predicted =
        engine !== undefined ? ` Predicted on ${engine}${engineReason !== undefined ? ` (${engineReason})` : ''}.` : '';
      this.log.info(`Decompressed ${artifact} → ${outputs.join(', ')}.${predicted}`);
      if (first === undefined) return;
      await this.reveal(first);
      const open = 'Open in Inspector';
      const choice = await vscode.window.showInformationMessage(
        inertLinks(`Decompressed ${path.basename(artifact)} to ${path.basename(first)}.${predicted}`),
        open,
      );
      if (choice === open) await vscode.commands.executeCommand('weightLens.openInspector', vscode.Uri.file(first));
    } catch (e) {
      reportFailure(this.log, `Decompressing ${path.basename(artifact)}`, asEngineError(e));
    }
  }
}

/** One dtype quick pick: the `current` dtype first, each with its description; undefined when dismissed. */
async function pickDtype<T extends string>(
  dtypes: readonly T[],
  current: T,
  descriptions: Readonly<Record<T, string>>,
  title: string,
  placeHolder: string,
): Promise<T | undefined> {
  const picked = await vscode.window.showQuickPick(
    [current, ...dtypes.filter((d) => d !== current)].map((d) => ({
      label: d,
      description: descriptions[d],
      value: d,
    })),
    { title, placeHolder, ignoreFocusOut: true },
  );
  return picked?.value;
}
