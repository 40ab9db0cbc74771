// What `npm test` runs: type check, lint and build side by side, and the test suites as soon as the build is done
// (while lint may still run). Each of these is mostly one thread, so on a two-core machine running them in sequence
// leaves a core idle. Each step's output is printed whole when it ends, with its wall time; exits 1 if any failed.
// Type check and lint keep their state under .cache/ (tsc build info, ESLint cache), so a second run is incremental.
// Usage: node scripts/check.mjs [STEP...] [--tests SUITE...] where a step is typecheck, lint, format (Prettier's
// check) or build (default: all four) and the suites go to scripts/run-tests.mjs.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const known = ['typecheck', 'lint', 'format', 'build'];
const at = process.argv.indexOf('--tests');
const named = process.argv.slice(2, at < 0 ? undefined : at);
const suites = at < 0 ? [] : process.argv.slice(at + 1);
const steps = named.length > 0 ? named : known;
for (const s of steps) {
  if (!known.includes(s)) {
    console.error(`unknown step ${s}; known: ${known.join(', ')}`);
    process.exit(1);
  }
}
const started = performance.now();

/** Runs a command, its output collected and printed whole at the end (or passed through with `live`). */
function run(name, command, args, live = false) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: root,
      stdio: ['ignore', live ? 'inherit' : 'pipe', live ? 'inherit' : 'pipe'],
    });
    const chunks = [];
    child.stdout?.on('data', (c) => chunks.push(c));
    child.stderr?.on('data', (c) => chunks.push(c));
    child.on('close', (code, signal) => {
      const seconds = (performance.now() - t0) / 1000;
      const output = Buffer.concat(chunks).toString('utf8');
      console.log(`── ${name}: ${code === 0 ? 'ok' : `FAILED (${code ?? signal})`} in ${seconds.toFixed(1)} s`);
      if (output.trim() !== '') process.stdout.write(output.endsWith('\n') ? output : `${output}\n`);
      resolve({ name, code, seconds });
    });
  });
}

const step = (name) => run(name, npm, ['run', '-s', name]);
const runs = steps.filter((s) => s !== 'build').map(step);
if (steps.includes('build') || suites.length > 0) {
  runs.push(
    (async () => {
      const build = steps.includes('build') ? await step('build') : { name: 'build', code: 0, seconds: 0 };
      if (build.code !== 0 || suites.length === 0) return [build];
      return [build, await run('tests', process.execPath, [join(root, 'scripts', 'run-tests.mjs'), ...suites], true)];
    })(),
  );
}
const results = (await Promise.all(runs)).flat();
const wall = (performance.now() - started) / 1000;
console.log(`── ${results.map((r) => `${r.name} ${r.seconds.toFixed(1)} s`).join(' · ')} · wall ${wall.toFixed(1)} s`);
const failed = results.filter((r) => r.code !== 0).map((r) => r.name);
if (failed.length > 0) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exit(1);
}
