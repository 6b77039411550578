import t from 'tap'
import type { components } from '../openapi/dist/types.js'
import { isChild } from '../src/cases/profile.js'
import type {
  CaseProfile,
  CaseSections,
  Consent,
  ConsentProvision,
  DataCategory,
  PacketStatus,
  Purpose,
} from '../src/db/schema.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import {
  consentCovers,
  consentStatus,
  coverage,
  dataCategories,
  sectionCategories,
} from '../src/disclosure/consent-scope.js'
import {
  composePacket,
  contentHash,
  discloseCase,
  disclosePacket,
  type CaseParties as Parties,
  type Viewer,
} from '../src/disclosure/policy.js'
import { nextPacketStatus, type PacketAction } from '../src/packets/lifecycle.js'

// Pure unit tests of the consent rule and the disclosure policy: no database, no HTTP.

type Schemas = components['schemas']
type PacketKind = Schemas['PacketKind']
type Withheld = Schemas['WithheldCategory']
type CaseRecord = Schemas['CaseRecord']

const NOW = new Date('2026-06-15T12:00:00.000Z')
const BEFORE = new Date('2026-06-15T11:59:59.999Z')
const AFTER = new Date('2026-06-15T12:00:00.001Z')
const LONG_AGO = new Date('2025-01-01T00:00:00.000Z')
const LATER = new Date('2027-01-01T00:00:00.000Z')

const POLAND: string = demoOrganisationIds.iomPoland // IOM Poland (demo), the sending partner
const UKRAINE: string = demoOrganisationIds.iomUkraine // IOM Ukraine (demo), the receiving partner
const SHELTER: string = demoOrganisationIds.kyivShelter // Shelter, Kyiv (demo), an invited party
const ALBANIA: string = demoOrganisationIds.iomAlbania // IOM Albania (demo), no part in the case
const CASE_ID = '11111111-1111-4111-8111-111111111111'
const PL_CASEWORKER = '00000000-0000-4000-8001-000000000101'
const UA_CASEWORKER = '00000000-0000-4000-8001-000000000201'

/**
 * The eight categories a case holds in sections, in the order the contract lists them; every list
 * of categories follows it. The ninth, `proceedings`, comes last and has resources of its own.
 */
const ALL: Exclude<DataCategory, 'proceedings'>[] = [
  'identity',
  'contact',
  'health',
  'psychosocial',
  'family',
  'legal',
  'travel',
  'reintegration',
]

let consentCounter = 0
/** A consent row as the database returns it (the `Consent` type of src/db/schema.ts). */
function consent(provisions: ConsentProvision[], overrides: Partial<Consent> = {}): Consent {
  consentCounter += 1
  return {
    id: `c0000000-0000-4000-8000-${String(consentCounter).padStart(12, '0')}`,
    case_id: CASE_ID,
    given_at: LONG_AGO,
    method: 'written',
    language: 'uk',
    interpreter: { used: true, name: 'Interpreter of IOM Poland' },
    guardian: { name: 'Halyna Kovalenko', relationship: 'parent' },
    child_views: 'Wants to go home to her aunt.',
    provisions,
    expires_at: null,
    recorded_at: LONG_AGO,
    recorded_by_principal_id: PL_CASEWORKER,
    recorded_by_organisation_id: POLAND,
    withdrawn_at: null,
    withdrawal_reason: null,
    withdrawn_by_principal_id: null,
    expiry_noticed_at: null,
    informed_of_transfer_risks: false,
    ...overrides,
  }
}

function provision(categories: DataCategory[], recipients: string[], purposes: Purpose[]): ConsentProvision {
  return { categories, recipients, purposes }
}

const profile: CaseProfile = {
  age_band: '25_34',
  year_of_birth: 1994,
  sex: 'female',
  nationality: 'UA',
  languages: ['uk'],
  country_of_return: 'UA',
  vulnerabilities: ['victim_of_trafficking'],
}

/** What any party but the sending partner and the lead may see of `profile`: no year of birth, no nationality. */
const sharedProfile = {
  age_band: '25_34',
  sex: 'female',
  languages: ['uk'],
  country_of_return: 'UA',
  vulnerabilities: ['victim_of_trafficking'],
}

const fullSections: CaseSections = {
  identity: { given_name: 'Olena', family_name: 'Kovalenko' },
  contact: { phone: '+380 44 000 0000' },
  health: { conditions: ['post-traumatic stress'] },
  psychosocial: { assessment_summary: 'Stable.' },
  family: { tracing_status: 'not_needed' },
  legal: { identification_status: 'formal' },
  travel: { escort_required: false },
  reintegration: { needs: ['health'] },
}

let recordCounter = 0
function caseRecord(
  kind: CaseRecord['kind'],
  category: DataCategory,
  assessment: CaseRecord['assessment'] = null,
  by = POLAND,
): CaseRecord {
  recordCounter += 1
  return {
    id: `e0000000-0000-4000-8000-${String(recordCounter).padStart(12, '0')}`,
    case_id: CASE_ID,
    kind,
    assessment,
    category,
    side: by === POLAND ? 'sending' : 'receiving',
    data: {},
    recorded_at: LONG_AGO.toISOString(),
    recorded_by_principal_id: by === POLAND ? PL_CASEWORKER : UA_CASEWORKER,
    recorded_by_organisation_id: by,
  }
}

