#!/usr/bin/python3
"""Writes unlabelled RGB photo crops for the ESRGAN distillation benchmark, with NumPy, from the photographs Debian's
`python3-skimage` ships (skimage/data/*.png): OUT_train.npy and OUT_test.npy, uint8 [N, S, S, 3] (values 0..255,
what ESRGAN-slim takes). Test crops come from photos the training crops never see. Also writes OUT_fixture.npy: the
ESRGAN package's own fixture image as [1, H, W, 3].

Usage: /usr/bin/python3 bench/reference/photo_crops.py OUT [--size 32] [--train 2048] [--test 256] [--seed 0]
"""
import argparse, glob, os
import numpy as np
from skimage import io

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))


def rgb(path):
    img = io.imread(path)
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    if img.shape[-1] == 4:
        img = img[..., :3]
    if img.dtype != np.uint8:
        img = (255 * (img.astype(np.float64) / max(1, img.max()))).astype(np.uint8)
    return img


def crops(images, n, size, rng):
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        img = images[rng.integers(len(images))]
        y = rng.integers(img.shape[0] - size + 1)
        x = rng.integers(img.shape[1] - size + 1)
        out[i] = img[y:y + size, x:x + size]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--size', type=int, default=32)
    ap.add_argument('--train', type=int, default=2048)
    ap.add_argument('--test', type=int, default=256)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    import skimage
    paths = sorted(p for p in glob.glob(os.path.join(os.path.dirname(skimage.__file__), 'data', '*.png')))
    images = [img for img in (rgb(p) for p in paths) if min(img.shape[:2]) >= 4 * a.size]
    if len(images) < 4:
        raise SystemExit(f'only {len(images)} usable photos found in skimage/data')
    rng = np.random.default_rng(a.seed)
    test_images, train_images = images[:2], images[2:]
    np.save(a.out + '_train.npy', crops(train_images, a.train, a.size, rng))
    np.save(a.out + '_test.npy', crops(test_images, a.test, a.size, rng))
    fixture = rgb(os.path.join(ROOT, 'test', 'fixtures', 'published', 'esrgan-slim', 'assets', 'fixture.png'))
    np.save(a.out + '_fixture.npy', fixture[None])
    print(f'{len(train_images)} training photos, {len(test_images)} test photos; fixture {fixture.shape}')


if __name__ == '__main__':
    main()
