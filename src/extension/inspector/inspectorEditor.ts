/**
 * The Inspector: a read-only custom editor for checkpoints. Each open editor gets an `InspectorSession` that asks the
 * engine worker to inspect the file by path, forwards the header to its webview at once and the per-tensor
 * statistics in batches as they stream, keeps what it sent so a reloaded webview gets the same state back, watches
 * the file on disk and offers a reload when it changes. Two view types share this provider: `weightLens.inspector`
 * (default for unambiguous checkpoint extensions) and `weightLens.inspectorOptional` (offered for `*.bin`, `*.json`…).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DEFAULT_HISTOGRAM_BINS, DEFAULT_SPECTRA_OPTIONS } from '../../protocol/defaults';
import type { CheckpointHeaderDto } from '../../protocol/inspect';
import { hasKind, type FailureReason } from '../../protocol/common';
import type { InspectEvent } from '../../protocol/engine';
import type {
  InspectorInbound,
  InspectorOutbound,
  InspectorSpectraInbound,
  InspectorTensorUpdate,
} from '../../protocol/inspector';
import { Batcher } from './batcher';
import { EngineError, type EngineClient } from '../engine/engineClient';
import { INSPECTOR_OPTIONAL_VIEW_TYPE, INSPECTOR_VIEW_TYPE } from '../fileKinds';
import { webviewHtml, webviewOptions } from '../panels/html';

/** Batch interval for streamed statistics, in milliseconds. */
const BATCH_MS = 100;
/** Updates per message when the whole state is re-sent to a reloaded webview. */
const RESEND_CHUNK = 500;
/** Commands the webview may ask the host to run. */
const WEBVIEW_COMMANDS = new Set(['weightLens.showLog']);
/** Commands the webview may ask for that act on the inspected file (it is passed as their argument). */
const FILE_COMMANDS = new Set([
  'weightLens.compressCheckpoint',
  'weightLens.decompressArtifact',
  'weightLens.showReconstruction',
  'weightLens.showBudget',
]);

/** Reads `weightLens.histogramBins` (default 64), clamped to the integer range 8…1024. */
export function histogramBinsSetting(): number {
  const raw = vscode.workspace.getConfiguration('weightLens').get<number>('histogramBins', DEFAULT_HISTOGRAM_BINS);
  const n = Number.isFinite(raw) ? Math.round(raw) : 64;
  return Math.min(1024, Math.max(8, n));
}

/** A checkpoint opened in the Inspector. Read-only, so it holds nothing but its URI. */
class InspectorDocument implements vscode.CustomDocument {
  constructor(readonly uri: vscode.Uri) {}
  dispose(): void {
    // Nothing to release: sessions own the engine requests.
  }
}

