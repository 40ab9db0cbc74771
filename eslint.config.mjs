// Lint rules, including the layer rules of DESIGN.md: a wrong import between layers is a lint error, and `npm test`
// runs lint, so it fails the build.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Import patterns forbidden for a layer, with the reason shown to whoever breaks the rule. */
const restrict = (patterns) => ({
  'no-restricted-imports': ['error', { patterns }],
});

const noVscode = { group: ['vscode'], message: 'Only src/extension may import vscode.' };
const noTfjs = { group: ['@tensorflow/*'], message: 'tfjs lives in src/core and runs in the worker or CLI only.' };
const noExtension = { group: ['**/extension/**', '**/extension'], message: 'Nothing imports the extension layer.' };
const noWorker = {
  group: ['**/worker/**', 'worker_threads', 'node:worker_threads'],
  message: 'Worker APIs belong to src/worker.',
};
const noCli = { group: ['**/cli/**'], message: 'The CLI is a leaf; import src/core instead.' };
const noCore = { group: ['**/core/**'], message: 'This layer talks to the engine through src/protocol messages only.' };
const noNode = {
  group: ['node:*', 'fs', 'path', 'os', 'child_process', 'worker_threads'],
  message: 'Webview code runs in a browser.',
};
const noWebview = { group: ['**/webview/**'], message: 'Webview code is bundled separately.' };

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'media/vendor/**',
      '.vscode-test/**',
      'test-results/**',
      'test/fixtures/**',
      '.cache/**',
      '*.vsix',
      'scripts/**',
      'bench/**/*.mjs',
      'bench/**/*.cjs',
      'eslint.config.mjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-unnecessary-condition': ['error', { allowConstantLoopConditions: true }],
    },
  },
  { files: ['src/core/**/*.ts'], rules: restrict([noVscode, noExtension, noWorker, noCli, noWebview]) },
  {
    files: ['src/protocol/**/*.ts'],
    rules: restrict([noVscode, noTfjs, noExtension, noWorker, noCli, noCore, noNode, noWebview]),
  },
  { files: ['src/worker/**/*.ts'], rules: restrict([noVscode, noExtension, noCli, noWebview]) },
  { files: ['src/cli/**/*.ts'], rules: restrict([noVscode, noExtension, noWebview]) },
  { files: ['src/extension/**/*.ts'], rules: restrict([noTfjs, noCore, noCli, noWebview]) },
  { files: ['webview/**/*.ts'], rules: restrict([noVscode, noTfjs, noExtension, noWorker, noCli, noCore, noNode]) },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
