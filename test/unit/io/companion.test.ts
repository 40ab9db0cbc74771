// The companion-file rule (a file a checkpoint names must resolve, after symbolic links, inside the folder of the file
// the user opened), checked through every reader that opens a second file: TF.js weight shards, the shards of a
// safetensors index and ONNX external data. Each is tried with a `../` name, an absolute path and a symbolic link
// that points outside, all made in a temporary folder; links that stay inside (and the Hugging Face cache layout,
// where every file of a snapshot links into a blob folder) still open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint } from '../../../src/core/formats/registry';
import { openCifarDataset } from '../../../src/core/data/cifar';
import { resolveCompanion, resolveOptionalCompanion } from '../../../src/core/io/companion';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { readTensorValues } from '../../../src/core/tensors/tensor';

/** Four float32 values [1, 2, 3, 4] as raw little-endian bytes. */
const FOUR = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
/** A different payload, standing for a secret file outside the model's folder. */
const SECRET = new Uint8Array(new Float32Array([7, 7, 7, 7]).buffer);

function safetensors(tensor: string): Uint8Array {
  const header = new TextEncoder().encode(
    JSON.stringify({ [tensor]: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }),
  );
  const out = new Uint8Array(8 + header.length + 16);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  out.set(FOUR, 8 + header.length);
  return out;
}

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
  return out;
}
const lfield = (field: number, data: ArrayLike<number>): number[] => [
  ...varint(field * 8 + 2),
  ...varint(data.length),
  ...Array.from(data),
];
const sfield = (field: number, text: string): number[] => lfield(field, new TextEncoder().encode(text));
const vfield = (field: number, value: number): number[] => [...varint(field * 8), ...varint(value)];

/** An ONNX model with one FLOAT [4] initializer whose data is external, in `location`. */
function onnxWithExternal(location: string): Uint8Array {
  const tensor = [
    ...vfield(1, 4),
    ...vfield(2, 1),
    ...sfield(8, 'w'),
    ...lfield(13, [...sfield(1, 'location'), ...sfield(2, location)]),
    ...vfield(14, 1),
  ];
  const graph = [...sfield(2, 'g'), ...lfield(5, tensor)];
  return Uint8Array.from([...vfield(1, 9), ...lfield(7, graph), ...lfield(8, vfield(2, 21))]);
}

/** A TF.js LayersModel whose one weight group is the shard `path`. */
function tfjsModel(path: string): string {
  return JSON.stringify({
    format: 'layers-model',
    modelTopology: { class_name: 'Sequential', config: { layers: [] } },
    weightsManifest: [{ paths: [path], weights: [{ name: 'w', shape: [4], dtype: 'float32' }] }],
  });
}

/** Writes the checkpoint that names `companion` (as the format spells it) into `folder`; returns its path. */
type Writer = (folder: string, companion: string) => string;
const READERS: Record<string, { write: Writer; payload: (folder: string, name: string, bytes: Uint8Array) => void }> = {
  'TF.js weight shard': {
    write: (folder, companion) => {
      const p = join(folder, 'model.json');
      writeFileSync(p, tfjsModel(companion));
      return p;
    },
    payload: (folder, name, bytes) => {
      writeFileSync(join(folder, name), bytes);
    },
  },
  'safetensors index shard': {
    write: (folder, companion) => {
      const p = join(folder, 'model.safetensors.index.json');
      writeFileSync(p, JSON.stringify({ metadata: {}, weight_map: { w: companion } }));
      return p;
    },
    payload: (folder, name, bytes) => {
      const file = safetensors('w');
      file.set(bytes, file.length - 16);
      writeFileSync(join(folder, name), file);
    },
  },
  'ONNX external data': {
    write: (folder, companion) => {
      const p = join(folder, 'model.onnx');
      writeFileSync(p, onnxWithExternal(companion));
      return p;
    },
    payload: (folder, name, bytes) => {
      writeFileSync(join(folder, name), bytes);
    },
  },
};

async function firstValues(path: string): Promise<number[]> {
  const checkpoint = await openCheckpoint(path);
  try {
    return Array.from(await readTensorValues(checkpoint.tensors[0]!));
  } finally {
    await checkpoint.close();
  }
}

async function refused(path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(firstValues(path), (error: unknown) => {
    assert.ok(error instanceof CheckpointFormatError, `expected CheckpointFormatError, got ${String(error)}`);
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes('\n'), 'one line');
    return true;
  });
}