/** One Inspector editor: its webview, the current engine request and what has been sent so far. */
class InspectorSession implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly batcher: Batcher<InspectorTensorUpdate>;
  private run: vscode.CancellationTokenSource | undefined;
  private generation = 0;
  private ready = false;
  private disposed = false;
  private changeTimer: ReturnType<typeof setTimeout> | undefined;
  // State re-sent to a webview that reloads.
  private header: CheckpointHeaderDto | undefined;
  private updates: InspectorTensorUpdate[] = [];
  private finished: { seconds: number } | undefined;
  private failure: { reason: FailureReason; message: string } | undefined;
  private fileChanged: { deleted: boolean } | undefined;
  // The Spectra view: its running analysis and what it was sent (re-sent to a reloaded webview).
  private spectraRun: vscode.CancellationTokenSource | undefined;
  private spectraGeneration = 0;
  private spectraMessages: InspectorSpectraInbound[] = [];

  constructor(
    private readonly uri: vscode.Uri,
    readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    private readonly engine: EngineClient,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.batcher = new Batcher((updates) => {
      this.post({ kind: 'inspector/batch', updates });
    }, BATCH_MS);
    const webview = panel.webview;
    webview.options = webviewOptions(extensionUri);
    webview.html = this.html(webview);
    this.disposables.push(
      webview.onDidReceiveMessage((message: unknown) => {
        this.onWebviewMessage(message);
      }),
    );
    this.watchFile();
    this.start();
  }

  /** Re-reads the file and restarts the inspection (cancelling one in progress). */
  reload(): void {
    if (this.disposed) return;
    this.fileChanged = undefined;
    this.start();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.spectraRun?.cancel();
    this.spectraRun?.dispose();
    this.run?.cancel();
    this.run?.dispose();
    this.run = undefined;
    this.batcher.dispose();
    if (this.changeTimer !== undefined) clearTimeout(this.changeTimer);
    for (const d of this.disposables) d.dispose();
    this.disposables.length = 0;
  }

  private start(): void {
    this.run?.cancel();
    this.run?.dispose();
    const run = new vscode.CancellationTokenSource();
    this.run = run;
    const generation = ++this.generation;
    this.batcher.clear();
    this.header = undefined;
    this.updates = [];
    this.finished = undefined;
    this.failure = undefined;
    // The file is read again: spectra of the previous contents no longer apply.
    this.spectraRun?.cancel();
    this.spectraGeneration++;
    this.spectraMessages = [];
    this.post({ kind: 'inspector/loading', file: this.uri.fsPath });
    if (this.uri.scheme !== 'file') {
      this.fail(
        generation,
        'badInput',
        `Weight Lens reads checkpoints from disk, and this file is not on a file system it can read (${this.uri.scheme}:).`,
      );
      return;
    }
    const filePath = this.uri.fsPath;
    const histogramBins = histogramBinsSetting();
    this.log.info(`Inspecting ${filePath} (${histogramBins} histogram bins).`);
    this.engine
      .call(
        'inspect/open',
        { path: filePath, histogramBins },
        (event) => {
          this.onEngineEvent(generation, event);
        },
        run.token,
      )
      .then(
        (answer) => {
          this.onDone(generation, answer.seconds);
          this.log.info(`Inspected ${path.basename(filePath)}.`);
        },
        (error: unknown) => {
          if (this.disposed || generation !== this.generation) return; // editor closed, or superseded by a reload
          if (error instanceof EngineError) {
            if (error.reason === 'cancelled' || error.reason === 'badInput')
              this.log.info(`${path.basename(filePath)}: ${error.message}`);
            else this.log.warn(`Inspecting ${filePath} failed (${error.reason}): ${error.message}`);
            this.fail(generation, error.reason, error.message);
          } else {
            const message = error instanceof Error ? error.message : String(error);
            this.log.error(`Inspecting ${filePath} failed: ${message}`);
            this.fail(generation, 'internal', message);
          }
        },
      );
  }

  private fail(generation: number, reason: FailureReason, message: string): void {
    if (generation !== this.generation || this.disposed) return;
    this.batcher.flush();
    this.failure = { reason, message };
    this.post({ kind: 'inspect/failed', reason, message });
  }

  private onDone(generation: number, seconds: number): void {
    if (generation !== this.generation || this.disposed) return;
    this.batcher.flush();
    this.finished = { seconds };
    this.post({ kind: 'inspect/done', seconds });
  }

  private onEngineEvent(generation: number, event: InspectEvent): void {
    if (generation !== this.generation || this.disposed) return;
    if (event.kind === 'inspect/header') {
      this.batcher.clear();
      this.header = event.header;
      this.updates = [];
      this.post(event);
    } else {
      this.updates.push(event);
      this.batcher.push(event);
    }
  }

  private onWebviewMessage(message: unknown): void {
    if (!hasKind(message)) return;
    const msg = message as InspectorOutbound;
    switch (msg.kind) {
      case 'inspector/ready':
        this.ready = true;
        this.resendState();
        break;
      case 'inspector/reload':
        this.reload();
        break;
      case 'inspector/spectra':
        this.startSpectra();
        break;
      case 'inspector/spectraCancel':
        this.spectraRun?.cancel();
        break;
      case 'inspector/command':
        if (WEBVIEW_COMMANDS.has(msg.command) || FILE_COMMANDS.has(msg.command)) {
          const args: unknown[] = FILE_COMMANDS.has(msg.command) ? [this.uri] : [];
          vscode.commands.executeCommand(msg.command, ...args).then(undefined, (e: unknown) => {
            this.log.warn(`Command ${msg.command} failed: ${e instanceof Error ? e.message : String(e)}`);
          });
        }
        break;
    }
  }

  /** Sends everything known so far to a webview that has just (re)loaded. */
  private resendState(): void {
    this.batcher.clear();
    this.post({ kind: 'inspector/loading', file: this.uri.fsPath });
    if (this.header) {
      this.post({ kind: 'inspect/header', header: this.header });
      for (let i = 0; i < this.updates.length; i += RESEND_CHUNK) {
        this.post({ kind: 'inspector/batch', updates: this.updates.slice(i, i + RESEND_CHUNK) });
      }
    }
    if (this.finished) this.post({ kind: 'inspect/done', seconds: this.finished.seconds });
    if (this.failure) this.post({ kind: 'inspect/failed', reason: this.failure.reason, message: this.failure.message });
    if (this.fileChanged) this.post({ kind: 'inspector/fileChanged', deleted: this.fileChanged.deleted });
    for (const m of this.spectraMessages) this.post(m);
  }

  /**
   * Runs the spectral diagnostics of the file in the engine worker (replacing a run in progress) and streams its
   * events to the Spectra view; the view's Cancel stops it.
   */
  private startSpectra(): void {
    if (this.uri.scheme !== 'file') return;
    this.spectraRun?.cancel();
    this.spectraRun?.dispose();
    const run = new vscode.CancellationTokenSource();
    this.spectraRun = run;
    const generation = ++this.spectraGeneration;
    const options = { ...DEFAULT_SPECTRA_OPTIONS };
    const filePath = this.uri.fsPath;
    this.spectraMessages = [];
    const send = (m: InspectorSpectraInbound): void => {
      if (generation !== this.spectraGeneration || this.disposed) return;
      // Progress is transient: only the latest is kept for a reloaded webview.
      if (m.kind === 'spectra/progress')
        this.spectraMessages = this.spectraMessages.filter((x) => x.kind !== 'spectra/progress');
      this.spectraMessages.push(m);
      this.post(m);
    };
    send({ kind: 'spectra/started', options });
    this.log.info(`Spectra of ${filePath} (exact up to rank ${options.maxRank}).`);
    this.engine.call('spectra/start', { path: filePath, options }, send, run.token).then(
      (report) => {
        send({ kind: 'spectra/done', seconds: report.seconds });
        this.log.info(`Spectra of ${path.basename(filePath)}: ${report.layers.length} layers.`);
      },
      (error: unknown) => {
        const reason: FailureReason = error instanceof EngineError ? error.reason : 'internal';
        const message = error instanceof Error ? error.message : String(error);
        if (reason === 'internal' || reason === 'workerCrashed') this.log.warn(`Spectra of ${filePath}: ${message}`);
        send({ kind: 'spectra/failed', reason, message });
      },
    );
  }

  private post(message: InspectorInbound): void {
    if (!this.ready || this.disposed) return;
    this.panel.webview.postMessage(message).then(undefined, (e: unknown) => {
      this.log.debug(`postMessage to the Inspector failed: ${e instanceof Error ? e.message : String(e)}`);
    });
  }

  private watchFile(): void {
    if (this.uri.scheme !== 'file') return;
    const dir = vscode.Uri.file(path.dirname(this.uri.fsPath));
    // Watch the folder non-recursively and filter by path: a file name may contain glob characters.
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(dir, '*'));
    const target = this.uri.fsPath;
    const onEvent =
      (deleted: boolean) =>
      (changed: vscode.Uri): void => {
        if (changed.fsPath !== target) return;
        if (this.changeTimer !== undefined) clearTimeout(this.changeTimer);
        // Writers touch a file many times; report once it has been quiet for a moment.
        this.changeTimer = setTimeout(() => {
          this.changeTimer = undefined;
          if (this.disposed) return;
          this.fileChanged = { deleted };
          this.log.info(`${path.basename(target)} ${deleted ? 'was deleted' : 'changed'} on disk.`);
          this.post({ kind: 'inspector/fileChanged', deleted });
        }, 300);
      };
    this.disposables.push(
      watcher,
      watcher.onDidChange(onEvent(false)),
      watcher.onDidCreate(onEvent(false)),
      watcher.onDidDelete(onEvent(true)),
    );
  }

  private html(webview: vscode.Webview): string {
    return webviewHtml(webview, this.extensionUri, {
      script: 'inspector',
      title: 'Weight Lens Inspector',
      styles: ['inspector.css', 'panels.css'],
      data: { file: this.uri.fsPath },
    });
  }
}

