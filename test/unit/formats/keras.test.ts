// The Keras / HDF5 reader on files written with h5py in Keras' layouts (test/fixtures/make/keras.py): Keras 2
// `model.save` and `save_weights` .h5 files, Keras 3 .keras archives, a plain HDF5 file, and broken ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openWith, FIXTURES, hostileCases } from '../../helpers/fixtures';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryByteSource, siblingOpenerFor } from '../../../src/core/io/byteSource';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { kerasFormat } from '../../../src/core/formats/keras';
import type { Checkpoint } from '../../../src/core/formats/types';
import type { TensorEntry } from '../../../src/core/tensors/tensor';

const DIR = join(FIXTURES, 'keras');
const HOSTILE = join(FIXTURES, 'hostile', 'keras');

interface ManifestEntry {
  name: string;
  dtype: string;
  shape: number[];
  sum: number;
  sumSquares: number;
  first: number[];
}
const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as {
  files: { file: string; tensors: number; entries: ManifestEntry[] }[];
};
function expected(file: string): { tensors: number; entries: ManifestEntry[] } {
  const f = manifest.files.find((x) => x.file === file);
  assert.ok(f);
  return f;
}

const openFile = (path: string): Promise<Checkpoint> => openWith(kerasFormat, path);

async function values(t: TensorEntry, maxElements?: number): Promise<number[]> {
  const out: number[] = [];
  for await (const chunk of t.values(maxElements === undefined ? {} : { maxElements })) {
    if (maxElements !== undefined) assert.ok(chunk.length <= maxElements, `chunk of ${chunk.length} > ${maxElements}`);
    out.push(...chunk);
  }
  assert.equal(out.length, t.params);
  return out;
}

function tensor(ck: Checkpoint, name: string): TensorEntry {
  const t = ck.tensors.find((x) => x.name === name);
  assert.ok(t, `tensor ${name} is listed`);
  return t;
}

/** Compares every tensor with the manifest: names in order, dtype, shape, sums and first values. */
async function matchesManifest(ck: Checkpoint, file: string, maxElements?: number): Promise<void> {
  const want = expected(file);
  assert.equal(ck.format, 'keras');
  assert.deepEqual(ck.tensors.map((t) => t.name).sort(), want.entries.map((e) => e.name).sort());
  for (const e of want.entries) {
    const t = tensor(ck, e.name);
    assert.equal(t.dtype, e.dtype, e.name);
    assert.deepEqual([...t.shape], e.shape, e.name);
    const v = await values(t, maxElements);
    const sum = v.reduce((a, b) => a + b, 0);
    const sq = v.reduce((a, b) => a + b * b, 0);
    assert.ok(Math.abs(sum - e.sum) <= 1e-5 * Math.max(1, Math.abs(e.sum)), `${e.name} sum ${sum} vs ${e.sum}`);
    assert.ok(Math.abs(sq - e.sumSquares) <= 1e-5 * Math.max(1, e.sumSquares), `${e.name} sum of squares`);
    e.first.forEach((x, i) => {
      assert.ok(Math.abs(v[i]! - x) <= 1e-6 * Math.max(1, Math.abs(x)), `${e.name}[${i}]`);
    });
  }
}

function head(path: string): Uint8Array {
  return Uint8Array.from(readFileSync(path).subarray(0, 65536));
}

/** Temporary HDF5 copies of this process (their folders carry its pid; other processes may be copying too). */
function tempFolders(): number {
  return readdirSync(tmpdir()).filter((n) => n.startsWith(`weight-lens-h5-${process.pid}-`)).length;
}

test('sniff: HDF5 by signature, .keras zips by name, damaged .h5 files weakly by name', () => {
  assert.equal(kerasFormat.sniff(head(join(DIR, 'keras2_model.h5')), 'keras2_model.h5'), 0.9);
  assert.equal(kerasFormat.sniff(head(join(DIR, 'generic.h5')), 'whatever.bin'), 0.9);
  assert.equal(kerasFormat.sniff(head(join(DIR, 'model.keras')), 'model.keras'), 0.9);
  assert.ok(kerasFormat.sniff(head(join(DIR, 'model.keras')), 'renamed.zip') > 0.5, 'Keras 3 member names');
  assert.equal(kerasFormat.sniff(head(join(FIXTURES, 'pytorch', 'resnet_tiny.pt')), 'resnet_tiny.pt'), 0);
  assert.ok(kerasFormat.sniff(head(join(HOSTILE, 'not_hdf5.h5')), 'not_hdf5.h5') < 0.1);
  assert.equal(kerasFormat.sniff(new Uint8Array(10), 'x.bin'), 0);
});

