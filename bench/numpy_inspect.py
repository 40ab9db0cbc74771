#!/usr/bin/python3
"""NumPy reference for bench:inspect: the same statistics as `weight-lens inspect --json` (mean, std, min, max,
abs max, L2, zeros, non-finite) and a 256-bin histogram per tensor of a safetensors file, reading each tensor from
disk. Prints one JSON line: {seconds, bytes, peakRssKb, tensors}."""
import json
import resource
import struct
import sys
import time

import numpy as np

path = sys.argv[1]
bins = int(sys.argv[2]) if len(sys.argv) > 2 else 256
start = time.perf_counter()
with open(path, 'rb') as f:
    (n,) = struct.unpack('<Q', f.read(8))
    header = json.loads(f.read(n))
    base = 8 + n
    total = 0
    count = 0
    for name, info in header.items():
        if name == '__metadata__':
            continue
        assert info['dtype'] == 'F32'
        begin, end = info['data_offsets']
        f.seek(base + begin)
        a = np.fromfile(f, dtype='<f4', count=(end - begin) // 4).astype(np.float64)
        finite = a[np.isfinite(a)]
        stats = dict(mean=finite.mean(), std=finite.std(), min=finite.min(), max=finite.max(),
                     absMax=np.abs(finite).max(), l2=np.sqrt(np.dot(finite, finite)),
                     zeros=int((a == 0).sum()), nonFinite=int(a.size - finite.size))
        counts, edges = np.histogram(finite, bins=bins, range=(stats['min'], stats['max']))
        total += end - begin
        count += 1
seconds = time.perf_counter() - start
print(json.dumps(dict(seconds=seconds, bytes=total, peakRssKb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, tensors=count)))
