/**
 * The TF.js LayersModel importer (`layersImport.ts` + the `tfjs.*` operators) against TF.js itself: `runGraph` on the
 * imported graph must match `@tensorflow/tfjs-layers` `predict` on the published ESRGAN-slim and ESRGAN-medium x2
 * models (a crop of the package's sample image), on the quantised TF.js fixture, and on small Sequential and
 * Functional models built and saved with tfjs-layers here (every supported layer, a nested model, a shared layer,
 * the UpscalerJS custom layers registered on the tfjs-layers side with UpscalerJS's semantics). Gradients through
 * the graph must match tfjs-layers' own. Unsupported layers give one sentence naming the class.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../../src/core/backend/tfjsBackend';
import '../../../src/core/graph/gradients';
import { decodeImage } from '../../../src/core/data/imageFolder';
import { executeGraph, weightTensors } from '../../../src/core/graph/execute';
import { loadLayersModel, registerCustomLayer } from '../../../src/core/graph/layersImport';
import { LAYER_ACTIVATION_NAMES, LAYERS_OP_NAMES } from '../../../src/core/graph/layersOpNames';
import { LAYER_ACTIVATIONS, LAYERS_OPS } from '../../../src/core/graph/layersOps';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { FIXTURES } from '../../helpers/fixtures';
import { relativeMaxError, seededRandom } from './helpers';
import { functionalModel, randomiseWeights, sequentialModel, tfjsLoad, tfjsSave } from '../../helpers/layersModels';

const SLIM = join(FIXTURES, 'published', 'esrgan-slim', 'x2', 'model.json');
const MEDIUM = join(FIXTURES, 'published', 'esrgan-medium', 'x2', 'model.json');
const QUANTISED = join(FIXTURES, 'tfjs', 'layers', 'model.json');
const IMAGE = join(FIXTURES, 'published', 'esrgan-slim', 'assets', 'fixture.png');
const TOLERANCE = 1e-4;

// ---- helpers ----
/** Runs the imported graph and tfjs-layers on the same input and asserts every output agrees. */
async function compareWithTfjs(
  path: string,
  reference: tfl.LayersModel,
  input: Float32Array,
  shape: number[],
): Promise<void> {
  const { graph, weights } = await loadLayersModel(path);
  const before = tf.memory().numTensors;
  const x = tf.tensor(input, shape);
  const refOut = reference.predict(x);
  const refs = Array.isArray(refOut) ? refOut : [refOut];
  const [inputInfo] = graph.inputs;
  assert.ok(inputInfo);
  const w = weightTensors(graph, weights);
  const out = executeGraph(graph, w, { [inputInfo.name]: x });
  assert.equal(graph.outputs.length, refs.length, 'output count');
  graph.outputs.forEach((name, i) => {
    const o = out[name];
    const r = refs[i];
    assert.ok(o && r, name);
    assert.deepEqual(o.shape, r.shape, `shape of ${name}`);
    const err = relativeMaxError(o.dataSync(), r.dataSync());
    assert.ok(err < TOLERANCE, `${path} output ${name}: relative max error ${err}`);
  });
  tf.dispose([x, ...refs, ...Object.values(out), ...Object.values(w)]);
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
}

/** A 1×16×16×3 crop of the ESRGAN sample image, values 0…255 as UpscalerJS feeds it. */
async function imageCrop(): Promise<Float32Array> {
  const image = await decodeImage(readFileSync(IMAGE), IMAGE);
  assert.equal(image.channels, 3);
  const out = new Float32Array(16 * 16 * 3);
  for (let y = 0; y < 16; y++) {
    for (let x = 0; x < 16; x++) {
      for (let c = 0; c < 3; c++)
        out[(y * 16 + x) * 3 + c] = image.data[((y + 40) * image.width + x + 48) * 3 + c] ?? 0;
    }
  }
  return out;
}

/** Every supported layer in a chain; `dilated` adds a dilated convolution (tfjs-layers cannot differentiate it). */
// ---- tests ----

test('the tfjs.* operator table, its name list and the activation list agree', () => {
  assert.deepEqual(Object.keys(LAYERS_OPS).sort(), [...LAYERS_OP_NAMES].sort());
  assert.deepEqual([...LAYER_ACTIVATIONS].sort(), [...LAYER_ACTIVATION_NAMES].sort());
});

