import type { z } from 'zod'
import { auditCatalog } from './catalog.js'

/** The README's "Event types" table is generated from the catalog by this (scripts/print-event-types.ts). */

type AnySchema = z.core.$ZodType

/** A TypeScript-like rendering of an event_data schema, e.g. `{ before: { roles: string[] } }`. */
export function describeShape(schema: AnySchema): string {
  const def = schema._zod.def as z.core.$ZodTypeDef & Record<string, any>
  switch (def.type) {
    case 'object': {
      const fields = Object.entries(def.shape as Record<string, AnySchema>).map(([key, field]) => {
        const optional = field._zod.def.type === 'optional' || (field._zod.def.type === 'pipe' && (field._zod.def as any).in._zod.def.type === 'optional')
        return `${key}${optional ? '?' : ''}: ${describeShape(field)}`
      })
      return fields.length === 0 ? '{}' : `{ ${fields.join(', ')} }`
    }
    case 'optional':
      return describeShape(def.innerType)
    case 'nullable':
      return `${describeShape(def.innerType)} | null`
    case 'pipe':
      return describeShape(def.in)
    case 'array': {
      const element = describeShape(def.element)
      return element.includes(' | ') && !element.startsWith('{') ? `(${element})[]` : `${element}[]`
    }
    case 'enum':
      return Object.values(def.entries as Record<string, string>).map((value) => `'${value}'`).join(' | ')
    case 'record':
      return `{ [${describeShape(def.keyType)}]: ${describeShape(def.valueType)} }`
    case 'union':
      return (def.options as AnySchema[]).map(describeShape).join(' | ')
    case 'lazy':
      return 'JSON'
    default:
      return def.type
  }
}

const cell = (text: string) => text.replaceAll('|', '\\|')

/** One row per event type: its name, category, meaning, and event_data shape. */
export function eventTypesMarkdown(): string {
  const rows = Object.entries(auditCatalog).map(
    ([type, event]) => `| \`${type}\` | ${event.category} | ${cell(event.description)} | \`${cell(describeShape(event.eventData))}\` |`,
  )
  return ['| type | category | meaning | `event_data` |', '| --- | --- | --- | --- |', ...rows].join('\n')
}

/** The README markers around the generated table. */
export const EVENT_TYPES_START = '<!-- event-types:start (generated: npm run docs:event-types) -->'
export const EVENT_TYPES_END = '<!-- event-types:end -->'

/** `text` with what stands between the two markers replaced by `content`. */
export function replaceBetween(text: string, start: string, end: string, content: string): string {
  const from = text.indexOf(start)
  const to = text.indexOf(end)
  if (from < 0 || to < from) throw new Error(`markers ${start} … ${end} not found`)
  return `${text.slice(0, from + start.length)}\n${content}\n${text.slice(to)}`
}
