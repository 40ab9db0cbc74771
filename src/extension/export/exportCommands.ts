/**
 * The export commands: **Export as safetensors…** (`weightLens.exportSafetensors`) writes every tensor of a
 * checkpoint as one safetensors file (or NumPy `.npz`) through the worker's `convert/start`, and **Export Netron
 * Attachment…** (`weightLens.exportNetronAttachment`) writes its statistics and spectra as a `netron:attachment` JSON
 * file through `convert/attachment`. Both ask where with the save dialog (defaulting beside the source), run under a
 * cancellable progress notification, never write over the source, and say what they wrote.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { defaultAttachmentPath, type ConvertReportDto, type NetronAttachmentReportDto } from '../../protocol/convert';
import { DEFAULT_SPECTRA_OPTIONS } from '../../protocol/defaults';
import type { EngineClient } from '../engine/engineClient';
import { reportUnexpected, runEngineJob } from '../engine/engineJobs';
import { inertLinks } from '../engine/notificationText';
import { CHECKPOINT_EXTENSIONS, isCheckpointName } from '../fileKinds';
import { convertSummary, defaultSafetensorsPath } from './exportText';

/** Command ids contributed in package.json. */
export const EXPORT_COMMANDS = {
  exportSafetensors: 'weightLens.exportSafetensors',
  exportNetronAttachment: 'weightLens.exportNetronAttachment',
} as const;

/** A path argument a caller (a test, a keybinding) passed as the command's second argument, if any. */
function outArgument(arg: unknown): string | undefined {
  if (arg instanceof vscode.Uri) return arg.fsPath;
  if (typeof arg === 'string' && arg !== '') return arg;
  if (typeof arg === 'object' && arg !== null && 'out' in arg && typeof arg.out === 'string') return arg.out;
  return undefined;
}

