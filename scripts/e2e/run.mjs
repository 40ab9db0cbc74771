// `npm run test:e2e`: installs code-server on first use (cached in .cache/code-server/), builds and packages the
// extension once (the universal package and every platform package), then runs test/e2e/**/*.test.ts one file at a time against that .vsix. Extra arguments (after
// `npm run test:e2e --`) go to `node --test` (e.g. `-- --test-name-pattern=histogram`); spec files among them (`-- test/e2e/vsix.test.ts`)
// are run instead of every spec. Screenshots and logs land in test-results/.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureCodeServer } from './install-code-server.mjs';
import { hostTarget, packageAll } from '../package.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// npm passes what follows `npm run test:e2e --` without the `--`; a literal `--` (direct `node run.mjs -- …`) is
// dropped too. A bare spec name (`compare`) means test/e2e/compare.test.ts; a word after an option without `=`
// (`--test-name-pattern histogram`) is that option's value and passes through as it is.
const extra = process.argv
  .slice(2)
  .filter((a) => a !== '--')
  .map((a, i, all) => {
    const prev = all[i - 1];
    const isValue = prev !== undefined && prev.startsWith('-') && !prev.includes('=');
    return !isValue && !a.startsWith('-') && !a.endsWith('.test.ts') ? `test/e2e/${a}.test.ts` : a;
  });
/** Spec files named run instead of the whole suite; the other extra arguments go to `node --test`. */
const named = extra.filter((a) => a.endsWith('.test.ts'));
for (const spec of named)
  if (!existsSync(join(root, spec))) {
    console.error(`e2e: no spec ${spec} (the specs: ${findTests(join(root, 'test', 'e2e')).join(', ')})`);
    process.exit(1);
  }
/** Upper bound for the test run itself (code-server already installed). */
const RUN_TIMEOUT_MS = 15 * 60 * 1000;

function findTests(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(findTests(p));
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out.sort();
}

const chromium = process.env.WEIGHT_LENS_CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(chromium)) {
  console.error(`e2e: no Chromium at ${chromium} (apt-get install chromium, or set WEIGHT_LENS_CHROMIUM)`);
  process.exit(1);
}

const t0 = Date.now();
let codeServer;
try {
  codeServer = await ensureCodeServer();
} catch (e) {
  console.error(`e2e: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
}
const t1 = Date.now();
const out = join(root, 'test-results', 'e2e');
mkdirSync(out, { recursive: true });
// Every package is written (test/e2e/vsix.test.ts checks each one's contents); this machine's platform package,
// which carries the native engine, is the one installed.
let vsix;
try {
  const packages = await packageAll({ out, quiet: true });
  const host = hostTarget();
  vsix = (host !== undefined ? packages.targets[host] : undefined) ?? packages.universal;
  for (const [target, reason] of Object.entries(packages.skipped)) console.log(`e2e: no ${target} package: ${reason}`);
} catch (e) {
  console.error(`e2e: packaging failed: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
}
const t2 = Date.now();
console.log(
  `e2e: code-server ready (${((t1 - t0) / 1000).toFixed(1)} s), packaged ${relative(root, out)}/ (${((t2 - t1) / 1000).toFixed(1)} s); installing ${relative(root, vsix)}`,
);

const files = named.length > 0 ? [] : findTests(join(root, 'test', 'e2e'));
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...extra, ...files],
  {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      WEIGHT_LENS_CODE_SERVER: codeServer,
      WEIGHT_LENS_VSIX: vsix,
      WEIGHT_LENS_VSIX_DIR: out,
      WEIGHT_LENS_CHROMIUM: chromium,
    },
  },
);
const timer = setTimeout(() => {
  console.error(`e2e: the run exceeded ${RUN_TIMEOUT_MS / 60000} minutes; stopping it`);
  child.kill('SIGTERM');
}, RUN_TIMEOUT_MS);
child.on('exit', (code, signal) => {
  clearTimeout(timer);
  console.log(
    `e2e: finished in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${relative(root, join(root, 'test-results'))}/`,
  );
  process.exit(code ?? (signal ? 1 : 0));
});
