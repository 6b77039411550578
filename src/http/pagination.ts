import { ProblemError } from './problem.js'

/** The parts of a sort key: free text (no NUL, which PostgreSQL text cannot hold), a uuid or a bigint. */
export type CursorPart = 'text' | 'uuid' | 'integer'
type Decoded<Shape extends readonly CursorPart[]> = { [I in keyof Shape]: string }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const partIsValid: Record<CursorPart, (value: unknown) => boolean> = {
  text: (value) => typeof value === 'string' && !value.includes('\u0000'),
  uuid: (value) => typeof value === 'string' && UUID.test(value),
  integer: (value) => typeof value === 'string' && /^(0|[1-9][0-9]{0,17})$/.test(value),
}

/** Cursors are opaque to clients: the sort key of the last item of a page, as base64url JSON. */
export function encodeCursor(key: readonly string[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url')
}

/** Decodes a cursor whose key has the given shape; anything else is a 400, never a query that fails. */
export function decodeCursor<const Shape extends readonly CursorPart[]>(cursor: string, shape: Shape): Decoded<Shape> {
  let key: unknown
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {}
  if (Array.isArray(key) && key.length === shape.length && shape.every((part, i) => partIsValid[part](key[i]))) {
    return key as Decoded<Shape>
  }
  throw new ProblemError(400, 'The cursor is not one this service issued; pass next_cursor back unchanged.', {
    code: 'validation',
    extras: { errors: [{ parameter: 'cursor', detail: 'is not a valid cursor' }] },
  })
}

/** Splits a result fetched with `limit + 1` rows into a page and the cursor of the next one. */
export function toPage<T, U>(rows: T[], limit: number, present: (row: T) => U, keyOf: (row: T) => string[]) {
  const items = rows.slice(0, limit)
  const last = items.at(-1)
  return {
    items: items.map(present),
    next_cursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null,
  }
}
