#!/usr/bin/python3
"""PyTorch reference of Weight Lens' NeRN reconstruction phase, written from /work/shared/NERN.md: the same
coordinates, 240-input positional encoding (base 0.76, 40 levels), predictor MLP (PyTorch-default init), crossfilter
permutation, batch sampling (per step: p=0.8 uniform without replacement, else ∝ kernel L2 norm with replacement),
RMSE loss and optimisers (Adam, RAdam, Ranger = RAdam + Lookahead k=6 a=0.5 with decoupled weight decay) with warm-up
+ cosine decay. Used to (1) measure steps/s against the TypeScript engine and (2) explore settings quickly.

Usage:
  /usr/bin/python3 bench/reference/nern_reference.py --bench [--hidden 180] [--steps 20] [--threads 1]
  /usr/bin/python3 bench/reference/nern_reference.py --weights PREFIX [--steps 2000] [--optimizer adam] [--lr 1e-3]
      [--warmup 0] [--scale layer|none] [--permutation crossfilter|none] [--eval-every 250]
  /usr/bin/python3 bench/reference/nern_reference.py --pt STATE_DICT.pt [same options] [--json]
PREFIX.bin/.json come from train_resnet20.py; --pt reads the 4-D 3×3 conv weights of a torch.save'd state dict (in
its order) instead. --bench uses random kernels of ResNet-20's shapes (no file needed). --json prints one final line
`JSON {...}` with the evaluations as [step, training seconds (evaluations excluded), rmse] for bench/compress.ts.
"""
import argparse, json, math, time
import numpy as np
import torch
import torch.nn as nn

BASE, LEVELS = 0.76, 40


def encode_component(p):
    """p: [n] → [n, 2·LEVELS] (sin, cos interleaved by level)."""
    scale = math.pi * BASE ** np.arange(LEVELS)
    x = p[:, None] * scale[None, :]
    out = np.empty((len(p), 2 * LEVELS))
    out[:, 0::2] = np.sin(x)
    out[:, 1::2] = np.cos(x)
    return out


def encode_grid(shapes):
    rows = []
    L = len(shapes)
    for l, (cout, cin) in enumerate(shapes):
        f = np.repeat(np.arange(cout), cin) / cout
        c = np.tile(np.arange(cin), cout) / cin
        lay = np.full(cout * cin, l / L)
        rows.append(np.concatenate([encode_component(lay), encode_component(f), encode_component(c)], 1))
    return np.concatenate(rows).astype(np.float32)


def crossfilter(kernels):
    """kernels [N, k] → perm (perm[t] = kernel at grid position t). Zero kernels: cos 1 with zeros, 0 otherwise."""
    n = len(kernels)
    norms = np.linalg.norm(kernels, axis=1)
    zero = norms == 0
    units = np.where(zero[:, None], 0, kernels / np.where(zero, 1, norms)[:, None])
    remaining = np.ones(n, bool)
    remaining[0] = False
    order = [0]
    cur = 0
    for _ in range(n - 1):
        sims = units @ units[cur]
        if zero[cur]:
            sims = zero.astype(np.float64)
        sims = np.where(remaining, sims, -np.inf)
        cur = int(np.argmax(sims))
        remaining[cur] = False
        order.append(cur)
    return np.array(order)


def predictor(hidden, inputs=240, outputs=9, depth=4):
    inputs = 6 * LEVELS
    layers = [nn.Linear(inputs, hidden), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(hidden, hidden), nn.ReLU()]
    layers.append(nn.Linear(hidden, outputs))
    return nn.Sequential(*layers)


