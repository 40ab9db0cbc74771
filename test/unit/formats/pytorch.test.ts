// The PyTorch reader on files written by torch.save / torch.jit.save (test/fixtures/make/pytorch.py) and on small
// archives assembled here to reach paths torch.save does not write (deflated storages, storage views wider than one
// read, hostile storage keys and strides).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openWith, FIXTURES, hostileCases } from '../../helpers/fixtures';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { MemoryByteSource, siblingOpenerFor, type ByteSource } from '../../../src/core/io/byteSource';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { pytorchFormat } from '../../../src/core/formats/pytorch';
import type { Checkpoint } from '../../../src/core/formats/types';
import type { TensorEntry } from '../../../src/core/tensors/tensor';
import { tensorStatistics } from '../../../src/core/tensors/stats';

const DIR = join(FIXTURES, 'pytorch');
const HOSTILE = join(FIXTURES, 'hostile', 'pytorch');

const openFile = (path: string): Promise<Checkpoint> => openWith(pytorchFormat, path);

function openBytes(bytes: Uint8Array, name = 'mem.pt'): Promise<Checkpoint> {
  return pytorchFormat.open(new MemoryByteSource(bytes, name), { path: name, siblings: siblingOpenerFor(name) });
}

async function values(t: TensorEntry, maxElements?: number): Promise<number[]> {
  const out: number[] = [];
  for await (const chunk of t.values(maxElements === undefined ? {} : { maxElements })) out.push(...chunk);
  assert.equal(out.length, t.params);
  return out;
}

function tensor(ck: Checkpoint, name: string): TensorEntry {
  const t = ck.tensors.find((x) => x.name === name);
  assert.ok(t, `tensor ${name} is listed`);
  return t;
}

