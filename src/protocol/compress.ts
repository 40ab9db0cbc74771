/**
 * Plain data for compression with a neural representation: the options a user picks, the progress a running job
 * streams, and the final report (also what `weight-lens compress --json` prints). No weight arrays cross here except
 * small summaries (histograms, one filter's kernels for heatmaps).
 */
import type { HistogramDto } from './inspect';
import type { ArtifactStop, ReportSidecarInfo } from './artifact';

import type {
  BackendName,
  CompressMethod,
  PermutationKind,
  PointwiseLayout,
  PredictorDtype,
  RecipeName,
  VerbatimDtype,
} from './vocabulary';

export type {
  BackendName,
  CompressMethod,
  PermutationKind,
  PointwiseLayout,
  PredictorDtype,
  RecipeName,
  VerbatimDtype,
} from './vocabulary';

/** What is represented by the predictor for each layer kind; everything else is stored verbatim. */
export interface RepresentPolicy {
  /** 3×3 and 1×1 convolutions (NeRN's scope). Default true. */
  conv: boolean;
  /** Dense / transformer weight matrices (and convs of other kernel sizes), tiled into blocks. Default false. */
  dense: boolean;
  /** How represented 1×1 convolutions map onto the predictor's outputs; absent: `DEFAULT_POINTWISE` ('blocks'). */
  pointwise?: PointwiseLayout;
}

/** The size budget: a predictor width, or a target size that is turned into a width before training. */
export type BudgetDto =
  | { kind: 'hidden'; hidden: number }
  /** Predictor parameters as a fraction of the represented weights, e.g. 0.5. */
  | { kind: 'fraction'; fraction: number }
  /** Artifact size in bytes (predictor + verbatim tensors + metadata). */
  | { kind: 'bytes'; bytes: number };

/** Everything a compression job needs besides the source path. */
export interface CompressOptionsDto {
  budget: BudgetDto;
  steps: number;
  permutation: PermutationKind;
  seed: number;
  represent: RepresentPolicy;
  backend: BackendName;
  /** Repeated (progressive) reconstruction rounds; 1 = plain reconstruction. */
  rounds: number;
  /** Per-round width multiplier for progressive rounds (≤ 1). */
  roundWidthScale: number;
  /** Training recipe; default `weight-lens`. */
  recipe?: RecipeName;
  /** Compression method; default `nern` (the baselines: int8, int4, lowrank, prune). */
  method?: CompressMethod;
  /** How the predictor's weights are stored; default f32. */
  predictorDtype?: PredictorDtype;
  /**
   * How the float tensors kept verbatim (biases, normalisation, unrepresented layers) are stored (NeRN only): f32 in
   * their own dtype (default), f16, or int8 codes with one float32 scale per row along the first axis (one per
   * tensor for vectors); decoding widens them back to their original dtype.
   */
  verbatimDtype?: VerbatimDtype;
  /**
   * Quantisation-aware reconstruction: the last N training steps (of the last round) run on the predictor
   * fake-quantised to `predictorDtype` (int8 or int4 only), with straight-through gradients; default 0.
   */
  qatSteps?: number;
  /**
   * Write a lean artifact (NeRN only): without the per-layer report, loss curve and verbatim reasons, which decoding
   * does not need (`ArtifactMetaSummary.lean`). Default false.
   */
  lean?: boolean;
  /**
   * Write the per-layer report and loss curve that a lean artifact leaves out to `<artifact>.report.json` beside it
   * (NeRN only; implies `lean`), atomically with the artifact: both appear or neither. Default false.
   */
  sidecar?: boolean;
  /** Output artifact path; default `<source stem>.nern.safetensors` beside the source. */
  out?: string;
}

/** The predictor size a budget resolves to, shown before training starts. */
export interface BudgetPlanDto {
  hidden: number;
  predictorParams: number;
  representedParams: number;
  verbatimParams: number;
  /** predictorParams / representedParams. */
  fractionOfRepresented: number;
  /** Estimated artifact bytes (an upper bound for a plan made before training; `bytes.total` when present). */
  artifactBytes: number;
  sourceBytes: number;
  /** The planned artifact's bytes by component, at the stored predictor dtype (plans made before training). */
  bytes?: ArtifactBytesDto;
  /** The predictor dtype the plan's bytes are for (absent: f32). */
  predictorDtype?: PredictorDtype;
  /** The verbatim dtype the plan's bytes are for (absent: f32). */
  verbatimDtype?: VerbatimDtype;
  /** Tensors represented by the predictor, with their share; the rest are verbatim. */
  represented: { name: string; shape: number[]; params: number }[];
  verbatim: { name: string; shape: number[]; params: number; reason: string }[];
}

