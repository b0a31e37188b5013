import { defineConfig } from 'vitest/config';

// One run for the whole workspace. Integration tests create their own database (cloned from a
// migrated template made in globalSetup) and their own Redis key prefix, so files run in parallel.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
