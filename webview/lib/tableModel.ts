/**
 * Pure model of the Inspector's tensor table: the columns and their widths (the name column wide enough for the
 * longest name, user-resized widths kept within limits), the text filter (substring or `/regex/flags`) and what the
 * toolbar says about it, sorting (numeric where the column is numeric, missing statistics always last), and row
 * selection with click, ctrl/cmd-click and shift-click semantics. No DOM here, so it runs and is tested under Node.
 */
import type { TensorHeaderDto, TensorStatsDto } from '../../src/protocol/inspect';

/** One tensor as the table sees it: header facts plus statistics once they stream in. */
export interface TensorRow {
  /** Position of the tensor in the checkpoint's header order (stable id used by every message). */
  readonly index: number;
  readonly header: TensorHeaderDto;
  stats?: TensorStatsDto;
  /** Why statistics failed for this tensor, if they did. */
  error?: string;
}

/** Column identifiers, in display order. */
export const COLUMN_IDS = [
  'name',
  'dtype',
  'shape',
  'params',
  'bytes',
  'mean',
  'std',
  'min',
  'max',
  'zeros',
  'nonFinite',
] as const;

/** A table column id. */
export type ColumnId = (typeof COLUMN_IDS)[number];

/** Static description of a column: header label, tooltip, and whether it is numeric and needs statistics. */
export interface ColumnSpec {
  readonly id: ColumnId;
  readonly label: string;
  readonly title: string;
  readonly numeric: boolean;
  readonly needsStats: boolean;
}

/** The columns of the tensor table, in display order. */
export const COLUMNS: readonly ColumnSpec[] = [
  { id: 'name', label: 'Name', title: 'Tensor name', numeric: false, needsStats: false },
  { id: 'dtype', label: 'DType', title: 'Stored element type', numeric: false, needsStats: false },
  { id: 'shape', label: 'Shape', title: 'Dimensions', numeric: false, needsStats: false },
  { id: 'params', label: 'Params', title: 'Element count', numeric: true, needsStats: false },
  { id: 'bytes', label: 'Bytes', title: 'Bytes occupied in the file', numeric: true, needsStats: false },
  { id: 'mean', label: 'Mean', title: 'Mean of the finite values', numeric: true, needsStats: true },
  {
    id: 'std',
    label: 'Std',
    title: 'Population standard deviation of the finite values',
    numeric: true,
    needsStats: true,
  },
  { id: 'min', label: 'Min', title: 'Smallest finite value', numeric: true, needsStats: true },
  { id: 'max', label: 'Max', title: 'Largest finite value', numeric: true, needsStats: true },
  { id: 'zeros', label: 'Zeros', title: 'Share of values exactly 0', numeric: true, needsStats: true },
  { id: 'nonFinite', label: 'NaN/Inf', title: 'Count of NaN and ±Infinity values', numeric: true, needsStats: true },
];

/** Column widths in CSS pixels, one per column. */
export type ColumnWidths = Record<ColumnId, number>;

/** Default widths (CSS px); the name column's is only a floor (see `columnWidths`). */
export const DEFAULT_COLUMN_WIDTHS: Readonly<ColumnWidths> = {
  name: 200,
  dtype: 72,
  shape: 132,
  params: 92,
  bytes: 76,
  mean: 80,
  std: 80,
  min: 80,
  max: 80,
  zeros: 66,
  nonFinite: 74,
};

/** Narrowest and widest a column can be dragged to, CSS px. */
export const COLUMN_WIDTH_LIMITS = { min: 48, max: 1600 } as const;

/** The name column's default fits the longest name within these bounds, CSS px (longer names get a tooltip). */
export const NAME_WIDTH_LIMITS = { min: 160, max: 560 } as const;

/** Horizontal padding of a name cell plus room for the note marker, CSS px. */
const NAME_CELL_PADDING = 30;

/** A dragged width (CSS px), rounded and kept within `COLUMN_WIDTH_LIMITS`; a non-finite one is the minimum. */
export function clampColumnWidth(px: number): number {
  if (!Number.isFinite(px)) return COLUMN_WIDTH_LIMITS.min;
  return Math.round(Math.min(COLUMN_WIDTH_LIMITS.max, Math.max(COLUMN_WIDTH_LIMITS.min, px)));
}

/**
 * The widths to draw: the user's (clamped) where set, else the defaults, and for the name column, unless the user set
 * it, the width of the longest of `names` (`charWidth` px per character of the monospaced name font, plus padding,
 * within `NAME_WIDTH_LIMITS`), widened to fill `containerWidth` when the other columns leave more room.
 */
