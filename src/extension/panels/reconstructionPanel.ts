/**
 * Reconstruction panels: one `weightLens.reconstruction` webview panel per artifact (a live run or a finished
 * artifact), revealed rather than duplicated. The snapshot plumbing (folding streamed events into the
 * `ReconstructionSnapshot`, forwarding them, re-sending the whole snapshot when the webview (re)loads) is
 * `SnapshotPanel`'s. Commands from the webview (cancel, budget, reveal, decompress) go to the handler its creator
 * gives; requests for another layer's or filter's detail go to the detail provider, and the answer (or the failure) is
 * posted back to the webview, which caches it. "Evaluate…" (and its cancel) goes to the evaluator given to
 * `ReconstructionPanels`, which streams its progress and result back through `apply`.
 */
import * as path from 'node:path';
import type * as vscode from 'vscode';
import type { LayerDetailDto } from '../../protocol/compress';
import type { SpectraComparisonDto } from '../../protocol/spectra';
import {
  applyReconstructionEvent,
  type ReconstructionCommand,
  type ReconstructionEvent,
  type ReconstructionInbound,
  type ReconstructionOutbound,
  type ReconstructionSnapshot,
} from '../../protocol/panels';
import { SnapshotPanel, SnapshotPanels, type SnapshotPanelKind } from './snapshotPanel';

/** View type of the Reconstruction panel. */
export const RECONSTRUCTION_VIEW_TYPE = 'weightLens.reconstruction';

/** Handles a command a panel's webview asks for. */
export type ReconstructionCommandHandler = (command: ReconstructionCommand, panel: ReconstructionPanel) => void;

/**
 * Makes the detail of layer `layer` at output filter `filter` (undefined: the worst filter) from the artifact of the
 * panel's `snapshot`; rejects with an Error whose message is shown in the panel.
 */
export type ReconstructionDetailProvider = (
  snapshot: ReconstructionSnapshot,
  layer: string,
  filter: number | undefined,
) => Promise<LayerDetailDto>;

/**
 * Makes the original and reconstructed spectra of layer `layer` from the artifact of the panel's `snapshot`; rejects
 * with an Error whose message is shown in the panel.
 */
export type ReconstructionSpectraProvider = (
  snapshot: ReconstructionSnapshot,
  layer: string,
) => Promise<SpectraComparisonDto>;

/**
 * Runs "Evaluate…" for a panel's artifact in a runnable model (asking for the model and data), folding its events
 * into the panel with `apply`; `cancel` stops a run in progress (also called when the panel closes).
 */
export interface ReconstructionEvaluator {
  evaluate(panel: ReconstructionPanel): void;
  cancel(panel: ReconstructionPanel): void;
}

/** The Reconstruction panel's page, title and protocol. */
const RECONSTRUCTION_PANEL: SnapshotPanelKind<
  ReconstructionSnapshot,
  ReconstructionEvent,
  ReconstructionInbound,
  ReconstructionOutbound
> = {
  viewType: RECONSTRUCTION_VIEW_TYPE,
  script: 'reconstruction',
  name: 'Reconstruction',
  readyKind: 'recon/ready',
  snapshotMessage: (snapshot) => ({ kind: 'recon/snapshot', snapshot }),
  fold: applyReconstructionEvent,
  changesTitle: (event) => event.kind === 'compress/done' || event.kind === 'compress/ended',
  title: (s) => {
    const name = path.basename(s.artifact ?? s.source);
    const live = s.status === 'running' || s.status === 'planning';
    return `Reconstruction: ${name}${live ? ' (training)' : ''}`;
  },
};

/** One Reconstruction panel. */
export class ReconstructionPanel extends SnapshotPanel<
  ReconstructionSnapshot,
  ReconstructionEvent,
  ReconstructionInbound,
  ReconstructionOutbound,
  ReconstructionCommandHandler
