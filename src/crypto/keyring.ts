import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { ConfigError } from '../config.js'

/** AES-256-GCM from node:crypto, as JOSE names it: the one algorithm of every stored value. */
export const ALGORITHM = 'A256GCM' as const

/**
 * A value encrypted at rest, stored where the plaintext would be (a jsonb column, or the JSON text
 * of a text column): the algorithm, the id of the key that sealed it, the nonce, and the
 * ciphertext with its 16-byte tag. The additional data binding it to its row and column is not
 * stored: the reader states it again, so a value copied to another row does not open.
 */
export interface Sealed {
  alg: typeof ALGORITHM
  kid: string
  iv: string
  ct: string
}

export class DecryptionError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'DecryptionError'
  }
}

export function isSealed(value: unknown): value is Sealed {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Sealed).alg === ALGORITHM &&
    typeof (value as Sealed).kid === 'string' &&
    typeof (value as Sealed).iv === 'string' &&
    typeof (value as Sealed).ct === 'string'
  )
}

export function seal(key: Buffer, kid: string, plaintext: Buffer, aad: string): Sealed {
  const { iv, ct } = sealBinary(key, plaintext, aad)
  return { alg: ALGORITHM, kid, iv: iv.toString('base64'), ct: ct.toString('base64') }
}

export function open(key: Buffer, sealed: Sealed, aad: string): Buffer {
  return openBinary(key, Buffer.from(sealed.iv, 'base64'), Buffer.from(sealed.ct, 'base64'), aad)
}

/** The nonce, and the ciphertext followed by its 16-byte tag: a sealed value before any text encoding. */
export function sealBinary(key: Buffer, plaintext: Buffer, aad: string): { iv: Buffer; ct: Buffer } {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(aad, 'utf8'))
  return { iv, ct: Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]) }
}

export function openBinary(key: Buffer, iv: Buffer, data: Buffer, aad: string): Buffer {
  if (data.length < 16) throw new DecryptionError('a sealed value is too short')
  const decipher = createDecipheriv('aes-256-gcm', key, iv)
  decipher.setAAD(Buffer.from(aad, 'utf8'))
  decipher.setAuthTag(data.subarray(data.length - 16))
  try {
    return Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()])
  } catch {
    throw new DecryptionError('a sealed value does not open: wrong key, or moved to another row')
  }
}

/** The master keys: every key that may have wrapped a stored value, and the one that wraps new ones. */
export interface Keyring {
  readonly currentId: string
  key(id: string): Buffer
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/

/** A keyring from `kid:base64` entries; the current key is named, or else the last entry. */
export function parseKeyring(entries: string, currentId?: string, source = 'DATA_ENCRYPTION_KEYS'): Keyring {
  const keys = new Map<string, Buffer>()
  for (const entry of entries.split(/[\s,]+/).filter(Boolean)) {
    const colon = entry.indexOf(':')
    const id = entry.slice(0, colon)
    const key = Buffer.from(entry.slice(colon + 1), 'base64')
    if (colon < 1 || !KEY_ID.test(id)) throw new ConfigError(`${source}: each entry is "<key id>:<base64 key>"`)
    if (key.length !== 32) throw new ConfigError(`${source}: the key "${id}" must be 32 bytes in base64`)
    if (keys.has(id)) throw new ConfigError(`${source}: the key id "${id}" appears twice`)
    keys.set(id, key)
  }
  const current = currentId ?? [...keys.keys()].at(-1)
  if (current === undefined) throw new ConfigError(`${source} holds no key`)
  if (!keys.has(current)) throw new ConfigError(`DATA_ENCRYPTION_KEY_ID "${current}" is not in ${source}`)
  return {
    currentId: current,
    key(id) {
      const found = keys.get(id)
      if (!found) throw new DecryptionError(`the master key "${id}" is not configured`)
      return found
    },
  }
}

/** A keyring of one new random key, as the embedded database's key file starts. */
export function newKeyEntry(id: string): string {
  return `${id}:${randomBytes(32).toString('base64')}`
}

/** The file under the embedded database's data directory that holds its generated master keys. */
export const EMBEDDED_KEY_FILE = 'data-encryption-keys'

/**
 * The master keys: `DATA_ENCRYPTION_KEYS` (and `DATA_ENCRYPTION_KEY_ID`) if set; on the embedded
 * database, the key file in its data directory, made on first start; on PostgreSQL without the
 * variable, a configuration error: personal data is never stored in the clear.
 */
export async function resolveKeyring(config: {
  dataEncryptionKeys: string | undefined
  dataEncryptionKeyId: string | undefined
  databaseUrl: string | undefined
  dataDir: string
}): Promise<Keyring> {
  if (config.dataEncryptionKeys) return parseKeyring(config.dataEncryptionKeys, config.dataEncryptionKeyId)
  if (config.databaseUrl) {
    throw new ConfigError('DATA_ENCRYPTION_KEYS must be set on PostgreSQL: see "Encryption at rest" in the README')
  }
  const file = path.join(config.dataDir, EMBEDDED_KEY_FILE)
  await mkdir(config.dataDir, { recursive: true })
  // `wx`: two processes starting at once keep the key the first one wrote.
  await writeFile(file, `${newKeyEntry('embedded-1')}\n`, { mode: 0o600, flag: 'wx' }).catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error
    },
  )
  return parseKeyring(await readFile(file, 'utf8'), config.dataEncryptionKeyId, file)
}

let installed: Keyring | undefined

/** Sets the master keys of this process, once it has read them at start. */
export function installKeyring(keyring: Keyring): void {
  installed = keyring
}

export function keyring(): Keyring {
  if (!installed) throw new ConfigError('no data encryption key is installed')
  return installed
}
