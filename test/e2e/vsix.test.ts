// The packaged .vsix holds what the extension loads at run time (bundles, the engine worker, the statistics thread,
// tfjs wasm binaries, h5wasm, vendored browser bundles) and nothing it must not ship (node_modules, sources, tests,
// source maps): the lists of scripts/vsix-contents.json, which packaging checks too. Each platform package holds
// onnxruntime-node with its own platform's binaries and no other's, the universal package none; and the bundles of
// this machine's platform package, unpacked, evaluate a model on their own native engine while the universal
// package's fall back to wasm and say why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { unzipSync } from 'fflate';
import contents from '../../scripts/vsix-contents.json';
import { FIXTURES } from '../helpers/fixtures';
import { extensionId, hostTarget, vsixPackages, vsixUnderTest } from './harness';

/** Platform folder of onnxruntime-node's binaries (bin/napi-v<N>/<platform>/<arch>) for each VS Code target. */
const BINARY_FOLDERS: Record<string, string> = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'win32-x64': 'win32/x64',
  'win32-arm64': 'win32/arm64',
  'darwin-arm64': 'darwin/arm64',
};
const NATIVE = 'extension/dist/native/node_modules/';

function entries(vsix: string): { names: Set<string>; manifest: Record<string, unknown> } {
  const names = new Set<string>();
  const files = unzipSync(readFileSync(vsix), {
    filter: (file) => {
      names.add(file.name);
      return file.name === 'extension/package.json';
    },
  });
  const raw = files['extension/package.json'];
  assert.ok(raw, 'extension/package.json is missing');
  return { names, manifest: JSON.parse(Buffer.from(raw).toString('utf8')) as Record<string, unknown> };
}

void test(
  'the .vsix contains the bundles, worker, statistics thread, wasm binaries, h5wasm and vendored webview libraries',
  { timeout: 300_000 },
  () => {
    const vsix = vsixUnderTest();
    const { names, manifest } = entries(vsix);
    const required = ['extension.vsixmanifest', ...contents.required];
    for (const name of required) assert.ok(names.has(name), `${vsix} lacks ${name}`);
    const { id, version } = extensionId();
    assert.equal(`${String(manifest.publisher)}.${String(manifest.name)}`, id);
    assert.equal(manifest.version, version);
  },
);

void test('the .vsix ships no node_modules, sources, tests or source maps', { timeout: 300_000 }, () => {
  const { names } = entries(vsixUnderTest());
  const patterns = contents.forbidden.map((p) => new RegExp(p));
  const forbidden = [...names].filter((n) => patterns.some((p) => p.test(n)));
  assert.deepEqual(forbidden, []);
  // Self-contained bundles keep the package small; plotly alone is ~4.6 MB.
  assert.ok(names.size < 200, `${names.size} files in the package`);
});

void test(
  "each platform package holds only its own platform's onnxruntime-node binaries; the universal one none",
  { timeout: 600_000 },
  () => {
    const { universal, targets } = vsixPackages();
    // onnxruntime-node 1.30 ships binaries for these five targets (not darwin-x64, which gets the universal package).
    assert.deepEqual(Object.keys(targets).sort(), Object.keys(BINARY_FOLDERS).sort());
    for (const [target, vsix] of Object.entries(targets)) {
      const { names } = entries(vsix);
      const binaries = [...names].filter((n) => n.startsWith(`${NATIVE}onnxruntime-node/bin/`));
      const folders = new Set(binaries.map((n) => /bin\/napi-v\d+\/([^/]+\/[^/]+)\//.exec(n)?.[1]));
      assert.deepEqual([...folders], [BINARY_FOLDERS[target]], `${target}: binary folders`);
      assert.ok(
        binaries.some((n) => n.endsWith('/onnxruntime_binding.node')),
        `${target}: no binding`,
      );
      assert.ok(
        binaries.some((n) => /onnxruntime[.\d]*\.(so|dylib|dll)[.\d]*$/.test(n)),
        `${target}: no runtime library`,
      );
      for (const f of ['onnxruntime-node/dist/index.js', 'onnxruntime-common/dist/cjs/index.js'])
        assert.ok(names.has(NATIVE + f), `${target}: no ${f}`);
      const manifest = Buffer.from(
        unzipSync(readFileSync(vsix), { filter: (f) => f.name === 'extension.vsixmanifest' })[
          'extension.vsixmanifest'
        ] ?? [],
      ).toString('utf8');
      assert.match(manifest, new RegExp(`TargetPlatform="${target}"`));
    }
    const { names } = entries(universal);
    assert.deepEqual(
      [...names].filter((n) => n.startsWith('extension/dist/native/')),
      [],
      'the universal package ships no native files',
    );
  },
);

/** Unpacks `vsix` and runs its bundled CLI's `eval --json` on the ResNet-20 from outside any node_modules tree. */
function evalWithPackagedCli(vsix: string): { engine: string; engineReason?: string; backend: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wl-vsix-'));
  try {
    for (const [name, data] of Object.entries(unzipSync(readFileSync(vsix)))) {
      if (name.endsWith('/')) continue;
      const path = join(dir, name);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, data);
    }
    const model = join(FIXTURES, 'models', 'resnet20_fmnist.onnx');
    const data = join(FIXTURES, 'data', 'idx', 't10k-images-idx3-ubyte.gz');
    const r = spawnSync(
      process.execPath,
      [join(dir, 'extension', 'dist', 'cli.js'), 'eval', model, '--data', data, '--limit', '16', '--json'],
      { cwd: dir, encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { report: { engine: string; engineReason?: string; backend: string } }).report;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void test(
  "the bundles of this machine's platform package load its native engine; the universal package's fall back to wasm",
  { timeout: 300_000 },
  () => {
    const { universal, targets } = vsixPackages();
    const own = targets[hostTarget()];
    assert.ok(own !== undefined, `no package for ${hostTarget()}`);
    const native = evalWithPackagedCli(own);
    assert.equal(native.engine, 'onnxruntime', native.engineReason);
    assert.match(native.backend, /^onnxruntime \(native/);
    const wasm = evalWithPackagedCli(universal);
    assert.equal(wasm.engine, 'tfjs');
    assert.equal(wasm.backend, 'wasm');
    assert.match(wasm.engineReason ?? '', /onnxruntime-node is not installed/);
  },
);
