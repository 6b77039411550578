import type { FastifyReply, FastifyRequest } from 'fastify'
import { type Language, negotiateLanguage } from '../i18n/catalogue.js'

/**
 * The language of an answer that carries translated text: the `lang` query parameter, else
 * `Accept-Language`. The answer says which (`Content-Language`) and that it varies with the header.
 */
export function answerLanguage(request: FastifyRequest, reply: FastifyReply): Language {
  const { lang } = (request.query ?? {}) as { lang?: unknown }
  const language = negotiateLanguage(request.headers['accept-language'], typeof lang === 'string' ? lang : undefined)
  reply.header('content-language', language)
  const vary = String(reply.getHeader('vary') ?? '')
  if (!/(^|,)\s*accept-language\s*(,|$)/i.test(vary)) {
    reply.header('vary', vary ? `${vary}, Accept-Language` : 'Accept-Language')
  }
  return language
}
