/**
 * The host ↔ engine worker channel, typed by one call map: `EngineCalls` says, for every request kind, the params the
 * host sends, the events the worker may stream while it works, and the answer that completes it. The host's
 * `EngineClient.call` and the worker's handler table are both typed from this map, so a request sent with the wrong
 * params, an event handler for another request's events, or an answer of the wrong shape is a type error.
 *
 * On the wire, the host posts `{kind, id, params}` (or `{kind: 'cancel', id}`); the worker replies with any number
 * of `{kind: 'event', id, event}`, then exactly one `{kind: 'answer', id, answer}` or `{kind: 'failed', id, …}`, and
 * may post `log` lines at any time. Event kinds name their stream (`inspect/…`, `compress/…`, `eval/…`,
 * `distill/…`, `spectra/…`, `diff/…`) and keep that name up to the webviews. Plain types only; imports nothing heavy.
 */
import type { FailureReason } from './common';
import type { BackendName } from './vocabulary';
import type {
  BudgetPlanDto,
  CompressEvaluationDto,
  CompressOptionsDto,
  CompressProgressDto,
  CompressReportDto,
  LayerDetailDto,
} from './compress';
import type {
  DistillEvalDto,
  DistillOptionsDto,
  DistillProgressDto,
  DistillReportDto,
  EvalOptionsDto,
  EvalReportDto,
  LayerDriftDto,
} from './evaluate';
import type { DeltaHistogramDto, DiffProgressDto, DiffRequestOptionsDto } from './compare';
import type { DiffReportDto } from './diff';
import type { CheckpointHeaderDto, HistogramDto, TensorStatsDto } from './inspect';
import type { SweepProgressDto, SweepReportDto, SweepRequestDto, SweepRowDto } from './sweep';
import type {
  LayerSpectrumDto,
  SkippedLayerDto,
  SpectraComparisonDto,
  SpectraOptionsDto,
  SpectraProgressDto,
  SpectraReportDto,
} from './spectra';
import type {
  ConvertProgressDto,
  ConvertReportDto,
  NetronAttachmentOptionsDto,
  NetronAttachmentProgressDto,
  NetronAttachmentReportDto,
} from './convert';

/** Events of an inspection: the header first, then one statistics result (or error) per tensor, in any order. */
export type InspectEvent =
  | { kind: 'inspect/header'; header: CheckpointHeaderDto }
  | { kind: 'inspect/tensorStats'; index: number; stats: TensorStatsDto; histogram: HistogramDto }
  | { kind: 'inspect/tensorError'; index: number; message: string };

/** Events of a compression: the resolved plan once, then training progress and periodic per-layer evaluations. */
export type CompressEvent =
  | { kind: 'compress/planned'; plan: BudgetPlanDto }
  | { kind: 'compress/progress'; progress: CompressProgressDto }
  | { kind: 'compress/evaluation'; evaluation: CompressEvaluationDto }
  /** While every grid row is predicted (an evaluation, the final reconstruction): rows done of the total. */
  | { kind: 'compress/reconstructing'; done: number; total: number };

/**
 * Events of an evaluation: samples evaluated so far of `total` (throttled by the worker), with the engine running
 * the model (`onnxruntime (native, 2 threads)`, `tfjs (wasm)`) and, on TensorFlow.js, why.
 */
export type EvalEvent = { kind: 'eval/progress'; done: number; total: number; engine?: string; engineReason?: string };

/** Events of a distillation: status sentences, per-step losses, held-out evaluations and per-layer drift. */
export type DistillEvent =
  | { kind: 'distill/status'; message: string }
  | { kind: 'distill/progress'; progress: DistillProgressDto }
  | { kind: 'distill/eval'; evaluation: DistillEvalDto }
  | { kind: 'distill/drift'; drift: LayerDriftDto[] };