// The category of each kind is the one `GET /v1/record-kinds` names.
const returnDecision = caseRecord('return_decision', 'legal')
const riskByPoland = caseRecord('assessment', 'psychosocial', 'risk_and_needs')
const riskByUkraine = caseRecord('assessment', 'psychosocial', 'risk_and_needs', UKRAINE)
const fitToTravel = caseRecord('assessment', 'health', 'fit_to_travel')
const travelDocuments = caseRecord('travel_documents', 'travel')
const planDraft = caseRecord('reintegration_plan_draft', 'reintegration')
const records = [returnDecision, riskByPoland, riskByUkraine, fitToTravel, travelDocuments, planDraft]

/** A consent to share every category with one recipient. */
function everything(
  recipient: string = UKRAINE,
  purposes: Purpose[] = ['return_assistance'],
  overrides: Partial<Consent> = {},
): Consent {
  return consent([provision([...ALL], [recipient], purposes)], overrides)
}

t.test('dataCategories: the nine categories in canonical order, the eight of the sections first', async (t) => {
  t.same(dataCategories, [...ALL, 'proceedings'])
  t.same(sectionCategories, ALL)
})

t.test('consentStatus', async (t) => {
  const table: [string, Pick<Consent, 'withdrawn_at' | 'expires_at'>, ReturnType<typeof consentStatus>][] = [
    ['neither withdrawn nor expiring', { withdrawn_at: null, expires_at: null }, 'active'],
    ['expires later', { withdrawn_at: null, expires_at: LATER }, 'active'],
    ['expires one millisecond after now', { withdrawn_at: null, expires_at: AFTER }, 'active'],
    ['expires exactly now', { withdrawn_at: null, expires_at: NOW }, 'expired'],
    ['expired one millisecond ago', { withdrawn_at: null, expires_at: BEFORE }, 'expired'],
    ['expired long ago', { withdrawn_at: null, expires_at: LONG_AGO }, 'expired'],
    ['withdrawn long ago', { withdrawn_at: LONG_AGO, expires_at: null }, 'withdrawn'],
    ['withdrawn exactly now', { withdrawn_at: NOW, expires_at: null }, 'withdrawn'],
    ['withdrawal recorded for one millisecond after now', { withdrawn_at: AFTER, expires_at: null }, 'active'],
    ['withdrawn and expired: withdrawal wins', { withdrawn_at: BEFORE, expires_at: LONG_AGO }, 'withdrawn'],
    ['withdrawn, would expire later', { withdrawn_at: BEFORE, expires_at: LATER }, 'withdrawn'],
    ['expired, withdrawal only after now', { withdrawn_at: LATER, expires_at: BEFORE }, 'expired'],
  ]
  for (const [name, row, expected] of table) {
    t.equal(consentStatus(row, NOW), expected, `${name}: ${expected}`)
  }
})

t.test('consentCovers: one provision must match category, recipient and purpose together', async (t) => {
  const split = consent([
    provision(['identity'], [UKRAINE], ['reintegration']),
    provision(['contact'], [SHELTER], ['return_assistance']),
  ])
  const broad = consent([provision(['identity', 'health'], [UKRAINE, SHELTER], ['return_assistance', 'monitoring'])])
  const statisticsOnly = consent([provision([...ALL], [UKRAINE], ['statistics'])])
  const table: [string, Consent, DataCategory, string, Purpose[], boolean][] = [
    ['category, recipient and purpose in one provision', broad, 'health', SHELTER, ['return_assistance'], true],
    ['one of the purposes asked for is enough', broad, 'identity', UKRAINE, ['reintegration', 'monitoring'], true],
    ['a purpose the provision does not name', broad, 'identity', UKRAINE, ['reintegration'], false],
    ['no purpose at all (a final step)', broad, 'identity', UKRAINE, [], false],
    ['a category the provision does not name', broad, 'legal', UKRAINE, ['return_assistance'], false],
    ['a recipient the provision does not name', broad, 'identity', ALBANIA, ['return_assistance'], false],
    ['the second provision on its own', split, 'contact', SHELTER, ['return_assistance'], true],
    // Identity is for Ukraine and return assistance is in the shelter's provision: they do not combine.
    ['category and purpose from different provisions', split, 'identity', UKRAINE, ['return_assistance'], false],
    ['recipient and category from different provisions', split, 'contact', UKRAINE, ['return_assistance'], false],
    ['statistics, asked for return assistance', statisticsOnly, 'health', UKRAINE, ['return_assistance'], false],
    [
      'statistics never lets personal data go, even asked for',
      statisticsOnly,
      'health',
      UKRAINE,
      ['statistics'],
      false,
    ],
  ]
  for (const [name, row, category, recipient, purposes, expected] of table) {
    t.equal(consentCovers(row, category, recipient, purposes), expected, `${name}: ${expected}`)
  }
  const withdrawn = everything(UKRAINE, ['return_assistance'], { withdrawn_at: LONG_AGO })
  t.ok(
    consentCovers(withdrawn, 'identity', UKRAINE, ['return_assistance']),
    'the terms are read whatever the status: a withdrawn consent still names what it covered',
  )
})