test('Keras 2 model.save: weights in layer order with Keras names, model metadata', async () => {
  const ck = await openFile(join(DIR, 'keras2_model.h5'));
  try {
    assert.equal(ck.description, 'Keras 2.12.0 HDF5 (.h5)');
    assert.deepEqual(
      ck.tensors.map((t) => t.name),
      expected('keras2_model.h5').entries.map((e) => e.name),
      'layer_names / weight_names order',
    );
    assert.equal(ck.tensors[0]?.name, 'conv2d/kernel:0');
    assert.equal(ck.metadata.keras_version, '2.12.0');
    assert.equal(ck.metadata.backend, 'tensorflow');
    assert.equal(ck.metadata.model_class, 'Sequential');
    assert.equal(ck.metadata.layers, 4);
    await matchesManifest(ck, 'keras2_model.h5');
    // Small chunks slice the dense kernel [144, 10] along its rows and then within rows.
    const kernel = tensor(ck, 'dense/kernel:0');
    const whole = await values(kernel);
    assert.deepEqual(await values(kernel, 30), whole);
    assert.deepEqual(await values(kernel, 7), whole);
  } finally {
    await ck.close();
    await ck.close();
  }
});

test('Keras 2 save_weights: the layer groups at the root', async () => {
  const ck = await openFile(join(DIR, 'keras2_weights.h5'));
  try {
    assert.deepEqual(
      ck.tensors.map((t) => t.name),
      expected('keras2_weights.h5').entries.map((e) => e.name),
    );
    await matchesManifest(ck, 'keras2_weights.h5', 13);
  } finally {
    await ck.close();
  }
});

test('Keras 3 .keras archives (stored and deflated weights) with config metadata; no temporary copy stays on disk', async () => {
  for (const file of ['model.keras', 'model_deflated.keras']) {
    const before = tempFolders();
    const ck = await openFile(join(DIR, file));
    try {
      assert.equal(tempFolders(), before, 'the temporary copy of model.weights.h5 is unlinked once HDF5 holds it open');
      assert.equal(ck.description, 'Keras 3 .keras archive');
      assert.equal(ck.metadata.keras_version, '3.3.3');
      assert.equal(ck.metadata.model_class, 'Sequential');
      assert.equal(ck.metadata.model_name, 'sequential');
      assert.ok(ck.tensors.some((t) => t.name === 'layers/conv2d/vars/0'));
      await matchesManifest(ck, file);
    } finally {
      await ck.close();
    }
    assert.equal(tempFolders(), before, 'closing removes the temporary copy');
  }
});

test('any HDF5 file: every numeric dataset, chunked and compressed, big-endian, bool; strings skipped', async () => {
  const ck = await openFile(join(DIR, 'generic.h5'));
  try {
    assert.equal(ck.description, 'HDF5 file');
    await matchesManifest(ck, 'generic.h5', 1000);
    await matchesManifest(ck, 'generic.h5', 3);
    assert.deepEqual(await values(tensor(ck, 'flags')), [1, 0, 1]);
    assert.deepEqual(await values(tensor(ck, 'ints/i64')), [-(2 ** 40), 0, 2 ** 40]);
    assert.deepEqual([...tensor(ck, 'scalar').shape], []);
    assert.deepEqual(await values(tensor(ck, 'scalar')), [3.5]);
    assert.equal(tensor(ck, 'empty').params, 0);
    assert.equal(tensor(ck, 'data/f16').dtype, 'F16');
    assert.match(String(ck.metadata.skipped_datasets), /labels \(string data, not a tensor\)/);
    assert.ok(!ck.tensors.some((t) => t.name === 'labels'));
  } finally {
    await ck.close();
  }
  await assert.rejects(async () => {
    for await (const _ of tensor(ck, 'data/f32').values()) {
      /* closed */
    }
  }, /was closed/);
});

