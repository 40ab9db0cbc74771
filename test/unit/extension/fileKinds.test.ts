// Which files open in the Inspector: the view-type choice, the menu regex, and agreement with package.json's
// customEditors selectors and menu when-clauses (so the manifest and the code cannot drift apart).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEFAULT_PATTERNS,
  globToRegExp,
  INSPECTOR_OPTIONAL_VIEW_TYPE,
  INSPECTOR_VIEW_TYPE,
  isCheckpointName,
  MENU_FILENAME_REGEX,
  OPTIONAL_PATTERNS,
  viewTypeFor,
} from '../../../src/extension/fileKinds';

interface Manifest {
  main: string;
  contributes: {
    customEditors: { viewType: string; priority: string; selector: { filenamePattern: string }[] }[];
    commands: { command: string; category: string; title: string }[];
    menus: Record<string, { command: string; when?: string }[]>;
    configuration: { properties: Record<string, { default: unknown }> };
  };
}

const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '../../../package.json'), 'utf8')) as Manifest;

void test('unambiguous extensions open by default, ambiguous ones only as an option', () => {
  for (const name of [
    'model.safetensors',
    'model.safetensors.index.json',
    'a.pt',
    'A.PTH',
    'x.ckpt',
    'm.onnx',
    'w.npz',
    'w.npy',
    'l.gguf',
    'k.keras',
  ]) {
    assert.equal(viewTypeFor(name), INSPECTOR_VIEW_TYPE, name);
  }
  for (const name of ['pytorch_model.bin', 'weights.h5', 'w.hdf5', 'model.json', 'config.json', 'notes.txt']) {
    assert.equal(viewTypeFor(name), INSPECTOR_OPTIONAL_VIEW_TYPE, name);
  }
});

void test('the menu regex accepts checkpoints and skips ordinary files', () => {
  for (const name of [
    'model.safetensors',
    'pytorch_model.bin',
    'model.json',
    'shards.safetensors.index.json',
    'W.H5',
    'weights_manifest.json',
    'group1-weights_manifest.json',
  ]) {
    assert.ok(MENU_FILENAME_REGEX.test(name), name);
    assert.ok(isCheckpointName(name), name);
  }
  for (const name of ['config.json', 'notes.txt', 'model.json.bak', 'safetensors', 'weights_manifest.json.bak']) {
    assert.equal(MENU_FILENAME_REGEX.test(name), false, name);
  }
});

void test('globToRegExp escapes everything but *', () => {
  assert.ok(globToRegExp('*.safetensors.index.json').test('a.safetensors.index.json'));
  assert.equal(globToRegExp('*.pt').test('apt'), false);
  assert.ok(globToRegExp('model.json').test('MODEL.JSON'));
  assert.equal(globToRegExp('model.json').test('my-model.json'), false);
});

void test('package.json customEditors match the patterns in code', () => {
  const editors = manifest.contributes.customEditors;
  const main = editors.find((e) => e.viewType === INSPECTOR_VIEW_TYPE);
  const optional = editors.find((e) => e.viewType === INSPECTOR_OPTIONAL_VIEW_TYPE);
  assert.equal(main?.priority, 'default');
  assert.equal(optional?.priority, 'option');
  assert.deepEqual(
    main.selector.map((s) => s.filenamePattern),
    [...DEFAULT_PATTERNS],
  );
  assert.deepEqual(
    optional.selector.map((s) => s.filenamePattern),
    [...OPTIONAL_PATTERNS],
  );
});

void test('package.json commands, menus and settings are consistent', () => {
  assert.equal(manifest.main, './dist/extension.js');
  const ids = manifest.contributes.commands.map((c) => c.command).sort();
  assert.deepEqual(ids, [
    'weightLens.compareWith',
    'weightLens.compressCheckpoint',
    'weightLens.decompressArtifact',
    'weightLens.distillArtifact',
    'weightLens.exportNetronAttachment',
    'weightLens.exportSafetensors',
    'weightLens.openInspector',
    'weightLens.reloadInspector',
    'weightLens.showBudget',
    'weightLens.showLog',
    'weightLens.showReconstruction',
  ]);
  for (const c of manifest.contributes.commands) assert.equal(c.category, 'Weight Lens');
  for (const entries of Object.values(manifest.contributes.menus)) {
    for (const e of entries) assert.ok(ids.includes(e.command), `menu entry for unknown command ${e.command}`);
  }
  const explorer = manifest.contributes.menus['explorer/context']?.[0]?.when ?? '';
  assert.ok(explorer.includes(MENU_FILENAME_REGEX.source), 'the explorer menu uses the same regex as the code');
  // Every menu entry that picks checkpoints by name uses that same regex (explorer, editor title, compress).
  for (const [menu, entries] of Object.entries(manifest.contributes.menus)) {
    for (const e of entries) {
      if (e.when?.includes('resourceFilename =~ /\\.(safetensors') === true)
        assert.ok(e.when.includes(MENU_FILENAME_REGEX.source), `${menu} ${e.command} uses another checkpoint regex`);
    }
  }
  const props = manifest.contributes.configuration.properties;
  assert.equal(props['weightLens.histogramBins']?.default, 64);
  assert.equal(props['weightLens.backend']?.default, 'auto');
  assert.equal(props['weightLens.compress.steps']?.default, 2000);
  assert.equal(props['weightLens.compress.permutation']?.default, 'crossfilter');
  assert.equal(props['weightLens.compress.seed']?.default, 0);
  assert.equal(props['weightLens.compress.representDense']?.default, false);
  assert.equal(props['weightLens.compress.recipe']?.default, 'weight-lens');
});