t.test('coverage: the active consents that cover, or why none does', async (t) => {
  const active = consent([provision(['identity', 'health'], [UKRAINE], ['return_assistance'])])
  const second = consent([provision(['identity'], [UKRAINE], ['return_assistance', 'reintegration'])], {
    expires_at: LATER,
  })
  const withdrawn = consent([provision(['health', 'legal', 'travel'], [UKRAINE], ['return_assistance'])], {
    withdrawn_at: BEFORE,
  })
  const expired = consent([provision(['legal', 'family', 'travel'], [UKRAINE], ['return_assistance'])], {
    expires_at: NOW,
  })
  const futureWithdrawal = consent([provision(['contact'], [UKRAINE], ['return_assistance'])], { withdrawn_at: AFTER })
  const statisticsOnly = consent([provision(['psychosocial'], [UKRAINE], ['statistics'])])
  const all = [active, second, withdrawn, expired, futureWithdrawal, statisticsOnly]

  const table: [string, DataCategory, string, Purpose[], ReturnType<typeof coverage>][] = [
    [
      'two active consents, in the given order',
      'identity',
      UKRAINE,
      ['return_assistance'],
      { consentIds: [active.id, second.id] },
    ],
    ['only the one naming the purpose', 'identity', UKRAINE, ['reintegration'], { consentIds: [second.id] }],
    [
      'an active and a withdrawn consent: the active one covers',
      'health',
      UKRAINE,
      ['return_assistance'],
      { consentIds: [active.id] },
    ],
    [
      'its only consent was withdrawn',
      'legal',
      UKRAINE,
      ['reintegration', 'return_assistance'],
      { consentIds: [], reason: 'withdrawn' },
    ],
    ['its only consent expired', 'family', UKRAINE, ['return_assistance'], { consentIds: [], reason: 'expired' }],
    [
      'one withdrawn, one expired: withdrawn',
      'travel',
      UKRAINE,
      ['return_assistance'],
      { consentIds: [], reason: 'withdrawn' },
    ],
    [
      'a withdrawal dated after now does not count yet',
      'contact',
      UKRAINE,
      ['return_assistance'],
      { consentIds: [futureWithdrawal.id] },
    ],
    [
      'a category no consent names',
      'reintegration',
      UKRAINE,
      ['return_assistance'],
      { consentIds: [], reason: 'no_consent' },
    ],
    [
      'a recipient no consent names',
      'identity',
      ALBANIA,
      ['return_assistance'],
      { consentIds: [], reason: 'no_consent' },
    ],
    ['a purpose no consent names', 'health', UKRAINE, ['monitoring'], { consentIds: [], reason: 'no_consent' }],
    [
      'a statistics-only consent',
      'psychosocial',
      UKRAINE,
      ['return_assistance'],
      { consentIds: [], reason: 'no_consent' },
    ],
    [
      'a statistics-only consent, asked for statistics',
      'psychosocial',
      UKRAINE,
      ['statistics'],
      { consentIds: [], reason: 'no_consent' },
    ],
    ['no purpose: nothing is covered', 'identity', UKRAINE, [], { consentIds: [], reason: 'no_consent' }],
  ]
  for (const [name, category, recipient, purposes, expected] of table) {
    t.same(coverage(all, category, recipient, purposes, NOW), expected, name)
  }
  t.same(coverage([], 'identity', UKRAINE, ['return_assistance'], NOW), { consentIds: [], reason: 'no_consent' })
})

