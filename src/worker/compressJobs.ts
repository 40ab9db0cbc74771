/**
 * Compression jobs inside the engine worker: turns `compress/*` requests into calls to src/core/jobs/compress.ts and streams
 * their results back as `CompressEvent`s (`compress/planned`, `compress/progress`, `compress/evaluation`,
 * `compress/done`, `compress/decompressed`, `compress/artifact`, `compress/layerDetail`). Failures and cancellation are reported by the
 * caller (worker.ts) as `failed` events. The tfjs backend is initialised once per worker (see `ensureBackend`).
 */
import { artifactLayerDetail, artifactReport, compressCheckpoint, decompressArtifact, ensureBackend, planCompression } from '../core/jobs/compress';
import type { BackendName } from '../protocol/compress';
import type { CompressEvent, CompressRequest, WorkerEvent } from '../protocol/engine';

const KINDS: ReadonlySet<string> = new Set(['compress/plan', 'compress/start', 'compress/decompress', 'compress/openArtifact', 'compress/detail']);

/** True if `message` is one of the compression requests. */
export function isCompressRequest(message: { kind: string }): message is CompressRequest {
  return KINDS.has(message.kind);
}

/** Runs one compression request to completion, posting its events; rejects with the job's error (CancelledError on abort). */
export async function runCompressJob(
  request: CompressRequest,
  signal: AbortSignal,
  post: (event: CompressEvent | WorkerEvent) => void,
  defaultBackend: BackendName,
): Promise<void> {
  const { id } = request;
  switch (request.kind) {
    case 'compress/plan':
      post({ kind: 'compress/planned', id, plan: await planCompression(request.path, request.options, signal) });
      return;
    case 'compress/start': {
      const report = await compressCheckpoint(request.path, request.options, {
        signal,
        onPlan: (plan) => { post({ kind: 'compress/planned', id, plan }); },
        onBackend: (choice) => {
          if (choice.fallbackReason !== undefined) post({ kind: 'log', level: 'warn', message: `backend ${choice.name}: ${choice.fallbackReason}` });
        },
        onProgress: (progress) => { post({ kind: 'compress/progress', id, progress }); },
        onEvaluation: (evaluation) => { post({ kind: 'compress/evaluation', id, evaluation }); },
      });
      post({ kind: 'compress/done', id, report });
      return;
    }
    case 'compress/decompress': {
      await ensureBackend(defaultBackend);
      const outputs = await decompressArtifact(request.artifact, request.out, { signal, backend: defaultBackend });
      post({ kind: 'compress/decompressed', id, outputs });
      return;
    }
    case 'compress/openArtifact': {
      const { report, plan } = await artifactReport(request.artifact);
      post({ kind: 'compress/artifact', id, report, plan });
      return;
    }
    case 'compress/detail': {
      const detail = await artifactLayerDetail(request.artifact, request.layer, request.filter, undefined, {
        signal,
        backend: defaultBackend,
        ...(request.source !== undefined ? { source: request.source } : {}),
      });
      post({ kind: 'compress/layerDetail', id, detail });
      return;
    }
  }
}
