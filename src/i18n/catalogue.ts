import { readFileSync } from 'node:fs'
import Negotiator from 'negotiator'

// The texts people read, in the languages of the people concerned. One key set, English as the
// source: `messages/<language>.json`. Codes on the wire never change; only the sentences and
// labels beside them are translated.

/** The languages the service speaks, as BCP 47 tags (Ukrainian is `uk`, Albanian `sq`). */
export const languages = ['en', 'pl', 'uk', 'sq', 'ar', 'fr'] as const
export type Language = (typeof languages)[number]

/** Languages written right to left. */
export const rightToLeft: ReadonlySet<Language> = new Set(['ar'])

type Catalogue = Readonly<Record<string, string>>

export const catalogues: Readonly<Record<Language, Catalogue>> = Object.fromEntries(
  languages.map((language) => [
    language,
    JSON.parse(readFileSync(new URL(`./messages/${language}.json`, import.meta.url), 'utf8')) as Catalogue,
  ]),
) as Record<Language, Catalogue>

export function isLanguage(value: unknown): value is Language {
  return typeof value === 'string' && (languages as readonly string[]).includes(value)
}

/**
 * The language of an answer: the `lang` parameter when given, else the best match of
 * `Accept-Language` (q-values honoured; `uk-UA` matches `uk`), else English.
 */
export function negotiateLanguage(acceptLanguage: string | undefined, lang?: string): Language {
  if (isLanguage(lang)) return lang
  const best = new Negotiator({ headers: { 'accept-language': acceptLanguage ?? '' } }).language([...languages])
  return isLanguage(best) ? best : 'en'
}

/**
 * A value put into a sentence: plain text; a label (`lower` for the middle of a sentence); a code
 * of a vocabulary, which English sentences name as the code and other languages by its label; or
 * a list joined with "or".
 */
export type Param =
  | string
  | { key: string; lower?: boolean }
  | { code: string; vocabulary: string; lower?: boolean }
  | { or: readonly Param[] }
export type Params = Readonly<Record<string, Param>>

/** A sentence not yet put into words: its key and what fills it. */
export interface Message {
  key: string
  params?: Params
}

/**
 * The message behind each human-readable `message` field, kept beside the object rather than in it
 * (nothing extra is serialised or compared), so that the sentence can be said again in the
 * reader's language at the boundary. An object copied with a new message is registered anew.
 */
const messages = new WeakMap<object, Message>()

export type Localisable = { message: string }

/** The text of a key in a language; English where a language lacks it (the completeness test forbids that). */
export function text(language: Language, key: string, params: Params = {}): string {
  const template = catalogues[language][key] ?? catalogues.en[key]
  if (template === undefined) throw new Error(`no message ${key}`)
  return template.replaceAll(/\{(\w+)\}/g, (whole, name: string) => {
    const param = params[name]
    if (param === undefined) return whole
    return paramText(language, param)
  })
}

function paramText(language: Language, param: Param): string {
  if (typeof param === 'string') return param
  if ('or' in param) {
    const items = param.or.map((item) => paramText(language, item))
    return language === 'en' ? items.join(' or ') : new Intl.ListFormat(language, { type: 'disjunction' }).format(items)
  }
  if ('code' in param) {
    if (language === 'en') return param.code
    const name = label(language, `${param.vocabulary}.${param.code}`)
    return param.lower ? lowerFirst(language, name) : name
  }
  const name = text(language, param.key)
  if (!param.lower) return name
  return lowerFirst(language, language === 'en' ? name.replace(/^(An?|The) /, '').toLowerCase() : name)
}

function lowerFirst(language: Language, words: string): string {
  return words.charAt(0).toLocaleLowerCase(language) + words.slice(1)
}

/** A label for a code, or the code itself where the catalogue has none (for codes added since). */
export function label(language: Language, key: string): string {
  return catalogues[language][key] ?? catalogues.en[key] ?? key.slice(key.lastIndexOf('.') + 1)
}

/** The labels of a language: every key but the sentences (`unmet.*`, `receipt.*`), which take values. */
export function labels(language: Language): Record<string, string> {
  return Object.fromEntries(
    Object.keys(catalogues.en)
      .filter((key) => !/^(unmet|receipt)\./.test(key))
      .map((key) => [key, label(language, key)]),
  )
}

/** A refusal detail in English, whose message can be said in another language. */
export function withMessage<T extends object>(detail: T, message: Message): T & Localisable {
  const said = { ...detail, message: text('en', message.key, message.params) }
  messages.set(said, message)
  return said
}

/** The details of a refusal said in a language; details without a message of their own stay as they are. */
export function localiseDetails<T extends Localisable>(details: readonly T[], language: Language): T[] {
  if (language === 'en') return [...details]
  return details.map((detail) => {
    const message = messages.get(detail)
    return message ? { ...detail, message: text(language, message.key, message.params) } : detail
  })
}
