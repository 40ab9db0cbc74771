/**
 * Storage of a layer's kernel permutation in an artifact (format version 4): the N indices bit-packed at
 * ⌈log₂ N⌉ bits each (least significant bit first, little-endian across bytes), then, where it is smaller, that
 * packed blob raw-deflated with node:zlib. Decoding inflates into a buffer bounded by the exact packed length,
 * unpacks, and refuses anything that is not a permutation of N with one sentence (CheckpointFormatError).
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { CheckpointFormatError } from '../io/errors';
import { isPermutation } from './permutation';

/**
 * How a stored permutation blob is coded: 'packed' is the bit-packed indices as they are, 'deflate' the same bytes
 * deflated (raw DEFLATE, RFC 1951), 'identity' an empty blob for the identity permutation (`--permutation none`,
 * whose packed increments deflate poorly because they do not fall on byte boundaries), 'blocks' a permutation that
 * moves whole filters and kernels only within them (infilter: grid position g·C_in + s holds kernel F[g]·C_in +
 * σ_g[s]) as the filter order F at ⌈log₂ C_out⌉ bits then each σ_g at ⌈log₂ C_in⌉ bits, in one bit stream.
 */
export type PermutationCoding = 'packed' | 'deflate' | 'identity' | 'blocks';

/** The codings a version-4 artifact may name. */
export const PERMUTATION_CODINGS: readonly PermutationCoding[] = ['packed', 'deflate', 'identity', 'blocks'];

/** What the artifact's metadata records about one layer's stored permutation. */
export interface StoredPermutation {
  /** Bits per index: ⌈log₂ N⌉ for N kernels (0 when N = 1). */
  bits: number;
  coding: PermutationCoding;
}

/** Bits per index of a permutation of `n` ≥ 1 elements: ⌈log₂ n⌉ (0 for n = 1, 16 for n = 65,536). */
export function permutationBits(n: number): number {
  return n <= 1 ? 0 : Math.ceil(Math.log2(n) - 1e-12);
}

/** Bytes of `n` indices packed at `bits` each: ⌈n·bits / 8⌉. */
export function packedPermutationBytes(n: number, bits = permutationBits(n)): number {
  return Math.ceil((n * bits) / 8);
}

/** Packs `perm`'s indices (each in 0…2^bits − 1) at `bits` bits each, LSB first. */
export function packIndices(perm: ArrayLike<number>, bits: number): Uint8Array {
  const out = new Uint8Array(packedPermutationBytes(perm.length, bits));
  let bit = 0;
  for (let i = 0; i < perm.length; i++) {
    const v = perm[i] ?? 0;
    for (let b = 0; b < bits; b++, bit++) if ((v >>> b) & 1) out[bit >>> 3] = (out[bit >>> 3] ?? 0) | (1 << (bit & 7));
  }
  return out;
}

/** Unpacks `n` indices of `bits` bits each from `bytes` (the inverse of packIndices); `bytes` must be long enough. */
export function unpackIndices(bytes: Uint8Array, n: number, bits: number): Int32Array {
  const out = new Int32Array(n);
  let bit = 0;
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (let b = 0; b < bits; b++, bit++) if (((bytes[bit >>> 3] ?? 0) >>> (bit & 7)) & 1) v |= 1 << b;
    out[i] = v;
  }
  return out;
}

/** Bytes of the 'blocks' coding of a C_out × C_in grid: ⌈(C_out·⌈log₂ C_out⌉ + C_out·C_in·⌈log₂ C_in⌉) / 8⌉. */
export function blockedPermutationBytes(cout: number, cin: number): number {
  return Math.ceil((cout * permutationBits(cout) + cout * cin * permutationBits(cin)) / 8);
}

/** The filter order and within-filter orders of `perm` over `blockSize`-kernel filters, or undefined if it mixes filters. */
function blocksOf(perm: ArrayLike<number>, blockSize: number): Int32Array | undefined {
  const n = perm.length;
  if (!(blockSize > 1) || n % blockSize !== 0 || n === blockSize) return undefined;
  const cout = n / blockSize;
  const out = new Int32Array(cout + n);
  for (let g = 0; g < cout; g++) {
    const f = Math.floor((perm[g * blockSize] ?? 0) / blockSize);
    out[g] = f;
    for (let s = 0; s < blockSize; s++) {
      const v = perm[g * blockSize + s] ?? 0;
      if (Math.floor(v / blockSize) !== f) return undefined;
      out[cout + g * blockSize + s] = v - f * blockSize;
    }
  }
  return out;
}

/** Packs `cout` values at `a` bits then the rest at `b` bits, in one LSB-first bit stream. */
function packTwoWidths(values: Int32Array, cout: number, a: number, b: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((cout * a + (values.length - cout) * b) / 8));
  let bit = 0;
  values.forEach((v, i) => {
    const w = i < cout ? a : b;
    for (let k = 0; k < w; k++, bit++) if ((v >>> k) & 1) out[bit >>> 3] = (out[bit >>> 3] ?? 0) | (1 << (bit & 7));
  });
  return out;
}

