/**
 * Content hashes of files, streamed so that a multi-gigabyte checkpoint never sits in memory: the
 * source fingerprint an artifact records.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { throwIfAborted } from './errors';

/** SHA-256 (hex) of a file, streamed in 1 MiB reads; aborts between reads. */
export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  try {
    for await (const chunk of stream) {
      throwIfAborted(signal);
      hash.update(chunk as Buffer);
    }
  } finally {
    stream.destroy();
  }
  return hash.digest('hex');
}