class Ranger(torch.optim.Optimizer):
    """RAdam step (as torch.optim.RAdam) with decoupled weight decay, then Lookahead (k, alpha)."""

    def __init__(self, params, lr, betas=(0.5, 0.999), eps=1e-5, weight_decay=1e-3, k=6, alpha=0.5):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.k, self.alpha, self.t = k, alpha, 0

    @torch.no_grad()
    def step(self):
        self.t += 1
        t = self.t
        for g in self.param_groups:
            b1, b2 = g['betas']
            rho_inf = 2 / (1 - b2) - 1
            rho = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
            for p in g['params']:
                s = self.state[p]
                if not s:
                    s['m'], s['v'], s['slow'] = torch.zeros_like(p), torch.zeros_like(p), p.clone()
                s['m'].mul_(b1).add_(p.grad, alpha=1 - b1)
                s['v'].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                if g['weight_decay']:
                    p.mul_(1 - g['lr'] * g['weight_decay'])
                if rho > 5:
                    rect = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
                    p.addcdiv_(s['m'], s['v'].sqrt().add_(g['eps']), value=-g['lr'] * rect * math.sqrt(1 - b2 ** t) / (1 - b1 ** t))
                else:
                    p.add_(s['m'], alpha=-g['lr'] / (1 - b1 ** t))
                if t % self.k == 0:
                    s['slow'].add_(p - s['slow'], alpha=self.alpha)
                    p.copy_(s['slow'])


