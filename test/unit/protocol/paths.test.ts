// The output-path rules (src/protocol/paths.ts) that the engine, the CLI and the extension all use: default outputs
// sit beside their input, never equal it, and keep the input's folder and separators.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  artifactPathFor,
  decompressedPathFor,
  distilledPathFor,
  isArtifactName,
  sidecarPathFor,
} from '../../../src/protocol/paths';

void test('an artifact sits beside its source and is never the source itself', () => {
  assert.equal(artifactPathFor('/m/resnet.pt'), '/m/resnet.nern.safetensors');
  assert.equal(artifactPathFor('/m/model.safetensors'), '/m/model.nern.safetensors');
  assert.equal(artifactPathFor('/m/model.safetensors.index.json'), '/m/model.nern.safetensors');
  assert.equal(artifactPathFor('/m/MODEL.SAFETENSORS.INDEX.JSON'), '/m/MODEL.nern.safetensors');
  assert.equal(artifactPathFor('/m/weights'), '/m/weights.nern.safetensors');
  assert.equal(artifactPathFor('/m/.pt'), '/m/.pt.nern.safetensors');
  assert.equal(artifactPathFor('model.onnx'), 'model.nern.safetensors');
  assert.equal(artifactPathFor('C:\\m\\resnet.pt'), 'C:\\m\\resnet.nern.safetensors');
  for (const source of ['/m/old.nern.safetensors', '/m/x.safetensors', '/m/a.b.c']) {
    assert.notEqual(artifactPathFor(source), source, source);
  }
  assert.equal(artifactPathFor('/m/old.nern.safetensors'), '/m/old.nern.nern.safetensors');
});

void test('decompressed and distilled outputs sit beside the artifact', () => {
  assert.equal(decompressedPathFor('/x/r.nern.safetensors'), '/x/r.decompressed.safetensors');
  assert.equal(decompressedPathFor('/x/r.safetensors'), '/x/r.decompressed.safetensors');
  assert.equal(decompressedPathFor('/x/odd.name'), '/x/odd.name.decompressed.safetensors');
  assert.equal(distilledPathFor('/x/r.nern.safetensors'), '/x/r.distilled.nern.safetensors');
  assert.equal(distilledPathFor('/x/plain.safetensors'), '/x/plain.distilled.nern.safetensors');
  assert.equal(distilledPathFor('/x/odd.name'), '/x/odd.name.distilled.nern.safetensors');
  // Already distilled: its own name, which the distillation job refuses as an output (the user names another).
  assert.equal(distilledPathFor('/x/r.distilled.nern.safetensors'), '/x/r.distilled.nern.safetensors');
});

void test('the preprocessing sidecar and artifact names', () => {
  assert.equal(sidecarPathFor('/m/resnet20_fmnist.onnx'), '/m/resnet20_fmnist.weightlens.json');
  assert.equal(sidecarPathFor('/m/model.json'), '/m/model.weightlens.json');
  assert.equal(sidecarPathFor('/m/noext'), '/m/noext.weightlens.json');
  assert.ok(isArtifactName('A.NERN.safetensors'));
  assert.ok(!isArtifactName('a.safetensors'));
});
