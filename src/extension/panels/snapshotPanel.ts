/**
 * The plumbing shared by the panels that follow one engine run each (Reconstruction, Distillation): one webview panel
 * per key (an artifact path), revealed rather than duplicated, that keeps the snapshot it has shown, folds every
 * streamed event into it, forwards the event to its webview, and re-sends the whole snapshot when the webview
 * (re)loads. What differs per kind of panel (view type, page, title, protocol) is a `SnapshotPanelKind`; what a
 * panel does with its webview's other messages (commands, requests) is its subclass's `receive`. Also the two steps
 * every Weight Lens panel takes, snapshot or not (the Budget panel too): loading its page and posting to it.
 */
import * as vscode from 'vscode';
import { hasKind } from '../../protocol/common';
import { webviewHtml, webviewOptions } from './html';

/** Sets up a new webview panel with the page of `script` (under dist/webview/): options, icon and HTML. */
export function loadPanelPage(
  panel: vscode.WebviewPanel,
  extensionUri: vscode.Uri,
  script: string,
  title: string,
): void {
  panel.webview.options = webviewOptions(extensionUri);
  panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
  panel.webview.html = webviewHtml(panel.webview, extensionUri, {
    script,
    title,
    styles: ['inspector.css', 'panels.css'],
    bodyClass: 'panel',
  });
}

/** Posts `message` to `webview`; a failure (the webview went away meanwhile) is only logged at debug level. */
export function postToWebview(
  webview: vscode.Webview,
  message: unknown,
  log: vscode.LogOutputChannel,
  panelName: string,
): void {
  webview.postMessage(message).then(undefined, (e: unknown) => {
    log.debug(`postMessage to the ${panelName} panel failed: ${e instanceof Error ? e.message : String(e)}`);
  });
}

/** What fixes one kind of snapshot panel: its page, its titles, and its side of the protocol. */
export interface SnapshotPanelKind<Snapshot, Event, Inbound, Outbound extends { kind: string }> {
  /** View type of its webview panels (`weightLens.…`). */
  viewType: string;
  /** Script base name of its page under dist/webview/. */
  script: string;
  /** Its name: the page title, the title of a new tab, and the name log messages use (`Distillation`). */
  name: string;
  /** The kind of the message its webview sends once it can receive (then it gets the whole snapshot). */
  readyKind: Outbound['kind'];
  /** The message that carries the whole snapshot. */
  snapshotMessage(snapshot: Snapshot): Inbound;
  /** Folds `event` into `snapshot`, mutating it. */
  fold(snapshot: Snapshot, event: Event): void;
  /** True for events after which the title may change (the run finished or ended). */
  changesTitle(event: Event): boolean;
  /** The tab title for `snapshot`. */
  title(snapshot: Snapshot): string;
}

/**
 * One panel following one run. `Handler` is the subclass's command handler (opaque here: the subclass calls it from
 * `receive`); a new run on the same key replaces both the snapshot and the handler (`reset`).
 */
export abstract class SnapshotPanel<
  Snapshot,
  Event extends Inbound,
  Inbound,
  Outbound extends { kind: string },
  Handler,
