/**
 * Reconstruction panels: one `weightLens.reconstruction` webview panel per artifact (a live run or a finished
 * artifact), revealed rather than duplicated. Each panel keeps the `ReconstructionSnapshot` it has shown, folds every
 * streamed event into it, forwards the event to its webview, and re-sends the whole snapshot when the webview
 * (re)loads. Commands from the webview (cancel, budget, reveal, decompress) go to the handler its creator gives;
 * requests for another layer's or filter's detail go to the detail provider, and the answer (or the failure) is posted
 * back to the webview, which caches it. "Evaluate…" (and its cancel) goes to the evaluator the extension registers
 * with `setReconstructionEvaluator`, which streams its progress and result back through `apply`.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { LayerDetailDto } from '../../protocol/compress';
import { hasKind } from '../../protocol/messages';
import {
  applyReconstructionEvent,
  type ReconstructionCommand,
  type ReconstructionEvent,
  type ReconstructionInbound,
  type ReconstructionOutbound,
  type ReconstructionSnapshot,
} from '../../protocol/panels';
import { webviewHtml, webviewOptions } from './html';

/** View type of the Reconstruction panel. */
export const RECONSTRUCTION_VIEW_TYPE = 'weightLens.reconstruction';

/** Handles a command a panel's webview asks for. */
export type ReconstructionCommandHandler = (command: ReconstructionCommand, panel: ReconstructionPanel) => void;

/**
 * Makes the detail of layer `layer` at output filter `filter` (undefined: the worst filter) from the artifact of the
 * panel's `snapshot`; rejects with an Error whose message is shown in the panel.
 */
export type ReconstructionDetailProvider = (snapshot: ReconstructionSnapshot, layer: string, filter: number | undefined) => Promise<LayerDetailDto>;

/**
 * Runs "Evaluate…" for a panel's artifact in a runnable model (asking for the model and data), folding its events
 * into the panel with `apply`; `cancel` stops a run in progress (also called when the panel closes).
 */
export interface ReconstructionEvaluator {
  evaluate(panel: ReconstructionPanel): void;
  cancel(panel: ReconstructionPanel): void;
}

/** The evaluator every Reconstruction panel uses; set once at activation. */
let evaluator: ReconstructionEvaluator | undefined;

/** Makes `e` the evaluator of every Reconstruction panel until the returned disposable is disposed. */
export function setReconstructionEvaluator(e: ReconstructionEvaluator): vscode.Disposable {
  evaluator = e;
  return new vscode.Disposable(() => {
    if (evaluator === e) evaluator = undefined;
  });
}

/** One Reconstruction panel. */
export class ReconstructionPanel implements vscode.Disposable {
  private ready = false;
  private disposed = false;
  private readonly disposables: vscode.Disposable[] = [];
  /** Called when the user closes the panel. */
  onDidDispose: (() => void) | undefined;

