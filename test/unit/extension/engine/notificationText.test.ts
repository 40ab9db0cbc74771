// Messages quoting file strings reach VS Code notifications without live Markdown links.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inertLinks } from '../../../../src/extension/engine/notificationText';

void test('Markdown links in quoted file strings are made inert; other text is unchanged', () => {
  const hostile = 'Tensor "[click me](command:workbench.action.terminal.new)" has an invalid shape.';
  assert.equal(
    inertLinks(hostile),
    'Tensor "[click me] (command:workbench.action.terminal.new)" has an invalid shape.',
  );
  assert.doesNotMatch(inertLinks('[a](https://x) and [b]  (file:///etc/passwd)'), /\]\(/);
  assert.equal(inertLinks('layer [3, 3] (conv) is fine'), 'layer [3, 3] (conv) is fine');
  assert.equal(inertLinks('no brackets at all'), 'no brackets at all');
});
