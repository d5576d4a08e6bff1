// `npm run bench [-- --rows 10000000]`: every benchmark of the project, one after another.
import { parseArgs } from 'node:util'
import { chainBenchmarkTable, runChainBenchmark } from './chain.js'
import { runReadingBenchmark } from './reading.js'

const { values } = parseArgs({ options: { rows: { type: 'string' } } })

const chain = await runChainBenchmark({ log: (line) => process.stderr.write(`${line}\n`) })
process.stdout.write(`## Integrity: chained writes and verification\n\n${chainBenchmarkTable(chain)}\n\nMachine: ${chain.machine}\n\n`)

process.stdout.write(`## Reading the log at scale\n\n${(await runReadingBenchmark({ rows: values.rows ? Number(values.rows) : undefined })).markdown}`)
