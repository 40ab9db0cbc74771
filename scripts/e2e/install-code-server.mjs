// Installs code-server (VS Code's server and web workbench, npm package) into .cache/code-server/<version>/ for the
// end-to-end tests, offline apart from the npm registry. Idempotent: a marker file is written only after a complete,
// verified install; a half install (no marker) is wiped and redone. Usage: node scripts/e2e/install-code-server.mjs
// [--force]. Prints the code-server binary path on success. Importable: `ensureCodeServer()`.
//
// What this needs on the machine (Debian names): build-essential, python3, pkg-config, libkrb5-dev, libxkbfile-dev,
// libx11-dev, libsecret-1-dev (native modules built from source) and ripgrep (the download @vscode/ripgrep would make
// from GitHub is pre-seeded from /usr/bin/rg).
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const config = JSON.parse(readFileSync(join(here, 'code-server.json'), 'utf8'));

/** Upper bound for the whole npm install (native builds on 2 cores take ~2 minutes; allow slack). */
const INSTALL_TIMEOUT_MS = 20 * 60 * 1000;

/** Folder, marker and binary of the pinned code-server release. */
export function codeServerPaths(version = config.version) {
  const dir = join(root, '.cache', 'code-server', version);
  // A local (not --global) install: npm hands `npm_config_global` down to code-server's nested `npm install`s,
  // which then go wrong, so the package is installed into a throwaway project folder instead.
  const project = join(dir, 'project');
  return {
    version,
    dir,
    project,
    marker: join(dir, '.installed.json'),
    log: join(dir, 'install.log'),
    bin: join(project, 'node_modules', '.bin', 'code-server'),
    pkg: join(project, 'node_modules', 'code-server'),
  };
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Fails early with the Debian packages to install, rather than deep inside a node-gyp log. */
function preflight() {
  const missing = [];
  const major = Number(process.versions.node.split('.')[0]);
  if (major !== 20) {
    throw new Error(`code-server ${config.version} requires Node 20 (this is Node ${process.versions.node}).`);
  }
  if (!which('rg')) missing.push('ripgrep');
  if (!which('pkg-config')) missing.push('pkg-config');
  if (!which('krb5-config')) missing.push('libkrb5-dev');
  if (!which('make') || !which('g++')) missing.push('build-essential');
  if (!which('python3')) missing.push('python3');
  if (which('pkg-config')) {
    if (spawnSync('pkg-config', ['--exists', 'libsecret-1']).status !== 0) missing.push('libsecret-1-dev');
    if (spawnSync('pkg-config', ['--exists', 'xkbfile']).status !== 0) missing.push('libxkbfile-dev');
    if (spawnSync('pkg-config', ['--exists', 'x11']).status !== 0) missing.push('libx11-dev');
  }
  if (missing.length > 0) {
    throw new Error(
      `code-server's native modules need Debian packages that are missing: apt-get install ${missing.join(' ')}`,
    );
  }
}

/** Node headers for node-gyp: beside the running node binary when present (nodesource, nvm, setup-node). */
function nodeDir() {
  const candidate = resolve(dirname(process.execPath), '..');
  if (existsSync(join(candidate, 'include', 'node', 'node.h'))) return candidate;
  return process.env.npm_config_nodedir ?? '/usr';
}

/** Puts /usr/bin/rg where @vscode/ripgrep's postinstall looks for a cached download, so it never reaches GitHub. */
function seedRipgrep(tmp) {
  const rg = which('rg');
  if (!rg) throw new Error('ripgrep is missing: apt-get install ripgrep');
  const cache = join(tmp, `vscode-ripgrep-cache-${config.ripgrep.package}`);
  const staging = join(tmp, 'rg-staging');
  mkdirSync(cache, { recursive: true });
  mkdirSync(staging, { recursive: true });
  copyFileSync(rg, join(staging, 'rg'));
  chmodSync(join(staging, 'rg'), 0o755);
  const tar = spawnSync('tar', ['czf', join(cache, config.ripgrep.asset), '-C', staging, 'rg'], { encoding: 'utf8' });
  if (tar.status !== 0) throw new Error(`could not pack ripgrep: ${tar.stderr}`);
}

function tail(file, lines = 60) {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function runLogged(cmd, args, options, logFile, timeoutMs) {
  return new Promise((resolvePromise, reject) => {
    const fd = openSync(logFile, 'a');
    const child = spawn(cmd, args, { ...options, stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid ?? 0), 'SIGKILL');
      } catch {
        /* already gone */
      }
      reject(new Error(`${cmd} ${args.join(' ')} timed out after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise();
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code ?? signal}`));
    });
  });
}

