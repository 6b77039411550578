/**
 * The consent receipt: what the person agreed to, in their language, as HTML and as PDF, for the
 * staff of the organisation that holds the consent only, and audited. Who may get it is in the
 * authorisation matrix (getConsentReceipt); here, what it says.
 */
import { parse } from 'node-html-parser'
import t from 'tap'
import { extractText, getDocumentProxy } from 'unpdf'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { newCase, sender } from './fixtures/referral.js'

const admin = demoKeys.demohubadmin as string
const dpo = demoKeys.demoiompldpo as string

/** What the receipt must say in each language, written out as a reader of that language expects it. */
const expected = {
  en: {
    title: 'Your consent',
    dir: 'ltr',
    categories: ['Identity', 'Health'],
    purposes: ['Help with your return'],
    expiry: '30 June 2027',
    country: 'Ukraine',
    free: 'It is free.',
  },
  pl: {
    title: 'Twoja zgoda',
    dir: 'ltr',
    categories: ['Tożsamość', 'Zdrowie'],
    purposes: ['Pomoc w powrocie'],
    expiry: '30 czerwca 2027',
    country: 'Ukraina',
    free: 'To nic nie kosztuje.',
  },
  uk: {
    title: 'Ваша згода',
    dir: 'ltr',
    categories: ['Особа', "Здоров'я"],
    purposes: ['Допомога з поверненням'],
    expiry: '30 червня 2027 р.',
    country: 'Україна',
    free: 'Це безкоштовно.',
  },
  sq: {
    title: 'Pëlqimi juaj',
    dir: 'ltr',
    categories: ['Identiteti', 'Shëndeti'],
    purposes: ['Ndihmë për kthimin'],
    expiry: '30 qershor 2027',
    country: 'Ukrainë',
    free: 'Është falas.',
  },
  ar: {
    title: 'موافقتك',
    dir: 'rtl',
    categories: ['الهوية', 'الصحة'],
    purposes: ['المساعدة في العودة'],
    expiry: '30 يونيو 2027',
    country: 'أوكرانيا',
    free: 'السحب مجاني.',
  },
  fr: {
    title: 'Votre consentement',
    dir: 'ltr',
    categories: ['Identité', 'Santé'],
    purposes: ['Aide au retour'],
    expiry: '30 juin 2027',
    country: 'Ukraine',
    free: "C'est gratuit.",
  },
} as const

type Language = keyof typeof expected

async function openCaseWithConsent(
  app: TestApp,
  consent: { language: string; recipients: string[]; profileLanguages?: string[] },
) {
  const opened = await app.request({
    method: 'POST',
    url: '/v1/cases',
    key: sender,
    payload: { ...newCase, profile: { ...newCase.profile, languages: consent.profileLanguages ?? [] } },
  })
  const caseId = opened.json().id as string
  const recorded = await app.request({
    method: 'POST',
    url: `/v1/cases/${caseId}/consents`,
    key: sender,
    payload: {
      given_at: new Date(Date.now() - 3_600_000).toISOString(),
      method: 'written',
      language: consent.language,
      interpreter: { used: true, name: 'Interpreter of the person' },
      guardian: null,
      provisions: [
        { categories: ['identity', 'health'], recipients: consent.recipients, purposes: ['return_assistance'] },
      ],
      expires_at: '2027-06-30T12:00:00Z',
    },
  })
  return {
    caseId,
    consentId: recorded.json().id as string,
    url: `/v1/cases/${caseId}/consents/${recorded.json().id}/receipt`,
  }
}

async function pdfText(body: Buffer): Promise<string> {
  const { text } = await extractText(await getDocumentProxy(new Uint8Array(body)), { mergePages: true })
  return text
}

