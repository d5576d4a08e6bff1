import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { get_dmmf } from '@prisma/prisma-schema-wasm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrator.js'
import { createTestDatabase, type TestDatabase } from '../testkit/database.js'

/**
 * Proves that applying prisma/migrations yields the database prisma/schema.prisma describes, so a
 * schema change without its migration (or the reverse) fails here rather than at run time.
 * The schema is read by Prisma's own parser (the WASM module the `prisma` CLI uses), not the
 * generated client, which may be stale and omits native types and nullability.
 *
 * Every table, column, key, index, foreign key and enum is rendered as one line of SQL-like text
 * on both sides, so a failure shows the exact lines that differ.
 */

/**
 * Lines the database may have although the Prisma schema does not declare them (say, a partial
 * index Prisma cannot express), each with its reason. Keys are lines as rendered below.
 * Partitions (person_auth_log's months) are not tables of their own here.
 */
const DATABASE_ONLY: Record<string, string> = {
  'TABLE _prisma_migrations': 'the migration history, kept by src/db/migrator.ts',
  'mail_template UNIQUE (mail_type, variant) WHERE ...':
    'global templates (project_id NULL) unique per type and variant; Prisma cannot express a partial index',
  'person_auth_log INDEX (<expression>)':
    'the pg_trgm GIN index over the text authLog q searches: Prisma cannot index an expression (20261122040000_scale)',
  'person_auth_log INDEX (<expression>, created_at DESC)':
    'the typed email folded (lower, btrim) for the per-email backoff: Prisma cannot index an expression (20261122100000_input_identifier_folded_index)',
  'TABLE person_auth_log_head': 'the hash chain head, written only by the chain trigger (migration 20261122030000_integrity)',
}

// The subset of Prisma's DMMF this test reads.
interface DmmfField {
  name: string
  dbName?: string | null
  kind: 'scalar' | 'object' | 'enum' | 'unsupported'
  type: string
  isList: boolean
  isRequired: boolean
  nativeType?: [name: string, args: string[]] | null
  relationFromFields?: string[]
  relationToFields?: string[]
  relationOnDelete?: string
  relationOnUpdate?: string
}
interface DmmfModel {
  name: string
  dbName: string | null
  schema: string | null
  fields: DmmfField[]
}
interface DmmfEnum {
  name: string
  dbName?: string | null
  values: { name: string; dbName?: string | null }[]
}
interface DmmfIndex {
  model: string
  type: 'id' | 'unique' | 'normal' | 'fulltext'
  fields: { name: string; sortOrder?: 'asc' | 'desc' }[]
}
interface Dmmf {
  datamodel: { models: DmmfModel[]; enums: DmmfEnum[]; indexes: DmmfIndex[] }
}

const schemaPath = fileURLToPath(new URL('../../prisma/schema.prisma', import.meta.url))
const { datamodel } = JSON.parse(
  get_dmmf(JSON.stringify({ prismaSchema: [[schemaPath, readFileSync(schemaPath, 'utf8')]] })),
) as Dmmf

const modelsByName = new Map(datamodel.models.map((model) => [model.name, model]))
const enumsByName = new Map(datamodel.enums.map((prismaEnum) => [prismaEnum.name, prismaEnum]))

const tableName = (model: DmmfModel) => model.dbName ?? model.name
const enumTypeName = (prismaEnum: DmmfEnum) => prismaEnum.dbName ?? prismaEnum.name

function columnName(model: DmmfModel, fieldName: string): string {
  const field = model.fields.find((candidate) => candidate.name === fieldName)
  if (!field) throw new Error(`${model.name} has no field ${fieldName}`)
  return field.dbName ?? field.name
}

function modelNamed(name: string): DmmfModel {
  const model = modelsByName.get(name)
  if (!model) throw new Error(`The schema has no model ${name}`)
  return model
}

// Types as PostgreSQL's format_type() spells them, for fields without a @db attribute.
const DEFAULT_COLUMN_TYPES: Record<string, string> = {
  String: 'text',
  Int: 'integer',
  BigInt: 'bigint',
  Float: 'double precision',
  Decimal: 'numeric(65,30)',
  Boolean: 'boolean',
  DateTime: 'timestamp(3) without time zone',
  Json: 'jsonb',
  Bytes: 'bytea',
}

const withModifier = (type: string, args: string[]) => (args.length ? `${type}(${args.join(',')})` : type)

const NATIVE_COLUMN_TYPES: Record<string, (args: string[]) => string> = {
  Uuid: () => 'uuid',
  Inet: () => 'inet',
  Text: () => 'text',
  VarChar: (args) => withModifier('character varying', args),
  SmallInt: () => 'smallint',
  Integer: () => 'integer',
  Date: () => 'date',
  Timestamp: (args) => `${withModifier('timestamp', args)} without time zone`,
  Timestamptz: (args) => `${withModifier('timestamp', args)} with time zone`,
  JsonB: () => 'jsonb',
}

