// The budget: which tensors are represented and why the others are verbatim, and the width a budget resolves to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BadInputError } from '../../../src/core/io/errors';
import { classifyTensor, planBudget, predictorParamsFor, widthForParams } from '../../../src/core/nern/budget';

const conv = { conv: true, dense: false };
const both = { conv: true, dense: true };
const t = (name: string, shape: number[], dtype = 'F32') => ({
  name,
  dtype,
  shape,
  params: shape.reduce((n, d) => n * d, 1),
});

void test('predictor parameters follow 3h² + 253h + 9 (NeRN, h = 180 → 142,749)', () => {
  assert.equal(predictorParamsFor(180), 142_749);
  for (const h of [1, 16, 160]) assert.equal(predictorParamsFor(h), 3 * h * h + 253 * h + 9);
});

void test('widthForParams is the largest width within the target (closed form checked against brute force)', () => {
  for (const target of [265, 266, 1000, 4825, 38_719, 142_749, 142_748, 1e6, 1e8]) {
    let brute = 0;
    while (predictorParamsFor(brute + 1) <= target) brute++;
    assert.equal(widthForParams(target), brute, `target ${target}`);
  }
  assert.equal(widthForParams(100), 0);
});

void test('classification: conv kernels, dense matrices only with dense, and verbatim reasons', () => {
  assert.equal(classifyTensor(t('layer.conv.weight', [16, 16, 3, 3]), conv).represented, true);
  assert.equal(classifyTensor(t('down.weight', [64, 32, 1, 1]), conv).represented, true);
  const dense = classifyTensor(t('fc.weight', [64, 64]), conv);
  assert.ok(!dense.represented && /dense matrix/.test(dense.reason));
  assert.equal(classifyTensor(t('fc.weight', [64, 64]), both).represented, true);
  const big = classifyTensor(t('stem.weight', [64, 3, 7, 7]), conv);
  assert.ok(!big.represented && /7×7/.test(big.reason));
  assert.equal(classifyTensor(t('stem.weight', [64, 3, 7, 7]), both).represented, true);
  const tiny = classifyTensor(t('conv.weight', [8, 3, 3, 3]), both);
  assert.ok(!tiny.represented && /tiny/.test(tiny.reason));
  const vec = classifyTensor(t('bn.running_var', [2048]), both);
  assert.ok(!vec.represented && /vector/.test(vec.reason));
  const ints = classifyTensor(t('ids', [64, 64], 'I64'), both);
  assert.ok(!ints.represented && /exact/.test(ints.reason));
  const emb = classifyTensor(t('model.embed_tokens.weight', [1000, 64]), both);
  assert.ok(!emb.represented && /embedding/.test(emb.reason));
  assert.equal(classifyTensor(t('h.0.attn.c_attn.weight', [64, 192], 'BF16'), both).represented, true);
  const undecoded = classifyTensor({ ...t('q', [64, 64], 'Q4_0'), notDecodedReason: 'unsupported' }, both);
  assert.ok(!undecoded.represented);
});

void test('classifyTensor: a 1×1 convolution is represented as blocks by default, as centres under pointwise centre', () => {
  assert.deepEqual(classifyTensor(t('down.weight', [64, 32, 1, 1]), conv), {
    represented: true,
    tile: { kind: 'tiled', rows: 64, cols: 32 },
  });
  assert.deepEqual(classifyTensor(t('down.weight', [64, 32, 1, 1]), { ...conv, pointwise: 'centre' }), {
    represented: true,
    tile: { kind: 'conv', k: 1, layout: 'oihw' },
  });
  assert.deepEqual(classifyTensor(t('pw/kernel', [1, 1, 32, 64]), conv, 'hwio'), {
    represented: true,
    tile: { kind: 'tiled', rows: 32, cols: 64 },
  });
  // As blocks it is still a convolution: left out with the convolutions, not taken in with dense tiling.
  const off = classifyTensor(t('down.weight', [64, 32, 1, 1]), { conv: false, dense: true });
  assert.ok(!off.represented && /convolutions not selected/.test(off.reason), JSON.stringify(off));
});

