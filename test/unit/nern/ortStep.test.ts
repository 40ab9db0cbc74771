// The native training step (onnxruntime-node, optional): the ONNX graph's structure, loading and fallback without
// the package, and — only where onnxruntime-node is installed — its gradients against tfjs, its training curve
// against the tfjs engine, determinism and the collapse guard; the in-graph fake quantisation against
// tensors/quantize.ts, and the quantisation-aware step's loss and gradients against the tfjs one.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../../src/core/backend/tfjsBackend';
import { decodeUtf8, ProtoReader } from '../../../src/core/containers/protobuf';
import { type KernelLayer } from '../../../src/core/nern/kernelMap';
import { adamConfig, nernRangerConfig } from '../../../src/core/nern/optimizer';
import {
  buildFakeQuantModel,
  buildTrainStepModel,
  loadOnnxRuntime,
  ortParamNames,
  ortUnsupportedReason,
  type OrtTensorLike,
} from '../../../src/core/nern/ortStep';
import {
  layerShapes,
  nernPredictorSpec,
  Predictor,
  quantizedPredictorWeights,
  rmseLoss,
} from '../../../src/core/nern/predictor';
import { dequantizeMatrix, quantizeMatrix, type QuantBits } from '../../../src/core/tensors/quantize';
import { Rng } from '../../../src/core/nern/rng';
import { trainReconstruction, type TrainOptions } from '../../../src/core/nern/train';
import { projectOrt } from '../../helpers/ort';

const { loaded: ORT, skip: NEEDS_ORT, ort } = projectOrt();

before(async () => {
  await initBackend('wasm');
});

function syntheticLayers(seed = 1): KernelLayer[] {
  const rng = new Rng(seed);
  const make = (name: string, cout: number, cin: number, k: number, amp: number): KernelLayer => {
    const values = new Float32Array(cout * cin * k * k);
    for (let f = 0; f < cout; f++) {
      for (let c = 0; c < cin; c++) {
        for (let j = 0; j < k * k; j++) {
          values[(f * cin + c) * k * k + j] =
            amp * (Math.sin((3 * f) / cout + j) * Math.cos((2 * c) / cin - j / 3) + 0.1 * (2 * rng.next() - 1));
        }
      }
    }
    return { name, shape: [cout, cin, k, k], values };
  };
  return [make('a', 8, 3, 3, 0.2), make('b', 8, 8, 3, 0.1), make('c', 4, 8, 1, 0.3)];
}

const SMALL: Partial<TrainOptions> = {
  hidden: 24,
  steps: 20,
  batchSize: 64,
  lr: 5e-3,
  warmupSteps: 2,
  progressEvery: 1,
  seed: 3,
  permutation: 'none',
  engineThreads: 1,
};

void test('the step graph is an opset-17 ModelProto with the documented inputs and outputs', () => {
  const spec = nernPredictorSpec(16, 240, 9);
  const bytes = buildTrainStepModel({
    spec,
    masked: true,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    l2: 1e-4,
    decoupled: true,
  });
  const model = new ProtoReader(bytes);
  let ir = -1;
  let opset = -1;
  const inputs: string[] = [];
  const outputs: string[] = [];
  const ops = new Set<string>();
  for (let f = model.next(); f; f = model.next()) {
    if (f.field === 1) ir = Number(f.varint);
    if (f.field === 8) {
      const o = model.child(f);
      for (let g = o.next(); g; g = o.next()) if (g.field === 2) opset = Number(g.varint);
    }
    if (f.field !== 7) continue;
    const graph = model.child(f);
    for (let g = graph.next(); g; g = graph.next()) {
      if (g.field === 1) {
        const node = graph.child(g);
        for (let n = node.next(); n; n = node.next()) if (n.field === 4) ops.add(decodeUtf8(node.payload(n)));
      }
      if (g.field === 11 || g.field === 12) {
        const vi = graph.child(g);
        const name = vi.next();
        if (name?.field === 1) (g.field === 11 ? inputs : outputs).push(decodeUtf8(vi.payload(name)));
      }
    }
  }
  assert.equal(ir, 8);
  assert.equal(opset, 17);
  const params = ortParamNames(spec);
  assert.deepEqual(params, ['w0', 'b0', 'w1', 'b1', 'w2', 'b2', 'w3', 'b3', 'w4', 'b4']);
  assert.deepEqual(inputs, [
    'x',
    't',
    's',
    'mask',
    'count',
    'stepScale',
    'denomScale',
    'decay',
    ...params.flatMap((p) => [p, `m_${p}`, `v_${p}`]),
  ]);
  assert.deepEqual(outputs, ['loss', ...params.flatMap((p) => [`${p}_new`, `m_${p}_new`, `v_${p}_new`])]);
  assert.deepEqual([...ops].sort(), [
    'Add',
    'Div',
    'Gemm',
    'Greater',
    'Max',
    'Mul',
    'ReduceSum',
    'Relu',
    'Sqrt',
    'Sub',
    'Where',
  ]);
});

