// End-to-end harness: a real VS Code (code-server, VS Code's server and web workbench) on 127.0.0.1 with the packaged
// .vsix installed, driven through Debian's Chromium by playwright-core. Every wait is bounded; `close()` always ends
// code-server and Chromium (their whole process groups) and removes the temporary folders. On failure `diagnose()`
// saves a screenshot and prints the code-server, extension-host and browser-console tails.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { chromium, type Browser, type ElementHandle, type Frame, type Page } from 'playwright-core';

/** Repository root. */
export const ROOT = resolve(__dirname, '..', '..');
/** Where screenshots and logs go (git-ignored). */
export const RESULTS = join(ROOT, 'test-results');
/** Debian's Chromium unless WEIGHT_LENS_CHROMIUM names another binary. Never a Playwright-downloaded browser. */
export const CHROMIUM = process.env.WEIGHT_LENS_CHROMIUM ?? '/usr/bin/chromium';

/** Window size for every session: the README screenshot is taken at this size. Pixels. */
export const VIEWPORT = { width: 1400, height: 900 } as const;

/** Bounded waits, in milliseconds. Generous: the CI machines have 2 cores shared with other work. */
export const TIMEOUTS = {
  install: 120_000,
  healthz: 60_000,
  workbench: 90_000,
  quickInput: 15_000,
  webview: 60_000,
  testId: 60_000,
  close: 10_000,
} as const;

const CODE_SERVER_CONFIG = JSON.parse(readFileSync(join(ROOT, 'scripts', 'e2e', 'code-server.json'), 'utf8')) as {
  version: string;
};

/** Extension identifier (`publisher.name`) and version from package.json. */
export function extensionId(): { id: string; version: string } {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    publisher: string;
    name: string;
    version: string;
  };
  return { id: `${manifest.publisher}.${manifest.name}`, version: manifest.version };
}

function runNodeScript(script: string, args: string[], timeoutMs: number): string {
  const r = spawnSync(process.execPath, [join(ROOT, script), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0)
    throw new Error(`${script} failed (exit ${String(r.status ?? r.signal)}):\n${r.stdout.slice(-4000)}`);
  const last = r.stdout.trim().split('\n').pop();
  if (last === undefined || last === '') throw new Error(`${script} printed no path`);
  return last.trim();
}

/**
 * The code-server binary: WEIGHT_LENS_CODE_SERVER when set (scripts/e2e/run.mjs sets it), else the cached install,
 * installed now when missing (minutes, once).
 */
export function codeServerBinary(): string {
  const fromEnv = process.env.WEIGHT_LENS_CODE_SERVER;
  if (fromEnv !== undefined && fromEnv !== '' && existsSync(fromEnv)) return fromEnv;
  const marker = join(ROOT, '.cache', 'code-server', CODE_SERVER_CONFIG.version, '.installed.json');
  if (existsSync(marker)) {
    const bin = (JSON.parse(readFileSync(marker, 'utf8')) as { bin: string }).bin;
    if (existsSync(bin)) return bin;
  }
  return runNodeScript('scripts/e2e/install-code-server.mjs', [], 25 * 60_000);
}

/** The host's VS Code target (`linux-x64`…), as scripts/package.mjs names platform packages. */
export function hostTarget(): string {
  return `${process.platform}-${process.arch}`;
}

/**
 * The folder holding every package scripts/package.mjs wrote: WEIGHT_LENS_VSIX_DIR when set (scripts/e2e/run.mjs
 * packages once and sets it), else packaged now into test-results/e2e/, so what is tested is what ships.
 */
export function vsixFolder(): string {
  const fromEnv = process.env.WEIGHT_LENS_VSIX_DIR;
  if (fromEnv !== undefined && fromEnv !== '' && existsSync(fromEnv)) return fromEnv;
  const out = join(RESULTS, 'e2e');
  mkdirSync(out, { recursive: true });
  runNodeScript('scripts/package.mjs', ['--out', out], 10 * 60_000);
  process.env.WEIGHT_LENS_VSIX_DIR = out;
  return out;
}

/** The packages in `vsixFolder()`: the universal one and each platform package by target. */
export function vsixPackages(): { universal: string; targets: Record<string, string> } {
  const { name, version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  const dir = vsixFolder();
  const targets: Record<string, string> = {};
  for (const file of readdirSync(dir)) {
    const m = new RegExp(`^${name}-(.+)-${version.replace(/\./g, '\\.')}\\.vsix$`).exec(file);
    if (m?.[1] !== undefined) targets[m[1]] = join(dir, file);
  }
  return { universal: join(dir, `${name}-${version}.vsix`), targets };
}

/** Whether the .vsix under test is this machine's platform package, so jobs should report the native engine. */
export function nativeEngineExpected(): boolean {
  return basename(vsixUnderTest()).includes(`-${hostTarget()}-`);
}

/**
 * The .vsix under test: WEIGHT_LENS_VSIX when set, else this machine's platform package (it carries the native
 * engine), else the universal one.
 */
export function vsixUnderTest(): string {
  const fromEnv = process.env.WEIGHT_LENS_VSIX;
  if (fromEnv !== undefined && fromEnv !== '' && existsSync(fromEnv)) return fromEnv;
  const packages = vsixPackages();
  const vsix = packages.targets[hostTarget()] ?? packages.universal;
  process.env.WEIGHT_LENS_VSIX = vsix;
  return vsix;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolvePort(port);
      });
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The last `lines` lines of a text file, or a note that it is missing. */
export function tailFile(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return `(no ${file})`;
  }
}