/** Provides the Inspector custom editor for both view types and tracks the open sessions. */
export class InspectorEditorProvider
  implements vscode.CustomReadonlyEditorProvider<InspectorDocument>, vscode.Disposable
{
  private readonly sessions = new Set<InspectorSession>();

  private constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly engine: EngineClient,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** Registers the provider for `weightLens.inspector` and `weightLens.inspectorOptional`. */
  static register(
    context: vscode.ExtensionContext,
    engine: EngineClient,
    log: vscode.LogOutputChannel,
  ): { provider: InspectorEditorProvider; registration: vscode.Disposable } {
    const provider = new InspectorEditorProvider(context.extensionUri, engine, log);
    const options = { webviewOptions: { retainContextWhenHidden: true }, supportsMultipleEditorsPerDocument: true };
    const registration = vscode.Disposable.from(
      vscode.window.registerCustomEditorProvider(INSPECTOR_VIEW_TYPE, provider, options),
      vscode.window.registerCustomEditorProvider(INSPECTOR_OPTIONAL_VIEW_TYPE, provider, options),
      provider,
    );
    return { provider, registration };
  }

  /** Opens a document for `uri`; nothing is read here (the worker reads the file when the editor resolves). */
  openCustomDocument(uri: vscode.Uri): InspectorDocument {
    return new InspectorDocument(uri);
  }

  /** Fills `panel` with the Inspector for `document` and starts inspecting it; the session ends with the panel. */
  resolveCustomEditor(document: InspectorDocument, panel: vscode.WebviewPanel): void {
    const session = new InspectorSession(document.uri, panel, this.extensionUri, this.engine, this.log);
    this.sessions.add(session);
    panel.onDidDispose(() => {
      session.dispose();
      this.sessions.delete(session);
    });
  }

  /** Reloads the active Inspector editor; returns false when no Inspector is active. */
  reloadActive(): boolean {
    for (const s of this.sessions) {
      if (s.panel.active) {
        s.reload();
        return true;
      }
    }
    return false;
  }

  /** Reloads every open Inspector (e.g. after the histogram setting changed). */
  reloadAll(): void {
    for (const s of this.sessions) s.reload();
  }

  /** Ends every session (cancelling their engine requests). */
  dispose(): void {
    for (const s of this.sessions) s.dispose();
    this.sessions.clear();
  }
}
