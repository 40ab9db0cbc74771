/**
 * `npm run bench:scale`: Weight Lens on a ResNet-50-sized checkpoint (torchvision's architecture with its own random
 * initialisation, written by bench/reference/resnet50.py with Debian's python3-torchvision; pretrained weights cannot
 * be downloaded here). Runs the installed CLI as a user would, each stage in its own process with its progress lines
 * passed through: compress for 500 steps (the CLI's default budget unless --size), decompress, and evaluate one batch of 16 inputs with
 * the ONNX export on the reconstructed weights. Prints each stage's seconds and peak RSS (bench/report-rss.cjs), and
 * PyTorch's forward time and peak RSS on the same batch beside the evaluation. The aim in the issue: peak RSS under
 * 3 GB. Asserts nothing.
 *
 * Run: node --import tsx bench/scale.ts [--steps 500] [--size FRACTION] [--backend auto]
 *        [--permutation crossfilter|infilter|none] [--pointwise blocks|centre]
 * Needs Debian's python3-torchvision and python3-onnx (/usr/bin/python3); the checkpoint is written once to
 * bench/out/resnet50/.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const PYTHON = '/usr/bin/python3';
const root = resolve(__dirname, '..');
const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const steps = option('steps', '500');
const backend = option('backend', 'auto');
const permutation = option('permutation', 'crossfilter');
const size = option('size', '');
const pointwise = option('pointwise', 'blocks');
const folder = join(root, 'bench', 'out', 'resnet50');
const checkpoint = join(folder, 'resnet50.pt');
const onnx = join(folder, 'resnet50.onnx');
const images = join(folder, 'images.npy');
const artifact = join(folder, 'resnet50.nern.safetensors');
const cli = join(root, 'dist', 'cli.js');

/** One stage's figures. */
interface Stage {
  name: string;
  seconds: number;
  peakRssMb: number;
  note: string;
}

