/**
 * Heavy-tailed self-regularisation fits of an empirical spectral density, as WeightWatcher computes them
 * (CalculatedContent/WeightWatcher, `WW_powerlaw.WWFit` and `RMT_Util`):
 * - the power-law exponent α of the ESD's tail by maximum likelihood, with x_min the candidate (every eigenvalue
 *   but the largest) of smallest Kolmogorov–Smirnov distance (Clauset, Shalizi & Newman 2009, as the `powerlaw`
 *   package does for continuous data);
 * - the Marchenko–Pastur soft rank: the MP bulk edge λ₊ fitted to the ESD, over the largest eigenvalue.
 * Pure functions of eigenvalue arrays; no I/O.
 */

/** Eigenvalues at or below this are treated as zero and left out of the power-law fit (WeightWatcher's EVALS_THRESH). */
export const EVALS_THRESHOLD = 1e-5;

/** A power-law fit of an ESD's tail. */
export interface PowerLawFit {
  /** Exponent of p(λ) ∝ λ^−α for λ ≥ xmin. */
  alpha: number;
  /** The eigenvalue where the tail starts. */
  xmin: number;
  /** Largest eigenvalue fitted. */
  xmax: number;
  /** Kolmogorov–Smirnov distance between the tail and the fitted law (0..1). */
  ks: number;
  /** Standard error of α: (α − 1) / √n over the n tail eigenvalues. */
  sigma: number;
  /** Eigenvalues at or above xmin (the tail), counted over all eigenvalues given. */
  tail: number;
}

/**
 * Fits a power law to the eigenvalues `evals` (any order) above `EVALS_THRESHOLD`: for each candidate xmin (every
 * kept eigenvalue but the largest, ascending) the maximum-likelihood α = 1 + n / Σ ln(λᵢ / xmin) over the n
 * eigenvalues ≥ xmin, and the KS distance max |1 − (λ/xmin)^(1−α) − i/n| (1 when α ≤ 1); the first smallest
 * distance wins. Undefined when fewer than two eigenvalues are kept or nothing finite results. Work O(n²).
 */
export function fitPowerLaw(evals: ArrayLike<number>, signal?: { check(): void }): PowerLawFit | undefined {
  const kept: number[] = [];
  for (let i = 0; i < evals.length; i++) {
    const v = evals[i] as number;
    if (v > EVALS_THRESHOLD) kept.push(v);
  }
  const data = Float64Array.from(kept).sort();
  const n = data.length;
  if (n < 2) return undefined;
  const logs = data.map(Math.log);
  // Suffix sums of the logs, for α at every candidate in O(1).
  const suffix = new Float64Array(n + 1);
  for (let i = n - 1; i >= 0; i--) suffix[i] = (suffix[i + 1] as number) + (logs[i] as number);
  let best = -1;
  let bestD = Infinity;
  let bestAlpha = NaN;
  for (let i = 0; i < n - 1; i++) {
    const count = n - i;
    const li = logs[i] as number;
    const alpha = 1 + count / ((suffix[i] as number) - count * li);
    let d = 1;
    if (alpha > 1) {
      d = 0;
      const e = 1 - alpha;
      for (let j = i; j < n; j++) {
        const dl = (logs[j] as number) - li;
        const cdf = 1 - (dl === 0 ? 1 : Math.exp(e * dl));
        const diff = Math.abs(cdf - (j - i) / count);
        if (diff > d) d = diff;
      }
    }
    if (d < bestD) {
      bestD = d;
      best = i;
      bestAlpha = alpha;
    }
    if ((i & 255) === 255) signal?.check();
  }
  if (best < 0 || !Number.isFinite(bestAlpha)) return undefined;
  const xmin = data[best] as number;
  let tail = 0;
  for (let i = 0; i < evals.length; i++) if ((evals[i] as number) >= xmin) tail++;
  return {
    alpha: bestAlpha,
    xmin,
    xmax: data[n - 1] as number,
    ks: bestD,
    sigma: (bestAlpha - 1) / Math.sqrt(n - best),
    tail,
  };
}

