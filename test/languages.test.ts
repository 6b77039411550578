/**
 * Languages: the catalogues hold every key that the procedures, the record kinds and the contract's
 * vocabularies call for, in all six languages; the language is negotiated from `Accept-Language`
 * (q-values) with `lang` winning; translated answers say `Content-Language` and vary on
 * `Accept-Language`; codes never change with the language.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { contract } from '../src/http/contract.js'
import { catalogues, languages, negotiateLanguage } from '../src/i18n/catalogue.js'
import { missingKeys, procedureKeys, recordKeys, sideKeys, vocabularyKeys } from '../src/i18n/keys.js'
import type { SopDefinition } from '../src/sops/definition.js'
import { recordKinds } from '../src/sops/records.js'
import { loadSops } from '../src/sops/registry.js'
import { startTestApp } from './fixtures/app.js'
import { newCase, sender } from './fixtures/referral.js'

const registry = loadSops()
const sopSchema = JSON.parse(readFileSync(new URL('../src/sops/sop.schema.json', import.meta.url), 'utf8')) as {
  $defs: { side: { enum: string[] } }
}
const schemas = (contract.components.schemas ?? {}) as Record<string, { enum?: unknown[] }>

/** Every key a language must hold, from what the service itself says. */
function required(definitions: readonly SopDefinition[]): string[] {
  return [
    ...procedureKeys(definitions),
    ...recordKeys(recordKinds),
    ...vocabularyKeys(schemas),
    ...sideKeys(sopSchema.$defs.side.enum),
  ]
}

t.test('every language holds every key the procedures, record kinds and vocabularies call for', async (t) => {
  t.same(languages, ['en', 'pl', 'uk', 'sq', 'ar', 'fr'], 'the six languages of the people concerned')
  const missing = missingKeys(required(registry.all()), catalogues)
  for (const language of languages) t.same(missing[language], [], `${language}: no key missing`)
  for (const language of languages) {
    const extra = Object.keys(catalogues[language]).filter((key) => !(key in catalogues.en))
    t.same(extra, [], `${language}: no key that English, the source, lacks`)
  }
})

t.test('the required keys follow the definitions: a step or action added without translations is named', async (t) => {
  const adult = registry.current('adult')
  const grown: SopDefinition = {
    ...adult,
    steps: { ...adult.steps, travel_postponed: { title: 'Travel postponed', description: 'Postponed.' } },
    transitions: [
      ...adult.transitions,
      { ...(adult.transitions[0] as SopDefinition['transitions'][0]), action: 'postpone' },
    ],
  }
  const missing = missingKeys(required([...registry.all(), grown]), catalogues)
  for (const language of languages) {
    t.same(missing[language], ['step.travel_postponed', 'action.postpone'], `${language}: names the new keys`)
  }
  const withReason = vocabularyKeys({ ...schemas, ClosureReason: { enum: ['completed', 'lost_contact'] } })
  t.ok(
    withReason.includes('reason.closure.completed') && withReason.includes('reason.closure.lost_contact'),
    'a reason vocabulary added to the contract (`…Reason`) is required too',
  )
  t.ok(required(registry.all()).includes('reason.decline.not_in_best_interests_of_child'), 'decline reasons')
  t.ok(required(registry.all()).includes('reason.withheld.not_needed_for_purpose'), 'withheld reasons')
  t.ok(required(registry.all()).includes('category.health.description'), 'categories with a plain description')
  t.ok(required(registry.all()).includes('purpose.monitoring.description'), 'purposes with a plain description')
})

