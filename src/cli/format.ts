/** Text formatting for the CLI's human-readable output: aligned tables and compact numbers. */

/** Formats a count with thousands separators: 142749 → "142,749". */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Formats a statistic compactly with 4 significant digits ("0.01234", "-1.2e-07", "1234"). */
export function formatStat(x: number | null): string {
  if (x === null) return '—';
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(2);
  return Number(x.toPrecision(4)).toString();
}

/** Renders rows as a left/right-aligned text table with a header and a rule. `align[i]` is 'l' or 'r'. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[], align: readonly ('l' | 'r')[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => ((align[i] ?? 'l') === 'r' ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
