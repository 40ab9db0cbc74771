// The static checks and the build that `npm test` runs before the test suites: type check, lint and build as three
// processes side by side (each is mostly one thread, so on a two-core machine running them in sequence leaves a core
// idle), each one's output printed whole when it ends, with its wall time. Exits 1 if any step fails.
// Type check and lint keep their state under .cache/ (tsc build info, ESLint cache), so a second run is incremental.
// Usage: node scripts/check.mjs [STEP...] where a step is typecheck, lint or build (default: all three).
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const known = ['typecheck', 'lint', 'build'];
const steps = process.argv.length > 2 ? process.argv.slice(2) : known;
for (const s of steps) {
  if (!known.includes(s)) {
    console.error(`unknown step ${s}; known: ${known.join(', ')}`);
    process.exit(1);
  }
}

/** Runs `npm run -s STEP`, collecting its output; resolves to { step, code, seconds, output }. */
function run(step) {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(npm, ['run', '-s', step], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    child.stderr.on('data', (c) => chunks.push(c));
    child.on('close', (code, signal) => {
      const seconds = (performance.now() - started) / 1000;
      const output = Buffer.concat(chunks).toString('utf8');
      console.log(`── ${step}: ${code === 0 ? 'ok' : `FAILED (${code ?? signal})`} in ${seconds.toFixed(1)} s`);
      if (output.trim() !== '') process.stdout.write(output.endsWith('\n') ? output : `${output}\n`);
      resolve({ step, code, seconds });
    });
  });
}

const results = await Promise.all(steps.map(run));
const failed = results.filter((r) => r.code !== 0).map((r) => r.step);
if (failed.length > 0) {
  console.error(`check failed: ${failed.join(', ')}`);
  process.exit(1);
}