t.test('a receipt in each of the six languages, as HTML and as PDF', async (t) => {
  const app = await startTestApp(t)
  const { url } = await openCaseWithConsent(app, {
    language: 'uk',
    recipients: [demoOrganisationIds.iomUkraine, demoOrganisationIds.kyivShelter],
  })

  for (const language of Object.keys(expected) as Language[]) {
    const want = expected[language]
    const html = await app.request({ url: `${url}?lang=${language}`, key: sender, headers: { accept: 'text/html' } })
    t.equal(html.statusCode, 200, `${language}: 200`)
    t.match(html.headers['content-type'], /^text\/html; charset=utf-8/)
    t.equal(html.headers['content-language'], language)
    t.match(html.headers.vary, /Accept-Language/)
    t.match(html.headers['content-security-policy'], /default-src 'none'/, `${language}: no script may run`)
    const page = parse(html.body)
    const root = page.querySelector('html')
    t.equal(root?.getAttribute('lang'), language, `${language}: <html lang>`)
    t.equal(root?.getAttribute('dir'), want.dir, `${language}: <html dir="${want.dir}">`)
    t.equal(page.querySelector('h1')?.text, want.title, `${language}: the heading`)
    t.equal(page.querySelectorAll('script').length, 0, `${language}: no script`)
    const items = page.querySelectorAll('li').map((li) => li.text)
    for (const category of want.categories) {
      t.ok(
        items.some((item) => item.startsWith(`${category}: `)),
        `${language}: the category ${category}`,
      )
    }
    for (const purpose of want.purposes) {
      t.ok(
        items.some((item) => item.startsWith(`${purpose}: `)),
        `${language}: the purpose ${purpose}`,
      )
    }
    t.ok(items.includes(`IOM Ukraine (demo) (${want.country})`), `${language}: the recipient and its country`)
    t.ok(
      items.some((item) => item.startsWith('Shelter for survivors, Kyiv (demo)')),
      `${language}: the second recipient`,
    )
    t.match(page.text, want.expiry, `${language}: the expiry date`)
    t.match(page.text, want.free, `${language}: withdrawing is free`)
    t.match(page.text, 'IOM Poland (demo)', `${language}: whom to tell`)
    t.notMatch(html.body, /Olena|Kovalenko|Interpreter of the person/, `${language}: no personal data of the case`)

    const pdf = await app.request({
      url: `${url}?lang=${language}`,
      key: sender,
      headers: { accept: 'application/pdf' },
    })
    t.equal(pdf.statusCode, 200, `${language}: the PDF`)
    t.equal(pdf.headers['content-type'], 'application/pdf')
    t.equal(pdf.headers['content-language'], language)
    t.equal(pdf.rawPayload.subarray(0, 5).toString('latin1'), '%PDF-', `${language}: a PDF document`)
    const text = await pdfText(pdf.rawPayload)
    t.match(text, want.title, `${language}: the translated heading extracts from the PDF`)
    for (const category of want.categories) t.match(text, category, `${language}: ${category} in the PDF`)
    t.match(text, 'IOM Ukraine (demo)', `${language}: the recipient in the PDF`)
  }
})

