/**
 * What a tenant operation answers, in Contember's response shape:
 * `{ ok, error { code, developerMessage }, result }`.
 */
export interface OperationError<Code extends string> {
  readonly code: Code
  readonly developerMessage: string
  /** Extra fields some error types carry (retryAfter, weakPasswordReasons, ...). */
  readonly [extra: string]: unknown
}

export interface Success<Result> {
  readonly ok: true
  readonly result: Result
  readonly error: null
}

export interface Failure<Code extends string> {
  readonly ok: false
  readonly result: null
  readonly error: OperationError<Code>
}

export type Outcome<Result, Code extends string> = Success<Result> | Failure<Code>

export const succeed = <Result>(result: Result): Success<Result> => ({ ok: true, result, error: null })

export const fail = <Code extends string>(code: Code, developerMessage: string, extra: Record<string, unknown> = {}): Failure<Code> => ({
  ok: false,
  result: null,
  error: { ...extra, code, developerMessage },
})
