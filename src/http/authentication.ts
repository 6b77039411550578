import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import type { Database } from '../db/database.js'
import type { DB, Organisation, Principal, Role } from '../db/schema.js'
import { ProblemError } from './problem.js'

/** Who is calling: a principal of one organisation, through one API key. */
export interface Caller {
  principal: Principal
  organisation: Organisation
  apiKey: { id: string; prefix: string }
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller | null
  }
  interface FastifyInstance {
    /** The callers this process holds in memory; see `CredentialCache`. */
    credentials: CredentialCache
  }
}

const KEY_PATTERN = /^trm_([a-z0-9]{12})_([A-Za-z0-9_-]{20,100})$/
const PREFIX_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'

export interface GeneratedApiKey {
  key: string
  prefix: string
  secretHash: string
}

/** A new key: a public prefix to find it by, and 256 random bits of secret, of which only a hash is kept. */
export function generateApiKey(): GeneratedApiKey {
  const prefix = Array.from(randomBytes(12), (byte) => PREFIX_ALPHABET[byte % PREFIX_ALPHABET.length]).join('')
  return apiKeyFromParts(prefix, randomBytes(32).toString('base64url'))
}

export function apiKeyFromParts(prefix: string, secret: string): GeneratedApiKey {
  const key = `trm_${prefix}_${secret}`
  if (!KEY_PATTERN.test(key))
    throw new Error('an API key needs a 12-character [a-z0-9] prefix and a 20-100 character secret')
  return { key, prefix, secretHash: hashSecret(secret) }
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}

/**
 * Counts failed authentications per bucket in a fixed one-minute window. A bucket is a key prefix
 * and a client address, so that one partner's misconfigured key does not lock out the other
 * partners behind the same address (one NAT, one proxy); presentations that name no key of ours
 * (none, malformed, unknown prefix) share one bucket per address, so that guessing prefixes buys
 * no more attempts than guessing secrets.
 */
class FailureLimiter {
  readonly limit: number
  readonly #windows = new Map<string, { startedAt: number; failures: number }>()

  constructor(limit: number) {
    this.limit = limit
  }

  retryAfterSeconds(bucket: string, now = Date.now()): number {
    const window = this.#windows.get(bucket)
    if (!window || now - window.startedAt >= 60_000) return 0
    return window.failures >= this.limit ? Math.ceil((window.startedAt + 60_000 - now) / 1000) : 0
  }

  recordFailure(bucket: string, now = Date.now()): void {
    const window = this.#windows.get(bucket)
    if (!window || now - window.startedAt >= 60_000) {
      if (this.#windows.size > 10_000) this.#forgetExpired(now)
      this.#windows.set(bucket, { startedAt: now, failures: 1 })
    } else {
      window.failures += 1
    }
  }

  #forgetExpired(now: number): void {
    for (const [bucket, window] of this.#windows) {
      if (now - window.startedAt >= 60_000) this.#windows.delete(bucket)
    }
  }
}

/** How long a process answers for a key from memory, without asking the database. */
export const CREDENTIALS_TTL_MS = 30_000
const CREDENTIALS_HELD = 10_000
/** The channel on which the database announces a change to keys, principals or organisations. */
export const CREDENTIALS_CHANNEL = 'trm_credentials'

interface HeldCaller {
  caller: Caller
  expiresAt: Date | null
  heldUntil: number
}

/**
 * The callers of keys that authenticated lately, by the hash of the whole key, for a few seconds:
 * a request then costs the database no statement to authenticate. Any change to a key, a
 * principal or an organisation, in any process, reaches every process as a notification at
 * commit (migration 0016), and each forgets everything it holds. While the connection that
 * hears those notifications is down, nothing is held. Emits `forgotten` each time it forgets.
 */
export class CredentialCache extends EventEmitter {
  readonly #entries = new Map<string, HeldCaller>()
  #hearing = false
  /** Moves on at each forgetting, so that a lookup that began before it is not held after it. */
  #generation = 0

