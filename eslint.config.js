// @ts-check
// Lint for `npm run lint` (and .ci/run): typescript-eslint's type-aware rules on the
// sources and the tests (each file checked against its nearest tsconfig.json:
// tsconfig.json for src/, test/tsconfig.json for test/), ESLint's own recommended
// rules on the plain JavaScript of bin/ and bench/.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'coverage/', '.bench/']),
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // ESLint's own rule, not typescript-eslint's: async generators that yield without awaiting are how arrays become AsyncIterables here.
      '@typescript-eslint/require-await': 'off',
      'require-await': 'error',
      // `for await (const _ of …)` counts what an iterable yields.
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^_' }],
    },
  },
  {
    // Text leaves the program through src/cli/output.ts alone, which makes every line safe for a
    // terminal and takes the run's secrets out: nothing else may write to stdout or stderr.
    files: ['src/**/*.ts'],
    // The process entries hand the process's streams to an Output.
    ignores: ['src/cli/main.ts', 'src/demo.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'stdout', message: 'write through the Output of src/cli/output.ts' },
        { object: 'process', property: 'stderr', message: 'write through the Output of src/cli/output.ts' },
        { object: 'console', message: 'write through the Output of src/cli/output.ts' },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // vitest types its asymmetric matchers (expect.any, expect.stringMatching, …) as any, and the tests put them in object literals.
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
  {
    files: ['bin/*.js', 'bench/*.mjs', 'eslint.config.js', 'vitest.config.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'module', globals: globals.node },
  },
  {
    files: ['bench/*.cjs'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
  },
);
