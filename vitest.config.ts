import { defineConfig } from 'vitest/config';

// Tests run on a 2-core machine (CI too): two forks, generous timeouts for
// the end-to-end tests that spawn the real CLI and train small models.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
