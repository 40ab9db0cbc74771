/**
 * A virtualised `<table>` for the tensor list: only the rows in (and just around) the scrolled viewport exist in the
 * DOM, between two spacer rows that keep the scroll height right, so 10,000+ tensors scroll smoothly. Cells are
 * filled by a caller-supplied `renderRow`; `refreshRow` re-renders the one row a streamed update touches (if it is on
 * screen), never the whole table. Short lists (up to `RENDER_ALL_UP_TO` rows) are rendered whole. Every column has
 * an explicit width and a drag handle at its header's right edge to resize it; the table is as wide as its columns.
 */
import { clampColumnWidth, type ColumnId, type ColumnSpec, type ColumnWidths, type SortState } from './tableModel';

/** What the table needs from its owner. */
export interface VirtualTableOptions {
  /** The scrolling element the table is placed in. */
  readonly container: HTMLElement;
  readonly columns: readonly ColumnSpec[];
  /** Column widths in CSS pixels (see `setColumnWidths`). */
  readonly widths: ColumnWidths;
  /** Fills the cells of `tr` for tensor `index` (the row element is reused; clear it first). */
  readonly renderRow: (tr: HTMLTableRowElement, index: number) => void;
  readonly onHeaderClick: (column: ColumnId) => void;
  readonly onRowClick: (index: number, event: MouseEvent) => void;
  /** The user finished dragging `column`'s edge to `width` CSS px (already applied). */
  readonly onColumnResize?: (column: ColumnId, width: number) => void;
  /** The user double-clicked `column`'s edge: back to its default width. */
  readonly onColumnReset?: (column: ColumnId) => void;
}

/** Up to this many rows are all rendered (cheap, and every row is findable); longer lists are virtualised. */
const RENDER_ALL_UP_TO = 400;
/** Extra rows rendered above and below the viewport. */
const OVERSCAN = 12;
/** Row height in CSS pixels until a rendered row has been measured. */
const DEFAULT_ROW_HEIGHT = 24;

/** A virtualised, sortable table over a caller-owned list of row indices. */
export class VirtualTable {
  /** The `<table data-testid="tensor-table">` element, appended to the container. */
  readonly table: HTMLTableElement;
  private readonly tbody: HTMLTableSectionElement;
  private readonly headerCells = new Map<ColumnId, HTMLTableCellElement>();
  private readonly cols = new Map<ColumnId, HTMLTableColElement>();
  private widths: ColumnWidths;
  private view: readonly number[] = [];
  private readonly rendered = new Map<number, HTMLTableRowElement>();
  private first = 0;
  private last = -1;
  private rowHeight = DEFAULT_ROW_HEIGHT;
  private measured = false;
  private frame = 0;

