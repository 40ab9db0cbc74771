import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDataset, type Dataset } from '../../../src/core/data/dataset';
import { openIdxDataset } from '../../../src/core/data/idx';
import { openCifarDataset } from '../../../src/core/data/cifar';
import { CheckpointFormatError } from '../../../src/core/io/errors';

const DIR = join(__dirname, '..', '..', 'fixtures', 'data');

interface Expected {
  size: number;
  shape: number[];
  pixelSum: number;
  pixelSumSquares: number;
  firstSampleSum: number;
  labelCounts: number[];
  firstLabels: number[];
  classes?: string[];
  coarseLabelCounts?: number[];
}
const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as { datasets: Record<string, Expected> };

function expected(key: string): Expected {
  const e = manifest.datasets[key];
  assert.ok(e, `manifest has ${key}`);
  return e;
}

/** Reads the whole dataset in batches of 10 and returns its sums and label counts. */
async function summarise(
  ds: Dataset,
): Promise<{ sum: number; sumSquares: number; first: number; counts: number[]; labels: number[] }> {
  let sum = 0;
  let sumSquares = 0;
  let first = 0;
  const counts: (number | undefined)[] = [];
  const labels: number[] = [];
  const per = ds.shape[0] * ds.shape[1] * ds.shape[2];
  for (let start = 0; start < ds.size; start += 10) {
    const indices = Array.from({ length: Math.min(10, ds.size - start) }, (_, i) => start + i);
    const { x, y } = await ds.read(indices);
    assert.equal(x.length, indices.length * per);
    x.forEach((v, i) => {
      sum += v;
      sumSquares += v * v;
      if (start === 0 && i < per) first += v;
    });
    if (y)
      for (const label of y) {
        counts[label] = (counts[label] ?? 0) + 1;
        labels.push(label);
      }
  }
  return { sum, sumSquares, first, counts: Array.from(counts, (c) => c ?? 0), labels };
}

async function check(ds: Dataset, e: Expected, tol = 1e-6): Promise<void> {
  assert.equal(ds.size, e.size);
  assert.deepEqual([...ds.shape], e.shape);
  const s = await summarise(ds);
  const rel = (a: number, b: number): boolean => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));
  assert.ok(rel(s.sum, e.pixelSum), `sum ${s.sum} vs ${e.pixelSum}`);
  assert.ok(rel(s.sumSquares, e.pixelSumSquares), `sumSquares ${s.sumSquares} vs ${e.pixelSumSquares}`);
  assert.ok(rel(s.first, e.firstSampleSum), `first ${s.first} vs ${e.firstSampleSum}`);
  if (e.labelCounts.length > 0) {
    assert.ok(ds.hasLabels);
    assert.deepEqual(s.counts, e.labelCounts);
    assert.deepEqual(s.labels.slice(0, 8), e.firstLabels);
  } else {
    assert.equal(ds.hasLabels, false);
  }
  if (e.classes) assert.deepEqual(ds.classes, e.classes);
}

async function rejects(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => e instanceof CheckpointFormatError && pattern.test(e.message));
}

for (const key of [
  'idx/t10k-images-idx3-ubyte.gz',
  'idx_raw/sample-images.idx3-ubyte',
  'idx_float/scaled-images-idx3-float',
  'idx_short/centred-images-idx3-short',
  'cifar10/data_batch_1.bin',
  'cifar100/test.bin',
  'arrays/fmnist_xy.npz',
  'arrays/fmnist_named.npz',
  'arrays/unnamed.npz',
  'images',
]) {
  test(`openDataset reads ${key} and matches numpy's sums and label counts`, async () => {
    const ds = await openDataset(join(DIR, key));
    try {
      await check(ds, expected(key), key.includes('float') || key.includes('named') ? 1e-5 : 1e-9);
    } finally {
      await ds.close();
    }
  });
}

test('opening an IDX labels file opens its images file; explicit null labels drops them', async () => {
  const ds = await openDataset(join(DIR, 'idx', 't10k-labels-idx1-ubyte.gz'));
  assert.equal(ds.kind, 'idx');
  assert.equal(ds.size, 64);
  assert.ok(ds.hasLabels);
  await ds.close();
  const bare = await openIdxDataset(join(DIR, 'idx', 't10k-images-idx3-ubyte.gz'), { labelsPath: null });
  assert.equal(bare.hasLabels, false);
  const { x, y } = await bare.read([3, 3]);
  assert.equal(y, undefined);
  assert.deepEqual(x.subarray(0, 784), x.subarray(784));
  await bare.close();
});

