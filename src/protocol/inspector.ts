/**
 * Messages between the extension host and the Inspector webview (the custom editor that shows one checkpoint's
 * tensors). The inspection's stream keeps its engine name: the worker's `inspect/header`, `inspect/tensorStats` and
 * `inspect/tensorError` events are forwarded as they are (tensor results in batches), its answer arrives as
 * `inspect/done` and its failure as `inspect/failed`; the Inspector's own messages carry `inspector/`; the Spectra
 * view's stream keeps its `spectra/` names. Plain types only.
 */
import type { FailureReason } from './common';
import type { InspectEvent, SpectraEvent } from './engine';
import type { SpectraOptionsDto } from './spectra';

/** One streamed per-tensor result as forwarded to the Inspector: statistics, or why they could not be computed. */
export type InspectorTensorUpdate = Exclude<InspectEvent, { kind: 'inspect/header' }>;

/**
 * Messages the host sends to the Inspector webview. `inspector/loading` resets the view (open or reload);
 * `inspect/header` replaces the whole tensor list; `inspector/batch` carries several per-tensor updates at once
 * (the host batches streamed results, and re-sends its state in batches when the webview reloads).
 */
export type InspectorInbound =
  | { kind: 'inspector/loading'; file: string }
  | InspectEvent
  | { kind: 'inspector/batch'; updates: InspectorTensorUpdate[] }
  | { kind: 'inspect/done'; seconds: number }
  | { kind: 'inspect/failed'; reason: FailureReason; message: string }
  | { kind: 'inspector/fileChanged'; deleted: boolean }
  | InspectorSpectraInbound;

/**
 * The Spectra view's stream: `spectra/started` when the host starts an analysis (with its options), the worker's
 * `spectra/planned`, `spectra/progress` and `spectra/layer` events as they are, then `spectra/done` or
 * `spectra/failed` (`cancelled` when the user stopped it).
 */
export type InspectorSpectraInbound =
  | { kind: 'spectra/started'; options: SpectraOptionsDto }
  | SpectraEvent
  | { kind: 'spectra/done'; seconds: number }
  | { kind: 'spectra/failed'; reason: FailureReason; message: string };

/** Messages the Inspector webview sends to the host. */
export type InspectorOutbound =
  | { kind: 'inspector/ready' }
  | { kind: 'inspector/reload' }
  | { kind: 'inspector/command'; command: string }
  | { kind: 'inspector/spectra' }
  | { kind: 'inspector/spectraCancel' };