/** Kernel bandwidth of the density estimate the MP fit compares against (on eigenvalues rescaled to mean 1). */
const MP_BANDWIDTH = 0.1;
/** Points of the grid on [0, λmax + 0.5] where densities are compared. */
const MP_GRID = 1000;
/** Densities below this are left out of the comparison (they would only fit the empty tail). */
const MP_DENSITY_FLOOR = 0.01;

/** A Marchenko–Pastur fit of an ESD's bulk. */
export interface MarchenkoPasturFit {
  /** Fitted scale σ of the MP law, on eigenvalues rescaled to mean 1. */
  sigma: number;
  /** Bulk edge λ₊ = (σ (1 + 1/√Q))², in the units of the eigenvalues given. */
  bulkMax: number;
  /** MP soft rank: λ₊ / λmax (0..1; small means a few large eigenvalues dominate). */
  softRank: number;
}

/**
 * Fits the Marchenko–Pastur law of aspect ratio `q` = N/M ≥ 1 to the eigenvalues `evals` as WeightWatcher's
 * `mp_fit` does: the eigenvalues are rescaled to mean 1 (λ√… by √n/‖W‖F), a linear-kernel density estimate
 * (bandwidth 0.1) is taken on 1000 points of [0, λmax + 0.5], and σ is the minimiser of the squared difference
 * between the MP density and the estimate where the estimate exceeds 0.01 (σ on a grid from 0.05 to 2 times the σ
 * whose edge is λmax, in steps of 0.01 times it, then refined by Nelder–Mead as `scipy.optimize.brute` does). For
 * q = 1 the quarter-circle law is fitted to the singular values instead. Undefined for fewer than two eigenvalues or a
 * zero spectrum.
 */
export function fitMarchenkoPastur(evals: ArrayLike<number>, q: number): MarchenkoPasturFit | undefined {
  const count = evals.length;
  if (count < 2 || !(q >= 1)) return undefined;
  let total = 0;
  let top = 0;
  for (let i = 0; i < count; i++) {
    total += evals[i] as number;
    top = Math.max(top, evals[i] as number);
  }
  if (!(total > 0)) return undefined;
  const scale2 = count / total; // Wscale²
  const scaled = new Float64Array(count);
  for (let i = 0; i < count; i++) scaled[i] = (evals[i] as number) * scale2;
  const lambdaMax = top * scale2;
  const quarter = q === 1;
  const fitted = quarter ? scaled.map(Math.sqrt) : scaled;
  let fitMax = 0;
  for (const v of fitted) fitMax = Math.max(fitMax, v);
  // Linear-kernel density estimate on the grid: (1/nh) Σ max(0, 1 − |x − xᵢ|/h).
  const sorted = Float64Array.from(fitted).sort();
  const grid: number[] = [];
  const density: number[] = [];
  const step = (fitMax + 0.5) / (MP_GRID - 1);
  let lo = 0;
  for (let g = 0; g < MP_GRID; g++) {
    const x = g === MP_GRID - 1 ? fitMax + 0.5 : g * step;
    while (lo < count && (sorted[lo] as number) <= x - MP_BANDWIDTH) lo++;
    let s = 0;
    for (let i = lo; i < count && (sorted[i] as number) < x + MP_BANDWIDTH; i++)
      s += 1 - Math.abs(x - (sorted[i] as number)) / MP_BANDWIDTH;
    const y = s / (count * MP_BANDWIDTH);
    if (y > MP_DENSITY_FLOOR) {
      grid.push(x);
      density.push(y);
    }
  }
  if (grid.length === 0) return undefined;
  let peakX = grid[0] as number;
  let peakY = density[0] as number;
  for (let i = 1; i < grid.length; i++)
    if ((density[i] as number) > peakY) {
      peakY = density[i] as number;
      peakX = grid[i] as number;
    }
  const gridMax = grid[grid.length - 1] as number;
  const invSqrtQ = 1 / Math.sqrt(q);
  const rootInvQ = Math.sqrt(1 / q);
  const y = 1 / q;
  const residual = (sigma: number): number => {
    let sum = 0;
    if (quarter) {
      const c = 1 / (Math.PI * sigma * sigma);
      for (let i = 0; i < grid.length; i++) {
        const x = grid[i] as number;
        const mp = x <= 2 ? c * Math.sqrt(4 - x * x) : 0;
        sum += (mp - (density[i] as number)) ** 2;
      }
      return sum;
    }
    const b = (sigma * (1 + rootInvQ)) ** 2;
    const a = (sigma * (1 - rootInvQ)) ** 2;
    if (b < peakX || b > gridMax || a > peakX) return grid.length * 1e6;
    for (let i = 0; i < grid.length; i++) {
      const x = grid[i] as number;
      const inside = (b - x) * (x - a);
      const mp = x > 0 && inside >= 0 ? (1 / (2 * Math.PI * sigma * sigma * x * y)) * Math.sqrt(inside) : 0;
      sum += (mp - (density[i] as number)) ** 2;
    }
    return sum;
  };
  // The σ whose bulk edge is the largest eigenvalue (WeightWatcher's calc_sigma) sets the search range.
  const sigma0 = Math.sqrt(lambdaMax / (1 + invSqrtQ) ** 2);
  let bestSigma = NaN;
  let bestF = Infinity;
  const lo0 = 0.05 * sigma0;
  const hi0 = 2 * sigma0;
  const inc = 0.01 * sigma0;
  const steps = Math.ceil((hi0 - lo0) / inc);
  for (let k = 0; k < steps; k++) {
    const s = lo0 + k * inc;
    const f = residual(s);
    if (f < bestF) {
      bestF = f;
      bestSigma = s;
    }
  }
  if (!Number.isFinite(bestSigma)) return undefined;
  const sigma = nelderMead1d(residual, bestSigma);
  const bulkScaled = (sigma * (1 + (quarter ? 1 : invSqrtQ))) ** 2;
  return { sigma, bulkMax: bulkScaled / scale2, softRank: bulkScaled / lambdaMax };
}