  constructor(
    readonly key: string,
    private readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    private snapshotValue: ReconstructionSnapshot,
    private handler: ReconstructionCommandHandler,
    private readonly log: vscode.LogOutputChannel,
    private readonly detailProvider?: ReconstructionDetailProvider,
  ) {
    panel.webview.options = webviewOptions(extensionUri);
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
    panel.webview.html = webviewHtml(panel.webview, extensionUri, {
      script: 'reconstruction',
      title: 'Reconstruction',
      styles: ['inspector.css', 'panels.css'],
      bodyClass: 'panel',
    });
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: unknown) => {
        this.onMessage(m);
      }),
      panel.onDidDispose(() => {
        this.dispose();
        this.onDidDispose?.();
      }),
    );
    this.updateTitle();
  }

  /** What the panel shows now. */
  get snapshot(): ReconstructionSnapshot {
    return this.snapshotValue;
  }

  /** True once the panel was closed. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Replaces the whole state (a new run on the same artifact, or an artifact opened from disk). */
  reset(snapshot: ReconstructionSnapshot, handler?: ReconstructionCommandHandler): void {
    this.snapshotValue = snapshot;
    if (handler !== undefined) this.handler = handler;
    this.updateTitle();
    this.post({ kind: 'recon/snapshot', snapshot });
  }

  /** Folds `event` into the snapshot and forwards it. */
  apply(event: ReconstructionEvent): void {
    if (this.disposed) return;
    applyReconstructionEvent(this.snapshotValue, event);
    if (event.kind === 'recon/done' || event.kind === 'recon/ended') this.updateTitle();
    this.post(event);
  }

  /** Brings the panel to the front (without taking focus when `preserveFocus`). */
  reveal(preserveFocus = false): void {
    if (!this.disposed) this.panel.reveal(undefined, preserveFocus);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    evaluator?.cancel(this);
    for (const d of this.disposables) d.dispose();
    this.disposables.length = 0;
    this.panel.dispose();
  }

  private updateTitle(): void {
    const s = this.snapshotValue;
    const name = path.basename(s.artifact ?? s.source);
    const live = s.status === 'running' || s.status === 'planning';
    this.panel.title = `Reconstruction: ${name}${live ? ' (training)' : ''}`;
  }

  private onMessage(message: unknown): void {
    if (!hasKind(message)) return;
    const msg = message as ReconstructionOutbound;
    if (msg.kind === 'recon/ready') {
      this.ready = true;
      this.post({ kind: 'recon/snapshot', snapshot: this.snapshotValue });
    } else if (msg.kind === 'recon/detail') {
      this.answerDetail(msg.layer, msg.filter);
    } else if (msg.command === 'evaluate' || msg.command === 'cancelEvaluate') {
      if (evaluator === undefined) {
        this.log.warn('Evaluate is not available: no evaluator is registered.');
        return;
      }
      if (msg.command === 'evaluate') evaluator.evaluate(this);
      else evaluator.cancel(this);
    } else {
      try {
        this.handler(msg.command, this);
      } catch (e) {
        this.log.error(`Reconstruction command ${msg.command} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  private answerDetail(layer: string, filter: number | undefined): void {
    const echo = filter === undefined ? { layer } : { layer, filter };
    const provider = this.detailProvider;
    const snapshot = this.snapshotValue;
    if (provider === undefined || snapshot.status !== 'done' || snapshot.artifact === undefined) {
      this.post({ kind: 'recon/layerDetailFailed', ...echo, message: 'Other layers and filters can be shown once the artifact is written.' });
      return;
    }
    provider(snapshot, layer, filter).then(
      (detail) => {
        // A run restarted on this panel meanwhile: the answer belongs to the old artifact.
        if (this.snapshotValue === snapshot) this.post({ kind: 'recon/layerDetail', ...echo, detail });
      },
      (e: unknown) => {
        const message = e instanceof Error ? e.message : String(e);
        this.log.debug(`Detail of ${layer} (filter ${filter ?? 'worst'}) failed: ${message}`);
        if (this.snapshotValue === snapshot) this.post({ kind: 'recon/layerDetailFailed', ...echo, message });
      },
    );
  }

  private post(message: ReconstructionInbound): void {
    if (!this.ready || this.disposed) return;
    this.panel.webview.postMessage(message).then(undefined, (e: unknown) => {
      this.log.debug(`postMessage to the Reconstruction panel failed: ${e instanceof Error ? e.message : String(e)}`);
    });
  }
}

/** The open Reconstruction panels, by key (the artifact path). */
export class ReconstructionPanels implements vscode.Disposable {
  private readonly panels = new Map<string, ReconstructionPanel>();
  private lastShown: ReconstructionPanel | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
    private readonly detailProvider?: ReconstructionDetailProvider,
  ) {}

  /** The panel for `key`, if open. */
  get(key: string): ReconstructionPanel | undefined {
    return this.panels.get(key);
  }

  /** The most recently opened or revealed panel still open. */
  get latest(): ReconstructionPanel | undefined {
    return this.lastShown;
  }

  /**
   * Shows the panel for `key` with `snapshot` (an open one is reset and revealed), beside the active editor.
   * `preserveFocus` keeps the keyboard where it is (e.g. while a notification shows progress).
   */
  show(key: string, snapshot: ReconstructionSnapshot, handler: ReconstructionCommandHandler, preserveFocus = false): ReconstructionPanel {
    const existing = this.panels.get(key);
    if (existing) {
      existing.reset(snapshot, handler);
      existing.reveal(preserveFocus);
      this.lastShown = existing;
      return existing;
    }
    const webviewPanel = vscode.window.createWebviewPanel(
      RECONSTRUCTION_VIEW_TYPE,
      'Reconstruction',
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus },
      { retainContextWhenHidden: true, enableFindWidget: true },
    );
    const panel = new ReconstructionPanel(key, webviewPanel, this.extensionUri, snapshot, handler, this.log, this.detailProvider);
    panel.onDidDispose = () => {
      this.panels.delete(key);
      if (this.lastShown === panel) this.lastShown = [...this.panels.values()].pop();
    };
    this.panels.set(key, panel);
    this.lastShown = panel;
    return panel;
  }

  /** Reveals the panel for `key`; false when none is open. */
  reveal(key: string): boolean {
    const p = this.panels.get(key);
    if (!p) return false;
    p.reveal();
    this.lastShown = p;
    return true;
  }

  dispose(): void {
    for (const p of this.panels.values()) p.dispose();
    this.panels.clear();
    this.lastShown = undefined;
  }
}
