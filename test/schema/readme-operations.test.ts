import { readFileSync } from 'node:fs'
import type { GraphQLField } from 'graphql'
import { describe, expect, it } from 'vitest'
import { schema } from '../../src/schema/index.js'
import { privilegeCatalog } from '../../src/tenant/permissions.js'

/** The README's Operations and Permissions tables against the schema and src/tenant/permissions.ts. */

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`)
  expect(start, `README has a ${title} section`).toBeGreaterThan(-1)
  expect(readme.indexOf(`\n## ${title}\n`, start + 1), `README has one ${title} section`).toBe(-1)
  const end = readme.indexOf('\n## ', start + 1)
  return readme.slice(start, end === -1 ? undefined : end)
}

/** Table rows whose first cell starts with a code span, as lists of cells. */
const tableRows = (text: string) =>
  text
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => line.slice(2, -2).split(' | '))

const codeSpans = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1]!)
const isPrivilegeLike = (word: string) => /^[A-Za-z]+:[A-Za-z*]+$/.test(word)

const rootFields = () => ({ ...schema.getQueryType()!.getFields(), ...schema.getMutationType()!.getFields() })

/** The privileges a root field's authScopes name; computed scopes are asked with placeholder arguments. */
function privilegesOf(field: GraphQLField<unknown, unknown>): string[] {
  const scopes = (field.extensions as { pothosOptions?: { authScopes?: unknown } }).pothosOptions?.authScopes
  const placeholderArgs = { projectSlug: 'p', roles: [], template: { projectSlug: 'p' }, templateIdentifier: { projectSlug: 'p' } }
  const resolved = typeof scopes === 'function' ? scopes({}, placeholderArgs, {}, {}) : scopes
  const found: string[] = []
  const walk = (value: unknown) => {
    if (typeof value !== 'object' || value === null) return
    for (const [key, inner] of Object.entries(value)) {
      if (key === 'privilege' && typeof inner === 'string') found.push(inner)
      else walk(inner)
    }
  }
  walk(resolved)
  return found
}

describe('README Operations', () => {
  const rows = tableRows(section('Operations')).map(([operations = '', , privilege = '']) => ({ names: codeSpans(operations), privilege }))

  it('lists every query and mutation once, and nothing else', () => {
    const documented = rows.flatMap((row) => row.names)
    expect(documented.length).toBe(new Set(documented).size)
    expect([...documented].sort()).toEqual(Object.keys(rootFields()).sort())
  })

  it('names the privileges each operation checks (or says any valid token)', () => {
    const fields = rootFields()
    for (const row of rows) {
      for (const name of row.names) {
        const required = privilegesOf(fields[name]!)
        if (required.length === 0) expect(row.privilege, name).toContain('any valid token')
        for (const privilege of required) expect(codeSpans(row.privilege), name).toContain(privilege)
      }
      for (const privilege of codeSpans(row.privilege).filter(isPrivilegeLike)) expect(Object.keys(privilegeCatalog), privilege).toContain(privilege)
    }
  })
})

describe('README Permissions', () => {
  it('has a row for every privilege of the catalog, and names no other', () => {
    const named = tableRows(section('Permissions')).flatMap(([privileges = '']) => codeSpans(privileges))
    expect(new Set(named)).toEqual(new Set(Object.keys(privilegeCatalog)))
  })

  it('names, beside each privilege, every operation that checks it', () => {
    const rows = tableRows(section('Permissions'))
    // `add/update/removeProjectMember` stands for each of the three.
    const operationsOf = (cell: string) =>
      codeSpans(cell).flatMap((span) => {
        const shorthand = /^((?:[a-z]+\/)+[a-z]+)([A-Z]\w*)$/.exec(span)
        return shorthand ? shorthand[1]!.split('/').map((verb) => verb + shorthand[2]) : [span]
      })
    for (const [name, field] of Object.entries(rootFields())) {
      for (const privilege of privilegesOf(field)) {
        const row = rows.find(([privileges = '']) => codeSpans(privileges).includes(privilege))
        expect(operationsOf(row?.[1] ?? ''), `${privilege}: ${name}`).toContain(name)
      }
    }
  })
})
