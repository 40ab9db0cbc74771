/**
 * A small, strict command-line parser: positional arguments plus `--flag`, `--flag value` and `--flag=value`
 * options, each declared with its type. Unknown or malformed options are usage errors, reported in one line.
 */

/** Declared type of an option. */
export type OptionType = 'boolean' | 'string' | 'number' | 'integer';

/** Parsed arguments. */
export interface ParsedArgs {
  positional: string[];
  options: Record<string, string | number | boolean>;
}

/** A usage error: the CLI prints it with the command's help hint and exits 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses `argv` against `spec` (option name without dashes → type). */
export function parseArgs(argv: readonly string[], spec: Readonly<Record<string, OptionType>>): ParsedArgs {
  const positional: string[] = [];
  const options: Record<string, string | number | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--') || arg === '--') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const type = spec[name];
    if (!type) throw new UsageError(`unknown option --${name}`);
    if (type === 'boolean') {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      options[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined || (value.startsWith('--') && eq < 0)) throw new UsageError(`--${name} needs a value`);
    if (type === 'string') options[name] = value;
    else {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n))
        throw new UsageError(`--${name} must be a number, got ${JSON.stringify(value)}`);
      if (type === 'integer' && !Number.isInteger(n))
        throw new UsageError(`--${name} must be a whole number, got ${value}`);
      options[name] = n;
    }
  }
  return { positional, options };
}
