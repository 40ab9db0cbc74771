/**
 * JSON from files, with its nesting depth bounded before it is parsed. Every JSON document a reader takes from a file
 * (a safetensors header and its `__metadata__`, a sharded index, a TF.js manifest, an artifact's metadata) goes
 * through `parseJsonBounded`, so `[[[[…]]]]` a million levels deep is refused in one linear scan instead of
 * overflowing the stack of whatever walks or renders the value later.
 */

/** Outcome of `parseJsonBounded`: the value, or why there is none. */
export type JsonResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly problem: 'not UTF-8 JSON' }
  | { readonly ok: false; readonly problem: 'too deep'; readonly depth: number };

const OPEN_BRACE = 0x7b, OPEN_BRACKET = 0x5b, CLOSE_BRACE = 0x7d, CLOSE_BRACKET = 0x5d, QUOTE = 0x22, BACKSLASH = 0x5c;

/**
 * Deepest nesting of objects and lists in `input` (UTF-8 bytes or text), stopping as soon as it exceeds `limit`
 * (then returns a value > `limit`). Bytes can be scanned undecoded: in UTF-8 no byte of a multi-byte character is an
 * ASCII bracket or quote. Linear in the input, constant memory.
 */
export function jsonDepth(input: Uint8Array | string, limit: number): number {
  let depth = 0;
  let deepest = 0;
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
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--;
  }
  return deepest;
}

/**
 * Parses `input` (UTF-8 bytes or text) as JSON if it nests no deeper than `maxDepth` levels (an object holding a
 * list counts 2). Never throws: a caller turns the problem into its own one-sentence message.
 */
export function parseJsonBounded(input: Uint8Array | string, maxDepth: number): JsonResult {
  const depth = jsonDepth(input, maxDepth);
  if (depth > maxDepth) return { ok: false, problem: 'too deep', depth };
  try {
    const text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input);
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, problem: 'not UTF-8 JSON' };
  }
}

/** The sentence fragment for a failed parse: `is not valid UTF-8 JSON` or `nests JSON deeper than N levels`. */
export function jsonProblem(result: Exclude<JsonResult, { ok: true }>, maxDepth: number): string {
  return result.problem === 'too deep' ? `nests JSON deeper than ${maxDepth} levels (a hostile or corrupt file)` : 'is not valid UTF-8 JSON';
}
