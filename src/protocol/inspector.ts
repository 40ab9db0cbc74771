/**
 * Messages between the extension host and the Inspector webview (the custom editor that shows one checkpoint's
 * tensors). Plain types only.
 */
import type { FailureReason } from './common';
import type { CheckpointHeaderDto, HistogramDto, TensorStatsDto } from './inspect';

/** One streamed per-tensor result as forwarded to the Inspector: statistics, or why they could not be computed. */
export type InspectorTensorUpdate =
  | { kind: 'inspector/tensorStats'; index: number; stats: TensorStatsDto; histogram: HistogramDto }
  | { kind: 'inspector/tensorError'; index: number; message: string };

/**
 * Messages the host sends to the Inspector webview. `inspector/loading` resets the view (open or reload);
 * `inspector/header` replaces the whole tensor list; `inspector/batch` carries several per-tensor updates at once
 * (the host batches streamed results, and re-sends its state in batches when the webview reloads).
 */
export type InspectorInbound =
  | { kind: 'inspector/loading'; file: string }
  | { kind: 'inspector/header'; header: CheckpointHeaderDto }
  | InspectorTensorUpdate
  | { kind: 'inspector/batch'; updates: InspectorTensorUpdate[] }
  | { kind: 'inspector/done'; seconds: number }
  | { kind: 'inspector/failed'; reason: FailureReason; message: string }
  | { kind: 'inspector/fileChanged'; deleted: boolean };

/** Messages the Inspector webview sends to the host. */
export type InspectorOutbound =
  | { kind: 'inspector/ready' }
  | { kind: 'inspector/reload' }
  | { kind: 'inspector/command'; command: string };
