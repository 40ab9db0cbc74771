/**
 * Plain data (DTOs) of a weight comparison of two checkpoints: each tensor's status (same, changed, added, removed,
 * reshaped, dtype-changed) and, where values were compared, the size of the difference; plus the whole-model
 * summary. Printed by `weight-lens diff --json`; meant to cross from the worker to the extension host unchanged.
 */

/** How a tensor of A relates to its counterpart in B. */
export type TensorDiffStatus = 'same' | 'changed' | 'added' | 'removed' | 'reshaped' | 'dtype-changed';

/** How tensors are paired: by normalised name only, or by name and then, for the rest, by shape in file order. */
export type DiffMatch = 'name' | 'shape';

/** The prefixes dropped from names before matching (DataParallel, HF wrappers, torch.compile), repeatedly. */
export const NORMALISED_PREFIXES = ['module.', 'model.', '_orig_mod.'] as const;

/** One side's header facts of a tensor. */
export interface DiffSideDto {
  name: string;
  dtype: string;
  shape: number[];
}

/** The size of B − A over the elements of a pair of equal shape (computed in float64). */
export interface DeltaStatsDto {
  /** Elements compared. */
  count: number;
  /** Largest |Δ| over pairs where both values are finite. */
  maxAbs: number;
  /** Root mean square of Δ over finite pairs. */
  rms: number;
  /** ‖Δ‖₂ / ‖A‖₂; null when ‖A‖ is 0 and Δ is not. */
  relative: number | null;
  /** cos(A, B) = A·B / (‖A‖ ‖B‖); null when either norm is 0. */
  cosine: number | null;
  /** Positions where A and B are not both finite and not bit-identical (NaN against a number, ±Inf that differ). */
  nonFinite: number;
}

/** One row of the comparison: a pair, or a tensor present on one side only. */
export interface TensorDiffDto {
  status: TensorDiffStatus;
  /** The tensor in A (absent when `added`). */
  a?: DiffSideDto;
  /** The tensor in B (absent when `removed`). */
  b?: DiffSideDto;
  /** How the pair was found (absent for one-sided rows). */
  matchedBy?: 'name' | 'shape';
  /** The `FROM=TO` rule of `DiffReportDto.map` that renamed A's tensor before matching, when one did. */
  mappedBy?: string;
  /** For `changed` and `dtype-changed` rows (and `same`, all zero): the difference. */
  delta?: DeltaStatsDto;
}

/** The compression artifact a side is, when it is one: what was compared is the artifact's decoded reconstruction. */
export interface DiffArtifactSideDto {
  /** The method that wrote it (`nern`, `int8`, `int4`, `lowrank`, `prune`). */
  method: string;
  /** The checkpoint it was compressed from, as the artifact records it (its file name). */
  sourceName: string;
  /** Tensors decoded from the compressed form (the rest are stored verbatim and read as they are). */
  represented: number;
}

/** One side of the comparison: the file, its container format and its tensor count. */
export interface DiffFileDto {
  file: string;
  format: string;
  tensors: number;
  /** Set when the file is a Weight Lens compression artifact: its tensors are the decoded reconstruction. */
  artifact?: DiffArtifactSideDto;
}

/** A renaming rule of A's tensor names (`--map FROM=TO`) and how many of A's tensors it renamed. */
export interface DiffMapRuleDto {
  /** The rule as given, `FROM=TO`. */
  rule: string;
  /** Tensors of A it renamed (0: it matched none, probably a typo). */
  renamed: number;
}

/** The whole comparison. Rows are sorted worst first: structural changes, then by `relative` descending, then same. */
export interface DiffReportDto {
  a: DiffFileDto;
  b: DiffFileDto;
  match: DiffMatch;
  /** The renaming rules applied to A's names before matching, in the order given (empty when none). */
  map?: DiffMapRuleDto[];
  /** Integer and boolean tensors of each side not compared (all are compared with `includeIntegers`: then 0). */
  integerTensorsLeftOut: { a: number; b: number };
  tensors: TensorDiffDto[];
  summary: {
    counts: Record<TensorDiffStatus, number>;
    /** True when every tensor of each side has a counterpart that is bit-identical. */
    identical: boolean;
    /** Elements compared over all value-compared pairs. */
    compared: number;
    /** Largest |Δ| over all compared pairs. */
    maxAbs: number;
    /** ‖Δ‖ / ‖A‖ over all compared elements together; null when ‖A‖ is 0 and Δ is not. */
    relative: number | null;
    /** cos(A, B) over all compared elements together; null when either norm is 0. */
    cosine: number | null;
  };
  seconds: number;
}
