// `npm run test:electron`: runs test/vscode-suite inside desktop VS Code with @vscode/test-electron. Builds the
// extension, bundles the suite with esbuild (`vscode` external) into .vscode-test/suite/index.js, prepares a workspace
// holding copies of fixtures, then downloads VS Code (into .vscode-test/) and runs the suite in its extension host.
// Needs a machine that can reach update.code.visualstudio.com (these project machines cannot: use `npm run test:e2e`
// there) and, on Linux without a display, `xvfb-run -a npm run test:electron`.
//   --bundle-only        only build and bundle (checks that the suite compiles; works offline)
//   VSCODE_TEST_VERSION  VS Code version to test against: `stable` (default), `insiders`, `min` (= engines.vscode
//                        minimum from package.json) or an exact version such as 1.100.3
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  existsSync,
  readdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const suiteOut = join(root, '.vscode-test', 'suite', 'index.js');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

function build() {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`build failed (exit ${r.status ?? r.signal})`);
}

async function bundleSuite() {
  await esbuild.build({
    entryPoints: [join(root, 'test', 'vscode-suite', 'index.ts')],
    outfile: suiteOut,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: 'inline',
    external: ['vscode'],
    logLevel: 'warning',
  });
}

/** Reads every fixture manifest of one kind: good files (`files`) or hostile cases (`cases`). */
function manifests(dir, key) {
  const out = [];
  if (!existsSync(dir)) return out;
  for (const group of readdirSync(dir)) {
    const path = join(dir, group, 'manifest.json');
    if (!existsSync(path)) continue;
    for (const entry of JSON.parse(readFileSync(path, 'utf8'))[key] ?? [])
      out.push({ ...entry, path: join(dir, group, entry.file) });
  }
  return out;
}

/** A temporary workspace with one good and one hostile .safetensors fixture plus the list the suite reads. */
function prepareWorkspace() {
  const fixtures = join(root, 'test', 'fixtures');
  const good = manifests(fixtures, 'files')
    .filter((f) => f.format === 'safetensors' && f.file.endsWith('.safetensors'))
    .sort((a, b) => b.tensors - a.tensors);
  const hostile = manifests(join(fixtures, 'hostile'), 'cases').filter((c) => c.file.endsWith('.safetensors'));
  if (good.length === 0 || hostile.length === 0)
    throw new Error('test/fixtures lacks a good or a hostile .safetensors fixture');
  const workspace = mkdtempSync(join(tmpdir(), 'weight-lens-suite-'));
  const g = good[0];
  const h = hostile[0];
  const hostileName = `broken-${basename(h.file)}`;
  copyFileSync(g.path, join(workspace, basename(g.file)));
  copyFileSync(h.path, join(workspace, hostileName));
  writeFileSync(
    join(workspace, 'suite-fixtures.json'),
    JSON.stringify(
      { good: [{ file: basename(g.file), tensors: g.tensors }], hostile: [{ file: hostileName, message: h.message }] },
      null,
      2,
    ),
  );
  return workspace;
}

function vscodeVersion() {
  const wanted = process.env.VSCODE_TEST_VERSION ?? 'stable';
  if (wanted !== 'min') return wanted;
  const match = /(\d+\.\d+\.\d+)/.exec(manifest.engines.vscode);
  if (!match) throw new Error(`cannot read a version from engines.vscode ${manifest.engines.vscode}`);
  return match[1];
}

try {
  build();
  await bundleSuite();
  console.log(`suite bundled: ${suiteOut}`);
  if (process.argv.includes('--bundle-only')) process.exit(0);
  const { runTests } = await import('@vscode/test-electron');
  const workspace = prepareWorkspace();
  const userData = mkdtempSync(join(tmpdir(), 'weight-lens-suite-user-'));
  mkdirSync(join(userData, 'User'), { recursive: true });
  writeFileSync(join(userData, 'User', 'settings.json'), JSON.stringify({ 'security.workspace.trust.enabled': false }));
  let code = 1;
  try {
    code = await runTests({
      version: vscodeVersion(),
      extensionDevelopmentPath: root,
      extensionTestsPath: suiteOut,
      launchArgs: [
        workspace,
        '--disable-extensions',
        '--disable-workspace-trust',
        '--skip-welcome',
        '--skip-release-notes',
        '--user-data-dir',
        userData,
      ],
    });
  } finally {
    rmSync(workspace, { recursive: true, force: true });
    rmSync(userData, { recursive: true, force: true });
  }
  process.exit(code);
} catch (e) {
  const message = e instanceof Error ? e.message : String(e);
  console.error(`test:electron: ${message}`);
  if (/ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|getaddrinfo/.test(message)) {
    console.error(
      'test:electron: VS Code could not be downloaded from this machine; `npm run test:e2e` runs the same suite in code-server.',
    );
  }
  process.exit(1);
}
