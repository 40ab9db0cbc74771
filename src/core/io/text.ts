/**
 * Bounded renderings of file-derived values for error messages and metadata. A hostile file can hold a 100 MB name
 * or a value nested a million levels deep; `JSON.stringify` of such a value overflows the stack or makes a message
 * nobody can read. These helpers never look at more than a few hundred characters or a few levels of a value.
 */

/** Characters of a file-derived string quoted in a message; longer strings are cut with `…`. */
export const MAX_QUOTED_CHARS = 200;

/**
 * `text` as a JSON string literal for a message, cut to `max` characters (default 200) with `…` and its full length
 * when longer. Never throws.
 */
export function quote(text: string, max: number = MAX_QUOTED_CHARS): string {
  if (text.length <= max) return JSON.stringify(text);
  return `${JSON.stringify(text.slice(0, max))}… (${text.length} characters)`;
}

/**
 * A short rendering of any parsed-JSON (or unknown) value for a message: strings quoted (and cut), numbers,
 * booleans and null as written, lists and objects shown to two levels and at most eight items, so the result stays
 * under a few hundred characters whatever the value. Never throws and never recurses deeply.
 */
export function describeValue(value: unknown, depth = 0): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return quote(value, 60);
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'undefined':
      return 'nothing';
    case 'object':
      break;
    default:
      return typeof value;
  }
  const items = 8;
  if (Array.isArray(value)) {
    if (depth >= 2) return value.length === 0 ? '[]' : `[… ${value.length} item${value.length === 1 ? '' : 's'}]`;
    const shown = value.slice(0, items).map((v: unknown) => describeValue(v, depth + 1));
    return `[${shown.join(', ')}${value.length > items ? `, … ${value.length - items} more` : ''}]`;
  }
  const keys = Object.keys(value);
  if (depth >= 2) return keys.length === 0 ? '{}' : `{… ${keys.length} key${keys.length === 1 ? '' : 's'}}`;
  const record = value as Record<string, unknown>;
  const shown = keys.slice(0, items).map((k) => `${quote(k, 40)}: ${describeValue(record[k], depth + 1)}`);
  return `{${shown.join(', ')}${keys.length > items ? `, … ${keys.length - items} more` : ''}}`;
}

/** `text` cut to `max` characters with `…` and its length (metadata strings; the Checkpoint contract says 1 kB). */
export function elide(text: string, max = 1024): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
}

/**
 * Sets `record[key] = value` as an own, enumerable data property, whatever `key` is: a file-given key such as
 * `__proto__` or `constructor` becomes a plain entry instead of changing the object's prototype.
 */
export function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, writable: true, enumerable: true, configurable: true });
}

/**
 * `record[key]` when `record` has it as an own property, else undefined: a file-given key such as `constructor` or
 * `toString` never finds what `Object.prototype` holds.
 */
export function ownValue<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