t.test('English is the source: the titles in the procedures and record kinds are the English catalogue', async (t) => {
  for (const definition of registry.all()) {
    t.equal(catalogues.en[`sop.${definition.id}.title`], definition.title, `${definition.id} title`)
    for (const [name, step] of Object.entries(definition.steps)) {
      t.equal(catalogues.en[`step.${name}`], step.title, `${definition.id} step ${name}`)
    }
    for (const transition of definition.transitions) {
      t.equal(catalogues.en[`action.${transition.action}`], transition.title, `${definition.id} ${transition.action}`)
    }
  }
  for (const [kind, { title }] of Object.entries(recordKinds.records)) t.equal(catalogues.en[`record.${kind}`], title)
  for (const [kind, { title }] of Object.entries(recordKinds.assessments)) {
    t.equal(catalogues.en[`assessment.${kind}`], title)
  }
})

t.test('every translation fills the same placeholders as the English sentence', async (t) => {
  const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()
  for (const [key, english] of Object.entries(catalogues.en)) {
    for (const language of languages) {
      const translated = catalogues[language][key] ?? ''
      if (placeholders(translated).join() !== placeholders(english).join()) {
        t.fail(`${language} ${key}: placeholders ${placeholders(translated)} differ from ${placeholders(english)}`)
      }
    }
  }
  t.pass('placeholders checked')
})

t.test('negotiation: q-values, fallbacks, and lang winning', async (t) => {
  t.equal(negotiateLanguage('uk,pl;q=0.5'), 'uk')
  t.equal(negotiateLanguage('pl;q=0.3, fr;q=0.8'), 'fr', 'the higher q-value')
  t.equal(negotiateLanguage('uk-UA'), 'uk', 'a regional tag matches its language')
  t.equal(negotiateLanguage('de, it;q=0.9'), 'en', 'no supported language: English')
  t.equal(negotiateLanguage(undefined), 'en', 'no header: English')
  t.equal(negotiateLanguage('uk,pl;q=0.5', 'ar'), 'ar', 'lang wins')
  t.equal(negotiateLanguage('uk', 'de'), 'uk', 'an unsupported lang is ignored here (the contract refuses it)')
})

