import { readFileSync } from 'node:fs'
import { printSchema } from 'graphql'
import { expect, test } from 'vitest'
import { schema } from '../../src/schema/index.js'

test('schema.graphql is the printed Pothos schema (run `npm run schema:print` after changing the API)', () => {
  const committed = readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8')
  expect(committed).toBe(`${printSchema(schema)}\n`)
})
