// Builds the extension and packs it into .vsix packages with @vscode/vsce, offline. Usage:
//   node scripts/package.mjs [--out DIR] [--no-build] [--list] [--target T[,T…]] [--universal-only]
// Writes the universal package `weight-lens-<version>.vsix` (TensorFlow.js wasm engine only: what the marketplace
// serves to any platform without a package of its own) and one platform package per NATIVE_TARGETS entry,
// `weight-lens-<target>-<version>.vsix` (`vsce package --target <target>`), which also holds onnxruntime-node with
// only that platform's binaries, under dist/native/node_modules/ (found there by src/core/backend/onnxRuntime.ts).
// A target whose binaries the installed onnxruntime-node does not ship is skipped, and the output says so.
// The bundles are self-contained (esbuild; h5wasm is copied into dist/h5wasm/), so no node_modules ship (`dependencies: false`). The packages are made
// from a staging copy of the repository root without node_modules/.git/.cache (vsce globs every file under its cwd
// before applying .vscodeignore, and the e2e code-server cache alone holds tens of thousands). After packing, each
// archive is opened and checked for the files the extension loads at run time (REQUIRED_ENTRIES, plus the native
// entries of its target) and for what it must not hold (FORBIDDEN_PATTERNS, other platforms' binaries); a problem
// fails the build. Prints each .vsix path on its own line, the universal one last. Importable: `packageExtension()`,
// `packageAll()`, `checkVsix()`, `vsixEntries()`, `NATIVE_TARGETS`.
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

/**
 * VS Code targets that get a platform package with the native engine, and the onnxruntime-node binary folder
 * (`bin/napi-v<N>/<platform>/<arch>`) each takes its binaries from.
 */
export const NATIVE_TARGETS = {
  'linux-x64': ['linux', 'x64'],
  'linux-arm64': ['linux', 'arm64'],
  'win32-x64': ['win32', 'x64'],
  'win32-arm64': ['win32', 'arm64'],
  'darwin-x64': ['darwin', 'x64'],
  'darwin-arm64': ['darwin', 'arm64'],
};

/** Where a platform package holds onnxruntime-node and onnxruntime-common (under the bundles' folder, dist/). */
export const NATIVE_DIR = 'dist/native/node_modules';
const ORT_NODE = join(root, 'node_modules', 'onnxruntime-node');
const ORT_COMMON = join(root, 'node_modules', 'onnxruntime-common');

/** The VS Code target of this machine (`linux-x64`…), where it is one of NATIVE_TARGETS; else undefined. */
export function hostTarget() {
  const target = `${process.platform}-${process.arch}`;
  return target in NATIVE_TARGETS ? target : undefined;
}

/** The napi-v<N> folders of the installed onnxruntime-node (empty when it is not installed). */
function napiDirs() {
  const bin = join(ORT_NODE, 'bin');
  return existsSync(bin) ? readdirSync(bin).filter((d) => /^napi-v\d+$/.test(d)) : [];
}

/**
 * The files a platform package adds for `target`, as [source path, path inside the package] pairs: onnxruntime-node's
 * package.json, its CommonJS entry files and that one platform's binaries; onnxruntime-common's package.json and
 * CommonJS build. Null when the installed onnxruntime-node has no binaries for the target.
 */
export function nativeFiles(target) {
  const folder = NATIVE_TARGETS[target];
  if (folder === undefined)
    throw new Error(`unknown target ${target}; known: ${Object.keys(NATIVE_TARGETS).join(', ')}`);
  const files = [];
  for (const napi of napiDirs()) {
    const dir = join(ORT_NODE, 'bin', napi, ...folder);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir))
      files.push([join(dir, f), `${NATIVE_DIR}/onnxruntime-node/bin/${napi}/${folder.join('/')}/${f}`]);
  }
  if (files.length === 0) return null;
  const js = (dir, rel) =>
    readdirSync(join(dir, rel))
      .filter((f) => f.endsWith('.js') || f === 'package.json')
      .map((f) => `${rel}/${f}`);
  for (const f of ['package.json', ...js(ORT_NODE, 'dist')])
    files.push([join(ORT_NODE, f), `${NATIVE_DIR}/onnxruntime-node/${f}`]);
  for (const f of ['package.json', ...js(ORT_COMMON, 'dist/cjs')])
    files.push([join(ORT_COMMON, f), `${NATIVE_DIR}/onnxruntime-common/${f}`]);
  return files;
}

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

/**
 * Checks a .vsix against REQUIRED_ENTRIES and FORBIDDEN_PATTERNS, and its native engine against `target`: a platform
 * package holds onnxruntime-node's entry, binding and runtime library for its own platform and no other platform's
 * binaries; the universal package (`target` undefined) holds no native files. Returns the problems (empty when fine).
 */
