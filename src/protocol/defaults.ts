/**
 * The defaults every layer shares, as plain data: compression and distillation options (with where each distillation
 * default comes from), histogram bins and loss-curve lengths. The engine, the CLI's help, the extension's settings
 * and quick picks, and the webviews read them here; package.json's `contributes.configuration` defaults are checked
 * against them by a test. Imports nothing but types.
 */
import type { CompressOptionsDto } from './compress';
import type { DistillOptionsDto } from './evaluate';
import type { SpectraOptionsDto } from './spectra';
import type { PointwiseLayout } from './vocabulary';

/**
 * How 1×1 convolutions are represented unless the user says otherwise: as 3×3 blocks of their C_out × C_in matrix,
 * nine weights per grid row (see `POINTWISE_LAYOUTS`; measured against NeRN's centre layout in the README).
 */
export const DEFAULT_POINTWISE: PointwiseLayout = 'blocks';

/**
 * Defaults of a compression (the CLI's and the UI's starting point): a predictor of half the represented weights,
 * 2,000 reconstruction steps, NeRN's best permutation, seed 0, convolutions represented, the fastest engine. Frozen.
 */
export const DEFAULT_COMPRESS_OPTIONS: Readonly<CompressOptionsDto> = Object.freeze<CompressOptionsDto>({
  budget: { kind: 'fraction', fraction: 0.5 },
  steps: 2000,
  permutation: 'crossfilter',
  seed: 0,
  represent: { conv: true, dense: false, pointwise: DEFAULT_POINTWISE },
  backend: 'auto',
  rounds: 1,
  roundWidthScale: 1,
});

/** Histogram bins of the Inspector and `weight-lens inspect` (`weightLens.histogramBins`). */
export const DEFAULT_HISTOGRAM_BINS = 64;

/** Most `[step, loss]` points a compression report (and the artifact's metadata) keeps of the loss curve. */
export const REPORT_LOSS_POINTS = 500;

/** Most `[step, loss]` points a live panel keeps while a job streams (thinned evenly beyond that). */
export const PANEL_LOSS_POINTS = 2000;

/**
 * Defaults. Steps, batch and learning rate were measured on the project's ResNet-20 / Fashion-MNIST (bench:accuracy):
 * 200 steps of Adam at 3e-5 took a 39.9 % predictor from −1.12 to −0.08 points of test accuracy (91.35 % original),
 * and a 24.7 % one from −8.10 to −0.38; 300 leaves room for harder models. T = 1 and the 1e-4 floor inside the
 * log follow NeRN's KD term; the feature term is off by default (NeRN weights it small, and it needs a teacher with
 * the student's architecture); a small reconstruction term keeps layers the graph does not use from drifting.
 * Units: `lr` per Adam step, `evalSamples` images, `evalEvery` steps. Frozen.
 */
export const DEFAULT_DISTILL_OPTIONS: Readonly<DistillOptionsDto> = Object.freeze<DistillOptionsDto>({
  steps: 300,
  batchSize: 64,
  lr: 3e-5,
  temperature: 1,
  klWeight: 1,
  featureWeight: 0,
  reconstructionWeight: 0.01,
  augment: true,
  evalSamples: 1000,
  evalEvery: 50,
  seed: 0,
  backend: 'auto',
});

/** The options whose default has a stated origin. */
export type DistillDefaultKey =
  | 'steps'
  | 'batchSize'
  | 'lr'
  | 'temperature'
  | 'klWeight'
  | 'featureWeight'
  | 'reconstructionWeight'
  | 'augment'
  | 'evalSamples'
  | 'evalEvery';

/** Where each default comes from (one short phrase each), for the command palette's descriptions and `--help`. Frozen. */
export const DISTILL_DEFAULT_SOURCES: Readonly<Record<DistillDefaultKey, string>> = Object.freeze({
  steps: 'measured: 200 steps recover ResNet-20 / Fashion-MNIST to −0.08 points at 40 % (bench:accuracy)',
  batchSize: 'a CIFAR-size batch that fits a laptop',
  lr: 'measured: Adam 3e-5 with warm-up and cosine decay (3e-4 diverges)',
  temperature: "NeRN's KD term (T = 1)",
  klWeight: "Choi et al.'s phase 2 optimises the distillation objective",
  featureWeight: "NeRN's feature-map term, off unless asked",
  reconstructionWeight: 'small, keeps unused layers near phase 1',
  augment: 'flips and padded crops, as NeRN trains',
  evalSamples: 'the last samples of the data, held out from training',
  evalEvery: 'a held-out evaluation every 50 steps',
});

/**
 * Defaults of a spectral analysis (`weight-lens spectra`, the Inspector's Spectra view): matrices up to 1024 on their
 * smaller side are decomposed exactly (about a second each), larger ones give their top 1024 singular values by a
 * randomized SVD; 100 log bins per ESD, as WeightWatcher plots it. Frozen.
 */
export const DEFAULT_SPECTRA_OPTIONS: Readonly<SpectraOptionsDto> = Object.freeze<SpectraOptionsDto>({
  maxRank: 1024,
  bins: 100,
});
