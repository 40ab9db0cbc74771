/** Unit formatting shared by every layer (CLI, error messages, webviews): plain functions, no imports. */

/**
 * Formats a byte count with decimal units (`kB` = 1000 B): `0 B`, `512 B`, `1.5 kB`, `44 MB`, `9.2 GB`.
 * Non-finite input is returned as its string form.
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const text = unit === 0 ? String(value) : value < 10 ? value.toFixed(1) : value.toFixed(0);
  return `${bytes < 0 ? '-' : ''}${text} ${units[unit] ?? 'B'}`;
}
