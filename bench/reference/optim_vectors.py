#!/usr/bin/python3
"""Prints reference optimiser trajectories for test/unit/nern/optimizer.test.ts, computed with Debian's PyTorch 1.13:
torch.optim.RAdam and torch.optim.Adam on a tiny least-squares problem, plus Ranger (RAdam step with decoupled weight
decay, then Lookahead k=6 a=0.5) from nern_reference.py. Paste the printed JSON into the test.

Problem: w [2, 3], b [3]; loss = sum((x @ w + b - y) ** 2) with the fixed x [4, 2], y [4, 3] below; 8 steps.
Usage: /usr/bin/python3 bench/reference/optim_vectors.py
"""
import json, os, sys
import torch

sys.path.insert(0, os.path.dirname(__file__))
from nern_reference import Ranger  # noqa: E402

torch.set_default_dtype(torch.float32)
X = torch.tensor([[0.5, -1.0], [1.5, 0.25], [-0.75, 0.5], [0.1, 2.0]])
Y = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5], [-0.25, 1.0, 0.0], [2.0, -1.0, 0.75]])
W0 = [[0.1, -0.2, 0.3], [0.05, 0.15, -0.1]]
B0 = [0.01, -0.02, 0.03]
STEPS = 8


def run(make):
    w = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    opt = make([w, b])
    out = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = ((X @ w + b - Y) ** 2).sum()
        loss.backward()
        opt.step()
        out.append({'w': [round(v, 8) for v in w.detach().flatten().tolist()],
                    'b': [round(v, 8) for v in b.detach().tolist()]})
    return out


cases = {
    'radam': dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
    'adam': dict(lr=0.05, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    'ranger': dict(lr=0.1, betas=(0.5, 0.999), eps=1e-5, weight_decay=1e-3),
}
result = {
    'torch': torch.__version__,
    'x': X.tolist(), 'y': Y.tolist(), 'w0': W0, 'b0': B0, 'cases': cases,
    'radam': run(lambda p: torch.optim.RAdam(p, **cases['radam'])),
    'adam': run(lambda p: torch.optim.Adam(p, **cases['adam'])),
    'ranger': run(lambda p: Ranger(p, **cases['ranger'], k=6, alpha=0.5)),
}
print(json.dumps(result))
