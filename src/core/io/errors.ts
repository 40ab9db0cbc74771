/**
 * Error types shared by the engine. A `BadInputError` means "what the user gave cannot be used": a file, an option,
 * a path, data that does not fit the model, or training that diverged on the user's settings. Its subclass
 * `CheckpointFormatError` means "the file is not what it claims to be, or is damaged or hostile". The CLI maps both
 * to exit code 2 and the UI shows the message as-is, so it must be one sentence a user can act on, in concrete terms
 * (sizes, offsets, names). Engine messages never name a CLI flag or a setting: an error about one option names it in
 * `option` (a key of the job's options DTO), and the CLI or the extension adds its own hint.
 */

/** The user's input (file, option, path or data) cannot be used. `message` is one user-facing sentence. */
export class BadInputError extends Error {
  override readonly name: string = 'BadInputError';
  /** The options-DTO key the error is about (e.g. `lr`), when it is about one option. */
  readonly option: string | undefined;

  /**
   * @param message One sentence, for the user, without CLI flags or setting names.
   * @param details `option`: the options-DTO key the error is about; `cause`: the underlying error.
   */
  constructor(message: string, details: { option?: string; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.option = details.option;
  }
}

/** The input file is malformed, truncated, unsupported or hostile. `message` is one user-facing sentence. */
export class CheckpointFormatError extends BadInputError {
  override readonly name: string = 'CheckpointFormatError';
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
