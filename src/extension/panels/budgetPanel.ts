/**
 * The Budget panel (`weightLens.budget`): one webview panel showing where a compressed checkpoint's bytes go and the
 * size/error trade-off across runs, and the method comparison. It holds the latest `BudgetViewDto`, re-sends it when
 * the webview (re)loads, and passes the webview's requests (forget runs, compare methods, stop the comparison, open
 * an artifact) to its owner. It is one panel that lives until closed and shows whatever it is given,
 * not a run's snapshot, so it shares only the page set-up and posting with the `SnapshotPanel`s.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { hasKind } from '../../protocol/common';
import type { BudgetInbound, BudgetOutbound, BudgetViewDto } from '../../protocol/panels';
import { loadPanelPage, postToWebview } from './snapshotPanel';

/** View type of the Budget panel. */
export const BUDGET_VIEW_TYPE = 'weightLens.budget';

/** What the Budget panel's owner does for the webview's requests. */
export interface BudgetActions {
  /** Forgets the runs of `source`; resolves to the new view (undefined: nothing to redraw). */
  clearRuns(source: string): Promise<BudgetViewDto | undefined>;
  /** Asks what to compare and runs the comparison on `source`. */
  compare(source: string): Promise<void>;
  cancelCompare(source: string): void;
  /** Opens an artifact of the comparison (its Reconstruction panel). */
  openArtifact(artifact: string): Promise<void>;
}

/** The single Budget panel, created on first `show`. */
export class BudgetPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private view: BudgetViewDto | undefined;
  private ready = false;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly actions: BudgetActions,
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
    const failed =
      (what: string) =>
      (e: unknown): void => {
        this.log.warn(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      };
    switch (msg.kind) {
      case 'budget/ready':
        this.ready = true;
        this.post();
        return;
      case 'budget/clearRuns':
        this.actions.clearRuns(msg.source).then(
          (view) => {
            if (view) this.refresh(view);
          },
          failed(`Could not forget the runs of ${msg.source}`),
        );
        return;
      case 'budget/compare':
        this.actions.compare(msg.source).catch(failed(`Could not compare methods on ${msg.source}`));
        return;
      case 'budget/cancelCompare':
        this.actions.cancelCompare(msg.source);
        return;
      case 'budget/openArtifact':
        this.actions.openArtifact(msg.artifact).catch(failed(`Could not open ${msg.artifact}`));
        return;
    }
  }

  private post(): void {
    if (!this.ready || this.panel === undefined || this.view === undefined) return;
    const message: BudgetInbound = { kind: 'budget/show', view: this.view };
    postToWebview(this.panel.webview, message, this.log, 'Budget');
  }
}
