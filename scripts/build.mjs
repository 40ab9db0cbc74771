// Builds every bundle with esbuild: the extension host, the engine worker, the CLI and the webview panels, and copies
// the runtime assets they load (tfjs wasm binaries, h5wasm, vendored browser bundles) beside them. `--watch` rebuilds
// on change.
import * as esbuild from 'esbuild';
import { cpSync, mkdirSync, chmodSync, existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const watch = process.argv.includes('--watch');
mkdirSync(join(dist, 'webview'), { recursive: true });

/** Where h5wasm's Node build (two ES modules, the HDF5 wasm embedded) is copied, relative to dist/. */
const H5WASM_DIR = 'h5wasm';

/**
 * h5wasm is 5.8 MB of JavaScript, needed only for Keras/HDF5 files: keep it out of the bundles, so a CLI, worker or
 * statistics thread does not parse it at every start. The Keras reader's lazy `import('h5wasm/node')` becomes an
 * `import('./h5wasm/hdf5_hl.js')` beside the bundle, loaded on the first HDF5 file (copyAssets puts it there).
 */
const h5wasmBesideBundle = {
  name: 'h5wasm-beside-bundle',
  setup(build) {
    build.onResolve({ filter: /^h5wasm(\/node)?$/ }, () => ({ path: `./${H5WASM_DIR}/hdf5_hl.js`, external: true }));
  },
};

/** Node bundles: CommonJS, `vscode` provided by the host, tfjs node bindings optional and never bundled. */
const nodeCommon = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  external: [
    'vscode',
    '@tensorflow/tfjs-node',
    '@tensorflow/tfjs-node-gpu',
    'webgpu',
    '@tensorflow/tfjs-backend-webgpu',
    'onnxruntime-node',
  ],
  plugins: [h5wasmBesideBundle],
};

const nodeEntries = [
  { entryPoints: [join(root, 'src/extension/extension.ts')], outfile: join(dist, 'extension.js') },
  { entryPoints: [join(root, 'src/worker/worker.ts')], outfile: join(dist, 'worker.js') },
  { entryPoints: [join(root, 'src/worker/statsThread.ts')], outfile: join(dist, 'stats-thread.js') },
  {
    entryPoints: [join(root, 'src/cli/main.ts')],
    outfile: join(dist, 'cli.js'),
    banner: { js: '#!/usr/bin/env node' },
  },
].filter((e) => existsSync(e.entryPoints[0]));

const webviewEntries = ['inspector', 'reconstruction', 'budget', 'distillation', 'compare']
  .map((name) => ({ name, path: join(root, 'webview', `${name}.ts`) }))
  .filter((e) => existsSync(e.path))
  .map((e) => ({
    entryPoints: [e.path],
    outfile: join(dist, 'webview', `${e.name}.js`),
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    sourcemap: true,
    logLevel: 'warning',
  }));

/** Runtime files loaded by path at run time rather than bundled. */
function copyAssets() {
  const wasmDir = join(root, 'node_modules/@tensorflow/tfjs-backend-wasm/dist');
  for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) {
    cpSync(join(wasmDir, f), join(dist, f));
  }
  // h5wasm's ES modules, with a package.json that makes Node load them as ES modules, and its licence.
  const h5wasm = join(root, 'node_modules/h5wasm');
  mkdirSync(join(dist, H5WASM_DIR), { recursive: true });
  for (const f of ['hdf5_hl.js', 'hdf5_util.js']) cpSync(join(h5wasm, 'dist/node', f), join(dist, H5WASM_DIR, f));
  cpSync(join(h5wasm, 'LICENSE.txt'), join(dist, H5WASM_DIR, 'LICENSE.txt'));
  writeFileSync(join(dist, H5WASM_DIR, 'package.json'), '{ "type": "module" }\n');
  const vendor = join(root, 'media/vendor');
  mkdirSync(vendor, { recursive: true });
  cpSync(join(root, 'node_modules/plotly.js-dist-min/plotly.min.js'), join(vendor, 'plotly.min.js'));
  cpSync(join(root, 'node_modules/@vscode-elements/elements/dist/bundled.js'), join(vendor, 'vscode-elements.js'));
}

const all = [...nodeEntries.map((e) => ({ ...nodeCommon, ...e })), ...webviewEntries];
if (watch) {
  for (const options of all) await (await esbuild.context(options)).watch();
  copyAssets();
  console.log('watching…');
} else {
  await Promise.all(all.map((options) => esbuild.build(options)));
  copyAssets();
  if (existsSync(join(dist, 'cli.js'))) chmodSync(join(dist, 'cli.js'), 0o755);
}