export function columnWidths(opts: {
  names: Iterable<string>;
  charWidth: number;
  containerWidth: number;
  user?: Partial<Record<ColumnId, number>>;
}): ColumnWidths {
  const widths = { ...DEFAULT_COLUMN_WIDTHS };
  for (const id of COLUMN_IDS) {
    const w = opts.user?.[id];
    if (w !== undefined) widths[id] = clampColumnWidth(w);
  }
  if (opts.user?.name === undefined) {
    let longest = 0;
    for (const n of opts.names) longest = Math.max(longest, n.length);
    const fit = Math.ceil(longest * Math.max(0, opts.charWidth)) + NAME_CELL_PADDING;
    const base = Math.min(NAME_WIDTH_LIMITS.max, Math.max(NAME_WIDTH_LIMITS.min, fit));
    const others = COLUMN_IDS.reduce((sum, id) => (id === 'name' ? sum : sum + widths[id]), 0);
    widths.name = Math.max(base, Math.floor(opts.containerWidth - others));
  }
  return widths;
}

/** Current sort: a column and a direction; `undefined` means header (file) order. */
export interface SortState {
  readonly column: ColumnId;
  readonly direction: 'asc' | 'desc';
}

/** Cycles a column's sort on header click: none → ascending → descending → none (file order). */
export function nextSort(current: SortState | undefined, column: ColumnId): SortState | undefined {
  if (current?.column !== column) return { column, direction: 'asc' };
  return current.direction === 'asc' ? { column, direction: 'desc' } : undefined;
}

/** A parsed filter: a predicate over rows, or an error message for an invalid regular expression. */
export type RowFilter =
  | { readonly ok: true; readonly empty: boolean; readonly test: (row: TensorRow) => boolean }
  | { readonly ok: false; readonly error: string };

/**
 * Parses the filter box text. `/body/flags` is a regular expression (flags `g` and `y` are dropped because they make
 * `test` stateful); anything else is a case-insensitive substring. Both match the tensor name or its dtype.
 * Whitespace around the text is ignored; empty text matches everything.
 */
export function parseFilter(text: string): RowFilter {
  const trimmed = text.trim();
  if (trimmed === '') return { ok: true, empty: true, test: () => true };
  const m = /^\/(.*)\/([a-z]*)$/s.exec(trimmed);
  if (m) {
    const body = m[1] ?? '';
    const flags = (m[2] ?? '').replace(/[gy]/g, '');
    let re: RegExp;
    try {
      re = new RegExp(body, flags);
    } catch (e) {
      return { ok: false, error: regexErrorReason(e instanceof Error ? e.message : String(e)) };
    }
    return { ok: true, empty: false, test: (row) => re.test(row.header.name) || re.test(row.header.dtype) };
  }
  const needle = trimmed.toLowerCase();
  return {
    ok: true,
    empty: false,
    test: (row) => row.header.name.toLowerCase().includes(needle) || row.header.dtype.toLowerCase().includes(needle),
  };
}

/**
 * The reason in a RegExp constructor's message, without the engine's `Invalid regular expression: /…/: ` prefix
 * (the caller says that once): `Unterminated group`.
 */
export function regexErrorReason(message: string): string {
  const reason = message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
  return reason === '' ? message : reason;
}

/** What the toolbar shows about the filter: the row count (always short), and a problem with the filter, if any. */
export interface FilterStatus {
  /** `38 tensors` or `10 of 38 tensors`; an invalid filter filters nothing, so it is the plain total. */
  count: string;
  /** `Invalid regular expression: Unterminated group`, for an invalid `/regex/`. */
  error?: string;
}

