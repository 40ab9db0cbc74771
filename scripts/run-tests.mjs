// Runs test suites with Node's built-in test runner (TypeScript through tsx). Usage: run-tests.mjs SUITE... where a
// suite is a folder under test/ (unit, jobs, engine, cli, e2e). Extra `--` arguments go to each test process's
// `node` (e.g. `-- --test-name-pattern=hostile`).
//
// Starting a test process costs about a second of CPU (tsx and its loader thread, tfjs), which used to dominate the
// unit suite: one process per file. So the files of one test/unit room (a folder under test/unit, mirroring a folder
// of src/ or webview/) run in one process, each file inside its own suite (scripts/test-group.cjs), so its hooks
// stay its own. Files under jobs/, engine/, cli/ and e2e/ keep a process each: they are long, and they train,
// start workers or spawn the CLI. Two processes run at a time (one for e2e); each one's output is printed whole when
// it ends, with its wall time, and the longest of the last run (.cache/test-times.json) start first. Test processes
// load scripts/test-hooks.mjs after tsx (h5wasm is loaded past tsx, which would spend seconds rewriting it).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dash = process.argv.indexOf('--');
const suites = dash < 0 ? process.argv.slice(2) : process.argv.slice(2, dash);
const extra = dash < 0 ? [] : process.argv.slice(dash + 1);
const timesFile = join(root, '.cache', 'test-times.json');
/** Suites whose files share a process per room. */
const GROUPED = new Set(['unit']);

function findTests(dir) {
  if (!existsSync(dir)) return [];
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'fixtures' || name === 'node_modules') continue;
    if (statSync(p).isDirectory()) out = out.concat(findTests(p));
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out.sort();
}

/** The processes to run: { name, files }, a room of a grouped suite or one file. */
function jobsFor(suite) {
  const files = findTests(join(root, 'test', suite));
  if (!GROUPED.has(suite)) return files.map((f) => ({ suite, name: f, files: [f] }));
  const rooms = new Map();
  for (const f of files) {
    const parts = relative(join('test', suite), f).split(sep);
    const room = join('test', suite, parts.length > 1 ? parts[0] : '');
    rooms.set(room, [...(rooms.get(room) ?? []), f]);
  }
  return [...rooms].map(([room, roomFiles]) => ({ suite, name: `${room}${sep}`, files: roomFiles }));
}

const jobs = suites.flatMap(jobsFor);
if (jobs.length === 0) {
  console.error(`no tests found in ${suites.join(', ')}`);
  process.exit(1);
}
let lastTimes = {};
try {
  lastTimes = JSON.parse(readFileSync(timesFile, 'utf8'));
} catch {
  // First run: keep the suites' order.
}
// Longest first: known durations from the last run; unknown ones (a fresh clone) before them, the single files of
// jobs/, engine/ and cli/ (the long ones) ahead of the unit rooms.
const order = jobs.map((job, i) => ({ job, i, t: lastTimes[job.name] ?? (GROUPED.has(job.suite) ? 1e9 : 2e9) }));
order.sort((a, b) => (b.t === a.t ? a.i - b.i : b.t - a.t));
const concurrency = suites.includes('e2e') ? 1 : 2;
const group = join(root, 'scripts', 'test-group.cjs');
const hooks = pathToFileURL(join(root, 'scripts', 'test-hooks.mjs')).href;

const totals = { tests: 0, pass: 0, fail: 0, skipped: 0, todo: 0, cancelled: 0 };
const times = {};
const failed = [];

function runJob(job) {
  const started = performance.now();
  return new Promise((resolve) => {
    const args = ['--import', 'tsx', '--import', hooks, '--test-reporter=spec', ...extra, group, ...job.files];
    const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    child.stderr.on('data', (c) => chunks.push(c));
    child.on('close', (code, signal) => {
      const seconds = (performance.now() - started) / 1000;
      times[job.name] = Number(seconds.toFixed(1));
      const output = Buffer.concat(chunks).toString('utf8');
      for (const key of Object.keys(totals)) {
        const m = new RegExp(`^ℹ ${key} (\\d+)$`, 'm').exec(output);
        if (m) totals[key] += Number(m[1]);
      }
      const ok = code === 0;
      if (!ok) failed.push(job.name);
      const files = job.files.length > 1 ? ` (${job.files.length} files)` : '';
      process.stdout.write(
        `\n━━ ${job.name}${files}: ${ok ? 'ok' : `FAILED (${code ?? signal})`} in ${seconds.toFixed(1)} s\n`,
      );
      process.stdout.write(output.replace(/\n?(ℹ \w+ [\d.]+\n?)+$/, '\n'));
      resolve();
    });
  });
}

const started = performance.now();
const queue = order.map((o) => o.job);
await Promise.all(
  Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) await runJob(job);
  }),
);
const wall = (performance.now() - started) / 1000;

mkdirSync(dirname(timesFile), { recursive: true });
writeFileSync(timesFile, JSON.stringify({ ...lastTimes, ...times }, null, 1) + '\n');
console.log('\n━━ times (s)');
for (const suite of suites) {
  const mine = jobs.filter((j) => j.name.startsWith(join('test', suite) + sep));
  const sum = mine.reduce((s, j) => s + (times[j.name] ?? 0), 0);
  console.log(`  ${suite.padEnd(8)} ${sum.toFixed(1).padStart(7)}  (${mine.length} processes, summed)`);
}
console.log(`  ${'wall'.padEnd(8)} ${wall.toFixed(1).padStart(7)}  (${concurrency} at a time)`);
const summary = Object.entries(totals)
  .map(([k, v]) => `${k} ${v}`)
  .join(' · ');
console.log(`━━ ${summary}`);
if (failed.length > 0) {
  console.error(`✖ failed: ${failed.join(', ')}`);
  process.exit(1);
}
