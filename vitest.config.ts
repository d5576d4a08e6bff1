import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'

const require = createRequire(import.meta.url)

export default defineConfig({
  resolve: {
    // One graphql instance: Pothos loads its CommonJS build, so the ESM build must not load beside it.
    alias: { graphql: require.resolve('graphql') },
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/testkit/globalSetup.ts'],
    setupFiles: ['test/testkit/keepAlive.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each test file in its own process: PGlite instances and native modules stay isolated.
    pool: 'forks',
    // Vitest keeps one core for itself by default (a single worker on a 2-core machine); the main
    // process is nearly idle here, while each file spends its time in its own server and database.
    maxWorkers: availableParallelism(),
  },
})
