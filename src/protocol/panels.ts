/**
 * Messages between the extension host and the compression panels (Reconstruction and Budget), and the one piece of
 * state both sides keep for a Reconstruction panel: a snapshot that streamed compression events are folded into by
 * `applyReconstructionEvent`. The host keeps it to re-send to a reloaded webview; the webview keeps the same shape.
 * Plain data and pure functions only: summaries, never weight arrays.
 */
import type {
  BudgetPlanDto,
  CompressEvaluationDto,
  CompressProgressDto,
  CompressReportDto,
  LayerDetailDto,
  PermutationKind,
} from './compress';
import type { FailureReason } from './messages';

/** Where a compression shown in a Reconstruction panel stands. */
export type ReconstructionStatus = 'planning' | 'running' | 'done' | 'failed' | 'cancelled';

/** Most loss samples a snapshot keeps; older samples are thinned (every other one dropped) when it fills. */
export const MAX_LOSS_POINTS = 2000;

/** Everything a Reconstruction panel shows. */
export interface ReconstructionSnapshot {
  /** Source checkpoint path. */
  source: string;
  /** Artifact path (known before training: the output path; after: the written file). */
  artifact?: string;
  status: ReconstructionStatus;
  /** Why the run failed or was cancelled (one sentence), if so. */
  message?: string;
  reason?: FailureReason;
  plan?: BudgetPlanDto;
  /** Latest progress sample. */
  progress?: CompressProgressDto;
  /** Loss samples `[step, loss]` in step order, at most `MAX_LOSS_POINTS`. */
  loss: [number, number][];
  /** Latest evaluation (per-layer errors). */
  evaluation?: CompressEvaluationDto;
  /** The latest detail received for each layer (by layer name), most recent last. */
  details: LayerDetailDto[];
  /** The final report, once done (or when opened from an artifact). */
  report?: CompressReportDto;
}

/** Events folded into a snapshot (the host forwards these to the webview as they arrive). */
export type ReconstructionEvent =
  | { kind: 'recon/plan'; plan: BudgetPlanDto }
  | { kind: 'recon/progress'; progress: CompressProgressDto }
  | { kind: 'recon/evaluation'; evaluation: CompressEvaluationDto }
  | { kind: 'recon/done'; report: CompressReportDto }
  | { kind: 'recon/ended'; status: 'failed' | 'cancelled'; reason: FailureReason; message: string };

/**
 * The answer to a webview's `recon/detail` request (not folded into the snapshot; the webview caches it by layer and
 * filter): the detail, or why it could not be made (e.g. the source checkpoint is not beside the artifact).
 * `filter` echoes the request (absent: the engine picked the worst filter; the detail says which).
 */
export type ReconstructionDetailAnswer =
  | { kind: 'recon/layerDetail'; layer: string; filter?: number; detail: LayerDetailDto }
  | { kind: 'recon/layerDetailFailed'; layer: string; filter?: number; message: string };

/** Host → Reconstruction webview: a whole snapshot (on load and when a run restarts), one event, or a detail answer. */
export type ReconstructionInbound = { kind: 'recon/snapshot'; snapshot: ReconstructionSnapshot } | ReconstructionEvent | ReconstructionDetailAnswer;

/** Commands the Reconstruction webview may ask for. */
export type ReconstructionCommand = 'showBudget' | 'revealArtifact' | 'cancel' | 'decompress';

/**
 * Reconstruction webview → host. `recon/detail` asks for layer `layer` at output filter `filter` (absent: the filter
 * with the largest error) from the written artifact; only sent once the artifact exists (the run is done).
 */
export type ReconstructionOutbound =
  | { kind: 'recon/ready' }
  | { kind: 'recon/command'; command: ReconstructionCommand }
  | { kind: 'recon/detail'; layer: string; filter?: number };

/** A finished compression run, remembered per source so the Budget panel can plot size against error. */
export interface RunSummaryDto {
  source: string;
  artifact: string;
  hidden: number;
  /** Predictor parameters / represented parameters. */
  fraction: number;
  /** RMSE over all represented weights. */
  rmse: number;
  /** sourceBytes / artifactBytes. */
  ratio: number;
  artifactBytes: number;
  steps: number;
  permutation: PermutationKind;
  /** When the run finished, milliseconds since the epoch. */
  finishedAt: number;
}

/** What the Budget panel shows for one source checkpoint. */
export interface BudgetViewDto {
  source: string;
  /** The plan of the latest (or chosen) budget, if known. */
  plan?: BudgetPlanDto;
  /** Runs done on this source, oldest first. */
  runs: RunSummaryDto[];
}

/** Host → Budget webview. */
export type BudgetInbound = { kind: 'budget/show'; view: BudgetViewDto };

/** Budget webview → host. */
export type BudgetOutbound = { kind: 'budget/ready' } | { kind: 'budget/clearRuns'; source: string };

/** An empty snapshot for a run on `source` that has not started training yet. */
export function emptySnapshot(source: string, artifact?: string): ReconstructionSnapshot {
  const snapshot: ReconstructionSnapshot = { source, status: 'planning', loss: [], details: [] };
  if (artifact !== undefined) snapshot.artifact = artifact;
  return snapshot;
}

/** Appends a loss sample, thinning the oldest half when the list is full; keeps the newest sample always. */
export function pushLoss(loss: [number, number][], step: number, value: number): void {
  const last = loss[loss.length - 1];
  if (last !== undefined && last[0] === step) {
    last[1] = value;
    return;
  }
  loss.push([step, value]);
  if (loss.length > MAX_LOSS_POINTS) {
    const half = Math.floor(loss.length / 2);
    const thinned = loss.slice(0, half).filter((_, i) => i % 2 === 0);
    loss.splice(0, half, ...thinned);
  }
}

/** Folds `event` into `snapshot` (mutating it) and returns it. */
export function applyReconstructionEvent(snapshot: ReconstructionSnapshot, event: ReconstructionEvent): ReconstructionSnapshot {
  switch (event.kind) {
    case 'recon/plan':
      snapshot.plan = event.plan;
      break;
    case 'recon/progress':
      snapshot.status = 'running';
      snapshot.progress = event.progress;
      if (Number.isFinite(event.progress.loss)) pushLoss(snapshot.loss, event.progress.step, event.progress.loss);
      break;
    case 'recon/evaluation': {
      snapshot.status = snapshot.status === 'planning' ? 'running' : snapshot.status;
      snapshot.evaluation = event.evaluation;
      const detail = event.evaluation.detail;
      if (detail !== undefined) {
        snapshot.details = snapshot.details.filter((d) => d.name !== detail.name);
        snapshot.details.push(detail);
      }
      break;
    }
    case 'recon/done':
      snapshot.status = 'done';
      snapshot.report = event.report;
      snapshot.artifact = event.report.artifact;
      if (event.report.lossCurve.length > 0 && snapshot.loss.length === 0) snapshot.loss = event.report.lossCurve.map(([s, l]): [number, number] => [s, l]);
      break;
    case 'recon/ended':
      snapshot.status = event.status;
      snapshot.reason = event.reason;
      snapshot.message = event.message;
      break;
  }
  return snapshot;
}
