import { defineConfig } from 'vitest/config';

// Tests run the workspace packages' TypeScript sources: the `@longhaul/source` export condition
// (first in each package.json's `exports`) picks src/*.ts over the built dist/*.js, so no build is
// needed before a test run. Test files resolve through Vite's server (SSR) environment, whose
// conditions Vitest also passes on to its worker processes as `--conditions`; globalSetup is
// loaded through Vitest's own `__vitest__` environment, which ignores `ssr` (vitest-dev/vitest#9429),
// so it is named too. The rest of the list is Vitest's default.
const conditions = ['@longhaul/source', 'node', 'development|production'];

// One run for the whole workspace. Integration tests create their own database (cloned from a
// migrated template made in globalSetup) and their own Redis key prefix, so files run in parallel.
export default defineConfig({
  ssr: { resolve: { conditions } },
  environments: { __vitest__: { resolve: { conditions } } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
