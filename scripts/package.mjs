// Builds the extension and packs it into a .vsix with @vscode/vsce, offline. Usage:
//   node scripts/package.mjs [--out FILE_OR_DIR] [--no-build] [--list]
// The bundles are self-contained (esbuild; h5wasm is copied into dist/h5wasm/), so no node_modules ship
// (`dependencies: false`). The package is made from
// a staging copy of the repository root without node_modules/.git/.cache (vsce globs every file under its cwd before
// applying .vscodeignore, and the e2e code-server cache alone holds tens of thousands). After packing, the archive is
// opened and checked for the files the extension loads at run time (REQUIRED_ENTRIES); a missing one fails the build.
// Prints the .vsix path on the last line of stdout. Importable: `packageExtension()`, `vsixEntries()`.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { unzipSync } from 'fflate';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Top-level entries never copied into the staging folder (large, generated, or private to the repository). */
const SKIP_TOP = new Set(['node_modules', '.git', '.cache', '.vscode-test', 'test-results', 'bench', '.gl', '.whl']);

/** What the package must and must not hold: one list, shared with test/e2e/vsix.test.ts. */
const CONTENTS = JSON.parse(readFileSync(join(root, 'scripts', 'vsix-contents.json'), 'utf8'));

/**
 * Archive paths (inside the .vsix, under `extension/`) that must be present: the files the extension loads at run
 * time (scripts/vsix-contents.json says which). Only entries whose source exists in the repository are demanded, so
 * the list stays right while parts of the extension are being written.
 */
export const REQUIRED_ENTRIES = CONTENTS.required;

/** Archive paths that must never ship. */
export const FORBIDDEN_PATTERNS = CONTENTS.forbidden.map((p) => new RegExp(p));

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function build() {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`build failed (exit ${r.status ?? r.signal})`);
}

/** The names of the files inside a .vsix (a zip), in archive order. */
export function vsixEntries(vsixPath) {
  const names = [];
  unzipSync(readFileSync(vsixPath), {
    filter: (file) => {
      names.push(file.name);
      return false;
    },
  });
  return names;
}

/** Checks a .vsix against REQUIRED_ENTRIES and FORBIDDEN_PATTERNS; returns the problems found (empty when fine). */
export function checkVsix(vsixPath) {
  const entries = new Set(vsixEntries(vsixPath));
  const problems = [];
  for (const required of REQUIRED_ENTRIES) {
    const source = join(root, required.slice('extension/'.length));
    const demanded = required === 'extension/package.json' || existsSync(source);
    if (demanded && !entries.has(required)) problems.push(`missing ${required}`);
  }
  for (const name of entries) {
    if (FORBIDDEN_PATTERNS.some((p) => p.test(name))) problems.push(`must not ship ${name}`);
  }
  return problems;
}

/**
 * Builds (unless `build: false`) and packs the extension. `out` is a .vsix path or a folder (default: repository
 * root, file `weight-lens-<version>.vsix`). Returns the absolute .vsix path. Throws when vsce fails or the archive
 * lacks a required file.
 */
export async function packageExtension({ out, build: doBuild = true, quiet = false } = {}) {
  if (doBuild) build();
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const fileName = `${manifest.name}-${manifest.version}.vsix`;
  let target = resolve(out ?? root);
  if (existsSync(target) && statSync(target).isDirectory()) target = join(target, fileName);
  else if (!target.endsWith('.vsix')) target = join(target, fileName);
  mkdirSync(dirname(target), { recursive: true });

  const stage = mkdtempSync(join(tmpdir(), 'weight-lens-vsix-'));
  try {
    for (const name of readdirSync(root)) {
      if (SKIP_TOP.has(name) || name.endsWith('.vsix')) continue;
      cpSync(join(root, name), join(stage, name), { recursive: true, dereference: true });
    }
    const { createVSIX } = await import('@vscode/vsce');
    const hasRepository = Boolean(manifest.repository);
    const log = console.log;
    const info = console.info;
    if (quiet) {
      console.log = () => undefined;
      console.info = () => undefined;
    }
    try {
      await createVSIX({
        cwd: stage,
        packagePath: target,
        dependencies: false,
        allowMissingRepository: true,
        // Without a repository URL vsce cannot rewrite README links to absolute ones, and would refuse relative images.
        rewriteRelativeLinks: hasRepository,
        skipLicense: !['LICENSE', 'LICENSE.md', 'LICENSE.txt'].some((f) => existsSync(join(root, f))),
        gitHubIssueLinking: false,
        gitLabIssueLinking: false,
        updatePackageJson: false,
      });
    } finally {
      console.log = log;
      console.info = info;
    }
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  const problems = checkVsix(target);
  if (problems.length > 0) throw new Error(`${target} is incomplete:\n  ${problems.join('\n  ')}`);
  return target;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const out = argValue('--out');
    const vsix = await packageExtension({ out, build: !process.argv.includes('--no-build') });
    if (process.argv.includes('--list')) for (const name of vsixEntries(vsix)) console.log(`  ${name}`);
    console.log(vsix);
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  }
}
