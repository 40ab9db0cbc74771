/**
 * The convert job: every tensor of a checkpoint in any supported format, written as one safetensors file or one
 * NumPy `.npz` archive, tensor by tensor (one chunk of one tensor in memory at a time) and atomically. A tensor keeps
 * its dtype where the output can hold it; quantised ones (GGUF blocks, TF.js uint8/uint16) are dequantised to F32.
 * Shared by the worker and the CLI.
 */
import { stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { NPY_DESCR, writeNpz, type NpyDType } from '../containers/npzWriter';
import { writeSafetensors } from '../formats/safetensors';
import { withCheckpoint } from '../formats/sourceSize';
import { BadInputError } from '../io/errors';
import { DTYPE_BYTES, encodeValues, isDType, type DType } from '../tensors/dtype';
import type { TensorEntry } from '../tensors/tensor';
import type { ConvertedDtypeDto, ConvertReportDto } from '../../protocol/convert';

/** The containers `convert` writes, chosen by the output's extension. */
export type ConvertTarget = 'safetensors' | 'npz';

/** One tensor whose dtype the output could not keep (`ConvertedDtypeDto` with the dtype typed). */
export interface ConvertedDtype extends ConvertedDtypeDto {
  /** The dtype written. */
  readonly to: DType;
}

/** What a conversion wrote (`ConvertReportDto`, src/protocol/convert.ts, with the dtypes typed). */
export interface ConvertReport extends ConvertReportDto {
  readonly target: ConvertTarget;
  /** Tensors written in another dtype than the source's, in file order. */
  readonly changed: readonly ConvertedDtype[];
}

/** Callbacks of a conversion. */
export interface ConvertCallbacks {
  readonly signal?: AbortSignal;
  /** Leave out tensors whose values cannot be decoded (TF.js strings, unsupported GGUF types) instead of failing. */
  readonly skipUndecoded?: boolean;
  /** Before each tensor is written: its 0-based index, the count, and its name. */
  onTensor?(index: number, total: number, name: string): void;
}

/** The container for an output path by its extension; a BadInputError for any other. */
export function convertTargetFor(output: string): ConvertTarget {
  const ext = extname(output).toLowerCase();
  if (ext === '.safetensors') return 'safetensors';
  if (ext === '.npz') return 'npz';
  throw new BadInputError(`The output must end in .safetensors or .npz, not ${JSON.stringify(output)}.`);
}

/** The dtype `entry` is written in for `target`, and whether that dequantises it. */
export function outputDtype(entry: TensorEntry, target: ConvertTarget): { dtype: DType; dequantized: boolean } {
  if (!isDType(entry.dtype)) return { dtype: 'F32', dequantized: true };
  if (target === 'npz' && !Object.hasOwn(NPY_DESCR, entry.dtype)) return { dtype: 'F32', dequantized: false };
  return { dtype: entry.dtype, dequantized: false };
}

async function* encodedBytes(entry: TensorEntry, dtype: DType, signal?: AbortSignal): AsyncIterable<Uint8Array> {
  for await (const chunk of entry.values(signal ? { signal } : {})) yield encodeValues(dtype, chunk);
}

/** Throws a BadInputError when `output` is `input` itself (by path or by file identity: a hard link counts). */
export async function refuseSameFile(input: string, output: string): Promise<void> {
  if (resolve(input) === resolve(output))
    throw new BadInputError(`The output ${output} is the input itself; choose another path.`);
  const [a, b] = await Promise.all([stat(input).catch(() => undefined), stat(output).catch(() => undefined)]);
  if (a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino)
    throw new BadInputError(`The output ${output} is the input itself; choose another path.`);
}

/**
 * Converts the checkpoint at `input` into `output` (`.safetensors` or `.npz`). Every tensor is written under its
 * name, shape and, where the output can hold it, dtype; values are bit-exact except where the report lists a change
 * (and NaN payloads and 64-bit integers beyond 2^53). Fails with a BadInputError, before anything is written, when
 * `output` is the input, has another extension, or a tensor cannot be decoded; a failure at any point leaves no
 * output and no temporary file.
 */
export async function convertFile(
  input: string,
  output: string,
  callbacks: ConvertCallbacks = {},
): Promise<ConvertReport> {
  const started = performance.now();
  const target = convertTargetFor(output);
  await refuseSameFile(input, output);
  const { signal } = callbacks;
  return withCheckpoint(input, signal, async (checkpoint) => {
    const undecoded = checkpoint.tensors.find((t) => t.notDecodedReason !== undefined);
    if (undecoded !== undefined && callbacks.skipUndecoded !== true)
      throw new BadInputError(
        `Tensor ${JSON.stringify(undecoded.name)} (${undecoded.dtype}) cannot be decoded (${undecoded.notDecodedReason ?? ''}), so the checkpoint cannot be converted whole; leave such tensors out explicitly to convert the rest.`,
      );
    const skipped = checkpoint.tensors
      .filter((t) => t.notDecodedReason !== undefined)
      .map((t) => ({ name: t.name, dtype: t.dtype, reason: t.notDecodedReason ?? '' }));
    const plan = checkpoint.tensors
      .filter((t) => t.notDecodedReason === undefined)
      .map((entry) => ({ entry, ...outputDtype(entry, target) }));
    const total = plan.length;
    const changed: ConvertedDtype[] = plan
      .filter((p) => p.dtype !== p.entry.dtype)
      .map((p) => ({ name: p.entry.name, from: p.entry.dtype, to: p.dtype, dequantized: p.dequantized }));
    const announce = (index: number, name: string): void => callbacks.onTensor?.(index, total, name);
    if (target === 'safetensors') {
      await writeSafetensors(
        output,
        plan.map(({ entry, dtype }, index) => ({
          name: entry.name,
          dtype,
          shape: entry.shape,
          data: (async function* () {
            announce(index, entry.name);
            yield* encodedBytes(entry, dtype, signal);
          })(),
        })),
        undefined,
        signal ? { signal } : {},
      );
    } else {
      await writeNpz(
        output,
        plan.map(({ entry, dtype }, index) => ({
          name: entry.name,
          dtype: dtype as NpyDType,
          shape: entry.shape,
          itemBytes: DTYPE_BYTES[dtype],
          data: () => {
            announce(index, entry.name);
            return encodedBytes(entry, dtype, signal);
          },
        })),
        signal ? { signal } : {},
      );
    }
    return {
      input,
      output,
      format: checkpoint.format,
      target,
      tensors: total,
      params: plan.reduce((n, p) => n + p.entry.params, 0),
      bytes: plan.reduce((n, p) => n + p.entry.params * DTYPE_BYTES[p.dtype], 0),
      changed,
      skipped,
      seconds: (performance.now() - started) / 1000,
    };
  });
}
