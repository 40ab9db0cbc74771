/**
 * Small DOM helpers shared by the compression panels' webviews: element creation, lookup by id, the VS Code webview
 * API handle, a small key/value table and table heads. Browser-only.
 */

/** The API object VS Code injects into webviews, typed by the messages a panel posts and the state it persists. */
export interface VsCodeApi<Out, S> {
  postMessage(message: Out): void;
  getState(): S | undefined;
  setState(state: S): void;
}

/** Returns the webview API (may be called once per page). */
export function vscodeApi<Out, S>(): VsCodeApi<Out, S> {
  return (globalThis as unknown as { acquireVsCodeApi: () => VsCodeApi<Out, S> }).acquireVsCodeApi();
}

/** Creates an element with attributes and optional text content. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The element with `id`; throws if the page skeleton lacks it (a programming error). */
export function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`webview element #${id} is missing`);
  return e;
}

/**
 * Fills `table` with label/value rows (`title` shown on hover when given); values are right-aligned numbers unless
 * `numeric` is false (prose).
 */
export function fillKeyValueTable(
  table: HTMLElement,
  rows: readonly (readonly [string, string, string?])[],
  numeric = true,
): void {
  const tbody = el('tbody');
  for (const [label, value, title] of rows) {
    const tr = el('tr');
    const td = el('td', numeric ? { class: 'num' } : {}, value);
    if (title !== undefined) td.title = title;
    tr.append(el('th', { scope: 'row' }, label), td);
    tbody.appendChild(tr);
  }
  table.replaceChildren(tbody);
}

/** A table head of one row: a `[label, class]` per column (class `''` for none, `num` for right-aligned numbers). */
export function tableHead(columns: readonly (readonly [string, string])[]): HTMLTableSectionElement {
  const thead = el('thead');
  const tr = el('tr');
  for (const [label, cls] of columns) tr.appendChild(el('th', cls === '' ? {} : { class: cls }, label));
  thead.appendChild(tr);
  return thead;
}
