/**
 * Image-folder datasets: one subfolder per class (sorted by name, code-point order → class ids 0, 1, …) holding PNG
 * or JPEG files (sorted by name). Decoding is pure JavaScript (fast-png, jpeg-js). Every image must have the size of
 * the first one; channels follow the first image (grayscale → 1, colour → 3; alpha is dropped), grayscale images in a
 * colour dataset are replicated to 3 channels and colour images in a grayscale dataset must have R = G = B. Pixel
 * dimensions are read from the file header and bounded before anything is decoded.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FileByteSource } from '../io/byteSource';
import { CheckpointFormatError, throwIfAborted } from '../io/errors';
import { LIMITS } from '../io/limits';
import { checkBatch, type Dataset, type DatasetBatch } from './dataset';

/** Most image files listed from one folder tree. */
export const MAX_IMAGE_FILES = 10_000_000;

/** Most pixels one image may have (64 Mpx), checked from its header before decoding. */
export const MAX_IMAGE_PIXELS = 64 * 1024 * 1024;

const IMAGE_EXTENSION = /\.(png|jpe?g)$/i;

/** A decoded image: `data` is height×width×channels values as stored (8- or 16-bit), channels 1 or 3. */
export interface DecodedImage {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  readonly data: Float32Array;
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Width and height from a PNG IHDR or a JPEG SOFn marker, or undefined when not found. */
function headerDimensions(bytes: Uint8Array): { width: number; height: number } | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length >= 24 && bytes[0] === 0x89 && bytes[1] === 0x50)
    return { width: view.getUint32(16, false), height: view.getUint32(20, false) };
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    let at = 2;
    while (at + 9 <= bytes.length) {
      if (bytes[at] !== 0xff) return undefined;
      const marker = bytes[at + 1] ?? 0;
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { height: view.getUint16(at + 5, false), width: view.getUint16(at + 7, false) };
      }
      at += 2 + view.getUint16(at + 2, false);
    }
  }
  return undefined;
}

/** Keeps the first `keep` of `channels` interleaved channels (drops alpha), as float32. */
function dropChannels(data: ArrayLike<number>, pixels: number, channels: number, keep: number): Float32Array {
  const out = new Float32Array(pixels * keep);
  for (let p = 0; p < pixels; p++) for (let c = 0; c < keep; c++) out[p * keep + c] = data[p * channels + c] ?? 0;
  return out;
}

/** Decodes PNG or JPEG `bytes` to 1 (gray) or 3 (RGB) channels. Throws `CheckpointFormatError` for damaged files. */
export async function decodeImage(bytes: Uint8Array, name: string): Promise<DecodedImage> {
  const dims = headerDimensions(bytes);
  if (!dims) throw new CheckpointFormatError(`${name} is not a PNG or JPEG image (no image header found).`);
  if (dims.width < 1 || dims.height < 1 || dims.width * dims.height > MAX_IMAGE_PIXELS) {
    throw new CheckpointFormatError(
      `${name} declares ${dims.width}×${dims.height} pixels; images must have 1 to ${MAX_IMAGE_PIXELS} pixels.`,
    );
  }
  const pixels = dims.width * dims.height;
  try {
    if (bytes[0] === 0x89) {
      const png = await import('fast-png');
      const decoded = png.decode(bytes);
      let channels = decoded.channels;
      let data: ArrayLike<number> = decoded.data;
      if (decoded.palette) {
        data = png.convertIndexedToRgb(decoded);
        channels = decoded.palette[0]?.length ?? 3;
      }
      if (decoded.width !== dims.width || decoded.height !== dims.height) throw new Error('size differs from header');
      const keep = channels >= 3 ? 3 : 1;
      return {
        width: dims.width,
        height: dims.height,
        channels: keep,
        data: dropChannels(data, pixels, channels, keep),
      };
    }
    const jpeg = await import('jpeg-js');
    const decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
      maxMemoryUsageInMB: 1024,
    });
    if (decoded.width !== dims.width || decoded.height !== dims.height) throw new Error('size differs from header');
    const rgb = dropChannels(decoded.data, pixels, 3, 3);
    let gray = true;
    for (let p = 0; p < pixels && gray; p++) gray = rgb[3 * p] === rgb[3 * p + 1] && rgb[3 * p] === rgb[3 * p + 2];
    return gray
      ? { width: dims.width, height: dims.height, channels: 1, data: dropChannels(rgb, pixels, 3, 1) }
      : { width: dims.width, height: dims.height, channels: 3, data: rgb };
  } catch (error) {
    if (error instanceof CheckpointFormatError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new CheckpointFormatError(`${name} is a damaged or unsupported image (${reason}).`);
  }
}

