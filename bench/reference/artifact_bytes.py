"""Reference byte breakdown of safetensors artifacts, read with Python's own json/struct (no Weight Lens code).

For each artifact path given: the 8-byte prefix + header, then the data bytes grouped by tensor-name prefix
(predictor., layout.perm., layout.scales, and the rest, verbatim.* and verbatim_scales, as verbatim), and the file
size, as one JSON line per file. For each
`layout.perm.*` blob it also re-deflates the bit-packed indices with Python's zlib (raw DEFLATE, level 9) when the
artifact says they were deflated, and reports the total of those lengths, so bench/artifact-size.ts can print
them beside its own.

Run: /usr/bin/python3 -P bench/reference/artifact_bytes.py A.safetensors [B.safetensors ...]
"""
import json
import os
import struct
import sys
import zlib


def breakdown(path):
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    meta = json.loads(header.get('__metadata__', {}).get('weight_lens', '{}'))
    start = 8 + n
    groups = {'predictor': 0, 'permutations': 0, 'scales': 0, 'verbatim': 0}
    perm_codings = meta.get('permutations') or []
    redeflated = 0
    packed_total = 0
    for name, entry in header.items():
        if name == '__metadata__':
            continue
        a, b = entry['data_offsets']
        size = b - a
        if name.startswith('predictor.'):
            groups['predictor'] += size
        elif name.startswith('layout.perm.'):
            groups['permutations'] += size
            coding = perm_codings[int(name.rsplit('.', 1)[1])] if perm_codings else None
            blob = raw[start + a:start + b]
            if coding and coding['coding'] == 'deflate':
                packed = zlib.decompress(blob, -15)
                packed_total += len(packed)
                c = zlib.compressobj(9, zlib.DEFLATED, -15)
                redeflated += len(c.compress(packed) + c.flush())
            else:
                packed_total += size
                redeflated += size
        elif name == 'layout.scales':
            groups['scales'] += size
        else:
            groups['verbatim'] += size
    groups['metadata'] = start
    groups['total'] = os.path.getsize(path)
    groups['sum'] = sum(groups[k] for k in ('predictor', 'permutations', 'scales', 'verbatim', 'metadata'))
    groups['permutationsPacked'] = packed_total
    groups['permutationsRedeflated'] = redeflated
    groups['metaJsonChars'] = len(header.get('__metadata__', {}).get('weight_lens', ''))
    return groups


if __name__ == '__main__':
    for p in sys.argv[1:]:
        print(json.dumps({'path': p, **breakdown(p)}))
