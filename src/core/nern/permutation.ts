/**
 * Smoothness permutations (NeRN §3.3): reorder which grid coordinate each kernel gets so that neighbouring
 * coordinates hold similar kernels, which makes the function the predictor learns smoother. Computed once from the
 * original weights by greedy cosine-similarity chains; the weights themselves are never reordered.
 *
 * A permutation `perm` of a layer with N = C_out·C_in kernels maps grid position t (filter-major) to the index of the
 * kernel placed there: kernel `perm[t]` gets the coordinate of position t.
 *
 * Zero-norm kernels have no direction: their cosine is defined as 1 with another zero kernel and 0 with anything
 * else, so a chain that reaches a zero kernel walks through all of them (identical neighbours), and never NaN.
 */
import type { PermutationKind } from '../../protocol/vocabulary';

/** Which permutation to compute (one of `PERMUTATION_KINDS`). */
export type { PermutationKind } from '../../protocol/vocabulary';

/** Unit-normalised copies of `count` vectors of length `dim` (zero vectors stay zero) and a zero flag per vector. */
function normalise(values: Float32Array, count: number, dim: number): { units: Float32Array; zero: Uint8Array } {
  const units = new Float32Array(count * dim);
  const zero = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    let s = 0;
    const o = i * dim;
    for (let d = 0; d < dim; d++) {
      const x = values[o + d] ?? 0;
      s += x * x;
    }
    if (s > 0 && Number.isFinite(s)) {
      const inv = 1 / Math.sqrt(s);
      for (let d = 0; d < dim; d++) units[o + d] = (values[o + d] ?? 0) * inv;
    } else {
      zero[i] = 1;
    }
  }
  return { units, zero };
}

/**
 * Greedy chain over `count` items with a pairwise similarity: start at item 0, then repeatedly step to the unvisited
 * item most similar to the current one (ties → lowest index). Returns the visit order.
 */
function greedyChain(count: number, similarity: (a: number, b: number) => number): Int32Array {
  const order = new Int32Array(count);
  if (count === 0) return order;
  const remaining = new Int32Array(count - 1);
  for (let i = 1; i < count; i++) remaining[i - 1] = i;
  let left = count - 1;
  let current = 0;
  order[0] = 0;
  for (let step = 1; step < count; step++) {
    let bestPos = 0;
    let bestIdx = remaining[0] ?? 0;
    let best = similarity(current, bestIdx);
    for (let r = 1; r < left; r++) {
      const j = remaining[r] ?? 0;
      const s = similarity(current, j);
      if (s > best || (s === best && j < bestIdx)) {
        best = s;
        bestIdx = j;
        bestPos = r;
      }
    }
    order[step] = bestIdx;
    remaining[bestPos] = remaining[left - 1] ?? 0;
    left--;
    current = bestIdx;
  }
  return order;
}

/** Cosine of kernels a and b (rows of `units`), with the zero-kernel convention above. */
function cosineOf(units: Float32Array, zero: Uint8Array, dim: number): (a: number, b: number) => number {
  if (dim === 9) {
    return (a, b) => {
      const za = zero[a] ?? 0;
      const zb = zero[b] ?? 0;
      if (za || zb) return za && zb ? 1 : 0;
      const x = a * 9;
      const y = b * 9;
      return (
        (units[x] ?? 0) * (units[y] ?? 0) +
        (units[x + 1] ?? 0) * (units[y + 1] ?? 0) +
        (units[x + 2] ?? 0) * (units[y + 2] ?? 0) +
        (units[x + 3] ?? 0) * (units[y + 3] ?? 0) +
        (units[x + 4] ?? 0) * (units[y + 4] ?? 0) +
        (units[x + 5] ?? 0) * (units[y + 5] ?? 0) +
        (units[x + 6] ?? 0) * (units[y + 6] ?? 0) +
        (units[x + 7] ?? 0) * (units[y + 7] ?? 0) +
        (units[x + 8] ?? 0) * (units[y + 8] ?? 0)
      );
    };
  }
  return (a, b) => {
    const za = zero[a] ?? 0;
    const zb = zero[b] ?? 0;
    if (za || zb) return za && zb ? 1 : 0;
    let s = 0;
    for (let d = 0; d < dim; d++) s += (units[a * dim + d] ?? 0) * (units[b * dim + d] ?? 0);
    return s;
  };
}