test('tfjs.DepthToSpace equals tf.depthToSpace and, unlike it, has a gradient', async () => {
  await initBackend('wasm');
  const op = LAYERS_OPS['tfjs.DepthToSpace'];
  assert.ok(op);
  const before = tf.memory().numTensors;
  const x = tf.tensor(seededRandom(21, 2 * 3 * 4 * 18), [2, 3, 4, 18]);
  const node = { op: 'tfjs.DepthToSpace', name: 'd2s', inputs: ['x'], outputs: ['y'], attrs: { block_size: 3 } };
  const run = (t: tf.Tensor): tf.Tensor => op({ node, inputs: [t], opset: 17 }) as tf.Tensor;
  const [ours, theirs] = tf.tidy(() => [run(x), tf.depthToSpace(x as tf.Tensor4D, 3, 'NHWC')]);
  assert.deepEqual(ours.dataSync(), theirs.dataSync());
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(run(t), tf.reshape(tf.range(0, 2 * 9 * 12 * 2), [2, 9, 12, 2]))))(
    x,
  );
  assert.equal(g.shape.join(), x.shape.join());
  tf.dispose([x, ours, theirs, g]);
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
});

test("ESRGAN-slim x2: weights keep the reader's names and HWIO shapes; runGraph matches tfjs-layers predict", async () => {
  await initBackend('wasm');
  const { graph, weights } = await loadLayersModel(SLIM);
  assert.deepEqual(graph.inputs, [{ name: 'LR', dtype: 'F32', shape: [null, null, null, 3] }]);
  assert.deepEqual(graph.outputs, ['SR']);
  assert.deepEqual(graph.initializers.get('F_m1/kernel')?.shape, [3, 3, 3, 64]);
  assert.equal(weights.get('F_m1/kernel')?.length, 3 * 3 * 3 * 64);
  assert.equal(graph.initializers.size, 24);
  const model = await tfjsLoad(SLIM);
  await compareWithTfjs(SLIM, model, await imageCrop(), [1, 16, 16, 3]);
  model.dispose();
});

test('ESRGAN-medium x2 matches tfjs-layers predict', async () => {
  await initBackend('wasm');
  const model = await tfjsLoad(MEDIUM);
  await compareWithTfjs(MEDIUM, model, await imageCrop(), [1, 16, 16, 3]);
  model.dispose();
});

test('the quantised TF.js fixture (uint8, uint16, float16 weights) matches tfjs-layers predict', async () => {
  await initBackend('wasm');
  const model = await tfjsLoad(QUANTISED);
  await compareWithTfjs(QUANTISED, model, seededRandom(5, 2 * 16 * 16 * 3), [2, 16, 16, 3]);
  model.dispose();
});

test('a Sequential model saved by tfjs-layers (conv, BN, pooling, transposed and separable conv, …) matches predict', async () => {
  await initBackend('wasm');
  const model = sequentialModel(true);
  randomiseWeights(model, 300);
  const path = await tfjsSave(model);
  try {
    await compareWithTfjs(path, model, seededRandom(7, 2 * 12 * 12 * 3), [2, 12, 12, 3]);
  } finally {
    rmSync(dirname(path), { recursive: true, force: true });
    model.dispose();
  }
});

test('a Functional model with merges, nested Sequential and Functional models, a shared layer and the UpscalerJS custom layers matches predict', async () => {
  await initBackend('wasm');
  const model = functionalModel();
  randomiseWeights(model, 500);
  const path = await tfjsSave(model);
  try {
    const doc = readFileSync(path, 'utf8');
    assert.ok(
      doc.includes('"MultiplyBeta"') && doc.includes('"PixelShuffle2x"'),
      'the saved topology uses the custom classes',
    );
    await compareWithTfjs(path, model, seededRandom(9, 2 * 6 * 6 * 4), [2, 6, 6, 4]);
  } finally {
    rmSync(dirname(path), { recursive: true, force: true });
    model.dispose();
  }
});

/**
 * tfjs has no gradient for DepthToSpace, which UpscalerJS's PixelShuffle calls; this one (its inverse rearrangement)
 * lets the tfjs-layers reference differentiate. The importer's operator never uses the kernel (checked above).
 */
