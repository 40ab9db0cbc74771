#!/usr/bin/python3
"""Trains a CIFAR-style ResNet-20 (option-A shortcuts, 1 input channel) on Fashion-MNIST with Debian's PyTorch, to
get real trained 3x3 kernels for measuring NeRN reconstruction. Writes WEIGHTS.bin (float32, little-endian, the conv
weights concatenated in layer order) and WEIGHTS.json ({"layers": [{"name", "shape", "offset"}], "testAccuracy"}),
plus the full state dict with torch.save.

Usage: /usr/bin/python3 bench/reference/train_resnet20.py OUT_PREFIX [--epochs 2] [--threads 1]
Data: Debian `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist).
"""
import argparse, gzip, json, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = '/usr/share/datasets/fashion-mnist'


def idx(path):
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pad = cout - cin
        self.stride = stride

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x
        if self.stride != 1 or self.pad:
            sc = x[:, :, ::self.stride, ::self.stride]
            sc = F.pad(sc, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + sc)


class ResNet20(nn.Module):
    def __init__(self, cin=1, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, c = [], 16
        for i, width in enumerate([16, 32, 64]):
            blocks = []
            for j in range(3):
                blocks.append(Block(c, width, 2 if (i > 0 and j == 0) else 1))
                c = width
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--epochs', type=int, default=2)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr = torch.tensor(idx(f'{DATA}/train-images-idx3-ubyte.gz'), dtype=torch.float32).unsqueeze(1) / 255
    ytr = torch.tensor(idx(f'{DATA}/train-labels-idx1-ubyte.gz'), dtype=torch.long)
    xte = torch.tensor(idx(f'{DATA}/t10k-images-idx3-ubyte.gz'), dtype=torch.float32).unsqueeze(1) / 255
    yte = torch.tensor(idx(f'{DATA}/t10k-labels-idx1-ubyte.gz'), dtype=torch.long)
    mean, std = 0.2860, 0.3530
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    model = ResNet20()
    steps_per_epoch = len(xtr) // 128
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=a.epochs * steps_per_epoch)
    t0 = time.time()
    for epoch in range(a.epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        for s in range(steps_per_epoch):
            i = perm[s * 128:(s + 1) * 128]
            x = xtr[i]
            if True:  # random horizontal flip
                flip = torch.rand(len(i)) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
            loss = F.cross_entropy(model(x), ytr[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if s % 100 == 0:
                print(f'epoch {epoch} step {s}/{steps_per_epoch} loss {loss.item():.4f} {time.time() - t0:.0f}s', flush=True)
    model.eval()
    with torch.no_grad():
        correct = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, len(xte), 1000))
    acc = correct / len(xte)
    print(f'test accuracy {acc:.4f} after {time.time() - t0:.0f}s')
    torch.save(model.state_dict(), a.out + '.pt')
    layers, chunks, offset = [], [], 0
    for name, p in model.state_dict().items():
        if name.endswith('.weight') and p.dim() == 4:
            v = p.detach().numpy().astype('<f4').ravel()
            layers.append({'name': name, 'shape': list(p.shape), 'offset': offset})
            chunks.append(v)
            offset += v.size
    allw = np.concatenate(chunks)
    allw.tofile(a.out + '.bin')
    with open(a.out + '.json', 'w') as f:
        json.dump({'layers': layers, 'testAccuracy': acc, 'values': int(offset),
                   'rms': float(np.sqrt(np.mean(allw.astype(np.float64) ** 2)))}, f, indent=1)
    print(f'{len(layers)} conv layers, {offset} weights, rms {np.sqrt(np.mean(allw.astype(np.float64) ** 2)):.4f}')


if __name__ == '__main__':
    main()