t.test('composePacket: what each kind of packet carries', async (t) => {
  const consents = [everything()]
  const source = { profile, sections: fullSections, records }
  const notNeeded = (...categories: DataCategory[]): Withheld[] =>
    categories.map((category) => ({ category, reason: 'not_needed_for_purpose' }))
  const table: [PacketKind, DataCategory[], Withheld[], object][] = [
    // The minimum to decide: needs and risk, never who the person is or where to find them.
    [
      'enquiry',
      ['health', 'psychosocial', 'reintegration'],
      notNeeded('identity', 'contact', 'family', 'legal', 'travel'),
      sharedProfile,
    ],
    // The answer to questions before acceptance: everything consented but identity and contact.
    [
      'information',
      ['health', 'psychosocial', 'family', 'legal', 'travel', 'reintegration'],
      notNeeded('identity', 'contact'),
      profile,
    ],
    ['referral', ALL, [], profile],
    ['update', ALL, [], profile],
  ]
  for (const [kind, included, withheld, expectedProfile] of table) {
    t.test(kind, async (t) => {
      const before = structuredClone(source)
      const composed = composePacket(source, consents, UKRAINE, 'return_assistance', kind, NOW)
      t.same(composed.included, included, 'included, in canonical order')
      t.same(composed.withheld, withheld, 'withheld, with the reason')
      t.same(composed.content.profile, expectedProfile, 'the profile')
      t.same(Object.keys(composed.content.sections), included, 'the sections of the included categories')
      t.same(
        composed.content.records.map((r) => r.id),
        records.filter((r) => included.includes(r.category)).map((r) => r.id),
        'the records of the included categories, in their order',
      )
      t.same(
        composed.consentsByCategory,
        Object.fromEntries(included.map((category) => [category, [consents[0]?.id]])),
        'the consent relied on for each included category',
      )
      t.same(source, before, 'the case is not changed')
    })
  }

  t.test('identity and contact stay out of an enquiry and an answer whatever the consent says', async (t) => {
    for (const kind of ['enquiry', 'information'] as const) {
      const composed = composePacket(
        { profile, sections: { identity: fullSections.identity, contact: fullSections.contact }, records: [] },
        consents,
        UKRAINE,
        'return_assistance',
        kind,
        NOW,
      )
      t.same(composed.included, [], `${kind}: nothing identifying goes in`)
      t.same(composed.content.sections, {}, `${kind}: no identifying section`)
      t.same(composed.withheld, notNeeded('identity', 'contact'), `${kind}: both withheld as not needed`)
    }
  })
})

t.test('composePacket: why a category is withheld', async (t) => {
  const source = { profile, sections: fullSections, records: [] }
  const reasons = (reason: Withheld['reason'], categories = ALL): Withheld[] =>
    categories.map((category) => ({ category, reason }))
  const table: [string, Consent[], Purpose, PacketKind, DataCategory[], Withheld[]][] = [
    ['no consent at all', [], 'return_assistance', 'referral', [], reasons('no_consent')],
    [
      'a consent for another recipient',
      [everything(SHELTER)],
      'return_assistance',
      'referral',
      [],
      reasons('no_consent'),
    ],
    [
      'a consent for another purpose',
      [everything(UKRAINE, ['reintegration'])],
      'return_assistance',
      'referral',
      [],
      reasons('no_consent'),
    ],
    [
      'a statistics-only consent never opens a section',
      [everything(UKRAINE, ['statistics'])],
      'return_assistance',
      'referral',
      [],
      reasons('no_consent'),
    ],
    [
      'a statistics-only consent, even in a packet sent for statistics',
      [everything(UKRAINE, ['statistics'])],
      'statistics',
      'update',
      [],
      reasons('no_consent'),
    ],
    [
      'a withdrawn consent',
      [everything(UKRAINE, ['return_assistance'], { withdrawn_at: BEFORE })],
      'return_assistance',
      'referral',
      [],
      reasons('withdrawn'),
    ],
    [
      'an expired consent',
      [everything(UKRAINE, ['return_assistance'], { expires_at: NOW })],
      'return_assistance',
      'update',
      [],
      reasons('expired'),
    ],
    [
      'a withdrawn consent in an enquiry: what the enquiry never carries is not needed, the rest withdrawn',
      [everything(UKRAINE, ['return_assistance'], { withdrawn_at: BEFORE })],
      'return_assistance',
      'enquiry',
      [],
      [
        { category: 'identity', reason: 'not_needed_for_purpose' },
        { category: 'contact', reason: 'not_needed_for_purpose' },
        { category: 'health', reason: 'withdrawn' },
        { category: 'psychosocial', reason: 'withdrawn' },
        { category: 'family', reason: 'not_needed_for_purpose' },
        { category: 'legal', reason: 'not_needed_for_purpose' },
        { category: 'travel', reason: 'not_needed_for_purpose' },
        { category: 'reintegration', reason: 'withdrawn' },
      ],
    ],
    [
      'each reason where it applies',
      [
        consent([provision(['identity', 'health'], [UKRAINE], ['return_assistance'])]),
        consent([provision(['contact', 'psychosocial'], [UKRAINE], ['return_assistance'])], { withdrawn_at: LONG_AGO }),
        consent([provision(['family'], [UKRAINE], ['return_assistance'])], { expires_at: BEFORE }),
        consent([provision(['legal'], [UKRAINE], ['return_assistance'])], { withdrawn_at: AFTER, expires_at: LATER }),
        consent([provision(['travel'], [UKRAINE], ['statistics'])]),
      ],
      'return_assistance',
      'referral',
      ['identity', 'health', 'legal'],
      [
        { category: 'contact', reason: 'withdrawn' },
        { category: 'psychosocial', reason: 'withdrawn' },
        { category: 'family', reason: 'expired' },
        { category: 'travel', reason: 'no_consent' },
        { category: 'reintegration', reason: 'no_consent' },
      ],
    ],
  ]
  for (const [name, consents, purpose, kind, included, withheld] of table) {
    t.test(name, async (t) => {
      const composed = composePacket(source, consents, UKRAINE, purpose, kind, NOW)
      t.same(composed.included, included, 'included')
      t.same(composed.withheld, withheld, 'withheld')
      t.same(Object.keys(composed.content.sections), included, 'the content holds exactly the included sections')
      t.same(Object.keys(composed.consentsByCategory), included, 'a consent list for each included category')
    })
  }

  t.test('a category that holds no data is neither included nor withheld', async (t) => {
    const composed = composePacket(
      { profile, sections: { travel: { escort_required: true } }, records: [caseRecord('return_decision', 'legal')] },
      [everything()],
      UKRAINE,
      'return_assistance',
      'referral',
      NOW,
    )
    t.same(composed.included, ['legal', 'travel'], 'a record counts as data of its category')
    t.same(composed.withheld, [])
    t.same(composed.content.sections, { travel: { escort_required: true } })
  })
})

