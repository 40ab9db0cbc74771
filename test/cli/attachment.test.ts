// `weight-lens attachment` as a separate process on the project's ResNet-20 (ONNX export and torch.save file): the
// file is a Netron attachment as Netron's own reader takes it, and its figures are exactly those `inspect --json` and
// `spectra --json` print for the same tensors. Exit codes: 2 with one `error:` line for an output that is not .json or
// is the input, 1 for usage errors.
//
// What Netron reads (lutzroeder/netron source/view.js, `metadata.Attachment` and `metadata.Attachment.Container`):
// - `open`: the file name ends in `.json` and `data.signature === 'netron:attachment'`; then the containers
//   `data.metadata` and `data.metrics` are each read when they are arrays.
// - `Container.open`: an item counts when `item.kind` is truthy and it has `target` (or `identifier`); its key is
//   `${item.kind}::${item.target}`, and within a key `item.name` maps to `{ value: item.value, type: item.type }`
//   (a repeated name silently overwrites the earlier one).
// - `Container._list(value, kind)`: looks the key up as `${kind}::${value.name.split('\n').shift()}`, with the kinds
//   `model`, `graph`, `node`, `value`, `tensor` (model and graph with an empty name); a tensor's rows replace the
//   metrics Netron computes itself under the same names (`metrics.Tensor`: min, max, mean, std, sparsity).
// - `TensorSidebar`: a metric whose `type` is `percentage` is shown as `(value * 100).toFixed(1)%`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetronAttachmentDto, NetronAttachmentReportDto } from '../../src/protocol/convert';
import type { InspectReportDto } from '../../src/protocol/inspect';
import type { SpectraReportDto } from '../../src/protocol/spectra';

