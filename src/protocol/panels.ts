/**
 * Messages between the extension host and the panels that follow engine jobs (Reconstruction, Budget, Distillation),
 * and the state both sides keep for a Reconstruction or Distillation panel: a snapshot that streamed events are
 * folded into by `applyReconstructionEvent` / `applyDistillationEvent`. The host keeps it to re-send to a reloaded
 * webview; the webview keeps the same shape. Plain data and pure functions only: summaries, never weight arrays.
 *
 * A stream keeps its engine name up to the webview: the events the worker streams for `compress/start`,
 * `eval/start` and `distill/start` are forwarded unchanged (`compress/progress`, `eval/progress`, `distill/eval`…),
 * the answer arrives as `<stream>/done` and a failure or cancellation as `<stream>/ended`. A panel's own messages
 * (ready, snapshot, commands, detail requests) carry the panel's name (`recon/`, `distillation/`, `budget/`).
 */
import type { SpectraComparisonDto } from './spectra';
import type {
  BudgetPlanDto,
  CompressEvaluationDto,
  CompressProgressDto,
  CompressReportDto,
  LayerDetailDto,
  PermutationKind,
} from './compress';
import type {
  DistillEvalDto,
  DistillOptionsDto,
  DistillProgressDto,
  DistillReportDto,
  EvalReportDto,
  LayerDriftDto,
} from './evaluate';
import { PANEL_LOSS_POINTS } from './defaults';
import type { FailureReason } from './vocabulary';
import type { CompressEvent, DistillEvent, EvalEvent } from './engine';
import type { SweepProgressDto, SweepReportDto, SweepRowDto } from './sweep';

/** Where a compression shown in a Reconstruction panel stands. */
export type ReconstructionStatus = 'planning' | 'running' | 'done' | 'failed' | 'cancelled';

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
  /** While every grid row is being predicted after (or between) training steps: rows done of the total. */
  reconstructing?: { done: number; total: number };
  /** Loss samples `[step, loss]` in step order, at most `PANEL_LOSS_POINTS`. */
  loss: [number, number][];
  /** Latest evaluation (per-layer errors). */
  evaluation?: CompressEvaluationDto;
  /** The latest detail received for each layer (by layer name), most recent last. */
  details: LayerDetailDto[];
  /** The final report, once done (or when opened from an artifact). */
  report?: CompressReportDto;
  /** The latest "Evaluate…" run on the artifact with a runnable model, if any. */
  modelEval?: ModelEvalState;
}

/** Where an "Evaluate…" run (the artifact's weights in a runnable model, against the model's own) stands. */
export type ModelEvalStatus = 'running' | 'done' | 'failed' | 'cancelled';

/** What the Reconstruction panel shows of an "Evaluate…" run. */
export interface ModelEvalState {
  status: ModelEvalStatus;
  /** Runnable model (ONNX or TF.js) and dataset paths. */
  model: string;
  data: string;
  /** Samples evaluated so far and in all (from `eval/progress`). */
  done?: number;
  total?: number;
  /** The engine's report (original accuracy, the artifact's metrics, the confusion matrix), once done. */
  report?: EvalReportDto;
  /** Why it failed or was cancelled (one sentence). */
  message?: string;
}

/** How a run that did not finish ended (the fields of a panel's `…/ended` event). */
export interface RunEnd {
  status: 'failed' | 'cancelled';
  reason: FailureReason;
  /** Why, in one sentence. */
  message: string;
}

/**
 * Events folded into a snapshot (the host forwards these to the webview as they arrive): the compression's stream,
 * answer and end, and those of an "Evaluate…" run (`eval/started` when the host starts one).
 */
export type ReconstructionEvent =
  | CompressEvent
  | { kind: 'compress/done'; report: CompressReportDto }
  | ({ kind: 'compress/ended' } & RunEnd)
  | { kind: 'eval/started'; model: string; data: string }
  | EvalEvent
  | { kind: 'eval/done'; report: EvalReportDto }
  | ({ kind: 'eval/ended' } & RunEnd);

/**
 * The answer to a webview's `recon/detail` request (not folded into the snapshot; the webview caches it by layer and
 * filter): the detail, or why it could not be made (e.g. the source checkpoint is not beside the artifact).
 * `filter` echoes the request (absent: the engine picked the worst filter; the detail says which). Likewise the answer
 * to `recon/spectra`: the layer's original and reconstructed spectra, or why not.
 */
