// Interrupted commands lose nothing and leave nothing: SIGTERM, and Ctrl-C twice, stop compress and distill with no
// output and no temporary file; Ctrl-C once stops them and saves the predictor so far (Stop and Save) as a valid
// artifact marked as stopped early; SIGKILL cannot be caught, so the next run for the same output removes the
// temporary it left and says so.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const cli = join(root, 'dist', 'cli.js');
const FIXTURES = join(root, 'test', 'fixtures');
const RESNET = join(FIXTURES, 'pytorch', 'resnet_tiny.pt');
const MODEL = join(FIXTURES, 'models', 'resnet20_fmnist.onnx');
const IMAGES = join(FIXTURES, 'data', 'idx', 't10k-images-idx3-ubyte.gz');
const dir = mkdtempSync(join(tmpdir(), 'wl-cli-signals-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Starts the CLI, waits until its output shows `ready` (the job is under way), sends `signal`, and with `times` 2
 * sends it again as soon as the CLI acknowledges the first; resolves on exit.
 */
function interrupt(
  args: string[],
  ready: RegExp,
  signal: NodeJS.Signals,
  times = 1,
): Promise<{ code: number | null; stdout: string; stderr: string; signalled: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    let output = '';
    let sent = false;
    let again = false;
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no exit; output: ${output}`));
    }, 120_000);
    const watch = (chunk: Buffer): void => {
      output += chunk.toString();
      if (!sent && ready.test(output)) {
        sent = true;
        // Let the job get under way (training or loading), then interrupt it.
        setTimeout(() => child.kill(signal), 300);
      }
      // The second Ctrl-C goes as soon as the first one is acknowledged: a fixed delay raced the quick save.
      if (times > 1 && !again && /Ctrl-C again to abort/.test(output)) {
        again = true;
        child.kill(signal);
      }
    };
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      watch(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      watch(chunk);
    });
    child.on('exit', (code, signalled) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr, signalled });
    });
  });
}

const leftovers = (): string[] => readdirSync(dir).filter((n) => n.endsWith('.tmp'));

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // Ctrl-C once saves (see below); twice aborts, as SIGTERM does at once.
  const times = signal === 'SIGINT' ? 2 : 1;
  void test(`${signal}${times > 1 ? ' twice' : ''} stops compress and distill with no output and no temporary file`, async () => {
    const artifact = join(dir, `${signal}.nern.safetensors`);
    const c = await interrupt(
      // A model whose steps take long enough that the second signal arrives before the step ends and the save.
      [
        'compress',
        times > 1 ? join(FIXTURES, 'models', 'resnet20_fmnist.pt') : RESNET,
        '--hidden',
        times > 1 ? '96' : '16',
        '--steps',
        '1000000',
        '--backend',
        'wasm',
        '--out',
        artifact,
      ],
      /width|hidden|predictor/i,
      signal,
      times,
    );
    assert.equal(c.code, signal === 'SIGINT' ? 130 : 143, c.stderr);
    assert.match(c.stderr, /^error: cancelled$/m);
    assert.equal(existsSync(artifact), false);
    assert.deepEqual(leftovers(), []);

    // A small artifact to distil, then a distillation stopped while it loads or trains.
    const small = join(dir, `${signal}-small.nern.safetensors`);
    const made = spawnSync(
      process.execPath,
      [
        cli,
        'compress',
        join(FIXTURES, 'models', 'resnet20_fmnist.pt'),
        '--hidden',
        '16',
        '--steps',
        '2',
        '--backend',
        'wasm',
        '--out',
        small,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(made.status, 0, made.stderr);
    const out = join(dir, `${signal}.distilled.nern.safetensors`);
    const d = await interrupt(
      [
        'distill',
        small,
        '--model',
        MODEL,
        '--data',
        IMAGES,
        '--steps',
        '100000',
        '--eval-samples',
        '8',
        '--eval-every',
        '0',
        '--out',
        out,
      ],
      /Distilling|Evaluating/,
      signal,
      times,
    );
    assert.equal(d.code, signal === 'SIGINT' ? 130 : 143, d.stderr);
    assert.equal(existsSync(out), false);
    assert.deepEqual(leftovers(), []);
  });
}

void test('Ctrl-C once stops compress and distill and saves the predictor so far, marked as stopped early', async () => {
  const artifact = join(dir, 'saved.nern.safetensors');
  const c = await interrupt(
    [
      'compress',
      join(FIXTURES, 'models', 'resnet20_fmnist.pt'),
      '--hidden',
      '16',
      '--steps',
      '1000000',
      '--backend',
      'wasm',
      '--out',
      artifact,
    ],
    /width|hidden|predictor/i,
    'SIGINT',
  );
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stderr, /stopping after this step and saving the predictor so far \(Ctrl-C again to abort\)/);
  assert.match(c.stdout, /^stopped early: saved after step [\d,]+ of 1,000,000$/m);
  assert.equal(existsSync(artifact), true);
  assert.deepEqual(leftovers(), []);
  // The saved artifact is whole: it distils, and a distillation stopped by one Ctrl-C is saved the same way.
  const out = join(dir, 'saved.distilled.nern.safetensors');
  const d = await interrupt(
    [
      'distill',
      artifact,
      '--model',
      MODEL,
      '--data',
      IMAGES,
      '--steps',
      '100000',
      '--eval-samples',
      '8',
      '--eval-every',
      '0',
      '--out',
      out,
    ],
    /Distilling/,
    'SIGINT',
  );
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /^stopped early: saved after step [\d,]+ of 100,000$/m);
  assert.match(d.stdout, /after distillation/);
  assert.equal(existsSync(out), true);
  assert.deepEqual(leftovers(), []);
});

void test('after SIGKILL, the next run for the same output removes the stale temporary and says so', async () => {
  const artifact = join(dir, 'killed.nern.safetensors');
  const k = await interrupt(
    ['compress', RESNET, '--hidden', '16', '--steps', '1000000', '--backend', 'wasm', '--out', artifact],
    /width|hidden|predictor/i,
    'SIGKILL',
  );
  assert.equal(k.signalled, 'SIGKILL');
  assert.equal(existsSync(artifact), false, 'a killed run never leaves a half-written target');
  // What a kill during the final write leaves: a hidden temporary beside the target.
  const stale = join(dir, '.killed.nern.safetensors.0123456789ab.tmp');
  writeFileSync(stale, 'half an artifact');
  const unrelated = join(dir, '.other.nern.safetensors.0123456789ab.tmp');
  writeFileSync(unrelated, 'another output');
  const r = spawnSync(
    process.execPath,
    [cli, 'compress', RESNET, '--hidden', '16', '--steps', '2', '--backend', 'wasm', '--out', artifact],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stderr,
    /note: removed 1 temporary file an interrupted earlier run left beside killed\.nern\.safetensors/,
  );
  assert.equal(existsSync(stale), false);
  assert.equal(existsSync(unrelated), true, 'temporaries of other outputs are not touched');
  assert.equal(existsSync(artifact), true);
});