t.test('contentHash: SHA-256 (hex) of the RFC 8785 canonical JSON', async (t) => {
  // Each hash is of the canonical text beside it, as `printf '%s' TEXT | sha256sum` gives it.
  const table: [string, unknown, string][] = [
    // {}
    ['an empty object', {}, '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'],
    // {"a":"x","b":1}
    ['keys sorted', { b: 1, a: 'x' }, 'cdab067e9f3beb32d1252cfd63e492592fecbf591b0d08cadb24bb17f3864246'],
    // {"a":{},"z":[3,1,{"x":null,"y":true}]}
    [
      'nested keys sorted, arrays kept in order',
      { z: [3, 1, { y: true, x: null }], a: {} },
      '228a59cefd511a61d4fcab7fc3e82d75df04c16ec82660069238f51cf4f7b995',
    ],
    // {"f":0.5,"m":1e+21,"n":1}
    [
      'numbers in shortest form',
      { n: 1.0, m: 1e21, f: 0.5 },
      '17245de2907d987fe828b5f7da89eab0eb07c8cacc06929dc66a23ab813cf4d3',
    ],
    // {"name":"Олена"}
    ['non-ASCII kept as UTF-8', { name: 'Олена' }, 'c158a0d9b30c18aa68ff5b06fd11c78f669cc087e17de068614981e59c3a17bf'],
    // {"profile":{"country_of_return":"UA"},"records":[],"sections":{}}
    [
      'an empty packet content',
      { sections: {}, records: [], profile: { country_of_return: 'UA' } },
      '6babffe68dcada89e57bb1e83ce998cd75218ac37cf6bbf4cfe27c333086e2e5',
    ],
  ]
  for (const [name, value, expected] of table) {
    t.equal(contentHash(value), expected, name)
  }
  t.not(contentHash({ a: [1, 2] }), contentHash({ a: [2, 1] }), 'array order matters')
  t.not(contentHash({ a: '1' }), contentHash({ a: 1 }), 'types matter')

  // {"profile":{"age_band":"25_34","country_of_return":"UA","sex":"female","vulnerabilities":[]},"records":[],"sections":{"health":{"conditions":["asthma"]}}}
  const composed = composePacket(
    {
      profile: { sex: 'female', country_of_return: 'UA', age_band: '25_34', vulnerabilities: [] },
      sections: { health: { conditions: ['asthma'] }, identity: { given_name: 'Olena' } },
      records: [],
    },
    [everything()],
    UKRAINE,
    'return_assistance',
    'enquiry',
    NOW,
  )
  t.equal(
    composed.contentHash,
    '9407a0416db0aa4ac506e89a8f45c0cb0cffcc8191d3fa376483ca6841984ab9',
    'a composed enquiry carries the hash of its own content',
  )
})

