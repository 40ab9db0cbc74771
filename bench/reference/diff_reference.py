#!/usr/bin/python3
"""The NumPy side of `npm run bench:diff` (bench/diff.ts). Run with Debian's python3: /usr/bin/python3 -P ...

  diff_reference.py generate DIR TENSORS   writes DIR/a.safetensors and DIR/b.safetensors: TENSORS float32 tensors
      w.<i> of [4096, 4096] (64 MiB each), A ~ N(0, 0.02²), B = A + N(0, 0.001²) on the even-numbered tensors and
      B = A on the odd ones. Streamed: 4 Mi values (16 MiB) of each file in memory at a time, fixed seed.
  diff_reference.py stats A B              the diff statistics of every tensor pair in float64 (max |Δ|, RMS Δ,
      ‖Δ‖/‖A‖, cos(A, B)) and over the whole model, reading both files with np.memmap 4 Mi values at a time (each
      window unmapped after use, so the file pages do not pile up in this process's resident set). Prints one JSON
      line: the figures, the wall seconds of the comparison and the peak RSS in kB (getrusage).
"""
import json
import resource
import sys
import time

import numpy as np

SHAPE = (4096, 4096)
CHUNK = 4 * 1024 * 1024


def header_bytes(tensors):
    header, offset = {}, 0
    size = SHAPE[0] * SHAPE[1] * 4
    for i in range(tensors):
        header[f'w.{i}'] = {'dtype': 'F32', 'shape': list(SHAPE), 'data_offsets': [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    return len(text).to_bytes(8, 'little') + text


def generate(folder, tensors):
    rng = np.random.default_rng(2026)
    head = header_bytes(tensors)
    n = SHAPE[0] * SHAPE[1]
    with open(f'{folder}/a.safetensors', 'wb') as fa, open(f'{folder}/b.safetensors', 'wb') as fb:
        fa.write(head)
        fb.write(head)
        for i in range(tensors):
            for start in range(0, n, CHUNK):
                a = rng.standard_normal(min(CHUNK, n - start), dtype=np.float32) * np.float32(0.02)
                fa.write(a.tobytes())
                if i % 2 == 0:
                    a += rng.standard_normal(a.size, dtype=np.float32) * np.float32(0.001)
                fb.write(a.tobytes())


def read_header(path):
    with open(path, 'rb') as f:
        length = int.from_bytes(f.read(8), 'little')
        header = json.loads(f.read(length))
    header.pop('__metadata__', None)
    return header, 8 + length


def stats(path_a, path_b):
    started = time.perf_counter()
    ha, start_a = read_header(path_a)
    hb, start_b = read_header(path_b)
    rows = []
    total = {'d2': 0.0, 'a2': 0.0, 'b2': 0.0, 'dot': 0.0, 'max': 0.0, 'n': 0}
    for name, ta in ha.items():
        tb = hb[name]
        n = int(np.prod(ta['shape']))
        s = {'d2': 0.0, 'a2': 0.0, 'b2': 0.0, 'dot': 0.0, 'max': 0.0}
        for at in range(0, n, CHUNK):
            count = min(CHUNK, n - at)
            ma = np.memmap(path_a, dtype='<f4', mode='r', offset=start_a + ta['data_offsets'][0] + 4 * at, shape=(count,))
            mb = np.memmap(path_b, dtype='<f4', mode='r', offset=start_b + tb['data_offsets'][0] + 4 * at, shape=(count,))
            a = ma.astype(np.float64)
            b = mb.astype(np.float64)
            del ma, mb
            d = b - a
            s['max'] = max(s['max'], float(np.max(np.abs(d))))
            s['d2'] += float(np.dot(d, d))
            s['a2'] += float(np.dot(a, a))
            s['b2'] += float(np.dot(b, b))
            s['dot'] += float(np.dot(a, b))
        rows.append({
            'name': name,
            'maxAbs': s['max'],
            'rms': float(np.sqrt(s['d2'] / n)),
            'relative': float(np.sqrt(s['d2'] / s['a2'])),
            'cosine': float(s['dot'] / np.sqrt(s['a2'] * s['b2'])),
        })
        for k in ('d2', 'a2', 'b2', 'dot'):
            total[k] += s[k]
        total['max'] = max(total['max'], s['max'])
        total['n'] += n
    seconds = time.perf_counter() - started
    print(json.dumps({
        'rows': rows,
        'compared': total['n'],
        'maxAbs': total['max'],
        'relative': float(np.sqrt(total['d2'] / total['a2'])),
        'cosine': float(total['dot'] / np.sqrt(total['a2'] * total['b2'])),
        'seconds': seconds,
        'peakRssKb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == 'generate':
        generate(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == 'stats':
        stats(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