export type ReconstructionDetailAnswer =
  | { kind: 'recon/layerDetail'; layer: string; filter?: number; detail: LayerDetailDto }
  | { kind: 'recon/layerDetailFailed'; layer: string; filter?: number; message: string }
  | { kind: 'recon/layerSpectra'; layer: string; spectra: SpectraComparisonDto }
  | { kind: 'recon/layerSpectraFailed'; layer: string; message: string };

/** Host → Reconstruction webview: a whole snapshot (on load and when a run restarts), one event, or a detail answer. */
export type ReconstructionInbound =
  { kind: 'recon/snapshot'; snapshot: ReconstructionSnapshot } | ReconstructionEvent | ReconstructionDetailAnswer;

/**
 * Commands the Reconstruction webview may ask for. `evaluate` runs the artifact in a runnable model (the host asks
 * for the model and data); `cancelEvaluate` stops that run; `cancel` stops the compression.
 */
export type ReconstructionCommand =
  'showBudget' | 'revealArtifact' | 'cancel' | 'stopAndSave' | 'decompress' | 'evaluate' | 'cancelEvaluate';

/**
 * Reconstruction webview → host. `recon/detail` asks for layer `layer` at output filter `filter` (absent: the filter
 * with the largest error) from the written artifact; only sent once the artifact exists (the run is done).
 * `recon/spectra` asks, likewise, for the original and reconstructed spectra of layer `layer`.
 */
export type ReconstructionOutbound =
  | { kind: 'recon/ready' }
  | { kind: 'recon/command'; command: ReconstructionCommand }
  | { kind: 'recon/detail'; layer: string; filter?: number }
  | { kind: 'recon/spectra'; layer: string };

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

/**
 * A method comparison on one source (the Budget panel's Compare methods…): the rows scored so far, the run in
 * progress, and the final table once the sweep is done (or why it stopped).
 */
export interface MethodComparisonDto {
  rows: SweepRowDto[];
  progress?: SweepProgressDto;
  report?: SweepReportDto;
  /** Set when the sweep failed or was cancelled: one sentence with the runs finished (`Stopped after 2 of 5 runs.`). */
  stopped?: string;
}

/** What the Budget panel shows for one source checkpoint. */
export interface BudgetViewDto {
  source: string;
  /** The plan of the latest (or chosen) budget, if known. */
  plan?: BudgetPlanDto;
  /** Runs done on this source, oldest first. */
  runs: RunSummaryDto[];
  /** The latest method comparison on this source, if one was started. */
  comparison?: MethodComparisonDto;
}

/** Host → Budget webview. */
export type BudgetInbound = { kind: 'budget/show'; view: BudgetViewDto };

/**
 * Budget webview → host: ready, forget the runs, compare methods (the host asks for the model, data, methods and
 * sizes, then runs the sweep), cancel the comparison, or open an artifact of the comparison.
 */
export type BudgetOutbound =
  | { kind: 'budget/ready' }
  | { kind: 'budget/clearRuns'; source: string }
  | { kind: 'budget/compare'; source: string }
  | { kind: 'budget/cancelCompare'; source: string }
  | { kind: 'budget/openArtifact'; artifact: string };

/** An empty snapshot for a run on `source` that has not started training yet. */
export function emptySnapshot(source: string, artifact?: string): ReconstructionSnapshot {
  const snapshot: ReconstructionSnapshot = { source, status: 'planning', loss: [], details: [] };
  if (artifact !== undefined) snapshot.artifact = artifact;
  return snapshot;
}

/**
 * Appends `item` to `list`, which is in step order: an item at the step of the last one replaces it. When the list
 * grows past `max`, its oldest half is thinned to every other item (so the first item, the newest half and the order
 * are always kept).
 */
function pushThinned<T>(list: T[], item: T, stepOf: (t: T) => number, max: number): void {
  const last = list[list.length - 1];
  if (last !== undefined && stepOf(last) === stepOf(item)) {
    list[list.length - 1] = item;
    return;
  }
  list.push(item);
  if (list.length > max) {
    const half = Math.floor(list.length / 2);
    const thinned = list.slice(0, half).filter((_, i) => i % 2 === 0);
    list.splice(0, half, ...thinned);
  }
}

