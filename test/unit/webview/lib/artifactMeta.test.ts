// The Inspector's reading of an artifact's description (webview/lib/artifactMeta.ts): the banner says when a phase
// was stopped early, and the description shows as sections (source, training, layers, report, distillation) rather
// than raw JSON, on the metadata a real compression and distillation write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { artifactBannerText, artifactSections, artifactSummary } from '../../../../webview/lib/artifactMeta';

const layer = (name: string, relativeError: number) => ({
  name,
  shape: [16, 16, 3, 3],
  params: 2304,
  rmse: 0.01,
  relativeError,
});
const doc = {
  format: 'weight-lens-nern',
  version: 2,
  source: { name: 'resnet.pt', format: 'pytorch', bytes: 1_100_000, sha256: 'ab'.repeat(32) },
  training: { hidden: 24, steps: 1012, seed: 0, permutation: 'crossfilter', stoppedEarly: { step: 1012, steps: 2000 } },
  report: {
    predictorParams: 1200,
    representedParams: 4608,
    verbatimParams: 10,
    rmse: 0.0216,
    weightRms: 0.07,
    layers: [layer('layer1.0.conv1.weight', 0.22), layer('layer1.0.conv2.weight', 0.653)],
    lossCurve: [
      [1, 0.5],
      [2, 0.4],
    ],
  },
  distillation: {
    settings: { steps: 20, lr: 3e-5 },
    model: 'resnet.onnx',
    data: 'train-images-idx3-ubyte.gz',
    teacher: 'resnet.onnx',
    before: { accuracy: 0.716 },
    after: { accuracy: 0.9 },
    from: 'resnet.nern.safetensors',
    reconstruction: { rmse: 0.02, weightRms: 0.07, layers: [layer('layer1.0.conv1.weight', 0.24)] },
  },
};

void test('the banner says a stopped-early phase was saved, and where', () => {
  const summary = artifactSummary({ weight_lens: JSON.stringify(doc) }, 500_000);
  assert.match(artifactBannerText(summary ?? {}), /reconstruction stopped early and saved at step 1,012 of 2,000/);
  assert.deepEqual(summary?.stoppedEarly, { phase: 'reconstruction', step: 1012, steps: 2000 });
  const plain = artifactSummary({ weight_lens: JSON.stringify({ ...doc, training: { hidden: 24 } }) });
  assert.doesNotMatch(artifactBannerText(plain ?? {}), /stopped/);
});

void test('the description shows as sections: source, training, layers, report, distillation', () => {
  const sections = artifactSections(JSON.stringify(doc));
  assert.deepEqual(
    sections.map((s) => s.title),
    ['Source', 'Training', 'Layers', 'Report', 'Distillation', 'Layers after distillation'],
  );
  const rows = (title: string): Map<string, string> => new Map(sections.find((s) => s.title === title)?.rows ?? []);
  assert.equal(rows('Source').get('name'), 'resnet.pt');
  assert.equal(rows('Training').get('steps'), '1,012');
  assert.equal(rows('Layers').get('layer1.0.conv2.weight'), '[16, 16, 3, 3] · 2,304 params · 65.3 % relative error');
  assert.equal(rows('Report').get('loss curve'), '2 points');
  assert.equal(rows('Report').has('layers'), false);
  assert.equal(rows('Distillation').get('after: accuracy'), '0.9');
  assert.equal(
    rows('Layers after distillation').get('layer1.0.conv1.weight'),
    '[16, 16, 3, 3] · 2,304 params · 24.0 % relative error',
  );
  // Damaged or hand-made descriptions give what can be read, never a throw.
  assert.deepEqual(artifactSections('{not json'), []);
  assert.deepEqual(artifactSections({ source: 'x', report: { layers: 'no' } }), []);
});