  get generation(): number {
    return this.#generation
  }

  get(hash: string, now: Date): Caller | undefined {
    const held = this.#entries.get(hash)
    if (!held) return undefined
    if (held.heldUntil <= now.getTime() || (held.expiresAt !== null && held.expiresAt <= now)) {
      this.#entries.delete(hash)
      return undefined
    }
    return held.caller
  }

  hold(hash: string, caller: Caller, expiresAt: Date | null, generation: number, now: Date): void {
    if (!this.#hearing || generation !== this.#generation) return
    if (this.#entries.size >= CREDENTIALS_HELD) {
      const oldest = this.#entries.keys().next().value
      if (oldest !== undefined) this.#entries.delete(oldest)
    }
    this.#entries.set(hash, { caller, expiresAt, heldUntil: now.getTime() + CREDENTIALS_TTL_MS })
  }

  forget(): void {
    this.#generation += 1
    this.#entries.clear()
    this.emit('forgotten')
  }

  hearing(on: boolean): void {
    this.#hearing = on
    this.forget()
  }
}

/** Resolves the bearer key of every non-public route into `request.caller`, or answers 401. */
export async function registerAuthentication(
  app: FastifyInstance,
  database: Database,
  failuresPerMinute: number,
  clock: Clock,
): Promise<CredentialCache> {
  const db = database.db
  const credentials = new CredentialCache()
  const stopListening = await database.listen(CREDENTIALS_CHANNEL, {
    notified: () => credentials.forget(),
    hearing: (on) => credentials.hearing(on),
  })
  app.addHook('onClose', stopListening)
  app.decorate('credentials', credentials)
  const failures = new FailureLimiter(failuresPerMinute)
  app.decorateRequest('caller', null)
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.public !== false) return
    const addressBucket = `address ${request.ip}`
    const presented = presentedKey(request.headers.authorization)
    const keyBucket = 'prefix' in presented ? `key ${presented.prefix} ${request.ip}` : addressBucket
    throwIfLimited(failures, keyBucket)
    const found = 'prefix' in presented ? await heldOrFoundCaller(db, credentials, clock, presented) : presented
    if ('failure' in found) {
      const bucket = found.knownPrefix ? keyBucket : addressBucket
      // Checked again after the lookup, or a burst of concurrent guesses would all be answered.
      throwIfLimited(failures, bucket)
      failures.recordFailure(bucket)
      throw found.failure
    }
    throwIfLimited(failures, keyBucket)
    request.caller = found.caller
  })
  return credentials
}

async function heldOrFoundCaller(
  db: Kysely<DB>,
  credentials: CredentialCache,
  clock: Clock,
  { prefix, secret }: { prefix: string; secret: string },
): Promise<{ caller: Caller } | Failure> {
  const hash = `${prefix}:${hashSecret(secret)}`
  const held = credentials.get(hash, clock.now())
  if (held) return { caller: held }
  const generation = credentials.generation
  const found = await findCaller(db, clock, prefix, secret)
  if ('caller' in found) credentials.hold(hash, found.caller, found.expiresAt, generation, clock.now())
  return found
}

function throwIfLimited(failures: FailureLimiter, bucket: string): void {
  const retryAfter = failures.retryAfterSeconds(bucket)
  if (retryAfter > 0) {
    throw new ProblemError(429, `Too many failed authentication attempts; retry in ${retryAfter} seconds.`, {
      headers: {
        'retry-after': String(retryAfter),
        'x-ratelimit-limit': String(failures.limit),
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(retryAfter),
      },
    })
  }
}

interface Failure {
  failure: ProblemError
  /** The key's prefix exists: the failure counts against that key, not the whole address. */
  knownPrefix: boolean
}