/** Appends a loss sample, thinning the oldest half when the list is full; keeps the newest sample always. */
export function pushLoss(loss: [number, number][], step: number, value: number): void {
  pushThinned<[number, number]>(loss, [step, value], (sample) => sample[0], PANEL_LOSS_POINTS);
}

/** Folds `event` into `snapshot` (mutating it) and returns it. */
export function applyReconstructionEvent(
  snapshot: ReconstructionSnapshot,
  event: ReconstructionEvent,
): ReconstructionSnapshot {
  switch (event.kind) {
    case 'compress/planned':
      snapshot.plan = event.plan;
      break;
    case 'compress/progress':
      snapshot.status = 'running';
      snapshot.progress = event.progress;
      delete snapshot.reconstructing;
      if (Number.isFinite(event.progress.loss)) pushLoss(snapshot.loss, event.progress.step, event.progress.loss);
      break;
    case 'compress/reconstructing':
      snapshot.reconstructing = { done: event.done, total: event.total };
      break;
    case 'compress/evaluation': {
      snapshot.status = snapshot.status === 'planning' ? 'running' : snapshot.status;
      snapshot.evaluation = event.evaluation;
      const detail = event.evaluation.detail;
      if (detail !== undefined) {
        snapshot.details = snapshot.details.filter((d) => d.name !== detail.name);
        snapshot.details.push(detail);
      }
      break;
    }
    case 'compress/done':
      snapshot.status = 'done';
      delete snapshot.reconstructing;
      snapshot.report = event.report;
      snapshot.artifact = event.report.artifact;
      if (event.report.lossCurve.length > 0 && snapshot.loss.length === 0)
        snapshot.loss = event.report.lossCurve.map(([s, l]): [number, number] => [s, l]);
      break;
    case 'compress/ended':
      snapshot.status = event.status;
      snapshot.reason = event.reason;
      snapshot.message = event.message;
      break;
    case 'eval/started':
      snapshot.modelEval = { status: 'running', model: event.model, data: event.data };
      break;
    case 'eval/progress':
      if (snapshot.modelEval?.status === 'running') {
        snapshot.modelEval.done = event.done;
        snapshot.modelEval.total = event.total;
      }
      break;
    case 'eval/done':
      snapshot.modelEval = {
        ...(snapshot.modelEval ?? { model: event.report.model, data: event.report.data }),
        status: 'done',
        report: event.report,
        done: event.report.candidate.n,
        total: event.report.candidate.n,
      };
      delete snapshot.modelEval.message;
      break;
    case 'eval/ended':
      if (snapshot.modelEval !== undefined) {
        snapshot.modelEval.status = event.status;
        snapshot.modelEval.message = event.message;
      }
      break;
  }
  return snapshot;
}

// ---------------------------------------------------------------------------------------------------------------
// Distillation panel

/** Where a distillation shown in a Distillation panel stands. */
export type DistillationStatus = 'starting' | 'running' | 'done' | 'failed' | 'cancelled';

/** Most held-out evaluations a snapshot keeps; older ones are thinned (every other one dropped) when it fills. */
export const MAX_EVAL_POINTS = 500;

/** Everything a Distillation panel shows. */
export interface DistillationSnapshot {
  /** The phase-1 artifact being distilled. */
  artifact: string;
  /** Runnable model, training data and teacher (the model itself when absent). */
  model: string;
  data: string;
  teacher?: string;
  /** The artifact the run writes (known before it starts). */
  out: string;
  /** The options the run was started with. */
  options?: DistillOptionsDto;
  status: DistillationStatus;
  /** The engine's latest status sentence ("Loading the model…"). */
  phase?: string;
  /** Why the run failed or was cancelled (one sentence), if so. */
  message?: string;
  reason?: FailureReason;
  /** Latest step's losses. */
  progress?: DistillProgressDto;
  /** Total loss `[step, loss]` in step order, at most `PANEL_LOSS_POINTS`. */
  loss: [number, number][];
  /** KL term `[step, kl]` in step order, at most `PANEL_LOSS_POINTS`. */
  kl: [number, number][];
  /** Held-out evaluations in step order (the first, at step 0, is the phase-1 reconstruction), at most `MAX_EVAL_POINTS`. */
  evals: DistillEvalDto[];
  /** Latest per-layer drift from the phase-1 reconstruction. */
  drift: LayerDriftDto[];
  /** The final report, once done. */
  report?: DistillReportDto;
}