/** The op types of an ONNX ModelProto's graph. */
function graphOps(bytes: Uint8Array): Set<string> {
  const ops = new Set<string>();
  const model = new ProtoReader(bytes);
  for (let f = model.next(); f; f = model.next()) {
    if (f.field !== 7) continue;
    const graph = model.child(f);
    for (let g = graph.next(); g; g = graph.next()) {
      if (g.field !== 1) continue;
      const node = graph.child(g);
      for (let n = node.next(); n; n = node.next()) if (n.field === 4) ops.add(decodeUtf8(node.payload(n)));
    }
  }
  return ops;
}

void test('the quantisation-aware step graph fake-quantises in-graph with ReduceMax/Abs/Div/Round/Clip/Mul', () => {
  const g = { spec: nernPredictorSpec(8, 240, 9), masked: false, beta1: 0.9, beta2: 0.999, eps: 1e-8, l2: 0 };
  const plain = graphOps(buildTrainStepModel({ ...g, decoupled: false }));
  const qat = graphOps(buildTrainStepModel({ ...g, decoupled: false, quantBits: 4 }));
  for (const op of ['Abs', 'ReduceMax', 'Round', 'Clip', 'Equal']) {
    assert.ok(qat.has(op), `${op} in the quantisation-aware graph`);
    assert.ok(!plain.has(op), `${op} not in the float graph`);
  }
});

/** A [rows, cols] matrix with a zero column, exact ties for int8 (column 2) and int4 (column 3), and an outlier. */
function awkwardMatrix(rows: number, cols: number, seed: number): Float32Array {
  const w = new Rng(seed).fillUniform(new Float32Array(rows * cols), 0.3);
  for (let r = 0; r < rows; r++) {
    w[r * cols + 1] = 0;
    w[r * cols + 2] = Math.fround(((r % 7) - 3 + 0.5) * 0.01);
    w[r * cols + 3] = Math.fround(((r % 5) - 2 + 0.5) * 0.1);
  }
  w[2] = 1.27;
  w[3] = -0.7;
  w[(rows - 1) * cols] = 40;
  return w;
}

void test(
  'in-graph fake quantisation equals dequantizeMatrix(quantizeMatrix(W)) exactly (int8, int4)',
  { skip: NEEDS_ORT },
  async () => {
    const rows = 37;
    const cols = 11;
    const T = ort().Tensor;
    for (const bits of [8, 4] as QuantBits[]) {
      const session = await ort().InferenceSession.create(buildFakeQuantModel(rows, cols, bits), {
        logSeverityLevel: 3,
      });
      for (const seed of [1, 2, 3]) {
        const w = awkwardMatrix(rows, cols, seed);
        const out = await session.run({ w: new T('float32', w, [rows, cols]) });
        const got = out.wq!.data as Float32Array;
        const expected = dequantizeMatrix(quantizeMatrix(w, rows, cols, bits, 'column'));
        const bad = expected.findIndex((v, i) => v !== got[i]);
        assert.equal(bad, -1, `int${bits} seed ${seed}: [${bad}] ${got[bad]} vs ${expected[bad]}`);
      }
      await session.release();
    }
  },
);

