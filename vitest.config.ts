import { createRequire } from 'node:module'
import { defineConfig } from 'vitest/config'

const require = createRequire(import.meta.url)

export default defineConfig({
  resolve: {
    // One graphql instance: Pothos loads its CommonJS build, so the ESM build must not load beside it.
    alias: { graphql: require.resolve('graphql') },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each test file in its own process: PGlite instances and native modules stay isolated.
    pool: 'forks',
  },
})
