/**
 * Singular values on the native engine (onnxruntime-node's MLAS/Eigen GEMMs, multithreaded), for the spectral
 * diagnostics of matrices whose exact decomposition in JavaScript takes seconds. The same route as linalg.ts (the
 * float64 Gram matrix WᵀW, then its symmetric eigenvalues), with its O(n³) parts moved into GEMMs:
 *
 * 1. G = WᵀW: one ONNX graph (Cast to float64, Transpose, MatMul).
 * 2. G → band form of half-bandwidth `BAND`: per panel of `BAND` columns, a Householder QR of the part below the
 *    band (in JavaScript: O(n·b²)), then the two-sided update A ← QᵀAQ of the trailing block with Q = I − V T Vᵀ in
 *    compact-WY form (LAPACK dlarft), as one ONNX graph of GEMMs: X = A V T, Y = X − ½ V (Tᵀ Vᵀ X),
 *    A ← A − [V Y]·[Y V]ᵀ (the first stage of a two-stage tridiagonalisation, as in LAPACK's dsytrd_2stage).
 * 3. Band → tridiagonal by Givens rotations with bulge chasing (Schwarz 1968; Golub & Van Loan §8.3), O(n²·b), in
 *    JavaScript on the band alone.
 * 4. The implicit QL of linalg.ts on the tridiagonal matrix.
 *
 * Every transformation is orthogonal and in float64, so the eigenvalues agree with linalg.ts's to rounding. Used
 * when onnxruntime-node loads; otherwise the spectra stay on linalg.ts.
 */
import { modelProto, nodeEmitter, ONNX_DOUBLE, ONNX_FLOAT, valueInfoProto } from '../backend/onnxGraph';
import type { OrtModuleLike, OrtSessionLike } from '../backend/onnxRuntime';
import { ProtoWriter } from '../containers/protobufWriter';
import { tridiagonalEigenvalues, type Tick } from './linalg';

/** Half-bandwidth of the band form (columns per panel). 16 balances GEMM efficiency against the Givens stage. */
export const BAND = 16;

/** Below this smaller side the JavaScript route of linalg.ts is as fast (the graphs' fixed costs dominate). */
export const NATIVE_MIN_SIDE = 192;

function doubleScalar(name: string, value: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setFloat64(0, value, true);
  return new ProtoWriter().varint(2, ONNX_DOUBLE).string(8, name).bytes(9, bytes).finish();
}

/**
 * The Gram matrix of the smaller side of W [r, c] float32, in float64: Wᵀ W [c, c] (`side` 'columns', for r ≥ c),
 * or W Wᵀ [r, r] (`side` 'rows', for a wide W: the same nonzero eigenvalues).
 */
function gramModel(side: 'columns' | 'rows'): Uint8Array {
  const nodes: Uint8Array[] = [];
  const node = nodeEmitter(nodes);
  node('Cast', ['w'], ['w64'], [{ name: 'to', i: ONNX_DOUBLE }]);
  node('Transpose', ['w64'], ['wt']);
  node('MatMul', side === 'columns' ? ['wt', 'w64'] : ['w64', 'wt'], ['g']);
  const n = side === 'columns' ? 'c' : 'r';
  return modelProto(
    `weight_lens_gram_${side}`,
    nodes,
    [],
    [valueInfoProto('w', ['r', 'c'], ONNX_FLOAT)],
    [valueInfoProto('g', [n, n], ONNX_DOUBLE)],
  );
}

