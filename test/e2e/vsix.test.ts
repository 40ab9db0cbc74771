// The packaged .vsix holds what the extension loads at run time (bundles, the engine worker, the statistics thread,
// tfjs wasm binaries, h5wasm, vendored browser bundles) and nothing it must not ship (node_modules, sources, tests,
// source maps): the lists of scripts/vsix-contents.json, which packaging checks too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import contents from '../../scripts/vsix-contents.json';
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

void test('the .vsix contains the bundles, worker, statistics thread, wasm binaries, h5wasm and vendored webview libraries', { timeout: 300_000 }, () => {
  const vsix = vsixUnderTest();
  const { names, manifest } = entries(vsix);
  const required = ['extension.vsixmanifest', ...contents.required];
  for (const name of required) assert.ok(names.has(name), `${vsix} lacks ${name}`);
  const { id, version } = extensionId();
  assert.equal(`${String(manifest.publisher)}.${String(manifest.name)}`, id);
  assert.equal(manifest.version, version);
});

void test('the .vsix ships no node_modules, sources, tests or source maps', { timeout: 300_000 }, () => {
  const { names } = entries(vsixUnderTest());
  const patterns = contents.forbidden.map((p) => new RegExp(p));
  const forbidden = [...names].filter((n) => patterns.some((p) => p.test(n)));
  assert.deepEqual(forbidden, []);
  // Self-contained bundles keep the package small; plotly alone is ~4.6 MB.
  assert.ok(names.size < 200, `${names.size} files in the package`);
});
