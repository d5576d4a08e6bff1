const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Ids are UUIDs; anything else can never match a row (and must not reach the database as one). */
export const isUuid = (value: string) => uuidPattern.test(value)
