/**
 * Plain data (DTOs) of the export jobs: a conversion's report (`weight-lens convert`, Export as safetensors…) and a
 * Netron attachment's report and JSON document (`weight-lens attachment`, Export Netron Attachment…). They cross from
 * the worker to the extension host and are printed by the CLI's `--json`. Also the one rule for the attachment's
 * default path, which the CLI and the extension both use. Imports nothing heavy.
 */

/** One tensor whose dtype the output could not keep. */
export interface ConvertedDtypeDto {
  readonly name: string;
  /** The dtype as the source names it (e.g. `Q4_0`, `uint8 (quantized)`, `BF16`). */
  readonly from: string;
  /** The dtype written (a safetensors dtype name: `F32`, `F16`…). */
  readonly to: string;
  /** True when the source was quantised and its values were reconstructed (not bit-exact by construction). */
  readonly dequantized: boolean;
}

/** What a conversion wrote. */
export interface ConvertReportDto {
  readonly input: string;
  readonly output: string;
  /** Format id of the input (`pytorch`, `onnx`…). */
  readonly format: string;
  readonly target: 'safetensors' | 'npz';
  /** Tensors written. */
  readonly tensors: number;
  /** Total elements written. */
  readonly params: number;
  /** Bytes of tensor data written (headers excluded). */
  readonly bytes: number;
  /** Tensors written in another dtype than the source's, in file order. */
  readonly changed: readonly ConvertedDtypeDto[];
  /** Tensors left out because their values cannot be decoded (only with `skipUndecoded`), with the reason. */
  readonly skipped: readonly { readonly name: string; readonly dtype: string; readonly reason: string }[];
  /** Wall time in seconds. */
  readonly seconds: number;
}

/** Progress of a conversion: tensor `index` (0-based) of `total` is being written. */
export interface ConvertProgressDto {
  index: number;
  total: number;
  name: string;
}

/** The value of a Netron attachment's `signature` key, which Netron's `metadata.Attachment.open` requires. */
export const NETRON_ATTACHMENT_SIGNATURE = 'netron:attachment';

/**
 * The entity kinds Netron's attachment containers are keyed by (`${kind}::${target}` in source/view.js,
 * `metadata.Attachment.Container`): the model, a graph, a node, a value, a tensor.
 */
export type NetronEntityKind = 'model' | 'graph' | 'node' | 'value' | 'tensor';

/**
 * One row of a Netron attachment container: the figure `name` = `value` of the entity `kind`::`target` (Netron
 * matches `target` against the entity's name up to its first newline; the model and graphs take `target: ''`).
 * `type` is how Netron renders it: absent shows the value as it is; `percentage` shows a fraction as `12.3%`.
 */
export interface NetronAttachmentRowDto {
  kind: NetronEntityKind;
  target: string;
  name: string;
  value: number | string;
  type?: 'percentage';
}

/**
 * A Netron attachment file (`netron:attachment` JSON), as Netron's source/view.js reads it: `signature`, and the
 * `metadata` and `metrics` containers, each an array of rows. Netron shows `metadata` rows in the sidebar's
 * Metadata section and `metrics` rows in its Metrics section (for a tensor, replacing the figures Netron computes
 * itself under the same names: min, max, mean, std, sparsity). `producer` is ours; Netron ignores it.
 */
export interface NetronAttachmentDto {
  signature: typeof NETRON_ATTACHMENT_SIGNATURE;
  producer: string;
  metadata: NetronAttachmentRowDto[];
  metrics: NetronAttachmentRowDto[];
}

/** Options of a Netron attachment export. */
export interface NetronAttachmentOptionsDto {
  /** Where to write it (must end in `.json`, for Netron); absent: `defaultAttachmentPath(input)`. */
  out?: string;
  /** Add WeightWatcher's spectral metrics of every 2-D matrix and convolution (the slow part). */
  spectra: boolean;
  /** As `SpectraOptionsDto.maxRank`: exact SVD up to this rank, else a randomized one (0: always exact). */
  maxRank: number;
}

/** Progress of an attachment export: the phase, and tensor or layer `index` (0-based) of `total`. */
export interface NetronAttachmentProgressDto {
  phase: 'statistics' | 'spectra';
  index: number;
  total: number;
  name: string;
}

/** What an attachment export wrote. */
export interface NetronAttachmentReportDto {
  input: string;
  output: string;
  format: string;
  /** Tensors with statistics rows. */
  tensors: number;
  /** Layers with spectral rows (0 without spectra). */
  spectra: number;
  /** Rows written to the `metrics` container. */
  metrics: number;
  /** Rows written to the `metadata` container. */
  metadata: number;
  /** Wall time in seconds. */
  seconds: number;
}

/**
 * Where an attachment for the checkpoint at `input` goes by default: beside it, its name without the last
 * extension plus `.attachment.json` (`resnet.onnx` → `resnet.attachment.json`), since Netron opens only `.json`
 * attachments. Pure string work on `/` or `\` separated paths.
 */
export function defaultAttachmentPath(input: string): string {
  const cut = Math.max(input.lastIndexOf('/'), input.lastIndexOf('\\')) + 1;
  const dir = input.slice(0, cut);
  const base = input.slice(cut);
  const dot = base.lastIndexOf('.');
  const stem = dot > 0 ? base.slice(0, dot) : base;
  return `${dir}${stem}.attachment.json`;
}
