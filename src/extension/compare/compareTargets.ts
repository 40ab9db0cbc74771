/**
 * Which checkpoints "Compare With…" compares, from the arguments VS Code passes its handler: the Explorer passes the
 * right-clicked resource and every selected one (`(uri, uris[])`), the editor title the active editor's resource, the
 * palette nothing. Pure (generic over the URI type, no `vscode` import), so it is unit-tested under Node.
 */

/** What the command does with its arguments. */
export type CompareTargets<U> =
  /** Two files selected: compare them, A the first selected. */
  | { kind: 'both'; a: U; b: U }
  /** One file (Explorer or the Inspector's toolbar): it is A; ask for B. */
  | { kind: 'askB'; a: U }
  /** No file (the palette): ask for A, then B. */
  | { kind: 'askBoth' }
  /** More than two files selected: say that Compare With… takes two. */
  | { kind: 'tooMany'; count: number };

/**
 * The targets of a "Compare With…" call with arguments `arg` and `all`; `isUri` tells VS Code's URIs from anything
 * else (a palette call may pass nothing, a keybinding any value).
 */
export function compareTargets<U>(arg: unknown, all: unknown, isUri: (x: unknown) => x is U): CompareTargets<U> {
  const selected = Array.isArray(all) ? all.filter(isUri) : [];
  if (selected.length > 2) return { kind: 'tooMany', count: selected.length };
  const [first, second] = selected;
  if (first !== undefined && second !== undefined) return { kind: 'both', a: first, b: second };
  if (isUri(arg)) return { kind: 'askB', a: arg };
  if (first !== undefined) return { kind: 'askB', a: first };
  return { kind: 'askBoth' };
}
