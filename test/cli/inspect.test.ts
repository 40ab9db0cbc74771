// The built CLI (dist/cli.js) on real fixtures: table and JSON output, and exit codes, each path in its own process.
// The hostile corpus runs through the same bundle's `main` in one plain Node process, one file after the other
// (starting the CLI once per case cost a process start each): exit 2, one `error:` line and nothing on stdout for
// every case, and the process's peak RSS stays bounded throughout, so an unbounded allocation still shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { goodFixtures, hostileCases } from '../helpers/fixtures';

const root = join(__dirname, '..', '..');
const cli = join(root, 'dist', 'cli.js');
/** No hostile case may take longer than this (a hang guard, as a reader that loops never answers). */
const HOSTILE_CASE_MS = 20_000;
/** Peak resident set size of the CLI process that no hostile case may push it past. */
const HOSTILE_PEAK_RSS_MB = 300;

function run(args: string[], timeoutMs = 30_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 256 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One `main(args)` of the CLI bundle: its exit code, what it printed, its time and the process's peak RSS so far. */
interface InProcessRun {
  args: string[];
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  peakRssMb: number;
}

/**
 * Plain JavaScript run by `node -e` (no TypeScript loader, as an installed CLI): requires the bundle given as the first
 * argument, runs its `main` on each argument list of the second (JSON), capturing stdout and stderr, and reports each
 * run as one JSON line on file descriptor 1, after a `{"start": args}` line that tells a watchdog what is running.
 */
const CLI_MANY = `
const { writeSync } = require('node:fs');
const { main } = require(process.argv[1]);
const runs = JSON.parse(process.argv[2]);
const captured = { stdout: '', stderr: '' };
for (const name of ['stdout', 'stderr']) {
  process[name].write = (chunk, encoding, done) => {
    captured[name] += String(chunk);
    (typeof encoding === 'function' ? encoding : done)?.();
    return true;
  };
}
(async () => {
  for (const args of runs) {
    writeSync(1, JSON.stringify({ start: args }) + '\\n');
    captured.stdout = '';
    captured.stderr = '';
    const started = performance.now();
    const code = await main(args);
    const ms = performance.now() - started;
    const peakRssMb = process.resourceUsage().maxRSS / 1024;
    writeSync(1, JSON.stringify({ args, code, stdout: captured.stdout, stderr: captured.stderr, ms, peakRssMb }) + '\\n');
  }
})().catch((error) => { writeSync(2, String(error && error.stack || error) + '\\n'); process.exitCode = 3; });
`;

/** Runs the CLI's `main` on each of `runs` in one process; fails if one run gives no answer within `limitMs`. */
function cliInOneProcess(
  runs: string[][],
  limitMs: number,
): Promise<{ results: InProcessRun[]; stderr: string; status: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CLI_MANY, cli, JSON.stringify(runs)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const results: InProcessRun[] = [];
    let running: unknown = 'start-up';
    let pending = '';
    let stderr = '';
    let timer = setTimeout(hung, limitMs);
    function hung(): void {
      child.kill('SIGKILL');
      reject(new Error(`the CLI gave no answer within ${limitMs} ms while running ${JSON.stringify(running)}`));
    }
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const line = JSON.parse(pending.slice(0, nl)) as { start: unknown } | InProcessRun;
        pending = pending.slice(nl + 1);
        clearTimeout(timer);
        timer = setTimeout(hung, limitMs);
        if ('start' in line) running = line.start;
        else results.push(line);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ results, stderr, status });
    });
  });
}

interface JsonReport {
  format: string;
  file: string;
  bytes: number;
  tensors: {
    name: string;
    dtype: string;
    shape: number[];
    params: number;
    bytes: number;
    stats?: Record<string, number>;
    histogram?: { edges: number[]; counts: number[] };
  }[];
  totals: { tensors: number; params: number; bytes: number };
}

const fixtures = goodFixtures();