/**
 * Minimises `f` from `x0` by Nelder–Mead in one dimension with the rules and defaults of SciPy's `fmin` (initial step
 * 5 % of x0, reflection 1, expansion 2, contraction ½, shrink ½, stop when both the simplex and its values span ≤ 1e-4,
 * at most 200 iterations and 200 evaluations).
 */
export function nelderMead1d(f: (x: number) => number, x0: number): number {
  let sim = [x0, x0 !== 0 ? 1.05 * x0 : 0.00025];
  let fsim = [f(sim[0] as number), f(sim[1] as number)];
  let calls = 2;
  const order = (): void => {
    if ((fsim[1] as number) < (fsim[0] as number)) {
      sim = [sim[1] as number, sim[0] as number];
      fsim = [fsim[1] as number, fsim[0] as number];
    }
  };
  order();
  for (let iter = 1; calls < 200 && iter < 200; iter++) {
    const [x0s, x1s] = sim as [number, number];
    const [f0, f1] = fsim as [number, number];
    if (Math.abs(x1s - x0s) <= 1e-4 && Math.abs(f0 - f1) <= 1e-4) break;
    const xbar = x0s;
    const xr = 2 * xbar - x1s;
    const fxr = f(xr);
    calls++;
    let shrink = false;
    if (fxr < f0) {
      const xe = 3 * xbar - 2 * x1s;
      const fxe = f(xe);
      calls++;
      if (fxe < fxr) {
        sim[1] = xe;
        fsim[1] = fxe;
      } else {
        sim[1] = xr;
        fsim[1] = fxr;
      }
    } else if (fxr < f1) {
      const xc = 1.5 * xbar - 0.5 * x1s;
      const fxc = f(xc);
      calls++;
      if (fxc <= fxr) {
        sim[1] = xc;
        fsim[1] = fxc;
      } else shrink = true;
    } else {
      const xcc = 0.5 * xbar + 0.5 * x1s;
      const fxcc = f(xcc);
      calls++;
      if (fxcc < f1) {
        sim[1] = xcc;
        fsim[1] = fxcc;
      } else shrink = true;
    }
    if (shrink) {
      sim[1] = x0s + 0.5 * (x1s - x0s);
      fsim[1] = f(sim[1]);
      calls++;
    }
    order();
  }
  return sim[0] as number;
}
