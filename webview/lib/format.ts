/**
 * Number and size formatting for the webview panels. Pure functions (no DOM), shared by the Inspector table,
 * summary and histogram labels, and unit-tested under Node.
 */

/** Formats a byte count with decimal units, like the CLI (the shared implementation in src/protocol/units). */
export { formatBytes } from '../../src/protocol/units';

/** Formats a duration in seconds (`85 ms`, `1.3 s`, `2 min 5 s`, `1 h 4 min`): the one implementation in src/protocol/units. */
export { formatDuration } from '../../src/protocol/units';

/** Formats a count compactly: `950`, `12.3 k`, `1.2 M`, `7.0 B` (billions). Exact below 10,000. */
export function formatCount(count: number): string {
  if (!Number.isFinite(count)) return String(count);
  const abs = Math.abs(count);
  if (abs < 10_000) return count.toLocaleString('en-US');
  const steps: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [size, suffix] of steps) {
    if (abs >= size) {
      const v = count / size;
      return `${Math.abs(v) < 100 ? v.toFixed(1) : v.toFixed(0)} ${suffix}`;
    }
  }
  return String(count);
}

/** Formats an exact integer with thousands separators (`11,689,512`). */
export function formatInteger(count: number): string {
  return Number.isFinite(count) ? Math.round(count).toLocaleString('en-US') : String(count);
}

/**
 * Formats a statistic (mean, std, min, max) with 4 significant digits, switching to exponent notation for very
 * small or very large magnitudes (`0.01234`, `-1.235e-5`, `3.4e+38`). Exact zero prints as `0`.
 */
export function formatStat(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e5 || abs < 1e-3) return value.toExponential(3).replace(/\.?0+e/, 'e');
  return String(Number(value.toPrecision(4)));
}

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
