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

/**
 * Formats a duration given in seconds, rounded once at the precision shown, so a unit never reaches its carry
 * (`59.96` is `1 min 0 s`, never `60.0 s`; `299.6` is `5 min 0 s`, never `4 min 60 s`): `85 ms`, `1.3 s`,
 * `2 min 5 s`, `1 h 4 min`. Negative or non-finite input gives `–`.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const ms = Math.round(seconds * 1000);
  if (ms < 1000) return `${ms} ms`;
  const tenths = Math.round(seconds * 10);
  if (tenths < 600) return `${(tenths / 10).toFixed(1)} s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${whole % 60} s`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