def lr_at(step, lr, total, warmup, min_lr):
    if step < warmup:
        return lr * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * t))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--weights')
    ap.add_argument('--pt', help='a torch.save state dict; its 4-D 3x3 conv weights are represented')
    ap.add_argument('--json', action='store_true', help='print a final JSON line (evaluations, timings)')
    ap.add_argument('--min-params', type=int, default=0, help='with --pt: skip conv tensors smaller than this')
    ap.add_argument('--bench', action='store_true')
    ap.add_argument('--hidden', type=int, default=160)
    ap.add_argument('--steps', type=int, default=2000)
    ap.add_argument('--schedule-steps', type=int, default=0, help='cosine length (default: --steps)')
    ap.add_argument('--batch', type=int, default=4096)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--optimizer', default='adam', choices=['adam', 'radam', 'ranger'])
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--beta1', type=float, default=None)
    ap.add_argument('--wd', type=float, default=None)
    ap.add_argument('--warmup', type=int, default=0)
    ap.add_argument('--min-lr', type=float, default=0.0)
    ap.add_argument('--scale', default='none', choices=['none', 'layer', 'global'])
    ap.add_argument('--permutation', default='crossfilter', choices=['crossfilter', 'none'])
    ap.add_argument('--eval-every', type=int, default=250)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--base', type=float, default=0.76, help='encoding frequency ratio (NeRN: 0.76)')
    ap.add_argument('--levels', type=int, default=40, help='encoding levels per component (NeRN: 40)')
    a = ap.parse_args()
    global BASE, LEVELS
    BASE, LEVELS = a.base, a.levels
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    if a.pt:
        sd = torch.load(a.pt, map_location='cpu')
        layers = [(n, list(v.shape), v.detach().float().numpy().astype('<f4').ravel()) for n, v in sd.items()
                  if torch.is_tensor(v) and v.dim() == 4 and v.numel() >= a.min_params]
    elif a.weights:
        meta = json.load(open(a.weights + '.json'))
        flat = np.fromfile(a.weights + '.bin', dtype='<f4')
        layers = [(L['name'], L['shape'], flat[L['offset']:L['offset'] + int(np.prod(L['shape']))]) for L in meta['layers']]
    else:
        shapes = [[16, 1, 3, 3]] + [[16, 16, 3, 3]] * 6 + [[32, 16, 3, 3]] + [[32, 32, 3, 3]] * 5 + [[64, 32, 3, 3]] + [[64, 64, 3, 3]] * 5
        layers = [(f'conv{i}', s, (rng.standard_normal(int(np.prod(s))) * 0.05).astype(np.float32)) for i, s in enumerate(shapes)]
    layers = [(n, s, v) for n, s, v in layers if s[2] == 3 and s[3] == 3]
    shapes = [(s[0], s[1]) for _, s, _ in layers]
    t0 = time.time()
    targets, scales, layer_of_row = [], [], []
    for l, (name, s, v) in enumerate(layers):
        k = v.reshape(s[0] * s[1], 9).astype(np.float64)
        perm = crossfilter(k) if a.permutation == 'crossfilter' and not a.bench else np.arange(len(k))
        targets.append(k[perm])
        scales.append(np.sqrt(np.mean(k ** 2)))
        layer_of_row.append(np.full(len(k), l))
    perm_s = time.time() - t0
    W = np.concatenate(targets).astype(np.float32)
    layer_of_row = np.concatenate(layer_of_row)
    weight_rms = float(np.sqrt(np.mean(W.astype(np.float64) ** 2)))
    if a.scale == 'layer':
        row_scale = np.array(scales, np.float32)[layer_of_row]
    elif a.scale == 'global':
        row_scale = np.full(len(W), weight_rms, np.float32)
    else:
        row_scale = np.ones(len(W), np.float32)
    enc = torch.from_numpy(encode_grid(shapes))
    Wt = torch.from_numpy(W)
    St = torch.from_numpy(row_scale)[:, None]
    norms = np.linalg.norm(W, axis=1)
    probs = torch.from_numpy(norms / norms.sum())
    R = len(W)
    model = predictor(a.hidden)
    nparams = sum(p.numel() for p in model.parameters())
    if a.optimizer == 'adam':
        opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(a.beta1 or 0.9, 0.999), weight_decay=a.wd or 0)
    elif a.optimizer == 'radam':
        opt = torch.optim.RAdam(model.parameters(), lr=a.lr, betas=(a.beta1 or 0.9, 0.999), weight_decay=a.wd or 0)
    else:
        opt = Ranger(model.parameters(), lr=a.lr, betas=(a.beta1 if a.beta1 is not None else 0.5, 0.999), eps=1e-5,
                     weight_decay=1e-3 if a.wd is None else a.wd)
    total = a.schedule_steps or a.steps
    print(f'torch {torch.__version__}, threads {torch.get_num_threads()}, {len(layers)} layers, {R} kernels, '
          f'weight rms {weight_rms:.5f}, predictor h={a.hidden} params {nparams}, permutation {perm_s:.1f}s', flush=True)

    def evaluate():
        with torch.no_grad():
            pred = torch.cat([model(enc[i:i + 8192]) for i in range(0, R, 8192)]) * St
            return math.sqrt(((pred - Wt) ** 2).mean().item())

    gen = torch.Generator().manual_seed(a.seed)
    t_start = time.time()
    eval_seconds = 0.0
    evals = []
    for step in range(a.steps):
        lr = lr_at(step, a.lr, total, a.warmup, a.min_lr)
        for g in opt.param_groups:
            g['lr'] = lr
        if rng.random() < 0.8:
            idx = torch.randperm(R, generator=gen)[:a.batch]
        else:
            idx = torch.multinomial(probs, a.batch, replacement=True, generator=gen)
        pred = model(enc[idx]) * St[idx]
        loss = torch.sqrt(((pred - Wt[idx]) ** 2).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (a.eval_every and (step + 1) % a.eval_every == 0) or step + 1 == a.steps:
            el = time.time() - t_start - eval_seconds
            t_eval = time.time()
            rmse = evaluate() if not a.bench else float('nan')
            eval_seconds += time.time() - t_eval
            evals.append([step + 1, el, rmse])
            print(f'step {step + 1} loss {loss.item():.5f} rmse {rmse:.5f} ({rmse / weight_rms:.3f} of rms) lr {lr:.2e} '
                  f'{(step + 1) / el:.1f} steps/s {el:.0f}s', flush=True)
    el = time.time() - t_start - eval_seconds
    flops = 6 * a.batch * sum(p.numel() for n, p in model.named_parameters() if n.endswith('weight'))
    print(f'RESULT steps/s {a.steps / el:.2f} GFLOP/s {a.steps * flops / el / 1e9:.1f} threads {torch.get_num_threads()}')
    if a.json:
        print('JSON ' + json.dumps({
            'torch': torch.__version__, 'threads': torch.get_num_threads(), 'hidden': a.hidden, 'batch': a.batch,
            'steps': a.steps, 'kernels': R, 'weightRms': weight_rms, 'predictorParams': nparams,
            'permutationSeconds': perm_s, 'trainSeconds': el, 'evalSeconds': eval_seconds,
            'stepsPerSecond': a.steps / el, 'gflops': a.steps * flops / el / 1e9, 'evaluations': evals,
            'rmse': evals[-1][2] if evals else None}), flush=True)


if __name__ == '__main__':
    main()
