import type { Consent, DataCategory, Purpose } from '../db/schema.js'
import { consentStatus } from '../disclosure/consent-scope.js'
import { isLanguage, type Language, rightToLeft, text } from '../i18n/catalogue.js'

// A consent receipt for the person: what they agreed to, in plain words and in their language.
// One document model, rendered as HTML here and as PDF in receipt-pdf.ts. It holds no personal
// data beyond the consent's own terms: no name, no case data.

export interface ReceiptOrganisation {
  name: string
  /** ISO 3166-1 alpha-2. */
  country: string
}

export interface ReceiptFacts {
  consent: Pick<Consent, 'id' | 'given_at' | 'expires_at' | 'withdrawn_at' | 'provisions'>
  /** The organisations the consent names and the one that holds it, by id. */
  organisations: ReadonlyMap<string, ReceiptOrganisation>
  /** The organisation the person tells to withdraw: the one that recorded the consent. */
  holderId: string
  issuedAt: Date
}

export type Block =
  | { kind: 'title'; text: string }
  | { kind: 'heading'; text: string }
  | { kind: 'subheading'; text: string }
  | { kind: 'paragraph'; text: string; strong?: boolean }
  | { kind: 'fact'; label: string; value: string }
  | { kind: 'item'; label: string; text?: string }
  | { kind: 'note'; text: string }

export interface Receipt {
  language: Language
  direction: 'ltr' | 'rtl'
  title: string
  blocks: Block[]
}

/**
 * The language of a receipt: the one asked for (`lang`), else the language the consent was given
 * in, else the first of the person's languages that the service speaks, else the negotiated one.
 */
export function receiptLanguage(
  asked: Language | undefined,
  consentLanguage: string,
  personLanguages: readonly string[],
  negotiated: Language,
): Language {
  if (asked) return asked
  const spoken = [consentLanguage, ...personLanguages]
    .map((tag) => tag.split('-')[0]?.toLowerCase())
    .find((primary) => isLanguage(primary))
  return (spoken as Language | undefined) ?? negotiated
}

export function composeReceipt(facts: ReceiptFacts, language: Language): Receipt {
  const t = (key: string, params: Record<string, string> = {}) => text(language, key, params)
  const date = dateFormat(language)
  const countries = new Intl.DisplayNames([language], { type: 'region' })
  const organisation = (id: string) => {
    const found = facts.organisations.get(id)
    return found ? `${found.name} (${countries.of(found.country) ?? found.country})` : id
  }
  const { consent } = facts
  const status = consentStatus(consent, facts.issuedAt)
  const blocks: Block[] = [
    { kind: 'title', text: t('receipt.title') },
    { kind: 'paragraph', text: t('receipt.intro') },
    { kind: 'fact', label: t('receipt.reference'), value: consent.id },
    { kind: 'fact', label: t('receipt.given_on'), value: date.format(consent.given_at) },
  ]
  if (status === 'withdrawn' && consent.withdrawn_at) {
    blocks.push({
      kind: 'paragraph',
      strong: true,
      text: t('receipt.status.withdrawn', { date: date.format(consent.withdrawn_at) }),
    })
  } else if (status === 'expired' && consent.expires_at) {
    blocks.push({
      kind: 'paragraph',
      strong: true,
      text: t('receipt.status.expired', { date: date.format(consent.expires_at) }),
    })
  }
  consent.provisions.forEach((provision, index) => {
    if (consent.provisions.length > 1) {
      blocks.push({ kind: 'heading', text: t('receipt.agreement', { number: String(index + 1) }) })
    }
    const heading = consent.provisions.length > 1 ? 'subheading' : 'heading'
    blocks.push({ kind: heading, text: t('receipt.what') })
    blocks.push(...provision.categories.map((category: DataCategory) => described(language, 'category', category)))
    blocks.push({ kind: heading, text: t('receipt.with_whom') })
    blocks.push(...provision.recipients.map((id) => ({ kind: 'item' as const, label: organisation(id) })))
    blocks.push({ kind: heading, text: t('receipt.for_what') })
    blocks.push(...provision.purposes.map((purpose: Purpose) => described(language, 'purpose', purpose)))
  })
  blocks.push(
    { kind: 'heading', text: t('receipt.until') },
    {
      kind: 'paragraph',
      text: consent.expires_at
        ? t('receipt.until.date', { date: date.format(consent.expires_at) })
        : t('receipt.until.open'),
    },
    { kind: 'heading', text: t('receipt.withdraw') },
    { kind: 'paragraph', text: t('receipt.withdraw.who', { organisation: organisation(facts.holderId) }) },
    { kind: 'paragraph', text: t('receipt.withdraw.free') },
    { kind: 'paragraph', text: t('receipt.withdraw.effect') },
    { kind: 'paragraph', text: t('receipt.withdraw.help') },
    { kind: 'paragraph', text: t('receipt.exception') },
    { kind: 'note', text: t('receipt.issued', { date: date.format(facts.issuedAt) }) },
  )
  return { language, direction: rightToLeft.has(language) ? 'rtl' : 'ltr', title: t('receipt.title'), blocks }
}