t.test('disclosePacket: the recipient loses a category when its consents end', async (t) => {
  const active = consent([provision(['identity'], [UKRAINE], ['return_assistance'])])
  const alsoActive = consent([provision(['health'], [UKRAINE], ['return_assistance'])], { expires_at: LATER })
  const withdrawn = consent([provision(['health'], [UKRAINE], ['return_assistance'])], { withdrawn_at: BEFORE })
  const expired = consent([provision(['travel'], [UKRAINE], ['return_assistance'])], { expires_at: NOW })
  const alsoExpired = consent([provision(['legal'], [UKRAINE], ['return_assistance'])], { expires_at: BEFORE })
  const futureWithdrawal = consent([provision(['legal'], [UKRAINE], ['return_assistance'])], { withdrawn_at: AFTER })
  const all = [active, alsoActive, withdrawn, expired, alsoExpired, futureWithdrawal]
  const unknown = 'c0000000-0000-4000-8000-ffffffffffff'
  const travelRecord = caseRecord('travel_documents', 'travel')

  /** A referral as sent: the sections of the given categories, the travel record, and who covered each. */
  function sent(byCategory: Partial<Record<DataCategory, string[]>>, withheld: Withheld[] = []) {
    const included = ALL.filter((category) => category in byCategory)
    return {
      content: {
        profile,
        sections: Object.fromEntries(included.map((category) => [category, fullSections[category]])),
        records: included.includes('travel') ? [travelRecord] : [],
      },
      included_categories: included,
      withheld,
      consents_by_category: byCategory,
      sender_organisation_id: POLAND,
    }
  }

  const table: [string, Partial<Record<DataCategory, string[]>>, [DataCategory, Withheld['reason']][]][] = [
    ['covered by an active consent', { identity: [active.id] }, []],
    ['its only consent was withdrawn', { health: [withdrawn.id] }, [['health', 'withdrawn']]],
    ['its only consent expired', { travel: [expired.id] }, [['travel', 'expired']]],
    ['one of two consents still active', { health: [withdrawn.id, alsoActive.id] }, []],
    ['a withdrawal dated after now does not count yet', { legal: [futureWithdrawal.id] }, []],
    ['one withdrawn, one expired: withdrawn', { health: [withdrawn.id, expired.id] }, [['health', 'withdrawn']]],
    ['two expired: expired', { legal: [alsoExpired.id, expired.id] }, [['legal', 'expired']]],
    ['no consent recorded for it', { family: [] }, [['family', 'withdrawn']]],
    ['a consent that is not among the case consents', { contact: [unknown] }, [['contact', 'withdrawn']]],
    [
      'several categories, in canonical order',
      { identity: [active.id], health: [withdrawn.id], legal: [futureWithdrawal.id], travel: [expired.id] },
      [
        ['health', 'withdrawn'],
        ['travel', 'expired'],
      ],
    ],
  ]
  for (const [name, byCategory, lost] of table) {
    t.test(name, async (t) => {
      const packet = sent(byCategory, [{ category: 'psychosocial', reason: 'no_consent' }])
      const gone = lost.map(([category]) => category)
      const kept = packet.included_categories.filter((category) => !gone.includes(category))

      const forRecipient = disclosePacket(packet, all, UKRAINE, ['return_assistance'], NOW)
      t.same(forRecipient.gone, gone, 'the recipient is told what to delete')
      t.same(forRecipient.included, kept, 'what it may still read')
      t.same(Object.keys(forRecipient.content.sections), kept, 'the content holds only that')
      t.same(
        forRecipient.content.records.map((r) => r.category),
        kept.includes('travel') ? ['travel'] : [],
        'records of a lost category go too',
      )
      t.same(
        forRecipient.withheld,
        [
          { category: 'psychosocial', reason: 'no_consent' },
          ...lost.map(([category, reason]) => ({ category, reason })),
        ],
        'the lost categories are withheld with the reason, after those withheld when it was sent',
      )
      t.same(forRecipient.content.profile, profile, 'the profile stays')

      const forSender = disclosePacket(packet, all, POLAND, ['return_assistance'], NOW)
      t.same(forSender.gone, gone, 'the sender learns the same')
      t.same(forSender.content, packet.content, 'and sees the packet as it sent it')
      t.same(forSender.included, packet.included_categories)
      t.same(forSender.withheld, packet.withheld)
    })
  }
})

t.test('disclosePacket: the recipient reads a packet only for the purposes the case serves now', async (t) => {
  const forReturn = consent([provision(['identity', 'health'], [UKRAINE], ['return_assistance'])])
  const forReintegration = consent([provision(['health'], [UKRAINE], ['reintegration'])])
  const packet = {
    content: { profile, sections: { identity: fullSections.identity, health: fullSections.health }, records: [] },
    included_categories: ['identity', 'health'] as DataCategory[],
    withheld: [],
    consents_by_category: { identity: [forReturn.id], health: [forReturn.id] },
    sender_organisation_id: POLAND,
  }
  const consents = [forReturn, forReintegration]
  const atReintegration = disclosePacket(packet, consents, UKRAINE, ['reintegration', 'monitoring'], NOW)
  t.same(atReintegration.included, ['health'], 'in reintegration only what is consented for reintegration')
  t.same(Object.keys(atReintegration.content.sections), ['health'])
  t.same(atReintegration.withheld, [{ category: 'identity', reason: 'not_needed_for_purpose' }])
  t.same(atReintegration.gone, [], 'nothing is to be deleted: the consent still stands')
  const closed = disclosePacket(packet, consents, UKRAINE, [], NOW)
  t.same(closed.included, [], 'at a final step nothing is read')
  t.same(closed.content.sections, {})
  t.same(disclosePacket(packet, consents, POLAND, [], NOW).content, packet.content, 'the sender keeps its packet')
})