function checkLayer(values: Float32Array, cout: number, cin: number, kernelSize: number): void {
  if (
    !Number.isInteger(cout) ||
    !Number.isInteger(cin) ||
    !Number.isInteger(kernelSize) ||
    cout < 1 ||
    cin < 1 ||
    kernelSize < 1
  ) {
    throw new RangeError(
      `permutation needs positive integer sizes, got cout ${cout}, cin ${cin}, kernel ${kernelSize}`,
    );
  }
  if (values.length !== cout * cin * kernelSize) {
    throw new RangeError(`layer has ${values.length} values, expected ${cout}×${cin}×${kernelSize}`);
  }
}

/**
 * Scalar kernels (1×1 convolutions, kernelSize 1) have a cosine of +1, −1 or 0 (the zero convention above), so the
 * greedy chain over `count` of them at `values[offset …]` is known in closed form. From item 0 it visits, each group
 * in ascending index: item 0's sign group, then the zeros, then the other sign. If item 0 is zero: the zeros, then
 * the sign group of the lowest nonzero item, then the other sign. O(count) instead of O(count²), the same order.
 * Indices are relative to `offset`. A value is zero here exactly when `normalise` flags it (0, NaN or ±∞).
 */
function scalarChain(values: Float32Array, offset: number, count: number): Int32Array {
  const classOf = (i: number): number => {
    const x = values[offset + i] ?? 0;
    return x === 0 || !Number.isFinite(x) ? 0 : x > 0 ? 1 : -1;
  };
  const first = count > 0 ? classOf(0) : 0;
  let lead = first;
  for (let i = 0; lead === 0 && i < count; i++) lead = classOf(i);
  const groups = first === 0 ? [0, lead, -lead] : [first, 0, -first];
  const order = new Int32Array(count);
  let at = 0;
  for (const [g, cls] of groups.entries()) {
    if (g > 0 && cls === groups[0]) continue; // all items were zero: one group
    for (let i = 0; i < count; i++) if (classOf(i) === cls) order[at++] = i;
  }
  return order;
}

/**
 * The infilter chain over filters of scalar kernels in closed form per pair: the summed per-position cosine of two
 * permuted filters is C_in − (positions where exactly one is zero) − 2·(positions of opposite nonzero signs),
 * counted 32 positions at a time on bit masks. An integer, so the chain (greedyChain, same ties) is exactly the one
 * of the general similarity, at C_in/32 word operations per pair instead of C_in cosines.
 */
function scalarFilterChain(values: Float32Array, within: Int32Array, cout: number, cin: number): Int32Array {
  const words = Math.ceil(cin / 32);
  const zeroMask = new Int32Array(cout * words);
  const negativeMask = new Int32Array(cout * words);
  for (let f = 0; f < cout; f++)
    for (let t = 0; t < cin; t++) {
      const x = values[within[f * cin + t] ?? 0] ?? 0;
      const bit = 1 << (t & 31);
      const w = f * words + (t >>> 5);
      if (x === 0 || !Number.isFinite(x)) zeroMask[w] = (zeroMask[w] ?? 0) | bit;
      else if (x < 0) negativeMask[w] = (negativeMask[w] ?? 0) | bit;
    }
  const popcount = (v: number): number => {
    v -= (v >>> 1) & 0x55555555;
    v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
    return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
  };
  return greedyChain(cout, (a, b) => {
    let oneZero = 0;
    let opposite = 0;
    const oa = a * words;
    const ob = b * words;
    for (let w = 0; w < words; w++) {
      const za = zeroMask[oa + w] ?? 0;
      const zb = zeroMask[ob + w] ?? 0;
      oneZero += popcount(za ^ zb);
      opposite += popcount(((negativeMask[oa + w] ?? 0) ^ (negativeMask[ob + w] ?? 0)) & ~(za | zb));
    }
    return cin - oneZero - 2 * opposite;
  });
}

