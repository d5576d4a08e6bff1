// Writes schema.graphql from the Pothos schema. A test fails when the committed file drifts.
import { writeFileSync } from 'node:fs'
import { printSchema } from 'graphql'
import { schema } from '../src/schema/index.js'

writeFileSync(new URL('../schema.graphql', import.meta.url), `${printSchema(schema)}\n`)
