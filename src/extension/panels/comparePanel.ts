/**
 * Compare panels (`weightLens.compare`): one webview panel per pair of checkpoints, revealed rather than duplicated,
 * showing a finished comparison (`DiffReportDto`). It re-sends the report whenever the webview (re)loads, and answers
 * the webview's requests for the Δ histogram of a pair through the histogram provider its owner gives (the answer,
 * or the failure's message, is posted back), and passes a request to pair the tensors the other way to its owner. Closing the panel cancels the histograms still being computed.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { hasKind } from '../../protocol/common';
import type { CompareInbound, CompareOutbound, DeltaHistogramDto } from '../../protocol/compare';
import type { DiffMatch, DiffReportDto } from '../../protocol/diff';
import { loadPanelPage, postToWebview } from './snapshotPanel';

/** View type of the Compare panel. */
export const COMPARE_VIEW_TYPE = 'weightLens.compare';

/**
 * Computes the Δ histogram of tensor `tensorA` of checkpoint `a` and `tensorB` of `b`; cancelled with `token`;
 * rejects with an Error whose message is shown in the panel.
 */
export type DeltaHistogramProvider = (
  request: { a: string; b: string; tensorA: string; tensorB: string },
  token: vscode.CancellationToken,
) => Promise<DeltaHistogramDto>;

/** Compares checkpoints `a` and `b` again with pairing `match`; the new report comes back through `show`. */
export type CompareRerun = (a: string, b: string, match: DiffMatch) => void;

/** One Compare panel. */
class ComparePanel implements vscode.Disposable {
  private ready = false;
  private readonly pending = new vscode.CancellationTokenSource();

  constructor(
    readonly panel: vscode.WebviewPanel,
    private report: DiffReportDto,
    private readonly histograms: DeltaHistogramProvider,
    private readonly rerun: CompareRerun,
    private readonly log: vscode.LogOutputChannel,
  ) {
    panel.webview.onDidReceiveMessage((m: unknown) => {
      if (hasKind(m)) this.receive(m as CompareOutbound);
    });
  }

  /** Shows `report` (a new comparison of the same pair). */
  show(report: DiffReportDto): void {
    this.report = report;
    this.postReport();
  }

  dispose(): void {
    this.pending.cancel();
    this.pending.dispose();
  }

  private receive(msg: CompareOutbound): void {
    if (msg.kind === 'compare/ready') {
      this.ready = true;
      this.postReport();
      return;
    }
    if (msg.kind === 'compare/rematch') {
      this.rerun(this.report.a.file, this.report.b.file, msg.match);
      return;
    }
    const report = this.report;
    const { a, b } = msg;
    this.histograms({ a: report.a.file, b: report.b.file, tensorA: a, tensorB: b }, this.pending.token).then(
      (histogram) => {
        if (this.report === report) this.post({ kind: 'compare/histogram', a, b, histogram });
      },
      (e: unknown) => {
        const message = e instanceof Error ? e.message : String(e);
        this.log.debug(`The Δ histogram of ${a} failed: ${message}`);
        if (this.report === report) this.post({ kind: 'compare/histogramFailed', a, b, message });
      },
    );
  }

  private postReport(): void {
    if (this.ready) this.post({ kind: 'compare/report', report: this.report });
  }

  private post(message: CompareInbound): void {
    postToWebview(this.panel.webview, message, this.log, 'Compare');
  }
}

/** The open Compare panels, by pair of paths. */
export class ComparePanels implements vscode.Disposable {
  private readonly panels = new Map<string, ComparePanel>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly histograms: DeltaHistogramProvider,
    private readonly rerun: CompareRerun,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** Shows `report` in the panel of its pair of files, creating or revealing it. */
  show(report: DiffReportDto): void {
    const key = JSON.stringify([report.a.file, report.b.file]);
    const known = this.panels.get(key);
    if (known !== undefined) {
      known.panel.reveal();
      known.show(report);
      return;
    }
    const title = `Compare: ${path.basename(report.a.file)} ↔ ${path.basename(report.b.file)}`;
    const webviewPanel = vscode.window.createWebviewPanel(
      COMPARE_VIEW_TYPE,
      title,
      { viewColumn: vscode.ViewColumn.Active },
      { retainContextWhenHidden: true },
    );
    loadPanelPage(webviewPanel, this.extensionUri, 'compare', 'Compare');
    webviewPanel.title = title;
    const panel = new ComparePanel(webviewPanel, report, this.histograms, this.rerun, this.log);
    this.panels.set(key, panel);
    webviewPanel.onDidDispose(() => {
      panel.dispose();
      this.panels.delete(key);
    });
  }

  dispose(): void {
    for (const p of this.panels.values()) p.panel.dispose();
    this.panels.clear();
  }
}