test('CIFAR-100 coarse labels and channel order (replicated gray → R = G = B)', async () => {
  const e = expected('cifar100/test.bin');
  const ds = await openCifarDataset(join(DIR, 'cifar100', 'test.bin'), { coarseLabels: true });
  const { x, y } = await ds.read(Array.from({ length: ds.size }, (_, i) => i));
  const counts: (number | undefined)[] = [];
  for (const v of y ?? []) counts[v] = (counts[v] ?? 0) + 1;
  assert.deepEqual(
    Array.from(counts, (c) => c ?? 0),
    e.coarseLabelCounts,
  );
  for (let p = 0; p < 1024; p++) assert.ok(x[3 * p] === x[3 * p + 1] && x[3 * p] === x[3 * p + 2]);
  // 2-pixel zero border from the 28 → 32 padding.
  assert.equal(x[0], 0);
  await ds.close();
});

test('RGB PNG folder matches the grayscale one replicated to 3 channels', async () => {
  const rgb = await openDataset(join(DIR, 'images_rgb'));
  const gray = await openDataset(join(DIR, 'images'));
  assert.deepEqual([...rgb.shape], [28, 28, 3]);
  assert.deepEqual(rgb.classes, ['sneaker', 'trouser']);
  const a = await rgb.read([0, 2]);
  const b = await gray.read([0, 5]);
  assert.deepEqual(Array.from(a.y ?? []), [0, 1]);
  for (let i = 0; i < 2 * 784; i++) assert.equal(a.x[3 * i], b.x[i]);
  await rgb.close();
  await gray.close();
});

test(
  'JPEG folder decodes close to libjpeg-turbo (djpeg) reference',
  { skip: !existsSync(join(DIR, 'jpeg')) },
  async () => {
    const e = expected('jpeg');
    const ds = await openDataset(join(DIR, 'jpeg'));
    assert.deepEqual([...ds.shape], [28, 28, 1]);
    assert.deepEqual(ds.classes, ['sneaker', 'trouser']);
    const { x, y } = await ds.read([0, 1]);
    assert.deepEqual(Array.from(y ?? []), [0, 1]);
    const sum = x.reduce((a, v) => a + v, 0);
    // Decoders may round differently by ±1 per pixel: allow 2 per pixel on average.
    assert.ok(Math.abs(sum - e.pixelSum) <= 2 * x.length, `jpeg sum ${sum} vs ${e.pixelSum}`);
    await ds.close();
  },
);

