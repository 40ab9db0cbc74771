/**
 * Decompression: an artifact back into a full safetensors checkpoint (every original tensor, name, dtype and shape),
 * written atomically beside the artifact.
 */
import { decompressedPathFor } from '../../protocol/paths';
import { writeSafetensors, type SafetensorsTensorInput } from '../formats/safetensors';
import { BadInputError, throwIfAborted } from '../io/errors';
import { openCompressedArtifact, type ReconstructionOptions } from '../baselines/compressedArtifact';
import { encodeValues } from '../tensors/dtype';
import { isDType } from '../tensors/dtype';
import { refuseOutputOverInputs, withReadLedger } from '../io/outputGuard';

/**
 * Options of `decompressArtifact`: the cancel signal, and how a NeRN artifact's predictor runs (backend, default
 * 'auto': the native engine where it loads; the engine it runs on; rows predicted so far).
 */
export type DecompressOptions = Pick<ReconstructionOptions, 'signal' | 'backend' | 'onEngine' | 'onRows'>;

/**
 * Regenerates the full checkpoint from an artifact and writes it as safetensors (default
 * `<stem>.decompressed.safetensors` beside the artifact): every original tensor, in the original order, with its
 * original name, shape and dtype (represented tensors converted from the float32 reconstruction to F32/F16/BF16/F64;
 * verbatim tensors byte-exact, or F32 where the source dtype has no safetensors name). Resolves to the written paths.
 */
export function decompressArtifact(artifact: string, out?: string, options: DecompressOptions = {}): Promise<string[]> {
  return withReadLedger(() => decompress(artifact, out, options));
}

async function decompress(artifact: string, out: string | undefined, options: DecompressOptions): Promise<string[]> {
  const { signal } = options;
  throwIfAborted(signal);
  const target = out ?? decompressedPathFor(artifact);
  await refuseOutputOverInputs(target, [artifact]);
  const a = await openCompressedArtifact(artifact);
  try {
    // Only a NeRN artifact runs a predictor (natively where it can, else on TensorFlow.js); a baseline decodes on the
    // CPU.
    const recon = await a.reconstruction(options);
    const tensors: SafetensorsTensorInput[] = a.tensors.map((t) => {
      if (t.stored === 'represented') {
        const values = recon.get(t.name);
        if (!values) throw new BadInputError(`${artifact}: represented tensor ${JSON.stringify(t.name)} has no layer.`);
        const dtype = isDType(t.dtype) ? t.dtype : 'F32';
        return { name: t.name, dtype, shape: t.shape, data: encodeValues(dtype, values) };
      }
      return { name: t.name, dtype: t.storedDtype ?? 'F32', shape: t.shape, data: a.verbatimBytes(t.name, signal) };
    });
    await refuseOutputOverInputs(target, [artifact]);
    await writeSafetensors(
      target,
      tensors,
      { format: 'pt', weight_lens_source: a.source.name },
      signal ? { signal } : {},
    );
    return [target];
  } finally {
    await a.close();
  }
}