/** The toolbar's text for `filter` showing `shown` of `total` rows. */
export function filterStatus(filter: RowFilter, shown: number, total: number): FilterStatus {
  const all = total === 1 ? '1 tensor' : `${total} tensors`;
  if (!filter.ok) return { count: all, error: `Invalid regular expression: ${filter.error}` };
  return { count: filter.empty ? all : `${shown} of ${all}` };
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** The numeric sort key of a row for a numeric column, or `undefined` when not yet known (sorted last). */
export function numericKey(row: TensorRow, column: ColumnId): number | undefined {
  const s = row.stats;
  switch (column) {
    case 'params':
      return row.header.params;
    case 'bytes':
      return row.header.bytes;
    case 'mean':
      return s?.mean ?? undefined;
    case 'std':
      return s?.std ?? undefined;
    case 'min':
      return s?.min ?? undefined;
    case 'max':
      return s?.max ?? undefined;
    case 'zeros':
      return s === undefined ? undefined : row.header.params > 0 ? s.zeros / row.header.params : 0;
    case 'nonFinite':
      return s?.nonFinite;
    default:
      return undefined;
  }
}

function compareShapes(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * Compares two rows for `sort`. Missing keys (statistics not yet streamed, not decoded, failed) sort after present
 * ones in both directions; ties fall back to header order, so the order is total and stable.
 */
export function compareRows(a: TensorRow, b: TensorRow, sort: SortState | undefined): number {
  if (sort === undefined) return a.index - b.index;
  const sign = sort.direction === 'asc' ? 1 : -1;
  let d = 0;
  switch (sort.column) {
    case 'name':
      d = sign * collator.compare(a.header.name, b.header.name);
      break;
    case 'dtype':
      d = sign * collator.compare(a.header.dtype, b.header.dtype);
      break;
    case 'shape':
      d = sign * compareShapes(a.header.shape, b.header.shape);
      break;
    default: {
      const ka = numericKey(a, sort.column);
      const kb = numericKey(b, sort.column);
      if (ka === undefined || Number.isNaN(ka)) {
        d = kb === undefined || Number.isNaN(kb) ? 0 : 1;
      } else if (kb === undefined || Number.isNaN(kb)) {
        d = -1;
      } else {
        d = sign * (ka < kb ? -1 : ka > kb ? 1 : 0);
      }
    }
  }
  return d !== 0 ? d : a.index - b.index;
}

/** The visible row order: indices (into `rows`) of the rows that pass `filter`, sorted by `sort`. O(n log n). */
export function computeView(rows: readonly TensorRow[], filter: RowFilter, sort: SortState | undefined): number[] {
  const kept = filter.ok && !filter.empty ? rows.filter((r) => filter.test(r)) : rows.slice();
  if (sort !== undefined) kept.sort((a, b) => compareRows(a, b, sort));
  return kept.map((r) => r.index);
}

/** Modifier keys of a selection gesture. */
export interface SelectModifiers {
  /** ctrl (cmd on macOS): toggle one row, or add a range to the selection. */
  readonly toggle: boolean;
  /** shift: select the range from the anchor to this row, in visible order. */
  readonly range: boolean;
}

/**
 * Row selection over tensor indices, with an anchor for shift-ranges. Ranges are taken in the current visible order,
 * so they follow the sort and the filter the user sees.
 */
export class RowSelection {
  private readonly chosen = new Set<number>();
  private anchorIndex: number | undefined;
  /** The row keyboard navigation moves from (the last row clicked or moved to). */
  private focusIndex: number | undefined;

  /** Selected tensor indices in the order they were selected. */
  get indices(): number[] {
    return [...this.chosen];
  }

  /** Number of selected rows. */
  get size(): number {
    return this.chosen.size;
  }

  /** The focused row (last clicked or moved to), if any. */
  get focus(): number | undefined {
    return this.focusIndex;
  }

  /** True if tensor `index` is selected. */
  has(index: number): boolean {
    return this.chosen.has(index);
  }

  /** Clears the selection and the anchor. */
  clear(): void {
    this.chosen.clear();
    this.anchorIndex = undefined;
    this.focusIndex = undefined;
  }

  /** Replaces the selection with exactly `indices`; the first becomes anchor and focus. */
  set(indices: readonly number[]): void {
    this.chosen.clear();
    for (const i of indices) this.chosen.add(i);
    this.anchorIndex = indices[0];
    this.focusIndex = indices[0];
  }

  /** Applies a click on tensor `index` with `mods`, given the visible order `view`. */
  click(index: number, view: readonly number[], mods: SelectModifiers): void {
    if (mods.range && this.anchorIndex !== undefined) {
      const from = view.indexOf(this.anchorIndex);
      const to = view.indexOf(index);
      if (from >= 0 && to >= 0) {
        if (!mods.toggle) this.chosen.clear();
        const [lo, hi] = from <= to ? [from, to] : [to, from];
        for (let p = lo; p <= hi; p++) {
          const v = view[p];
          if (v !== undefined) this.chosen.add(v);
        }
        this.focusIndex = index;
        return;
      }
    }
    if (mods.toggle) {
      if (this.chosen.has(index)) this.chosen.delete(index);
      else this.chosen.add(index);
    } else {
      this.chosen.clear();
      this.chosen.add(index);
    }
    this.anchorIndex = index;
    this.focusIndex = index;
  }

  /**
   * Moves the focus by `delta` rows in `view` (arrow keys; large deltas for page keys, clamped at the ends) and
   * selects it; with `extend` the range from the anchor is selected instead. Returns the new focused index.
   */
  move(view: readonly number[], delta: number, extend: boolean): number | undefined {
    if (view.length === 0) return undefined;
    const at = this.focusIndex === undefined ? -1 : view.indexOf(this.focusIndex);
    const pos = at < 0 ? (delta >= 0 ? 0 : view.length - 1) : Math.max(0, Math.min(view.length - 1, at + delta));
    const target = view[pos];
    if (target === undefined) return undefined;
    this.click(target, view, { toggle: false, range: extend });
    return target;
  }

  /** Drops selected indices that are not in `keep` (e.g. after a new header). */
  retain(keep: (index: number) => boolean): void {
    for (const i of [...this.chosen]) if (!keep(i)) this.chosen.delete(i);
    if (this.anchorIndex !== undefined && !keep(this.anchorIndex)) this.anchorIndex = undefined;
    if (this.focusIndex !== undefined && !keep(this.focusIndex)) this.focusIndex = undefined;
  }
}
