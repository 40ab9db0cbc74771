// Runs test suites with Node's built-in test runner (TypeScript through tsx). Usage: run-tests.mjs SUITE... where a
// suite is a folder under test/ (unit, jobs, engine, cli, e2e). Extra `--` arguments go to `node --test`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dash = process.argv.indexOf('--');
const suites = (dash < 0 ? process.argv.slice(2) : process.argv.slice(2, dash));
const extra = dash < 0 ? [] : process.argv.slice(dash + 1);

function findTests(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'fixtures' || name === 'node_modules') continue;
    if (statSync(p).isDirectory()) out = out.concat(findTests(p));
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out.sort();
}

const files = suites.flatMap((s) => findTests(join(root, 'test', s)));
if (files.length === 0) {
  console.error(`no tests found in ${suites.join(', ')}`);
  process.exit(1);
}
const concurrency = suites.includes('e2e') ? '1' : '2';
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...extra, ...files],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