> {
  constructor(
    key: string,
    panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    snapshot: ReconstructionSnapshot,
    handler: ReconstructionCommandHandler,
    log: vscode.LogOutputChannel,
    private readonly detailProvider?: ReconstructionDetailProvider,
    private readonly evaluator?: ReconstructionEvaluator,
    private readonly spectraProvider?: ReconstructionSpectraProvider,
  ) {
    super(RECONSTRUCTION_PANEL, key, panel, extensionUri, snapshot, handler, log);
  }

  protected override onDisposing(): void {
    this.evaluator?.cancel(this);
  }

  protected receive(msg: ReconstructionOutbound): void {
    if (msg.kind === 'recon/detail') {
      this.answerDetail(msg.layer, msg.filter);
    } else if (msg.kind === 'recon/spectra') {
      this.answerSpectra(msg.layer);
    } else if (msg.kind === 'recon/command') {
      const command = msg.command;
      if (command === 'evaluate' || command === 'cancelEvaluate') {
        if (this.evaluator === undefined) {
          this.log.warn('Evaluate is not available: no evaluator is registered.');
          return;
        }
        if (command === 'evaluate') this.evaluator.evaluate(this);
        else this.evaluator.cancel(this);
      } else {
        this.runCommand(command, () => {
          this.handler(command, this);
        });
      }
    }
  }

  private answerDetail(layer: string, filter: number | undefined): void {
    const echo = filter === undefined ? { layer } : { layer, filter };
    const provider = this.detailProvider;
    const snapshot = this.snapshot;
    if (provider === undefined || snapshot.status !== 'done' || snapshot.artifact === undefined) {
      this.post({
        kind: 'recon/layerDetailFailed',
        ...echo,
        message: 'Other layers and filters can be shown once the artifact is written.',
      });
      return;
    }
    provider(snapshot, layer, filter).then(
      (detail) => {
        // A run restarted on this panel meanwhile: the answer belongs to the old artifact.
        if (this.snapshot === snapshot) this.post({ kind: 'recon/layerDetail', ...echo, detail });
      },
      (e: unknown) => {
        const message = e instanceof Error ? e.message : String(e);
        this.log.debug(`Detail of ${layer} (filter ${filter ?? 'worst'}) failed: ${message}`);
        if (this.snapshot === snapshot) this.post({ kind: 'recon/layerDetailFailed', ...echo, message });
      },
    );
  }

  private answerSpectra(layer: string): void {
    const provider = this.spectraProvider;
    const snapshot = this.snapshot;
    if (provider === undefined || snapshot.status !== 'done' || snapshot.artifact === undefined) {
      this.post({
        kind: 'recon/layerSpectraFailed',
        layer,
        message: 'Spectra can be compared once the artifact is written.',
      });
      return;
    }
    provider(snapshot, layer).then(
      (spectra) => {
        if (this.snapshot === snapshot) this.post({ kind: 'recon/layerSpectra', layer, spectra });
      },
      (e: unknown) => {
        const message = e instanceof Error ? e.message : String(e);
        this.log.debug(`Spectra of ${layer} failed: ${message}`);
        if (this.snapshot === snapshot) this.post({ kind: 'recon/layerSpectraFailed', layer, message });
      },
    );
  }
}

/** The open Reconstruction panels, by key (the artifact path). */
export class ReconstructionPanels extends SnapshotPanels<
  ReconstructionSnapshot,
  ReconstructionCommandHandler,
  ReconstructionPanel
> {
  /**
   * `detailProvider` answers the panels' requests for a layer's detail; `evaluator` runs their "Evaluate…" (without
   * one, the button only logs that it is unavailable); `spectraProvider` answers requests for a layer's spectra.
   */
  constructor(
    extensionUri: vscode.Uri,
    log: vscode.LogOutputChannel,
    detailProvider?: ReconstructionDetailProvider,
    evaluator?: ReconstructionEvaluator,
    spectraProvider?: ReconstructionSpectraProvider,
  ) {
    super(
      RECONSTRUCTION_PANEL,
      (key, webviewPanel, snapshot, handler) =>
        new ReconstructionPanel(
          key,
          webviewPanel,
          extensionUri,
          snapshot,
          handler,
          log,
          detailProvider,
          evaluator,
          spectraProvider,
        ),
    );
  }
}
