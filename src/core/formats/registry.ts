/**
 * The list of supported checkpoint formats and `openCheckpoint`, which sniffs a file's first bytes and name, picks
 * the most confident reader and opens the file with it. The one place that knows every format.
 */
import { basename } from 'node:path';
import { FileByteSource, siblingOpenerFor } from '../io/byteSource';
import { CheckpointFormatError, formatBytes } from '../io/errors';
import { ggufFormat } from './gguf';
import { kerasFormat } from './keras';
import { numpyFormat } from './numpy';
import { onnxFormat } from './onnx';
import { pytorchFormat } from './pytorch';
import { safetensorsFormat } from './safetensors';
import { tfjsFormat } from './tfjs';
import type { Checkpoint, FormatReader } from './types';

/** Every supported format, in the order ties are broken. */
export const FORMATS: readonly FormatReader[] = [
  safetensorsFormat,
  pytorchFormat,
  onnxFormat,
  tfjsFormat,
  kerasFormat,
  numpyFormat,
  ggufFormat,
];

/** Bytes read from the start of a file for sniffing. */
export const SNIFF_BYTES = 64 * 1024;

/** Picks the reader for a file from its first bytes and name, or undefined if none claims it. */
export function detectFormat(head: Uint8Array, fileName: string): FormatReader | undefined {
  let best: FormatReader | undefined;
  let bestScore = 0;
  for (const format of FORMATS) {
    let score = 0;
    try {
      score = format.sniff(head, fileName);
    } catch {
      score = 0;
    }
    if (score > bestScore) {
      best = format;
      bestScore = score;
    }
  }
  return best;
}

/** The reader whose extensions match `fileName`, if any (used only to word errors). */
function formatByExtension(fileName: string): FormatReader | undefined {
  const lower = fileName.toLowerCase();
  return FORMATS.find((f) => f.extensions.some((ext) => lower.endsWith(ext)));
}

/**
 * Opens the checkpoint at `path`: sniffs its format and parses its headers. Throws `CheckpointFormatError` with a
 * user-facing sentence when the file is missing, unrecognised, malformed or hostile. The caller must `close()` it.
 */
export async function openCheckpoint(path: string, options?: { signal?: AbortSignal }): Promise<Checkpoint> {
  const source = await FileByteSource.open(path);
  try {
    const head = await source.read(0, Math.min(source.size, SNIFF_BYTES));
    const name = basename(path);
    const format = detectFormat(head, name);
    if (!format) {
      const claimed = formatByExtension(name);
      if (source.size === 0) throw new CheckpointFormatError(`${path} is empty (0 bytes).`);
      throw new CheckpointFormatError(
        claimed
          ? `${path} has a ${claimed.label} file name but its content is not ${claimed.label} (unrecognised first bytes); the file is corrupt or mislabelled.`
          : `${path} (${formatBytes(source.size)}) is not a recognised checkpoint; supported formats are ${FORMATS.map((f) => f.label).join(', ')}.`,
      );
    }
    const checkpoint = await format.open(source, {
      path,
      siblings: siblingOpenerFor(path),
      ...(options?.signal ? { signal: options.signal } : {}),
    });
    return checkpoint;
  } catch (error) {
    await source.close();
    throw error;
  }
}
