// The built CLI (dist/cli.js) on real fixtures: table and JSON output, exit codes, and the hostile corpus run as
// separate processes so a hang or an unbounded allocation would show as a timeout or a large peak RSS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { goodFixtures, hostileCases } from '../helpers/fixtures';

const root = join(__dirname, '..', '..');
const cli = join(root, 'dist', 'cli.js');
const rssProbe = join(root, 'bench', 'report-rss.cjs');

function run(args: string[], timeoutMs = 30_000): { status: number | null; stdout: string; stderr: string; peakRssMb: number } {
  const r = spawnSync(process.execPath, ['--require', rssProbe, cli, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 256 << 20 });
  const rss = Number(/peak-rss-kb=(\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.replace(/\n?peak-rss-kb=\d+\n?/, ''), peakRssMb: rss };
}

interface JsonReport {
  format: string;
  file: string;
  bytes: number;
  tensors: { name: string; dtype: string; shape: number[]; params: number; bytes: number; stats?: Record<string, number>; histogram?: { edges: number[]; counts: number[] } }[];
  totals: { tensors: number; params: number; bytes: number };
}

const fixtures = goodFixtures();

for (const format of ['safetensors', 'pytorch', 'onnx', 'tfjs', 'keras', 'numpy', 'gguf']) {
  const fixture = fixtures.find((f) => f.format === format);
  test(`inspect --json on a ${format} fixture prints the documented document`, { skip: fixture ? false : `no ${format} fixture` }, () => {
    if (!fixture) return;
    const r = run(['inspect', fixture.path, '--json', '--bins', '32']);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as JsonReport;
    assert.equal(report.format, format);
    assert.equal(report.tensors.length, fixture.tensors);
    assert.equal(report.totals.tensors, fixture.tensors);
    assert.equal(report.totals.params, report.tensors.reduce((s, t) => s + t.params, 0));
    for (const t of report.tensors) {
      if (!t.stats || t.stats.count === 0) continue; // no finite values: no statistics (null moments), no bins
      for (const key of ['mean', 'std', 'min', 'max', 'absMax', 'l2', 'zeros', 'nonFinite']) assert.equal(typeof t.stats[key], 'number', `${t.name}.stats.${key}`);
      assert.ok(t.histogram);
      assert.equal(t.histogram.counts.length, 32);
      const finite = t.params - (t.stats.nonFinite ?? 0);
      assert.equal(t.histogram.counts.reduce((a, b) => a + b, 0), finite, `${t.name}: every finite value is binned`);
    }
  });
}

test('inspect prints a readable table', { skip: fixtures.length === 0 }, () => {
  const fixture = fixtures[0]!;
  const r = run(['inspect', fixture.path]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /name\s+dtype\s+shape\s+params\s+bytes\s+mean\s+std\s+min\s+max/);
  assert.match(r.stdout, new RegExp(fixture.entries[0]!.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
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

for (const c of hostileCases()) {
  test(`CLI on hostile ${c.group}/${c.file}: exit 2, one clear line, bounded time and memory`, () => {
    const r = run(['inspect', c.path, '--json'], 20_000);
    assert.notEqual(r.status, null, 'the CLI finished within 20 s');
    assert.equal(r.status, 2, `exit code (stderr: ${r.stderr})`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
    assert.match(lines[0]!, /^error: /);
    assert.match(lines[0]!, new RegExp(c.message, 'i'));
    assert.equal(r.stdout, '', 'nothing on stdout');
    assert.ok(r.peakRssMb < 300, `peak RSS ${r.peakRssMb.toFixed(0)} MB`);
  });
}
