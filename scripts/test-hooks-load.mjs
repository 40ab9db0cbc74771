// Module hooks of the test processes (registered by scripts/test-hooks.mjs, after tsx, so they run first): h5wasm's
// ES modules are loaded as Node loads them, past tsx. tsx rewrites every ES module holding a dynamic import() and
// builds a source map for it, which for h5wasm's 4 MB module costs about 6 s of CPU and 600 MB in every process that
// opens an HDF5 file.
import { readFile } from 'node:fs/promises';

/** h5wasm's Node build: in node_modules, or copied beside the bundles by scripts/build.mjs. */
const H5WASM = /\/(node_modules\/h5wasm\/dist\/node|dist\/h5wasm)\/[^/]+\.js$/;

/** The `load` hook: h5wasm's modules verbatim, everything else down the chain (to tsx). */
export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && H5WASM.test(url)) {
    return { format: 'module', source: await readFile(new URL(url)), shortCircuit: true };
  }
  return nextLoad(url, context);
}