void test(
  'the quantisation-aware step: loss and gradients equal tfjs on fake-quantised weights (straight-through) to 1e-5',
  { skip: NEEDS_ORT },
  async () => {
    const spec = nernPredictorSpec(24, 240, 9);
    const predictor = Predictor.create(spec, 7);
    const rows = 64;
    const rng = new Rng(12);
    const x = rng.fillUniform(new Float32Array(rows * 240), 1);
    const t = rng.fillUniform(new Float32Array(rows * 9), 0.05);
    const s = new Float32Array(rows).map(() => 0.02 + 0.05 * rng.next());
    const count = rows * 9;
    const bits: QuantBits = 4;
    const ref = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () =>
          rmseLoss(
            predictor.apply(tf.tensor2d(x, [rows, 240]), bits),
            tf.tensor2d(t, [rows, 9]),
            tf.tensor2d(s, [rows, 1]),
            null,
            count,
          ),
        predictor.variables,
      );
      return {
        loss: value.dataSync()[0]!,
        grads: predictor.variables.map((v) => Float32Array.from((grads[v.name] as tf.Tensor).dataSync())),
      };
    });
    // The loss is the quantised predictor's: the forward pass saw dequant(quant(W)).
    const q = Predictor.fromWeights(quantizedPredictorWeights(predictor.weights(), bits));
    const qLoss = tf.tidy(
      () =>
        rmseLoss(
          q.apply(tf.tensor2d(x, [rows, 240])),
          tf.tensor2d(t, [rows, 9]),
          tf.tensor2d(s, [rows, 1]),
          null,
          count,
        ).dataSync()[0]!,
    );
    q.dispose();
    assert.ok(Math.abs(ref.loss - qLoss) <= 1e-6 * qLoss, `tfjs quantisation-aware loss ${ref.loss} vs ${qLoss}`);
    const T = ort().Tensor;
    const session = await ort().InferenceSession.create(
      buildTrainStepModel({
        spec,
        masked: false,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        l2: 0,
        decoupled: false,
        quantBits: bits,
      }),
      { intraOpNumThreads: 1, logSeverityLevel: 3 },
    );
    const feeds: Record<string, OrtTensorLike> = {
      x: new T('float32', x, [rows, 240]),
      t: new T('float32', t, [rows, 9]),
      s: new T('float32', s, [rows, 1]),
      count: new T('float32', Float32Array.of(count), []),
      stepScale: new T('float32', Float32Array.of(1e-2), []),
      denomScale: new T('float32', Float32Array.of(1), []),
    };
    const dims = layerShapes(spec).flatMap(([i, o]) => [[i, o], [o]]);
    ortParamNames(spec).forEach((n, i) => {
      const v = predictor.variables[i]!;
      feeds[n] = new T('float32', Float32Array.from(v.dataSync()), dims[i]!);
      feeds[`m_${n}`] = new T('float32', new Float32Array(v.size), dims[i]!);
      feeds[`v_${n}`] = new T('float32', new Float32Array(v.size), dims[i]!);
    });
    const out = await session.run(feeds);
    await session.release();
    const loss = (out.loss!.data as Float32Array)[0]!;
    assert.ok(Math.abs(loss - ref.loss) <= 1e-5 * ref.loss, `onnxruntime ${loss} vs tfjs ${ref.loss}`);
    ortParamNames(spec).forEach((n, i) => {
      const g = (out[`m_${n}_new`]!.data as Float32Array).map((m) => m / 0.1);
      const r = ref.grads[i]!;
      let num = 0;
      let den = 0;
      for (let k = 0; k < r.length; k++) {
        num += (g[k]! - r[k]!) ** 2;
        den += r[k]! ** 2;
      }
      assert.ok(Math.sqrt(num / den) < 1e-5, `${n}: relative gradient error ${Math.sqrt(num / den)}`);
    });
    predictor.dispose();
  },
);