/** Events folded into a Distillation snapshot (the host forwards these to the webview as they arrive). */
export type DistillationEvent =
  DistillEvent | { kind: 'distill/done'; report: DistillReportDto } | ({ kind: 'distill/ended' } & RunEnd);

/** Host → Distillation webview: the whole snapshot (on load and when a run restarts) or one event. */
export type DistillationInbound = { kind: 'distillation/snapshot'; snapshot: DistillationSnapshot } | DistillationEvent;

/** Commands the Distillation webview may ask for: stop the run, reveal the written artifact, open it in a Reconstruction panel. */
export type DistillationCommand = 'cancel' | 'stopAndSave' | 'revealArtifact' | 'openReconstruction';

/** Distillation webview → host. */
export type DistillationOutbound =
  { kind: 'distillation/ready' } | { kind: 'distillation/command'; command: DistillationCommand };

/** The snapshot of a run that has not reported anything yet. */
export function emptyDistillationSnapshot(run: {
  artifact: string;
  model: string;
  data: string;
  out: string;
  teacher?: string;
  options?: DistillOptionsDto;
}): DistillationSnapshot {
  const snapshot: DistillationSnapshot = {
    artifact: run.artifact,
    model: run.model,
    data: run.data,
    out: run.out,
    status: 'starting',
    loss: [],
    kl: [],
    evals: [],
    drift: [],
  };
  if (run.teacher !== undefined) snapshot.teacher = run.teacher;
  if (run.options !== undefined) snapshot.options = run.options;
  return snapshot;
}

/**
 * Appends a held-out evaluation in step order (replacing one at the same step), thinning the oldest half when full.
 * The first (phase 1) evaluation, the "before" of the run, is always kept.
 */
export function pushEval(evals: DistillEvalDto[], evaluation: DistillEvalDto): void {
  pushThinned(evals, evaluation, (e) => e.step, MAX_EVAL_POINTS);
}

/** Folds `event` into `snapshot` (mutating it) and returns it. Events after the run ended are ignored. */
export function applyDistillationEvent(snapshot: DistillationSnapshot, event: DistillationEvent): DistillationSnapshot {
  const ended = snapshot.status === 'done' || snapshot.status === 'failed' || snapshot.status === 'cancelled';
  if (ended) return snapshot;
  switch (event.kind) {
    case 'distill/status':
      snapshot.phase = event.message;
      break;
    case 'distill/progress': {
      const p = event.progress;
      snapshot.status = 'running';
      snapshot.progress = p;
      if (Number.isFinite(p.loss)) pushLoss(snapshot.loss, p.step, p.loss);
      if (Number.isFinite(p.kl)) pushLoss(snapshot.kl, p.step, p.kl);
      break;
    }
    case 'distill/eval':
      pushEval(snapshot.evals, event.evaluation);
      break;
    case 'distill/drift':
      snapshot.drift = event.drift;
      break;
    case 'distill/done': {
      const r = event.report;
      snapshot.status = 'done';
      snapshot.report = r;
      snapshot.out = r.out;
      snapshot.options = r.options;
      if (r.drift.length > 0) snapshot.drift = r.drift;
      if (snapshot.loss.length === 0) snapshot.loss = r.lossCurve.map(([s, l]): [number, number] => [s, l]);
      // The final held-out metrics close the curve at the last step.
      const lastStep = r.options.steps;
      if (snapshot.evals.length === 0) pushEval(snapshot.evals, { step: 0, metrics: r.before });
      if ((snapshot.evals[snapshot.evals.length - 1]?.step ?? -1) < lastStep)
        pushEval(snapshot.evals, { step: lastStep, metrics: r.after });
      delete snapshot.phase;
      break;
    }
    case 'distill/ended':
      snapshot.status = event.status;
      snapshot.reason = event.reason;
      snapshot.message = event.message;
      break;
  }
  return snapshot;
}
