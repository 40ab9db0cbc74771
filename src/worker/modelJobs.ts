/**
 * Handlers of the engine worker that run networks: `eval/start` → src/core/jobs/evaluate.ts (streaming throttled
 * `eval/progress`), `distill/start` → src/core/jobs/distill.ts (streaming `distill/status`, `distill/progress`,
 * `distill/eval` and `distill/drift`), `sweep/start` → src/core/jobs/sweep.ts (throttled `sweep/progress`, every
 * `sweep/row`). Failures and cancellation are reported by worker.ts; the tfjs backend is
 * initialised once per worker by the core.
 */
import { distillArtifact } from '../core/jobs/distill';
import { evaluateModel } from '../core/jobs/evaluate';
import { sweepMethods } from '../core/jobs/sweep';
import type { EngineHandlers } from './handlers';

/** Least time between two `eval/progress` events, ms (the last one is always sent). */
const EVAL_PROGRESS_MS = 200;

/** Handlers of the requests that run networks. */
export const modelHandlers: EngineHandlers<'eval/start' | 'distill/start' | 'sweep/start'> = {
  'eval/start': (params, job) => {
    let last = 0;
    let engine: { engine?: string; engineReason?: string } = {};
    return evaluateModel(
      params.model,
      params.data,
      { backend: job.backend, ...params.options },
      {
        signal: job.signal,
        onEngine: (e) => {
          engine = { engine: e.label, ...(e.reason !== undefined ? { engineReason: e.reason } : {}) };
          job.emit({ kind: 'eval/progress', done: 0, total: 0, ...engine });
        },
        onProgress: (done, total) => {
          const now = performance.now();
          if (now - last < EVAL_PROGRESS_MS && done < total) return;
          last = now;
          job.emit({ kind: 'eval/progress', done, total, ...engine });
        },
      },
    );
  },
  'distill/start': (params, job) => {
    const backend = params.options.backend === 'auto' ? job.backend : params.options.backend;
    return distillArtifact(
      { artifact: params.artifact, model: params.model, data: params.data, options: { ...params.options, backend } },
      {
        signal: job.signal,
        stop: job.stop,
        onStatus: (message) => {
          job.emit({ kind: 'distill/status', message });
        },
        onProgress: (progress) => {
          job.emit({ kind: 'distill/progress', progress });
        },
        onEval: (evaluation) => {
          job.emit({ kind: 'distill/eval', evaluation });
        },
        onDrift: (drift) => {
          job.emit({ kind: 'distill/drift', drift });
        },
      },
    );
  },
  'sweep/start': (params, job) => {
    let last = 0;
    const backend = params.compress.backend === 'auto' ? job.backend : params.compress.backend;
    return sweepMethods(
      { ...params, compress: { ...params.compress, backend } },
      {
        signal: job.signal,
        onProgress: (progress) => {
          const now = performance.now();
          if (now - last < EVAL_PROGRESS_MS && progress.fraction > 0 && progress.fraction < 1) return;
          last = now;
          job.emit({ kind: 'sweep/progress', progress });
        },
        onRow: (row) => {
          job.emit({ kind: 'sweep/row', row });
        },
      },
    );
  },
};