/** Events of a method sweep: progress of the current run, and each row once its artifact is scored. */
export type SweepEvent =
  { kind: 'sweep/progress'; progress: SweepProgressDto } | { kind: 'sweep/row'; row: SweepRowDto };

/**
 * Events of a spectral analysis: the layers to analyse and those skipped, once; throttled progress within a layer;
 * each layer's spectrum as it completes.
 */
export type SpectraEvent =
  | { kind: 'spectra/planned'; layers: string[]; skipped: SkippedLayerDto[] }
  | { kind: 'spectra/progress'; progress: SpectraProgressDto }
  | { kind: 'spectra/layer'; index: number; layer: LayerSpectrumDto };

/** Events of a conversion: before each tensor is written, its index of the total. */
export type ConvertEvent = { kind: 'convert/progress'; progress: ConvertProgressDto };

/** Events of a Netron attachment export: as each tensor's statistics, then each layer's spectrum, completes. */
export type AttachmentEvent = { kind: 'convert/attachmentProgress'; progress: NetronAttachmentProgressDto };

/** Events of a weight comparison: before each pair's values are compared, its index (done so far), the total and A's name. */
export type DiffEvent = { kind: 'diff/progress'; progress: DiffProgressDto };

/**
 * Every engine request: kind → `params` (what the host sends), `events` (what the worker may stream; `never`: none)
 * and `answer` (what completes the request).
 * - `inspect/open`: header and statistics of the checkpoint at `path`, histograms with `histogramBins` bins; the
 *   answer is the wall time in seconds.
 * - `compress/plan`: resolves a budget to a predictor width and size without training.
 * - `compress/start`: trains a predictor and writes the artifact (`options.out`); the answer is the report.
 * - `compress/decompress`: writes the checkpoint an artifact decodes to (at `out`, or beside it); answers the paths.
 * - `compress/openArtifact`: an artifact's report and plan, read from its metadata.
 * - `compress/detail`: original vs reconstructed detail of layer `layer` at output filter `filter` (absent: the
 *   filter with the largest error); needs the unchanged source checkpoint, at `source` when given or beside the
 *   artifact.
 * - `eval/start`: evaluates MODEL on DATA with its own weights against `options.weights`.
 * - `distill/start`: runs the distillation phase on an artifact; answers once the new artifact is written.
 * - `sweep/start`: compresses a checkpoint with several methods at several sizes and scores each artifact.
 * - `spectra/start`: spectral diagnostics of every matrix and convolution of the checkpoint at `path`.
 * - `spectra/artifactLayer`: original vs reconstructed spectra of represented layer `layer` of an artifact (the
 *   source checkpoint as for `compress/detail`).
 * - `convert/start`: writes every tensor of the checkpoint at `path` to `out` (`.safetensors` or `.npz`),
 *   atomically, never over `path` (src/core/jobs/convert.ts).
 * - `convert/attachment`: writes the Netron attachment of the checkpoint at `path` (src/core/jobs/netronAttachment.ts).
 * - `diff/start`: compares the weights of checkpoints `a` and `b` (any two formats) tensor by tensor; answers the
 *   report, rows worst first.
 * - `diff/histogram`: the histogram of Δ = B − A of tensor `tensorA` of `a` and `tensorB` of `b` (equal shapes) in
 *   `bins` bins, streamed with bounded memory.
 */