function findFiles(dir: string, predicate: (name: string) => boolean, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) findFiles(p, predicate, out);
    else if (predicate(name)) out.push(p);
  }
  return out;
}

/** Process groups of code-server instances still running; killed if this process exits without `close()`. */
const liveGroups = new Set<number>();
/** Temporary folders of sessions not yet closed; removed if this process exits without `close()`. */
const liveTmpDirs = new Set<string>();
process.once('exit', () => {
  for (const pid of liveGroups) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const dir of liveTmpDirs) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.exit(130);
  });
}

/** Ends a detached child and everything it started (its process group), SIGTERM then SIGKILL. */
async function killGroup(child: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (child?.pid === undefined) return;
  const pid = child.pid;
  liveGroups.delete(pid);
  if (child.exitCode !== null || child.signalCode !== null) {
    try {
      process.kill(-pid, 'SIGKILL'); // the leader is gone; anything it left behind in its group goes too
    } catch {
      /* nothing left */
    }
    return;
  }
  const exited = new Promise<void>((r) =>
    child.once('exit', () => {
      r();
    }),
  );
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return;
  }
  await Promise.race([exited, sleep(graceMs)]);
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/**
 * A file to place in the session's workspace: `from` (absolute) copied to `to` (relative to the workspace, default
 * the same name), or `content` written to `to`.
 */
export type WorkspaceFile = { from: string; to?: string } | { to: string; content: string | Uint8Array };

/** Options of `startSession`. */
export interface SessionOptions {
  /** Files copied into the temporary workspace folder. */
  files: WorkspaceFile[];
  /** Extra user settings (merged over the harness defaults). */
  settings?: Record<string, unknown>;
  /** Name used for the log file under test-results/e2e/. */
  name?: string;
  /**
   * Workbench URL payload entries, as @vscode/test-web passes them; absolute paths become vscode-remote URIs. For
   * example `[['extensionDevelopmentPath', extensionDir], ['extensionTestsPath', suite]]` has the remote extension
   * host run an extension test suite (test/vscode-suite) against the installed extension, then exit. Receives the
   * folder the .vsix was installed into.
   */
  payload?: (installed: { extensionDir: string; workspace: string }) => [string, string][];
}

/** One running code-server + Chromium, with helpers to drive the workbench. */
export class Session {
  /** Console and page errors of the workbench and its webviews, for diagnostics. */
  readonly consoleLines: string[] = [];
  /** Called with every browser console message (type, text), including those the extension host forwards. */
  readonly consoleListeners: ((type: string, text: string) => void)[] = [];

  private constructor(
    readonly page: Page,
    private readonly browser: Browser,
    private readonly server: ChildProcess,
    readonly workspace: string,
    readonly tmp: string,
    readonly userDataDir: string,
    readonly logFile: string,
    readonly url: string,
  ) {}

