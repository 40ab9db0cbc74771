/**
 * The baseline compression job (`compress --method int8|int4|lowrank|prune`): the same represented tensors as NeRN
 * (classifyTensor: conv and, with dense tiling, matrix weights) are compressed by methods.ts, every other tensor is
 * kept verbatim, and the result is written as a baseline artifact (artifact.ts) with the per-layer error report.
 * The source is only read; the output is written atomically.
 */
import { basename } from 'node:path';
import type { CompressOptionsDto, CompressReportDto, LayerErrorDto } from '../../protocol/compress';
import { ARTIFACT_SUFFIX, artifactPathFor } from '../../protocol/paths';
import { fileSize, withCheckpoint } from '../formats/sourceSize';
import { BadInputError, throwIfAborted } from '../io/errors';
import { sha256File } from '../io/hash';
import { refuseOutputOverInputs, withReadLedger } from '../io/outputGuard';
import { classifyTensor } from '../nern/budget';
import { convLayoutFor } from '../nern/tiling';
import type { VerbatimInput } from '../nern/artifact';
import { DTYPE_BYTES, encodeValues, type DType } from '../tensors/dtype';
import { readTensorValues, type TensorEntry } from '../tensors/tensor';
import { storedDtypeFor, writeBaselineArtifact, type BaselineMeta, type BaselineTensorMeta } from './artifact';
import {
  compressTensors,
  decodeTensor,
  matrixView,
  storedBytes,
  type BaselineInput,
  type BaselineMethod,
} from './methods';

/** Header bytes set aside from a `bytes` budget: length prefix, header skeleton and ~300 bytes per tensor entry. */
function headerAllowance(tensorCount: number): number {
  return 8 + 4096 + 300 * tensorCount;
}

/** Default output of a baseline: `<stem>.<method>.safetensors` beside the source. */
export function baselinePathFor(source: string, method: BaselineMethod): string {
  const nern = artifactPathFor(source);
  return `${nern.slice(0, nern.length - ARTIFACT_SUFFIX.length)}.${method}.safetensors`;
}

/** A tensor's values streamed chunk by chunk, encoded as `dtype` (its stored bytes, little-endian). */
export async function* encodedStream(
  entry: TensorEntry,
  dtype: DType,
  signal?: AbortSignal,
): AsyncIterable<Uint8Array> {
  for await (const chunk of entry.values(signal ? { signal } : {})) yield encodeValues(dtype, chunk);
}

/** Per-layer reconstruction error (float64 sums): RMSE and ‖Ŵ − W‖ / ‖W‖, and the two sums for totals. */
export function layerError(
  name: string,
  shape: readonly number[],
  original: Float32Array,
  recon: Float32Array,
): LayerErrorDto & { se: number; ss: number } {
  let se = 0;
  let ss = 0;
  for (let i = 0; i < original.length; i++) {
    const t = original[i] ?? 0;
    const d = (recon[i] ?? 0) - t;
    se += d * d;
    ss += t * t;
  }
  const n = Math.max(1, original.length);
  return {
    name,
    shape: [...shape],
    params: original.length,
    rmse: Math.sqrt(se / n),
    relativeError: ss > 0 ? Math.sqrt(se / ss) : 0,
    se,
    ss,
  };
}

/**
 * Compresses the checkpoint at `path` with baseline `method` into a baseline artifact (default
 * `<stem>.<method>.safetensors`). The budget sizes lowrank and prune: a fraction of the represented weights'
 * float32 bytes, or an artifact size in bytes; int8 and int4 have a fixed size and ignore it. A width budget is
 * refused. Deterministic: the same options give a byte-identical artifact.
 */