>
  implements vscode.Disposable
{
  private ready = false;
  private disposed = false;
  private readonly disposables: vscode.Disposable[] = [];
  /** Called when the user closes the panel. */
  onDidDispose: (() => void) | undefined;

  protected constructor(
    private readonly kind: SnapshotPanelKind<Snapshot, Event, Inbound, Outbound>,
    readonly key: string,
    private readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    private snapshotValue: Snapshot,
    protected handler: Handler,
    protected readonly log: vscode.LogOutputChannel,
  ) {
    loadPanelPage(panel, extensionUri, kind.script, kind.name);
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
  get snapshot(): Snapshot {
    return this.snapshotValue;
  }

  /** True once the panel was closed. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Replaces the whole state (a new run on the same key, or an artifact opened from disk) and, if given, the handler. */
  reset(snapshot: Snapshot, handler?: Handler): void {
    this.snapshotValue = snapshot;
    if (handler !== undefined) this.handler = handler;
    this.updateTitle();
    this.post(this.kind.snapshotMessage(snapshot));
  }

  /** Folds `event` into the snapshot and forwards it. */
  apply(event: Event): void {
    if (this.disposed) return;
    this.kind.fold(this.snapshotValue, event);
    if (this.kind.changesTitle(event)) this.updateTitle();
    this.post(event);
  }

  /** Brings the panel to the front (without taking focus when `preserveFocus`). */
  reveal(preserveFocus = false): void {
    if (!this.disposed) this.panel.reveal(undefined, preserveFocus);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.onDisposing();
    for (const d of this.disposables) d.dispose();
    this.disposables.length = 0;
    this.panel.dispose();
  }

  /** A message from the webview other than the ready message (already known to have a `kind`). */
  protected abstract receive(message: Outbound): void;

  /** Called once when the panel is disposed, before its listeners and webview go (isDisposed is already true). */
  protected onDisposing(): void {
    // Nothing by default.
  }

  /** Runs the command handler's `run` for `command`, logging (not throwing) what it throws. */
  protected runCommand(command: string, run: () => void): void {
    try {
      run();
    } catch (e) {
      this.log.error(`${this.kind.name} command ${command} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Posts to the webview once it is ready; dropped before that (it gets the whole snapshot when ready) and after dispose. */
  protected post(message: Inbound): void {
    if (!this.ready || this.disposed) return;
    postToWebview(this.panel.webview, message, this.log, this.kind.name);
  }

  private updateTitle(): void {
    this.panel.title = this.kind.title(this.snapshotValue);
  }

  private onMessage(message: unknown): void {
    if (!hasKind(message)) return;
    if (message.kind === this.kind.readyKind) {
      this.ready = true;
      this.post(this.kind.snapshotMessage(this.snapshotValue));
      return;
    }
    this.receive(message as Outbound);
  }
}

/** What `SnapshotPanels` needs of a panel. */
export interface KeyedPanel<Snapshot, Handler> extends vscode.Disposable {
  reset(snapshot: Snapshot, handler?: Handler): void;
  reveal(preserveFocus?: boolean): void;
  onDidDispose: (() => void) | undefined;
}

/** Makes the panel object for a new webview panel shown for `key`. */
export type SnapshotPanelFactory<Snapshot, Handler, Panel> = (
  key: string,
  webviewPanel: vscode.WebviewPanel,
  snapshot: Snapshot,
  handler: Handler,
) => Panel;

/** The open panels of one kind, by key (the artifact path). */
export class SnapshotPanels<Snapshot, Handler, Panel extends KeyedPanel<Snapshot, Handler>>
  implements vscode.Disposable
{
  private readonly panels = new Map<string, Panel>();
  private lastShown: Panel | undefined;

  constructor(
    private readonly kind: { readonly viewType: string; readonly name: string },
    private readonly create: SnapshotPanelFactory<Snapshot, Handler, Panel>,
  ) {}

  /** The panel for `key`, if open. */
  get(key: string): Panel | undefined {
    return this.panels.get(key);
  }

  /** The most recently opened or revealed panel still open. */
  get latest(): Panel | undefined {
    return this.lastShown;
  }

  /**
   * Shows the panel for `key` with `snapshot` (an open one is reset and revealed), beside the active editor.
   * `preserveFocus` keeps the keyboard where it is (e.g. while a notification shows progress).
   */
  show(key: string, snapshot: Snapshot, handler: Handler, preserveFocus = false): Panel {
    const existing = this.panels.get(key);
    if (existing) {
      existing.reset(snapshot, handler);
      existing.reveal(preserveFocus);
      this.lastShown = existing;
      return existing;
    }
    const webviewPanel = vscode.window.createWebviewPanel(
      this.kind.viewType,
      this.kind.name,
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus },
      { retainContextWhenHidden: true, enableFindWidget: true },
    );
    const panel = this.create(key, webviewPanel, snapshot, handler);
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
