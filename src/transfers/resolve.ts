import type { Transaction } from 'kysely'
import type { DB } from '../db/schema.js'
import { isTransfer, type TransferBasis, type TransferInput, transferBasis } from './basis.js'
import { agreementsInForce } from './queries.js'

/**
 * The legal basis of a packet about to be sent, in the sending transaction: the one rule every
 * packet passes through. The standing agreements are read only for a packet that leaves the EU/EEA.
 */
export async function resolveTransfer(
  trx: Transaction<DB>,
  input: Omit<TransferInput, 'agreements'>,
): Promise<TransferBasis | null> {
  const { sender, recipient, now } = input
  const agreements = isTransfer(sender.country, recipient.country, now)
    ? await agreementsInForce(trx, sender.id, recipient.id, now.toISOString().slice(0, 10))
    : []
  return transferBasis({ ...input, agreements })
}
