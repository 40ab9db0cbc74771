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
 * small or very large magnitudes (`0.01234`, `-1.235e-5`, `3.4e+38`). Exact zero prints as `0`; no value (a tensor
 * without finite values has no statistics) prints as `—`.
 */
export function formatStat(value: number | null): string {
  if (value === null) return '—';
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e5 || abs < 1e-3) return value.toExponential(3).replace(/\.?0+e/, 'e');
  return String(Number(value.toPrecision(4)));
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

/**
 * The time left of a run from its progress: `(steps − step) / stepsPerSecond` seconds, as `about 3 min 20 s left`
 * (through `formatDuration`); `` when it cannot be told (no speed yet, or done). Steps are whole numbers with
 * 0 ≤ step ≤ steps; the speed is in steps per second.
 */
export function formatEta(step: number, steps: number, stepsPerSecond: number): string {
  const left = steps - step;
  if (!(left > 0) || !(stepsPerSecond > 0) || !Number.isFinite(stepsPerSecond)) return '';
  return `about ${formatDuration(left / stepsPerSecond)} left`;
}
