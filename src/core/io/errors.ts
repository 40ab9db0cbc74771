/**
 * Error types shared by every reader. A `CheckpointFormatError` means "the file is not what it claims to be, or is
 * damaged or hostile": the CLI maps it to exit code 2 and the UI shows its message as-is, so the message must be one
 * sentence a user can act on, naming the file problem in concrete terms (sizes, offsets, names).
 */

/** The input file is malformed, truncated, unsupported or hostile. `message` is one user-facing sentence. */
export class CheckpointFormatError extends Error {
  override readonly name = 'CheckpointFormatError';
}

/** A job was cancelled through its AbortSignal. */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
  constructor(message = 'cancelled') {
    super(message);
  }
}

/** Throws `CancelledError` if `signal` is aborted. Call at chunk boundaries of long loops. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}

/** Formats a byte count for messages (decimal units); the one implementation lives in src/protocol/units. */
export { formatBytes } from '../../protocol/units';

/** Throws `CheckpointFormatError(message)` unless `condition` holds. */
export function ensure(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) throw new CheckpointFormatError(typeof message === 'string' ? message : message());
}
