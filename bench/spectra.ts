/**
 * `npm run bench:spectra`: singular values of a 1024 × 1024 float32 matrix, Weight Lens against NumPy on the same
 * machine in one run, interleaved (machine load moves both): NumPy's `linalg.svd(W, compute_uv=False)` (LAPACK
 * gesdd through its BLAS) on the float32 matrix, Weight Lens' route (float64 WᵀW, Householder tridiagonalisation,
 * implicit QL; src/core/analysis/linalg.ts), the native route the spectra job takes when onnxruntime-node loads
 * (its GEMMs for WᵀW and a band reduction, then Givens and QL; src/core/analysis/nativeLinalg.ts), ml-matrix's SVD once for comparison (skipped with --no-ml-matrix), and
 * the randomized top-k path. Prints medians of the rounds, the ratio, and the agreement with NumPy's float64 SVD.
 * Asserts nothing.
 *
 * Run: node --import tsx bench/spectra.ts [--n 1024] [--rounds 3] [--no-ml-matrix]
 * Needs Debian's python3-numpy (/usr/bin/python3).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { SingularValueDecomposition, Matrix } from 'ml-matrix';
import { singularValues, topSingularValues } from '../src/core/analysis/linalg';
import { NativeSingularValues } from '../src/core/analysis/nativeLinalg';
import { loadOnnxRuntime } from '../src/core/backend/onnxRuntime';

const PYTHON = '/usr/bin/python3';
const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const n = flag('n', 1024);
const rounds = flag('rounds', 3);
const out = resolve(__dirname, 'out');
mkdirSync(out, { recursive: true });
const matrixFile = join(out, `spectra_${n}.f32`);

// A weight-like matrix: Gaussian entries with a decaying column scale (a heavy-ish tail), fixed seed.
let s = 12345;
const uniform = (): number => {
  s = (s * 1103515245 + 12345) >>> 0;
  return (s + 0.5) / 4294967296;
};
const w = new Float32Array(n * n);
for (let i = 0; i < n; i++)
  for (let j = 0; j < n; j++) {
    const g = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    w[i * n + j] = (g * (1 + 5 / (1 + j / 8))) / Math.sqrt(n);
  }
writeFileSync(matrixFile, w);

const NUMPY = `
import sys, time, numpy as np
n = int(sys.argv[2]); W = np.fromfile(sys.argv[1], dtype=np.float32).reshape(n, n)
np.linalg.svd(W, compute_uv=False)  # warm-up
t = time.perf_counter(); s = np.linalg.svd(W, compute_uv=False); dt = time.perf_counter() - t
if sys.argv[3] == 'ref':
    np.sort(np.linalg.svd(W.astype(np.float64), compute_uv=False)).tofile(sys.argv[1] + '.ref64')
print(dt)
`;
function numpySeconds(ref: boolean): number {
  return Number(
    execFileSync(PYTHON, ['-P', '-c', NUMPY, matrixFile, String(n), ref ? 'ref' : 'time'], { encoding: 'utf8' }),
  );
}

async function main(): Promise<void> {
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const numpy: number[] = [];
  const ours: number[] = [];
  const native: number[] = [];
  const loaded = loadOnnxRuntime();
  const engine = loaded.ok ? await NativeSingularValues.create(loaded.ort, availableParallelism()) : undefined;
  let values: Float64Array = new Float64Array(0);
  let nativeValues: Float64Array = new Float64Array(0);
  for (let r = 0; r < rounds; r++) {
    numpy.push(numpySeconds(r === 0));
    let t = performance.now();
    values = singularValues(w, n, n);
    ours.push((performance.now() - t) / 1000);
    if (engine) {
      t = performance.now();
      nativeValues = await engine.singularValues(w, n, n);
      native.push((performance.now() - t) / 1000);
    }
  }
  await engine?.release();
  const ref = new Float64Array(readFileSync(`${matrixFile}.ref64`).buffer.slice(0));
  const largestDifference = (got: Float64Array): number => {
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs((got[i] ?? 0) - (ref[i] ?? 0)) / (ref[i] ?? 1));
    return worst;
  };
  const worst = largestDifference(values);

  const k = 64;
  const t0 = performance.now();
  const top = await topSingularValues(w, n, n, k, 0);
  const randomized = (performance.now() - t0) / 1000;
  let worstTop = 0;
  for (let i = 0; i < k; i++) {
    const exact = ref[n - k + i] ?? 1;
    worstTop = Math.max(worstTop, Math.abs((top[i] ?? 0) - exact) / exact);
  }

  let mlMatrix = NaN;
  if (!args.includes('--no-ml-matrix')) {
    const m = new Matrix(n, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) m.set(i, j, w[i * n + j] ?? 0);
    const t = performance.now();
    new SingularValueDecomposition(m, { computeLeftSingularVectors: false, computeRightSingularVectors: false });
    mlMatrix = (performance.now() - t) / 1000;
  }

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const rows: [string, string][] = [
    [`NumPy linalg.svd(compute_uv=False), float32`, `${median(numpy).toFixed(3)} s`],
    [
      `Weight Lens (float64 WᵀW + tridiagonal QL)`,
      `${median(ours).toFixed(3)} s  (${(median(ours) / median(numpy)).toFixed(2)}× NumPy)`,
    ],
    [
      `Weight Lens native (onnxruntime GEMMs + band)`,
      engine
        ? `${median(native).toFixed(3)} s  (${(median(native) / median(numpy)).toFixed(2)}× NumPy)`
        : `not run: ${loaded.ok ? '' : loaded.reason}`,
    ],
    [
      `ml-matrix SingularValueDecomposition`,
      Number.isNaN(mlMatrix)
        ? 'not run'
        : `${mlMatrix.toFixed(3)} s  (${(mlMatrix / median(numpy)).toFixed(1)}× NumPy)`,
    ],
    [
      `Weight Lens randomized top ${k}`,
      `${randomized.toFixed(3)} s  (largest relative error ${worstTop.toExponential(1)})`,
    ],
  ];
  process.stdout.write(
    [
      `singular values of a ${n} × ${n} float32 matrix, ${cpus().length} × ${cpu}, median of ${rounds} interleaved rounds`,
      ...rows.map(([a, b]) => `  ${a.padEnd(48)} ${b}`),
      `  Weight Lens vs NumPy float64 SVD: largest relative difference ${worst.toExponential(2)}` +
        (engine ? `; native ${largestDifference(nativeValues).toExponential(2)}` : ''),
      `  rounds (s): NumPy ${numpy.map((x) => x.toFixed(3)).join(' ')}; Weight Lens ${ours.map((x) => x.toFixed(3)).join(' ')}` +
        (engine ? `; native ${native.map((x) => x.toFixed(3)).join(' ')}` : ''),
    ].join('\n') + '\n',
  );
}

void main();
