import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'

const SECRET_PREFIX = 'whsec_'

/** A new signing secret: 32 random bytes, as Standard Webhooks writes them (`whsec_` and base64). */
export function newSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64')
}

/** The part of a secret that may be shown again to tell secrets apart. */
export function secretPrefix(secret: string): string {
  return secret.slice(0, SECRET_PREFIX.length + 4)
}

/** The Standard Webhooks headers of one delivery attempt, signed with every current secret. */
export function signedHeaders(secrets: readonly string[], messageId: string, body: string, at: Date) {
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((secret) => new Webhook(secret).sign(messageId, at, body)).join(' '),
  }
}
