// Number, size and duration formatting of the webview panels (durations come from src/protocol/units, shared by every
// layer): each unit is rounded once, so a carry never shows as "60".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, formatEta } from '../../../../webview/lib/format';

void test('the time left comes from the steps left and the speed', () => {
  assert.equal(formatEta(1012, 2000, 3.4), 'about 4 min 51 s left');
  assert.equal(formatEta(10, 300, 1.4), 'about 3 min 27 s left');
  assert.equal(formatEta(300, 300, 1.4), '', 'nothing left when done');
  assert.equal(formatEta(10, 300, 0), '', 'no speed yet');
});

void test('durations round once at the shown precision: never "60 s" or "60.0 s"', () => {
  assert.equal(formatDuration(299.6), '5 min 0 s');
  assert.equal(formatDuration(119.5), '2 min 0 s');
  assert.equal(formatDuration(59.96), '1 min 0 s');
  assert.equal(formatDuration(0.9996), '1.0 s');
  assert.equal(formatDuration(3599.6), '1 h 0 min');
  for (let s = 0; s < 7300; s += 0.37) assert.doesNotMatch(formatDuration(s), /\b60(\.0)? (s|min)\b/, `${s} s`);
});

void test('durations: milliseconds, seconds with tenths, minutes and seconds, hours and minutes', () => {
  assert.equal(formatDuration(0), '0 ms');
  assert.equal(formatDuration(0.085), '85 ms');
  assert.equal(formatDuration(1.34), '1.3 s');
  assert.equal(formatDuration(125), '2 min 5 s');
  assert.equal(formatDuration(7322), '2 h 2 min');
  assert.equal(formatDuration(-1), '–');
  assert.equal(formatDuration(Number.NaN), '–');
});
