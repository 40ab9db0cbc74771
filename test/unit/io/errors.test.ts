// Bad input has one base class: file-format errors are a kind of it, both are reported as `badInput`, and an error
// about one option names the option key (never a CLI flag), which the CLI turns into its own hint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDistillOptions, DEFAULT_DISTILL_OPTIONS } from '../../../src/core/jobs/distill';
import { checkCompressOptions, DEFAULT_COMPRESS_OPTIONS } from '../../../src/core/jobs/compress';
import { BadInputError, CancelledError, CheckpointFormatError } from '../../../src/core/io/errors';
import { failureOf } from '../../../src/core/io/failure';
import { withFlagHint } from '../../../src/cli/main';

void test('file-format errors are bad input; both are reported as badInput, aborts as cancelled', () => {
  const format = new CheckpointFormatError('header length 9.2 GB exceeds file size 1.1 MB');
  assert.ok(format instanceof BadInputError);
  assert.deepEqual(failureOf(format), { reason: 'badInput', message: format.message });
  assert.deepEqual(failureOf(new BadInputError('no samples')), { reason: 'badInput', message: 'no samples' });
  assert.equal(failureOf(new CancelledError()).reason, 'cancelled');
  assert.equal(failureOf(new TypeError('x is undefined')).reason, 'internal');
});

void test('option checks throw BadInputError naming the option key, with no CLI flag in the message', () => {
  const cases: [() => void, string][] = [
    [
      () => {
        checkDistillOptions({ ...DEFAULT_DISTILL_OPTIONS, lr: 5 });
      },
      'lr',
    ],
    [
      () => {
        checkDistillOptions({ ...DEFAULT_DISTILL_OPTIONS, evalEvery: -1 });
      },
      'evalEvery',
    ],
    [
      () => {
        checkDistillOptions({ ...DEFAULT_DISTILL_OPTIONS, batchSize: 0 });
      },
      'batchSize',
    ],
    [
      () => {
        checkCompressOptions({ ...DEFAULT_COMPRESS_OPTIONS, steps: 0 });
      },
      'steps',
    ],
    [
      () => {
        checkCompressOptions({ ...DEFAULT_COMPRESS_OPTIONS, roundWidthScale: 2 });
      },
      'roundWidthScale',
    ],
    [
      () => {
        checkCompressOptions({ ...DEFAULT_COMPRESS_OPTIONS, budget: { kind: 'fraction', fraction: 0 } });
      },
      'budget',
    ],
  ];
  for (const [run, option] of cases) {
    assert.throws(run, (error: unknown) => {
      assert.ok(error instanceof BadInputError, String(error));
      assert.equal(error.option, option);
      assert.doesNotMatch(error.message, /--/);
      return true;
    });
  }
});

void test('the CLI adds the flag that sets the option', () => {
  assert.equal(
    withFlagHint(new BadInputError('The learning rate must be between 0 and 1, not 5.', { option: 'lr' })),
    'The learning rate must be between 0 and 1, not 5 (--lr).',
  );
  assert.equal(withFlagHint(new BadInputError('Bad.', { option: 'evalEvery' })), 'Bad (--eval-every).');
  assert.equal(withFlagHint(new BadInputError('Bad.', { option: 'roundWidthScale' })), 'Bad (--round-scale).');
  assert.equal(withFlagHint(new BadInputError('No option here.')), 'No option here.');
});
