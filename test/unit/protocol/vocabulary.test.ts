// One vocabulary: the closed name lists and the shared defaults live in src/protocol only. package.json's settings
// must offer exactly those names and defaults, and no source file may spell a list out again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DEFAULT_COMPRESS_OPTIONS, DEFAULT_HISTOGRAM_BINS } from '../../../src/protocol/defaults';
import {
  BACKEND_NAMES,
  isOneOf,
  PERMUTATION_KINDS,
  POINTWISE_LAYOUTS,
  RECIPE_NAMES,
} from '../../../src/protocol/vocabulary';

const root = join(__dirname, '..', '..', '..');

interface SettingSchema {
  enum?: unknown[];
  default?: unknown;
}

function settings(): Record<string, SettingSchema> {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    contributes: {
      configuration: { properties: Record<string, SettingSchema> } | { properties: Record<string, SettingSchema> }[];
    };
  };
  const c = manifest.contributes.configuration;
  return Object.assign({}, ...(Array.isArray(c) ? c : [c]).map((x) => x.properties)) as Record<string, SettingSchema>;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return name.endsWith('.ts') ? [p] : [];
  });
}

void test('package.json offers exactly the protocol names and defaults', () => {
  const all = settings();
  const s = (key: string): SettingSchema => {
    const schema = all[key];
    assert.ok(schema !== undefined, `package.json has no setting ${key}`);
    return schema;
  };
  assert.deepEqual(s('weightLens.backend').enum, [...BACKEND_NAMES]);
  assert.equal(s('weightLens.backend').default, DEFAULT_COMPRESS_OPTIONS.backend);
  assert.deepEqual(s('weightLens.compress.permutation').enum, [...PERMUTATION_KINDS]);
  assert.equal(s('weightLens.compress.permutation').default, DEFAULT_COMPRESS_OPTIONS.permutation);
  assert.deepEqual(s('weightLens.compress.recipe').enum, [...RECIPE_NAMES]);
  assert.equal(s('weightLens.compress.recipe').default, RECIPE_NAMES[0]);
  assert.equal(s('weightLens.compress.steps').default, DEFAULT_COMPRESS_OPTIONS.steps);
  assert.equal(s('weightLens.compress.seed').default, DEFAULT_COMPRESS_OPTIONS.seed);
  assert.equal(s('weightLens.compress.representDense').default, DEFAULT_COMPRESS_OPTIONS.represent.dense);
  assert.equal(s('weightLens.compress.pointwise').default, DEFAULT_COMPRESS_OPTIONS.represent.pointwise);
  assert.deepEqual(s('weightLens.compress.pointwise').enum, [...POINTWISE_LAYOUTS]);
  assert.equal(s('weightLens.histogramBins').default, DEFAULT_HISTOGRAM_BINS);
});

void test('isOneOf accepts list members only', () => {
  assert.ok(isOneOf(BACKEND_NAMES, 'wasm'));
  assert.ok(!isOneOf(BACKEND_NAMES, 'WASM'));
  assert.ok(!isOneOf(BACKEND_NAMES, '__proto__'));
  assert.ok(!isOneOf(PERMUTATION_KINDS, 3));
});

void test('no source file outside src/protocol spells out a name list again', () => {
  // Two adjacent members of a list, quoted, as an array or a union, are a restated list.
  const lists = [BACKEND_NAMES, PERMUTATION_KINDS, RECIPE_NAMES];
  const patterns = lists.map((names) => new RegExp(`'${names[0]}'\\s*[,|]\\s*'${names[1]}'`));
  const offenders: string[] = [];
  for (const file of [...sources(join(root, 'src')), ...sources(join(root, 'webview'))]) {
    const rel = relative(root, file);
    if (rel.startsWith(join('src', 'protocol'))) continue;
    const text = readFileSync(file, 'utf8');
    for (const re of patterns) if (re.test(text)) offenders.push(`${rel}: ${re.source}`);
  }
  assert.deepEqual(offenders, []);
});
