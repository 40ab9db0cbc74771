// Optimisers against PyTorch 1.13: torch.optim.RAdam and torch.optim.Adam trajectories, and Ranger (RAdam with
// decoupled weight decay + Lookahead) against the Python reference in bench/reference/nern_reference.py. The vectors
// were printed by bench/reference/optim_vectors.py (Debian python3-torch 1.13); the problem is a tiny least squares
// loss = Σ (x·w + b − y)², whose gradient is computed here by hand.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../../src/core/backend/tfjsBackend';
import {
  adamConfig,
  learningRateAt,
  NernOptimizer,
  nernRangerConfig,
  radamRectification,
  type OptimizerConfig,
} from '../../../src/core/nern/optimizer';

interface Step {
  w: number[];
  b: number[];
}
const REF = JSON.parse(
  '{"x":[[0.5,-1.0],[1.5,0.25],[-0.75,0.5],[0.10000000149011612,2.0]],"y":[[1.0,0.0,-1.0],[0.5,0.5,0.5],[-0.25,1.0,0.0],[2.0,-1.0,0.75]],"w0":[[0.1,-0.2,0.3],[0.05,0.15,-0.1]],"b0":[0.01,-0.02,0.03],"radam":[{"w":[0.36624998,-0.08249998,0.16625001,0.59932494,-0.28952503,0.53884995],"b":[0.60749,0.09751999,0.00996999]},{"w":[0.47868961,-0.03364374,0.09884854,0.73951644,-0.50096959,0.81957817],"b":[0.81406385,0.22976381,-0.10029209]},{"w":[0.49703357,-0.03653766,0.08599089,0.66462737,-0.56968731,0.88395345],"b":[0.80044729,0.3502506,-0.23747131]},{"w":[0.46506894,-0.07530423,0.11444896,0.50765729,-0.55849802,0.83457899],"b":[0.68669689,0.44404888,-0.36162567]},{"w":[0.4131453,-0.13562992,0.17069933,0.35181946,-0.51120752,0.74130708],"b":[0.5510807,0.5052045,-0.45139438]},{"w":[0.41223037,-0.13735345,0.17231865,0.35098776,-0.51056987,0.74058366],"b":[0.55023193,0.50598621,-0.45240241]},{"w":[0.4109849,-0.13974325,0.17463546,0.35018545,-0.50962335,0.73959863],"b":[0.54924315,0.50620472,-0.45289993]},{"w":[0.40942499,-0.14274651,0.17759837,0.34948775,-0.50836593,0.73836279],"b":[0.54815817,0.50577581,-0.45278206]}],"adam":[{"w":[0.15000001,-0.15000001,0.25,0.1,0.10000001,-0.05],"b":[0.06,0.03,-0.01999999]},{"w":[0.19960713,-0.10215364,0.20166492,0.14972222,0.05017248,-0.00010551],"b":[0.10973622,0.0787372,-0.02290624]},{"w":[0.24843526,-0.06010347,0.15613654,0.19891599,0.00066141,0.04951741],"b":[0.15897372,0.12450911,-0.0096247]},{"w":[0.29597205,-0.02936769,0.11490463,0.24726842,-0.04835961,0.09866796],"b":[0.20742273,0.16493067,-0.000547]},{"w":[0.34155405,-0.01397589,0.08012844,0.29439414,-0.09667758,0.14714415],"b":[0.25473109,0.19778082,-0.00629279]},{"w":[0.38435581,-0.01324721,0.05452624,0.33982772,-0.1440278,0.194769],"b":[0.30048001,0.22230867,-0.02323513]},{"w":[0.42341188,-0.02384225,0.0400871,0.38302323,-0.190083,0.24137992],"b":[0.34418669,0.23955968,-0.04608788]},{"w":[0.45769221,-0.04247274,0.03695574,0.42336553,-0.23445058,0.28681582],"b":[0.38531753,0.25167894,-0.07090707]}],"ranger":[{"w":[0.36633998,-0.08267998,0.16651998,0.59936994,-0.28939003,0.53876001],"b":[0.607499,0.097502,0.00999699]},{"w":[0.43796772,-0.05215976,0.11688657,0.63078511,-0.44022584,0.72432929],"b":[0.71014458,0.23373124,-0.12435336]},{"w":[0.41405258,-0.0833459,0.13572963,0.47707897,-0.44323561,0.69291651],"b":[0.6071524,0.33848298,-0.25940034]},{"w":[0.36967561,-0.14417006,0.19422545,0.35490099,-0.40596676,0.61833376],"b":[0.49799848,0.39099723,-0.33394745]},{"w":[0.34156337,-0.20524736,0.26015019,0.33231151,-0.38231924,0.58043921],"b":[0.45939311,0.39998025,-0.3450686]},{"w":[0.22068912,-0.20336978,0.28086281,0.19133912,-0.11613426,0.24020955],"b":[0.23476005,0.18980068,-0.15724483]},{"w":[0.22246569,-0.20323674,0.28078666,0.19345796,-0.11807426,0.2421705],"b":[0.23677351,0.19045144,-0.15657963]},{"w":[0.22565123,-0.20180561,0.27938363,0.19684814,-0.12142245,0.24552989],"b":[0.24013458,0.19195379,-0.15582936]}]}',
) as { x: number[][]; y: number[][]; w0: number[][]; b0: number[]; radam: Step[]; adam: Step[]; ranger: Step[] };

