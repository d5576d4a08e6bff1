// `npm run bench [-- --rows 10000000]`: every benchmark of the project, one after another.
import { parseArgs } from 'node:util'
import { runReadingBenchmark } from './reading.js'

const { values } = parseArgs({ options: { rows: { type: 'string' } } })

process.stdout.write(`## Reading the log at scale\n\n${(await runReadingBenchmark({ rows: values.rows ? Number(values.rows) : undefined })).markdown}`)
