/**
 * Text for VS Code notifications. `showErrorMessage` and `showWarningMessage` render Markdown links, so a message
 * that quotes a file's strings (tensor names, paths, metadata) could carry `[label](command:…)` and become a link
 * that runs a command. Every message built from engine or file text goes through `inertLinks` first. Pure: no
 * `vscode` import, so it is unit-tested under Node.
 */

/**
 * `text` with every Markdown link made inert: `[label](target)` becomes `[label] (target)`, which VS Code shows as
 * plain text. Nothing else changes, so the message still says what it said.
 */
export function inertLinks(text: string): string {
  return text.replace(/\]\s*\(/g, '] (');
}
