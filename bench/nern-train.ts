/**
 * Runs the TypeScript reconstruction phase on real conv weights (PREFIX.bin/.json from
 * bench/reference/train_resnet20.py) and prints progress, per-layer evaluations and time to quality.
 * Run: node --import tsx bench/nern-train.ts PREFIX [--hidden 160] [--steps 500] [--optimizer adam|ranger] [--lr 2e-3]
 *      [--warmup 100] [--scale layer|none] [--permutation crossfilter|infilter|none] [--batch 4096] [--eval-every 100]
 *      [--base 0.76] [--levels 40] [--no-guard]
 */
import { readFileSync } from 'node:fs';
import { initBackend } from '../src/core/backend/tfjsBackend';
import type { KernelLayer, OutputScaleMode } from '../src/core/nern/kernelMap';
import type { PermutationKind } from '../src/core/nern/permutation';
import { trainReconstruction, type TrainOptions } from '../src/core/nern/train';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
function num(name: string): number | undefined {
  const v = arg(name);
  return v === undefined ? undefined : Number(v);
}

async function main(): Promise<void> {
  const prefix = process.argv[2];
  if (prefix === undefined || prefix.startsWith('--')) throw new Error('usage: nern-train.ts PREFIX [options]');
  const meta = JSON.parse(readFileSync(`${prefix}.json`, 'utf8')) as {
    layers: { name: string; shape: number[]; offset: number }[];
  };
  const bytes = readFileSync(`${prefix}.bin`);
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const layers: KernelLayer[] = meta.layers
    .filter((l) => l.shape[2] === l.shape[3] && (l.shape[2] === 3 || l.shape[2] === 1))
    .map((l) => ({
      name: l.name,
      shape: l.shape,
      values: all.slice(l.offset, l.offset + l.shape.reduce((a, b) => a * b, 1)),
    }));
  const backend = await initBackend('wasm');
  const base = num('base');
  const levels = num('levels');
  const options: Partial<TrainOptions> = {
    hidden: num('hidden') ?? 160,
    steps: num('steps') ?? 500,
    batchSize: num('batch'),
    optimizer: arg('optimizer') as 'adam' | 'ranger' | undefined,
    lr: num('lr'),
    warmupSteps: num('warmup'),
    minLr: num('min-lr'),
    outputScale: arg('scale') as OutputScaleMode | undefined,
    permutation: arg('permutation') as PermutationKind | undefined,
    evalEvery: num('eval-every') ?? 100,
    progressEvery: 10,
    seed: num('seed'),
    collapseGuard: !process.argv.includes('--no-guard'),
    encoding: base !== undefined || levels !== undefined ? { base: base ?? 0.76, levels: levels ?? 40 } : undefined,
  };
  const start = performance.now();
  const elapsed = (): string => `${((performance.now() - start) / 1000).toFixed(0)}s`;
  let last = '';
  const result = await trainReconstruction(layers, options, {
    onProgress: (p) => {
      last = `step ${p.step} loss ${p.loss.toFixed(5)} lr ${p.lr.toExponential(2)} ${p.stepsPerSecond.toFixed(2)} steps/s`;
    },
    onEvaluation: (e) => {
      console.log(
        `${last} | eval rmse ${e.rmse.toFixed(5)} (${(e.rmse / e.weightRms).toFixed(3)} of rms ${e.weightRms.toFixed(5)}) ${elapsed()}`,
      );
    },
  });
  console.log(
    `backend ${backend.name}; ${result.representedWeights} weights, predictor ${result.predictorParameters} params; ` +
      `permutation ${result.permutationSeconds.toFixed(1)} s; ${result.steps} steps in ${result.trainSeconds.toFixed(1)} s ` +
      `(${(result.steps / result.trainSeconds).toFixed(2)} steps/s); final rmse ${result.evaluation.rmse.toFixed(5)} ` +
      `(${(result.evaluation.rmse / result.evaluation.weightRms).toFixed(3)} of rms)`,
  );
  for (const g of result.guardEvents) console.log(`guard: ${g}`);
  if (process.argv.includes('--layers')) {
    for (const l of result.evaluation.layers)
      console.log(`  ${l.name}: rmse ${l.rmse.toFixed(5)} / rms ${l.weightRms.toFixed(5)}`);
  }
}

void main();