t.test('translated answers over HTTP', async (t) => {
  const app = await startTestApp(t)

  const ukrainian = await app.request({
    url: '/v1/sops/adult-return',
    key: sender,
    headers: { 'accept-language': 'uk,pl;q=0.5' },
  })
  t.equal(ukrainian.statusCode, 200)
  t.equal(ukrainian.headers['content-language'], 'uk')
  t.match(ukrainian.headers.vary, /Accept-Language/)
  const sop = ukrainian.json()
  t.equal(sop.id, 'adult-return', 'codes stay')
  t.equal(sop.title, 'Повернення дорослої особи, яка постраждала від торгівлі людьми')
  t.equal(sop.steps.identified.title, 'Ідентифіковано')
  t.equal(
    sop.transitions.find((tr: { action: string }) => tr.action === 'confirm_departure').title,
    'Підтвердити виїзд',
  )

  const arabic = await app.request({
    url: '/v1/sops/adult-return?lang=ar',
    key: sender,
    headers: { 'accept-language': 'uk,pl;q=0.5' },
  })
  t.equal(arabic.headers['content-language'], 'ar', 'lang wins over Accept-Language')
  t.equal(arabic.json().steps.arrived.title, 'تم الوصول')

  const unsupported = await app.request({
    url: '/v1/sops',
    key: sender,
    headers: { 'accept-language': 'de-DE, it;q=0.8' },
  })
  t.equal(unsupported.headers['content-language'], 'en', 'an unsupported language: English')
  t.equal(
    unsupported.json().items.find((s: { id: string }) => s.id === 'child-return').title,
    'Return of a child victim of trafficking',
  )

  const refused = await app.request({ url: '/v1/sops?lang=de', key: sender })
  t.equal(refused.statusCode, 400, 'lang outside the six is refused')

  const opened = await app.request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })
  t.equal(opened.statusCode, 201)
  t.equal(opened.json().step_title, 'Identified', 'English by default')
  const caseId = opened.json().id as string

  const polish = await app.request({ url: `/v1/cases/${caseId}?lang=pl`, key: sender })
  t.equal(polish.json().step, 'identified')
  t.equal(polish.json().step_title, 'Zidentyfikowano')
  const listed = await app.request({ url: '/v1/cases', key: sender, headers: { 'accept-language': 'fr' } })
  t.equal(listed.json().items.find((c: { id: string }) => c.id === caseId).step_title, 'Personne identifiée')

  const next = await app.request({ url: `/v1/cases/${caseId}/next-actions?lang=fr`, key: sender })
  t.equal(next.headers['content-language'], 'fr')
  const decide = next.json().refused.find((o: { action: string }) => o.action === 'decide_return')
  t.equal(decide.title, 'Enregistrer la décision de retour volontaire')
  t.same(decide.unmet, [
    {
      code: 'record.return_decision',
      message: 'Pas encore enregistré : La décision de retour volontaire, après entretien de conseil.',
    },
  ])

  const english = await app.request({ url: `/v1/cases/${caseId}/next-actions`, key: sender })
  t.same(english.json().refused.find((o: { action: string }) => o.action === 'decide_return').unmet, [
    { code: 'record.return_decision', message: 'The voluntary return decision, after counselling is not recorded.' },
  ])

  const wrongStep = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/transitions?lang=sq`,
    key: sender,
    headers: { 'if-match': opened.headers.etag as string },
    payload: { action: 'confirm_departure' },
  })
  t.equal(wrongStep.statusCode, 409)
  t.equal(wrongStep.headers['content-language'], 'sq')
  const problem = wrongStep.json()
  t.equal(problem.type, 'urn:trm:problem:action-not-open', 'the problem type stays')
  t.same(problem.open_at, ['ready_to_travel'], 'steps stay codes')
  t.equal(problem.unmet[0].code, 'step')
  t.match(
    problem.unmet[0].message,
    /^Rasti është në hapin „U identifikua”; veprimi confirm_departure është i hapur në hapin: Gati për udhëtim/,
  )
  t.ok(
    problem.unmet.some(
      (u: { code: string; message: string }) =>
        u.code === 'record.return_decision' &&
        u.message === "Ende i paregjistruar: Vendimi vullnetar për t'u kthyer, pas këshillimit.",
    ),
    'each precondition on the way, in Albanian',
  )

  const ukrainianRefusal = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/transitions`,
    key: sender,
    headers: { 'if-match': opened.headers.etag as string, 'accept-language': 'uk' },
    payload: { action: 'decide_return' },
  })
  t.equal(ukrainianRefusal.statusCode, 409)
  t.equal(ukrainianRefusal.headers['content-language'], 'uk')
  t.same(ukrainianRefusal.json().unmet, [
    {
      code: 'record.return_decision',
      message: 'Ще не зафіксовано: Добровільне рішення про повернення після консультації.',
    },
  ])

  const labels = await app.request({ url: '/v1/labels', key: sender, headers: { 'accept-language': 'ar, fr;q=0.4' } })
  t.equal(labels.headers['content-language'], 'ar')
  t.equal(labels.json().language, 'ar')
  t.equal(labels.json().labels['reason.decline.safety_concerns'], 'مخاوف تتعلق بالسلامة', 'reason codes have labels')
  t.equal(labels.json().labels['reason.withheld.withdrawn'], 'تم سحب الموافقة')
  t.equal(labels.json().labels['category.health.description'], 'صحتك الجسدية واحتياجاتك الطبية وعلاجك')
  t.notOk(
    Object.keys(labels.json().labels).some((key) => /^(unmet|receipt)\./.test(key)),
    'sentences are not labels',
  )

  const kinds = await app.request({ url: '/v1/record-kinds?lang=pl', key: sender })
  t.equal(
    kinds.json().items.find((k: { assessment: string | null }) => k.assessment === 'fit_to_travel').title,
    'Ocena zdolności do podróży',
  )
})
