/**
 * `npm run bench:artifact-size`: where a NeRN artifact's bytes go on the project's ResNet-20
 * (test/fixtures/models/resnet20_fmnist.pt), before and after format 4.
 *
 * 1. Permutations: for each kind (crossfilter, infilter, none) over the represented convolutions, the bytes as
 *    format 3 stored them (U16 per kernel), bit-packed at ⌈log₂ N⌉ bits, and as format 4 stores them (the smaller
 *    of packed and deflated per layer; nothing for the identity), with the coding each layer got.
 * 2. Whole artifacts: compresses at one size for each predictor dtype, with and without --lean, and prints the
 *    written file's bytes by component (from its header: predictor, permutations, scales, verbatim, metadata), the
 *    planner's estimate beside it, and the same breakdown read by Python's json/struct
 *    (bench/reference/artifact_bytes.py), which also re-deflates the packed permutations with Python's zlib.
 *
 *    With --verbatim f32,f16,int8, each of those verbatim dtypes too (default f32 alone), and --lean only / --no-lean
 *    only to halve the runs.
 *
 * Run: node --import tsx bench/artifact-size.ts [--size 0.1] [--steps 500] [--dtypes f32,int4] [--permutation P]
 *      [--verbatim f32,f16,int8] [--lean-only | --full-only]
 * Rows are printed as they come and written to bench/out/artifact-size.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compressCheckpoint, DEFAULT_COMPRESS_OPTIONS, planCompression } from '../src/core/jobs/compress';
import { openCheckpoint } from '../src/core/formats/registry';
import { classifyTensor } from '../src/core/nern/budget';
import { measureArtifactBytes } from '../src/core/nern/artifactSize';
import { layerPermutation } from '../src/core/nern/kernelMap';
import { encodePermutation, packedPermutationBytes } from '../src/core/nern/permutationCodec';
import { kernelShape, toKernels } from '../src/core/nern/tiling';
import { readTensorValues } from '../src/core/tensors/tensor';
import type { ArtifactBytesDto, CompressOptionsDto } from '../src/protocol/compress';
import { isOneOf, PERMUTATION_KINDS, PREDICTOR_DTYPES, VERBATIM_DTYPES } from '../src/protocol/vocabulary';

const ROOT = resolve(__dirname, '..');
const OUT = join(ROOT, 'bench', 'out');
const STATE_DICT = join(ROOT, 'test', 'fixtures', 'models', 'resnet20_fmnist.pt');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const kb = (n: number): string => `${(n / 1000).toFixed(1)} kB`;

async function permutationRows(): Promise<Record<string, unknown>[]> {
  const checkpoint = await openCheckpoint(STATE_DICT);
  const rows: Record<string, unknown>[] = [];
  try {
    const layers = [];
    for (const t of checkpoint.tensors) {
      const c = classifyTensor(t, { conv: true, dense: false });
      if (!c.represented) continue;
      const shape = kernelShape(c.tile, t.shape);
      layers.push({ name: t.name, shape, values: toKernels(await readTensorValues(t), c.tile, t.shape) });
    }
    const kernels = layers.reduce((n, l) => n + l.shape[0] * l.shape[1], 0);
    console.log(`\nResNet-20: ${layers.length} represented convolutions, ${kernels.toLocaleString('en-US')} kernels`);
    console.log('permutation   U16 (format 3)   packed ⌈log₂ N⌉   stored (format 4)   codings');
    for (const kind of PERMUTATION_KINDS) {
      let packed = 0;
      let stored = 0;
      const codings: Record<string, number> = {};
      for (const l of layers) {
        const perm = layerPermutation(l, kind);
        packed += packedPermutationBytes(perm.length);
        const e = encodePermutation(perm, l.shape[1]);
        stored += e.data.length;
        codings[e.stored.coding] = (codings[e.stored.coding] ?? 0) + 1;
      }
      const row = { kind, kernels, u16: 2 * kernels, packed, stored, codings };
      rows.push(row);
      console.log(
        `${kind.padEnd(13)} ${kb(2 * kernels).padStart(14)}   ${kb(packed).padStart(15)}   ${kb(stored).padStart(17)}   ${Object.entries(
          codings,
        )
          .map(([k, v]) => `${v} ${k}`)
          .join(', ')}`,
      );
    }
  } finally {
    await checkpoint.close();
  }
  return rows;
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const size = Number(arg('size') ?? '0.1');
  const steps = Number(arg('steps') ?? '500');
  const permutation = arg('permutation') ?? 'crossfilter';
  if (!isOneOf(PERMUTATION_KINDS, permutation))
    throw new Error(`--permutation must be one of ${PERMUTATION_KINDS.join(', ')}`);
  const dtypes = (arg('dtypes') ?? 'f32,int4').split(',').filter((d) => isOneOf(PREDICTOR_DTYPES, d));
  const verbatimDtypes = (arg('verbatim') ?? 'f32').split(',').filter((d) => isOneOf(VERBATIM_DTYPES, d));
  const leans = process.argv.includes('--lean-only')
    ? [true]
    : process.argv.includes('--full-only')
      ? [false]
      : [false, true];
  const permutations = await permutationRows();
  const runs: Record<string, unknown>[] = [];
  console.log(
    `\nArtifacts of resnet20_fmnist.pt at --size ${size}, ${steps} steps, --permutation ${permutation} (written file, by component):`,
  );
  console.log(
    'dtype  verbatim lean   predictor  permutations  scales  verbatim  metadata     total   planned   python sum',
  );
  for (const predictorDtype of dtypes) {
    for (const verbatimDtype of verbatimDtypes) {
      for (const lean of leans) {
        const options: CompressOptionsDto = {
          ...DEFAULT_COMPRESS_OPTIONS,
          budget: { kind: 'fraction', fraction: size },
          steps,
          permutation: permutation,
          predictorDtype: predictorDtype,
          verbatimDtype,
          lean,
          out: join(OUT, `resnet20-${predictorDtype}-v${verbatimDtype}${lean ? '-lean' : ''}.nern.safetensors`),
        };
        const plan = await planCompression(STATE_DICT, options);
        const report = await compressCheckpoint(STATE_DICT, options);
        const bytes: ArtifactBytesDto = await measureArtifactBytes(report.artifact);
        const python = JSON.parse(
          execFileSync(
            '/usr/bin/python3',
            ['-P', join(ROOT, 'bench', 'reference', 'artifact_bytes.py'), report.artifact],
            {
              encoding: 'utf8',
            },
          ),
        ) as Record<string, number>;
        const row = {
          predictorDtype,
          verbatimDtype,
          lean,
          hidden: report.hidden,
          bytes,
          planned: plan.artifactBytes,
          python,
        };
        runs.push(row);
        console.log(
          `${predictorDtype.padEnd(6)} ${verbatimDtype.padEnd(8)} ${String(lean).padEnd(5)} ${kb(bytes.predictor).padStart(10)} ${kb(bytes.permutations).padStart(13)} ${kb(bytes.scales).padStart(7)} ${kb(bytes.verbatim).padStart(9)} ${kb(bytes.metadata).padStart(9)} ${kb(bytes.total).padStart(9)} ${kb(plan.artifactBytes).padStart(9)} ${kb(python.sum ?? 0).padStart(12)}` +
            `  (h ${report.hidden}; python: metadata ${python.metadata}, permutations ${python.permutations}, verbatim ${python.verbatim}, re-deflated ${python.permutationsRedeflated})`,
        );
      }
    }
  }
  writeFileSync(
    join(OUT, 'artifact-size.json'),
    JSON.stringify({ size, steps, permutation, permutations, runs }, null, 2),
  );
}

void main();
