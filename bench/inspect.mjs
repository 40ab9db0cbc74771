// bench:inspect: throughput (MB/s) and peak RSS of `weight-lens inspect --json` on a generated 1 GiB float32
// safetensors file, against NumPy computing the same statistics and a 256-bin histogram on the same file.
// Figures are printed, never asserted. Usage: npm run bench:inspect [-- --gib 1 --runs 2]
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const gib = arg('gib', 1);
const runs = arg('runs', 2);
const outDir = join(root, 'bench/out');
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `bench-${gib}gib.safetensors`);

/** Writes `gib` GiB of float32 weights (64 MiB tensors, normal-ish values from a seeded xorshift) as safetensors. */
function generate() {
  const tensorElements = 16 * 1024 * 1024;
  const tensorBytes = tensorElements * 4;
  const count = Math.round((gib * 1024 ** 3) / tensorBytes);
  const header = { __metadata__: { generator: 'weight-lens bench' } };
  for (let i = 0; i < count; i++)
    header[`layers.${i}.weight`] = {
      dtype: 'F32',
      shape: [4096, 4096],
      data_offsets: [i * tensorBytes, (i + 1) * tensorBytes],
    };
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const fd = openSync(file + '.tmp', 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeSync(fd, len);
  writeSync(fd, json);
  const values = new Float32Array(tensorElements);
  let s = 0x9e3779b9;
  for (let t = 0; t < count; t++) {
    for (let i = 0; i < tensorElements; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      const u = (s >>> 0) / 4294967296;
      // Sum of two uniforms: a triangular, roughly bell-shaped weight distribution; every 101st weight is zero.
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      values[i] = i % 101 === 0 ? 0 : (u + (s >>> 0) / 4294967296 - 1) * 0.05 * (1 + t / count);
    }
    writeSync(fd, new Uint8Array(values.buffer));
  }
  closeSync(fd);
  spawnSync('mv', [file + '.tmp', file]);
}

if (!existsSync(file)) {
  console.log(`generating ${file} …`);
  generate();
}
const bytes = statSync(file).size;
console.log(`file: ${file} (${(bytes / 1e9).toFixed(3)} GB)`);

function runWeightLens() {
  const t0 = performance.now();
  const r = spawnSync(
    process.execPath,
    [
      '--require',
      join(root, 'bench/report-rss.cjs'),
      join(root, 'dist/cli.js'),
      'inspect',
      file,
      '--json',
      '--bins',
      '256',
    ],
    { maxBuffer: 1 << 30, encoding: 'utf8' },
  );
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`weight-lens failed: ${r.stderr}`);
  const report = JSON.parse(r.stdout);
  const rss = Number(/peak-rss-kb=(\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { seconds, rssMb: rss / 1024, tensors: report.tensors.length };
}
function runNumpy() {
  const r = spawnSync('/usr/bin/python3', [join(root, 'bench/numpy_inspect.py'), file, '256'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`numpy reference failed (needs Debian python3-numpy): ${r.stderr}`);
  const o = JSON.parse(r.stdout);
  return { seconds: o.seconds, rssMb: o.peakRssKb / 1024, tensors: o.tensors };
}

const best = (f) => {
  let b;
  for (let i = 0; i < runs; i++) {
    const r = f();
    if (!b || r.seconds < b.seconds) b = r;
  }
  return b;
};
const wl = best(runWeightLens);
const np = best(runNumpy);
const gbps = (r) => bytes / r.seconds / 1e9;
console.log(
  `weight-lens inspect --json: ${wl.seconds.toFixed(2)} s  ${(gbps(wl) * 1000).toFixed(0)} MB/s  peak RSS ${wl.rssMb.toFixed(0)} MB  (${wl.tensors} tensors, best of ${runs})`,
);
console.log(
  `numpy reference:            ${np.seconds.toFixed(2)} s  ${(gbps(np) * 1000).toFixed(0)} MB/s  peak RSS ${np.rssMb.toFixed(0)} MB  (${np.tensors} tensors, best of ${runs})`,
);
console.log(`speed ratio weight-lens / numpy: ${(gbps(wl) / gbps(np)).toFixed(2)}×`);
