/**
 * Number and size formatting for the webview panels. Pure functions (no DOM), shared by the Inspector table,
 * summary and histogram labels, and unit-tested under Node.
 */

/** Byte counts, counts, statistics and durations are formatted like the CLI's (the shared implementations in src/protocol/units). */
export {
  formatBytes,
  formatCount,
  formatDuration,
  formatEta,
  formatInteger,
  formatStat,
} from '../../src/protocol/units';

/** Formats a share as a percentage with adaptive precision: `0 %`, `<0.01 %`, `3.2 %`, `100 %`. `total` 0 gives `–`. */
export function formatPercent(part: number, total: number): string {
  if (total <= 0 || !Number.isFinite(part) || !Number.isFinite(total)) return '–';
  const p = (part / total) * 100;
  if (p === 0) return '0 %';
  if (p < 0.01) return '<0.01 %';
  if (p >= 99.995 && part < total) return '>99.99 %';
  if (p < 10) return `${p.toFixed(2)} %`;
  return `${p.toFixed(1)} %`;
}

/** Formats a shape as `[64, 3, 7, 7]`; a scalar is `[]`. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** The last segment of a POSIX or Windows path: `/a/b/model.pt` → `model.pt`. */
export function baseName(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] ?? path;
}
