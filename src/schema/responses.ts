import type { FieldRef, ObjectFieldBuilder, ObjectRef, SchemaTypes } from '@pothos/core'
import type { OperationError, Outcome } from '../tenant/outcome.js'
import { builder } from './builder.js'

/** The builder's schema types, for helpers that take Pothos field builders. */
export type SchemaTypesOf = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T extends SchemaTypes> ? T : never
type Types = SchemaTypesOf

/**
 * Declares Contember's response triple for an operation `Name`:
 * `NameResponse { ok, error: NameError, errors, result: NameResult }` and the
 * `NameErrorCode` enum. `extendError` adds extra error fields.
 */
export function defineResponse<Result, Code extends string>(
  name: string,
  codes: readonly Code[],
  options: {
    result?: ObjectRef<any, Result>
    extendError?: (t: ObjectFieldBuilder<Types, OperationError<Code>>) => Record<string, FieldRef<Types>>
  } = {},
) {
  const codeEnum = builder.enumType(`${name}ErrorCode`, { values: codes as unknown as readonly string[] })
  const errorRef = builder.objectRef<OperationError<Code>>(`${name}Error`).implement({
    fields: (t) => ({
      code: t.field({ type: codeEnum, resolve: (error) => error.code }),
      developerMessage: t.string({ resolve: (error) => error.developerMessage }),
      ...options.extendError?.(t),
    }),
  })
  return builder.objectRef<Outcome<Result, Code>>(`${name}Response`).implement({
    fields: (t) => ({
      ok: t.exposeBoolean('ok'),
      error: t.field({ type: errorRef, nullable: true, resolve: (outcome) => outcome.error }),
      errors: t.field({
        type: [errorRef],
        deprecationReason: 'Use error',
        resolve: (outcome) => (outcome.error ? [outcome.error] : []),
      }),
      ...(options.result
        ? { result: t.field({ type: options.result, nullable: true, resolve: (outcome) => outcome.result as never }) }
        : {}),
    }),
  })
}
