/**
 * Strings from a checkpoint (tensor, layer and class names) as plotly text. Plotly reads the text of legends, hover
 * labels and axis ticks as a small HTML subset (`<a href>`, `<b>`, `<br>`, entities), so a name such as
 * `<a href="x">n</a>` would become a live link; escaped, it shows literally. Pure, no imports.
 */

/**
 * Escapes `&`, `<` and `>` so plotly draws `text` as written (it decodes the entities back when it draws). Apply it to
 * every file-derived string handed to plotly as a trace name, a category or a text label, never to our own
 * templates. Injective, so escaped names stay distinct.
 */
export function plotText(text: string): string {
  return text.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}
