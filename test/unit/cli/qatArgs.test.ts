// The CLI's quantisation-aware training flags: compress --predictor-dtype / --qat-steps and distill
// --predictor-dtype / --no-qat parse into the job options, and bad combinations are usage errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../../src/cli/args';
import { compressOptionsFromArgs } from '../../../src/cli/compressCommands';
import { distillOptionsFromArgs } from '../../../src/cli/modelCommands';

void test('compress: --qat-steps with an int8/int4 --predictor-dtype; refused without one or beyond --steps', () => {
  const { options } = compressOptionsFromArgs([
    'm.pt',
    '--steps',
    '400',
    '--predictor-dtype',
    'int4',
    '--qat-steps',
    '100',
  ]);
  assert.equal(options.predictorDtype, 'int4');
  assert.equal(options.qatSteps, 100);
  const plain = compressOptionsFromArgs(['m.pt']).options;
  assert.equal(plain.predictorDtype, undefined);
  assert.equal(plain.qatSteps, undefined);
  assert.throws(() => compressOptionsFromArgs(['m.pt', '--qat-steps', '10']), /needs --predictor-dtype int8 or int4/);
  assert.throws(() => compressOptionsFromArgs(['m.pt', '--predictor-dtype', 'f16', '--qat-steps', '10']), UsageError);
  assert.throws(
    () => compressOptionsFromArgs(['m.pt', '--steps', '50', '--predictor-dtype', 'int8', '--qat-steps', '51']),
    /between 0 and --steps/,
  );
  assert.throws(() => compressOptionsFromArgs(['m.pt', '--predictor-dtype', 'int3']), /f32, f16, int8, int4/);
});

void test('distill: --predictor-dtype and --no-qat', () => {
  const base = ['a.nern.safetensors', '--model', 'm.onnx', '--data', 'd.gz'];
  const d = distillOptionsFromArgs(base).options;
  assert.equal(d.predictorDtype, undefined, 'default: the artifact’s recorded dtype, resolved by the job');
  assert.equal(d.qat, undefined);
  const q = distillOptionsFromArgs([...base, '--predictor-dtype', 'int8', '--no-qat']).options;
  assert.equal(q.predictorDtype, 'int8');
  assert.equal(q.qat, false);
  assert.throws(() => distillOptionsFromArgs([...base, '--predictor-dtype', 'bf16']), UsageError);
});