t.test('the language of the person, the format asked for, and what is refused', async (t) => {
  const app = await startTestApp(t)
  const ukrainian = await openCaseWithConsent(app, { language: 'uk', recipients: [demoOrganisationIds.iomUkraine] })

  const inTheirLanguage = await app.request({
    url: ukrainian.url,
    key: sender,
    headers: { 'accept-language': 'pl' },
  })
  t.equal(
    inTheirLanguage.headers['content-language'],
    'uk',
    'the language the consent was given in, not the caseworker’s',
  )
  t.equal(parse(inTheirLanguage.body).querySelector('h1')?.text, 'Ваша згода')

  const fromProfile = await openCaseWithConsent(app, {
    language: 'ru',
    recipients: [demoOrganisationIds.iomUkraine],
    profileLanguages: ['ru', 'sq'],
  })
  const albanian = await app.request({ url: fromProfile.url, key: sender, headers: { 'accept-language': 'pl' } })
  t.equal(albanian.headers['content-language'], 'sq', 'else the first of the person’s languages the service speaks')

  const negotiated = await openCaseWithConsent(app, { language: 'de', recipients: [demoOrganisationIds.iomUkraine] })
  const french = await app.request({
    url: negotiated.url,
    key: sender,
    headers: { 'accept-language': 'de;q=1, fr;q=0.7, pl;q=0.2' },
  })
  t.equal(french.headers['content-language'], 'fr', 'else Accept-Language')
  const english = await app.request({ url: negotiated.url, key: sender })
  t.equal(english.headers['content-language'], 'en', 'else English')

  const byParameter = await app.request({
    url: `${ukrainian.url}?format=pdf`,
    key: sender,
    headers: { accept: 'text/html' },
  })
  t.equal(byParameter.headers['content-type'], 'application/pdf', 'format wins over Accept')
  const preferred = await app.request({
    url: ukrainian.url,
    key: sender,
    headers: { accept: 'text/html;q=0.5, application/pdf' },
  })
  t.equal(preferred.headers['content-type'], 'application/pdf', 'Accept with q-values')
  const json = await app.request({ url: ukrainian.url, key: sender, headers: { accept: 'application/json' } })
  t.equal(json.statusCode, 406, 'a receipt is HTML or PDF')
  t.equal(json.json().type, 'urn:trm:problem:not-acceptable')
  const unknown = await app.request({
    url: `/v1/cases/${ukrainian.caseId}/consents/00000000-0000-4000-8000-00000000dead/receipt`,
    key: sender,
  })
  t.equal(unknown.statusCode, 404)

  const audit = await app.request({ url: `/v1/cases/${ukrainian.caseId}/audit`, key: dpo })
  const issued = audit
    .json()
    .items.filter((record: { action: string }) => record.action === 'getConsentReceipt')
    .map((record: { resource_type: string; resource_id: string; details: object }) => ({
      resource: `${record.resource_type}:${record.resource_id}`,
      details: record.details,
    }))
  t.same(
    issued.sort((a: { details: { receipt: string } }, b: { details: { receipt: string } }) =>
      a.details.receipt.localeCompare(b.details.receipt),
    ),
    [
      { resource: `consent:${ukrainian.consentId}`, details: { receipt: 'html', language: 'uk' } },
      { resource: `consent:${ukrainian.consentId}`, details: { receipt: 'pdf', language: 'uk' } },
      { resource: `consent:${ukrainian.consentId}`, details: { receipt: 'pdf', language: 'uk' } },
    ],
    'every receipt issued is in the audit trail',
  )
})

t.test('a withdrawn consent says so; partner-given names are escaped', async (t) => {
  const app = await startTestApp(t)
  const created = await app.request({
    method: 'POST',
    url: '/v1/organisations',
    key: admin,
    payload: {
      name: 'Shelter <script>alert("x")</script> & Co',
      country: 'MA',
      kind: 'shelter',
      can_send: false,
      can_receive: true,
    },
  })
  t.equal(created.statusCode, 201)
  const receipt = await openCaseWithConsent(app, { language: 'ar', recipients: [created.json().id] })
  const html = await app.request({ url: receipt.url, key: sender })
  t.notMatch(html.body, /<script/i, 'no markup from a name')
  t.match(html.body, 'Shelter &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co (المغرب)')
  t.equal(
    parse(html.body)
      .querySelectorAll('li')
      .find((li) => li.text.startsWith('Shelter'))?.text,
    'Shelter <script>alert("x")</script> & Co (المغرب)',
    'the name reads as written',
  )

  const withdrawn = await app.request({
    method: 'POST',
    url: `/v1/cases/${receipt.caseId}/consents/${receipt.consentId}/withdraw`,
    key: sender,
    headers: { 'idempotency-key': 'withdraw-receipt' },
    payload: {},
  })
  t.equal(withdrawn.statusCode, 200)
  const after = await app.request({ url: `${receipt.url}?lang=en`, key: sender })
  t.match(
    parse(after.body).text,
    /You withdrew this consent on \d{1,2} [A-Z][a-z]+ \d{4}\. Nothing more is shared under it\./,
  )
})