function presentedKey(header: string | undefined): { prefix: string; secret: string } | Failure {
  if (!header)
    return { failure: unauthenticated('Send an API key as "Authorization: Bearer <key>".'), knownPrefix: false }
  const [scheme, key, ...rest] = header.trim().split(/\s+/)
  if (scheme?.toLowerCase() !== 'bearer' || !key || rest.length > 0) {
    return { failure: unauthenticated('The Authorization header must be "Bearer <key>".'), knownPrefix: false }
  }
  const match = KEY_PATTERN.exec(key)
  if (!match) return { failure: unauthenticated('The API key is malformed.'), knownPrefix: false }
  const [, prefix, secret] = match as unknown as [string, string, string]
  return { prefix, secret }
}

async function findCaller(
  db: Kysely<DB>,
  clock: Clock,
  prefix: string,
  secret: string,
): Promise<{ caller: Caller; expiresAt: Date | null } | Failure> {
  const row = await db
    .selectFrom('api_keys as k')
    .innerJoin('principals as p', 'p.id', 'k.principal_id')
    .innerJoin('organisations as o', 'o.id', 'p.organisation_id')
    .select([
      'k.id as key_id',
      'k.secret_hash',
      'k.expires_at',
      'k.revoked_at',
      'p.id as principal_id',
      'p.organisation_id',
      'p.name as principal_name',
      'p.kind as principal_kind',
      'p.roles',
      'p.created_at as principal_created_at',
      'o.name as organisation_name',
      'o.country',
      'o.kind as organisation_kind',
      'o.can_send',
      'o.can_receive',
      'o.time_zone',
      'o.created_at as organisation_created_at',
    ])
    .where('k.prefix', '=', prefix)
    .executeTakeFirst()
  const valid =
    row !== undefined &&
    timingSafeEqual(Buffer.from(row.secret_hash, 'hex'), Buffer.from(hashSecret(secret), 'hex')) &&
    row.revoked_at === null &&
    (row.expires_at === null || row.expires_at > clock.now())
  if (!valid) {
    return { failure: unauthenticated('The API key is unknown, expired or revoked.'), knownPrefix: row !== undefined }
  }
  const caller: Caller = {
    apiKey: { id: row.key_id, prefix },
    principal: {
      id: row.principal_id,
      organisation_id: row.organisation_id,
      name: row.principal_name,
      kind: row.principal_kind,
      roles: row.roles,
      created_at: row.principal_created_at,
    },
    organisation: {
      id: row.organisation_id,
      name: row.organisation_name,
      country: row.country,
      kind: row.organisation_kind,
      can_send: row.can_send,
      can_receive: row.can_receive,
      time_zone: row.time_zone,
      created_at: row.organisation_created_at,
    },
  }
  return { caller, expiresAt: row.expires_at }
}

function unauthenticated(detail: string): ProblemError {
  return new ProblemError(401, detail, { headers: { 'www-authenticate': 'Bearer realm="trm-api"' } })
}

/** The authenticated caller of a non-public operation. */
export function callerOf(request: FastifyRequest): Caller {
  if (!request.caller) throw new Error(`${request.routeOptions.config.operationId} runs without a caller`)
  return request.caller
}

/** Caseworkers and supervisors act on cases; data protection officers and auditors only read. */
export const actingRoles: Role[] = ['caseworker', 'supervisor']
export const readingRoles: Role[] = ['caseworker', 'supervisor', 'dpo', 'auditor']

/** The caller, if it holds at least one of the roles; otherwise a 403. */
export function requireRole(request: FastifyRequest, ...roles: Role[]): Caller {
  const caller = callerOf(request)
  if (!roles.some((role) => caller.principal.roles.includes(role))) {
    throw new ProblemError(403, `This operation needs the role ${roles.join(' or ')}.`)
  }
  return caller
}

/** The caller, if it is an `admin` of the hub operator: partner organisations' admins run nothing of the hub. */
export function requireHubAdmin(request: FastifyRequest): Caller {
  const caller = requireRole(request, 'admin')
  if (caller.organisation.kind !== 'hub_operator') {
    throw new ProblemError(403, 'This operation needs the role admin in the hub operator.')
  }
  return caller
}
