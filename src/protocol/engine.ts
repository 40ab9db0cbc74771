/**
 * Messages between the extension host and the engine worker: the requests the host sends, the events and answers
 * the worker streams back, and the `workerData` the worker starts with. Requests carry an `id` that their events,
 * answers and failures echo. Plain types only; imports nothing heavy.
 */
import type { FailureReason } from './common';
import type { BudgetPlanDto, CompressEvaluationDto, CompressOptionsDto, CompressProgressDto, CompressReportDto, LayerDetailDto } from './compress';
import type { CheckpointHeaderDto, HistogramDto, TensorStatsDto } from './inspect';
import type { DistillEvalDto, DistillOptionsDto, DistillProgressDto, DistillReportDto, EvalOptionsDto, EvalReportDto, LayerDriftDto } from './evaluate';

/** Requests the host sends to the worker. */
export type WorkerRequest =
  | { kind: 'inspect/open'; id: number; path: string; histogramBins: number }
  | { kind: 'cancel'; id: number };

/** Events and responses the worker sends to the host. */
export type WorkerEvent =
  | { kind: 'inspect/header'; id: number; header: CheckpointHeaderDto }
  | { kind: 'inspect/tensorStats'; id: number; index: number; stats: TensorStatsDto; histogram: HistogramDto }
  | { kind: 'inspect/tensorError'; id: number; index: number; message: string }
  | { kind: 'inspect/done'; id: number; seconds: number }
  | { kind: 'failed'; id: number; reason: FailureReason; message: string }
  | { kind: 'log'; level: 'info' | 'warn' | 'error'; message: string };

/** The `weightLens.backend` setting: which tfjs backend the engine worker should use (`auto` tries them in order). */
export type BackendPreference = 'auto' | 'wasm' | 'webgpu' | 'tensorflow' | 'cpu';

/** `workerData` the extension host passes when it starts the engine worker. */
export interface WorkerInitData {
  /** Backend requested by the user; `wasm` is forced in untrusted workspaces unless `cpu` was chosen. */
  backend: BackendPreference;
}

// Compression jobs (host → worker requests and worker → host events). Types live in ./compress.

/**
 * Requests for compression work. `compress/plan` resolves a budget without training. `compress/detail` asks for the
 * original-vs-reconstructed detail of one represented layer of an artifact at output filter `filter` (absent: the
 * filter with the largest error), answered by `compress/layerDetail`; it needs the unchanged source checkpoint, at
 * `source` when given or beside the artifact.
 */
export type CompressRequest =
  | { kind: 'compress/plan'; id: number; path: string; options: CompressOptionsDto }
  | { kind: 'compress/start'; id: number; path: string; options: CompressOptionsDto }
  | { kind: 'compress/decompress'; id: number; artifact: string; out?: string }
  | { kind: 'compress/openArtifact'; id: number; artifact: string }
  | { kind: 'compress/detail'; id: number; artifact: string; layer: string; filter?: number; source?: string };

/** Events of compression work. */
export type CompressEvent =
  | { kind: 'compress/planned'; id: number; plan: BudgetPlanDto }
  | { kind: 'compress/progress'; id: number; progress: CompressProgressDto }
  | { kind: 'compress/evaluation'; id: number; evaluation: CompressEvaluationDto }
  | { kind: 'compress/done'; id: number; report: CompressReportDto }
  | { kind: 'compress/decompressed'; id: number; outputs: string[] }
  | { kind: 'compress/artifact'; id: number; report: CompressReportDto; plan: BudgetPlanDto }
  | { kind: 'compress/layerDetail'; id: number; detail: LayerDetailDto };

/**
 * Requests that run networks: `run/eval` evaluates MODEL on DATA (its own weights against `options.weights`),
 * answered by `eval/done`; `run/distill` runs the distillation phase on an artifact, streaming status, progress,
 * held-out evaluations and per-layer drift, and ends with `distill/done` once the new artifact is written.
 */
export type RunRequest =
  | { kind: 'run/eval'; id: number; model: string; data: string; options: EvalOptionsDto }
  | { kind: 'run/distill'; id: number; artifact: string; model: string; data: string; options: DistillOptionsDto };

/** Events of `RunRequest`s. */
export type RunEvent =
  | { kind: 'eval/progress'; id: number; done: number; total: number }
  | { kind: 'eval/done'; id: number; report: EvalReportDto }
  | { kind: 'distill/status'; id: number; message: string }
  | { kind: 'distill/progress'; id: number; progress: DistillProgressDto }
  | { kind: 'distill/eval'; id: number; evaluation: DistillEvalDto }
  | { kind: 'distill/drift'; id: number; drift: LayerDriftDto[] }
  | { kind: 'distill/done'; id: number; report: DistillReportDto };