function expectedColumnType(model: DmmfModel, field: DmmfField): string {
  const where = `${model.name}.${field.name}`
  let type: string | undefined
  if (field.kind === 'enum') {
    type = enumTypeName(enumsByName.get(field.type)!)
  } else if (field.nativeType) {
    const [nativeName, args] = field.nativeType
    type = NATIVE_COLUMN_TYPES[nativeName]?.(args)
    if (!type) throw new Error(`${where}: add @db.${nativeName} to NATIVE_COLUMN_TYPES in this test`)
  } else {
    type = DEFAULT_COLUMN_TYPES[field.type]
    if (!type) throw new Error(`${where}: add ${field.type} to DEFAULT_COLUMN_TYPES in this test`)
  }
  return field.isList ? `${type}[]` : type
}

const isColumn = (field: DmmfField) => field.kind === 'scalar' || field.kind === 'enum'

function expectedColumns(model: DmmfModel): string[] {
  return model.fields.filter(isColumn).map((field) => {
    // Prisma stores a list as an array column that is never NULL: an empty list is '{}'.
    const notNull = field.isRequired || field.isList
    const column = `${tableName(model)}.${field.dbName ?? field.name}`
    return `${column} ${expectedColumnType(model, field)}${notNull ? ' NOT NULL' : ''}`
  })
}

const INDEX_KINDS: Record<DmmfIndex['type'], string> = {
  id: 'PRIMARY KEY',
  unique: 'UNIQUE',
  normal: 'INDEX',
  fulltext: 'FULLTEXT (not supported on PostgreSQL)',
}

function expectedIndexes(model: DmmfModel): string[] {
  return datamodel.indexes
    .filter((index) => index.model === model.name)
    .map((index) => {
      const columns = index.fields.map(
        (field) => columnName(model, field.name) + (field.sortOrder === 'desc' ? ' DESC' : ''),
      )
      return `${tableName(model)} ${INDEX_KINDS[index.type]} (${columns.join(', ')})`
    })
}

const REFERENTIAL_ACTIONS: Record<string, string> = {
  Cascade: 'CASCADE',
  Restrict: 'RESTRICT',
  NoAction: 'NO ACTION',
  SetNull: 'SET NULL',
  SetDefault: 'SET DEFAULT',
}

function expectedForeignKeys(model: DmmfModel): string[] {
  return model.fields
    .filter((field) => field.kind === 'object' && field.relationFromFields?.length)
    .map((field) => {
      const referenced = modelNamed(field.type)
      const columns = field.relationFromFields!.map((name) => columnName(model, name))
      const referencedColumns = field.relationToFields!.map((name) => columnName(referenced, name))
      // Prisma's defaults when the schema names no action.
      const onDelete = field.relationOnDelete ?? (field.isRequired ? 'Restrict' : 'SetNull')
      const onUpdate = field.relationOnUpdate ?? 'Cascade'
      return (
        `${tableName(model)} FOREIGN KEY (${columns.join(', ')}) ` +
        `REFERENCES ${tableName(referenced)} (${referencedColumns.join(', ')}) ` +
        `ON DELETE ${REFERENTIAL_ACTIONS[onDelete]} ON UPDATE ${REFERENTIAL_ACTIONS[onUpdate]}`
      )
    })
}

function renderEnum(typeName: string, values: string[]): string {
  // Sorted: Prisma does not depend on the order of an enum's values.
  return `ENUM ${typeName} (${[...values].sort().join(', ')})`
}

/** Sorted, minus the lines DATABASE_ONLY allows, so the diff of a failure is easy to read. */
function declaredInDatabase(lines: string[]): string[] {
  return lines.filter((line) => !(line in DATABASE_ONLY)).sort()
}

let testDatabase: TestDatabase
let db: Database

beforeAll(async () => {
  testDatabase = await createTestDatabase()
  db = await openDatabase(testDatabase.target)
  await migrate(db)
})

afterAll(async () => {
  await db?.close()
  await testDatabase?.drop()
})

function query<Row extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<Row[]> {
  return db.session((session) => session.query<Row>(text, params))
}

// Columns of a table, or of an index or constraint via its key array, in declared order.
const RELATION = `to_regclass(quote_ident('public') || '.' || quote_ident($1))`
const attributeNames = (keys: string, relation: string) => `
  array(SELECT a.attname::text FROM unnest(${keys}) WITH ORDINALITY AS k(attnum, position)
        JOIN pg_attribute a ON a.attrelid = ${relation} AND a.attnum = k.attnum
        ORDER BY k.position)`