/** Out [m, m] = Qᵀ A Q for symmetric A [m, m], Q = I − V T Vᵀ with V [m, k], T [k, k] (all float64). */
function bandUpdateModel(): Uint8Array {
  const nodes: Uint8Array[] = [];
  const node = nodeEmitter(nodes);
  node('MatMul', ['a', 'v'], ['av']);
  node('MatMul', ['av', 't'], ['x']);
  node('Transpose', ['v'], ['vt']);
  node('MatMul', ['vt', 'x'], ['vtx']);
  node('Transpose', ['t'], ['tt']);
  node('MatMul', ['tt', 'vtx'], ['mm']);
  node('MatMul', ['v', 'mm'], ['vm']);
  node('Mul', ['vm', 'half'], ['hvm']);
  node('Sub', ['x', 'hvm'], ['y']);
  // V Yᵀ + Y Vᵀ as one GEMM, [V Y] · [Y V]ᵀ, subtracted from A in the same Gemm (C = A, α = −1, β = 1).
  node('Concat', ['v', 'y'], ['vy'], [{ name: 'axis', i: 1 }]);
  node('Concat', ['y', 'v'], ['yv'], [{ name: 'axis', i: 1 }]);
  node(
    'Gemm',
    ['vy', 'yv', 'a'],
    ['out'],
    [
      { name: 'transB', i: 1 },
      { name: 'alpha', f: -1 },
      { name: 'beta', f: 1 },
    ],
  );
  return modelProto(
    'weight_lens_band_update',
    nodes,
    [doubleScalar('half', 0.5)],
    [
      valueInfoProto('a', ['m', 'm'], ONNX_DOUBLE),
      valueInfoProto('v', ['m', 'k'], ONNX_DOUBLE),
      valueInfoProto('t', ['k', 'k'], ONNX_DOUBLE),
    ],
    [valueInfoProto('out', ['m', 'm'], ONNX_DOUBLE)],
  );
}

function float64Output(out: Record<string, { data: unknown }>, name: string): Float64Array {
  const data = out[name]?.data;
  if (!(data instanceof Float64Array)) throw new Error(`onnxruntime returned no float64 ${name}`);
  return data;
}

/**
 * Householder QR of the `m × bw` panel `p` (row-major, overwritten by R above its diagonal and 0 below). Returns the
 * reflectors V (`m × k`, row-major, unit diagonal, zero above) and the compact-WY factor T (`k × k`, upper
 * triangular) with H₀·H₁·…·H_{k−1} = I − V T Vᵀ, k = min(bw, m − 1) (LAPACK dgeqr2 + dlarft, forward, columnwise).
 */
export function panelQr(p: Float64Array, m: number, bw: number): { v: Float64Array; t: Float64Array; k: number } {
  const k = Math.max(0, Math.min(bw, m - 1));
  const v = new Float64Array(m * k);
  const t = new Float64Array(k * k);
  const tau = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    const alpha = p[c * bw + c] as number;
    let sigma = 0;
    for (let i = c + 1; i < m; i++) sigma += (p[i * bw + c] as number) ** 2;
    v[c * k + c] = 1;
    if (sigma === 0) continue; // nothing below the diagonal: H = I (τ = 0)
    const norm = Math.sqrt(alpha * alpha + sigma);
    const beta = alpha <= 0 ? norm : -norm;
    const inv = 1 / (alpha - beta);
    for (let i = c + 1; i < m; i++) v[i * k + c] = (p[i * bw + c] as number) * inv;
    const tc = (beta - alpha) / beta;
    tau[c] = tc;
    // Apply H = I − τ v vᵀ to the panel's remaining columns.
    for (let q = c + 1; q < bw; q++) {
      let w = p[c * bw + q] as number;
      for (let i = c + 1; i < m; i++) w += (v[i * k + c] as number) * (p[i * bw + q] as number);
      w *= tc;
      p[c * bw + q] = (p[c * bw + q] as number) - w;
      for (let i = c + 1; i < m; i++) p[i * bw + q] = (p[i * bw + q] as number) - w * (v[i * k + c] as number);
    }
    p[c * bw + c] = beta;
    for (let i = c + 1; i < m; i++) p[i * bw + c] = 0;
  }
  // T: T[c][c] = τ_c; T[0:c, c] = −τ_c · T[0:c, 0:c] · (V[:, 0:c]ᵀ v_c).
  const z = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    const tc = tau[c] as number;
    t[c * k + c] = tc;
    if (c === 0 || tc === 0) continue;
    for (let j = 0; j < c; j++) {
      let s = 0;
      for (let i = c; i < m; i++) s += (v[i * k + j] as number) * (v[i * k + c] as number);
      z[j] = s;
    }
    for (let r = 0; r < c; r++) {
      let s = 0;
      for (let j = r; j < c; j++) s += (t[r * k + j] as number) * (z[j] as number);
      t[r * k + c] = -tc * s;
    }
  }
  return { v, t, k };
}