t.test('discloseCase: what each party may see of a case now', async (t) => {
  const toUkraine = consent([provision(['identity', 'contact', 'health', 'legal'], [UKRAINE], ['return_assistance'])])
  const toUkraineLater = consent([provision(['reintegration'], [UKRAINE], ['reintegration'])])
  const toShelter = consent([provision(['identity', 'psychosocial'], [SHELTER], ['return_assistance'])])
  const statisticsToAlbania = consent([provision([...ALL], [ALBANIA], ['statistics'])])
  const withdrawnToUkraine = consent([provision(['family'], [UKRAINE], ['return_assistance'])], {
    withdrawn_at: BEFORE,
  })
  const expiredToUkraine = consent([provision(['travel'], [UKRAINE], ['return_assistance'])], { expires_at: NOW })
  const consents = [toUkraine, toUkraineLater, toShelter, statisticsToAlbania, withdrawnToUkraine, expiredToUkraine]
  const before = { sending_organisation_id: POLAND, lead_organisation_id: POLAND, receiving_organisation_id: null }
  const accepted = { ...before, receiving_organisation_id: UKRAINE }
  const arrived = { ...accepted, lead_organisation_id: UKRAINE }
  const returnAssistance: Purpose[] = ['return_assistance']
  const afterArrival: Purpose[] = ['return_assistance', 'reintegration']
  const sending: Viewer = { organisationId: POLAND, role: 'sending' }
  const receiving: Viewer = { organisationId: UKRAINE, role: 'receiving' }
  const invited: Viewer = { organisationId: SHELTER, role: 'invited' }
  const stranger: Viewer = { organisationId: ALBANIA, role: 'invited' }

  const table: [string, Parties, Viewer, Purpose[], Partial<Record<DataCategory, Withheld['reason']>>][] = [
    ['the sending partner reads everything, consent or not', before, sending, returnAssistance, {}],
    ['the sending partner reads everything at a final step', before, sending, [], {}],
    [
      'the receiving partner before acceptance: identity and contact are not needed yet',
      before,
      receiving,
      returnAssistance,
      {
        identity: 'not_needed_for_purpose',
        contact: 'not_needed_for_purpose',
        psychosocial: 'no_consent',
        family: 'withdrawn',
        travel: 'expired',
        reintegration: 'no_consent',
      },
    ],
    [
      'the receiving partner once accepted reads identity and contact',
      accepted,
      receiving,
      returnAssistance,
      { psychosocial: 'no_consent', family: 'withdrawn', travel: 'expired', reintegration: 'no_consent' },
    ],
    [
      'after arrival the step serves reintegration too',
      arrived,
      receiving,
      afterArrival,
      { psychosocial: 'no_consent', family: 'withdrawn', travel: 'expired' },
    ],
    [
      'at a final step no purpose is served: nothing is needed, whatever the consent',
      accepted,
      receiving,
      [],
      Object.fromEntries(ALL.map((category) => [category, 'not_needed_for_purpose'])),
    ],
    [
      'an invited party reads what is consented to it, identity included',
      before,
      invited,
      returnAssistance,
      {
        contact: 'no_consent',
        health: 'no_consent',
        family: 'no_consent',
        legal: 'no_consent',
        travel: 'no_consent',
        reintegration: 'no_consent',
      },
    ],
    [
      'a statistics-only consent never opens a category',
      accepted,
      stranger,
      afterArrival,
      Object.fromEntries(ALL.map((category) => [category, 'no_consent'])),
    ],
  ]
  for (const [name, parties, viewer, purposes, withheld] of table) {
    t.test(name, async (t) => {
      const disclosure = discloseCase(parties, consents, viewer, purposes, NOW)
      const readable = ALL.filter((category) => !(category in withheld))
      t.same(
        ALL.filter((category) => disclosure.readable(category)),
        readable,
        'readable categories',
      )
      for (const category of ALL) {
        t.equal(
          disclosure.withheldReason(category),
          withheld[category],
          `${category}: ${withheld[category] ?? 'readable'}`,
        )
      }
      t.same(Object.keys(disclosure.sections(fullSections)), readable, 'the sections it reads')
      t.equal(disclosure.holder, viewer.organisationId === POLAND, 'only the sending partner holds the case')
    })
  }

  t.test(
    'the profile: whole for the sending partner and the lead, the shared minimum while consent names the party',
    async (t) => {
      const table: [string, Parties, Viewer, Purpose[], object][] = [
        ['the sending partner', before, sending, returnAssistance, profile],
        ['the lead after arrival', arrived, receiving, afterArrival, profile],
        ['the receiving partner named by a consent', accepted, receiving, returnAssistance, sharedProfile],
        ['the receiving partner at a final step', accepted, receiving, [], { country_of_return: 'UA' }],
        ['named only by a statistics consent', accepted, stranger, afterArrival, { country_of_return: 'UA' }],
        [
          'named only for a purpose the step does not serve',
          accepted,
          { organisationId: UKRAINE, role: 'receiving' },
          ['monitoring'],
          { country_of_return: 'UA' },
        ],
      ]
      for (const [name, parties, viewer, purposes, expected] of table) {
        t.same(discloseCase(parties, consents, viewer, purposes, NOW).profile(profile), expected, name)
      }
    },
  )

  t.test('records: by category, and always those the viewer made', async (t) => {
    const disclosure = discloseCase(before, consents, receiving, returnAssistance, NOW)
    t.same(
      disclosure.records(records).map((r) => r.id),
      [returnDecision.id, riskByUkraine.id, fitToTravel.id],
      'legal and health are consented; its own risk assessment it made itself',
    )
    t.same(
      discloseCase(before, [], sending, [], NOW)
        .records(records)
        .map((r) => r.id),
      records.map((r) => r.id),
      'the sending partner reads every record',
    )
  })

  t.test('consents: no guardian, child views or interpreter name for anyone but the sending partner', async (t) => {
    const row = { guardian: toUkraine.guardian, child_views: toUkraine.child_views, interpreter: toUkraine.interpreter }
    t.same(discloseCase(before, consents, sending, returnAssistance, NOW).consent(row), row, 'the sending partner')
    for (const viewer of [receiving, invited]) {
      t.same(
        discloseCase(accepted, consents, viewer, returnAssistance, NOW).consent(row),
        { guardian: null, child_views: null, interpreter: { used: true } },
        viewer.role,
      )
    }
  })

  t.test('timeline notes and the audit trail', async (t) => {
    const table: [string, Parties, Viewer, boolean, boolean][] = [
      ['the sending partner', before, sending, true, true],
      ['the receiving partner', accepted, receiving, true, false],
      ['the receiving partner once it leads', arrived, receiving, true, true],
      ['an invited party', accepted, invited, false, false],
    ]
    for (const [name, parties, viewer, notes, audit] of table) {
      const disclosure = discloseCase(parties, consents, viewer, returnAssistance, NOW)
      t.equal(disclosure.timelineNotes, notes, `${name}: timeline notes ${notes}`)
      t.equal(disclosure.allAudit, audit, `${name}: every audit record ${audit}`)
    }
  })
})

