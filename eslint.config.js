import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const sdkImports = {
  group: ['@kubernetes/client-node', '@octokit/*'],
  message: 'Only src/clients/* may import external SDKs; depend on the interfaces there.',
};

/**
 * The layers of src/, lowest first. A folder imports only folders on lower rows, never its own row's
 * neighbours: the floor (api) is shared by all, and operator, webhook, sandbox and podRuntime are
 * separate programs that the CLI alone puts together.
 */
const layers = [
  ['api'],
  ['config', 'observability', 'clients'],
  ['github', 'runtime'],
  ['operator', 'webhook', 'sandbox', 'podRuntime'],
  ['cli'],
];

/**
 * One folder's import rule. In flat config a later no-restricted-imports replaces the earlier options
 * instead of adding to them, so each folder's rule repeats the SDK wall (except in clients/ itself).
 */
function layerRule(folder, row) {
  const above = layers
    .slice(row)
    .flat()
    .filter((other) => other !== folder);
  const patterns = folder === 'clients' ? [] : [sdkImports];
  if (above.length > 0) {
    patterns.push({
      regex: `^(\\.\\./)+(${above.join('|')})/`,
      message: `src/${folder}/ may not import ${above.join(', ')}: imports point down, never sideways (docs/development.md).`,
    });
  }
  return {
    files: [`src/${folder}/**`],
    rules: { 'no-restricted-imports': patterns.length > 0 ? ['error', { patterns }] : 'off' },
  };
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.bench-dist/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        performance: 'readonly',
        fetch: 'readonly',
        Buffer: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': ['error', { patterns: [sdkImports] }],
    },
  },
  ...layers.flatMap((row, index) => row.map((folder) => layerRule(folder, index))),
  {
    files: ['test/**', 'bench/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