void test('loading reports why onnxruntime-node cannot be used, without throwing', () => {
  const missing = loadOnnxRuntime(() => {
    const e = new Error("Cannot find module 'onnxruntime-node'") as NodeJS.ErrnoException;
    e.code = 'MODULE_NOT_FOUND';
    throw e;
  });
  assert.deepEqual(missing, { ok: false, reason: 'onnxruntime-node is not installed' });
  const broken = loadOnnxRuntime(() => {
    throw new Error('libonnxruntime.so.1: cannot open shared object file\nmore');
  });
  assert.ok(!broken.ok);
  assert.match(broken.reason, /failed to load \(libonnxruntime\.so\.1: cannot open shared object file\)$/);
  const odd = loadOnnxRuntime(() => ({}));
  assert.match(odd.ok ? '' : odd.reason, /no Tensor/);
  assert.equal(ortUnsupportedReason(adamConfig(10)), null);
  assert.match(ortUnsupportedReason(nernRangerConfig(10)) ?? '', /Adam only/);
});

void test('auto falls back to tfjs with a reason (Ranger is not implemented natively)', async () => {
  const engines: string[] = [];
  const result = await trainReconstruction(
    syntheticLayers(),
    { ...SMALL, steps: 3, optimizer: 'ranger', engine: 'auto' },
    { onEngine: (e) => engines.push(e.name) },
  );
  assert.equal(result.engine.name, 'tfjs (wasm)');
  assert.match(
    result.engine.fallbackReason ?? '',
    /onnxruntime engine unavailable: the onnxruntime step implements Adam only, not ranger/,
  );
  assert.deepEqual(engines, ['tfjs (wasm)']);
  const plain = await trainReconstruction(syntheticLayers(), { ...SMALL, steps: 3 });
  assert.deepEqual(plain.engine, { name: 'tfjs (wasm)' });
});

void test(
  'without onnxruntime-node, engine onnxruntime falls back to tfjs and still trains',
  { skip: ORT.ok ? 'onnxruntime-node is installed here' : false },
  async () => {
    const result = await trainReconstruction(syntheticLayers(), { ...SMALL, engine: 'onnxruntime' });
    assert.equal(result.engine.name, 'tfjs (wasm)');
    assert.match(result.engine.fallbackReason ?? '', /onnxruntime-node is not installed/);
    assert.ok(Number.isFinite(result.evaluation.rmse));
  },
);

void test(
  'graph gradients equal tfjs variableGrads of rmseLoss (scales and mask) to 1e-5',
  { skip: NEEDS_ORT },
  async () => {
    const spec = nernPredictorSpec(24, 240, 9);
    const predictor = Predictor.create(spec, 7);
    const rows = 64;
    const rng = new Rng(11);
    const x = rng.fillUniform(new Float32Array(rows * 240), 1);
    const t = rng.fillUniform(new Float32Array(rows * 9), 0.05);
    const s = new Float32Array(rows).map(() => 0.02 + 0.05 * rng.next());
    const mask = new Float32Array(rows * 9).map((_, i) => (Math.floor(i / 9) % 3 === 0 && i % 9 !== 4 ? 0 : 1));
    const count = mask.reduce((a, b) => a + b, 0);
    const ref = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () =>
          rmseLoss(
            predictor.apply(tf.tensor2d(x, [rows, 240])),
            tf.tensor2d(t, [rows, 9]),
            tf.tensor2d(s, [rows, 1]),
            tf.tensor2d(mask, [rows, 9]),
            count,
          ),
        predictor.variables,
      );
      return {
        loss: value.dataSync()[0]!,
        grads: predictor.variables.map((v) => Float32Array.from((grads[v.name] as tf.Tensor).dataSync())),
      };
    });
    const T = ort().Tensor;
    const session = await ort().InferenceSession.create(
      buildTrainStepModel({ spec, masked: true, beta1: 0.9, beta2: 0.999, eps: 1e-8, l2: 0, decoupled: false }),
      { intraOpNumThreads: 1, logSeverityLevel: 3 },
    );
    const feeds: Record<string, OrtTensorLike> = {
      x: new T('float32', x, [rows, 240]),
      t: new T('float32', t, [rows, 9]),
      s: new T('float32', s, [rows, 1]),
      mask: new T('float32', mask, [rows, 9]),
      count: new T('float32', Float32Array.of(count), []),
      stepScale: new T('float32', Float32Array.of(1e-2), []),
      denomScale: new T('float32', Float32Array.of(1), []),
    };
    const dims = layerShapes(spec).flatMap(([i, o]) => [[i, o], [o]]);
    ortParamNames(spec).forEach((n, i) => {
      const v = predictor.variables[i]!;
      feeds[n] = new T('float32', Float32Array.from(v.dataSync()), dims[i]!);
      feeds[`m_${n}`] = new T('float32', new Float32Array(v.size), dims[i]!);
      feeds[`v_${n}`] = new T('float32', new Float32Array(v.size), dims[i]!);
    });
    const out = await session.run(feeds);
    await session.release();
    assert.ok(Math.abs((out.loss!.data as Float32Array)[0]! - ref.loss) <= 1e-5 * ref.loss);
    ortParamNames(spec).forEach((n, i) => {
      const g = (out[`m_${n}_new`]!.data as Float32Array).map((m) => m / 0.1);
      const r = ref.grads[i]!;
      let num = 0;
      let den = 0;
      for (let k = 0; k < r.length; k++) {
        num += (g[k]! - r[k]!) ** 2;
        den += r[k]! ** 2;
      }
      assert.ok(Math.sqrt(num / den) < 1e-5, `${n}: relative gradient error ${Math.sqrt(num / den)}`);
    });
    predictor.dispose();
  },
);

