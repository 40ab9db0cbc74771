/**
 * Plain data (DTOs) of the spectral diagnostics: per layer, the spectrum of WᵀW and WeightWatcher's metrics on it
 * (power-law α, α-weighted, stable rank, log norms, MP soft rank). They cross from the worker to the extension host
 * and on to the webviews, and are printed by `weight-lens spectra --json`. A layer's singular values travel only when
 * asked for (the CLI's JSON); webviews get the binned ESD.
 */

/** α below this may mean an over-trained layer (WeightWatcher's OVER_TRAINED_THRESH). */
export const OVER_TRAINED_ALPHA = 2;
/** α above this may mean an under-trained layer (WeightWatcher's UNDER_TRAINED_THRESH). */
export const UNDER_TRAINED_ALPHA = 6;

/** WeightWatcher's reading of α: below 2 may be over-trained, above 6 under-trained, else undefined (also for null). */
export function alphaWarning(alpha: number | null): 'over-trained' | 'under-trained' | undefined {
  if (alpha === null) return undefined;
  if (alpha < OVER_TRAINED_ALPHA) return 'over-trained';
  if (alpha > UNDER_TRAINED_ALPHA) return 'under-trained';
  return undefined;
}

/** How a spectrum was computed: every singular value, or the largest `rank` per slice by a randomized SVD. */
export type SpectrumMethod = { kind: 'exact' } | { kind: 'randomized'; rank: number; powerIterations: number };

/** A density histogram on logarithmic bins: `density.length === edges.length - 1`, ∫ density dλ = 1 over the bins. */
export interface LogHistogramDto {
  /** Bin edges, ascending and log-spaced, in the units of the eigenvalues. */
  edges: number[];
  /** Probability density per bin: count / (total · bin width). */
  density: number[];
}

/** The spectrum and metrics of one weight matrix, or of one convolution's kh·kw slices pooled. */
export interface LayerSpectrumDto {
  /** Tensor name. */
  name: string;
  shape: number[];
  /** `dense`: a 2-D matrix; `conv`: a 4-D convolution kernel analysed as kh·kw slices of Cout × Cin. */
  kind: 'dense' | 'conv';
  /** Larger side of each matrix (slice). */
  n: number;
  /** Smaller side of each matrix (slice): singular values per slice when exact. */
  m: number;
  /** Matrices pooled into the spectrum (kh·kw for a convolution, 1 for a matrix). */
  slices: number;
  method: SpectrumMethod;
  /**
   * Factor applied to the eigenvalues of WᵀW before the metrics: ½ for convolutions (WeightWatcher's default
   * conv2d_norm scales each slice by √½), 1 for matrices. Singular values are reported unscaled.
   */
  evalScale: number;
  /** Eigenvalues in the ESD (slices · m when exact). */
  evalCount: number;
  /** Largest singular value of the unscaled matrices (the spectral norm ‖W‖₂; of the slices for a convolution). */
  sigmaMax: number;
  /** Power-law exponent of the ESD's tail (null: the fit failed, e.g. too few eigenvalues above 1e-5). */
  alpha: number | null;
  /** Eigenvalue where the fitted tail starts (scaled units); null with `alpha`. */
  xmin: number | null;
  /** Kolmogorov–Smirnov distance of the fit; null with `alpha`. */
  ks: number | null;
  /** Eigenvalues in the tail (≥ xmin); null with `alpha`. */
  tail: number | null;
  /** α · log10 λmax (WeightWatcher's alpha_weighted); null with `alpha`. */
  alphaWeighted: number | null;
  /** Σλ / λmax = ‖W‖F² / ‖W‖₂² (pooled over slices for a convolution). */
  stableRank: number;
  /** log10 λmax = log10 of the squared spectral norm (WeightWatcher's log_spectral_norm), scaled units. */
  logSpectralNorm: number;
  /** log10 Σλ = log10 of the squared Frobenius norm (WeightWatcher's log_norm), scaled units. */
  logNorm: number;
  /** Marchenko–Pastur soft rank λ₊ / λmax (0..1); null when not computed (randomized spectra) or the fit failed. */
  mpSoftRank: number | null;
  /** WeightWatcher's reading of α: below 2 may be over-trained, above 6 under-trained. */
  warning?: 'over-trained' | 'under-trained';
  /** The ESD of WᵀW (scaled units) on log bins, over eigenvalues above xmin / 100 (WeightWatcher's plot range). */
  esd: LogHistogramDto;
  /** Singular values, ascending, of all slices together (unscaled); present only when asked for. */
  singularValues?: number[];
}

/** A tensor the diagnostics skipped, and why (one sentence). */
export interface SkippedLayerDto {
  name: string;
  shape: number[];
  reason: string;
}

/** Options of a spectral analysis. */
export interface SpectraOptionsDto {
  /**
   * Largest number of singular values computed exactly per matrix: a matrix whose smaller side exceeds it gets its
   * top `maxRank` values from a randomized SVD instead (and no MP soft rank). 0: always exact.
   */
  maxRank: number;
  /** Log bins of each layer's ESD histogram. */
  bins: number;
  /** Include each layer's singular values in the report (large; the CLI's JSON only). */
  includeValues?: boolean;
  /** Analyse only the tensors with these names (absent: every 2-D matrix and 4-D convolution). */
  layers?: string[];
}

/** The spectral analysis of a checkpoint. */
export interface SpectraReportDto {
  file: string;
  format: string;
  layers: LayerSpectrumDto[];
  skipped: SkippedLayerDto[];
  options: SpectraOptionsDto;
  /** Wall time in seconds. */
  seconds: number;
  /**
   * What computed the exact decompositions of the large matrices: onnxruntime-node's GEMMs (nativeLinalg.ts) or
   * JavaScript alone (linalg.ts). Matrices with a smaller side under 192 always run in JavaScript.
   */
  engine: SpectraEngineName;
  /** Why the native engine was not used, when `engine` is 'javascript'. */
  engineReason?: string;
}

/** The engines of a spectral analysis. */
export type SpectraEngineName = 'onnxruntime' | 'javascript';

/** Progress of a spectral analysis: layer `index` (0-based) of `total`, `fraction` (0..1) of its work done. */
export interface SpectraProgressDto {
  index: number;
  total: number;
  name: string;
  fraction: number;
}

/** Original vs reconstructed spectra of one layer of an artifact, for the Reconstruction panel. */
export interface SpectraComparisonDto {
  layer: string;
  original: LayerSpectrumDto;
  reconstructed: LayerSpectrumDto;
}
