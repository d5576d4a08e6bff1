// Prints the README's "Event types" table from src/audit/catalog.ts; with --write, puts it into README.md.
import { readFileSync, writeFileSync } from 'node:fs'
import { EVENT_TYPES_END, EVENT_TYPES_START, eventTypesMarkdown, replaceBetween } from '../src/audit/catalogDocs.js'

const table = eventTypesMarkdown()
if (process.argv.includes('--write')) {
  const readme = new URL('../README.md', import.meta.url)
  writeFileSync(readme, replaceBetween(readFileSync(readme, 'utf8'), EVENT_TYPES_START, EVENT_TYPES_END, table))
} else {
  process.stdout.write(`${table}\n`)
}
