/**
 * Dense linear algebra for the spectral diagnostics, in float64: the Gram matrix WᵀW of a row-major matrix, the
 * eigenvalues of a symmetric matrix (Householder tridiagonalisation, then the implicit QL algorithm with Wilkinson
 * shifts, eigenvalues only: EISPACK's tred1 and tql1, Golub & Van Loan §8.3), and a randomized range finder for the
 * top singular values of matrices too large to decompose whole (Halko, Martinsson & Tropp 2011, algorithm 4.4).
 *
 * Singular values only: the metrics never need singular vectors, and WᵀW by a product then a symmetric eigensolver
 * costs about a third of a full SVD. Squaring loses relative accuracy only for singular values below ~1e-7 of the
 * largest (their squares drown in the rounding of the largest), far below what a spectrum's shape depends on.
 * Long loops call `tick` between outer iterations, so a caller can report progress and honour cancellation.
 */

/** Called between outer iterations with the fraction of the work done (0..1); may throw to stop the computation. */
export type Tick = (fraction: number) => void;

/**
 * G = AᵀA for the row-major `rows × cols` matrix `a` (any numeric array), as a full symmetric `cols × cols`
 * Float64Array, accumulated in float64. Work: rows · cols² / 2 multiply-adds.
 */
export function gram(a: ArrayLike<number>, rows: number, cols: number, tick?: Tick): Float64Array {
  // Column-major copy, so that each entry is one contiguous dot product of two columns.
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const ro = i * cols;
    for (let j = 0; j < cols; j++) t[j * rows + i] = a[ro + j] ?? 0;
  }
  const g = new Float64Array(cols * cols);
  // Four columns at a time share each load of the other column: a quarter of the memory traffic.
  for (let p = 0; p < cols; p += 4) {
    const p1 = Math.min(p + 1, cols - 1);
    const p2 = Math.min(p + 2, cols - 1);
    const p3 = Math.min(p + 3, cols - 1);
    const o0 = p * rows;
    const o1 = p1 * rows;
    const o2 = p2 * rows;
    const o3 = p3 * rows;
    for (let q = 0; q <= p3; q++) {
      const oq = q * rows;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let k = 0; k < rows; k++) {
        const x = t[oq + k] as number;
        s0 += (t[o0 + k] as number) * x;
        s1 += (t[o1 + k] as number) * x;
        s2 += (t[o2 + k] as number) * x;
        s3 += (t[o3 + k] as number) * x;
      }
      if (q <= p) g[p * cols + q] = g[q * cols + p] = s0;
      if (q <= p1) g[p1 * cols + q] = g[q * cols + p1] = s1;
      if (q <= p2) g[p2 * cols + q] = g[q * cols + p2] = s2;
      g[p3 * cols + q] = g[q * cols + p3] = s3;
    }
    tick?.(Math.min(1, ((p + 4) * (p + 4)) / (cols * cols)));
  }
  return g;
}

/**
 * Reduces the symmetric `n × n` matrix `a` (row-major, full storage; its lower triangle is used and overwritten) to
 * tridiagonal form by Householder reflections. Returns the diagonal `d` and the subdiagonal `e` (`e[i]` couples i
 * and i+1; `e[n-1]` is 0). Work: about 4n³/3 flops, in one pass over the trailing lower triangle per reflection: the
 * rank-2 update of one reflection is fused with the matrix-vector product of the next (its column is updated first).
 */