/** The export commands over one engine client. */
export class ExportController {
  constructor(
    private readonly engine: EngineClient,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** Registers the commands. */
  register(): vscode.Disposable {
    const guard =
      (name: string, body: (arg: unknown, second: unknown) => Promise<void>) =>
      (arg: unknown, second: unknown): void => {
        body(arg, second).catch((e: unknown) => {
          reportUnexpected(this.log, name, e);
        });
      };
    return vscode.Disposable.from(
      vscode.commands.registerCommand(
        EXPORT_COMMANDS.exportSafetensors,
        guard('Export as safetensors', (arg, second) => this.exportSafetensors(arg, second)),
      ),
      vscode.commands.registerCommand(
        EXPORT_COMMANDS.exportNetronAttachment,
        guard('Export Netron Attachment', (arg, second) => this.exportAttachment(arg, second)),
      ),
    );
  }

  /** The checkpoint to export: the argument (Explorer, editor title), else the active editor's file, else ask. */
  private async source(arg: unknown): Promise<string | undefined> {
    let uri: vscode.Uri | undefined;
    if (arg instanceof vscode.Uri) uri = arg;
    else {
      const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
      if (
        (input instanceof vscode.TabInputText || input instanceof vscode.TabInputCustom) &&
        input.uri.scheme === 'file' &&
        isCheckpointName(path.basename(input.uri.fsPath))
      )
        uri = input.uri;
      else
        uri = (
          await vscode.window.showOpenDialog({
            canSelectMany: false,
            openLabel: 'Export',
            title: 'Choose a checkpoint to export',
            filters: { Checkpoints: [...CHECKPOINT_EXTENSIONS], 'All files': ['*'] },
          })
        )?.[0];
    }
    if (uri === undefined) return undefined;
    if (uri.scheme !== 'file') {
      void vscode.window.showErrorMessage(
        `Weight Lens exports checkpoints on disk; ${uri.toString()} is not a file it can read.`,
      );
      return undefined;
    }
    return uri.fsPath;
  }

  /** The output: the second argument, else the save dialog's answer; undefined when cancelled or it is the source. */
  private async output(
    source: string,
    second: unknown,
    dialog: { defaultPath: string; title: string; filters: Record<string, string[]> },
  ): Promise<string | undefined> {
    const out =
      outArgument(second) ??
      (
        await vscode.window.showSaveDialog({
          defaultUri: vscode.Uri.file(dialog.defaultPath),
          saveLabel: 'Export',
          title: dialog.title,
          filters: dialog.filters,
        })
      )?.fsPath;
    if (out === undefined) return undefined;
    if (path.resolve(out) === path.resolve(source)) {
      void vscode.window.showErrorMessage(
        inertLinks(`${path.basename(out)} is the checkpoint being exported; choose another file name.`),
      );
      return undefined;
    }
    return out;
  }

  /** Export as safetensors…: `convert/start` from `arg`'s checkpoint to the chosen `.safetensors` or `.npz`. */
  private async exportSafetensors(arg: unknown, second: unknown): Promise<void> {
    const source = await this.source(arg);
    if (source === undefined) return;
    const out = await this.output(source, second, {
      defaultPath: defaultSafetensorsPath(source),
      title: `Export ${path.basename(source)} as safetensors`,
      filters: { safetensors: ['safetensors'], 'NumPy archive': ['npz'] },
    });
    if (out === undefined) return;
    const cancel = new vscode.CancellationTokenSource();
    let report: ConvertReportDto;
    try {
      report = await runEngineJob(this.engine, this.log, {
        title: `Exporting ${path.basename(source)}`,
        kind: 'convert/start',
        params: { path: source, out },
        cancel,
        progress: (event) => ({
          percent: (100 * event.progress.index) / Math.max(1, event.progress.total),
          message: `tensor ${event.progress.index + 1}/${event.progress.total}: ${event.progress.name}`,
        }),
      });
    } catch {
      return; // told to the user by runEngineJob
    } finally {
      cancel.dispose();
    }
    const summary = convertSummary(report);
    this.log.info(`${summary} (${report.output}, ${report.seconds.toFixed(1)} s)`);
    const open = 'Open in Inspector';
    const choice = await vscode.window.showInformationMessage(inertLinks(summary), open);
    if (choice === open)
      await vscode.commands.executeCommand('weightLens.openInspector', vscode.Uri.file(report.output));
  }

  /** Export Netron Attachment…: `convert/attachment` of `arg`'s checkpoint to the chosen `.json`. */
  private async exportAttachment(arg: unknown, second: unknown): Promise<void> {
    const source = await this.source(arg);
    if (source === undefined) return;
    const out = await this.output(source, second, {
      defaultPath: defaultAttachmentPath(source),
      title: `Export the statistics and spectra of ${path.basename(source)} as a Netron attachment`,
      filters: { 'Netron attachment': ['json'] },
    });
    if (out === undefined) return;
    const cancel = new vscode.CancellationTokenSource();
    let report: NetronAttachmentReportDto;
    try {
      report = await runEngineJob(this.engine, this.log, {
        title: `Exporting a Netron attachment of ${path.basename(source)}`,
        kind: 'convert/attachment',
        params: { path: source, options: { out, spectra: true, maxRank: DEFAULT_SPECTRA_OPTIONS.maxRank } },
        cancel,
        progress: (event) => {
          const p = event.progress;
          const fraction = p.total > 0 ? (p.index + 1) / p.total : 1;
          return p.phase === 'statistics'
            ? { percent: 20 * fraction, message: `statistics ${p.index + 1}/${p.total}` }
            : { percent: 20 + 80 * fraction, message: `spectrum ${p.index + 1}/${p.total}: ${p.name}` };
        },
      });
    } catch {
      return; // told to the user by runEngineJob
    } finally {
      cancel.dispose();
    }
    const summary = `Wrote ${path.basename(report.output)}: statistics of ${report.tensors} tensors and spectra of ${report.spectra} layers. In Netron, open ${path.basename(source)}, then open this file over it.`;
    this.log.info(`${summary} (${report.output}, ${report.seconds.toFixed(1)} s)`);
    const show = 'Open File';
    const choice = await vscode.window.showInformationMessage(inertLinks(summary), show);
    if (choice === show) await vscode.commands.executeCommand('vscode.open', vscode.Uri.file(report.output));
  }
}