let depthToSpaceGradient = false;
function registerDepthToSpaceGradient(): void {
  if (depthToSpaceGradient) return;
  depthToSpaceGradient = true;
  tf.registerGradient({
    kernelName: 'DepthToSpace',
    gradFunc: (dy, _saved, attrs) => {
      const b = (attrs as unknown as { blockSize: number }).blockSize;
      const g = dy as tf.Tensor4D;
      const [n, h, w, c] = g.shape;
      return {
        x: () =>
          tf.reshape(tf.transpose(tf.reshape(g, [n, h / b, b, w / b, b, c]), [0, 1, 3, 2, 4, 5]), [
            n,
            h / b,
            w / b,
            b * b * c,
          ]),
      };
    },
  });
}

test("gradients through runGraph reach every trainable weight and match tfjs-layers' own", async () => {
  await initBackend('wasm');
  registerDepthToSpaceGradient();
  const cases = [
    ['Sequential', () => sequentialModel(false), [2, 12, 12, 3]],
    ['Functional', functionalModel, [2, 6, 6, 4]],
  ] as const;
  for (const [label, build, shape] of cases) {
    const model = build();
    randomiseWeights(model, 700);
    const path = await tfjsSave(model);
    try {
      const { graph, weights } = await loadLayersModel(path);
      const [inputInfo] = graph.inputs;
      assert.ok(inputInfo);
      const before = tf.memory().numTensors;
      const x = tf.tensor(
        seededRandom(
          11,
          shape.reduce((a, b) => a * b, 1),
        ),
        [...shape],
      );
      const w = weightTensors(graph, weights);
      const trainable = model.trainableWeights;
      const names = trainable.map((v) => v.originalName);
      // Loss: a fixed random projection of every output, so each output element has its own weight.
      const loss = (outs: tf.Tensor[]): tf.Scalar =>
        tf.addN(
          outs.map((o, i) => tf.sum(tf.mul(o, tf.randomUniform(o.shape, -1, 1, 'float32', 40 + i)))),
        ) as tf.Scalar;
      const ours = tf.grads((...ts: tf.Tensor[]) => {
        const out = executeGraph(
          graph,
          { ...w, ...Object.fromEntries(names.map((n, i) => [n, ts[i] ?? tf.scalar(0)])) },
          { [inputInfo.name]: x },
        );
        return loss(graph.outputs.map((n) => out[n] ?? tf.scalar(0)));
      })(names.map((n) => w[n] ?? tf.scalar(0)));
      const theirs = tf.variableGrads(() => {
        const out = model.predict(x);
        return loss(Array.isArray(out) ? out : [out]);
      });
      trainable.forEach((v, i) => {
        const g = ours[i];
        const ref = theirs.grads[v.name];
        assert.ok(g && ref, `${label}: gradient of ${v.originalName}`);
        const values = g.dataSync();
        assert.ok(
          values.every((value) => Number.isFinite(value)),
          `${label}: finite gradient for ${v.originalName}`,
        );
        assert.ok(
          values.some((value) => value !== 0),
          `${label}: non-zero gradient for ${v.originalName}`,
        );
        const err = relativeMaxError(values, ref.dataSync());
        assert.ok(err < 1e-3, `${label}: gradient of ${v.originalName} differs from tfjs-layers by ${err}`);
      });
      tf.dispose([...ours, theirs.value, ...Object.values(theirs.grads), x, ...Object.values(w)]);
      assert.equal(tf.memory().numTensors, before, `${label}: no tensor leaks`);
    } finally {
      rmSync(dirname(path), { recursive: true, force: true });
      model.dispose();
    }
  }
});

/** Saves `model`, applies `edit` to its model.json text, runs `fn` on the file, and removes it. */
async function withEdited(
  model: tfl.LayersModel,
  edit: (json: string) => string,
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const path = await tfjsSave(model);
  try {
    const before = readFileSync(path, 'utf8');
    const after = edit(before);
    assert.notEqual(after, before, 'the edit applies');
    writeFileSync(path, after);
    await fn(path);
  } finally {
    rmSync(dirname(path), { recursive: true, force: true });
  }
}

/** Renames the class of layer `layer` (anywhere in the topology) to `className`, in model.json text. */
function renameClass(json: string, layer: string, className: string): string {
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (typeof v === 'object' && v !== null) {
      const o = v as Record<string, unknown>;
      const config = o.config as Record<string, unknown> | undefined;
      if (typeof o.class_name === 'string' && config?.name === layer) o.class_name = className;
      Object.values(o).forEach(visit);
    }
  };
  const doc: unknown = JSON.parse(json);
  visit(doc);
  return JSON.stringify(doc);
}

