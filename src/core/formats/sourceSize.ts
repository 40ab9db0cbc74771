/**
 * A checkpoint opened together with the size it is measured against: the file opened plus, when its tensors live
 * in other files (TF.js shards, safetensors shards, ONNX external data), those bytes too.
 */
import { stat } from 'node:fs/promises';
import { openCheckpoint } from './registry';
import type { Checkpoint } from './types';
import { BadInputError } from '../io/errors';

/** Size in bytes of the file at `path`; a `BadInputError` when it does not exist or cannot be read. */
export async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    throw new BadInputError(`${path} does not exist or cannot be read.`);
  }
}

/**
 * Opens the checkpoint at `path`, runs `body` with it and its source size in bytes (the file, plus the tensor bytes
 * stored in other files when those exceed it), and closes it whatever `body` does.
 */
export async function withCheckpoint<T>(
  path: string,
  signal: AbortSignal | undefined,
  body: (c: Checkpoint, bytes: number) => Promise<T>,
): Promise<T> {
  const mainFileBytes = await fileSize(path);
  const checkpoint = await openCheckpoint(path, signal ? { signal } : {});
  try {
    // The source size compression is measured against. When the tensors hold more bytes than the file opened, their
    // data lives in other files (TF.js shards, safetensors shards, ONNX external data), which count too.
    const tensorBytes = checkpoint.tensors.reduce((n, t) => n + t.bytes, 0);
    const bytes = tensorBytes > mainFileBytes ? mainFileBytes + tensorBytes : mainFileBytes;
    return await body(checkpoint, bytes);
  } finally {
    await checkpoint.close();
  }
}