/** True when the marker exists and the install it describes is still whole. */
export function isInstalled(paths = codeServerPaths()) {
  if (!existsSync(paths.marker) || !existsSync(paths.bin)) return false;
  return existsSync(join(paths.pkg, 'lib', 'vscode', 'node_modules', '@vscode', 'ripgrep', 'bin', 'rg'));
}

/**
 * Installs the pinned code-server unless a verified install exists; returns the binary path. `force` reinstalls.
 * Progress goes to stderr; npm's own output to <dir>/install.log (its tail is printed on failure).
 */
export async function ensureCodeServer({ force = false } = {}) {
  const paths = codeServerPaths();
  if (!force && isInstalled(paths)) return paths.bin;
  preflight();
  rmSync(paths.dir, { recursive: true, force: true });
  const tmp = join(paths.dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  mkdirSync(paths.project, { recursive: true });
  writeFileSync(
    join(paths.project, 'package.json'),
    JSON.stringify(
      { name: 'weight-lens-code-server', private: true, description: 'code-server for the e2e tests' },
      null,
      2,
    ),
  );
  seedRipgrep(tmp);
  const started = Date.now();
  process.stderr.write(
    `installing code-server ${paths.version} into ${paths.dir} (a few minutes; log: ${paths.log})\n`,
  );
  const env = {
    ...process.env,
    TMPDIR: tmp,
    npm_config_unsafe_perm: 'true',
    npm_config_yes: 'true',
    npm_config_nodedir: nodeDir(),
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_cache: process.env.npm_config_cache ?? join(process.env.HOME ?? tmp, '.npm'),
    // Settings of an enclosing `npm run` must not leak into code-server's nested installs.
    npm_config_global: undefined,
    npm_config_prefix: undefined,
    npm_config_local_prefix: undefined,
    // Never download Electron/Chromium/Playwright browsers during the install.
    ELECTRON_SKIP_BINARY_DOWNLOAD: '1',
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1',
    PUPPETEER_SKIP_DOWNLOAD: '1',
    VSCODE_SKIP_NODE_VERSION_CHECK: '1',
  };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const npm = which('npm') ?? 'npm';
  try {
    await runLogged(
      npm,
      ['install', '--no-audit', '--no-fund', '--no-package-lock', `code-server@${paths.version}`],
      { cwd: paths.project, env },
      paths.log,
      INSTALL_TIMEOUT_MS,
    );
    // code-server writes a config file and logs under XDG folders even for --version: keep them in tmp.
    const check = spawnSync(paths.bin, ['--version'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, XDG_CONFIG_HOME: join(tmp, 'config'), XDG_DATA_HOME: join(tmp, 'data') },
    });
    if (check.status !== 0) throw new Error(`code-server --version failed: ${check.stderr || check.stdout}`);
    const rgBin = join(paths.pkg, 'lib', 'vscode', 'node_modules', '@vscode', 'ripgrep', 'bin', 'rg');
    if (!existsSync(rgBin)) throw new Error(`ripgrep was not installed at ${rgBin}`);
    const seconds = Math.round((Date.now() - started) / 1000);
    writeFileSync(
      paths.marker,
      JSON.stringify(
        {
          version: paths.version,
          reports: check.stdout.trim().split('\n').pop(),
          node: process.version,
          seconds,
          bin: paths.bin,
        },
        null,
        2,
      ),
    );
    rmSync(tmp, { recursive: true, force: true });
    process.stderr.write(`code-server ${paths.version} installed in ${seconds} s\n`);
    return paths.bin;
  } catch (e) {
    process.stderr.write(`code-server install failed; last lines of ${paths.log}:\n${tail(paths.log)}\n`);
    throw e;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const bin = await ensureCodeServer({ force: process.argv.includes('--force') });
    console.log(bin);
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  }
}