t.test('nextPacketStatus: every action from every status', async (t) => {
  const statuses: PacketStatus[] = [
    'sent',
    'received',
    'acknowledged',
    'information_requested',
    'accepted',
    'declined',
    'superseded',
  ]
  const actions: PacketAction[] = ['receive', 'acknowledge', 'accept', 'decline', 'request_information', 'supersede']
  const _ = undefined
  // Rows: the action. Columns: the current status, in the order of `statuses` above; _ = not allowed (409).
  // An answer (accept, decline, request_information) needs the acknowledgement first, as the procedure requires.
  // biome-ignore format: an aligned table reads better
  const expected: Record<PacketAction, (PacketStatus | undefined)[]> = {
    //                     sent            received        acknowledged             information_requested  accepted  declined  superseded
    receive:             ['received',      _,              _,                       _,                     _,        _,        _],
    acknowledge:         ['acknowledged',  'acknowledged', _,                       _,                     _,        _,        _],
    accept:              [_,               _,              'accepted',              'accepted',            _,        _,        _],
    decline:             [_,               _,              'declined',              'declined',            _,        _,        _],
    request_information: [_,               _,              'information_requested', _,                     _,        _,        _],
    supersede:           ['superseded',    'superseded',   'superseded',            'superseded',          _,        _,        _],
  }
  let cells = 0
  for (const action of actions) {
    for (const [column, status] of statuses.entries()) {
      const want = expected[action][column]
      t.equal(nextPacketStatus(status, action), want, `${action} from ${status}: ${want ?? 'not allowed'}`)
      cells += 1
    }
  }
  t.equal(cells, 42, 'all 6 × 7 cells checked')
  for (const terminal of ['accepted', 'declined', 'superseded'] as const) {
    t.ok(
      actions.every((action) => nextPacketStatus(terminal, action) === undefined),
      `${terminal} is final`,
    )
  }
})

t.test('isChild', async (t) => {
  const today = new Date('2026-06-15T12:00:00Z')
  const adult: CaseProfile = { country_of_return: 'UA', vulnerabilities: [] }
  const table: [string, Partial<CaseProfile>, boolean][] = [
    ['nothing known about age', {}, false],
    ['flag child', { vulnerabilities: ['child'] }, true],
    ['flag unaccompanied_or_separated_child', { vulnerabilities: ['unaccompanied_or_separated_child'] }, true],
    [
      'other vulnerabilities only',
      { vulnerabilities: ['victim_of_trafficking', 'sgbv_survivor', 'single_parent'] },
      false,
    ],
    ['age band under_14', { age_band: 'under_14' }, true],
    ['age band 14_17', { age_band: '14_17' }, true],
    ['age band 18_24', { age_band: '18_24' }, false],
    ['age band 25_34', { age_band: '25_34' }, false],
    ['age band 65_plus', { age_band: '65_plus' }, false],
    ['born 2020 (at most 6)', { year_of_birth: 2020 }, true],
    ['born 2009 (17 at most)', { year_of_birth: 2009 }, true],
    ['born 2007 (at least 18)', { year_of_birth: 2007 }, false],
    ['born 1990', { year_of_birth: 1990 }, false],
    ['adult age band but the child flag', { age_band: '25_34', vulnerabilities: ['child'] }, true],
    ['adult age band but a year of birth of a child', { age_band: '18_24', year_of_birth: 2012 }, true],
    ['child age band with an adult year of birth', { age_band: '14_17', year_of_birth: 1990 }, true],
  ]
  for (const [name, fields, expected] of table) {
    t.equal(isChild({ ...adult, ...fields }, today), expected, `${name}: ${expected ? 'child' : 'adult'}`)
  }
})
