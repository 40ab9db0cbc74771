/**
 * The HTML page every Weight Lens webview loads: a strict Content-Security-Policy with a per-load nonce, the shared
 * stylesheets, one webview script from dist/webview/ (first, so the page paints before the heavy bundles run) and the
 * vendored web components (@vscode-elements/elements). The vendored plotly bundle is only named (`data-plotly` on
 * `#app`): the page loads it with the nonce when it first draws a plot. Also the webview options that confine
 * resource loading to dist/ and media/.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';

/** Escapes text for an HTML attribute or element body. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Webview options for our pages: scripts on, command URIs off, resources only from dist/ and media/. */
export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return {
    enableScripts: true,
    enableCommandUris: false,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

/** What a page needs. */
export interface WebviewPage {
  /** Script base name under dist/webview/ (`inspector`, `reconstruction`, `budget`…). */
  script: string;
  title: string;
  /** Stylesheets under media/, in order. */
  styles: readonly string[];
  /** `data-*` attributes of the `#app` element (names without the prefix; values are escaped). */
  data?: Readonly<Record<string, string>>;
  /** Class of `<body>` (e.g. `panel`); VS Code adds its theme classes beside it. */
  bodyClass?: string;
}

/** Builds the page HTML for `webview`. */
export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, page: WebviewPage): string {
  const nonce = randomBytes(18).toString('base64');
  const asset = (...parts: string[]): string =>
    webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...parts)).toString();
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    `style-src ${webview.cspSource} 'unsafe-inline'`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  const styles = page.styles.map((s) => `  <link rel="stylesheet" href="${asset('media', s)}">`).join('\n');
  const data = Object.entries(page.data ?? {})
    .map(([k, v]) => ` data-${k}="${escapeHtml(v)}"`)
    .join('');
  const bodyClass = page.bodyClass === undefined ? '' : ` class="${escapeHtml(page.bodyClass)}"`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${csp}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
${styles}
  <title>${escapeHtml(page.title)}</title>
</head>
<body${bodyClass}>
  <div id="app"${data} data-plotly="${asset('media', 'vendor', 'plotly.min.js')}"></div>
  <script defer nonce="${nonce}" src="${asset('dist', 'webview', `${page.script}.js`)}"></script>
  <script type="module" nonce="${nonce}" src="${asset('media', 'vendor', 'vscode-elements.js')}"></script>
</body>
</html>`;
}
