import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { CompactSign, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, importPKCS8, type JWK } from 'jose'
import { ConfigError } from '../config.js'

/** Checkpoints are signed with EdDSA on Ed25519 (RFC 8037), the algorithm every JOSE library knows. */
export const CHECKPOINT_ALGORITHM = 'EdDSA' as const

/** A public key as the key set publishes it. */
export interface PublishedKey {
  kty: 'OKP'
  crv: 'Ed25519'
  x: string
  kid: string
  alg: typeof CHECKPOINT_ALGORITHM
  use: 'sig'
}

/** The key that signs checkpoints, and its public half as partners find it in the key set. */
export interface AuditSigner {
  keyId: string
  publicJwk: PublishedKey
  sign(payload: object): Promise<string>
}

/** The file under the embedded database's data directory that holds its generated signing key. */
export const EMBEDDED_KEY_FILE = 'audit-signing-key.jwk'

/**
 * The signing key's text: `AUDIT_SIGNING_KEY` if set; on the embedded database, the key in its
 * data directory, made on first start; on PostgreSQL without the variable, none.
 */
export async function resolveAuditSigningKey(config: {
  auditSigningKey: string | undefined
  databaseUrl: string | undefined
  dataDir: string
}): Promise<string | undefined> {
  if (config.auditSigningKey) return config.auditSigningKey
  if (config.databaseUrl) return undefined
  const file = path.join(config.dataDir, EMBEDDED_KEY_FILE)
  const stored = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined
    throw error
  })
  if (stored) return stored
  const { privateKey } = await generateKeyPair(CHECKPOINT_ALGORITHM, { crv: 'Ed25519', extractable: true })
  const text = `${JSON.stringify(await exportJWK(privateKey))}\n`
  await mkdir(config.dataDir, { recursive: true })
  // `wx`: two processes starting at once keep the key the first one wrote.
  await writeFile(file, text, { mode: 0o600, flag: 'wx' }).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error
  })
  return readFile(file, 'utf8')
}

/** The signer of an Ed25519 private key given as a JWK (JSON) or PKCS8 (PEM). */
export async function auditSigner(text: string): Promise<AuditSigner> {
  const trimmed = text.trim()
  let privateJwk: JWK
  if (trimmed.startsWith('{')) {
    try {
      privateJwk = JSON.parse(trimmed) as JWK
    } catch {
      throw invalidKey('its JSON does not parse')
    }
  } else if (trimmed.includes('-----BEGIN PRIVATE KEY-----')) {
    try {
      privateJwk = await exportJWK(await importPKCS8(trimmed, CHECKPOINT_ALGORITHM, { extractable: true }))
    } catch {
      throw invalidKey('the PEM is not an Ed25519 PKCS8 private key')
    }
  } else {
    throw invalidKey('give a JWK or a PKCS8 PEM')
  }
  if (privateJwk.kty !== 'OKP' || privateJwk.crv !== 'Ed25519' || !privateJwk.d || !privateJwk.x) {
    throw invalidKey('it must be an Ed25519 private key (kty OKP, crv Ed25519, with d and x)')
  }
  const publicPart = { kty: 'OKP', crv: 'Ed25519', x: privateJwk.x } as const
  const keyId = await calculateJwkThumbprint(publicPart)
  let privateKey: Awaited<ReturnType<typeof importJWK>>
  try {
    privateKey = await importJWK({ ...privateJwk, alg: CHECKPOINT_ALGORITHM }, CHECKPOINT_ALGORITHM)
  } catch {
    throw invalidKey('the key does not import')
  }
  return {
    keyId,
    publicJwk: { ...publicPart, kid: keyId, alg: CHECKPOINT_ALGORITHM, use: 'sig' },
    sign: (payload) =>
      new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
        .setProtectedHeader({ alg: CHECKPOINT_ALGORITHM, kid: keyId, typ: 'trm-audit-checkpoint+json' })
        .sign(privateKey),
  }
}

function invalidKey(why: string): ConfigError {
  return new ConfigError(`AUDIT_SIGNING_KEY is not a usable Ed25519 private key: ${why}`)
}
