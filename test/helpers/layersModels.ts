/**
 * TF.js LayersModels built and saved with tfjs-layers for the tests: UpscalerJS's custom layers registered with
 * UpscalerJS's semantics, a Sequential model with every supported layer and a Functional model with merges, nested
 * models, a shared layer and the custom layers; saving to model.json + weights.bin, loading back, and seeding weights.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { seededRandom } from '../unit/graph/helpers';

// ---- UpscalerJS's custom layers, as @upscalerjs/esrgan-* register them (packages/shared/src/esrgan/esrgan.ts) ----

function single(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  const x = Array.isArray(inputs) ? inputs[0] : inputs;
  if (x === undefined) throw new Error('no input');
  return x;
}

/** UpscalerJS's MultiplyBeta: x · 0.2. */
export class MultiplyBeta extends tfl.layers.Layer {
  static className = 'MultiplyBeta';
  private readonly beta = 0.2;
  constructor() {
    super({});
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.mul(single(inputs), this.beta);
  }
}

/** UpscalerJS's PixelShuffle2x: depth-to-space by 2 (NHWC). */
export class PixelShuffle2x extends tfl.layers.Layer {
  static className = 'PixelShuffle2x';
  private readonly scale = 2;
  constructor() {
    super({});
  }
  // UpscalerJS returns [n, h, w, 3]; the true shape lets layers follow it in the test models.
  override computeOutputShape(shape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const s = (Array.isArray(shape[0]) ? shape[0] : shape) as tfl.Shape;
    const [n, h, w, c] = s;
    return [
      n ?? null,
      h == null ? null : h * this.scale,
      w == null ? null : w * this.scale,
      c == null ? null : c / (this.scale * this.scale),
    ];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.depthToSpace(single(inputs) as tf.Tensor4D, this.scale, 'NHWC');
  }
}
tf.serialization.registerClass(MultiplyBeta);
tf.serialization.registerClass(PixelShuffle2x);

// ---- helpers ----

interface ManifestGroup {
  paths: string[];
  weights: tf.io.WeightsManifestEntry[];
}

/** Loads a model.json and its shards from disk into tfjs-layers (no file:// handler without tfjs-node). */
export async function tfjsLoad(path: string): Promise<tfl.LayersModel> {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as { modelTopology: object; weightsManifest: ManifestGroup[] };
  const specs = doc.weightsManifest.flatMap((g) => g.weights);
  const data = Buffer.concat(
    doc.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dirname(path), p)))),
  );
  const weightData = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  return tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: doc.modelTopology, weightSpecs: specs, weightData }));
}

/** Saves a tfjs-layers model as model.json + weights.bin in a fresh folder (as `tfjs.converters` would). */
export async function tfjsSave(model: tfl.LayersModel): Promise<string> {
  const folder = mkdtempSync(join(tmpdir(), 'weight-lens-layers-'));
  await model.save(
    tf.io.withSaveHandler((artifacts) => {
      const data = artifacts.weightData;
      const bytes =
        data === undefined
          ? new Uint8Array(0)
          : Array.isArray(data)
            ? Buffer.concat(data.map((b) => new Uint8Array(b)))
            : new Uint8Array(data);
      writeFileSync(join(folder, 'weights.bin'), bytes);
      const json = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      writeFileSync(join(folder, 'model.json'), JSON.stringify(json));
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
    }),
  );
  return join(folder, 'model.json');
}

