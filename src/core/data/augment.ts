/**
 * Training-time augmentation of image batches in place: horizontal flips and padded random crops, as NeRN trains.
 */
import { Rng } from '../nern/rng';

/** Augmentation of training images: random horizontal flips and random crops from a zero-padded image. */
export interface Augmentation {
  readonly rng: Rng;
  /** Pixels of padding around each image before the random crop back to its size (0 = no crop). */
  readonly cropPad: number;
  readonly flip: boolean;
}

/** Default crop padding: 4 pixels for images up to 64 pixels high, else 1/8 of the height. */
export function defaultCropPad(height: number): number {
  return height <= 64 ? 4 : Math.max(1, Math.round(height / 8));
}

/** Flips and crops raw NHWC images (n × h × w × c values) in place, per sample, drawing from `aug.rng`. */
export function augmentBatch(x: Float32Array, n: number, h: number, w: number, c: number, aug: Augmentation): void {
  const per = h * w * c;
  const tmp = new Float32Array(per);
  for (let s = 0; s < n; s++) {
    const img = x.subarray(s * per, (s + 1) * per);
    const flip = aug.flip && aug.rng.next() < 0.5;
    const dy = aug.cropPad > 0 ? aug.rng.int(2 * aug.cropPad + 1) - aug.cropPad : 0;
    const dx = aug.cropPad > 0 ? aug.rng.int(2 * aug.cropPad + 1) - aug.cropPad : 0;
    if (!flip && dy === 0 && dx === 0) continue;
    tmp.fill(0);
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      if (sy < 0 || sy >= h) continue;
      for (let xx = 0; xx < w; xx++) {
        let sx = xx + dx;
        if (sx < 0 || sx >= w) continue;
        if (flip) sx = w - 1 - sx;
        const src = (sy * w + sx) * c;
        const dst = (y * w + xx) * c;
        for (let k = 0; k < c; k++) tmp[dst + k] = img[src + k] ?? 0;
      }
    }
    img.set(tmp);
  }
}