test('hostile dataset files fail with clear errors', async () => {
  const h = (name: string): string => join(DIR, 'hostile', name);
  await rejects(
    openDataset(h('truncated-images-idx3-ubyte')),
    /truncated: its IDX header declares uint8 \[4, 28, 28\]/,
  );
  await rejects(
    openDataset(h('huge-images-idx3-ubyte')),
    /truncated: its IDX header declares uint8 \[2147483647, 28, 28\]/,
  );
  await rejects(
    openDataset(h('bomb-images-idx3-ubyte.gz')),
    /inflates to more than the 3\.15 kB its IDX header declares|inflates to more than/,
  );
  await rejects(
    openDataset(h('declared-huge-images-idx3-ubyte.gz')),
    /declares IDX dimensions \[2147483647, 28, 28\] \(1\.7 TB inflated\), over the/,
  );
  await rejects(openDataset(h('truncated-images-idx3-ubyte.gz')), /not a valid gzip file or is truncated/);
  await rejects(openDataset(h('badtype-images-idx3-ubyte')), /unknown IDX element type 0x0a/);
  await rejects(
    openDataset(h('data_batch_9.bin')),
    /not a whole number of CIFAR-10 records: 6141 bytes is not a multiple of 3073/,
  );
  await rejects(openDataset(h('odd.bin')), /is not a CIFAR batch: its size is a multiple of neither/);
  await rejects(openDataset(h('mismatch/a-images-idx3-ubyte')), /has 3 labels but its images file has 4 samples/);
  await rejects(openDataset(join(DIR, 'manifest.json')), /is not a dataset Weight Lens reads/);
  await rejects(openDataset(join(DIR, 'missing')), /does not exist/);
  const ds = await openDataset(join(DIR, 'idx_raw', 'sample-images.idx3-ubyte'));
  await rejects(ds.read([16]), /sample index 16 is outside the dataset's 16 samples/);
  await rejects(ds.read([-1]), /sample index -1/);
  await ds.close();
});

const DEBIAN = '/usr/share/datasets/fashion-mnist';
test(
  'Debian Fashion-MNIST test set: 10 000 samples, 1 000 per class',
  { skip: !existsSync(join(DEBIAN, 't10k-images-idx3-ubyte.gz')) },
  async () => {
    const ds = await openDataset(join(DEBIAN, 't10k-images-idx3-ubyte.gz'));
    assert.equal(ds.size, 10_000);
    assert.deepEqual([...ds.shape], [28, 28, 1]);
    const { x, y } = await ds.read(Array.from({ length: 64 }, (_, i) => i));
    const fixture = await openDataset(join(DIR, 'idx', 't10k-images-idx3-ubyte.gz'));
    const small = await fixture.read(Array.from({ length: 64 }, (_, i) => i));
    assert.deepEqual(x, small.x);
    assert.deepEqual(y, small.y);
    const all = await ds.read(Array.from({ length: 10_000 }, (_, i) => i));
    const counts = new Array<number>(10).fill(0);
    for (const v of all.y ?? []) counts[v] = (counts[v] ?? 0) + 1;
    assert.deepEqual(counts, new Array<number>(10).fill(1000));
    await ds.close();
    await fixture.close();
  },
);

test('damaged and oversized images are refused before or during decoding', async () => {
  const { decodeImage } = await import('../../../src/core/data/imageFolder');
  const png = new Uint8Array(readFileSync(join(DIR, 'images', 'trouser', '002.png')));
  const ok = await decodeImage(png, 'ok.png');
  assert.deepEqual([ok.width, ok.height, ok.channels], [28, 28, 1]);
  await rejects(decodeImage(png.subarray(0, 60), 'cut.png'), /cut\.png is a damaged or unsupported image/);
  const huge = png.slice();
  new DataView(huge.buffer).setUint32(16, 1_000_000, false);
  new DataView(huge.buffer).setUint32(20, 1_000_000, false);
  await rejects(decodeImage(huge, 'huge.png'), /huge\.png declares 1000000×1000000 pixels/);
  await rejects(decodeImage(new TextEncoder().encode('hello'), 'text.png'), /text\.png is not a PNG or JPEG image/);
  if (existsSync(join(DIR, 'jpeg'))) {
    const jpg = new Uint8Array(readFileSync(join(DIR, 'jpeg', 'sneaker', 'photo.jpg')));
    await rejects(
      decodeImage(jpg.subarray(0, jpg.length - 300), 'cut.jpg'),
      /cut\.jpg is a damaged or unsupported image/,
    );
  }
});

void test('classes.txt or labels.txt beside a dataset names its classes; a link out of the folder is refused', async () => {
  const root = mkdtempSync(join(tmpdir(), 'wl-classes-'));
  try {
    const data = join(root, 'data');
    mkdirSync(data);
    for (const f of ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'])
      copyFileSync(join(DIR, 'idx', f), join(data, f));
    const images = join(data, 't10k-images-idx3-ubyte.gz');
    const plain = await openDataset(images);
    assert.equal(plain.classes, undefined);
    await plain.close();
    const names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Boot'];
    writeFileSync(join(data, 'labels.txt'), `${names.join('\n')}\n\n`);
    const named = await openDataset(images);
    assert.deepEqual(named.classes, names);
    const batch = await named.read([0, 1]);
    assert.equal(batch.y?.length, 2, 'the named dataset still reads');
    await named.close();
    // classes.txt comes first; a classes.txt that links outside the data's folder is refused, not read.
    writeFileSync(join(root, 'secret.txt'), 'a\nb\n');
    symlinkSync(join(root, 'secret.txt'), join(data, 'classes.txt'));
    await assert.rejects(openDataset(images), /classes\.txt", a link to a file outside its folder/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
