// Runs test/vscode-suite (the checks @vscode/test-electron runs in desktop VS Code) inside code-server's remote
// extension host against the installed .vsix, the way @vscode/test-web does: the workbench URL's payload names the
// extension under development (the installed folder) and the tests path. The suite's console output reaches the
// browser console, where its summary line is read.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import { goodFixtures, hostileCases } from '../helpers/fixtures';
import { RESULTS, ROOT, Session } from './harness';

/** Upper bound for the whole suite inside VS Code, in milliseconds. */
const SUITE_TIMEOUT_MS = 180_000;

void describe('test/vscode-suite inside code-server', { timeout: 420_000 }, () => {
  let session: Session | undefined;
  const lines: string[] = [];
  let summary: Promise<{ passed: number; failed: number }> | undefined;

  before(
    async () => {
      const good = goodFixtures()
        .filter((f) => f.format === 'safetensors' && f.file.endsWith('.safetensors'))
        .sort((a, b) => b.tensors - a.tensors)[0];
      const hostile = hostileCases().find((c) => c.group === 'safetensors' && c.file.endsWith('.safetensors'));
      assert.ok(good, 'no safetensors fixture');
      assert.ok(hostile, 'no hostile safetensors fixture');
      const outDir = join(RESULTS, 'e2e', 'vscode-suite');
      mkdirSync(outDir, { recursive: true });
      const suite = join(outDir, 'index.js');
      await build({
        entryPoints: [join(ROOT, 'test', 'vscode-suite', 'index.ts')],
        outfile: suite,
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: 'node20',
        external: ['vscode'],
        logLevel: 'warning',
      });
      const goodName = basename(good.path);
      const hostileName = `broken-${basename(hostile.path)}`;
      let resolveSummary: (v: { passed: number; failed: number }) => void = () => undefined;
      summary = new Promise((r) => {
        resolveSummary = r;
      });
      session = await Session.start({
        name: 'vscode-suite',
        files: [
          { from: good.path, to: goodName },
          { from: hostile.path, to: hostileName },
          {
            to: 'suite-fixtures.json',
            content: JSON.stringify({
              good: [{ file: goodName, tensors: good.tensors }],
              hostile: [{ file: hostileName, message: hostile.message }],
            }),
          },
        ],
        payload: ({ extensionDir }) => [
          ['extensionDevelopmentPath', extensionDir],
          ['extensionTestsPath', suite],
        ],
      });
      session.consoleListeners.push((_type, text) => {
        const clean = text.replace(/%c\s*\w+\s+color:\s*#\w+\s*/g, '').trim();
        if (/^(ok|FAIL)\s/.test(clean) || clean.includes('checks passed')) lines.push(clean.split('\n')[0] ?? clean);
        const m = /weight-lens-suite: passed=(\d+) failed=(\d+)/.exec(clean);
        if (m) resolveSummary({ passed: Number(m[1]), failed: Number(m[2]) });
      });
    },
    { timeout: 240_000 },
  );

  after(async () => {
    if (session !== undefined) {
      session.keepLogs('vscode-suite');
      await session.close();
    }
  });

  void test('every check of the suite passes', { timeout: SUITE_TIMEOUT_MS + 10_000 }, async () => {
    const s = session;
    assert.ok(s && summary, 'the code-server session did not start');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`the suite printed no summary within ${SUITE_TIMEOUT_MS} ms`));
      }, SUITE_TIMEOUT_MS);
    });
    try {
      const result = await Promise.race([summary, timeout]);
      assert.equal(result.failed, 0, `failed checks:\n${lines.filter((l) => l.startsWith('FAIL')).join('\n')}`);
      assert.ok(result.passed > 0, 'the suite ran no checks');
    } catch (e) {
      const report = await s.diagnose('vscode-suite');
      throw new Error(
        `${e instanceof Error ? e.message : String(e)}\n--- suite output ---\n${lines.join('\n')}\n${report}`,
        { cause: e },
      );
    } finally {
      clearTimeout(timer);
    }
  });
});
