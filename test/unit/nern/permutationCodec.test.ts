// Stored permutations (artifact format 4): bit-packed at ⌈log₂ N⌉ bits and deflated where smaller; decoding unpacks
// exactly and refuses hostile blobs with one sentence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { openCheckpoint } from '../../../src/core/formats/registry';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { readArtifact } from '../../../src/core/nern/artifact';
import { computePermutation, identityPermutation } from '../../../src/core/nern/permutation';
import {
  blockedPermutationBytes,
  decodePermutation,
  encodePermutation,
  packedPermutationBytes,
  packIndices,
  permutationBits,
  unpackIndices,
} from '../../../src/core/nern/permutationCodec';
import { readTensorValues } from '../../../src/core/tensors/tensor';
import { FIXTURES } from '../../helpers/fixtures';

const RESNET = join(FIXTURES, 'pytorch', 'resnet_tiny.pt');
const PREVIOUS = join(FIXTURES, 'artifacts', 'tiny_cnn_v2.nern.safetensors');

void test('bit widths are ⌈log₂ N⌉', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 255, 256, 257, 4096, 65536, 65537].map(permutationBits),
    [0, 1, 2, 2, 3, 8, 8, 9, 12, 16, 17],
  );
  assert.equal(packedPermutationBytes(4096), 6144); // 4,096 × 12 bits
  assert.equal(packedPermutationBytes(1), 0);
});

/** The crossfilter, infilter and identity permutations a compress run computes for resnet_tiny.pt's 3×3 convolutions. */
async function resnetPermutations(): Promise<{ perm: Int32Array; cin: number; kind: string }[]> {
  const checkpoint = await openCheckpoint(RESNET);
  try {
    const perms: { perm: Int32Array; cin: number; kind: string }[] = [];
    for (const t of checkpoint.tensors) {
      if (t.shape.length !== 4 || t.shape[2] !== 3 || t.shape[3] !== 3) continue;
      const values = await readTensorValues(t);
      const [cout, cin] = t.shape as [number, number];
      for (const kind of ['crossfilter', 'infilter', 'none'] as const)
        perms.push({ perm: computePermutation(kind, values, cout, cin), cin, kind });
    }
    return perms;
  } finally {
    await checkpoint.close();
  }
}

void test('real permutations (resnet_tiny.pt, and a stored v2 artifact) round-trip exactly, in the smaller coding', async () => {
  const perms = await resnetPermutations();
  const art = await readArtifact(PREVIOUS);
  try {
    art.kernelMap.permutations.forEach((perm, l) =>
      perms.push({ perm, cin: art.kernelMap.layers[l]?.shape[1] ?? 1, kind: art.meta.training.permutation }),
    );
  } finally {
    await art.close();
  }
  assert.ok(perms.length >= 6);
  const codings = new Set<string>();
  for (const { perm, cin, kind } of perms) {
    const { data, stored } = encodePermutation(perm, cin);
    const n = perm.length;
    assert.equal(stored.bits, permutationBits(n));
    const packed = packIndices(perm, stored.bits);
    assert.deepEqual(unpackIndices(packed, n, stored.bits), perm);
    assert.ok(data.length <= packed.length, 'never larger than the packed form');
    assert.ok(packed.length < 2 * n || n <= 1, 'packed is smaller than U16');
    codings.add(stored.coding);
    assert.deepEqual(decodePermutation(data, n, stored, 'conv', cin), perm);
    // infilter chains keep kernels inside their filters: stored as filter blocks, about half the packed bytes.
    if (kind === 'infilter' && n > cin && cin > 1) {
      assert.equal(stored.coding, 'blocks');
      assert.equal(data.length, blockedPermutationBytes(n / cin, cin));
      assert.ok(data.length < packed.length);
    }
  }
  // An identity permutation ('none') is stored as nothing at all.
  const id = encodePermutation(identityPermutation(4096));
  assert.deepEqual(id.stored, { bits: 12, coding: 'identity' });
  assert.equal(id.data.length, 0);
  assert.deepEqual(decodePermutation(id.data, 4096, id.stored, 'conv'), identityPermutation(4096));
  assert.ok(codings.has('identity') && codings.has('packed') && codings.has('blocks'), [...codings].join(', '));
});

void test('hostile permutation blobs are refused with one sentence', () => {
  const n = 300;
  const perm = identityPermutation(n).reverse();
  const packed = packIndices(perm, 9);
  const refuses = (
    data: Uint8Array,
    stored: Parameters<typeof decodePermutation>[2],
    message: RegExp,
    blockSize?: number,
  ): void => {
    assert.throws(
      () => decodePermutation(data, n, stored, 'layer1.conv', blockSize),
      (e: unknown) =>
        e instanceof CheckpointFormatError &&
        message.test(e.message) &&
        e.message.startsWith('The stored permutation of layer layer1.conv') &&
        e.message.split('. ').length === 1,
    );
  };
  refuses(
    packed.subarray(1),
    { bits: 9, coding: 'packed' },
    /is 337 bytes, not the 338 bytes of 300 indices at 9 bits/,
  );
  refuses(packed, { bits: 8, coding: 'packed' }, /recorded at 8 bits per index, but 300 kernels need 9/);
  const big = Int32Array.from(perm);
  big[7] = 400; // fits in 9 bits, outside 0…299
  refuses(packIndices(big, 9), { bits: 9, coding: 'packed' }, /holds index 400 at position 7, outside 0…299/);
  const twice = Int32Array.from(perm);
  twice[1] = twice[0]!;
  refuses(packIndices(twice, 9), { bits: 9, coding: 'packed' }, /repeats an index, so it is not a permutation/);
  refuses(Uint8Array.from([1, 2, 3, 4]), { bits: 9, coding: 'deflate' }, /is not valid deflate data/);
  // A deflate bomb: 1 MB of zeros claimed as 338 bytes stops at the bound.
  const bomb = new Uint8Array(deflateRawSync(new Uint8Array(1 << 20)));
  refuses(bomb, { bits: 9, coding: 'deflate' }, /inflates to more than 338 bytes/);
  refuses(Uint8Array.from([0]), { bits: 9, coding: 'identity' }, /recorded as the identity but holds 1 bytes/);
  // Filter blocks: 20 filters of 15 kernels; a blob of the wrong length, a grid that has no such blocks, and a
  // filter index past the last filter.
  const blocked = encodePermutation(perm, 15);
  assert.equal(blocked.stored.coding, 'blocks');
  refuses(blocked.data.subarray(1), blocked.stored, /not the \d+ bytes of 20 filters of 15 kernels/, 15);
  refuses(blocked.data, blocked.stored, /recorded in filter blocks, which a grid of 300 kernels/);
  const badFilter = Uint8Array.from(blocked.data);
  badFilter[0] = 0xff; // the first filter index (5 bits) becomes 31 > 19
  assert.throws(
    () => decodePermutation(badFilter, n, blocked.stored, 'layer1.conv', 15),
    /outside 0…299|repeats an index/,
  );
  assert.deepEqual(decodePermutation(blocked.data, n, blocked.stored, 'layer1.conv', 15), perm);
  const short = new Uint8Array(deflateRawSync(packed.subarray(0, 100)));
  refuses(short, { bits: 9, coding: 'deflate' }, /inflates to 100 bytes, not the 338/);
});
