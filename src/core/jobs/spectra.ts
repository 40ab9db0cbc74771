/**
 * The spectra job: WeightWatcher's spectral diagnostics (src/core/analysis/spectra.ts) for every 2-D matrix and 4-D
 * convolution of a checkpoint, one layer at a time (one tensor's values in memory at once), with progress within
 * each layer and cancellation between iterations of its decomposition. Also the original-vs-reconstructed spectra of
 * one layer of an artifact, for the Reconstruction panel. Shared by the worker and the CLI.
 */
import type {
  LayerSpectrumDto,
  SkippedLayerDto,
  SpectraComparisonDto,
  SpectraEngineName,
  SpectraOptionsDto,
  SpectraProgressDto,
  SpectraReportDto,
} from '../../protocol/spectra';
import { availableParallelism } from 'node:os';
import { firstLine, loadOnnxRuntime } from '../backend/onnxRuntime';
import { NativeSingularValues } from '../analysis/nativeLinalg';
import { layerSpectrum, matrixPlan, planProblem } from '../analysis/spectra';
import { withCheckpoint } from '../formats/sourceSize';
import { BadInputError, throwIfAborted } from '../io/errors';
import { convLayoutFor } from '../nern/tiling';
import { readTensorValues, type TensorEntry } from '../tensors/tensor';
import { artifactLayerValues, type ArtifactDetailOptions } from './artifactDetail';

/** Most elements of one tensor analysed (64 Mi: 256 MB as float32, plus its Gram matrix); larger ones are skipped. */
export const MAX_SPECTRUM_ELEMENTS = 64 * 1024 * 1024;

/** Least time between two progress callbacks of one layer, in milliseconds. */
const PROGRESS_INTERVAL_MS = 100;

/** Callbacks of a spectral analysis. */
export interface SpectraCallbacks {
  signal?: AbortSignal;
  /** Once the tensors to analyse are known: their names, in order, and the tensors skipped with reasons. */
  onPlan?(layers: string[], skipped: SkippedLayerDto[]): void;
  /** Throttled progress within the current layer. */
  onProgress?(progress: SpectraProgressDto): void;
  /** Each layer's result, as it completes, in order. */
  onLayer?(index: number, layer: LayerSpectrumDto): void;
}

/** Checks options a caller (CLI, host) passed; throws a BadInputError naming the option. */
export function checkSpectraOptions(options: SpectraOptionsDto): void {
  if (!Number.isSafeInteger(options.maxRank) || options.maxRank < 0)
    throw new BadInputError(`The largest exact rank must be a whole number ≥ 0, got ${options.maxRank}.`, {
      option: 'maxRank',
    });
  if (!Number.isSafeInteger(options.bins) || options.bins < 1 || options.bins > 1000)
    throw new BadInputError(`The ESD histogram needs 1–1000 bins, got ${options.bins}.`, { option: 'bins' });
}

/** The engine a spectral analysis runs on: the native route when onnxruntime-node loads, with the reason if not. */
interface SpectraEngine {
  native?: NativeSingularValues;
  engine: SpectraEngineName;
  engineReason?: string;
}

/**
 * Runs `body` with the native route if onnxruntime-node loads and builds its graphs (on all of the machine's
 * threads: the GEMMs are large), else with JavaScript alone and the reason; releases the sessions afterwards.
 */
async function withSpectraEngine<T>(body: (engine: SpectraEngine) => Promise<T>): Promise<T> {
  const loaded = loadOnnxRuntime();
  if (!loaded.ok) return body({ engine: 'javascript', engineReason: loaded.reason });
  let native: NativeSingularValues;
  try {
    native = await NativeSingularValues.create(loaded.ort, availableParallelism());
  } catch (e) {
    return body({ engine: 'javascript', engineReason: `onnxruntime-node could not build the graphs: ${firstLine(e)}` });
  }
  try {
    return await body({ native, engine: 'onnxruntime' });
  } finally {
    await native.release();
  }
}

/** The reason `entry` is not analysed, or undefined. */
function skipReason(entry: TensorEntry, format: string): string | undefined {
  if (entry.notDecodedReason !== undefined) return `not decoded (${entry.notDecodedReason})`;
  const plan = matrixPlan(entry.shape, convLayoutFor(format));
  if (typeof plan === 'string') return plan;
  const problem = planProblem(plan);
  if (problem !== undefined) return problem;
  if (entry.params > MAX_SPECTRUM_ELEMENTS)
    return `${entry.params} elements, over the ${MAX_SPECTRUM_ELEMENTS} analysed at once`;
  return undefined;
}

