import { initBackend } from '../src/core/backend';
import { Rng } from '../src/core/nern/rng';
import { trainReconstruction } from '../src/core/nern/train';
import type { KernelLayer } from '../src/core/nern/layout';
function syntheticLayers(seed = 1): KernelLayer[] {
  const rng = new Rng(seed);
  const make = (name: string, cout: number, cin: number, k: number, amp: number): KernelLayer => {
    const values = new Float32Array(cout * cin * k * k);
    for (let f = 0; f < cout; f++) for (let c = 0; c < cin; c++) for (let j = 0; j < k * k; j++)
      values[((f * cin + c) * k * k) + j] = amp * (Math.sin(3 * f / cout + j) * Math.cos(2 * c / cin - j / 3) + 0.1 * (2 * rng.next() - 1));
    return { name, shape: [cout, cin, k, k], values };
  };
  return [make('a', 8, 3, 3, 0.2), make('b', 8, 8, 3, 0.1), make('c', 4, 8, 1, 0.3)];
}
(async () => {
  await initBackend('wasm');
  const args = JSON.parse(process.argv[2] ?? '{}');
  const t0 = performance.now();
  const r = await trainReconstruction(syntheticLayers(), { hidden: 24, steps: 150, batchSize: 64, lr: 5e-3, warmupSteps: 10, seed: 3, ...args }, {onProgress: (p) => { if (args.verbose) console.log(p.step, p.loss, p.lr); }});
  console.log(JSON.stringify(args), (r.evaluation.rmse / r.evaluation.weightRms).toFixed(3), ((performance.now() - t0) / 1000).toFixed(1) + 's', r.guardEvents);
})();