interface ManifestEntry {
  name: string;
  dtype: string;
  shape: number[];
  sum: number;
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

function head(path: string): Uint8Array {
  return Uint8Array.from(readFileSync(path).subarray(0, 65536));
}

// ---- a minimal stored/deflated zip writer, for archives torch.save does not produce ----

function zip(members: { name: string; data: Uint8Array; deflate?: boolean }[]): Uint8Array {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const name = Buffer.from(m.name, 'utf8');
    const body = m.deflate ? deflateRawSync(m.data) : Buffer.from(m.data);
    const crc = crc32(m.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(m.deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(m.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(m.deflate ? 8 : 0, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(m.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Uint8Array.from(Buffer.concat([...locals, cd, end]));
}

function latin1(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text, 'latin1'));
}

function u32(n: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b.toString('latin1');
}

/** A protocol-2 pickle of {name: _rebuild_tensor_v2(storage key, offset, shape, stride)} with a FloatStorage of `numel`. */
function tensorPickle(
  name: string,
  key: string,
  numel: number,
  offset: number,
  shape: number[],
  stride: number[],
): Uint8Array {
  const str = (s: string): string => `X${u32(Buffer.byteLength(s))}${s}`;
  const int = (n: number): string => `J${Buffer.from(new Int32Array([n]).buffer).toString('latin1')}`;
  const tuple = (xs: number[]): string => `(${xs.map(int).join('')}t`;
  return latin1(
    `\x80\x02}${str(name)}ctorch._utils\n_rebuild_tensor_v2\n((${str('storage')}ctorch\nFloatStorage\n${str(key)}${str('cpu')}${int(numel)}tQ` +
      `${int(offset)}${tuple(shape)}${tuple(stride)}\x89ccollections\nOrderedDict\n)RtRs.`,
  );
}

function floats(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

// ---------------------------------------------------------------- sniff

test('sniff: torch.save zips, TorchScript archives and the legacy format are claimed; others are not', () => {
  assert.ok(pytorchFormat.sniff(head(join(DIR, 'resnet_tiny.pt')), 'resnet_tiny.pt') >= 0.9);
  assert.ok(pytorchFormat.sniff(head(join(DIR, 'pytorch_model.bin')), 'pytorch_model.bin') >= 0.9);
  assert.ok(pytorchFormat.sniff(head(join(DIR, 'scripted.pt')), 'scripted.pt') >= 0.9);
  assert.ok(pytorchFormat.sniff(head(join(HOSTILE, 'legacy.pt')), 'legacy.pt') >= 0.9);
  assert.equal(pytorchFormat.sniff(head(join(FIXTURES, 'keras', 'model.keras')), 'model.keras'), 0);
  assert.equal(pytorchFormat.sniff(latin1('{"a": 1}'), 'x.bin'), 0);
  assert.equal(pytorchFormat.sniff(new Uint8Array(0), 'x.pt'), 0);
  const other = zip([{ name: 'weights.npy', data: new Uint8Array(4) }]);
  assert.equal(pytorchFormat.sniff(other, 'x.bin'), 0);
  assert.ok(pytorchFormat.sniff(other, 'x.pt') > 0);
});

// ---------------------------------------------------------------- real torch.save files

test('a ResNet-like state dict lists every tensor with the values PyTorch saved', async () => {
  const ck = await openFile(join(DIR, 'resnet_tiny.pt'));
  try {
    const want = expected('resnet_tiny.pt');
    assert.equal(ck.format, 'pytorch');
    assert.equal(ck.description, 'PyTorch zip (torch.save)');
    assert.equal(ck.tensors.length, want.tensors);
    assert.deepEqual(
      ck.tensors.map((t) => t.name),
      want.entries.map((e) => e.name),
      'file order is kept',
    );
    for (const e of want.entries) {
      const t = tensor(ck, e.name);
      assert.equal(t.dtype, e.dtype);
      assert.deepEqual([...t.shape], e.shape);
      const v = await values(t, 50);
      const sum = v.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - e.sum) <= 1e-4 * Math.max(1, Math.abs(e.sum)), `${e.name} sum ${sum} vs ${e.sum}`);
    }
    assert.equal(tensor(ck, 'bn1.num_batches_tracked').dtype, 'I64');
    assert.deepEqual([...tensor(ck, 'bn1.num_batches_tracked').shape], []);
  } finally {
    await ck.close();
    await ck.close(); // idempotent
  }
});

test('a training checkpoint: nested tensors get dotted names, scalars become metadata', async () => {
  const ck = await openFile(join(DIR, 'nested.ckpt'));
  try {
    const names = ck.tensors.map((t) => t.name);
    assert.deepEqual(
      names,
      expected('nested.ckpt').entries.map((e) => e.name),
    );
    assert.ok(names.includes('state_dict.fc1.weight'));
    assert.ok(names.includes('optimizer.state.0.momentum_buffer'));
    assert.equal(ck.metadata.epoch, 3);
    assert.equal(ck.metadata.best_acc, 0.875);
    assert.equal(ck.metadata.global_step, 1200);
    assert.equal(ck.metadata.arch, 'mlp');
    assert.equal(ck.metadata.dtype, 'torch.float16');
    assert.equal(ck.metadata['optimizer.param_groups.0.lr'], 0.1);
    assert.equal(ck.metadata['optimizer.param_groups.0.params'], '[0, 1, 2, 3]');
    assert.ok(!Object.keys(ck.metadata).some((k) => k.includes('_metadata')), 'state-dict bookkeeping is not metadata');
    // NumPy arrays pickled in-band are tensors too; the Fortran-order one is transposed to row-major.
    assert.equal(tensor(ck, 'val_confusion').dtype, 'I32');
    assert.deepEqual(await values(tensor(ck, 'val_confusion')), [0, 1, 2, 3, 4, 5]);
    const scores = await values(tensor(ck, 'val_scores'));
    [0, 0.2, 0.4, 0.6, 0.8, 1].forEach((x, i) => {
      assert.ok(Math.abs(scores[i]! - x) < 1e-12, `val_scores[${i}]`);
    });
    assert.deepEqual([...tensor(ck, 'val_scores').shape], [2, 3]);
  } finally {
    await ck.close();
  }
});

test('shared storages: every sharer is listed, its bytes are counted once', async () => {
  const ck = await openFile(join(DIR, 'shared_storage.pt'));
  try {
    const base = tensor(ck, 'base');
    const rows = tensor(ck, 'rows_2_to_4');
    const flat = tensor(ck, 'flat');
    const head = tensor(ck, 'head.weight');
    assert.equal(base.bytes, 6 * 4 * 4);
    assert.equal(base.note, undefined);
    assert.equal(rows.bytes, 0);
    assert.equal(rows.note, 'shares storage with base');
    assert.equal(flat.note, 'shares storage with base');
    assert.equal(head.note, 'shares storage with embed.weight');
    assert.equal(tensor(ck, 'embed.weight').bytes, 7 * 4 * 4);
    assert.equal(
      ck.tensors.reduce((n, t) => n + t.bytes, 0),
      96 + 112,
    );
    const b = await values(base);
    assert.deepEqual(await values(rows), b.slice(8, 16), 'a view with storage_offset 8');
    assert.deepEqual(await values(flat), b);
    assert.deepEqual(await values(head), await values(tensor(ck, 'embed.weight')));
  } finally {
    await ck.close();
  }
});

test('non-contiguous views come out in row-major order, whatever the chunk size', async () => {
  const ck = await openFile(join(DIR, 'noncontiguous.pt'));
  try {
    const w = await values(tensor(ck, 'w')); // 5 × 7
    const transposed: number[] = [];
    for (let j = 0; j < 7; j++) for (let i = 0; i < 5; i++) transposed.push(w[i * 7 + j]!);
    const everyOther: number[] = [];
    for (let i = 0; i < 5; i++) for (let j = 0; j < 7; j += 2) everyOther.push(w[i * 7 + j]!);
    for (const chunk of [1, 3, 7, 1000]) {
      assert.deepEqual(await values(tensor(ck, 'w_t'), chunk), transposed, `w_t with chunks of ${chunk}`);
      assert.deepEqual(await values(tensor(ck, 'every_other_column'), chunk), everyOther);
      assert.deepEqual(await values(tensor(ck, 'expanded'), chunk), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
    }
    assert.match(tensor(ck, 'w_t').note ?? '', /shares storage with w; non-contiguous \(stride \[1, 7\]\)/);
    const cube = tensor(ck, 'cube_permuted');
    const e = expected('noncontiguous.pt').entries.find((x) => x.name === 'cube_permuted')!;
    const v = await values(cube, 11);
    assert.deepEqual(
      v.slice(0, 4).map((x) => Number(x.toFixed(5))),
      e.first.map((x) => Number(x.toFixed(5))),
    );
  } finally {
    await ck.close();
  }
});

test('every dtype a state dict uses, a 0-d and an empty tensor', async () => {
  const ck = await openFile(join(DIR, 'dtypes.pth'));
  try {
    const dtypes = Object.fromEntries(ck.tensors.map((t) => [t.name, t.dtype]));
    assert.deepEqual(dtypes, {
      f32: 'F32',
      f16: 'F16',
      bf16: 'BF16',
      f64: 'F64',
      i64: 'I64',
      i32: 'I32',
      i16: 'I16',
      i8: 'I8',
      u8: 'U8',
      bool: 'BOOL',
      scalar: 'F32',
      empty: 'F32',
    });
    assert.deepEqual(await values(tensor(ck, 'i64')), [-6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5]);
    assert.deepEqual(await values(tensor(ck, 'u8')), [250, 251, 252, 253, 254, 255]);
    assert.deepEqual(await values(tensor(ck, 'bool')), [1, 0, 1, 1]);
    assert.deepEqual(await values(tensor(ck, 'scalar')), [2.5]);
    assert.equal(tensor(ck, 'empty').params, 0);
    const f32 = await values(tensor(ck, 'f32'));
    const f16 = await values(tensor(ck, 'f16'));
    f32.forEach((x, i) => {
      assert.ok(Math.abs(x - f16[i]!) < 2e-3 * Math.max(1, Math.abs(x)));
    });
  } finally {
    await ck.close();
  }
});

test('big-endian storages (byteorder "big") decode to the same values', async () => {
  const big = await openFile(join(DIR, 'bigendian.pt'));
  const little = await openFile(join(DIR, 'dtypes.pth'));
  try {
    assert.match(big.description, /big-endian/);
    for (const t of big.tensors) assert.deepEqual(await values(t, 4), await values(tensor(little, t.name)), t.name);
  } finally {
    await big.close();
    await little.close();
  }
});

test('a TorchScript archive lists its module parameters', async () => {
  const ck = await openFile(join(DIR, 'scripted.pt'));
  try {
    assert.equal(ck.description, 'TorchScript archive (torch.jit.save)');
    assert.deepEqual(
      ck.tensors.map((t) => t.name),
      ['conv.weight', 'conv.bias', 'fc.weight', 'fc.bias'],
    );
    assert.deepEqual([...tensor(ck, 'conv.weight').shape], [3, 2, 3, 3]);
  } finally {
    await ck.close();
  }
});

// ---------------------------------------------------------------- assembled archives

test('a deflated storage member is inflated once and read like a stored one', async () => {
  const data = floats([1, 2, 3, 4, 5, 6]);
  const bytes = zip([
    { name: 'archive/data.pkl', data: tensorPickle('w', '0', 6, 0, [3, 2], [1, 3]) },
    { name: 'archive/data/0', data, deflate: true },
  ]);
  const ck = await openBytes(bytes);
  try {
    assert.deepEqual(await values(tensor(ck, 'w')), [1, 4, 2, 5, 3, 6]);
  } finally {
    await ck.close();
  }
  const contiguous = await openBytes(
    zip([
      { name: 'archive/data.pkl', data: tensorPickle('w', '0', 6, 2, [2, 2], [2, 1]) },
      { name: 'archive/data/0', data, deflate: true },
    ]),
  );
  try {
    assert.deepEqual(await values(tensor(contiguous, 'w'), 3), [3, 4, 5, 6]);
  } finally {
    await contiguous.close();
  }
});

test('a strided view spanning more than one read is gathered window by window', async () => {
  // Shape [2, 2] with stride [17 Mi, 1]: its two rows lie 68 MB apart in a 68 MB storage.
  const rowStride = 17 * 1024 * 1024;
  const numel = rowStride + 2;
  const storage = new Float32Array(numel);
  storage.set([1, 2], 0);
  storage.set([3, 4], rowStride);
  const bytes = zip([
    { name: 'archive/data.pkl', data: tensorPickle('w', '0', numel, 0, [2, 2], [rowStride, 1]) },
    { name: 'archive/data/0', data: new Uint8Array(storage.buffer) },
  ]);
  const ck = await openBytes(bytes);
  try {
    assert.deepEqual(await values(tensor(ck, 'w')), [1, 2, 3, 4]);
    assert.deepEqual(await values(tensor(ck, 'w'), 1), [1, 2, 3, 4]);
  } finally {
    await ck.close();
  }
});

test('hostile storages, strides and keys are refused when the file is opened', async () => {
  const refuse = async (bytes: Uint8Array, pattern: RegExp): Promise<void> => {
    await assert.rejects(openBytes(bytes), (error: unknown) => {
      assert.ok(error instanceof CheckpointFormatError, String(error));
      assert.match(error.message, pattern);
      return true;
    });
  };
  const data = floats([1, 2, 3, 4]);
  await refuse(
    zip([
      { name: 'archive/data.pkl', data: tensorPickle('w', '0', 4, 0, [3, 3], [3, 1]) },
      { name: 'archive/data/0', data },
    ]),
    /reaches element 8 of storage 0, which has only 4 elements/,
  );
  await refuse(
    zip([
      { name: 'archive/data.pkl', data: tensorPickle('w', '0', 4, 3, [2], [1]) },
      { name: 'archive/data/0', data },
    ]),
    /reaches element 4/,
  );
  await refuse(
    zip([
      { name: 'archive/data.pkl', data: tensorPickle('w', '0', 4, 0, [2], [-1]) },
      { name: 'archive/data/0', data },
    ]),
    /stride -1/,
  );
  await refuse(
    zip([
      { name: 'archive/data.pkl', data: tensorPickle('w', '../../etc/passwd', 4, 0, [4], [1]) },
      { name: 'archive/data/0', data },
    ]),
    /not a valid storage key/,
  );
  await refuse(
    zip([
      { name: 'archive/data.pkl', data: tensorPickle('w', '1', 4, 0, [4], [1]) },
      { name: 'archive/data/0', data },
    ]),
    /missing the storage record archive\/data\/1/,
  );
  await refuse(
    zip([
      { name: 'archive/data.pkl', data: tensorPickle('w', '0', 8, 0, [4], [1]) },
      { name: 'archive/data/0', data },
    ]),
    /holds 16 B but its 8 float32 elements need 32 B/,
  );
  await refuse(
    zip([
      { name: 'archive/data.pkl', data: tensorPickle('w', '0', 4, 0, [4], [1]) },
      { name: 'archive/byteorder', data: latin1('middle') },
      { name: 'archive/data/0', data },
    ]),
    /invalid byteorder record "middle"/,
  );
  await refuse(zip([{ name: 'archive/version', data: latin1('3') }]), /without a <name>\/data\.pkl record/);
});

test('the corpus of hostile torch files fails with the manifest messages', async () => {
  const cases = hostileCases('pytorch');
  assert.ok(cases.length >= 10);
  for (const c of cases) {
    await assert.rejects(
      (async () => {
        const ck = await openFile(join(HOSTILE, c.file));
        try {
          for (const t of ck.tensors) await values(t);
        } finally {
          await ck.close();
        }
      })(),
      (error: unknown) => {
        assert.ok(error instanceof CheckpointFormatError, `${c.file}: ${String(error)}`);
        assert.match(error.message, new RegExp(c.message, 'i'), c.file);
        return true;
      },
    );
  }
  await assert.rejects(
    openFile(join(HOSTILE, 'os_system.pt')),
    /refers to the Python global os\.system, which Weight Lens does not allow in a checkpoint \(only plain tensors and containers are accepted\); it was not executed\./,
  );
});

test('a source other than a file (a zip member, memory) works the same', async () => {
  const bytes = Uint8Array.from(readFileSync(join(DIR, 'pytorch_model.bin')));
  const source: ByteSource = new MemoryByteSource(bytes, 'pytorch_model.bin');
  const ck = await pytorchFormat.open(source, {
    path: 'pytorch_model.bin',
    siblings: siblingOpenerFor('pytorch_model.bin'),
  });
  try {
    assert.deepEqual(
      ck.tensors.map((t) => t.name),
      ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'],
    );
  } finally {
    await ck.close();
  }
});

test(
  'an expanded view (stride 0) over 2^38 logical elements: statistics cost its 4 stored elements',
  { timeout: 60_000 },
  async () => {
    const bytes = zip([
      { name: 'archive/data.pkl', data: tensorPickle('w', '0', 4, 0, [2 ** 17, 2 ** 17, 4, 4], [0, 0, 0, 1]) },
      { name: 'archive/data/0', data: floats([1, 2, 3, 4]) },
    ]);
    const ck = await openBytes(bytes);
    try {
      const t = tensor(ck, 'w');
      assert.equal(t.params, 2 ** 38);
      const { stats, histogram } = await tensorStatistics(t, 4);
      assert.equal(stats.count, 2 ** 38);
      assert.equal(stats.mean, 2.5);
      assert.equal(stats.min, 1);
      assert.equal(stats.max, 4);
      assert.deepEqual(histogram.counts, [2 ** 36, 2 ** 36, 2 ** 36, 2 ** 36]);
      // The values themselves still come out in row-major order.
      let n = 0;
      for await (const chunk of t.values({ maxElements: 8 })) {
        assert.deepEqual(Array.from(chunk), [1, 2, 3, 4, 1, 2, 3, 4]);
        if (++n === 3) break;
      }
    } finally {
      await ck.close();
    }
  },
);

test('a view reading its storage over a thousand times over is listed but not gathered', async () => {
  const bytes = zip([
    { name: 'archive/data.pkl', data: tensorPickle('w', '0', 2 ** 14, 0, [2 ** 13, 2 ** 13], [1, 1]) },
    { name: 'archive/data/0', data: new Uint8Array(4 * 2 ** 14) },
  ]);
  const ck = await openBytes(bytes);
  try {
    assert.match(tensor(ck, 'w').notDecodedReason ?? '', /reads its 16384-element storage over 1024 times/);
  } finally {
    await ck.close();
  }
});

test('a dict whose keys are 20,000-tuples is read in linear time', { timeout: 60_000 }, async () => {
  // {(i, T): i for i < 20,000} where T is one memoised 20,000-tuple: keys are compared by identity, not by value.
  const int = (n: number): string => `J${Buffer.from(new Int32Array([n]).buffer).toString('latin1')}`;
  let body = `\x80\x02}(${Array.from({ length: 20_000 }, (_, i) => `K${String.fromCharCode(i % 256)}`).join('')}tq\x000`;
  for (let i = 0; i < 20_000; i++) body += `${int(i)}h\x00\x86${int(i)}s`;
  const pickle = latin1(`${body}.`);
  const ck = await openBytes(zip([{ name: 'archive/data.pkl', data: pickle }]));
  try {
    assert.equal(ck.tensors.length, 0);
    assert.ok(Object.keys(ck.metadata).length >= 1000);
  } finally {
    await ck.close();
  }
});