test('an HDF5 source that is not a file on disk is copied to a temporary file and read the same', async () => {
  const bytes = Uint8Array.from(readFileSync(join(DIR, 'keras2_weights.h5')));
  const before = tempFolders();
  const ck = await kerasFormat.open(new MemoryByteSource(bytes, 'in-memory.h5'), {
    path: 'in-memory.h5',
    siblings: siblingOpenerFor('in-memory.h5'),
  });
  try {
    await matchesManifest(ck, 'keras2_weights.h5');
  } finally {
    await ck.close();
  }
  assert.equal(tempFolders(), before);
});

test('broken files fail with a clear one-line message, and the HDF5 library stays usable', async () => {
  const cases = hostileCases('keras');
  const before = tempFolders();
  for (const c of cases) {
    await assert.rejects(openFile(join(HOSTILE, c.file)), (error: unknown) => {
      assert.ok(error instanceof CheckpointFormatError, `${c.file}: ${String(error)}`);
      assert.match(error.message, new RegExp(c.message, 'i'), c.file);
      assert.ok(!error.message.includes('\n'), 'one line');
      return true;
    });
  }
  assert.equal(tempFolders(), before, 'failed opens leave no temporary files');
  const ck = await openFile(join(DIR, 'generic.h5'));
  await ck.close();
});

test('a chunked dataset that was never written, with a 4 TB shape, is listed without reading its fill values', async () => {
  const ck = await openFile(join(FIXTURES, 'hostile', 'crafted', 'unwritten_giant.h5'));
  try {
    const giant = tensor(ck, 'giant');
    assert.deepEqual([...giant.shape], [2 ** 20, 2 ** 20]);
    assert.match(
      giant.notDecodedReason ?? '',
      /declares 4\.4 TB of values but the whole file is 2\.\d kB: its chunks were never written/,
    );
    assert.deepEqual(await values(tensor(ck, 'small')), [0, 1, 2, 3]);
  } finally {
    await ck.close();
  }
});

/** Runs a child process that opens `file` with the Keras reader, says so, and waits to be killed. */
function openInChild(file: string, tmp: string): Promise<{ pid: number; kill: () => Promise<void> }> {
  const registry = join(__dirname, '..', '..', '..', 'src', 'core', 'formats', 'registry.ts');
  const script = `require(${JSON.stringify(registry)}).openCheckpoint(${JSON.stringify(file)}).then(() => {
  process.stdout.write('open\\n');
  setInterval(() => undefined, 1000);
});`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], {
    env: { ...process.env, TMPDIR: tmp },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      reject(new Error(`the child exited early (${String(code)})`));
    });
    child.stdout.on('data', (data: Buffer) => {
      if (!data.toString().includes('open')) return;
      child.removeAllListeners('exit');
      resolve({
        pid: child.pid ?? 0,
        kill: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) {
              done();
              return;
            }
            child.on('exit', () => {
              done();
            });
            child.kill('SIGKILL');
          }),
      });
    });
  });
}

test(
  'a .keras inspection killed with SIGKILL leaves no weights copy; copies of dead processes are swept',
  { timeout: 120_000 },
  async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'keras-kill-'));
    try {
      // A folder a killed process left behind mid-copy: its pid no longer exists.
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
        encoding: 'utf8',
      });
      const stale = join(tmp, `weight-lens-h5-${dead.stdout.trim()}-abcdef`);
      mkdirSync(stale);
      writeFileSync(join(stale, 'model.weights.h5'), 'partial copy');
      const child = await openInChild(join(DIR, 'model_deflated.keras'), tmp);
      try {
        assert.ok(!existsSync(stale), 'the stale copy of a dead process is removed by the next copy');
      } finally {
        await child.kill();
      }
      assert.deepEqual(
        readdirSync(tmp).filter((n) => n.startsWith('weight-lens-h5-')),
        [],
        'nothing of the killed inspection is left in the temporary folder',
      );
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  },
);
