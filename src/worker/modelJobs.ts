/**
 * Jobs that run networks inside the engine worker: `run/eval` → src/core/jobs/evaluate.ts, `run/distill` →
 * src/core/jobs/distill.ts, streaming their progress back as `RunEvent`s. Failures and cancellation are reported by the
 * caller (worker.ts) as `failed` events; the tfjs backend is initialised once per worker by the core.
 */
import { distillArtifact } from '../core/jobs/distill';
import { evaluateModel } from '../core/jobs/evaluate';
import type { BackendName } from '../protocol/compress';
import type { RunEvent, RunRequest, WorkerEvent } from '../protocol/engine';

const KINDS: ReadonlySet<string> = new Set(['run/eval', 'run/distill']);

/** True if `message` is a request that runs a network. */
export function isRunRequest(message: { kind: string }): message is RunRequest {
  return KINDS.has(message.kind);
}

/** Runs one request to completion, posting its events; rejects with the job's error (CancelledError on abort). */
export async function runRunJob(request: RunRequest, signal: AbortSignal, post: (event: RunEvent | WorkerEvent) => void, defaultBackend: BackendName): Promise<void> {
  const { id } = request;
  switch (request.kind) {
    case 'run/eval': {
      let last = 0;
      const report = await evaluateModel(request.model, request.data, { backend: defaultBackend, ...request.options }, {
        signal,
        onProgress: (done, total) => {
          const now = performance.now();
          if (now - last < 200 && done < total) return;
          last = now;
          post({ kind: 'eval/progress', id, done, total });
        },
      });
      post({ kind: 'eval/done', id, report });
      return;
    }
    case 'run/distill': {
      const report = await distillArtifact(
        { artifact: request.artifact, model: request.model, data: request.data, options: { ...request.options, backend: request.options.backend === 'auto' ? defaultBackend : request.options.backend } },
        {
          signal,
          onStatus: (message) => { post({ kind: 'distill/status', id, message }); },
          onProgress: (progress) => { post({ kind: 'distill/progress', id, progress }); },
          onEval: (evaluation) => { post({ kind: 'distill/eval', id, evaluation }); },
          onDrift: (drift) => { post({ kind: 'distill/drift', id, drift }); },
        },
      );
      post({ kind: 'distill/done', id, report });
      return;
    }
  }
}
