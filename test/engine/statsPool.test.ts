// The statistics thread pool (dist/stats-thread.js in real worker threads) gives exactly the results of computing
// in one thread, reports every tensor once, and releases its threads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectFile } from '../../src/core/jobs/inspect';
import { StatisticsPool } from '../../src/worker/statsPool';

const threadScript = join(__dirname, '..', '..', 'dist', 'stats-thread.js');

test('pooled statistics equal single-thread statistics', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wl-pool-'));
  try {
    // Five float32 tensors of different sizes with NaNs, zeros and a large offset, written as safetensors.
    const sizes = [3_000_001, 1_000_000, 250_000, 17, 5_000_000];
    const header: Record<string, unknown> = {};
    const parts: Buffer[] = [];
    let offset = 0;
    let seed = 12345;
    sizes.forEach((n, t) => {
      const values = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        values[i] = i % 1000 === 0 ? 0 : i % 4099 === 0 ? NaN : (seed / 2 ** 32 - 0.5) * (t + 1) + t * 100;
      }
      header[`layer${t}.weight`] = { dtype: 'F32', shape: [n], data_offsets: [offset, offset + n * 4] };
      offset += n * 4;
      parts.push(Buffer.from(values.buffer));
    });
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    const path = join(dir, 'pool.safetensors');
    writeFileSync(path, Buffer.concat([length, json, ...parts]));

    const single = await inspectFile(path, { bins: 128 });
    const pool = new StatisticsPool(2, threadScript);
    const seen: number[] = [];
    try {
      const pooled = await inspectFile(
        path,
        { bins: 128, parallel: () => ({ run: pool.runner(path), concurrency: pool.size }) },
        {
          onTensorStats: (index) => {
            seen.push(index);
          },
        },
      );
      assert.deepEqual(pooled.tensors, single.tensors);
    } finally {
      await pool.close();
    }
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      [0, 1, 2, 3, 4],
      'each tensor reported once',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
