/**
 * The contract every checkpoint format implements: a cheap `sniff` on the first bytes, then `open` which parses
 * headers and returns lazily-read tensors. Adding a format is one file, one line in registry.ts and fixture rows.
 */
import type { ByteSource, SiblingOpener } from '../io/byteSource';
import type { TensorEntry } from '../tensors/tensor';

/** Identifier of each supported format. */
export type FormatId = 'safetensors' | 'pytorch' | 'onnx' | 'tfjs' | 'keras' | 'numpy' | 'gguf';

/** Plain metadata values a format exposes (safetensors `__metadata__`, GGUF key/values, ONNX producer…). */
export type MetadataValue = string | number | boolean | null;

/** An opened checkpoint: headers parsed, tensor data not yet read. */
export interface Checkpoint {
  readonly format: FormatId;
  /** A human description of the container, e.g. `safetensors (3 shards)`, `PyTorch zip (torch.save)`. */
  readonly description: string;
  /** Every tensor, in file order. Names are unique (readers disambiguate duplicates). */
  readonly tensors: readonly TensorEntry[];
  /** Format-level metadata, flattened to `key → value`. Strings longer than 1 kB are elided. */
  readonly metadata: Readonly<Record<string, MetadataValue>>;
  /** Releases every file handle the checkpoint holds. Idempotent. */
  close(): Promise<void>;
}

/** What `open` receives besides the main file. */
export interface OpenContext {
  /** Path of the main file as given by the user (for messages). */
  readonly path: string;
  /** Opens files the checkpoint refers to (shards, external data), confined to its folder. */
  readonly siblings: SiblingOpener;
  readonly signal?: AbortSignal;
}

/** One checkpoint format. */
export interface FormatReader {
  readonly id: FormatId;
  /** Human name, e.g. "PyTorch (torch.save)". */
  readonly label: string;
  /** Lower-case file name endings this format uses, e.g. `.safetensors`, `.safetensors.index.json`. */
  readonly extensions: readonly string[];
  /**
   * Confidence that the file is in this format, from its first bytes (up to 64 KiB, fewer for small files) and its
   * name: 0 = not this format, 1 = certain (magic number matched). Never throws.
   */
  sniff(head: Uint8Array, fileName: string): number;
  /** Parses headers and lists tensors. Throws `CheckpointFormatError` for malformed or hostile input. */
  open(source: ByteSource, context: OpenContext): Promise<Checkpoint>;
}