function described(language: Language, vocabulary: 'category' | 'purpose', code: string): Block {
  return {
    kind: 'item',
    label: text(language, `${vocabulary}.${code}`),
    text: text(language, `${vocabulary}.${code}.description`),
  }
}

/** Dates as people of the language write them; Latin digits in Arabic, as the reference and Maghreb usage have them. */
function dateFormat(language: Language): Intl.DateTimeFormat {
  const locale = language === 'en' ? 'en-GB' : language === 'ar' ? 'ar-u-nu-latn' : language
  return new Intl.DateTimeFormat(locale, { dateStyle: 'long', timeZone: 'UTC' })
}

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Every text of the page goes through this: organisation names come from partners. */
function escapeHtml(value: string): string {
  return value.replaceAll(/[&<>"']/g, (char) => escapes[char] ?? char)
}

/** A static page: no scripts, styles inline, every text escaped. */
export function receiptHtml(receipt: Receipt): string {
  const body: string[] = []
  let list: string[] = []
  const flush = () => {
    if (list.length > 0) body.push(`<ul>${list.join('')}</ul>`)
    list = []
  }
  for (const block of receipt.blocks) {
    if (block.kind === 'item') {
      list.push(
        block.text === undefined
          ? `<li>${escapeHtml(block.label)}</li>`
          : `<li><strong>${escapeHtml(block.label)}</strong>: ${escapeHtml(block.text)}</li>`,
      )
      continue
    }
    flush()
    switch (block.kind) {
      case 'title':
        body.push(`<h1>${escapeHtml(block.text)}</h1>`)
        break
      case 'heading':
        body.push(`<h2>${escapeHtml(block.text)}</h2>`)
        break
      case 'subheading':
        body.push(`<h3>${escapeHtml(block.text)}</h3>`)
        break
      case 'paragraph':
        body.push(
          block.strong ? `<p><strong>${escapeHtml(block.text)}</strong></p>` : `<p>${escapeHtml(block.text)}</p>`,
        )
        break
      case 'fact':
        body.push(`<p class="fact">${escapeHtml(block.label)}: <bdi>${escapeHtml(block.value)}</bdi></p>`)
        break
      case 'note':
        body.push(`<p class="note">${escapeHtml(block.text)}</p>`)
        break
    }
  }
  flush()
  return [
    '<!doctype html>',
    `<html lang="${receipt.language}" dir="${receipt.direction}">`,
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(receipt.title)}</title>`,
    '<style>',
    'body{font-family:"Noto Sans","Noto Naskh Arabic",Arial,sans-serif;line-height:1.5;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#111}',
    'h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:1.6rem}h3{font-size:1rem}',
    '.fact bdi{font-family:monospace}.note{color:#555;font-size:.9rem;margin-top:2rem}',
    '</style>',
    '</head>',
    `<body>${body.join('\n')}</body>`,
    '</html>',
    '',
  ].join('\n')
}
