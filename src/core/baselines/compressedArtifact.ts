/**
 * One door to every compression artifact: a NeRN artifact (src/core/nern/artifact.ts) or a baseline artifact
 * (artifact.ts here) opens as the same `CompressedArtifact`: the original tensor list, the reconstruction of every
 * compressed tensor in its original layout, and the verbatim tensors' bytes. Decompression and evaluation read
 * artifacts through it, so neither needs to know which method wrote the file.
 */
import { FileByteSource } from '../io/byteSource';
import { parseJsonBounded } from '../io/json';
import { LIMITS } from '../io/limits';
import { readArtifact, readHeader, verbatimDecodedDtype } from '../nern/artifact';
import { reconstructLayer } from '../nern/kernelMap';
import { decodeLayers, type EngineGridOptions } from '../nern/nativeForward';
import { fromKernels } from '../nern/tiling';
import type { DType } from '../tensors/dtype';
import { ARTIFACT_KEY, type ArtifactSource } from '../../protocol/artifact';
import type { BackendName, CompressMethod } from '../../protocol/vocabulary';
import { BASELINE_FORMAT, readBaselineArtifact } from './artifact';

/** How a NeRN artifact's predictor is run to reconstruct every represented tensor. */
export interface ReconstructionOptions extends EngineGridOptions {
  /** The backend choice (default 'auto'): a native device, or a TensorFlow.js backend. */
  backend?: BackendName;
}

/** One tensor of the original checkpoint as an artifact lists it. */
export interface CompressedTensorInfo {
  name: string;
  /** Original dtype. */
  dtype: string;
  shape: number[];
  stored: 'represented' | 'verbatim';
  /**
   * Verbatim tensors: the dtype of the bytes `verbatimBytes` yields (the stored dtype, or the original dtype of a
   * tensor the artifact stores narrowed to f16 or int8, which `verbatimBytes` widens back).
   */
  storedDtype?: DType;
}

/** An opened, validated artifact of any method. Call `close()` when done. */
export interface CompressedArtifact {
  path: string;
  /** Which method wrote it. */
  method: CompressMethod;
  source: ArtifactSource;
  /** Size of the file in bytes. */
  bytes: number;
  /** Every original tensor, in the original order. */
  tensors: CompressedTensorInfo[];
  /**
   * The float32 reconstruction of every represented tensor, by name, in its original layout. A NeRN artifact runs
   * its predictor over every grid row: on the native engine where `options.backend` (default 'auto') allows it and
   * onnxruntime-node loads, else on TensorFlow.js; `options.onEngine` is told which, with progress and cancel between
   * chunks of rows. A baseline decodes on the CPU and ignores the options.
   */
  reconstruction(options?: ReconstructionOptions): Promise<Map<string, Float32Array>>;
  /**
   * The float32 reconstruction of the one represented tensor `name`, in its original layout (undefined when `name`
   * is not represented): only that tensor is decoded, so a caller going tensor by tensor holds one at a time. A NeRN
   * artifact predicts only that layer's kernels (the values of `reconstruction()` up to float rounding) and needs an
   * initialised tfjs backend.
   */
  reconstructTensor(name: string): Promise<Float32Array | undefined>;
  /** Streams a verbatim tensor's bytes (in `storedDtype`: decoded back to the original dtype when narrowed). */
  verbatimBytes(name: string, signal?: AbortSignal): AsyncIterable<Uint8Array>;
  close(): Promise<void>;
}

/** Whether the safetensors file at `path` carries baseline-artifact metadata (format `weight-lens-baseline`). */
export async function isBaselineArtifact(path: string): Promise<boolean> {
  const source = await FileByteSource.open(path);
  try {
    const { metadata } = await readHeader(source, path);
    const json = Object.hasOwn(metadata, ARTIFACT_KEY) ? metadata[ARTIFACT_KEY] : undefined;
    if (json === undefined) return false;
    const parsed = parseJsonBounded(json, LIMITS.maxHeaderJsonDepth);
    return (
      parsed.ok &&
      typeof parsed.value === 'object' &&
      parsed.value !== null &&
      (parsed.value as Record<string, unknown>).format === BASELINE_FORMAT
    );
  } finally {
    await source.close();
  }
}

/**
 * Opens the artifact at `path`, whichever method wrote it, validating it fully. Throws `CheckpointFormatError` (one
 * sentence) for a damaged, tampered or hostile file.
 */
export async function openCompressedArtifact(path: string): Promise<CompressedArtifact> {
  if (await isBaselineArtifact(path)) {
    const b = await readBaselineArtifact(path);
    return {
      path,
      method: b.meta.method,
      source: b.meta.source,
      bytes: b.bytes,
      tensors: b.meta.tensors.map((t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: [...t.shape],
        stored: t.stored,
        ...(t.stored === 'verbatim' ? { storedDtype: t.storedDtype } : {}),
      })),
      reconstruction: () => b.reconstruction(),
      reconstructTensor: (name) => b.reconstructTensor(name),
      verbatimBytes: (name, signal) => b.verbatimBytes(name, signal),
      close: () => b.close(),
    };
  }
  const a = await readArtifact(path);
  return {
    path,
    method: 'nern',
    source: a.meta.source,
    bytes: a.bytes,
    tensors: a.meta.tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: [...t.shape],
      stored: t.stored,
      ...(t.stored === 'verbatim' ? { storedDtype: verbatimDecodedDtype(t) } : {}),
    })),
    reconstruction: async (options = {}) => {
      const { backend = 'auto', ...grid } = options;
      const { layers } = await decodeLayers(a.predictor, a.kernelMap, backend, grid);
      return new Map(
        a.meta.layers.map((l, i) => [l.name, fromKernels(layers[i] ?? new Float32Array(0), l.tile, l.shape)]),
      );
    },
    reconstructTensor: (name) => {
      const l = a.meta.layers.findIndex((layer) => layer.name === name);
      const layer = a.meta.layers[l];
      if (layer === undefined) return Promise.resolve(undefined);
      return Promise.resolve(fromKernels(reconstructLayer(a.predictor, a.kernelMap, l), layer.tile, layer.shape));
    },
    verbatimBytes: (name, signal) => a.verbatimBytes(name, signal),
    close: () => a.close(),
  };
}