/**
 * Spectra of every 2-D matrix and 4-D convolution of the checkpoint at `path` (or of `options.layers` only, each of
 * which must exist), in file order; tensors of other ranks, too few eigenvalues or undecoded dtypes are listed as
 * skipped with a reason (1-D tensors silently: they have no spectrum). Resolves to the whole report.
 */
export async function spectraOfFile(
  path: string,
  options: SpectraOptionsDto,
  callbacks: SpectraCallbacks = {},
): Promise<SpectraReportDto> {
  checkSpectraOptions(options);
  const { signal } = callbacks;
  const started = performance.now();
  return withCheckpoint(path, signal, (checkpoint) =>
    withSpectraEngine(async ({ native, ...engine }) => {
      const wanted = options.layers ? new Set(options.layers) : undefined;
      if (wanted) {
        const names = new Set(checkpoint.tensors.map((t) => t.name));
        const missing = [...wanted].filter((n) => !names.has(n));
        if (missing.length > 0)
          throw new BadInputError(`The checkpoint has no tensor ${JSON.stringify(missing[0])}.`, { option: 'layers' });
      }
      const todo: TensorEntry[] = [];
      const skipped: SkippedLayerDto[] = [];
      for (const t of checkpoint.tensors) {
        if (wanted && !wanted.has(t.name)) continue;
        if (!wanted && t.shape.length < 2) continue;
        const reason = skipReason(t, checkpoint.format);
        if (reason === undefined) todo.push(t);
        else skipped.push({ name: t.name, shape: [...t.shape], reason });
      }
      callbacks.onPlan?.(
        todo.map((t) => t.name),
        skipped,
      );
      const layout = convLayoutFor(checkpoint.format);
      const layers: LayerSpectrumDto[] = [];
      for (const [index, entry] of todo.entries()) {
        throwIfAborted(signal);
        let last = 0;
        const report = (fraction: number, force = false): void => {
          const now = performance.now();
          if (!force && now - last < PROGRESS_INTERVAL_MS) return;
          last = now;
          callbacks.onProgress?.({ index, total: todo.length, name: entry.name, fraction });
        };
        report(0, true);
        const values = await readTensorValues(entry, {
          maxElements: MAX_SPECTRUM_ELEMENTS,
          ...(signal ? { signal } : {}),
        });
        const layer = await layerSpectrum(entry.name, entry.shape, values, layout, {
          maxRank: options.maxRank,
          bins: options.bins,
          ...(options.includeValues ? { includeValues: true } : {}),
          ...(signal ? { signal } : {}),
          onFraction: report,
          ...(native ? { native } : {}),
        });
        layers.push(layer);
        callbacks.onLayer?.(index, layer);
      }
      return {
        file: path,
        format: checkpoint.format,
        layers,
        skipped,
        options: { ...options },
        seconds: (performance.now() - started) / 1000,
        ...engine,
      };
    }),
  );
}

/**
 * The spectra of the represented layer `layer` of the artifact at `artifact`: the original (from the unchanged
 * source checkpoint beside it, or `detail.source`) and the reconstruction, with the same options, so a flattened
 * spectral tail shows. A BadInputError when the layer is not a matrix or convolution with a spectrum.
 */
export async function artifactLayerSpectra(
  artifact: string,
  layer: string,
  options: SpectraOptionsDto,
  detail: ArtifactDetailOptions = {},
): Promise<SpectraComparisonDto> {
  checkSpectraOptions(options);
  const { shape, layout, original, recon } = await artifactLayerValues(artifact, layer, detail);
  const plan = matrixPlan(shape, layout);
  const problem = typeof plan === 'string' ? plan : planProblem(plan);
  if (problem !== undefined) throw new BadInputError(`Layer ${JSON.stringify(layer)} has no spectrum: ${problem}.`);
  return withSpectraEngine(async ({ native }) => {
    const common = {
      maxRank: options.maxRank,
      bins: options.bins,
      ...(detail.signal ? { signal: detail.signal } : {}),
      ...(native ? { native } : {}),
    };
    return {
      layer,
      original: await layerSpectrum(layer, shape, original, layout, common),
      reconstructed: await layerSpectrum(layer, shape, recon, layout, common),
    };
  });
}