async function actualColumns(table: string): Promise<string[]> {
  const rows = await query<{ name: string; type: string; notNull: boolean }>(
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS type, attnotnull AS "notNull"
       FROM pg_attribute
      WHERE attrelid = ${RELATION} AND attnum > 0 AND NOT attisdropped`,
    [table],
  )
  return rows.map((row) => `${table}.${row.name} ${row.type}${row.notNull ? ' NOT NULL' : ''}`)
}

async function actualIndexes(table: string): Promise<string[]> {
  const rows = await query<{ isPrimary: boolean; isUnique: boolean; isPartial: boolean; columns: string[] }>(
    `SELECT i.indisprimary AS "isPrimary", i.indisunique AS "isUnique", i.indpred IS NOT NULL AS "isPartial",
            array(SELECT coalesce(a.attname::text, '<expression>') ||
                         CASE WHEN i.indoption[k.position - 1] & 1 = 1 THEN ' DESC' ELSE '' END
                    FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
                    LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                   ORDER BY k.position) AS columns
       FROM pg_index i
      WHERE i.indrelid = ${RELATION}`,
    [table],
  )
  return rows.map((row) => {
    const kind = row.isPrimary ? 'PRIMARY KEY' : row.isUnique ? 'UNIQUE' : 'INDEX'
    return `${table} ${kind} (${row.columns.join(', ')})${row.isPartial ? ' WHERE ...' : ''}`
  })
}

const PG_REFERENTIAL_ACTIONS: Record<string, string> = {
  a: 'NO ACTION',
  r: 'RESTRICT',
  c: 'CASCADE',
  n: 'SET NULL',
  d: 'SET DEFAULT',
}

async function actualForeignKeys(table: string): Promise<string[]> {
  const rows = await query<{
    columns: string[]
    referencedTable: string
    referencedColumns: string[]
    onDelete: string
    onUpdate: string
  }>(
    `SELECT ${attributeNames('c.conkey', 'c.conrelid')} AS columns,
            c.confrelid::regclass::text AS "referencedTable",
            ${attributeNames('c.confkey', 'c.confrelid')} AS "referencedColumns",
            c.confdeltype::text AS "onDelete", c.confupdtype::text AS "onUpdate"
       FROM pg_constraint c
      WHERE c.conrelid = ${RELATION} AND c.contype = 'f'`,
    [table],
  )
  return rows.map(
    (row) =>
      `${table} FOREIGN KEY (${row.columns.join(', ')}) ` +
      `REFERENCES ${row.referencedTable} (${row.referencedColumns.join(', ')}) ` +
      `ON DELETE ${PG_REFERENTIAL_ACTIONS[row.onDelete]} ON UPDATE ${PG_REFERENTIAL_ACTIONS[row.onUpdate]}`,
  )
}

describe('the migrated database matches prisma/schema.prisma', () => {
  it('keeps every model in the public schema', () => {
    // The queries below look only there; multiSchema would need them extended.
    expect(datamodel.models.filter((model) => model.schema !== null && model.schema !== 'public')).toEqual([])
  })

  it('has a table for every model and no other tables', async () => {
    const rows = await query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition`,
    )
    expect(declaredInDatabase(rows.map((row) => `TABLE ${row.name}`))).toEqual(
      datamodel.models.map((model) => `TABLE ${tableName(model)}`).sort(),
    )
  })

  it('has every enum with exactly its values and no other enums', async () => {
    const rows = await query<{ name: string; values: string[] }>(
      `SELECT t.typname AS name, array(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid) AS values
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype = 'e'`,
    )
    expect(declaredInDatabase(rows.map((row) => renderEnum(row.name, row.values)))).toEqual(
      datamodel.enums
        .map((prismaEnum) =>
          renderEnum(
            enumTypeName(prismaEnum),
            prismaEnum.values.map((value) => value.dbName ?? value.name),
          ),
        )
        .sort(),
    )
  })

  describe.each(datamodel.models)('model $name', (model) => {
    const table = tableName(model)

    it('has exactly the declared columns, with their types and nullability', async () => {
      expect(declaredInDatabase(await actualColumns(table))).toEqual(expectedColumns(model).sort())
    })

    it('has the declared primary key, unique constraints and indexes, and no others', async () => {
      expect(declaredInDatabase(await actualIndexes(table))).toEqual(expectedIndexes(model).sort())
    })

    it('has the declared foreign keys, with their referential actions, and no others', async () => {
      expect(declaredInDatabase(await actualForeignKeys(table))).toEqual(expectedForeignKeys(model).sort())
    })
  })
})