for (const [reader, { write, payload }] of Object.entries(READERS)) {
  test(`${reader}: ../, absolute and outward links are refused; inward links are followed`, async () => {
    const root = mkdtempSync(join(tmpdir(), 'companion-'));
    try {
      const model = join(root, 'model');
      mkdirSync(model);
      payload(root, 'secret.bin', SECRET);
      payload(model, 'shard.bin', FOUR);

      await refused(write(model, '../secret.bin'), /"\.\.\/secret\.bin", outside its folder; refusing to read it/);
      await refused(write(model, join(root, 'secret.bin')), /an absolute path outside its folder; refusing to read it/);
      symlinkSync(join(root, 'secret.bin'), join(model, 'link.bin'));
      await refused(write(model, 'link.bin'), /"link\.bin", a link to a file outside its folder; refusing to read it/);
      // A link to a folder outside, then a file through it.
      symlinkSync(root, join(model, 'up'));
      await refused(write(model, 'up/secret.bin'), /"up\/secret\.bin", a link to a file outside its folder/);

      // Links that stay inside the folder are fine.
      mkdirSync(join(model, 'sub'));
      payload(join(model, 'sub'), 'real.bin', FOUR);
      symlinkSync(join(model, 'sub', 'real.bin'), join(model, 'inside.bin'));
      assert.deepEqual(await firstValues(write(model, 'inside.bin')), [1, 2, 3, 4]);
      assert.deepEqual(await firstValues(write(model, 'shard.bin')), [1, 2, 3, 4]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}

test('the Hugging Face cache layout opens: the index and its shards all link into one blob folder', async () => {
  const root = mkdtempSync(join(tmpdir(), 'companion-hf-'));
  try {
    const blobs = join(root, 'blobs');
    const snapshot = join(root, 'snapshots', 'abc123');
    mkdirSync(blobs);
    mkdirSync(snapshot, { recursive: true });
    writeFileSync(join(blobs, 'index-blob'), JSON.stringify({ weight_map: { w: 'model-00001-of-00001.safetensors' } }));
    writeFileSync(join(blobs, 'shard-blob'), safetensors('w'));
    symlinkSync('../../blobs/index-blob', join(snapshot, 'model.safetensors.index.json'));
    symlinkSync('../../blobs/shard-blob', join(snapshot, 'model-00001-of-00001.safetensors'));
    assert.deepEqual(await firstValues(join(snapshot, 'model.safetensors.index.json')), [1, 2, 3, 4]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('resolveCompanion refuses empty names, NUL bytes and Windows absolute paths, and names missing files', async () => {
  const root = mkdtempSync(join(tmpdir(), 'companion-rule-'));
  try {
    const opened = join(root, 'model.json');
    writeFileSync(opened, '{}');
    await assert.rejects(resolveCompanion(opened, ''), /invalid file name ""/);
    await assert.rejects(resolveCompanion(opened, 'a\0b'), /invalid file name/);
    await assert.rejects(resolveCompanion(opened, 'C:\\Windows\\win.ini'), /an absolute path outside its folder/);
    await assert.rejects(resolveCompanion(opened, 'sub/../../x'), /outside its folder/);
    await assert.rejects(resolveCompanion(opened, 'absent.bin'), /"absent\.bin", which is missing or unreadable/);
    await assert.rejects(
      resolveCompanion(opened, 'x'.repeat(5000)),
      (e: unknown) => e instanceof Error && e.message.length < 600,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('optional companions (class names beside a dataset, a preprocessing sidecar beside a model) follow the rule', async () => {
  const root = mkdtempSync(join(tmpdir(), 'wl-optional-'));
  try {
    const data = join(root, 'data');
    mkdirSync(data);
    const secret = join(root, 'secret.txt');
    writeFileSync(secret, 'alpha\nbeta\n');
    copyFileSync(join(__dirname, '../../fixtures/data/cifar10/data_batch_1.bin'), join(data, 'data_batch_1.bin'));
    // Absent: no names, no error.
    assert.equal(await resolveOptionalCompanion(join(data, 'data_batch_1.bin'), 'batches.meta.txt'), undefined);
    const plain = await openCifarDataset(join(data, 'data_batch_1.bin'));
    assert.equal(plain.classes, undefined);
    // A names file that links outside the data's folder is refused, never read.
    symlinkSync(secret, join(data, 'batches.meta.txt'));
    await assert.rejects(
      openCifarDataset(join(data, 'data_batch_1.bin')),
      (e: unknown) => e instanceof CheckpointFormatError && /a link to a file outside its folder/.test(e.message),
    );
    // The same for a model's preprocessing sidecar.
    const models = join(root, 'models');
    mkdirSync(models);
    copyFileSync(join(__dirname, '../../fixtures/models/resnet20_fmnist.onnx'), join(models, 'm.onnx'));
    symlinkSync(secret, join(models, 'm.weightlens.json'));
    await assert.rejects(
      resolveOptionalCompanion(join(models, 'm.onnx'), 'm.weightlens.json'),
      /m\.weightlens\.json", a link to a file outside its folder; refusing to read it/,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
