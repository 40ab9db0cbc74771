// test/unit mirrors the source tree: a test file's folder is the folder of the module it tests, so the tests of a
// module are found by its path. test/unit/<room>/ stands for src/core/<room>/, test/unit/extension/… for
// src/extension/…, and test/unit/webview/… for webview/….
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const root = join(__dirname, '..', '..');
const unit = __dirname;

/** Folders under test/unit that hold test files, relative to test/unit ('' for test/unit itself). */
function testFolders(dir: string): string[] {
  const out: string[] = [];
  const names = readdirSync(dir);
  if (names.some((n) => n.endsWith('.test.ts'))) out.push(relative(unit, dir));
  for (const name of names) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFolders(p));
  }
  return out;
}

/** The source folders a test folder may stand for. */
function sourceFolders(folder: string): string[] {
  if (folder === 'webview' || folder.startsWith(`webview${sep}`)) return [folder];
  return [join('src', 'core', folder), join('src', folder)];
}

test('every test/unit folder mirrors a source folder', () => {
  const folders = testFolders(unit).filter((f) => f !== '');
  assert.ok(folders.length >= 10, `only ${folders.length} test folders found`);
  const orphans = folders.filter(
    (f) => !sourceFolders(f).some((s) => existsSync(join(root, s)) && statSync(join(root, s)).isDirectory()),
  );
  assert.deepEqual(orphans, [], 'test folders with no source folder of the same path');
});
