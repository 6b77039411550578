import type { components } from '../../openapi/dist/types.js'
import type { Consent, TransferAgreement } from '../db/schema.js'
import { consentStatus } from '../disclosure/consent-scope.js'
import { ProblemError } from '../http/problem.js'
import { countryStanding } from './countries.js'

type Schemas = components['schemas']
export type TransferBasis = Schemas['TransferBasis']
export type TransferBasisChoice = Schemas['TransferBasisChoice']
export type AgreementInForce = Pick<TransferAgreement, 'id' | 'reference' | 'safeguard'>

/** The provision of the GDPR each kind of Art. 46 safeguard rests on. */
export const safeguardArticle: Record<Schemas['TransferSafeguard'], string> = {
  legally_binding_instrument: 'Art. 46(2)(a)',
  binding_corporate_rules: 'Art. 46(2)(b)',
  standard_contractual_clauses: 'Art. 46(2)(c)',
  administrative_arrangement: 'Art. 46(3)(b)',
}

const derogationArticle = {
  explicit_consent: 'Art. 49(1)(a)',
  public_interest: 'Art. 49(1)(d)',
  vital_interests: 'Art. 49(1)(f)',
} as const

/** Which field of a choice goes with which legal basis; any other field given with it is a mistake. */
const fieldOf = {
  safeguards: 'agreement_id',
  explicit_consent: 'consent_id',
  vital_interests: 'justification',
  public_interest: 'justification',
} as const

interface Party {
  id: string
  name: string
  country: string
}

export interface TransferInput {
  sender: Party
  recipient: Party
  /** The sender's choice; without it, a standing agreement in force between the two. */
  choice: TransferBasisChoice | undefined
  /** The agreements between sender and recipient in force today, newest first. */
  agreements: readonly AgreementInForce[]
  consents: readonly Consent[]
  now: Date
}

/** Whether a packet from one country to another leaves the EU/EEA (GDPR Chapter V applies to the sender in it). */
export function isTransfer(senderCountry: string, recipientCountry: string, now: Date): boolean {
  return countryStanding(senderCountry, now).zone === 'eea' && countryStanding(recipientCountry, now).zone !== 'eea'
}

/**
 * The legal basis of a packet, or null when it stays inside the EU/EEA (or leaves from outside it).
 * To a country with an adequacy decision: that decision (Art. 45). Elsewhere: the sender's choice —
 * a standing agreement (Art. 46), or a derogation (Art. 49) — or else the standing agreement in
 * force between the two; without any, the packet may not go (422).
 */
export function transferBasis(input: TransferInput): TransferBasis | null {
  const { sender, recipient, choice, now } = input
  if (!isTransfer(sender.country, recipient.country, now)) return null
  const standing = countryStanding(recipient.country, now)
  const basis = {
    destination_country: recipient.country,
    zone: standing.zone === 'adequate' ? ('adequate' as const) : ('third_country' as const),
    adequacy_decision: null,
    agreement_id: null,
    agreement_reference: null,
    consent_id: null,
    justification: null,
  }
  if (standing.zone === 'adequate') {
    return {
      ...basis,
      legal_basis: 'adequacy_decision',
      article: 'Art. 45(3)',
      adequacy_decision: standing.adequacyDecision,
    }
  }
  if (!choice) {
    const agreement = input.agreements[0]
    if (!agreement) {
      throw new ProblemError(
        422,
        `${recipient.name} is in ${recipient.country}, outside the EU/EEA and without an adequacy decision, and no ` +
          `transfer agreement between ${sender.name} and it is in force: name the legal basis of this transfer in ` +
          'transfer_basis (GDPR Art. 46 safeguards, or an Art. 49 derogation: explicit consent after being informed ' +
          'of the risks, vital interests, important public interest).',
        {
          code: 'transfer-basis-required',
          extras: { errors: [{ pointer: '#/transfer_basis', detail: 'is required for a transfer to this recipient' }] },
        },
      )
    }
    return withAgreement(basis, agreement)
  }
  for (const field of ['agreement_id', 'consent_id', 'justification'] as const) {
    if (choice[field] !== undefined && fieldOf[choice.legal_basis] !== field) {
      throw invalid(field, `does not go with the legal basis ${choice.legal_basis}`)
    }
  }
  switch (choice.legal_basis) {
    case 'safeguards': {
      const agreement = choice.agreement_id
        ? input.agreements.find((candidate) => candidate.id === choice.agreement_id)
        : input.agreements[0]
      if (!agreement) {
        throw choice.agreement_id
          ? invalid(
              'agreement_id',
              `is not a transfer agreement between ${sender.name} and ${recipient.name} in force today`,
            )
          : invalid(
              'legal_basis',
              `no transfer agreement between ${sender.name} and ${recipient.name} is in force today`,
            )
      }
      return withAgreement(basis, agreement)
    }
    case 'explicit_consent': {
      if (!choice.consent_id) throw invalid('consent_id', 'is required with explicit_consent')
      const consent = input.consents.find((candidate) => candidate.id === choice.consent_id)
      if (!consent) throw invalid('consent_id', 'is not a consent of this case')
      if (consentStatus(consent, now) !== 'active') throw invalid('consent_id', 'is not an active consent')
      if (!consent.informed_of_transfer_risks) {
        throw invalid('consent_id', 'does not say the person was informed of the risks of the transfer')
      }
      if (!consent.provisions.some((provision) => provision.recipients.includes(recipient.id))) {
        throw invalid('consent_id', `does not name ${recipient.name} as a recipient`)
      }
      return {
        ...basis,
        legal_basis: 'explicit_consent',
        article: derogationArticle.explicit_consent,
        consent_id: consent.id,
      }
    }
    case 'vital_interests':
    case 'public_interest': {
      if (!choice.justification) throw invalid('justification', `is required with ${choice.legal_basis}`)
      return {
        ...basis,
        legal_basis: choice.legal_basis,
        article: derogationArticle[choice.legal_basis],
        justification: choice.justification,
      }
    }
  }
}

/** The choice that repeats a recorded basis: the full referral rests on the basis of the enquiry it follows. */
export function choiceOf(recorded: TransferBasis | null): TransferBasisChoice | undefined {
  if (!recorded || recorded.legal_basis === 'adequacy_decision') return undefined
  return {
    legal_basis: recorded.legal_basis,
    ...(recorded.agreement_id ? { agreement_id: recorded.agreement_id } : {}),
    ...(recorded.consent_id ? { consent_id: recorded.consent_id } : {}),
    ...(recorded.justification ? { justification: recorded.justification } : {}),
  }
}

function withAgreement(
  basis: Omit<TransferBasis, 'legal_basis' | 'article'>,
  agreement: AgreementInForce,
): TransferBasis {
  return {
    ...basis,
    legal_basis: 'safeguards',
    article: safeguardArticle[agreement.safeguard],
    agreement_id: agreement.id,
    agreement_reference: agreement.reference,
  }
}

function invalid(field: string, detail: string): ProblemError {
  return new ProblemError(422, `The legal basis of the transfer does not hold: ${field} ${detail}.`, {
    code: 'transfer-basis-invalid',
    extras: { errors: [{ pointer: `#/transfer_basis/${field}`, detail }] },
  })
}