export function checkVsix(vsixPath, target) {
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
  const manifest = Buffer.from(
    unzipSync(readFileSync(vsixPath), { filter: (f) => f.name === 'extension.vsixmanifest' })[
      'extension.vsixmanifest'
    ] ?? [],
  ).toString('utf8');
  const declared = /TargetPlatform="([^"]*)"/.exec(manifest)?.[1];
  if (declared !== target)
    problems.push(`extension.vsixmanifest declares target ${declared ?? '(none)'}, expected ${target ?? '(none)'}`);
  const native = [...entries].filter((n) => n.startsWith(`extension/${NATIVE_DIR}/`));
  if (target === undefined) {
    for (const name of native) problems.push(`the universal package must not ship ${name}`);
    return problems;
  }
  const folder = (NATIVE_TARGETS[target] ?? []).join('/');
  const bin = new RegExp(`^extension/${NATIVE_DIR}/onnxruntime-node/bin/napi-v\\d+/([^/]+/[^/]+)/`);
  for (const name of native) {
    const m = bin.exec(name);
    if (m !== null && m[1] !== folder) problems.push(`the ${target} package must not ship another platform's ${name}`);
  }
  const has = (re) => native.some((n) => re.test(n));
  const own = `^extension/${NATIVE_DIR}/onnxruntime-node/bin/napi-v\\d+/${folder}/`;
  if (!has(new RegExp(`${own}onnxruntime_binding\\.node$`)))
    problems.push(`missing onnxruntime_binding.node for ${target}`);
  if (!has(new RegExp(`${own}(lib)?onnxruntime[.\\d]*\\.(so|dylib|dll)[.\\d]*$`)))
    problems.push(`missing the onnxruntime library for ${target}`);
  for (const f of [
    'onnxruntime-node/package.json',
    'onnxruntime-node/dist/index.js',
    'onnxruntime-node/dist/binding.js',
    'onnxruntime-common/dist/cjs/index.js',
  ]) {
    if (!entries.has(`extension/${NATIVE_DIR}/${f}`)) problems.push(`missing extension/${NATIVE_DIR}/${f}`);
  }
  return problems;
}

/** Packs the staging folder `stage` into `target` (a .vsix path) with vsce; `platform` is the VS Code target or undefined. */
async function pack(stage, targetPath, platform, quiet) {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
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
      packagePath: targetPath,
      ...(platform !== undefined ? { target: platform } : {}),
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
  const problems = checkVsix(targetPath, platform);
  if (problems.length > 0)
    throw new Error(`${targetPath} is incomplete or holds what it must not:\n  ${problems.join('\n  ')}`);
  return targetPath;
}

/** A staging copy of the repository root (without SKIP_TOP, .vsix files, and any native files left in dist/). */
function stageRoot() {
  const stage = mkdtempSync(join(tmpdir(), 'weight-lens-vsix-'));
  for (const name of readdirSync(root)) {
    if (SKIP_TOP.has(name) || name.endsWith('.vsix')) continue;
    cpSync(join(root, name), join(stage, name), { recursive: true, dereference: true });
  }
  rmSync(join(stage, NATIVE_DIR, '..'), { recursive: true, force: true });
  return stage;
}

/** The .vsix path for `out` (a .vsix path or a folder; default the repository root) and `platform`. */
function vsixPath(out, platform) {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const fileName = `${manifest.name}-${platform !== undefined ? `${platform}-` : ''}${manifest.version}.vsix`;
  let target = resolve(out ?? root);
  if (existsSync(target) && statSync(target).isDirectory()) target = join(target, fileName);
  else if (!target.endsWith('.vsix')) target = join(target, fileName);
  mkdirSync(dirname(target), { recursive: true });
  return target;
}

/**
 * Builds (unless `build: false`) and packs one package: the universal one (`target` undefined, wasm engine only) or
 * the platform package of a NATIVE_TARGETS entry. `out` is a .vsix path or a folder (default: repository root, file
 * `weight-lens-[<target>-]<version>.vsix`). Returns the absolute .vsix path. Throws when vsce fails, the archive
 * lacks a required file or holds a forbidden one, or onnxruntime-node has no binaries for `target`.
 */
export async function packageExtension({ out, build: doBuild = true, quiet = false, target } = {}) {
  if (doBuild) build();
  const files = target === undefined ? [] : nativeFiles(target);
  if (files === null) throw new Error(`the installed onnxruntime-node has no binaries for ${target}`);
  const stage = stageRoot();
  try {
    for (const [from, to] of files) {
      mkdirSync(dirname(join(stage, to)), { recursive: true });
      cpSync(from, join(stage, to), { dereference: true });
    }
    return await pack(stage, vsixPath(out, target), target, quiet);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * Builds once and packs the universal package and the platform packages of `targets` (default: all NATIVE_TARGETS)
 * into the folder `out`. Resolves to `{ universal, targets: { [target]: path }, skipped: { [target]: reason } }`.
 */
export async function packageAll({
  out,
  build: doBuild = true,
  quiet = false,
  targets = Object.keys(NATIVE_TARGETS),
} = {}) {
  if (doBuild) build();
  const result = { universal: '', targets: {}, skipped: {} };
  for (const target of targets) {
    if (nativeFiles(target) === null) {
      const version = existsSync(join(ORT_NODE, 'package.json'))
        ? JSON.parse(readFileSync(join(ORT_NODE, 'package.json'), 'utf8')).version
        : undefined;
      result.skipped[target] =
        version === undefined
          ? 'onnxruntime-node is not installed'
          : `onnxruntime-node ${version} ships no ${target} binaries; that platform gets the universal package`;
      continue;
    }
    result.targets[target] = await packageExtension({ out, build: false, quiet, target });
  }
  result.universal = await packageExtension({ out, build: false, quiet });
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const out = argValue('--out');
    const doBuild = !process.argv.includes('--no-build');
    const targets = argValue('--target')?.split(',') ?? (process.argv.includes('--universal-only') ? [] : undefined);
    const result = await packageAll({ out, build: doBuild, ...(targets !== undefined ? { targets } : {}) });
    for (const [target, reason] of Object.entries(result.skipped)) console.error(`skipped ${target}: ${reason}`);
    for (const vsix of [...Object.values(result.targets), result.universal]) {
      if (process.argv.includes('--list')) for (const name of vsixEntries(vsix)) console.log(`  ${name}`);
      console.log(vsix);
    }
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  }
}