/**
 * Reduces the symmetric band matrix of half-bandwidth `b` in `band` (lower band storage: `band[i * (b + 2) + d]` =
 * A[i + d][i], d = 0 … b + 1, the extra diagonal holding the bulge) to tridiagonal form by Givens rotations, each
 * bulge chased off the end (Schwarz's algorithm). Returns the diagonal and the subdiagonal (`e[n − 1]` = 0).
 */
export function bandToTridiagonal(
  band: Float64Array,
  n: number,
  b: number,
  tick?: Tick,
): { d: Float64Array; e: Float64Array } {
  const w = b + 2; // stored diagonals per column: 0 … b, and b + 1 for the bulge
  // Element A[r][c], r ≥ c, r − c ≤ b + 1.
  const at = (r: number, c: number): number => c * w + (r - c);
  /** Applies the rotation [c s; −s c] to rows/columns p, p + 1 of the symmetric matrix (within the band). */
  const rotate = (p: number, cs: number, sn: number): void => {
    const q = p + 1;
    // The 2 × 2 block.
    const app = band[at(p, p)] as number;
    const aqp = band[at(q, p)] as number;
    const aqq = band[at(q, q)] as number;
    band[at(p, p)] = cs * cs * app + 2 * cs * sn * aqp + sn * sn * aqq;
    band[at(q, q)] = sn * sn * app - 2 * cs * sn * aqp + cs * cs * aqq;
    band[at(q, p)] = cs * sn * (aqq - app) + (cs * cs - sn * sn) * aqp;
    // Columns j < p: A[p][j], A[q][j] (rows p, q left of the block), at stride w − 1 along a row.
    for (let j = Math.max(0, q - (b + 1)), ip = j * (w - 1) + p; j < p; j++, ip += w - 1) {
      const x = band[ip] as number;
      const y = band[ip + 1] as number;
      band[ip] = cs * x + sn * y;
      band[ip + 1] = -sn * x + cs * y;
    }
    // Rows r > q: A[r][p], A[r][q] (columns p, q below the block), contiguous down a column.
    const last = Math.min(n - 1, p + b + 1);
    for (let r = q + 1, ip = p * w + 2, iq = q * w + 1; r <= last; r++, ip++, iq++) {
      const x = band[ip] as number;
      const y = band[iq] as number;
      band[ip] = cs * x + sn * y;
      band[iq] = -sn * x + cs * y;
    }
  };
  /** Zeroes A[r][c] against A[r − 1][c] by a rotation in the plane (r − 1, r); returns nothing. */
  const annihilate = (r: number, c: number): void => {
    const x = band[at(r - 1, c)] as number;
    const y = band[at(r, c)] as number;
    if (y === 0) return;
    const h = Math.hypot(x, y);
    const cs = x / h;
    const sn = y / h;
    rotate(r - 1, cs, sn);
    band[at(r, c)] = 0;
    band[at(r - 1, c)] = h;
  };
  for (let c = 0; c < n - 2; c++) {
    for (let dist = Math.min(b, n - 1 - c); dist >= 2; dist--) {
      // Zero A[c + dist][c]; the rotation in (r − 1, r) fills A[r + b][r − 1]; chase it down by steps of b.
      let r = c + dist;
      let col = c;
      annihilate(r, col);
      while (r + b < n) {
        const bulgeRow = r + b;
        col = r - 1;
        if ((band[at(bulgeRow, col)] as number) === 0) break;
        annihilate(bulgeRow, col);
        r = bulgeRow;
      }
    }
    if (tick && (c & 31) === 0) tick(1 - ((n - c) / n) ** 2);
  }
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    d[i] = band[at(i, i)] as number;
    if (i + 1 < n) e[i] = band[at(i + 1, i)] as number;
  }
  return { d, e };
}

/** The native route's graphs (the two Gram products and the band update), built once per job and released with it. */
export class NativeSingularValues {
  private constructor(
    private readonly ort: OrtModuleLike,
    private readonly gramColumns: OrtSessionLike,
    private readonly gramRows: OrtSessionLike,
    private readonly bandUpdate: OrtSessionLike,
    /** Matrices whose smaller side is below this stay on linalg.ts (`NATIVE_MIN_SIDE` unless a test lowers it). */
    readonly minSide: number,
  ) {}