/** A two-Dense model whose second layer is renamed to `className` in model.json; returns the import error. */
async function importErrorWithClass(className: string): Promise<unknown> {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [3], units: 2, name: 'first' }),
      tfl.layers.dense({ units: 2, name: 'odd_one' }),
    ],
  });
  let error: unknown;
  try {
    await withEdited(
      model,
      (json) => renameClass(json, 'odd_one', className),
      async (path) => {
        error = await loadLayersModel(path).then(
          () => undefined,
          (e: unknown) => e,
        );
      },
    );
  } finally {
    model.dispose();
  }
  return error;
}

test('an unknown or custom class and a Lambda layer are refused in one sentence naming the class and the layer', async () => {
  await initBackend('wasm');
  for (const className of ['Foo', 'MyCustomLayer']) {
    const error = await importErrorWithClass(className);
    assert.ok(error instanceof CheckpointFormatError, String(error));
    assert.match(
      error.message,
      new RegExp(
        `TF\\.js layer class '${className}' \\(layer 'odd_one'\\) is not supported; supported: .*Conv2D.*MultiplyBeta.*PixelShuffle2x.*\\.$`,
      ),
    );
    assert.equal(error.message.split('. ').length, 1, `one sentence: ${error.message}`);
  }
  const lambda = await importErrorWithClass('Lambda');
  assert.ok(lambda instanceof CheckpointFormatError);
  assert.match(lambda.message, /layer 'odd_one' \(Lambda\) is not supported: a Lambda layer wraps Python code/);
});

test('a weight missing from the manifest, a wrong kernel shape and a GraphModel are refused with one sentence each', async () => {
  await initBackend('wasm');
  const model = tfl.sequential({
    layers: [tfl.layers.conv2d({ inputShape: [4, 4, 2], filters: 3, kernelSize: 3, name: 'conv' })],
  });
  const failure = async (edit: (json: string) => string): Promise<string> => {
    let message = '';
    await withEdited(model, edit, async (path) => {
      const error = await loadLayersModel(path).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof CheckpointFormatError, String(error));
      message = error.message;
    });
    return message;
  };
  assert.match(
    await failure((json) => json.replace('"conv/kernel"', '"other/kernel"')),
    /layer 'conv' \(Conv2D\) needs weight 'conv\/kernel', which the weights manifest does not list\.$/,
  );
  assert.match(
    await failure((json) => json.replace('"kernel_size":[3,3]', '"kernel_size":[5,5]')),
    /expects weight 'conv\/kernel' of shape \[5, 5, \?, 3\], but the manifest gives \[3, 3, 2, 3\]\.$/,
  );
  model.dispose();
  const folder = mkdtempSync(join(tmpdir(), 'weight-lens-layers-'));
  try {
    writeFileSync(
      join(folder, 'model.json'),
      JSON.stringify({ format: 'graph-model', modelTopology: { node: [] }, weightsManifest: [] }),
    );
    await assert.rejects(
      loadLayersModel(join(folder, 'model.json')),
      (e: unknown) =>
        e instanceof CheckpointFormatError && /is a TF\.js GraphModel, which cannot be run/.test(e.message),
    );
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test('registerCustomLayer makes a custom class importable, and Subtract (absent from tfjs-layers) subtracts', async () => {
  await initBackend('wasm');
  registerCustomLayer('TimesThree', (ctx) => ({ op: 'tfjs.Scale', inputs: ctx.inputs, attrs: { factor: 3 } }));
  const inp = tfl.input({ shape: [4] });
  const d1 = tfl.layers.dense({ units: 3, name: 'd1' }).apply(inp) as tfl.SymbolicTensor;
  const d2 = tfl.layers.dense({ units: 3, name: 'd2' }).apply(inp) as tfl.SymbolicTensor;
  const merged = tfl.layers.add({ name: 'merged' }).apply([d1, d2]) as tfl.SymbolicTensor;
  const scaled = tfl.layers.activation({ activation: 'linear', name: 'scaled' }).apply(merged) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: inp, outputs: [d1, d2, scaled] });
  randomiseWeights(model, 900);
  const edit = (json: string): string => renameClass(renameClass(json, 'merged', 'Subtract'), 'scaled', 'TimesThree');
  await withEdited(model, edit, async (path) => {
    const { graph, weights } = await loadLayersModel(path);
    const before = tf.memory().numTensors;
    const x = tf.tensor(seededRandom(13, 8), [2, 4]);
    const w = weightTensors(graph, weights);
    const out = executeGraph(graph, w, { [graph.inputs[0]?.name ?? '']: x });
    const [a, b, y] = graph.outputs.map((n) => out[n]);
    assert.ok(a && b && y);
    const expected = tf.tidy(() => tf.mul(tf.sub(a, b), 3));
    assert.ok(relativeMaxError(y.dataSync(), expected.dataSync()) < 1e-6);
    tf.dispose([x, expected, ...Object.values(out), ...Object.values(w)]);
    assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  });
  model.dispose();
});