/**
 * A NeRN artifact's bytes by component: predictor tensors at their stored dtype (with int scales and F32 biases),
 * packed permutations, output scales, verbatim tensors, and metadata (8-byte prefix + safetensors header with the
 * `weight_lens` JSON); `total` is their sum, the file size.
 */
export interface ArtifactBytesDto {
  predictor: number;
  permutations: number;
  scales: number;
  verbatim: number;
  metadata: number;
  total: number;
}

/** Per-layer reconstruction error. */
export interface LayerErrorDto {
  name: string;
  shape: number[];
  params: number;
  /** Root-mean-square error of the reconstructed weights. */
  rmse: number;
  /** ‖W − Ŵ‖ / ‖W‖. */
  relativeError: number;
}

/** Progress of a running compression, streamed every few steps. */
export interface CompressProgressDto {
  step: number;
  steps: number;
  round: number;
  loss: number;
  lr: number;
  stepsPerSecond: number;
  backend: string;
  /** Why the engine or device asked for is not the one in `backend` (e.g. no GPU passed its self-check). */
  engineReason?: string;
}

/** A periodic full evaluation: per-layer errors plus histograms and one filter for the panels. */
export interface CompressEvaluationDto {
  step: number;
  rmse: number;
  weightRms: number;
  layers: LayerErrorDto[];
  /** For the selected (or worst) layer: original and reconstructed histograms over the same edges. */
  detail?: LayerDetailDto;
}

/** Original vs reconstructed summaries of one layer, for histograms and kernel heatmaps. */
export interface LayerDetailDto {
  name: string;
  original: HistogramDto;
  reconstructed: HistogramDto;
  /**
   * One output filter: `[inChannels][kh*kw]` values, original and reconstructed (small: ≤ 64×9 values). `count` is
   * the layer's number of filters (valid indices 0…count−1; for tiled matrices, 3-row blocks); details from an engine
   * that predates it lack it.
   */
  filter: { index: number; count?: number; kh: number; kw: number; original: number[][]; reconstructed: number[][] };
}

/** The final report (also printed by `weight-lens compress --json`). */
export interface CompressReportDto {
  source: string;
  artifact: string;
  predictorParams: number;
  representedParams: number;
  verbatimParams: number;
  /** sourceBytes / artifactBytes. */
  ratio: number;
  artifactBytes: number;
  sourceBytes: number;
  steps: number;
  seconds: number;
  /** The engine that trained the predictor; for a baseline (`method` set), the method's name. */
  backend: string;
  /** Why the engine or device asked for is not the one in `backend`; absent when it is. */
  engineReason?: string;
  /**
   * Set for a baseline artifact (int8, int4, low rank, pruning): nothing was trained, so `steps`, `hidden` and
   * `predictorParams` are 0 and `lossCurve` is empty. Absent for NeRN.
   */
  method?: Exclude<CompressMethod, 'nern'>;
  hidden: number;
  permutation: PermutationKind;
  /** RMSE over all represented weights. */
  rmse: number;
  /**
   * Relative error over all represented weights, ‖W − Ŵ‖ / ‖W‖ (0 = exact): the headline figure, since an RMSE alone
   * says nothing without the weights' own scale.
   */
  relativeError: number;
  layers: LayerErrorDto[];
  /** Loss curve samples `[step, loss]`, at most ~500. */
  lossCurve: [number, number][];
  /** Present when the run was stopped and saved early (Stop and Save): `steps` above is then the steps done. */
  stoppedEarly?: ArtifactStop;
  /**
   * True when the report was reopened from a lean artifact: `layers` and `lossCurve` are then empty because they were
   * not stored (a run's own report still has them).
   */
  lean?: true;
  /**
   * The report sidecar the layers and loss curve came from (a lean artifact written with `sidecar`, or reopened with
   * one beside it): its path and bytes, which `artifactBytes` does not count.
   */
  sidecar?: ReportSidecarInfo;
  /**
   * Present when the artifact's predictor was distilled after reconstruction: `rmse`, `relativeError` and `layers`
   * above are then the distilled predictor's errors against the original weights, and this holds phase 1's and what
   * the distillation did.
   */
  distillation?: DistilledPhasesDto;
}

/** Both phases of a distilled artifact, as its Reconstruction panel shows them. */
export interface DistilledPhasesDto {
  /** Phase 1 (reconstruction): its steps and its errors against the original weights. */
  phase1: { steps: number; rmse: number; relativeError: number; layers: LayerErrorDto[] };
  /** Phase 2: steps done, the artifact it started from, and the held-out metrics before and after (flat numbers). */
  steps: number;
  from: string;
  before: Record<string, number>;
  after: Record<string, number>;
  /** Present when distillation was stopped and saved early. */
  stoppedEarly?: ArtifactStop;
}