  /**
   * Builds the sessions on `threads` intra-op threads (≥ 1), used for matrices whose smaller side is at least
   * `minSide`. Rejects if onnxruntime cannot create them.
   */
  static async create(
    ort: OrtModuleLike,
    threads: number,
    minSide: number = NATIVE_MIN_SIDE,
  ): Promise<NativeSingularValues> {
    const options = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
    const sessions: OrtSessionLike[] = [];
    try {
      for (const model of [gramModel('columns'), gramModel('rows'), bandUpdateModel()])
        sessions.push(await ort.InferenceSession.create(model, options));
    } catch (e) {
      for (const session of sessions) await session.release();
      throw e;
    }
    const [gramColumns, gramRows, bandUpdate] = sessions as [OrtSessionLike, OrtSessionLike, OrtSessionLike];
    return new NativeSingularValues(ort, gramColumns, gramRows, bandUpdate, minSide);
  }

  /** Frees the sessions. */
  async release(): Promise<void> {
    await this.gramColumns.release();
    await this.gramRows.release();
    await this.bandUpdate.release();
  }

  /**
   * Singular values, ascending, of the row-major `rows × cols` float32 matrix `a`: exactly min(rows, cols) values,
   * as `singularValues` of linalg.ts computes them (to rounding). `tick` gets the fraction done between panels and
   * may throw to stop.
   */
  async singularValues(a: Float32Array, rows: number, cols: number, tick?: Tick): Promise<Float64Array> {
    // The Gram matrix of the smaller side (W Wᵀ of a wide matrix has the same nonzero eigenvalues).
    const c = Math.min(rows, cols);
    const gram = cols <= rows ? this.gramColumns : this.gramRows;
    const g = float64Output(await gram.run({ w: new this.ort.Tensor('float32', a, [rows, cols]) }), 'g');
    tick?.(0.1);
    const band = await this.toBand(g, c, (f) => tick?.(0.1 + 0.6 * f));
    const { d, e } = bandToTridiagonal(band, c, Math.min(BAND, Math.max(1, c - 1)), (f) => tick?.(0.7 + 0.25 * f));
    const ev = tridiagonalEigenvalues(d, e);
    for (let i = 0; i < ev.length; i++) ev[i] = Math.sqrt(Math.max(0, ev[i] as number));
    tick?.(1);
    return ev;
  }

  /**
   * Reduces the symmetric `n × n` matrix `g` (row-major, left as it is) to half-bandwidth b = min(BAND, n − 1), and
   * returns it in `bandToTridiagonal`'s lower band storage.
   */
  private async toBand(g: Float64Array, n: number, tick: Tick): Promise<Float64Array> {
    const b = Math.min(BAND, Math.max(1, n - 1));
    const w = b + 2;
    const band = new Float64Array(n * w);
    // `cur` holds the trailing block A[o…, o…] (side s, row-major); columns before o are final in `band`.
    let cur = g;
    let o = 0;
    let s = n;
    while (s - b >= 2) {
      const m = s - b;
      const panel = new Float64Array(m * b);
      for (let i = 0; i < m; i++) panel.set(cur.subarray((b + i) * s, (b + i) * s + b), i * b);
      const { v, t, k } = panelQr(panel, m, b);
      // Columns o … o + b − 1 are final: rows above o + b from `cur`, rows from o + b on from R (in `panel`).
      for (let q = 0; q < b; q++)
        for (let dist = 0; dist <= b; dist++) {
          const row = q + dist;
          band[(o + q) * w + dist] = row < b ? (cur[row * s + q] as number) : (panel[(row - b) * b + q] as number);
        }
      const trailing = new Float64Array(m * m);
      for (let i = 0; i < m; i++) trailing.set(cur.subarray((b + i) * s + b, (b + i) * s + s), i * m);
      if (k > 0) {
        const out = await this.bandUpdate.run({
          a: new this.ort.Tensor('float64', trailing, [m, m]),
          v: new this.ort.Tensor('float64', v, [m, k]),
          t: new this.ort.Tensor('float64', t, [k, k]),
        });
        cur = float64Output(out, 'out');
      } else cur = trailing;
      o += b;
      s = m;
      tick(1 - (m / n) ** 3);
    }
    // The last block (side ≤ b + 1) is already within the band.
    for (let q = 0; q < s; q++)
      for (let dist = 0; q + dist < s; dist++) band[(o + q) * w + dist] = cur[(q + dist) * s + q] as number;
    return band;
  }
}