void test('planBudget resolves hidden, fraction and bytes budgets, and refuses impossible ones', () => {
  const tensors = [t('a.weight', [64, 64, 3, 3]), t('a.bias', [64]), t('fc.weight', [10, 64])];
  const byHidden = planBudget(tensors, { kind: 'hidden', hidden: 32 }, conv, 200_000).plan;
  assert.equal(byHidden.hidden, 32);
  assert.equal(byHidden.representedParams, 36_864);
  assert.equal(byHidden.verbatimParams, 64 + 640);
  assert.deepEqual(
    byHidden.verbatim.map((v) => v.name),
    ['a.bias', 'fc.weight'],
  );
  assert.equal(byHidden.predictorParams, predictorParamsFor(32));
  const byFraction = planBudget(tensors, { kind: 'fraction', fraction: 0.5 }, conv, 200_000).plan;
  assert.ok(byFraction.predictorParams <= 0.5 * 36_864 && predictorParamsFor(byFraction.hidden + 1) > 0.5 * 36_864);
  const byBytes = planBudget(tensors, { kind: 'bytes', bytes: 100_000 }, conv, 200_000).plan;
  assert.ok(byBytes.artifactBytes <= 100_000 && byBytes.hidden > 4, JSON.stringify(byBytes));
  assert.throws(() => planBudget(tensors, { kind: 'bytes', bytes: 1000 }, conv, 200_000), BadInputError);
  assert.throws(() => planBudget(tensors, { kind: 'fraction', fraction: 0.001 }, conv, 200_000), /minimum/);
  assert.throws(() => planBudget([t('b', [8])], { kind: 'hidden', hidden: 8 }, conv, 100), /no 3×3 or 1×1 convolution/);
});

void test('a bytes budget counts the stored predictor dtype, the packed permutations and the metadata', () => {
  const tensors = [t('a.weight', [64, 64, 3, 3]), t('b.weight', [64, 64, 3, 3]), t('a.bias', [64])];
  const plan = (predictorDtype: 'f32' | 'int4', permutation: 'crossfilter' | 'none', bytes = 60_000) =>
    planBudget(tensors, { kind: 'bytes', bytes }, conv, 400_000, undefined, 'oihw', { predictorDtype, permutation })
      .plan;
  const f32 = plan('f32', 'crossfilter');
  const int4 = plan('int4', 'crossfilter');
  assert.ok(int4.hidden > f32.hidden, `${int4.hidden} vs ${f32.hidden}`);
  for (const p of [f32, int4]) {
    assert.ok(p.bytes !== undefined && p.artifactBytes <= 60_000);
    // 4,096 kernels per layer at 12 bits each; the one verbatim bias in F32.
    assert.equal(p.bytes.permutations, 2 * 6144);
    assert.equal(p.bytes.verbatim, 4 * 64);
    assert.equal(p.bytes.scales, 8);
    assert.equal(
      p.bytes.total,
      p.bytes.predictor + p.bytes.permutations + p.bytes.scales + p.bytes.verbatim + p.bytes.metadata,
    );
    assert.equal(p.bytes.metadata % 8, 0);
  }
  assert.equal(int4.predictorDtype, 'int4');
  // The identity permutation is stored as nothing, which leaves room for a wider predictor.
  const none = plan('f32', 'none');
  assert.equal(none.bytes?.permutations, 0);
  assert.ok(none.hidden >= f32.hidden);
  // The widest width: one more would not fit by the planner's own count.
  const wider = planBudget(tensors, { kind: 'hidden', hidden: f32.hidden + 1 }, conv, 400_000, undefined, 'oihw', {
    predictorDtype: 'f32',
    permutation: 'crossfilter',
  }).plan;
  assert.ok(wider.artifactBytes > 60_000);
  assert.throws(() => plan('int4', 'crossfilter', 12_000), /leaves room for a predictor of width/);
});
