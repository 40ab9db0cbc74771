/**
 * What every message channel shares (host ↔ engine worker, worker ↔ statistics threads, host ↔ webviews): each
 * message is an object with a readable string `kind`, and a failed request says why with a `FailureReason`. Plain
 * types plus one guard; imports only the vocabulary.
 */

/** Why a request failed (one of `FAILURE_REASONS` in vocabulary.ts). */
export type { FailureReason } from './vocabulary';

/** Narrowing helper: true if `value` is an object with a string `kind`. */
export function hasKind(value: unknown): value is { kind: string } {
  return typeof value === 'object' && value !== null && typeof (value as { kind?: unknown }).kind === 'string';
}