/**
 * crossfilter: one greedy cosine chain over all C_out·C_in kernels of a layer, starting at kernel 0.
 * `values` is the layer in [C_out, C_in, kernelSize] row-major order (kernelSize = 9 for 3×3). O(N²·kernelSize).
 */
export function crossfilterPermutation(values: Float32Array, cout: number, cin: number, kernelSize = 9): Int32Array {
  checkLayer(values, cout, cin, kernelSize);
  const n = cout * cin;
  if (kernelSize === 1) return scalarChain(values, 0, n);
  const { units, zero } = normalise(values, n, kernelSize);
  return greedyChain(n, cosineOf(units, zero, kernelSize));
}

/**
 * infilter: inside each filter a chain over its C_in kernels (from channel 0); then a chain over filters (from filter
 * 0) whose similarity is the summed per-position cosine of the already-permuted filters. Grid position g·C_in + s gets
 * kernel (F[g], π_F[g][s]).
 */
export function infilterPermutation(values: Float32Array, cout: number, cin: number, kernelSize = 9): Int32Array {
  checkLayer(values, cout, cin, kernelSize);
  const n = cout * cin;
  const scalar = kernelSize === 1;
  const { units, zero } = scalar
    ? { units: new Float32Array(0), zero: new Uint8Array(0) }
    : normalise(values, n, kernelSize);
  const cos = cosineOf(units, zero, kernelSize);
  // Per-filter channel chains, stored as global kernel indices in chain order.
  const within = new Int32Array(n);
  for (let f = 0; f < cout; f++) {
    const base = f * cin;
    const chain = scalar ? scalarChain(values, base, cin) : greedyChain(cin, (a, b) => cos(base + a, base + b));
    for (let s = 0; s < cin; s++) within[base + s] = base + (chain[s] ?? 0);
  }
  if (scalar) return placeFilters(within, scalarFilterChain(values, within, cout, cin), cout, cin);
  const filterSimilarity = (a: number, b: number): number => {
    let s = 0;
    const oa = a * cin;
    const ob = b * cin;
    for (let t = 0; t < cin; t++) s += cos(within[oa + t] ?? 0, within[ob + t] ?? 0);
    return s;
  };
  return placeFilters(within, greedyChain(cout, filterSimilarity), cout, cin);
}

/** The infilter permutation from the per-filter chains `within` and the filter order `filters`. */
function placeFilters(within: Int32Array, filters: Int32Array, cout: number, cin: number): Int32Array {
  const perm = new Int32Array(cout * cin);
  for (let g = 0; g < cout; g++) {
    const f = filters[g] ?? 0;
    perm.set(within.subarray(f * cin, (f + 1) * cin), g * cin);
  }
  return perm;
}

/** Identity permutation of n kernels. */
export function identityPermutation(n: number): Int32Array {
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  return perm;
}

/** Computes the permutation of `kind` for one layer ([C_out, C_in, kernelSize] row-major values). */
export function computePermutation(
  kind: PermutationKind,
  values: Float32Array,
  cout: number,
  cin: number,
  kernelSize = 9,
): Int32Array {
  switch (kind) {
    case 'crossfilter':
      return crossfilterPermutation(values, cout, cin, kernelSize);
    case 'infilter':
      return infilterPermutation(values, cout, cin, kernelSize);
    case 'none':
      checkLayer(values, cout, cin, kernelSize);
      return identityPermutation(cout * cin);
  }
}

/** True if `perm` is a permutation of 0…n−1. */
export function isPermutation(perm: ArrayLike<number>, n: number): boolean {
  if (perm.length !== n) return false;
  const seen = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const p = perm[i] ?? -1;
    if (!Number.isInteger(p) || p < 0 || p >= n || seen[p]) return false;
    seen[p] = 1;
  }
  return true;
}

/** Inverse permutation: inv[perm[t]] = t. */
export function invertPermutation(perm: Int32Array): Int32Array {
  const inv = new Int32Array(perm.length);
  for (let t = 0; t < perm.length; t++) inv[perm[t] ?? 0] = t;
  return inv;
}
