import { mkdir, open, readFile } from 'node:fs/promises'
import path from 'node:path'

/**
 * A case's data key that was destroyed, as kept outside the database: a backup restored from before
 * the erasure still holds the wrapped key, and the service destroys it again as it starts.
 * Identifiers and dates only, never personal data.
 */
export interface ShreddedKey {
  data_key_id: string
  case_id: string
  erased_at: string
  erased_by_principal_id: string | null
  reason: 'data_subject_request' | 'end_of_retention'
}

/** Appends a shredded key to the list and waits until it is on disk, before the erasure commits. */
export async function recordShreddedKey(file: string, entry: ShreddedKey): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true })
  const handle = await open(file, 'a', 0o600)
  try {
    await handle.appendFile(`${JSON.stringify(entry)}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** The shredded keys on the list; none when there is no list yet. */
export async function readShreddedKeys(file: string): Promise<ShreddedKey[]> {
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return ''
    throw error
  })
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ShreddedKey)
}
