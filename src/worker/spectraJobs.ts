/**
 * Spectral-diagnostics handlers of the engine worker: `spectra/start` streams `spectra/planned`, `spectra/progress`
 * and `spectra/layer` events over src/core/jobs/spectra.ts; `spectra/artifactLayer` only answers. Failures and
 * cancellation are reported by worker.ts.
 */
import { artifactLayerSpectra, spectraOfFile } from '../core/jobs/spectra';
import type { EngineCallKind } from '../protocol/engine';
import type { EngineHandlers } from './handlers';

/** The spectra request kinds. */
type SpectraCallKind = Extract<EngineCallKind, `spectra/${string}`>;

/** Handlers of the spectra requests. */
export const spectraHandlers: EngineHandlers<SpectraCallKind> = {
  'spectra/start': (params, job) =>
    spectraOfFile(params.path, params.options, {
      signal: job.signal,
      onPlan: (layers, skipped) => {
        job.emit({ kind: 'spectra/planned', layers, skipped });
      },
      onProgress: (progress) => {
        job.emit({ kind: 'spectra/progress', progress });
      },
      onLayer: (index, layer) => {
        job.emit({ kind: 'spectra/layer', index, layer });
      },
    }),
  'spectra/artifactLayer': (params, job) =>
    artifactLayerSpectra(params.artifact, params.layer, params.options, {
      signal: job.signal,
      backend: job.backend,
      ...(params.source !== undefined ? { source: params.source } : {}),
    }),
};