const root = join(__dirname, '..', '..');
const cli = join(root, 'dist', 'cli.js');
const FIX = join(root, 'test', 'fixtures');
const ONNX = join(FIX, 'models', 'resnet20_fmnist.onnx');
const PT = join(FIX, 'models', 'resnet20_fmnist.pt');
const dir = mkdtempSync(join(tmpdir(), 'wl-cli-attachment-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 180_000, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Netron's reading of one container (source/view.js `Container.open`): key `kind::target` → name → value/type. */
function netronEntries(data: unknown): Map<string, Map<string, { value: unknown; type: unknown }>> {
  const entries = new Map<string, Map<string, { value: unknown; type: unknown }>>();
  assert.ok(Array.isArray(data), 'a container is an array');
  for (const item of data as Record<string, unknown>[]) {
    assert.ok(typeof item.kind === 'string' && item.kind !== '', 'every row has a kind');
    assert.ok('target' in item, 'every row has a target');
    const key = `${item.kind}::${String(item.target)}`;
    const rows = entries.get(key) ?? new Map<string, { value: unknown; type: unknown }>();
    assert.ok(
      !rows.has(String(item.name)),
      `no name repeats within ${key} (Netron would drop one): ${String(item.name)}`,
    );
    rows.set(String(item.name), { value: item.value, type: item.type });
    entries.set(key, rows);
  }
  return entries;
}

/** Netron's lookup of a tensor's rows (`Container._list(tensor, 'tensor')`). */
function tensorRows(
  entries: Map<string, Map<string, { value: unknown; type: unknown }>>,
  name: string,
): Map<string, { value: unknown; type: unknown }> {
  return entries.get(`tensor::${name.split('\n')[0] ?? ''}`) ?? new Map<string, { value: unknown; type: unknown }>();
}

void test('attachment writes a netron:attachment file whose figures are inspect --json and spectra --json', () => {
  const out = join(dir, 'resnet.attachment.json');
  const r = run(['attachment', ONNX, '--out', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as NetronAttachmentReportDto;
  assert.equal(report.output, out);
  assert.equal(report.format, 'onnx');
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.endsWith('.tmp')),
    [],
    'no temporary left behind',
  );
  const data = JSON.parse(readFileSync(out, 'utf8')) as NetronAttachmentDto;
  assert.equal(data.signature, 'netron:attachment');
  const metrics = netronEntries(data.metrics);
  const metadata = netronEntries(data.metadata);
  for (const rows of [data.metrics, data.metadata])
    for (const row of rows) {
      assert.ok(['model', 'graph', 'node', 'value', 'tensor'].includes(row.kind), row.kind);
      assert.ok(!row.target.includes('\n'), 'Netron matches names up to their first newline');
      if (row.kind === 'model' || row.kind === 'graph') assert.equal(row.target, '');
      assert.ok(typeof row.value === 'string' || Number.isFinite(row.value), `${row.target} ${row.name}`);
      const type: unknown = row.type;
      assert.ok(type === undefined || type === 'percentage');
    }

  const inspect = run(['inspect', ONNX, '--json']);
  assert.equal(inspect.status, 0, inspect.stderr);
  const inspected = JSON.parse(inspect.stdout) as InspectReportDto;
  assert.equal(report.tensors, inspected.tensors.length);
  const names = new Set(inspected.tensors.map((t) => t.name));
  for (const row of [...data.metrics, ...data.metadata])
    if (row.kind === 'tensor') assert.ok(names.has(row.target), `${row.target} is a tensor of the model`);
  const model = metrics.get('model::');
  assert.ok(model, 'model rows');
  assert.equal(model.get('parameters')?.value, inspected.totals.params);
  assert.equal(model.get('tensors')?.value, inspected.totals.tensors);
  for (const t of inspected.tensors) {
    const rows = tensorRows(metrics, t.name);
    const s = t.stats;
    assert.ok(s, t.name);
    assert.equal(rows.get('min')?.value, s.min, `${t.name} min`);
    assert.equal(rows.get('max')?.value, s.max, `${t.name} max`);
    assert.equal(rows.get('mean')?.value, s.mean, `${t.name} mean`);
    assert.equal(rows.get('std')?.value, s.std, `${t.name} std`);
    assert.equal(rows.get('norm')?.value, s.l2, `${t.name} norm`);
    assert.equal(rows.get('zeros')?.value, s.zeros, `${t.name} zeros`);
    assert.deepEqual(rows.get('sparsity'), { value: s.zeros / t.params, type: 'percentage' }, `${t.name} sparsity`);
    assert.equal(tensorRows(metadata, t.name).get('layer kind')?.value, t.kind);
  }

  const spectraRun = run(['spectra', ONNX, '--json']);
  assert.equal(spectraRun.status, 0, spectraRun.stderr);
  const spectra = JSON.parse(spectraRun.stdout) as SpectraReportDto;
  assert.equal(report.spectra, spectra.layers.length);
  assert.equal(spectra.layers.length, 19);
  for (const l of spectra.layers) {
    const rows = tensorRows(metrics, l.name);
    assert.equal(rows.get('alpha')?.value, l.alpha ?? undefined, `${l.name} alpha`);
    assert.equal(rows.get('alpha_weighted')?.value, l.alphaWeighted ?? undefined, `${l.name} alpha_weighted`);
    assert.equal(rows.get('stable_rank')?.value, l.stableRank, `${l.name} stable_rank`);
    assert.equal(rows.get('log_spectral_norm')?.value, l.logSpectralNorm, `${l.name} log_spectral_norm`);
    assert.equal(rows.get('log_norm')?.value, l.logNorm, `${l.name} log_norm`);
    assert.equal(rows.get('mp_softrank')?.value, l.mpSoftRank ?? undefined, `${l.name} mp_softrank`);
    assert.equal(rows.get('spectral_norm')?.value, l.sigmaMax, `${l.name} spectral_norm`);
    assert.equal(tensorRows(metadata, l.name).get('alpha reading')?.value, l.warning);
  }
  // A known layer, so the test cannot pass on an empty spectrum: spectra's table prints α 10.698 for it.
  const alpha = tensorRows(metrics, 'layer2.1.conv2.weight').get('alpha')?.value;
  assert.ok(typeof alpha === 'number' && Math.abs(alpha - 10.698) < 5e-4, String(alpha));
  for (const s of spectra.skipped)
    assert.match(String(tensorRows(metadata, s.name).get('spectrum')?.value), /^none: /, s.name);
  // 1-D tensors (biases, norms) get statistics but no spectral rows.
  assert.equal(tensorRows(metrics, 'bn1.weight').get('alpha'), undefined);
});

void test('attachment --no-spectra writes statistics only, beside the input by default', () => {
  const input = join(dir, 'resnet20.pt');
  copyFileSync(PT, input);
  const r = run(['attachment', input, '--no-spectra']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /resnet20\.attachment\.json: Netron attachment of \d+ tensors' statistics \(/);
  const data = JSON.parse(readFileSync(join(dir, 'resnet20.attachment.json'), 'utf8')) as NetronAttachmentDto;
  assert.equal(data.signature, 'netron:attachment');
  assert.ok(data.metrics.some((m) => m.target === 'linear.weight' && m.name === 'std'));
  assert.ok(!data.metrics.some((m) => m.name === 'alpha' || m.name === 'stable_rank'));
});

void test('attachment exit codes: 2 for an output that is not .json or is the input, 1 for usage errors', () => {
  const txt = run(['attachment', ONNX, '--out', join(dir, 'x.txt')]);
  assert.equal(txt.status, 2);
  assert.match(txt.stderr, /^error: A Netron attachment must end in \.json/);
  assert.equal(txt.stderr.trim().split('\n').length, 1);
  const model = join(dir, 'model.json');
  copyFileSync(join(FIX, 'tfjs', 'layers', 'model.json'), model);
  const before = readFileSync(model);
  const same = run(['attachment', model, '--out', model]);
  assert.equal(same.status, 2);
  assert.match(same.stderr, /is the input itself/);
  assert.deepEqual(readFileSync(model), before, 'the input is untouched');
  const usage = run(['attachment', ONNX, '--no-spectra', '--max-rank', '3']);
  assert.equal(usage.status, 1);
  assert.match(usage.stderr, /--max-rank needs spectra/);
  assert.equal(run(['attachment']).status, 1);
  const help = run(['attachment', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /weight-lens attachment IN \[--out OUT\.json\] \[--no-spectra\]/);
  assert.match(run(['--help']).stdout, /weight-lens attachment IN/);
});
