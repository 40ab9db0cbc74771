/**
 * `node --import tsx bench/diffHistogram.ts [--mi 64] [--bins 64]`: the Compare panel's Δ histogram of one large
 * tensor pair, Weight Lens against NumPy on the same machine in one run. NumPy (Debian's python3-numpy) writes two
 * safetensors files of one float32 tensor of `--mi` Mi elements each (B = A + Gaussian noise, fixed seed) and times
 * `np.histogram(B.astype(f64) − A.astype(f64), bins)` on memory-mapped arrays; Weight Lens' `deltaHistogram`
 * (src/core/jobs/diffHistogram.ts: two streamed passes, one chunk of each file in memory) reads the same files.
 * Prints both times, this process's peak RSS against the files' size, and whether every bin count agrees. Asserts
 * nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { deltaHistogram } from '../src/core/jobs/diffHistogram';

const PYTHON = '/usr/bin/python3';
const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const mi = flag('mi', 64);
const bins = flag('bins', 64);
const out = resolve(__dirname, 'out');
mkdirSync(out, { recursive: true });
const fileA = join(out, `delta_${mi}mi_a.safetensors`);
const fileB = join(out, `delta_${mi}mi_b.safetensors`);

const NUMPY = `
import json, sys, time, numpy as np
a_path, b_path, n, bins = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def write(path, x):
    header = json.dumps({'w': {'dtype': 'F32', 'shape': [int(x.size)], 'data_offsets': [0, int(x.nbytes)]}}).encode()
    header += b' ' * (-len(header) % 8)
    with open(path, 'wb') as f:
        f.write(len(header).to_bytes(8, 'little')); f.write(header); x.astype('<f4').tofile(f)
    return 8 + len(header)
rng = np.random.default_rng(13)
a = rng.standard_normal(n, dtype=np.float32)
offset = write(a_path, a)
write(b_path, (a + rng.normal(0, 0.01, n).astype(np.float32)).astype(np.float32))
del a
ma = np.memmap(a_path, dtype='<f4', mode='r', offset=offset, shape=(n,))
mb = np.memmap(b_path, dtype='<f4', mode='r', offset=offset, shape=(n,))
t = time.perf_counter()
d = mb.astype(np.float64) - ma.astype(np.float64)
counts, edges = np.histogram(d, bins=bins)
dt = time.perf_counter() - t
print(json.dumps({'seconds': dt, 'counts': [int(c) for c in counts], 'min': float(d.min()), 'max': float(d.max())}))
`;

const n = mi * 1024 * 1024;
const reference = JSON.parse(
  execFileSync(PYTHON, ['-P', '-c', NUMPY, fileA, fileB, String(n), String(bins)], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  }),
) as { seconds: number; counts: number[]; min: number; max: number };

async function main(): Promise<void> {
  const started = performance.now();
  const ours = await deltaHistogram({ a: fileA, tensorA: 'w', b: fileB, tensorB: 'w', bins });
  const seconds = (performance.now() - started) / 1000;
  const peakMiB = process.resourceUsage().maxRSS / 1024;
  const agree = ours.histogram.counts.every((c, i) => c === reference.counts[i]);
  const fileMiB = (n * 4) / (1024 * 1024);

  console.log(`Δ histogram of two ${mi} Mi-element float32 tensors (${fileMiB.toFixed(0)} MiB per file), ${bins} bins`);
  console.log(`  NumPy (memmap, float64 Δ, np.histogram): ${reference.seconds.toFixed(2)} s`);
  console.log(`  Weight Lens (deltaHistogram, 2 streamed passes): ${seconds.toFixed(2)} s`);
  console.log(
    `  Weight Lens peak RSS (this process): ${peakMiB.toFixed(0)} MiB for ${(2 * fileMiB).toFixed(0)} MiB of inputs`,
  );
  console.log(
    `  bins agree with NumPy: ${agree ? 'all' : 'NO'} (min Δ ${ours.min} vs ${reference.min}, max Δ ${ours.max} vs ${reference.max})`,
  );
}

void main();