  constructor(private readonly opts: VirtualTableOptions) {
    this.widths = { ...opts.widths };
    const doc = opts.container.ownerDocument;
    this.table = doc.createElement('table');
    this.table.className = 'tensor-table';
    this.table.dataset.testid = 'tensor-table';
    this.table.setAttribute('role', 'grid');
    this.table.setAttribute('aria-multiselectable', 'true');
    const colgroup = doc.createElement('colgroup');
    for (const c of opts.columns) {
      const col = doc.createElement('col');
      this.cols.set(c.id, col);
      colgroup.appendChild(col);
    }
    this.table.appendChild(colgroup);
    const thead = doc.createElement('thead');
    const tr = doc.createElement('tr');
    for (const c of opts.columns) {
      const th = doc.createElement('th');
      th.scope = 'col';
      th.title = `${c.title} — click to sort`;
      th.dataset.column = c.id;
      th.className = c.numeric ? 'num' : '';
      th.tabIndex = 0;
      const label = doc.createElement('span');
      label.textContent = c.label;
      const arrow = doc.createElement('span');
      arrow.className = 'sort-arrow';
      arrow.setAttribute('aria-hidden', 'true');
      th.append(label, arrow, this.resizer(c));
      th.addEventListener('click', () => {
        opts.onHeaderClick(c.id);
      });
      th.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          opts.onHeaderClick(c.id);
        }
      });
      this.headerCells.set(c.id, th);
      tr.appendChild(th);
    }
    thead.appendChild(tr);
    this.table.appendChild(thead);
    this.applyWidths();
    this.tbody = doc.createElement('tbody');
    this.tbody.addEventListener('click', (e) => {
      const row = (e.target as Element | null)?.closest('tr[data-index]');
      if (!(row instanceof HTMLTableRowElement)) return;
      const index = Number(row.dataset.index);
      if (Number.isInteger(index)) opts.onRowClick(index, e);
    });
    this.table.appendChild(this.tbody);
    opts.container.appendChild(this.table);
    opts.container.addEventListener(
      'scroll',
      () => {
        this.schedule();
      },
      { passive: true },
    );
    new ResizeObserver(() => {
      this.schedule();
    }).observe(opts.container);
  }

  /** Sets every column's width (CSS px); the table becomes as wide as their sum. */
  setColumnWidths(widths: ColumnWidths): void {
    this.widths = { ...widths };
    this.applyWidths();
  }

  /** The widths now drawn, CSS px. */
  get columnWidths(): ColumnWidths {
    return { ...this.widths };
  }

  private applyWidths(): void {
    let total = 0;
    for (const c of this.opts.columns) {
      const w = this.widths[c.id];
      total += w;
      const col = this.cols.get(c.id);
      if (col) col.style.width = `${w}px`;
    }
    this.table.style.width = `${total}px`;
  }

  /**
   * The drag handle at the right edge of `column`'s header: dragging sets the column's width live and reports it at
   * the end; its clicks never sort.
   */
  private resizer(column: ColumnSpec): HTMLElement {
    const doc = this.opts.container.ownerDocument;
    const handle = doc.createElement('span');
    handle.className = 'col-resizer';
    handle.dataset.testid = `col-resizer-${column.id}`;
    handle.title = `Drag to resize the ${column.label} column; double-click for its default width`;
    handle.setAttribute('aria-hidden', 'true');
    handle.addEventListener('click', (e) => {
      e.stopPropagation();
    });
    handle.addEventListener('dblclick', (e) => {
      e.stopPropagation();
      this.opts.onColumnReset?.(column.id);
    });
    handle.addEventListener('pointerdown', (down) => {
      if (down.button !== 0) return;
      down.preventDefault();
      down.stopPropagation();
      const start = this.widths[column.id];
      const x0 = down.clientX;
      handle.setPointerCapture(down.pointerId);
      handle.classList.add('dragging');
      const move = (e: PointerEvent): void => {
        this.widths[column.id] = clampColumnWidth(start + e.clientX - x0);
        this.applyWidths();
      };
      const up = (): void => {
        handle.removeEventListener('pointermove', move);
        handle.removeEventListener('pointerup', up);
        handle.removeEventListener('pointercancel', up);
        handle.classList.remove('dragging');
        if (this.widths[column.id] !== start) this.opts.onColumnResize?.(column.id, this.widths[column.id]);
      };
      handle.addEventListener('pointermove', move);
      handle.addEventListener('pointerup', up);
      handle.addEventListener('pointercancel', up);
    });
    return handle;
  }

  /** Replaces the visible order (indices of rows, top to bottom) and re-renders the window. */
  setView(view: readonly number[]): void {
    this.view = view;
    this.renderWindow(true);
  }

  /** The current visible order. */
  get order(): readonly number[] {
    return this.view;
  }

  /** Shows the sort state in the header cells (arrow and `aria-sort`). */
  setSort(sort: SortState | undefined): void {
    for (const [id, th] of this.headerCells) {
      const arrow = th.querySelector('.sort-arrow');
      const active = sort?.column === id;
      th.setAttribute('aria-sort', active ? (sort.direction === 'asc' ? 'ascending' : 'descending') : 'none');
      th.classList.toggle('sorted', active);
      if (arrow) arrow.textContent = active ? (sort.direction === 'asc' ? ' ▲' : ' ▼') : '';
    }
  }

  /** Re-renders tensor `index`'s row if it is currently in the DOM. O(1). */
  refreshRow(index: number): void {
    const tr = this.rendered.get(index);
    if (tr) this.opts.renderRow(tr, index);
  }

  /** Re-renders every row currently in the DOM (e.g. after a selection change). */
  refreshVisible(): void {
    for (const [index, tr] of this.rendered) this.opts.renderRow(tr, index);
  }

  /** Scrolls the minimum needed so that tensor `index` is visible (no-op if it is filtered out). */
  scrollToIndex(index: number): void {
    const pos = this.view.indexOf(index);
    if (pos < 0) return;
    const c = this.opts.container;
    const headerHeight = this.table.tHead?.getBoundingClientRect().height ?? 0;
    const top = pos * this.rowHeight;
    const bottom = top + this.rowHeight;
    if (top < c.scrollTop) c.scrollTop = top;
    else if (bottom > c.scrollTop + c.clientHeight - headerHeight) c.scrollTop = bottom - c.clientHeight + headerHeight;
    this.renderWindow(false);
  }

  /** Rows per viewport page (for PageUp/PageDown). */
  get pageRows(): number {
    return Math.max(1, Math.floor(this.opts.container.clientHeight / this.rowHeight) - 1);
  }

  private schedule(): void {
    if (this.frame !== 0) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.renderWindow(false);
    });
  }

  private renderWindow(force: boolean): void {
    const c = this.opts.container;
    const n = this.view.length;
    let first = 0;
    let last = n - 1;
    if (n > RENDER_ALL_UP_TO) {
      const visible = Math.ceil(Math.max(c.clientHeight, 200) / this.rowHeight);
      first = Math.max(0, Math.floor(c.scrollTop / this.rowHeight) - OVERSCAN);
      last = Math.min(n - 1, first + visible + 2 * OVERSCAN);
    }
    if (!force && first === this.first && last === this.last) return;
    this.first = first;
    this.last = last;
    const doc = c.ownerDocument;
    const frag = doc.createDocumentFragment();
    frag.appendChild(this.spacer(first * this.rowHeight));
    const keep = new Map<number, HTMLTableRowElement>();
    for (let p = first; p <= last; p++) {
      const index = this.view[p];
      if (index === undefined) continue;
      let tr = this.rendered.get(index);
      if (!tr) {
        tr = doc.createElement('tr');
        tr.dataset.testid = 'tensor-row';
        tr.dataset.index = String(index);
        tr.className = 'tensor-row';
        tr.setAttribute('role', 'row');
      }
      this.opts.renderRow(tr, index);
      keep.set(index, tr);
      frag.appendChild(tr);
    }
    frag.appendChild(this.spacer(Math.max(0, n - 1 - last) * this.rowHeight));
    this.rendered.clear();
    for (const [k, v] of keep) this.rendered.set(k, v);
    this.tbody.replaceChildren(frag);
    if (!this.measured && keep.size > 0) {
      const firstRow = keep.values().next().value;
      const h = firstRow?.getBoundingClientRect().height ?? 0;
      if (h > 4) {
        this.measured = true;
        if (Math.abs(h - this.rowHeight) > 0.5) {
          this.rowHeight = h;
          this.renderWindow(true);
        }
      }
    }
  }

  private spacer(height: number): HTMLTableRowElement {
    const doc = this.opts.container.ownerDocument;
    const tr = doc.createElement('tr');
    tr.className = 'spacer';
    tr.setAttribute('aria-hidden', 'true');
    const td = doc.createElement('td');
    td.colSpan = this.opts.columns.length;
    td.style.height = `${height}px`;
    tr.appendChild(td);
    if (height === 0) tr.hidden = true;
    return tr;
  }
}
