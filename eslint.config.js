// Lint for bugs, not style (prettier owns the layout). Type-aware rules are on:
// an unawaited promise, or a promise passed where nobody waits for it, loses
// its error silently, which is the failure this project most wants to avoid.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/**', 'scripts/**', 'bin/**', 'examples/**', 'pipelines/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-self-compare': 'error',
      // `let [lo, hi] = ...` where only one is reassigned reads better than two declarations.
      'prefer-const': ['error', { destructuring: 'all' }],
      // `cond ? delete a : (a = b)` as a statement is used deliberately (restoring env vars).
      '@typescript-eslint/no-unused-expressions': ['error', { allowTernary: true }],
      // `new Promise((r) => setTimeout(r, ms))` returns the timer from the executor; the value is ignored, not a bug.
      'no-promise-executor-return': 'off',
      // The CLI shows an error's message, never its stack or cause, and every rethrow here
      // already puts the caught error's message (or its reason) into its own message.
      'preserve-caught-error': 'off',
    },
  },
  {
    // Tests read untyped JSON (run outputs, schema defaults) and poke at it.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