export function tridiagonalize(a: Float64Array, n: number, tick?: Tick): { d: Float64Array; e: Float64Array } {
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  let v = new Float64Array(n);
  let p = new Float64Array(n); // β A v, then w
  let v2 = new Float64Array(n);
  let p2 = new Float64Array(n);
  /** Householder vector of column k (below the diagonal) into `out`; sets e[k]; returns β (0: no reflection). */
  const reflector = (k: number, out: Float64Array): number => {
    const m0 = k + 1;
    let scale = 0;
    for (let i = m0; i < n; i++) scale += Math.abs(a[i * n + k] as number);
    if (scale === 0) {
      e[k] = 0;
      return 0;
    }
    let norm2 = 0;
    for (let i = m0; i < n; i++) {
      const x = (a[i * n + k] as number) / scale;
      out[i] = x;
      norm2 += x * x;
    }
    const x0 = out[m0] as number;
    const alpha = x0 >= 0 ? -Math.sqrt(norm2) : Math.sqrt(norm2);
    e[k] = alpha * scale;
    out[m0] = x0 - alpha;
    const vtv = norm2 - x0 * x0 + (x0 - alpha) * (x0 - alpha);
    return vtv === 0 ? 0 : 2 / vtv;
  };
  if (n < 3) {
    if (n >= 2) e[0] = a[n] as number;
    for (let i = 0; i < n; i++) d[i] = a[i * n + i] as number;
    return { d, e };
  }
  // First reflection's product p = A v over rows/columns 1..n-1, from the lower triangle.
  let beta = reflector(0, v);
  if (beta !== 0) {
    for (let i = 1; i < n; i++) {
      const ro = i * n;
      const vi = v[i] as number;
      let s = (a[ro + i] as number) * vi;
      for (let j = 1; j < i; j++) {
        const aij = a[ro + j] as number;
        s += aij * (v[j] as number);
        p[j] = (p[j] as number) + aij * vi;
      }
      p[i] = (p[i] as number) + s;
    }
  }
  for (let k = 0; k < n - 2; k++) {
    const m0 = k + 1;
    d[k] = a[k * n + k] as number;
    const m1 = k + 2; // the next reflection acts on rows and columns m1..n-1
    let beta2 = 0;
    if (beta !== 0) {
      // w = p − (β vᵀp / 2) v with p = β A v.
      let vtp = 0;
      for (let i = m0; i < n; i++) {
        p[i] = beta * (p[i] as number);
        vtp += (v[i] as number) * (p[i] as number);
      }
      const kk = (beta * vtp) / 2;
      for (let i = m0; i < n; i++) p[i] = (p[i] as number) - kk * (v[i] as number);
      // Update column m0 (the next reflection's input) and the diagonal entry at m0 first.
      const vm = v[m0] as number;
      const wm = p[m0] as number;
      for (let i = m0; i < n; i++)
        a[i * n + m0] = (a[i * n + m0] as number) - (v[i] as number) * wm - (p[i] as number) * vm;
    }
    if (k + 1 < n - 2) {
      beta2 = reflector(m0, v2);
      for (let i = m1; i < n; i++) p2[i] = 0;
    }
    if (beta !== 0 || beta2 !== 0) {
      // One pass over rows m1..n-1: the rank-2 update A ← A − v wᵀ − w vᵀ and the next product p2 = A v2.
      for (let i = m1; i < n; i++) {
        const ro = i * n;
        const vi = v[i] as number;
        const wi = p[i] as number;
        const ui = v2[i] as number;
        let s = 0;
        if (beta !== 0) {
          for (let j = m1; j < i; j++) {
            const aij = (a[ro + j] as number) - vi * (p[j] as number) - wi * (v[j] as number);
            a[ro + j] = aij;
            s += aij * (v2[j] as number);
            p2[j] = (p2[j] as number) + aij * ui;
          }
          a[ro + i] = (a[ro + i] as number) - 2 * vi * wi;
        } else {
          for (let j = m1; j < i; j++) {
            const aij = a[ro + j] as number;
            s += aij * (v2[j] as number);
            p2[j] = (p2[j] as number) + aij * ui;
          }
        }
        p2[i] = (p2[i] as number) + s + (a[ro + i] as number) * ui;
      }
    }
    [v, v2] = [v2, v];
    [p, p2] = [p2, p];
    beta = beta2;
    tick?.(1 - ((n - k) / n) ** 3);
  }
  d[n - 2] = a[(n - 2) * n + (n - 2)] as number;
  e[n - 2] = a[(n - 1) * n + (n - 2)] as number;
  d[n - 1] = a[(n - 1) * n + (n - 1)] as number;
  return { d, e };
}

/**
 * Eigenvalues of the symmetric tridiagonal matrix with diagonal `d` and subdiagonal `e` (both overwritten; `e[i]`
 * couples i and i+1), by the implicit QL algorithm with Wilkinson shifts. Returns them ascending. Throws after 60
 * iterations on one eigenvalue (never seen on finite input; NaN input stops there too).
 */
export function tridiagonalEigenvalues(d: Float64Array, e: Float64Array): Float64Array {
  const n = d.length;
  for (let l = 0; l < n; l++) {
    let iter = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m] as number) + Math.abs(d[m + 1] as number);
        if (Math.abs(e[m] as number) <= Number.EPSILON * dd) break;
      }
      if (m === l) break;
      if (++iter > 60) throw new Error('tridiagonal QL did not converge in 60 iterations');
      let g = ((d[l + 1] as number) - (d[l] as number)) / (2 * (e[l] as number));
      let r = Math.hypot(g, 1);
      g = (d[m] as number) - (d[l] as number) + (e[l] as number) / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let i = m - 1;
      let underflow = false;
      for (; i >= l; i--) {
        const f = s * (e[i] as number);
        const b = c * (e[i] as number);
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1] = (d[i + 1] as number) - p;
          e[m] = 0;
          underflow = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = (d[i + 1] as number) - p;
        r = ((d[i] as number) - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
      }
      if (underflow) continue;
      d[l] = (d[l] as number) - p;
      e[l] = g;
      e[m] = 0;
    }
  }
  return d.sort();
}

/** Eigenvalues, ascending, of the symmetric `n × n` row-major matrix `a` (overwritten). */
export function symmetricEigenvalues(a: Float64Array, n: number, tick?: Tick): Float64Array {
  const { d, e } = tridiagonalize(a, n, tick);
  return tridiagonalEigenvalues(d, e);
}