for (const format of ['safetensors', 'pytorch', 'onnx', 'tfjs', 'keras', 'numpy', 'gguf']) {
  const fixture = fixtures.find((f) => f.format === format);
  test(
    `inspect --json on a ${format} fixture prints the documented document`,
    { skip: fixture ? false : `no ${format} fixture` },
    () => {
      if (!fixture) return;
      const r = run(['inspect', fixture.path, '--json', '--bins', '32']);
      assert.equal(r.status, 0, r.stderr);
      const report = JSON.parse(r.stdout) as JsonReport;
      assert.equal(report.format, format);
      assert.equal(report.tensors.length, fixture.tensors);
      assert.equal(report.totals.tensors, fixture.tensors);
      assert.equal(
        report.totals.params,
        report.tensors.reduce((s, t) => s + t.params, 0),
      );
      for (const t of report.tensors) {
        if (!t.stats || t.stats.count === 0) continue; // no finite values: no statistics (null moments), no bins
        for (const key of ['mean', 'std', 'min', 'max', 'absMax', 'l2', 'zeros', 'nonFinite'])
          assert.equal(typeof t.stats[key], 'number', `${t.name}.stats.${key}`);
        assert.ok(t.histogram);
        assert.equal(t.histogram.counts.length, 32);
        const finite = t.params - (t.stats.nonFinite ?? 0);
        assert.equal(
          t.histogram.counts.reduce((a, b) => a + b, 0),
          finite,
          `${t.name}: every finite value is binned`,
        );
      }
    },
  );
}

test('inspect prints a readable table', { skip: fixtures.length === 0 }, () => {
  const fixture = fixtures[0]!;
  const r = run(['inspect', fixture.path]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /name\s+dtype\s+shape\s+params\s+bytes\s+mean\s+std\s+min\s+max/);
  assert.match(r.stdout, new RegExp(fixture.entries[0]!.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
});

test('the summary line headlines float weights, with integer constants beside them', () => {
  const r = run(['inspect', join(root, 'test', 'fixtures', 'models', 'resnet20_fmnist.onnx'), '--headers-only']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /· {2}133 tensors {2}· {2}270,810 float weights \(\+ 48 integer values in 36 tensors\)\n/);
});

test('a missing file exits 2 with one error line', () => {
  const r = run(['inspect', join(root, 'no-such-file.safetensors')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^error: .*does not exist/);
});

test('usage errors exit 1', () => {
  assert.equal(run(['inspect']).status, 1);
  assert.equal(run(['frobnicate']).status, 1);
  assert.equal(run(['inspect', 'x', '--bins', 'many']).status, 1);
});

test("COMMAND --help prints that command's help and exits 0", () => {
  for (const command of ['inspect', 'compress', 'decompress', 'eval', 'distill']) {
    for (const flag of ['--help', '-h']) {
      const r = run([command, 'some-file', flag]);
      assert.equal(r.status, 0, `${command} ${flag}: ${r.stderr}`);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, new RegExp(`weight-lens ${command} `), `${command} ${flag} prints its usage`);
    }
  }
  const distill = run(['distill', '--help']).stdout;
  assert.match(distill, /--eval-data/);
  assert.match(distill, /Preprocessing/);
  assert.doesNotMatch(distill, /weight-lens compress /, 'only the command asked about');
  // After `--`, --help is a file name.
  assert.equal(run(['inspect', '--', '--help']).status, 2);
});

test('a hostile file exits 2 with one error line', () => {
  const c = hostileCases()[0];
  assert.ok(c, 'the hostile corpus is not empty');
  const r = run(['inspect', c.path, '--json']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^error: [^\n]+\n$/);
  assert.equal(r.stdout, '');
});

test('CLI on every hostile file: exit 2, one clear line, bounded time and memory', async (t) => {
  const cases = hostileCases();
  const { results, stderr, status } = await cliInOneProcess(
    cases.map((c) => ['inspect', c.path, '--json']),
    HOSTILE_CASE_MS,
  );
  assert.equal(status, 0, `the CLI process ended badly: ${stderr}`);
  assert.equal(stderr, '', "nothing escapes to the process's stderr");
  assert.equal(results.length, cases.length);
  for (const [i, c] of cases.entries()) {
    const r = results[i]!;
    await t.test(`${c.group}/${c.file}`, () => {
      assert.ok(r.ms < HOSTILE_CASE_MS, `the CLI finished within ${HOSTILE_CASE_MS / 1000} s`);
      assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
      assert.match(lines[0]!, /^error: /);
      assert.match(lines[0]!, new RegExp(c.message, 'i'));
      assert.equal(r.stdout, '', 'nothing on stdout');
      assert.ok(r.peakRssMb < HOSTILE_PEAK_RSS_MB, `peak RSS ${r.peakRssMb.toFixed(0)} MB`);
    });
  }
});
