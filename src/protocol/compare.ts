/**
 * Plain data of "Compare With…": the options a comparison request carries, its progress, the histogram of Δ = B − A
 * of one tensor pair, and the messages between the Compare panel and its webview (the report itself is
 * `DiffReportDto`, src/protocol/diff.ts). Shared by the worker, the extension host and the webview; imports nothing
 * heavy.
 */
import type { DiffMatch, DiffReportDto } from './diff';
import type { HistogramDto } from './inspect';

/** Fewest and most bins of a Δ histogram. */
export const DELTA_HISTOGRAM_BINS = { min: 1, max: 1024, default: 64 } as const;

/** What a `diff/start` request compares (the subset of the core's options that crosses the wire). */
export interface DiffRequestOptionsDto {
  /** Pairing: by normalised name (default), or by name and then the rest by shape in file order. */
  match?: DiffMatch;
  /** Also compare integer and boolean tensors (off by default). */
  includeIntegers?: boolean;
  /** Renaming rules `FROM=TO` for A's tensor names, applied before matching (as `weight-lens diff --map`). */
  map?: string[];
}

/**
 * Progress of a comparison: `done` pairs of `total` compared, `name` the pair under way (A's name), and the elements
 * compared so far of all the value-compared pairs hold (`elementsDone` ≤ `elementsTotal`; both 0 before the first
 * chunk), which moves within big tensors.
 */
export interface DiffProgressDto {
  done: number;
  total: number;
  name: string;
  elementsDone: number;
  elementsTotal: number;
}

/**
 * The histogram of Δ = B − A (in float64) over the finite differences of one pair of tensors of equal shape, with
 * the same edges and bin assignment as `numpy.histogram(Δ, bins)` over `(min Δ, max Δ)`.
 */
export interface DeltaHistogramDto {
  /** The tensor's name in A. */
  a: string;
  /** The tensor's name in B. */
  b: string;
  /** Elements of the pair. */
  count: number;
  /** Positions where A or B is NaN or ±Inf (left out of the histogram). */
  nonFinite: number;
  /** Smallest and largest finite Δ; null when no position is finite. */
  min: number | null;
  max: number | null;
  /** Bins + 1 edges and the finite Δ per bin (empty when no position is finite). */
  histogram: HistogramDto;
}

/** Host → Compare webview: the whole report (sent whenever the webview (re)loads), or a Δ histogram and its failure. */
export type CompareInbound =
  | { kind: 'compare/report'; report: DiffReportDto }
  | { kind: 'compare/histogram'; a: string; b: string; histogram: DeltaHistogramDto }
  | { kind: 'compare/histogramFailed'; a: string; b: string; message: string };

/**
 * Compare webview → host: ready for the report; the Δ histogram of pair (`a` in A, `b` in B) is wanted; or the same
 * two files compared again with the other pairing (`match`: by name, or by name then shape for renamed layers).
 */
export type CompareOutbound =
  | { kind: 'compare/ready' }
  | { kind: 'compare/histogram'; a: string; b: string }
  | { kind: 'compare/rematch'; match: DiffMatch };
