/**
 * Compression handlers of the engine worker: the `compress/*` requests as calls to src/core/jobs/compress.ts.
 * `compress/start` streams `compress/planned`, `compress/progress` and `compress/evaluation` events; the others only
 * answer. Failures and cancellation are reported by worker.ts. Each job initialises the engine it needs (the tfjs
 * backend once per worker, see `ensureBackend`).
 */
import { artifactLayerDetail, artifactReport } from '../core/jobs/artifactDetail';
import { compressCheckpoint, planCompression } from '../core/jobs/compress';
import { decompressArtifact } from '../core/jobs/decompress';
import type { GridEngine } from '../core/nern/nativeForward';
import type { EngineCallKind } from '../protocol/engine';
import type { EngineHandlers } from './handlers';

/** The compression request kinds. */
type CompressCallKind = Extract<EngineCallKind, `compress/${string}`>;

/** Handlers of the compression requests. */
export const compressHandlers: EngineHandlers<CompressCallKind> = {
  'compress/plan': (params, job) => planCompression(params.path, params.options, job.signal),
  'compress/start': (params, job) => {
    let lastReconstructing = 0;
    return compressCheckpoint(params.path, params.options, {
      signal: job.signal,
      stop: job.stop,
      onPlan: (plan) => {
        job.emit({ kind: 'compress/planned', plan });
      },
      onBackend: (choice) => {
        if (choice.fallbackReason !== undefined) job.log('warn', `backend ${choice.name}: ${choice.fallbackReason}`);
      },
      onProgress: (progress) => {
        job.emit({ kind: 'compress/progress', progress });
      },
      onEvaluation: (evaluation) => {
        job.emit({ kind: 'compress/evaluation', evaluation });
      },
      onReconstruction: (done, total) => {
        // At most four a second, and always the last: a large model has thousands of batches.
        const now = performance.now();
        if (done < total && now - lastReconstructing < 250) return;
        lastReconstructing = now;
        job.emit({ kind: 'compress/reconstructing', done, total });
      },
    });
  },
  'compress/decompress': async (params, job) => {
    let engine: GridEngine | undefined;
    const outputs = await decompressArtifact(params.artifact, params.out, {
      signal: job.signal,
      backend: job.backend,
      onEngine: (e) => {
        engine = e;
      },
    });
    return {
      outputs,
      ...(engine ? { engine: engine.label } : {}),
      ...(engine?.reason !== undefined ? { engineReason: engine.reason } : {}),
    };
  },
  'compress/openArtifact': (params) => artifactReport(params.artifact),
  'compress/detail': (params, job) =>
    artifactLayerDetail(params.artifact, params.layer, params.filter, undefined, {
      signal: job.signal,
      backend: job.backend,
      ...(params.source !== undefined ? { source: params.source } : {}),
    }),
};