/**
 * Singular values, ascending, of the row-major `rows × cols` matrix `a`: square roots of the eigenvalues of the
 * smaller Gram matrix (negative rounding residue clamped to 0). Exactly min(rows, cols) values.
 */
export function singularValues(a: ArrayLike<number>, rows: number, cols: number, tick?: Tick): Float64Array {
  const [r, c, data] = cols <= rows ? [rows, cols, a] : [cols, rows, transpose(a, rows, cols)];
  const g = gram(
    data,
    r,
    c,
    tick
      ? (f) => {
          tick(0.4 * f);
        }
      : undefined,
  );
  const ev = symmetricEigenvalues(
    g,
    c,
    tick
      ? (f) => {
          tick(0.4 + 0.6 * f);
        }
      : undefined,
  );
  for (let i = 0; i < ev.length; i++) ev[i] = Math.sqrt(Math.max(0, ev[i] as number));
  return ev;
}

/** The transpose of the row-major `rows × cols` matrix `a`, as a row-major `cols × rows` Float64Array. */
export function transpose(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j] ?? 0;
  return out;
}

/** A small deterministic generator of standard normal variates (xorshift32 + Box–Muller), for reproducible sketches. */
function normals(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  const uniform = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** C = A B for row-major A (`n × k`) and B (`k × m`), in float64. */
function matmul(a: ArrayLike<number>, b: Float64Array, n: number, k: number, m: number): Float64Array {
  const c = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    const co = i * m;
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p] ?? 0;
      if (x === 0) continue;
      const bo = p * m;
      for (let j = 0; j < m; j++) c[co + j] = (c[co + j] as number) + x * (b[bo + j] as number);
    }
  }
  return c;
}

/** Orthonormalises the columns of the row-major `n × m` matrix `y` in place (modified Gram–Schmidt, twice). */
function orthonormalizeColumns(y: Float64Array, n: number, m: number): void {
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < m; j++) {
      for (let q = 0; q < j; q++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += (y[i * m + j] as number) * (y[i * m + q] as number);
        for (let i = 0; i < n; i++) y[i * m + j] = (y[i * m + j] as number) - dot * (y[i * m + q] as number);
      }
      let norm = 0;
      for (let i = 0; i < n; i++) norm += (y[i * m + j] as number) ** 2;
      norm = Math.sqrt(norm);
      for (let i = 0; i < n; i++) y[i * m + j] = norm > 0 ? (y[i * m + j] as number) / norm : 0;
    }
  }
}

/** Oversampling of the randomized range finder: extra sketch columns beyond the values wanted. */
export const RANDOMIZED_OVERSAMPLING = 10;
/** Power (subspace) iterations of the randomized range finder: enough for slowly decaying weight spectra. */
export const RANDOMIZED_POWER_ITERATIONS = 4;

/**
 * The `k` largest singular values, ascending, of the row-major `rows × cols` matrix `a` (k < min(rows, cols)), by a
 * randomized range finder with `RANDOMIZED_OVERSAMPLING` extra columns and `RANDOMIZED_POWER_ITERATIONS` subspace
 * iterations, seeded (same input, same output). Each value is a lower bound on the exact one; the largest are the
 * most accurate, the smallest of the `k` the least (on a flat 64-value spectrum, top 16: the largest within 0.03 %,
 * the smallest within 3 %; decaying spectra converge faster). `pause` is awaited between iterations (to let the event
 * loop run).
 */
export async function topSingularValues(
  a: ArrayLike<number>,
  rows: number,
  cols: number,
  k: number,
  seed = 0,
  tick?: Tick,
  pause?: () => Promise<void>,
): Promise<Float64Array> {
  const [n, m, w] = cols <= rows ? [rows, cols, a] : [cols, rows, transpose(a, rows, cols)];
  const l = Math.min(m, k + RANDOMIZED_OVERSAMPLING);
  const wt = transpose(w, n, m);
  const rand = normals(seed);
  const omega = new Float64Array(m * l);
  for (let i = 0; i < omega.length; i++) omega[i] = rand();
  let y = matmul(w, omega, n, m, l); // n × l
  orthonormalizeColumns(y, n, l);
  const steps = RANDOMIZED_POWER_ITERATIONS;
  for (let it = 0; it < steps; it++) {
    await pause?.();
    const z = matmul(wt, y, m, n, l); // m × l
    orthonormalizeColumns(z, m, l);
    y = matmul(w, z, n, m, l);
    orthonormalizeColumns(y, n, l);
    tick?.((0.9 * (it + 1)) / steps);
  }
  // B = Qᵀ W is l × m; its singular values are those of Bᵀ (m × l), from the l × l Gram matrix.
  const bt = matmul(wt, y, m, n, l); // m × l = Wᵀ Q
  const sv = singularValues(bt, m, l);
  tick?.(1);
  return sv.slice(sv.length - k);
}