/** Runs the CLI with `argv`, streaming its stderr (progress) through; resolves to seconds, peak RSS and stdout. */
function runCli(argv: string[]): Promise<{ seconds: number; peakRssMb: number; stdout: string }> {
  return new Promise((done, fail) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--require', join(root, 'bench', 'report-rss.cjs'), cli, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      stderr += text;
      process.stderr.write(text);
    });
    // The CLI prints its progress line only on a terminal; here a heartbeat every 10 s gives the stage, the time so
    // far and the child's resident memory (Linux /proc), so a long stage shows it is moving.
    const heartbeat = setInterval(() => {
      let rss = '';
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(child.pid)}/status`, 'utf8'));
        if (m) rss = `, RSS ${(Number(m[1]) / 1024).toFixed(0)} MB`;
      } catch {
        // not Linux, or the process just ended
      }
      process.stderr.write(`  ${argv[0] ?? ''}: ${((performance.now() - started) / 1000).toFixed(0)} s${rss}\n`);
    }, 10_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearInterval(heartbeat);
      const seconds = (performance.now() - started) / 1000;
      const rss = /peak-rss-kb=(\d+)/.exec(stderr);
      if (code !== 0) fail(new Error(`weight-lens ${argv[0] ?? ''} exited ${String(code)}: ${stderr.slice(-400)}`));
      else done({ seconds, peakRssMb: rss ? Number(rss[1]) / 1024 : NaN, stdout });
    });
  });
}

async function main(): Promise<void> {
  if (!existsSync(cli)) throw new Error('dist/cli.js is missing: run `npm run build` first');
  if (!existsSync(onnx)) {
    process.stderr.write('writing the ResNet-50-sized checkpoint with PyTorch …\n');
    const r = spawnSync(PYTHON, ['-P', join(root, 'bench', 'reference', 'resnet50.py'), folder], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('bench/reference/resnet50.py failed (needs python3-torchvision, python3-onnx)');
  }
  const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
  const stages: Stage[] = [];

  const compress = await runCli([
    'compress',
    checkpoint,
    '--steps',
    steps,
    '--backend',
    backend,
    '--permutation',
    permutation,
    '--pointwise',
    pointwise,
    ...(size !== '' ? ['--size', size] : []),
    '--out',
    artifact,
    '--json',
  ]);
  const report = JSON.parse(compress.stdout) as {
    backend: string;
    representedParams: number;
    predictorParams: number;
    hidden: number;
    artifactBytes: number;
    sourceBytes: number;
    rmse: number;
  };
  stages.push({
    name: `compress (${steps} steps)`,
    seconds: compress.seconds,
    peakRssMb: compress.peakRssMb,
    note: `${report.backend}; h = ${report.hidden} (${report.predictorParams.toLocaleString('en-US')} parameters) for ${report.representedParams.toLocaleString('en-US')} represented weights; ${permutation}, 1×1 as ${pointwise}; ${mb(report.sourceBytes)} → ${mb(report.artifactBytes)}; rmse ${report.rmse.toExponential(3)}`,
  });

  const decompressed = join(folder, 'resnet50.decompressed.safetensors');
  const decompress = await runCli(['decompress', artifact, '--out', decompressed, '--backend', backend, '--json']);
  const decoded = JSON.parse(decompress.stdout) as { engine?: string; engineReason?: string };
  stages.push({
    name: 'decompress',
    seconds: decompress.seconds,
    peakRssMb: decompress.peakRssMb,
    note: `${mb(statSync(decompressed).size)} written; predicted on ${decoded.engine ?? '?'}${decoded.engineReason !== undefined ? ` (${decoded.engineReason})` : ''}`,
  });

  const evaluation = await runCli([
    'eval',
    onnx,
    '--data',
    images,
    '--weights',
    artifact,
    '--limit',
    '16',
    '--batch-size',
    '16',
    '--json',
  ]);
  const metrics = JSON.parse(evaluation.stdout) as {
    relativeError?: number;
    report?: { backend?: string; boundWeights?: number; unmatchedWeights?: number };
  };
  const bound = metrics.report?.boundWeights ?? 0;
  const unmatched = metrics.report?.unmatchedWeights ?? 0;
  // The artifact's weights must reach the model: an export that renamed them would evaluate the original alone.
  if (unmatched > 0 || bound === 0)
    throw new Error(`the artifact bound ${bound} of the ONNX model's weights (${unmatched} unmatched)`);
  stages.push({
    name: 'evaluate one batch of 16',
    seconds: evaluation.seconds,
    peakRssMb: evaluation.peakRssMb,
    note: `forward passes on ${metrics.report?.backend ?? '?'}; ${bound} weights bound; output relative error ${(metrics.relativeError ?? NaN).toFixed(3)}; decoding the artifact, both weight sets and process start included`,
  });

  const torch = spawnSync(PYTHON, ['-P', join(root, 'bench', 'reference', 'resnet50.py'), folder, '--forward'], {
    encoding: 'utf8',
  });
  const forward = /pytorch-forward-s=([\d.]+) threads=(\d+)/.exec(torch.stdout);
  const torchRss = /pytorch-peak-rss-kb=(\d+)/.exec(torch.stdout);

  const lines = [
    '',
    `ResNet-50-sized checkpoint ${mb(statSync(checkpoint).size)} (torchvision architecture, random initialisation)`,
    '',
    `${'stage'.padEnd(28)}${'seconds'.padStart(9)}${'peak RSS'.padStart(11)}  notes`,
    ...stages.map(
      (s) =>
        `${s.name.padEnd(28)}${s.seconds.toFixed(1).padStart(9)}${`${s.peakRssMb.toFixed(0)} MB`.padStart(11)}  ${s.note}`,
    ),
    forward
      ? `${'PyTorch forward, batch 16'.padEnd(28)}${Number(forward[1]).toFixed(1).padStart(9)}${`${(Number(torchRss?.[1] ?? NaN) / 1024).toFixed(0)} MB`.padStart(11)}  ${forward[2]} thread${forward[2] === '1' ? '' : 's'}, one forward pass only (no process start, no second weight set)`
      : `PyTorch reference failed: ${torch.stderr.slice(-300)}`,
    '',
    `aim: peak RSS under 3 GB in every stage: ${stages.every((s) => s.peakRssMb < 3072) ? 'met' : 'NOT met'}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:scale failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