test('dilated convolutions (plain, depthwise, separable) match tfjs-core, and their gradients match a central difference', async () => {
  await initBackend('wasm');
  const L = tfl.layers;
  // tfjs-layers ignores DepthwiseConv2D's dilation (a TODO in its source); Keras and the importer honour it, so the
  // reference here is the tfjs-core ops themselves.
  const model = tfl.sequential({
    layers: [
      L.conv2d({ inputShape: [9, 9, 2], filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same' }),
      L.depthwiseConv2d({ kernelSize: [2, 3], dilationRate: [3, 2], padding: 'valid', depthMultiplier: 2 }),
      L.separableConv2d({ filters: 2, kernelSize: 2, dilationRate: 2, padding: 'same' }),
    ],
  });
  randomiseWeights(model, 1100);
  const path = await tfjsSave(model);
  try {
    const { graph, weights } = await loadLayersModel(path);
    const before = tf.memory().numTensors;
    const x = tf.tensor4d(seededRandom(17, 9 * 9 * 2), [1, 9, 9, 2]);
    const w = weightTensors(graph, weights);
    const [outName] = graph.outputs;
    const inName = graph.inputs[0]?.name ?? '';
    const expected = tf.tidy(() => {
      const [c, d, s] = model.layers.map((l) => l.getWeights() as tf.Tensor4D[]);
      const conv = tf.add<tf.Tensor4D>(tf.conv2d(x, c![0]!, 1, 'same', 'NHWC', 2), c![1]!);
      const depth = tf.add<tf.Tensor4D>(tf.depthwiseConv2d(conv, d![0]!, 1, 'valid', 'NHWC', [3, 2]), d![1]!);
      return tf.add(tf.separableConv2d(depth, s![0]!, s![1]!, 1, 'same', 2, 'NHWC'), s![2]!);
    });
    const out = executeGraph(graph, w, { [inName]: x })[outName ?? ''];
    assert.ok(out);
    assert.deepEqual(out.shape, expected.shape);
    assert.ok(relativeMaxError(out.dataSync(), expected.dataSync()) < TOLERANCE, 'forward matches');
    tf.dispose([out, expected]);
    const loss = (name: string, k: tf.Tensor): tf.Scalar =>
      tf.tidy(() =>
        tf.sum(tf.square(executeGraph(graph, { ...w, [name]: k }, { [inName]: x })[outName ?? ''] ?? tf.scalar(0))),
      );
    for (const name of graph.initializers.keys()) {
      if (!/kernel$/.test(name)) continue;
      const k = w[name];
      assert.ok(k);
      const g = tf.grad((t: tf.Tensor) => loss(name, t))(k);
      const v = tf.tensor(seededRandom(19, k.size), k.shape);
      const eps = 1e-2;
      const [plus, minus] = [1, -1].map((sign) => tf.tidy(() => loss(name, tf.add(k, tf.mul(v, sign * eps)))));
      const central = ((plus?.dataSync()[0] ?? 0) - (minus?.dataSync()[0] ?? 0)) / (2 * eps);
      const analytic = tf.tidy(() => tf.sum(tf.mul(g, v)).dataSync()[0] ?? NaN);
      assert.ok(
        Math.abs(central - analytic) <= 1e-2 * Math.max(1, Math.abs(central)),
        `${name}: gradient ${analytic}, central difference ${central}`,
      );
      tf.dispose([g, v, plus, minus].filter((t): t is tf.Tensor => t !== undefined));
    }
    tf.dispose([x, ...Object.values(w)]);
    assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  } finally {
    rmSync(dirname(path), { recursive: true, force: true });
    model.dispose();
  }
});