  /** Starts code-server with the packaged extension installed, opens the workbench in Chromium and waits for it. */
  static async start(options: SessionOptions): Promise<Session> {
    const bin = codeServerBinary();
    const vsix = vsixUnderTest();
    mkdirSync(join(RESULTS, 'e2e'), { recursive: true });
    const tmp = mkdtempSync(join(tmpdir(), 'weight-lens-e2e-'));
    liveTmpDirs.add(tmp);
    const userDataDir = join(tmp, 'user-data');
    const extensionsDir = join(tmp, 'extensions');
    const workspace = join(tmp, 'workspace');
    for (const d of [
      userDataDir,
      extensionsDir,
      workspace,
      join(tmp, 'xdg-config'),
      join(tmp, 'xdg-data'),
      join(tmp, 'xdg-cache'),
    ]) {
      mkdirSync(d, { recursive: true });
    }
    for (const f of options.files) {
      if ('content' in f) {
        mkdirSync(dirname(join(workspace, f.to)), { recursive: true });
        writeFileSync(join(workspace, f.to), f.content);
      } else {
        cpSync(f.from, join(workspace, f.to ?? basename(f.from)), { recursive: true });
      }
    }
    const settings = {
      'workbench.colorTheme': 'Default Dark Modern',
      'workbench.startupEditor': 'none',
      'workbench.tips.enabled': false,
      'workbench.enableExperiments': false,
      'workbench.welcomePage.walkthroughs.openOnInstall': false,
      'security.workspace.trust.enabled': false,
      'telemetry.telemetryLevel': 'off',
      'update.mode': 'none',
      'extensions.autoUpdate': false,
      'extensions.autoCheckUpdates': false,
      'extensions.ignoreRecommendations': true,
      'git.enabled': false,
      'chat.commandCenter.enabled': false,
      'window.commandCenter': false,
      'editor.minimap.enabled': false,
      ...options.settings,
    };
    mkdirSync(join(userDataDir, 'User'), { recursive: true });
    writeFileSync(join(userDataDir, 'User', 'settings.json'), JSON.stringify(settings, null, 2));

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      XDG_CONFIG_HOME: join(tmp, 'xdg-config'),
      XDG_DATA_HOME: join(tmp, 'xdg-data'),
      XDG_CACHE_HOME: join(tmp, 'xdg-cache'),
      // Keep code-server from reading a password or a different config from the caller's environment.
      PASSWORD: undefined,
      HASHED_PASSWORD: undefined,
      VSCODE_PROXY_URI: undefined,
    };
    const common = ['--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];
    const install = spawnSync(bin, [...common, '--install-extension', vsix, '--force'], {
      env,
      encoding: 'utf8',
      timeout: TIMEOUTS.install,
    });
    if (install.status !== 0) {
      rmSync(tmp, { recursive: true, force: true });
      throw new Error(
        `installing ${vsix} into code-server failed (exit ${String(install.status ?? install.signal)}):\n${install.stdout}\n${install.stderr}`,
      );
    }
    const { id, version } = extensionId();
    const listed = spawnSync(bin, [...common, '--list-extensions', '--show-versions'], {
      env,
      encoding: 'utf8',
      timeout: TIMEOUTS.install,
    });
    if (!listed.stdout.toLowerCase().includes(`${id}@${version}`.toLowerCase())) {
      rmSync(tmp, { recursive: true, force: true });
      throw new Error(
        `code-server does not list ${id}@${version} after installing ${vsix}:\n${listed.stdout}\n${listed.stderr}`,
      );
    }

    const port = await freePort();
    const authority = `127.0.0.1:${port}`;
    let url = `http://${authority}/?folder=${encodeURIComponent(workspace)}`;
    if (options.payload !== undefined) {
      const prefix = `${id}-${version}`.toLowerCase();
      const installedDir = readdirSync(extensionsDir).find((n) => n.toLowerCase().startsWith(prefix));
      if (installedDir === undefined) {
        rmSync(tmp, { recursive: true, force: true });
        throw new Error(`no ${prefix}* folder in ${extensionsDir}`);
      }
      const entries = options.payload({ extensionDir: join(extensionsDir, installedDir), workspace });
      const payload = entries.map(([key, value]) => [
        key,
        value.startsWith('/') ? `vscode-remote://${authority}${value}` : value,
      ]);
      url += `&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    }
    const logFile = join(RESULTS, 'e2e', `code-server-${options.name ?? 'session'}.log`);
    const fd = openSync(logFile, 'w');
    const server = spawn(
      bin,
      [
        '--bind-addr',
        `127.0.0.1:${port}`,
        '--auth',
        'none',
        '--disable-telemetry',
        '--disable-update-check',
        '--disable-workspace-trust',
        '--disable-getting-started-override',
        ...common,
        workspace,
      ],
      { env, stdio: ['ignore', fd, fd], detached: true },
    );
    closeSync(fd);
    if (server.pid !== undefined) liveGroups.add(server.pid);
    let browser: Browser | undefined;
    try {
      await waitForHealthz(port, server, logFile);
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        timeout: 60_000,
        // Chromium writes crash reports and dconf state under XDG folders: keep them in the session's temp folder.
        env: {
          ...process.env,
          XDG_CONFIG_HOME: join(tmp, 'xdg-config'),
          XDG_CACHE_HOME: join(tmp, 'xdg-cache'),
          XDG_DATA_HOME: join(tmp, 'xdg-data'),
        },
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-dev-shm-usage',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
        ],
      });
      const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, colorScheme: 'dark' });
      const page = await context.newPage();
      page.setDefaultTimeout(TIMEOUTS.testId);
      const session = new Session(page, browser, server, workspace, tmp, userDataDir, logFile, url);
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') session.consoleLines.push(`[${m.type()}] ${m.text()}`);
        for (const listener of session.consoleListeners) listener(m.type(), m.text());
      });
      page.on('pageerror', (e) => session.consoleLines.push(`[pageerror] ${e.message}`));
      await page.goto(url, { timeout: TIMEOUTS.workbench });
      await session.waitForWorkbench();
      return session;
    } catch (e) {
      await browser?.close().catch(() => undefined);
      await killGroup(server, TIMEOUTS.close);
      const message = e instanceof Error ? e.message : String(e);
      rmSync(tmp, { recursive: true, force: true });
      throw new Error(`${message}\n--- code-server log (${logFile}) ---\n${tailFile(logFile)}`);
    }
  }

  /** Waits until the workbench shows the explorer with the workspace folder and the extension host is up. */
  async waitForWorkbench(): Promise<void> {
    await this.page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: TIMEOUTS.workbench });
    await this.page.locator('.statusbar').waitFor({ state: 'visible', timeout: TIMEOUTS.workbench });
    await this.page
      .locator('.explorer-folders-view, .explorer-viewlet')
      .first()
      .waitFor({ state: 'visible', timeout: TIMEOUTS.workbench });
    // The palette only knows extension commands once the remote extension host has scanned extensions.
    await this.page
      .locator('.monaco-progress-container.active.infinite')
      .first()
      .waitFor({ state: 'hidden', timeout: TIMEOUTS.workbench })
      .catch(() => undefined);
  }

  /**
   * Opens the command palette, types `label` (as shown, e.g. "Weight Lens: Show Log") and runs the matching entry.
   * Retries with a fresh palette: one opened before the extension host registered the extension's commands keeps
   * its stale list.
   */
  async runCommand(label: string, timeoutMs: number = TIMEOUTS.workbench): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const widget = this.page.locator('.quick-input-widget');
    const input = widget.locator('input.input');
    const row = this.page.locator('.quick-input-list .monaco-list-row', { hasText: label }).first();
    for (;;) {
      await this.openQuickInput('F1');
      await input.fill(`>${label}`);
      try {
        await row.waitFor({ state: 'visible', timeout: Math.min(5_000, Math.max(1, deadline - Date.now())) });
        await row.click();
        await widget.waitFor({ state: 'hidden', timeout: TIMEOUTS.quickInput });
        return;
      } catch (e) {
        await this.page.keyboard.press('Escape');
        if (Date.now() >= deadline)
          throw new Error(`command "${label}" is not in the palette after ${timeoutMs} ms`, { cause: e });
        await sleep(1_000);
      }
    }
  }

  /** Opens a workspace file through Quick Open (Ctrl+P), as a user would; its default editor is used. */
  async openFile(relativePath: string): Promise<void> {
    await this.openQuickInput('Control+P');
    const input = this.page.locator('.quick-input-widget input.input');
    await input.fill(relativePath);
    const name = basename(relativePath);
    const row = this.page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first();
    await row.waitFor({ state: 'visible', timeout: TIMEOUTS.quickInput });
    await input.press('Enter');
    await this.page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: TIMEOUTS.quickInput });
    await this.page
      .locator('.tabs-container .tab.active', { hasText: name })
      .waitFor({ state: 'visible', timeout: TIMEOUTS.webview });
  }

  private async openQuickInput(key: string): Promise<void> {
    const widget = this.page.locator('.quick-input-widget');
    // Focus the workbench first so the keybinding reaches it rather than a webview.
    await this.page
      .locator('.monaco-workbench .part.statusbar')
      .click({ position: { x: 5, y: 5 } })
      .catch(() => undefined);
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await this.page.keyboard.press(key);
      try {
        await widget.waitFor({ state: 'visible', timeout: 5_000 });
        return;
      } catch {
        await this.page.keyboard.press('Escape');
      }
    }
    throw new Error(`the quick input did not open with ${key}`);
  }

  /** The document frames of the webviews now visible (VS Code nests each: `iframe.webview` → `iframe#active-frame`). */
  async visibleWebviewFrames(): Promise<Frame[]> {
    const frames: Frame[] = [];
    for (const outer of await this.page.$$('iframe.webview')) {
      if (!(await outer.isVisible().catch(() => false))) continue;
      const outerFrame = await outer.contentFrame().catch(() => null);
      if (outerFrame === null) continue;
      const inner: ElementHandle | null = await outerFrame.$('iframe#active-frame').catch(() => null);
      const frame = inner === null ? null : await inner.contentFrame().catch(() => null);
      if (frame !== null) frames.push(frame);
    }
    return frames;
  }

  /**
   * Waits until a visible webview shows `[data-testid=id]` (visible, and satisfying `accept` on its trimmed text when
   * given) and returns that webview's frame with the text. Polls, so webviews that are still loading or being replaced
   * are tolerated.
   */
  async waitForTestId(
    id: string,
    options: { accept?: (text: string) => boolean; timeoutMs?: number } = {},
  ): Promise<{ frame: Frame; text: string }> {
    const timeoutMs = options.timeoutMs ?? TIMEOUTS.testId;
    const deadline = Date.now() + timeoutMs;
    let lastText: string | undefined;
    while (Date.now() < deadline) {
      for (const frame of await this.visibleWebviewFrames()) {
        const locator = frame.locator(`[data-testid="${id}"]`).first();
        if (!(await locator.isVisible().catch(() => false))) continue;
        const text = (await locator.innerText({ timeout: 2_000 }).catch(() => '')).trim();
        lastText = text;
        if (options.accept === undefined || options.accept(text)) return { frame, text };
      }
      await sleep(250);
    }
    const seen = lastText === undefined ? 'it never became visible' : `its last text was ${JSON.stringify(lastText)}`;
    throw new Error(`[data-testid="${id}"] was not satisfied in a visible webview within ${timeoutMs} ms (${seen})`);
  }

  /** Saves a PNG of the whole window to test-results/<name>.png and returns its path. */
  /** Closes the notification toasts (e.g. "Compressed …"), which float over the editor and catch clicks meant for it. */
  async closeToasts(): Promise<void> {
    const clear = this.page.locator('.notifications-toasts .codicon-notifications-clear');
    for (let i = (await clear.count()) - 1; i >= 0; i--) {
      await clear
        .nth(i)
        .click({ timeout: 5_000 })
        .catch(() => undefined);
    }
  }

  async screenshot(name: string): Promise<string> {
    mkdirSync(RESULTS, { recursive: true });
    const path = join(RESULTS, `${name}.png`);
    await this.page.screenshot({ path, timeout: 30_000 });
    return path;
  }

  /** Extension-host log files of this session, with the "Weight Lens" output channel's log when written. */
  extensionHostLogs(): string[] {
    return findFiles(join(this.userDataDir, 'logs'), (n) => /exthost|Weight Lens/i.test(n) && n.endsWith('.log'));
  }

  /**
   * After a failure: saves test-results/failure-<name>.png and returns a report with the code-server log tail, the
   * extension-host logs and the browser console errors.
   */
  async diagnose(name: string): Promise<string> {
    const parts: string[] = [];
    try {
      parts.push(`screenshot: ${await this.screenshot(`failure-${name}`)}`);
    } catch (e) {
      parts.push(`screenshot failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    const notifications = await this.page
      .locator(
        '.notifications-toasts .notification-list-item-message, .notifications-center .notification-list-item-message',
      )
      .allInnerTexts()
      .catch(() => []);
    if (notifications.length > 0) parts.push(`--- notifications ---\n${notifications.join('\n')}`);
    parts.push(`--- code-server log (${this.logFile}) ---\n${tailFile(this.logFile)}`);
    for (const log of this.extensionHostLogs()) parts.push(`--- ${log} ---\n${tailFile(log, 30)}`);
    parts.push(`--- browser console (errors, warnings) ---\n${this.consoleLines.slice(-30).join('\n')}`);
    return parts.join('\n');
  }

  /** Copies the extension-host logs into test-results/e2e/ so CI keeps them. */
  keepLogs(name: string): void {
    const dest = join(RESULTS, 'e2e', `logs-${name}`);
    for (const log of this.extensionHostLogs()) {
      mkdirSync(dest, { recursive: true });
      cpSync(log, join(dest, basename(log)));
    }
  }

  /** Ends Chromium and code-server (whole process groups) and removes the temporary folders. Never throws. */
  async close(): Promise<void> {
    await Promise.race([this.browser.close().catch(() => undefined), sleep(TIMEOUTS.close)]);
    await killGroup(this.server, TIMEOUTS.close);
    rmSync(this.tmp, { recursive: true, force: true });
    liveTmpDirs.delete(this.tmp);
  }
}

async function waitForHealthz(port: number, server: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + TIMEOUTS.healthz;
  while (Date.now() < deadline) {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new Error(`code-server exited early (${String(server.exitCode ?? server.signalCode)}); see ${logFile}`);
    }
    try {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return;
    } catch {
      /* not listening yet */
    }
    await sleep(250);
  }
  throw new Error(`code-server did not answer /healthz on port ${port} within ${TIMEOUTS.healthz} ms`);
}

/**
 * Runs one e2e step against `session`; on failure, rethrows with the session's `diagnose` report attached (a failure
 * screenshot, the code-server log tail, the extension-host logs and the browser console errors).
 */
export async function runStep(
  session: Session | undefined,
  name: string,
  body: (s: Session) => Promise<void>,
): Promise<void> {
  assert.ok(session, 'the code-server session did not start');
  try {
    await body(session);
  } catch (e) {
    const report = await session.diagnose(name);
    const message = e instanceof Error ? e.message : String(e);
    throw new Error(`${message}\n${report}`, { cause: e });
  }
}

/** When a webview painted, in ms after its document started loading (`undefined`: not (yet) in its timeline). */
export interface PaintTimes {
  /** The browser's first contentful paint. */
  firstContentfulPaint: number | undefined;
  /** The page script had built the skeleton and drawn the header (`weight-lens:skeleton` mark). */
  skeleton: number | undefined;
  /** The plotly bundle had loaded (`weight-lens:plotly` mark; only once a plot was drawn). */
  plotly: number | undefined;
}

/** Reads a webview's paint times from its performance timeline (for printing; never asserted). */
export async function paintTimes(frame: Frame): Promise<PaintTimes> {
  // Browser code as a string: this project's Node code is compiled without the DOM's types.
  return frame.evaluate<PaintTimes>(`(() => {
    const at = (name) => performance.getEntriesByName(name)[0]?.startTime;
    return { firstContentfulPaint: at('first-contentful-paint'), skeleton: at('weight-lens:skeleton'), plotly: at('weight-lens:plotly') };
  })()`);
}

/** One line for the log: `first contentful paint 120 ms, skeleton 95 ms, plotly 900 ms`. */
export function describePaint(t: PaintTimes): string {
  const ms = (v: number | undefined): string => (v === undefined ? 'n/a' : `${Math.round(v)} ms`);
  return `first contentful paint ${ms(t.firstContentfulPaint)}, skeleton and header ${ms(t.skeleton)}, plotly loaded ${ms(t.plotly)}`;
}

/**
 * Elements of a webview page wider than the page or reaching past its right edge (plots, tables, panes), as
 * `selector: width` lines; empty when everything fits the width the editor column gives it.
 */
export async function overflowingElements(
  frame: Frame,
  selector = '.plot, .pane, table, .cards, header',
): Promise<string[]> {
  return frame.evaluate<string[]>(`((sel) => {
    const width = document.documentElement.clientWidth;
    const out = [];
    if (document.documentElement.scrollWidth > width + 1) out.push('page: scrollWidth ' + document.documentElement.scrollWidth + ' > ' + width);
    for (const e of document.querySelectorAll(sel)) {
      const r = e.getBoundingClientRect();
      if (r.width === 0 || e.closest('[hidden]') !== null) continue;
      const name = e.tagName.toLowerCase() + (e.id === '' ? '' : '#' + e.id) + '.' + [...e.classList].join('.');
      if (r.right > width + 1) out.push(name + ': right edge ' + Math.round(r.right) + ' > page width ' + width);
      const box = e.parentElement;
      if (e.tagName === 'TABLE' && box !== null && e.scrollWidth > box.clientWidth + 1 && getComputedStyle(box).overflowX !== 'visible') {
        out.push(name + ': ' + e.scrollWidth + ' px wide in a ' + box.clientWidth + ' px box');
      }
    }
    return out;
  })(${JSON.stringify(selector)})`);
}
