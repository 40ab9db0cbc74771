#!/usr/bin/python3
"""PyTorch's side of `npm run bench:eval`: the project's ResNet-20 (its own state dict) on the 10,000 Fashion-MNIST
test images, batches of 64, preprocessed as the model's sidecar says (x / 255, mean 0.286, std 0.353, NCHW). Prints
one JSON line per thread count: {"threads", "imagesPerSecond", "accuracy"}; the data is decoded before timing.

Usage: /usr/bin/python3 bench/reference/eval_reference.py STATE_DICT [--threads 1,2] [--batch 64]
Needs Debian's python3-torch and dataset-fashion-mnist.
"""
import argparse, json, os, sys, time
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_resnet20 import DATA, ResNet20, idx  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('state_dict')
    ap.add_argument('--threads', default='1,2')
    ap.add_argument('--batch', type=int, default=64)
    a = ap.parse_args()
    x = torch.tensor(idx(f'{DATA}/t10k-images-idx3-ubyte.gz'), dtype=torch.float32).unsqueeze(1) / 255
    y = torch.tensor(idx(f'{DATA}/t10k-labels-idx1-ubyte.gz'), dtype=torch.long)
    x = (x - 0.2860) / 0.3530
    model = ResNet20()
    model.load_state_dict(torch.load(a.state_dict, map_location='cpu'))
    model.eval()
    for threads in [int(t) for t in a.threads.split(',')]:
        torch.set_num_threads(threads)
        correct = 0
        with torch.no_grad():
            model(x[:a.batch])  # warm-up
            t0 = time.perf_counter()
            for i in range(0, len(x), a.batch):
                correct += (model(x[i:i + a.batch]).argmax(1) == y[i:i + a.batch]).sum().item()
            seconds = time.perf_counter() - t0
        print(json.dumps({'threads': threads, 'imagesPerSecond': len(x) / seconds, 'accuracy': correct / len(x)}), flush=True)


if __name__ == '__main__':
    main()
