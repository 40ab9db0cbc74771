/**
 * The Budget panel (`weightLens.budget`): one webview panel showing where a compressed checkpoint's bytes go and the
 * size/error trade-off across runs. It holds the latest `BudgetViewDto`, re-sends it when the webview (re)loads, and
 * passes "forget runs" requests to its owner. It is one panel that lives until closed and shows whatever it is given,
 * not a run's snapshot, so it shares only the page set-up and posting with the `SnapshotPanel`s.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { hasKind } from '../../protocol/common';
import type { BudgetInbound, BudgetOutbound, BudgetViewDto } from '../../protocol/panels';
import { loadPanelPage, postToWebview } from './snapshotPanel';

/** View type of the Budget panel. */
export const BUDGET_VIEW_TYPE = 'weightLens.budget';

/** The single Budget panel, created on first `show`. */
export class BudgetPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private view: BudgetViewDto | undefined;
  private ready = false;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly onClearRuns: (source: string) => Promise<BudgetViewDto | undefined>,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** The source shown now, if the panel is open. */
  get source(): string | undefined {
    return this.panel === undefined ? undefined : this.view?.source;
  }

  /** Shows `view` (creating or revealing the panel). */
  show(view: BudgetViewDto, preserveFocus = false): void {
    this.view = view;
    if (this.panel === undefined) {
      const panel = vscode.window.createWebviewPanel(
        BUDGET_VIEW_TYPE,
        'Budget',
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus },
        { retainContextWhenHidden: true },
      );
      loadPanelPage(panel, this.extensionUri, 'budget', 'Budget');
      panel.webview.onDidReceiveMessage((m: unknown) => {
        this.onMessage(m);
      });
      panel.onDidDispose(() => {
        this.panel = undefined;
        this.ready = false;
      });
      this.panel = panel;
    } else {
      this.panel.reveal(undefined, preserveFocus);
    }
    this.panel.title = `Budget: ${path.basename(view.source)}`;
    this.post();
  }

  /** Updates the view if the panel is open on the same source (e.g. after a run finished); never opens it. */
  refresh(view: BudgetViewDto): void {
    if (this.panel === undefined || this.view?.source !== view.source) return;
    this.view = view;
    this.post();
  }

  dispose(): void {
    this.panel?.dispose();
    this.panel = undefined;
  }

  private onMessage(message: unknown): void {
    if (!hasKind(message)) return;
    const msg = message as BudgetOutbound;
    if (msg.kind === 'budget/ready') {
      this.ready = true;
      this.post();
    } else {
      this.onClearRuns(msg.source).then(
        (view) => {
          if (view) this.refresh(view);
        },
        (e: unknown) => {
          this.log.warn(`Could not forget the runs of ${msg.source}: ${e instanceof Error ? e.message : String(e)}`);
        },
      );
    }
  }

  private post(): void {
    if (!this.ready || this.panel === undefined || this.view === undefined) return;
    const message: BudgetInbound = { kind: 'budget/show', view: this.view };
    postToWebview(this.panel.webview, message, this.log, 'Budget');
  }
}