void test(
  'onnxruntime and tfjs engines follow the same training curve over 20 steps',
  { skip: NEEDS_ORT },
  async () => {
    const run = async (engine: 'tfjs' | 'onnxruntime'): Promise<{ losses: number[]; rmse: number; name: string }> => {
      const losses: number[] = [];
      const r = await trainReconstruction(
        syntheticLayers(),
        { ...SMALL, engine },
        { onProgress: (p) => losses.push(p.loss) },
      );
      return { losses, rmse: r.evaluation.rmse, name: r.engine.name };
    };
    const a = await run('tfjs');
    const b = await run('onnxruntime');
    assert.equal(b.name, 'onnxruntime (native, 1 thread)');
    assert.equal(a.losses.length, 20);
    assert.equal(b.losses.length, 20);
    a.losses.forEach((l, i) => {
      assert.ok(Math.abs(b.losses[i]! - l) <= 0.02 * l, `step ${i + 1}: tfjs ${l} vs onnxruntime ${b.losses[i]}`);
    });
    assert.ok(Math.abs(a.rmse - b.rmse) <= 0.02 * a.rmse, `final rmse tfjs ${a.rmse} vs onnxruntime ${b.rmse}`);
    assert.ok(a.losses.at(-1)! < a.losses[0]!, 'it learns');
  },
);

void test(
  'onnxruntime engine: same seed → identical weights; 1×1 layers and evaluations work',
  { skip: NEEDS_ORT },
  async () => {
    const once = (): Promise<Awaited<ReturnType<typeof trainReconstruction>>> =>
      trainReconstruction(syntheticLayers(), { ...SMALL, engine: 'onnxruntime', engineThreads: 2, evalEvery: 10 });
    const r1 = await once();
    const r2 = await once();
    assert.equal(r1.engine.name, 'onnxruntime (native, 2 threads)');
    r1.predictor.layers.forEach((l, i) => {
      assert.deepEqual(l.weight, r2.predictor.layers[i]!.weight);
      assert.deepEqual(l.bias, r2.predictor.layers[i]!.bias);
    });
    assert.deepEqual(r1.reconstruction, r2.reconstruction);
  },
);

void test('onnxruntime engine: the collapse guard rolls back a diverging run', { skip: NEEDS_ORT }, async () => {
  const tensors = tf.memory().numTensors;
  const r = await trainReconstruction(syntheticLayers(), {
    ...SMALL,
    engine: 'onnxruntime',
    steps: 40,
    lr: 50,
    warmupSteps: 0,
    guardEvery: 5,
  });
  assert.ok(r.guardEvents.length > 0, 'a rollback happened');
  assert.match(r.guardEvents[0]!, /rolled back to step \d+/);
  assert.ok(Number.isFinite(r.evaluation.rmse));
  assert.equal(tf.memory().numTensors, tensors, 'no tensors leak');
});
