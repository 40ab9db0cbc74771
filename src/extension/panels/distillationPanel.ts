/**
 * Distillation panels: one `weightLens.distillation` webview panel per output artifact (a live distillation or a
 * finished one), revealed rather than duplicated. The snapshot plumbing (folding streamed events into the
 * `DistillationSnapshot`, forwarding them, re-sending the whole snapshot when the webview (re)loads) is
 * `SnapshotPanel`'s; this module adds the page, the title, and the commands from the webview (cancel, reveal, open in
 * the Reconstruction panel), which go to the handler its creator gives.
 */
import * as path from 'node:path';
import type * as vscode from 'vscode';
import {
  applyDistillationEvent,
  type DistillationCommand,
  type DistillationEvent,
  type DistillationInbound,
  type DistillationOutbound,
  type DistillationSnapshot,
} from '../../protocol/panels';
import { SnapshotPanel, SnapshotPanels, type SnapshotPanelKind } from './snapshotPanel';

/** View type of the Distillation panel. */
export const DISTILLATION_VIEW_TYPE = 'weightLens.distillation';

/** Handles a command a panel's webview asks for. */
export type DistillationCommandHandler = (command: DistillationCommand, panel: DistillationPanel) => void;

/** The Distillation panel's page, title and protocol. */
const DISTILLATION_PANEL: SnapshotPanelKind<
  DistillationSnapshot,
  DistillationEvent,
  DistillationInbound,
  DistillationOutbound
> = {
  viewType: DISTILLATION_VIEW_TYPE,
  script: 'distillation',
  name: 'Distillation',
  readyKind: 'distillation/ready',
  snapshotMessage: (snapshot) => ({ kind: 'distillation/snapshot', snapshot }),
  fold: applyDistillationEvent,
  changesTitle: (event) => event.kind === 'distill/done' || event.kind === 'distill/ended',
  title: (s) => {
    const live = s.status === 'running' || s.status === 'starting';
    return `Distillation: ${path.basename(s.artifact)}${live ? ' (training)' : ''}`;
  },
};

/** One Distillation panel. */
export class DistillationPanel extends SnapshotPanel<
  DistillationSnapshot,
  DistillationEvent,
  DistillationInbound,
  DistillationOutbound,
  DistillationCommandHandler
> {
  constructor(
    key: string,
    panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    snapshot: DistillationSnapshot,
    handler: DistillationCommandHandler,
    log: vscode.LogOutputChannel,
  ) {
    super(DISTILLATION_PANEL, key, panel, extensionUri, snapshot, handler, log);
  }

  protected receive(message: DistillationOutbound): void {
    if (message.kind !== 'distillation/command') return;
    this.runCommand(message.command, () => {
      this.handler(message.command, this);
    });
  }
}

/** The open Distillation panels, by key (the output artifact path). */
export class DistillationPanels extends SnapshotPanels<
  DistillationSnapshot,
  DistillationCommandHandler,
  DistillationPanel
> {
  constructor(extensionUri: vscode.Uri, log: vscode.LogOutputChannel) {
    super(
      DISTILLATION_PANEL,
      (key, webviewPanel, snapshot, handler) =>
        new DistillationPanel(key, webviewPanel, extensionUri, snapshot, handler, log),
    );
  }
}