/**
 * Encodes a permutation for storage, keeping the smallest of: nothing for the identity; 'blocks' when `blockSize`
 * (the layer's C_in) is given and the permutation only reorders filters and kernels within them; the indices
 * bit-packed at ⌈log₂ N⌉ bits; and that packed blob deflated (level 9). Same input → same bytes.
 */
export function encodePermutation(
  perm: ArrayLike<number>,
  blockSize?: number,
): { data: Uint8Array; stored: StoredPermutation } {
  const bits = permutationBits(perm.length);
  let identity = true;
  for (let i = 0; i < perm.length && identity; i++) identity = perm[i] === i;
  if (identity) return { data: new Uint8Array(0), stored: { bits, coding: 'identity' } };
  const packed = packIndices(perm, bits);
  let best: { data: Uint8Array; stored: StoredPermutation } = { data: packed, stored: { bits, coding: 'packed' } };
  const deflated = packed.length > 0 ? new Uint8Array(deflateRawSync(packed, { level: 9 })) : packed;
  if (deflated.length < best.data.length) best = { data: deflated, stored: { bits, coding: 'deflate' } };
  const blocks = blockSize === undefined ? undefined : blocksOf(perm, blockSize);
  if (blocks !== undefined && blockSize !== undefined) {
    const cout = perm.length / blockSize;
    const data = packTwoWidths(blocks, cout, permutationBits(cout), permutationBits(blockSize));
    if (data.length < best.data.length) best = { data, stored: { bits, coding: 'blocks' } };
  }
  return best;
}

/**
 * Decodes a stored permutation of `n` kernels for layer `layer` (named in errors). Refuses, with one sentence: a bit
 * width other than ⌈log₂ n⌉, a packed blob of the wrong length, a deflated blob that does not inflate to exactly
 * the packed length (inflation stops at that length, so a hostile blob cannot allocate more), an index ≥ n, and
 * indices that repeat.
 */
export function decodePermutation(
  data: Uint8Array,
  n: number,
  stored: StoredPermutation,
  layer: string,
  blockSize = 1,
): Int32Array {
  const fail = (what: string): CheckpointFormatError =>
    new CheckpointFormatError(`The stored permutation of layer ${layer} ${what}; compress the model again.`);
  const bits = permutationBits(n);
  if (stored.bits !== bits) throw fail(`is recorded at ${stored.bits} bits per index, but ${n} kernels need ${bits}`);
  const want = packedPermutationBytes(n, bits);
  let packed = data;
  if (stored.coding === 'blocks') {
    const cout = n / blockSize;
    if (!(blockSize > 1) || !Number.isInteger(cout) || cout < 2)
      throw fail(`is recorded in filter blocks, which a grid of ${n} kernels in filters of ${blockSize} cannot have`);
    const [a, b] = [permutationBits(cout), permutationBits(blockSize)];
    const blockBytes = blockedPermutationBytes(cout, blockSize);
    if (data.length !== blockBytes)
      throw fail(`is ${data.length} bytes, not the ${blockBytes} bytes of ${cout} filters of ${blockSize} kernels`);
    const perm = new Int32Array(n);
    let bit = 0;
    const read = (w: number): number => {
      let v = 0;
      for (let k = 0; k < w; k++, bit++) if (((data[bit >>> 3] ?? 0) >>> (bit & 7)) & 1) v |= 1 << k;
      return v;
    };
    const filters = Array.from({ length: cout }, () => read(a));
    for (let g = 0; g < cout; g++)
      for (let s = 0; s < blockSize; s++) perm[g * blockSize + s] = (filters[g] ?? 0) * blockSize + read(b);
    return checked(perm);
  }
  if (stored.coding === 'identity') {
    if (data.length !== 0) throw fail(`is recorded as the identity but holds ${data.length} bytes`);
    const perm = new Int32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    return perm;
  }
  if (stored.coding === 'deflate') {
    try {
      // One byte of headroom tells "inflates to more than the packed length" apart from "exactly".
      packed = new Uint8Array(inflateRawSync(data, { maxOutputLength: want + 1 }));
    } catch (e) {
      const tooLong = e instanceof RangeError || (e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
      throw fail(tooLong ? `inflates to more than ${want} bytes` : 'is not valid deflate data');
    }
    if (packed.length !== want)
      throw fail(`inflates to ${packed.length} bytes, not the ${want} of ${n} packed indices`);
  } else if (data.length !== want)
    throw fail(`is ${data.length} bytes, not the ${want} bytes of ${n} indices at ${bits} bits`);
  return checked(unpackIndices(packed, n, bits));

  function checked(perm: Int32Array): Int32Array {
    const outOfRange = perm.findIndex((v) => v >= n);
    if (outOfRange >= 0) throw fail(`holds index ${perm[outOfRange]} at position ${outOfRange}, outside 0…${n - 1}`);
    if (!isPermutation(perm, n)) throw fail(`repeats an index, so it is not a permutation of its ${n} kernels`);
    return perm;
  }
}
