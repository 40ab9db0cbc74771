/**
 * Extension entry point. Activation is cheap: it registers the Inspector custom editor, the commands (compression,
 * distillation, Compare With…, the Reconstruction panel's Evaluate action) and the "Weight Lens" log, and creates the engine
 * client, whose worker (all tfjs and format code) starts only when the first checkpoint is opened. This module never
 * imports tfjs or src/core.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { BACKEND_NAMES, isOneOf } from '../protocol/vocabulary';
import type { WorkerInitData } from '../protocol/engine';
import { CompareController, COMPARE_WITH_COMMAND } from './compare/compareCommand';
import { CompressController } from './compress/compressController';
import { DistillController } from './distill/distillCommand';
import { RememberedChoices } from './distill/distillChoices';
import { EngineClient, nodeWorkerFactory } from './engine/engineClient';
import { ArtifactEvaluator } from './evaluate/evaluateCommand';
import { ExportController } from './export/exportCommands';
import { ModelPickers } from './evaluate/evaluatePickers';
import { CHECKPOINT_EXTENSIONS, INSPECTOR_OPTIONAL_VIEW_TYPE, INSPECTOR_VIEW_TYPE, viewTypeFor } from './fileKinds';
import { InspectorEditorProvider } from './inspector/inspectorEditor';

/** Command ids contributed in package.json. */
export const COMMANDS = {
  openInspector: 'weightLens.openInspector',
  reloadInspector: 'weightLens.reloadInspector',
  showLog: 'weightLens.showLog',
  compressCheckpoint: 'weightLens.compressCheckpoint',
  showReconstruction: 'weightLens.showReconstruction',
  showBudget: 'weightLens.showBudget',
  decompressArtifact: 'weightLens.decompressArtifact',
  distillArtifact: 'weightLens.distillArtifact',
  compareWith: COMPARE_WITH_COMMAND,
} as const;

/** The backend to start the worker with: the setting, except that untrusted workspaces never load native code. */
function workerInit(): WorkerInitData {
  const raw = vscode.workspace.getConfiguration('weightLens').get<string>('backend', 'auto');
  const backend = isOneOf(BACKEND_NAMES, raw) ? raw : 'auto';
  if (!vscode.workspace.isTrusted && backend !== 'cpu') return { backend: 'wasm' };
  return { backend };
}

/** The checkpoint a command should act on: its argument, else the active editor's file, else ask. */
async function resolveTarget(arg: unknown): Promise<vscode.Uri[]> {
  if (arg instanceof vscode.Uri) return [arg];
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  if (input instanceof vscode.TabInputText || input instanceof vscode.TabInputCustom) {
    if (input.uri.scheme === 'file') return [input.uri];
  }
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: true,
    openLabel: 'Open in Inspector',
    title: 'Open a checkpoint in the Weight Lens Inspector',
    filters: {
      Checkpoints: [...CHECKPOINT_EXTENSIONS],
      'All files': ['*'],
    },
  });
  return picked ?? [];
}

/** Activates the extension; everything registered is disposed with `context.subscriptions`. */
export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Weight Lens', { log: true });
  const workerPath = path.join(context.extensionPath, 'dist', 'worker.js');
  const engine = new EngineClient(nodeWorkerFactory(workerPath, workerInit), log);
  const { provider, registration } = InspectorEditorProvider.register(context, engine, log);
  const pickers = new ModelPickers(new RememberedChoices(context.workspaceState));
  const evaluator = new ArtifactEvaluator(engine, log, pickers);
  const compress = new CompressController(context, engine, log, pickers, evaluator);
  const distill = new DistillController(context, engine, log, pickers);
  const compare = new CompareController(context, engine, log);

  context.subscriptions.push(
    log,
    {
      dispose: () => {
        engine.dispose();
      },
    },
    registration,
    compress.register(),
    distill.register(),
    new ExportController(engine, log).register(),
    compare.register(),
    evaluator,
    vscode.commands.registerCommand(COMMANDS.openInspector, async (arg: unknown, all: unknown) => {
      const uris =
        Array.isArray(all) && all.every((u) => u instanceof vscode.Uri) && all.length > 0
          ? all
          : await resolveTarget(arg);
      for (const uri of uris) {
        await vscode.commands.executeCommand('vscode.openWith', uri, viewTypeFor(path.basename(uri.fsPath)));
      }
    }),
    vscode.commands.registerCommand(COMMANDS.reloadInspector, () => {
      if (!provider.reloadActive()) {
        vscode.window
          .showInformationMessage('Open a checkpoint in the Weight Lens Inspector to reload it.')
          .then(undefined, (e: unknown) => {
            log.warn(`Could not show a message: ${String(e)}`);
          });
      }
    }),
    vscode.commands.registerCommand(COMMANDS.showLog, () => {
      log.show();
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('weightLens.backend')) {
        log.info('The backend setting changed; the engine restarts before its next job.');
        engine.restart();
      }
      if (e.affectsConfiguration('weightLens.histogramBins')) provider.reloadAll();
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      engine.restart();
    }),
  );
  log.info(`Weight Lens activated (${INSPECTOR_VIEW_TYPE}, ${INSPECTOR_OPTIONAL_VIEW_TYPE}).`);
}

/** Nothing beyond `context.subscriptions`, which VS Code disposes (stopping the worker). */
export function deactivate(): void {
  // All resources are owned by context.subscriptions.
}
