/**
 * Export handlers of the engine worker: `convert/start` streams `convert/progress` before each tensor is written over
 * src/core/jobs/convert.ts; `convert/attachment` streams `convert/attachmentProgress` over
 * src/core/jobs/netronAttachment.ts. Failures and cancellation are reported by worker.ts.
 */
import { convertFile } from '../core/jobs/convert';
import { writeNetronAttachment } from '../core/jobs/netronAttachment';
import type { EngineCallKind } from '../protocol/engine';
import type { EngineHandlers } from './handlers';

/** The export request kinds. */
type ExportCallKind = Extract<EngineCallKind, `convert/${string}`>;

/** Handlers of the export requests. */
export const exportHandlers: EngineHandlers<ExportCallKind> = {
  'convert/start': (params, job) =>
    convertFile(params.path, params.out, {
      signal: job.signal,
      skipUndecoded: params.skipUndecoded === true,
      onTensor: (index, total, name) => {
        job.emit({ kind: 'convert/progress', progress: { index, total, name } });
      },
    }),
  'convert/attachment': (params, job) =>
    writeNetronAttachment(params.path, params.options, {
      signal: job.signal,
      onProgress: (progress) => {
        job.emit({ kind: 'convert/attachmentProgress', progress });
      },
    }),
};
