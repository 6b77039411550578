import { ProblemError } from './problem.js'

/** Cursors are opaque to clients: the sort key of the last item of a page, as base64url JSON. */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url')
}

export function decodeCursor(cursor: string, arity: number): (string | number)[] {
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (
      Array.isArray(key) &&
      key.length === arity &&
      key.every((part) => typeof part === 'string' || typeof part === 'number')
    ) {
      return key
    }
  } catch {}
  throw new ProblemError(400, 'The cursor is not one this service issued; pass next_cursor back unchanged.', {
    code: 'validation',
    extras: { errors: [{ parameter: 'cursor', detail: 'is not a valid cursor' }] },
  })
}

/** Splits a result fetched with `limit + 1` rows into a page and the cursor of the next one. */
export function toPage<T, U>(rows: T[], limit: number, present: (row: T) => U, keyOf: (row: T) => (string | number)[]) {
  const items = rows.slice(0, limit)
  const last = items.at(-1)
  return {
    items: items.map(present),
    next_cursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null,
  }
}
