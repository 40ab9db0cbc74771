/** Text formatting for the CLI's human-readable output: aligned tables; numbers use the shared src/protocol/units. */

/** Counts and statistics print as in the panels (src/protocol/units). */
export { formatInteger, formatStat } from '../protocol/units';

/** Renders rows as a left/right-aligned text table with a header and a rule. `align[i]` is 'l' or 'r'. */
export function renderTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly ('l' | 'r')[],
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => ((align[i] ?? 'l') === 'r' ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