export function compressBaseline(
  path: string,
  method: BaselineMethod,
  options: CompressOptionsDto,
  signal?: AbortSignal,
): Promise<CompressReportDto> {
  return withReadLedger(async () => {
    throwIfAborted(signal);
    const started = performance.now();
    const out = options.out ?? baselinePathFor(path, method);
    await refuseOutputOverInputs(out, [path], 'The artifact');
    const budget = options.budget;
    if ((method === 'lowrank' || method === 'prune') && budget.kind === 'hidden')
      throw new BadInputError(`The ${method} method is sized by --size or --size-bytes, not by a predictor width.`, {
        option: 'budget',
      });
    return withCheckpoint(path, signal, async (checkpoint, sourceBytes) => {
      const layout = convLayoutFor(checkpoint.format);
      const classes = checkpoint.tensors.map((t) => classifyTensor(t, options.represent, layout));
      const inputs: BaselineInput[] = [];
      const verbatim: VerbatimInput[] = [];
      const list: BaselineTensorMeta[] = [];
      let verbatimBytes = 0;
      let verbatimParams = 0;
      for (const [i, entry] of checkpoint.tensors.entries()) {
        const c = classes[i];
        if (entry.notDecodedReason !== undefined)
          throw new BadInputError(
            `Tensor ${JSON.stringify(entry.name)} (${entry.dtype}) cannot be decoded (${entry.notDecodedReason}), so it cannot be stored in an artifact.`,
          );
        if (c?.represented) {
          const channelLast = c.tile.kind === 'conv' && c.tile.layout === 'hwio';
          inputs.push({
            name: entry.name,
            shape: entry.shape,
            view: matrixView(entry.shape, channelLast),
            values: await readTensorValues(entry, signal ? { signal } : {}),
          });
          continue;
        }
        const storedDtype = storedDtypeFor(entry.dtype);
        verbatimBytes += entry.params * DTYPE_BYTES[storedDtype];
        verbatimParams += entry.params;
        verbatim.push({
          name: entry.name,
          dtype: storedDtype,
          shape: entry.shape,
          data: encodedStream(entry, storedDtype, signal),
        });
      }
      if (inputs.length === 0)
        throw new BadInputError(
          options.represent.dense
            ? 'This checkpoint has no float tensor of rank 2–4 with at least 1,024 parameters to compress.'
            : 'This checkpoint has no 3×3 or 1×1 convolution with at least 1,024 parameters to compress; enable dense tiling to compress matrices.',
        );
      const representedParams = inputs.reduce((s, t) => s + t.values.length, 0);
      const budgetBytes =
        budget.kind === 'fraction'
          ? Math.floor(budget.fraction * representedParams * 4)
          : budget.kind === 'bytes'
            ? budget.bytes - verbatimBytes - headerAllowance(checkpoint.tensors.length * 2)
            : Infinity;
      if (method === 'lowrank' || method === 'prune') {
        if (!(budgetBytes > 0))
          throw new BadInputError(
            `An artifact of ${budget.kind === 'bytes' ? budget.bytes : 0} bytes leaves no room for the compressed weights (the verbatim tensors alone take ${verbatimBytes} bytes): choose a larger size.`,
            { option: 'budget' },
          );
      }
      throwIfAborted(signal);
      const compressed = compressTensors(method, inputs, budgetBytes);
      const errors = compressed.map((t, i) => {
        const parts = new Map(t.parts.map((p) => [p.suffix, p.data]));
        const original = inputs[i]?.values ?? new Float32Array(0);
        return layerError(t.name, t.shape, original, decodeTensor(t.form, parts));
      });
      const formOf = new Map(compressed.map((t) => [t.name, t.form]));
      for (const [i, entry] of checkpoint.tensors.entries()) {
        const form = formOf.get(entry.name);
        const c = classes[i];
        if (form !== undefined) {
          list.push({ name: entry.name, dtype: entry.dtype, shape: [...entry.shape], stored: 'represented', form });
        } else {
          list.push({
            name: entry.name,
            dtype: entry.dtype,
            shape: [...entry.shape],
            stored: 'verbatim',
            storedDtype: storedDtypeFor(entry.dtype),
            reason: c && !c.represented ? c.reason : '',
          });
        }
      }
      const se = errors.reduce((s, e) => s + e.se, 0);
      const ss = errors.reduce((s, e) => s + e.ss, 0);
      const n = Math.max(1, representedParams);
      const rmse = Math.sqrt(se / n);
      const weightRms = Math.sqrt(ss / n);
      const layers: LayerErrorDto[] = errors.map(({ name, shape, params, rmse: r, relativeError }) => ({
        name,
        shape,
        params,
        rmse: r,
        relativeError,
      }));
      const meta: BaselineMeta = {
        format: 'weight-lens-baseline',
        version: 1,
        method,
        tensors: list,
        source: {
          name: basename(path),
          format: checkpoint.format,
          bytes: sourceBytes,
          sha256: await sha256File(path, signal),
        },
        report: {
          representedParams,
          verbatimParams,
          storedBytes: storedBytes(compressed),
          rmse,
          weightRms,
          layers,
        },
      };
      await refuseOutputOverInputs(out, [path], 'The artifact');
      await writeBaselineArtifact(out, meta, compressed, verbatim, signal);
      const artifactBytes = await fileSize(out);
      return {
        source: path,
        artifact: out,
        predictorParams: 0,
        representedParams,
        verbatimParams,
        ratio: sourceBytes / artifactBytes,
        artifactBytes,
        sourceBytes,
        steps: 0,
        seconds: (performance.now() - started) / 1000,
        backend: method,
        method,
        hidden: 0,
        permutation: options.permutation,
        rmse,
        relativeError: weightRms > 0 ? rmse / weightRms : 0,
        layers,
        lossCurve: [],
      };
    });
  });
}
