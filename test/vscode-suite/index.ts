// In-VS-Code checks of the extension, run inside the extension host by @vscode/test-electron (scripts/test-electron.mjs
// bundles this file and passes it as --extensionTestsPath). A minimal runner without Mocha: VS Code calls `run()`,
// each check runs in order with a time limit, and `run()` rejects if any failed, which makes runTests exit non-zero.
// test/e2e/vscode-suite.test.ts runs this same suite in code-server's extension host, so it is exercised on machines
// without desktop VS Code too.
import * as vscode from 'vscode';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Extension identifier (`publisher.name` in package.json). */
const EXTENSION_ID = 'weight-lens.weight-lens';
/** Custom editor view type of the Inspector. */
const INSPECTOR = 'weightLens.inspector';
/** The commands the extension's manifest contributes (`contributes.commands`): each must be registered on activation. */
function contributedCommands(): string[] {
  const extension = vscode.extensions.getExtension(EXTENSION_ID);
  assert.ok(extension, `${EXTENSION_ID} is not installed`);
  const manifest = extension.packageJSON as { contributes?: { commands?: { command: string }[] } };
  return (manifest.contributes?.commands ?? []).map((c) => c.command);
}
/** Per-check limit, in milliseconds. */
const CHECK_TIMEOUT_MS = 60_000;

interface Check {
  name: string;
  run: () => Promise<void>;
}

function workspaceFolder(): vscode.Uri {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'scripts/test-electron.mjs opens a workspace folder holding copies of the fixtures');
  return folder.uri;
}

/** Workspace files named in the fixture list written by scripts/test-electron.mjs (`suite-fixtures.json`). */
function fixtureList(): { good: { file: string; tensors: number }[]; hostile: { file: string; message: string }[] } {
  const listPath = join(workspaceFolder().fsPath, 'suite-fixtures.json');
  assert.ok(existsSync(listPath), `missing ${listPath}`);
  return JSON.parse(readFileSync(listPath, 'utf8')) as {
    good: { file: string; tensors: number }[];
    hostile: { file: string; message: string }[];
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until `predicate` holds, polling every 100 ms; fails with `what` after `timeoutMs`. */
async function waitFor(what: string, predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** True when the active tab is the Inspector showing `uri`. */
function inspectorIsActiveFor(uri: vscode.Uri): boolean {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return (
    input instanceof vscode.TabInputCustom && input.viewType === INSPECTOR && input.uri.toString() === uri.toString()
  );
}

const checks: Check[] = [
  {
    name: 'the extension is installed and activates',
    run: async () => {
      const extension = vscode.extensions.getExtension(EXTENSION_ID);
      assert.ok(extension, `${EXTENSION_ID} is not installed`);
      await extension.activate();
      assert.equal(extension.isActive, true);
    },
  },
  {
    name: 'every contributed command is registered',
    run: async () => {
      const all = new Set(await vscode.commands.getCommands(true));
      const contributed = contributedCommands();
      assert.ok(contributed.length >= 8, `the manifest contributes only ${contributed.length} commands`);
      const missing = contributed.filter((command) => !all.has(command));
      assert.deepEqual(missing, [], `contributed but not registered: ${missing.join(', ')}`);
      await vscode.commands.executeCommand('weightLens.showLog');
    },
  },
  {
    name: 'a .safetensors checkpoint opens in the Inspector (vscode.openWith)',
    run: async () => {
      const good = fixtureList().good[0];
      assert.ok(good, 'no good fixture listed');
      const uri = vscode.Uri.joinPath(workspaceFolder(), good.file);
      await vscode.commands.executeCommand('vscode.openWith', uri, INSPECTOR);
      await waitFor(`the Inspector tab for ${good.file}`, () => inspectorIsActiveFor(uri));
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    },
  },
  {
    name: '"Weight Lens: Open in Inspector" opens a checkpoint given its URI, and Reload works on it',
    run: async () => {
      const good = fixtureList().good[0];
      assert.ok(good, 'no good fixture listed');
      const uri = vscode.Uri.joinPath(workspaceFolder(), good.file);
      await vscode.commands.executeCommand('weightLens.openInspector', uri);
      await waitFor(`the Inspector tab for ${good.file}`, () => inspectorIsActiveFor(uri));
      await vscode.commands.executeCommand('weightLens.reloadInspector');
      await waitFor('the Inspector to stay open after a reload', () => inspectorIsActiveFor(uri));
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    },
  },
  {
    name: 'a corrupt checkpoint opens in the Inspector without breaking the extension host',
    run: async () => {
      const hostile = fixtureList().hostile[0];
      assert.ok(hostile, 'no hostile fixture listed');
      const uri = vscode.Uri.joinPath(workspaceFolder(), hostile.file);
      await vscode.commands.executeCommand('vscode.openWith', uri, INSPECTOR);
      await waitFor(`the Inspector tab for ${hostile.file}`, () => inspectorIsActiveFor(uri));
      // The extension is still responsive afterwards.
      await vscode.commands.executeCommand('weightLens.showLog');
      const extension = vscode.extensions.getExtension(EXTENSION_ID);
      assert.equal(extension?.isActive, true);
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    },
  },
];

async function withTimeout(check: Check): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${CHECK_TIMEOUT_MS} ms`));
    }, CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([check.run(), limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** Entry point called by VS Code's test host. Resolves when every check passed; rejects listing the failures. */
export async function run(): Promise<void> {
  const failures: string[] = [];
  for (const check of checks) {
    const started = Date.now();
    try {
      await withTimeout(check);
      console.log(`  ok   ${check.name} (${Date.now() - started} ms)`);
    } catch (e) {
      const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
      failures.push(`${check.name}: ${message}`);
      console.error(`  FAIL ${check.name}\n${message}`);
    }
  }
  console.log(`${checks.length - failures.length}/${checks.length} checks passed`);
  // One machine-readable line for runners that only see the console (test/e2e/vscode-suite.test.ts).
  console.log(`weight-lens-suite: passed=${checks.length - failures.length} failed=${failures.length}`);
  if (failures.length > 0) throw new Error(`${failures.length} check(s) failed:\n${failures.join('\n')}`);
}
