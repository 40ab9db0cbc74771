// The packaged .vsix holds what the extension loads at run time (bundles, the engine worker, tfjs wasm binaries,
// vendored browser bundles) and nothing it must not ship (node_modules, sources, tests, source maps).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import { extensionId, vsixUnderTest } from './harness';

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

void test('the .vsix contains the bundles, worker, wasm binaries and vendored webview libraries', { timeout: 300_000 }, () => {
  const vsix = vsixUnderTest();
  const { names, manifest } = entries(vsix);
  const required = [
    'extension.vsixmanifest',
    'extension/dist/extension.js',
    'extension/dist/worker.js',
    'extension/dist/webview/inspector.js',
    'extension/dist/webview/reconstruction.js',
    'extension/dist/webview/budget.js',
    'extension/dist/webview/distillation.js',
    'extension/dist/tfjs-backend-wasm.wasm',
    'extension/dist/tfjs-backend-wasm-simd.wasm',
    'extension/dist/tfjs-backend-wasm-threaded-simd.wasm',
    'extension/media/vendor/plotly.min.js',
    'extension/media/vendor/vscode-elements.js',
  ];
  for (const name of required) assert.ok(names.has(name), `${vsix} lacks ${name}`);
  const { id, version } = extensionId();
  assert.equal(`${String(manifest.publisher)}.${String(manifest.name)}`, id);
  assert.equal(manifest.version, version);
});

void test('the .vsix ships no node_modules, sources, tests or source maps', { timeout: 300_000 }, () => {
  const { names } = entries(vsixUnderTest());
  const forbidden = [...names].filter((n) =>
    /^extension\/(node_modules|src|test|scripts|bench|webview)\//.test(n) || n.endsWith('.map') || n.endsWith('.ts'),
  );
  assert.deepEqual(forbidden, []);
  // Self-contained bundles keep the package small; plotly alone is ~4.6 MB.
  assert.ok(names.size < 200, `${names.size} files in the package`);
});
