/**
 * Distillation panels: one `weightLens.distillation` webview panel per output artifact (a live distillation or a
 * finished one), revealed rather than duplicated. Each panel keeps the `DistillationSnapshot` it has shown, folds
 * every streamed event into it, forwards the event to its webview, and re-sends the whole snapshot when the webview
 * (re)loads. Commands from the webview (cancel, reveal, open in the Reconstruction panel) go to the handler its
 * creator gives.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { hasKind } from '../../protocol/messages';
import {
  applyDistillationEvent,
  type DistillationCommand,
  type DistillationEvent,
  type DistillationInbound,
  type DistillationOutbound,
  type DistillationSnapshot,
} from '../../protocol/panels';
import { webviewHtml, webviewOptions } from './html';

/** View type of the Distillation panel. */
export const DISTILLATION_VIEW_TYPE = 'weightLens.distillation';

/** Handles a command a panel's webview asks for. */
export type DistillationCommandHandler = (command: DistillationCommand, panel: DistillationPanel) => void;

/** One Distillation panel. */
export class DistillationPanel implements vscode.Disposable {
  private ready = false;
  private disposed = false;
  private readonly disposables: vscode.Disposable[] = [];
  /** Called when the user closes the panel. */
  onDidDispose: (() => void) | undefined;

  constructor(
    readonly key: string,
    private readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    private snapshotValue: DistillationSnapshot,
    private handler: DistillationCommandHandler,
    private readonly log: vscode.LogOutputChannel,
  ) {
    panel.webview.options = webviewOptions(extensionUri);
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
    panel.webview.html = webviewHtml(panel.webview, extensionUri, {
      script: 'distillation',
      title: 'Distillation',
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
  get snapshot(): DistillationSnapshot {
    return this.snapshotValue;
  }

  /** True once the panel was closed. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Replaces the whole state (a new run writing the same output). */
  reset(snapshot: DistillationSnapshot, handler?: DistillationCommandHandler): void {
    this.snapshotValue = snapshot;
    if (handler !== undefined) this.handler = handler;
    this.updateTitle();
    this.post({ kind: 'distillation/snapshot', snapshot });
  }

  /** Folds `event` into the snapshot and forwards it. */
  apply(event: DistillationEvent): void {
    if (this.disposed) return;
    applyDistillationEvent(this.snapshotValue, event);
    if (event.kind === 'distillation/done' || event.kind === 'distillation/ended') this.updateTitle();
    this.post(event);
  }

  /** Brings the panel to the front (without taking focus when `preserveFocus`). */
  reveal(preserveFocus = false): void {
    if (!this.disposed) this.panel.reveal(undefined, preserveFocus);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const d of this.disposables) d.dispose();
    this.disposables.length = 0;
    this.panel.dispose();
  }

  private updateTitle(): void {
    const s = this.snapshotValue;
    const live = s.status === 'running' || s.status === 'starting';
    this.panel.title = `Distillation: ${path.basename(s.artifact)}${live ? ' (training)' : ''}`;
  }

  private onMessage(message: unknown): void {
    if (!hasKind(message)) return;
    const msg = message as DistillationOutbound;
    if (msg.kind === 'distillation/ready') {
      this.ready = true;
      this.post({ kind: 'distillation/snapshot', snapshot: this.snapshotValue });
      return;
    }
    try {
      this.handler(msg.command, this);
    } catch (e) {
      this.log.error(`Distillation command ${msg.command} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private post(message: DistillationInbound): void {
    if (!this.ready || this.disposed) return;
    this.panel.webview.postMessage(message).then(undefined, (e: unknown) => {
      this.log.debug(`postMessage to the Distillation panel failed: ${e instanceof Error ? e.message : String(e)}`);
    });
  }
}

/** The open Distillation panels, by key (the output artifact path). */
export class DistillationPanels implements vscode.Disposable {
  private readonly panels = new Map<string, DistillationPanel>();
  private lastShown: DistillationPanel | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** The panel for `key`, if open. */
  get(key: string): DistillationPanel | undefined {
    return this.panels.get(key);
  }

  /** The most recently opened or revealed panel still open. */
  get latest(): DistillationPanel | undefined {
    return this.lastShown;
  }

  /**
   * Shows the panel for `key` with `snapshot` (an open one is reset and revealed), beside the active editor.
   * `preserveFocus` keeps the keyboard where it is (e.g. while a notification shows progress).
   */
  show(key: string, snapshot: DistillationSnapshot, handler: DistillationCommandHandler, preserveFocus = false): DistillationPanel {
    const existing = this.panels.get(key);
    if (existing) {
      existing.reset(snapshot, handler);
      existing.reveal(preserveFocus);
      this.lastShown = existing;
      return existing;
    }
    const webviewPanel = vscode.window.createWebviewPanel(
      DISTILLATION_VIEW_TYPE,
      'Distillation',
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus },
      { retainContextWhenHidden: true, enableFindWidget: true },
    );
    const panel = new DistillationPanel(key, webviewPanel, this.extensionUri, snapshot, handler, this.log);
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
