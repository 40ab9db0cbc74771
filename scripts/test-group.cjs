// Runs several test files in one process (what `node --test --test-isolation=none` does on Node 22, absent from Node
// 20): each file is loaded inside a suite named by its path, so its top-level tests and hooks (before/after) belong
// to that suite and run in file order, one file after the other. Usage (through scripts/run-tests.mjs):
//   node --import tsx --test-reporter=spec scripts/test-group.cjs FILE...
'use strict';
const { describe } = require('node:test');
const { relative, resolve } = require('node:path');

const root = resolve(__dirname, '..');
for (const file of process.argv.slice(2)) {
  const path = resolve(root, file);
  describe(relative(root, path), () => {
    require(path);
  });
}