before(async () => {
  await initBackend('wasm');
});

/** Gradient of Σ (x·w + b − y)² for w [2, 3], b [3] (row-major), in float64. */
function gradients(w: ArrayLike<number>, b: ArrayLike<number>): { gw: Float32Array; gb: Float32Array } {
  const gw = new Float32Array(6);
  const gb = new Float32Array(3);
  REF.x.forEach((xr, n) => {
    for (let j = 0; j < 3; j++) {
      const r = xr[0]! * w[j]! + xr[1]! * w[3 + j]! + b[j]! - REF.y[n]![j]!;
      gw[j] = gw[j]! + 2 * r * xr[0]!;
      gw[3 + j] = gw[3 + j]! + 2 * r * xr[1]!;
      gb[j] = gb[j]! + 2 * r;
    }
  });
  return { gw, gb };
}

function runAgainst(config: OptimizerConfig, expected: Step[], tol: number): void {
  const w = tf.variable(tf.tensor2d(REF.w0.flat(), [2, 3]));
  const b = tf.variable(tf.tensor1d(REF.b0));
  const opt = new NernOptimizer([w, b], config);
  const tensorsBefore = tf.memory().numTensors;
  expected.forEach((ref, i) => {
    const { gw, gb } = gradients(w.dataSync(), b.dataSync());
    tf.tidy(() => {
      opt.step([tf.tensor2d(gw, [2, 3]), tf.tensor1d(gb)]);
    });
    const ws = w.dataSync();
    const bs = b.dataSync();
    ref.w.forEach((v, j) => {
      assert.ok(Math.abs(ws[j]! - v) <= tol, `step ${i + 1} w[${j}] ${ws[j]} vs torch ${v}`);
    });
    ref.b.forEach((v, j) => {
      assert.ok(Math.abs(bs[j]! - v) <= tol, `step ${i + 1} b[${j}] ${bs[j]} vs torch ${v}`);
    });
    assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensors leak per step');
  });
  opt.dispose();
  w.dispose();
  b.dispose();
}

const constant = (_lr: number): OptimizerConfig['schedule'] => ({
  kind: 'constant',
  totalSteps: 8,
  minLr: 0,
  warmupSteps: 0,
});

void test('RAdam matches torch.optim.RAdam (β 0.9/0.999, wd 0.01 as L2) over 8 steps, both rectification branches', () => {
  // Steps 1–5 take the un-rectified branch (ρ_t ≤ 5), steps 6–8 the rectified one.
  assert.equal(radamRectification(0.999, 5), null);
  assert.ok((radamRectification(0.999, 6) ?? 0) > 0);
  runAgainst(
    {
      kind: 'radam',
      lr: 0.1,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0.01,
      weightDecayMode: 'l2',
      lookahead: null,
      gradientCentralization: false,
      schedule: constant(0.1),
    },
    REF.radam,
    2e-5,
  );
});

void test('Adam matches torch.optim.Adam over 8 steps', () => {
  runAgainst({ ...adamConfig(8, 0.05), schedule: constant(0.05) }, REF.adam, 2e-5);
});

void test('Ranger (β1 0.5, eps 1e-5, decoupled wd 1e-3, Lookahead k=6 α=0.5) matches the Python reference', () => {
  const config = { ...nernRangerConfig(8), lr: 0.1, schedule: constant(0.1) };
  runAgainst(config, REF.ranger, 2e-5);
});

void test('learning-rate schedule: warm-up, cosine to the floor, constant', () => {
  const s = { kind: 'cosine' as const, totalSteps: 110, minLr: 1e-6, warmupSteps: 10 };
  assert.equal(learningRateAt(s, 1e-3, 0), 1e-4);
  assert.equal(learningRateAt(s, 1e-3, 9), 1e-3);
  assert.ok(Math.abs(learningRateAt(s, 1e-3, 10) - 1e-3) < 1e-12);
  assert.ok(Math.abs(learningRateAt(s, 1e-3, 60) - (1e-6 + 0.5 * (1e-3 - 1e-6))) < 1e-12);
  assert.equal(learningRateAt(s, 1e-3, 110), 1e-6);
  assert.equal(learningRateAt(s, 1e-3, 500), 1e-6);
  assert.equal(learningRateAt({ ...s, kind: 'constant' }, 1e-3, 80), 1e-3);
});

void test('optimizer rejects bad settings and mismatched gradients; flush and reset keep tensor counts', () => {
  const w = tf.variable(tf.tensor1d([1, 2, 3]));
  assert.throws(() => new NernOptimizer([w], { ...adamConfig(10), lr: -1 }), RangeError);
  assert.throws(() => new NernOptimizer([w], { ...adamConfig(10), beta1: 1 }), RangeError);
  const opt = new NernOptimizer([w], nernRangerConfig(10));
  assert.throws(() => {
    opt.step([]);
  }, RangeError);
  const n = tf.memory().numTensors;
  tf.tidy(() => {
    opt.step([tf.tensor1d([1e-40, 1, -1])]);
  });
  opt.flushDenormals();
  opt.reset();
  assert.equal(tf.memory().numTensors, n);
  assert.equal(opt.steps, 1);
  opt.dispose();
  w.dispose();
});
