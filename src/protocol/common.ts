/**
 * What every message channel shares (host ↔ engine worker, worker ↔ statistics threads, host ↔ webviews): each
 * message is an object with a readable string `kind`, and a failed request says why with a `FailureReason`. Plain
 * types plus one guard; imports nothing.
 */

/**
 * Why a request failed: `cancelled` (the user or the host stopped it), `badInput` (the file or an option is wrong;
 * the message is for the user), `workerCrashed` (the engine thread died or could not start), `internal` (a bug).
 */
export type FailureReason = 'cancelled' | 'badInput' | 'workerCrashed' | 'internal';

/** Narrowing helper: true if `value` is an object with a string `kind`. */
export function hasKind(value: unknown): value is { kind: string } {
  return typeof value === 'object' && value !== null && typeof (value as { kind?: unknown }).kind === 'string';
}
