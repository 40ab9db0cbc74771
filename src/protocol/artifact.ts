/**
 * The artifact metadata schema that two layers read: the engine's codec (src/core/nern/artifact.ts) writes and
 * validates it, and the Inspector's banner (webview/lib/artifactMeta.ts) reads it. Plain types and constants only.
 */
import type { LayerErrorDto } from './compress';
import type { PointwiseLayout } from './vocabulary';

/** `__metadata__` key holding the artifact's JSON description. */
export const ARTIFACT_KEY = 'weight_lens';

/** Value of `ArtifactMetaSummary.format`. */
export const ARTIFACT_FORMAT = 'weight-lens-nern';

/** Settings of the training that produced the artifact. */
export interface ArtifactTraining {
  hidden: number;
  steps: number;
  seed: number;
  optimizer: string;
  permutation: string;
  backend: string;
  rounds: number;
  roundWidthScale: number;
  /** Round widths, first to last (the artifact holds the last round's predictor). */
  roundWidths: number[];
  batchSize: number;
  dense: boolean;
  /** How 1×1 convolutions were represented; absent in artifacts written before the choice existed ('centre'). */
  pointwise?: PointwiseLayout;
  /** Present when the run was stopped and saved before its last step (`steps` above is then the steps done). */
  stoppedEarly?: ArtifactStop;
}

/**
 * A run that was stopped and saved early (Stop and Save, or a first Ctrl-C in the CLI): the artifact holds the best
 * predictor up to `step` of the `steps` planned. Whole numbers, 1 ≤ step < steps.
 */
export interface ArtifactStop {
  step: number;
  steps: number;
}

/**
 * A predictor's reconstruction error against the original weights: RMSE and RMS of the weights over the layers
 * listed, and one row per layer (relative error = layer RMSE / layer weight RMS).
 */
export interface ArtifactErrors {
  rmse: number;
  weightRms: number;
  layers: LayerErrorDto[];
}

/** The stored report (no wall-clock figures, so the same seed and backend give a byte-identical artifact). */
export interface ArtifactReport {
  predictorParams: number;
  representedParams: number;
  verbatimParams: number;
  rmse: number;
  weightRms: number;
  layers: LayerErrorDto[];
  lossCurve: [number, number][];
}

/**
 * Settings and results of the distillation phase (Choi et al.'s phase 2), when the artifact's predictor went through
 * it after reconstruction. Metrics are on held-out data: top-1 accuracy (classifiers with labels), agreement with the
 * original model, output PSNR (non-classifiers).
 */
export interface ArtifactDistillation {
  /** The phase-2 options as given (steps, learning rate, loss weights, temperature, seed…). */
  settings: Record<string, string | number | boolean>;
  /** File names of the runnable model, training data and teacher. */
  model: string;
  data: string;
  teacher: string;
  before: Record<string, number>;
  after: Record<string, number>;
  /** The artifact the phase started from (file name). */
  from: string;
  /**
   * The distilled predictor's reconstruction error against the original weights, over the represented layers the
   * model uses (the report above stays phase 1's). Absent in artifacts written before it was recorded.
   */
  reconstruction?: ArtifactErrors;
  /** Present when distillation was stopped and saved before its last step. */
  stoppedEarly?: ArtifactStop;
}

/** Where an artifact came from: the source checkpoint's file name, format, size in bytes and SHA-256 (hex). */
export interface ArtifactSource {
  name: string;
  format: string;
  bytes: number;
  sha256: string;
}

/**
 * The plain part of the JSON under `__metadata__.weight_lens`, as the writer produces it: what the artifact is,
 * where it came from, how it was trained, its stored report, and the distillation phase when there was one. The
 * engine's full metadata type (src/core/nern/artifact.ts `ArtifactMeta`) extends it with the encoding, predictor,
 * layer map and tensor list that decoding needs.
 */
export interface ArtifactMetaSummary {
  format: typeof ARTIFACT_FORMAT;
  version: number;
  training: ArtifactTraining;
  source: ArtifactSource;
  report: ArtifactReport;
  /** Present when the predictor was distilled after reconstruction. */
  distillation?: ArtifactDistillation;
  /**
   * True for a lean artifact (`--lean`, format version 4): what decoding does not need was not stored, namely the
   * report's per-layer rows and loss curve, the distilled predictor's per-layer rows, and the reasons beside verbatim
   * tensors. Readers get those as empty lists and say that the report was not stored. Absent means all were stored.
   */
  lean?: true;
  /**
   * Added by readers, never stored: the report sidecar beside a lean artifact whose per-layer rows and loss curve
   * `report` then holds (path and bytes, not counted in the artifact's size).
   */
  reportSidecar?: ReportSidecarInfo;
  /** How float verbatim tensors are stored (format 5): f16 or int8; absent means each in its own dtype. */
  verbatimStorage?: 'f16' | 'int8';
}

/** The sentence readers show in place of a lean artifact's per-layer report and loss curve. */
export const LEAN_REPORT_NOTE =
  'Report not stored: this is a lean artifact without its per-layer report and loss curve, and no report sidecar is beside it (compress without --lean, or with --sidecar, to keep them).';

/** Value of `ArtifactReportSidecar.format`. */
export const REPORT_SIDECAR_FORMAT = 'weight-lens-nern-report';

/**
 * The JSON of a lean artifact's report sidecar, `<artifact>.report.json` (compress `--sidecar`): what the lean
 * artifact leaves out, namely the report's per-layer rows and loss curve, bound to the artifact by its checksum
 * (`weight_lens_sha256`), so a sidecar left beside a rewritten artifact is ignored.
 */
export interface ArtifactReportSidecar {
  format: typeof REPORT_SIDECAR_FORMAT;
  version: 1;
  /** The artifact's `__metadata__.weight_lens_sha256`. */
  artifactSha256: string;
  layers: LayerErrorDto[];
  lossCurve: [number, number][];
}

/** Where a reader found a lean artifact's report: the sidecar's path and size in bytes (not counted in the artifact's). */
export interface ReportSidecarInfo {
  path: string;
  bytes: number;
}
