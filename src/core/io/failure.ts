/** Maps a thrown value to a typed failure (`badInput`, `cancelled`, `internal`) with a user-facing message. */
import { CancelledError, CheckpointFormatError } from './errors';
import type { FailureReason } from '../../protocol/common';

/** Classifies `error` for the host: file problems are `badInput`, aborts are `cancelled`, the rest `internal`. */
export function failureOf(error: unknown): { reason: FailureReason; message: string } {
  if (error instanceof CheckpointFormatError) return { reason: 'badInput', message: error.message };
  if (error instanceof CancelledError) return { reason: 'cancelled', message: 'cancelled' };
  if (error instanceof Error) return { reason: 'internal', message: error.message };
  return { reason: 'internal', message: String(error) };
}