/** Gives every weight seeded values (variances positive), so normalisation layers are not identities. */
export function randomiseWeights(model: tfl.LayersModel, seed: number): void {
  let s = seed;
  for (const layer of model.layers) {
    const values = layer.weights.map((w) => {
      const positive = /variance|gamma/.test(w.originalName);
      return tf.tensor(
        seededRandom(
          s++,
          w.shape.reduce<number>((a, b) => a * (b ?? 1), 1),
          positive ? 0.5 : -0.5,
          1.5 - (positive ? 0 : 1),
        ),
        w.shape as number[],
      );
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
}

export function sequentialModel(dilated: boolean): tfl.Sequential {
  const L = tfl.layers;
  const m = tfl.sequential();
  m.add(L.conv2d({ inputShape: [12, 12, 3], filters: 6, kernelSize: 3, padding: 'same', activation: 'relu' }));
  m.add(L.batchNormalization());
  m.add(L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'valid', activation: 'relu6' }));
  m.add(L.maxPooling2d({ poolSize: 2 }));
  m.add(L.separableConv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'elu' }));
  m.add(L.conv2dTranspose({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', activation: 'selu' }));
  m.add(L.conv2dTranspose({ filters: 4, kernelSize: 3, strides: 1, padding: 'valid' }));
  m.add(
    L.zeroPadding2d({
      padding: [
        [1, 2],
        [0, 1],
      ],
    }),
  );
  m.add(
    L.cropping2D({
      cropping: [
        [1, 0],
        [2, 1],
      ],
    }),
  );
  m.add(L.upSampling2d({ size: [2, 1], interpolation: 'bilinear' }));
  m.add(L.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' }));
  m.add(L.conv2d({ filters: 4, kernelSize: 3, strides: 2, activation: 'tanh' }));
  if (dilated) m.add(L.conv2d({ filters: 4, kernelSize: 2, dilationRate: 2, padding: 'same', useBias: false }));
  m.add(L.leakyReLU({ alpha: 0.1 }));
  m.add(L.prelu({ sharedAxes: [1, 2] }));
  m.add(L.reLU({ maxValue: 0.5 }));
  m.add(L.layerNormalization());
  m.add(L.permute({ dims: [2, 1, 3] }));
  m.add(L.reshape({ targetShape: [12, 4] }));
  m.add(L.flatten());
  m.add(L.dropout({ rate: 0.5 }));
  m.add(L.dense({ units: 7, activation: 'sigmoid' }));
  m.add(L.dense({ units: 5 }));
  return m;
}

/** Merges, nested Sequential and Functional models, a shared layer, every activation, the UpscalerJS layers. */
export function functionalModel(): tfl.LayersModel {
  const L = tfl.layers;
  const apply = (layer: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]): tfl.SymbolicTensor =>
    layer.apply(x) as tfl.SymbolicTensor;
  const inp = tfl.input({ shape: [6, 6, 4] });
  const a = apply(L.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'swish' }), inp);
  const b = apply(L.conv2d({ filters: 8, kernelSize: 1, activation: 'gelu' }), inp);
  const inner = tfl.sequential({
    layers: [
      L.conv2d({ inputShape: [6, 6, 8], filters: 8, kernelSize: 3, padding: 'same', activation: 'sigmoid' }),
      L.batchNormalization(),
    ],
  });
  const c = apply(inner, a);
  const innerInput = tfl.input({ shape: [6, 6, 8] });
  const innerFunctional = tfl.model({
    inputs: innerInput,
    outputs: apply(L.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }), innerInput),
  });
  const f = apply(innerFunctional, b);
  const shared = L.conv2d({ filters: 8, kernelSize: 1, activation: 'softplus' });
  const d = apply(shared, b);
  const e = apply(shared, c);
  const merged = [
    apply(L.add(), [d, e, f]),
    apply(L.multiply(), [a, b]),
    apply(L.average(), [a, b, c]),
    apply(L.maximum(), [a, e]),
    apply(L.minimum(), [b, d]),
  ];
  const acts = [
    'relu',
    'relu6',
    'elu',
    'selu',
    'sigmoid',
    'hardSigmoid',
    'tanh',
    'softmax',
    'logSoftmax',
    'linear',
    'swish',
    'gelu',
    'gelu_new',
    'mish',
    'softplus',
    'softsign',
  ].map((activation) => apply(L.activation({ activation: activation as 'relu' }), a));
  const cat = apply(L.concatenate({ axis: -1 }), [...merged, ...acts]);
  const beta = apply(new MultiplyBeta(), cat);
  const conv = apply(L.conv2d({ filters: 12, kernelSize: 3, padding: 'same' }), beta);
  const shuffled = apply(new PixelShuffle2x(), conv);
  const up = apply(L.conv2d({ filters: 3, kernelSize: 3, padding: 'same' }), shuffled);
  const pooled = apply(L.concatenate(), [
    apply(L.globalAveragePooling2d({}), cat),
    apply(L.globalMaxPooling2d({}), cat),
  ]);
  const head = apply(
    L.dense({ units: 5, activation: 'softmax' }),
    apply(L.dense({ units: 16, activation: 'tanh' }), pooled),
  );
  return tfl.model({ inputs: inp, outputs: [up, head] });
}