async function readImageFile(path: string): Promise<DecodedImage> {
  const source = await FileByteSource.open(path);
  try {
    if (source.size > LIMITS.maxChunkBytes)
      throw new CheckpointFormatError(
        `${path} is ${source.size} bytes, larger than an image file may be (${LIMITS.maxChunkBytes}).`,
      );
    return await decodeImage(await source.read(0, source.size), path);
  } finally {
    await source.close();
  }
}

/** Lists `folder`'s class subfolders and their image files, sorted. */
async function listImages(folder: string): Promise<{ classes: string[]; files: { path: string; label: number }[] }> {
  let entries;
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch {
    throw new CheckpointFormatError(`${folder} cannot be listed.`);
  }
  const classes = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort(byCodePoint);
  const files: { path: string; label: number }[] = [];
  for (const [label, name] of classes.entries()) {
    const inner = await readdir(join(folder, name), { withFileTypes: true });
    const images = inner
      .filter((e) => e.isFile() && IMAGE_EXTENSION.test(e.name))
      .map((e) => e.name)
      .sort(byCodePoint);
    for (const image of images) {
      files.push({ path: join(folder, name, image), label });
      if (files.length > MAX_IMAGE_FILES)
        throw new CheckpointFormatError(`${folder} holds more than ${MAX_IMAGE_FILES} images.`);
    }
  }
  return { classes, files };
}

/** Converts a decoded image to `channels`, or throws naming the file. */
function toChannels(image: DecodedImage, channels: number, name: string): Float32Array {
  if (image.channels === channels) return image.data;
  const pixels = image.width * image.height;
  if (channels === 3) {
    const out = new Float32Array(pixels * 3);
    for (let p = 0; p < pixels; p++) out[3 * p] = out[3 * p + 1] = out[3 * p + 2] = image.data[p] ?? 0;
    return out;
  }
  for (let p = 0; p < pixels; p++) {
    if (image.data[3 * p] !== image.data[3 * p + 1] || image.data[3 * p] !== image.data[3 * p + 2]) {
      throw new CheckpointFormatError(
        `${name} is a colour image but the dataset's first image is grayscale; convert the images to one kind.`,
      );
    }
  }
  return dropChannels(image.data, pixels, 3, 1);
}

/** Opens a folder of class subfolders of PNG/JPEG images. The first image fixes the sample shape. */
export async function openImageFolder(folder: string): Promise<Dataset> {
  const { classes, files } = await listImages(folder);
  const first = files[0];
  if (!first) {
    throw new CheckpointFormatError(
      `${folder} holds no images: expected one subfolder per class containing .png or .jpg files (found ${classes.length} subfolders).`,
    );
  }
  const firstImage = await readImageFile(first.path);
  const shape: [number, number, number] = [firstImage.height, firstImage.width, firstImage.channels];
  return {
    kind: 'imageFolder',
    name: folder,
    size: files.length,
    shape,
    classes,
    hasLabels: true,
    async read(indices: readonly number[], signal?: AbortSignal): Promise<DatasetBatch> {
      const perSample = checkBatch(folder, files.length, shape, indices);
      const x = new Float32Array(indices.length * perSample);
      const y = new Int32Array(indices.length);
      for (let k = 0; k < indices.length; k++) {
        throwIfAborted(signal);
        const file = files[indices[k] ?? 0];
        if (!file) continue;
        const image = await readImageFile(file.path);
        if (image.width !== shape[1] || image.height !== shape[0]) {
          throw new CheckpointFormatError(
            `${file.path} is ${image.width}×${image.height} but the dataset's first image is ${shape[1]}×${shape[0]}; resize the images to one size.`,
          );
        }
        x.set(toChannels(image, shape[2], file.path), k * perSample);
        y[k] = file.label;
      }
      return { x, y };
    },
    close: () => Promise.resolve(),
  };
}
