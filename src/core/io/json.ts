/**
 * JSON from files, with its nesting depth and size bounded before it is parsed. Every JSON document a reader takes
 * from a file (a safetensors header and its `__metadata__`, a sharded index, a TF.js manifest, an artifact's
 * metadata) goes through `parseJsonBounded`, so `[[[[…]]]]` a million levels deep, or a header of ten million
 * entries, is refused in one linear scan instead of overflowing the stack or filling the heap of whatever builds,
 * walks or renders the value later.
 */

/** Outcome of `parseJsonBounded`: the value, or why there is none. */
export type JsonResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly problem: 'not UTF-8 JSON' }
  | { readonly ok: false; readonly problem: 'too deep'; readonly depth: number }
  | { readonly ok: false; readonly problem: 'too many values'; readonly containers: number };

const OPEN_BRACE = 0x7b,
  OPEN_BRACKET = 0x5b,
  CLOSE_BRACE = 0x7d,
  CLOSE_BRACKET = 0x5d,
  QUOTE = 0x22,
  BACKSLASH = 0x5c;

/** What one scan of a JSON text found: its deepest nesting and how many objects and lists it opens. */
export interface JsonShape {
  readonly depth: number;
  readonly containers: number;
}

/**
 * Deepest nesting of objects and lists in `input` (UTF-8 bytes or text) and how many it opens, stopping as soon as
 * either exceeds its limit. Bytes can be scanned undecoded: in UTF-8 no byte of a multi-byte character is an ASCII
 * bracket or quote. Linear in the input, constant memory; the text need not be valid JSON.
 */
export function jsonShape(input: Uint8Array | string, maxDepth: number, maxContainers = Infinity): JsonShape {
  let depth = 0;
  let deepest = 0;
  let containers = 0;
  let inString = false;
  const text = typeof input === 'string' ? input : undefined;
  const bytes = typeof input === 'string' ? undefined : input;
  for (let i = 0, n = input.length; i < n; i++) {
    const b = text !== undefined ? text.charCodeAt(i) : (bytes?.[i] ?? 0);
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
      continue;
    }
    if (b === QUOTE) inString = true;
    else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      depth++;
      containers++;
      if (depth > deepest) deepest = depth;
      if (deepest > maxDepth || containers > maxContainers) break;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--;
  }
  return { depth: deepest, containers };
}

/**
 * Parses `input` (UTF-8 bytes or text) as JSON if it nests no deeper than `maxDepth` levels (an object holding a
 * list counts 2) and opens at most `maxContainers` objects and lists. Never throws: a caller turns the problem into
 * its own one-sentence message (`jsonProblem` words the bounds).
 */
export function parseJsonBounded(input: Uint8Array | string, maxDepth: number, maxContainers = Infinity): JsonResult {
  const shape = jsonShape(input, maxDepth, maxContainers);
  if (shape.depth > maxDepth) return { ok: false, problem: 'too deep', depth: shape.depth };
  if (shape.containers > maxContainers) return { ok: false, problem: 'too many values', containers: shape.containers };
  try {
    const text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input);
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, problem: 'not UTF-8 JSON' };
  }
}

/**
 * The predicate of a sentence about a failed parse: `is not valid UTF-8 JSON`, `nests JSON deeper than 8 levels …`
 * or `holds more than N JSON objects and lists …`.
 */
export function jsonProblem(
  result: Exclude<JsonResult, { ok: true }>,
  maxDepth: number,
  maxContainers = Infinity,
): string {
  switch (result.problem) {
    case 'too deep':
      return `nests JSON deeper than ${maxDepth} levels, which no real file does (corrupt or hostile)`;
    case 'too many values':
      return `holds more than ${maxContainers} JSON objects and lists, over the limit (corrupt or hostile)`;
    default:
      return 'is not valid UTF-8 JSON';
  }
}
