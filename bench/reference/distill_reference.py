#!/usr/bin/python3
"""PyTorch reference of one Weight Lens distillation step (NERN.md "Distillation phase", jobs/distill.ts) on the
project's ResNet-20, for `npm run bench:distill`: the teacher's forward pass (no gradient), the regeneration of every
represented kernel by the predictor MLP (240 → h → h → h → h → 9, four ReLU layers as nernPredictorSpec; the 240-wide encodings are constants), the
student's forward pass on the regenerated weights (torch.nn.utils.stateless.functional_call), the loss as the
TypeScript step computes it (KL(teacher ‖ student) at temperature T with log(q + 1e-4), ×T², plus the reconstruction
term's weight × Σ‖W − W_orig‖² / Σ‖W_orig‖²), backward into the predictor, and one Adam step. Prints steps/s per
thread count. The represented layers and their kernel counts come from a JSON file the TypeScript bench writes (the
layers the artifact represents and the model uses), so both sides regenerate the same kernels.

Usage: /usr/bin/python3 bench/reference/distill_reference.py --pt STATE_DICT.pt --layers LAYERS.json
       [--hidden 160] [--batch 64] [--steps 10] [--threads 1,2] [--temperature 1] [--reconstruction 0.01]
"""
import argparse, json, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import stateless

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_resnet20 import ResNet20  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--pt', required=True)
    ap.add_argument('--layers', required=True)
    ap.add_argument('--hidden', type=int, default=160)
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--threads', default='1,2')
    ap.add_argument('--temperature', type=float, default=1.0)
    ap.add_argument('--reconstruction', type=float, default=0.01)
    a = ap.parse_args()
    torch.manual_seed(0)
    model = ResNet20()
    model.load_state_dict(torch.load(a.pt))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    layers = json.load(open(a.layers))
    params = dict(model.named_parameters())
    originals = [params[l['name']].detach().clone() for l in layers]
    orig_sq = sum(float((w * w).sum()) for w in originals)
    kernels = sum(l['kernels'] for l in layers)
    h = a.hidden
    hidden = [nn.Linear(240, h), nn.ReLU()]
    for _ in range(3):
        hidden += [nn.Linear(h, h), nn.ReLU()]
    predictor = nn.Sequential(*hidden, nn.Linear(h, 9))
    encodings = torch.rand(kernels, 240) * 2 - 1
    scales = [float(l['scale']) for l in layers]
    opt = torch.optim.Adam(predictor.parameters(), lr=3e-5)
    x = torch.randn(a.batch, 1, 28, 28)
    T = a.temperature

    def step():
        with torch.no_grad():
            zt = model(x)
        out = predictor(encodings)
        weights, start = {}, 0
        for l, s in zip(layers, scales):
            cout, cin, k = l['kernelShape'][:3]
            rows = out[start:start + l['kernels']] * s
            start += l['kernels']
            weights[l['name']] = rows.reshape(cout, cin, k, k)
        zs = stateless.functional_call(model, weights, (x,))
        p = F.softmax(zt / T, dim=-1)
        log_p = torch.log(p + 1e-12)
        log_q = torch.log(F.softmax(zs / T, dim=-1) + 1e-4)
        kl = (p * (log_p - log_q)).sum(-1).mean() * T * T
        rec = sum(((weights[l['name']] - w0) ** 2).sum() for l, w0 in zip(layers, originals)) / orig_sq
        loss = kl + a.reconstruction * rec
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss)

    print(f'PyTorch {torch.__version__}: ResNet-20, {len(layers)} represented layers, {kernels} kernels, h = {h}, '
          f'batch {a.batch}')
    for threads in [int(t) for t in a.threads.split(',')]:
        torch.set_num_threads(threads)
        step()
        step()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        dt = time.perf_counter() - t0
        print(f'JSON {json.dumps({"threads": threads, "stepsPerSecond": a.steps / dt})}')


if __name__ == '__main__':
    main()