export interface EngineCalls {
  'inspect/open': {
    params: { path: string; histogramBins: number };
    events: InspectEvent;
    answer: { seconds: number };
  };
  'compress/plan': {
    params: { path: string; options: CompressOptionsDto };
    events: never;
    answer: BudgetPlanDto;
  };
  'compress/start': {
    params: { path: string; options: CompressOptionsDto };
    events: CompressEvent;
    answer: CompressReportDto;
  };
  'compress/decompress': {
    params: { artifact: string; out?: string };
    events: never;
    /** The written paths; for a NeRN artifact, the engine that predicted its kernels and why not a faster one. */
    answer: { outputs: string[]; engine?: string; engineReason?: string };
  };
  'compress/openArtifact': {
    params: { artifact: string };
    events: never;
    answer: { report: CompressReportDto; plan: BudgetPlanDto };
  };
  'compress/detail': {
    params: { artifact: string; layer: string; filter?: number; source?: string };
    events: never;
    answer: LayerDetailDto;
  };
  'eval/start': {
    params: { model: string; data: string; options: EvalOptionsDto };
    events: EvalEvent;
    answer: EvalReportDto;
  };
  'distill/start': {
    params: { artifact: string; model: string; data: string; options: DistillOptionsDto };
    events: DistillEvent;
    answer: DistillReportDto;
  };
  'sweep/start': {
    params: SweepRequestDto;
    events: SweepEvent;
    answer: SweepReportDto;
  };
  'spectra/start': {
    params: { path: string; options: SpectraOptionsDto };
    events: SpectraEvent;
    answer: SpectraReportDto;
  };
  'spectra/artifactLayer': {
    params: { artifact: string; layer: string; options: SpectraOptionsDto; source?: string };
    events: never;
    answer: SpectraComparisonDto;
  };
  'convert/start': {
    params: { path: string; out: string; skipUndecoded?: boolean };
    events: ConvertEvent;
    answer: ConvertReportDto;
  };
  'convert/attachment': {
    params: { path: string; options: NetronAttachmentOptionsDto };
    events: AttachmentEvent;
    answer: NetronAttachmentReportDto;
  };
  'diff/start': {
    params: { a: string; b: string; options: DiffRequestOptionsDto };
    events: DiffEvent;
    answer: DiffReportDto;
  };
  'diff/histogram': {
    params: { a: string; b: string; tensorA: string; tensorB: string; bins: number };
    events: never;
    answer: DeltaHistogramDto;
  };
}

/** The kind of an engine request. */
export type EngineCallKind = keyof EngineCalls;

/** What the host sends with a request of kind `K`. */
export type EngineParams<K extends EngineCallKind> = EngineCalls[K]['params'];

/** An event a request of kind `K` may stream (default: of any request). */
export type EngineEvent<K extends EngineCallKind = EngineCallKind> = EngineCalls[K]['events'];

/** What completes a request of kind `K`. */
export type EngineAnswer<K extends EngineCallKind> = EngineCalls[K]['answer'];

/** The request message of kind `K` (default: any), as posted to the worker; `id` is unique per host. */
export type EngineRequest<K extends EngineCallKind = EngineCallKind> = {
  [P in K]: { kind: P; id: number; params: EngineParams<P> };
}[K];

/**
 * Host → worker: a request; `cancel` for the request `id` (the worker aborts it and fails it as `cancelled`); or
 * `stop` for the request `id` (Stop and Save: a compression or distillation ends training early, writes what it has
 * and answers as usual; other requests ignore it).
 */
export type EngineInbound = EngineRequest | { kind: 'cancel'; id: number } | { kind: 'stop'; id: number };

/** Severity of a worker `log` line. */
export type EngineLogLevel = 'info' | 'warn' | 'error';

/**
 * Worker → host: an event of request `id`, its answer, its failure (one of the last two ends it), or a log line
 * that belongs to no request.
 */
export type EngineOutbound =
  | { kind: 'event'; id: number; event: EngineEvent }
  | { kind: 'answer'; id: number; answer: EngineAnswer<EngineCallKind> }
  | { kind: 'failed'; id: number; reason: FailureReason; message: string }
  | { kind: 'log'; level: EngineLogLevel; message: string };

/** The `weightLens.backend` setting: which tfjs backend the engine worker should use (`auto` tries them in order). */
export type BackendPreference = BackendName;

/** `workerData` the extension host passes when it starts the engine worker. */
export interface WorkerInitData {
  /** Backend requested by the user; `wasm` is forced in untrusted workspaces unless `cpu` was chosen. */
  backend: BackendPreference;
}
