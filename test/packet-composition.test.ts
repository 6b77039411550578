import { createHash } from 'node:crypto'
import t from 'tap'
import { consentStatus, consentsCovering, dataCategories, sectionsVisibleTo } from '../src/cases/consent-coverage.js'
import { isChild } from '../src/cases/profile.js'
import type { CaseProfile, CaseSections, Consent, ConsentProvision, PacketStatus, Purpose } from '../src/db/schema.js'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { composePacket, contentHash, withdrawnCategories } from '../src/packets/compose.js'
import { nextPacketStatus, type PacketAction } from '../src/packets/lifecycle.js'

// Pure unit tests: no database, no HTTP.

const NOW = new Date('2026-06-15T12:00:00.000Z')
const BEFORE = new Date('2026-06-15T11:59:59.999Z')
const AFTER = new Date('2026-06-15T12:00:00.001Z')
const LONG_AGO = new Date('2025-01-01T00:00:00.000Z')
const LATER = new Date('2027-01-01T00:00:00.000Z')

const SENDER = demoOrganisationIds.iomPoland // IOM Poland (demo)
const UKRAINE = demoOrganisationIds.iomUkraine // IOM Ukraine (demo)
const SHELTER = demoOrganisationIds.kyivShelter // Shelter, Kyiv (demo)
const CASE_ID = '11111111-1111-4111-8111-111111111111'

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
    interpreter: { used: false },
    guardian: null,
    child_views: null,
    provisions,
    expires_at: null,
    recorded_at: LONG_AGO,
    recorded_by_principal_id: '00000000-0000-4000-8001-000000000101',
    recorded_by_organisation_id: SENDER,
    withdrawn_at: null,
    withdrawal_reason: null,
    withdrawn_by_principal_id: null,
    ...overrides,
  }
}

function provision(
  categories: ConsentProvision['categories'],
  recipients: string[],
  purposes: Purpose[],
): ConsentProvision {
  return { categories, recipients, purposes }
}

const profile: CaseProfile = {
  age_band: '25_34',
  sex: 'female',
  nationality: 'UA',
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

t.test('consentsCovering: one provision must match category, recipient and purpose together', async (t) => {
  const broad = consent([provision(['identity', 'health'], [UKRAINE, SHELTER], ['return_assistance', 'reintegration'])])
  const split = consent([
    provision(['identity'], [UKRAINE], ['statistics']),
    provision(['contact'], [SHELTER], ['return_assistance']),
  ])
  const expired = consent([provision(['identity', 'contact'], [UKRAINE], ['return_assistance'])], {
    expires_at: BEFORE,
  })
  const withdrawn = consent([provision(['identity', 'contact'], [UKRAINE], ['return_assistance'])], {
    withdrawn_at: LONG_AGO,
  })
  const second = consent([provision(['identity'], [UKRAINE], ['return_assistance'])])
  const all = [broad, split, expired, withdrawn, second]

  const table: [string, Parameters<typeof consentsCovering>[1], string, Purpose, string[]][] = [
    [
      'identity to Ukraine for return: two active consents, in the given order',
      'identity',
      UKRAINE,
      'return_assistance',
      [broad.id, second.id],
    ],
    ['identity to the shelter for reintegration', 'identity', SHELTER, 'reintegration', [broad.id]],
    ['identity to Ukraine for statistics (second provision)', 'identity', UKRAINE, 'statistics', [split.id]],
    ['health to Ukraine for return', 'health', UKRAINE, 'return_assistance', [broad.id]],
    ['health for a purpose nobody consented to', 'health', UKRAINE, 'monitoring', []],
    ['contact to the shelter for return', 'contact', SHELTER, 'return_assistance', [split.id]],
    // Ukraine has identity+statistics and the shelter has contact+return in separate provisions: no mixing.
    [
      'contact to Ukraine: only in an expired or withdrawn consent, or a provision for another recipient',
      'contact',
      UKRAINE,
      'return_assistance',
      [],
    ],
    [
      'contact to the shelter for statistics: purpose only in the other provision',
      'contact',
      SHELTER,
      'statistics',
      [],
    ],
    ['a category no consent names', 'legal', UKRAINE, 'return_assistance', []],
    ['a recipient no consent names', 'identity', SENDER, 'return_assistance', []],
  ]
  for (const [name, category, recipient, purpose, expected] of table) {
    t.same(consentsCovering(all, category, recipient, purpose, NOW), expected, name)
  }
  t.same(consentsCovering([], 'identity', UKRAINE, 'return_assistance', NOW), [], 'no consents cover nothing')
})

t.test('composePacket', async (t) => {
  t.test('includes covered sections, withholds the rest that hold data, in canonical order', async (t) => {
    const c1 = consent([provision(['health', 'identity'], [UKRAINE], ['return_assistance'])])
    const c2 = consent([provision(['identity', 'travel'], [UKRAINE], ['return_assistance', 'reintegration'])])
    // Sections given in a non-canonical order, and one (family) absent.
    const sections: CaseSections = {
      travel: { escort_required: true },
      contact: { phone: '+380 44 000 0000' },
      health: { conditions: ['asthma'] },
      identity: { given_name: 'Olena' },
      legal: { identification_status: 'presumed' },
    }
    const source = { profile, sections }
    const before = structuredClone(source)
    const composed = composePacket(source, [c1, c2], UKRAINE, 'return_assistance', NOW)
    t.same(composed.included, ['identity', 'health', 'travel'])
    t.same(composed.withheld, [
      { category: 'contact', reason: 'no_consent' },
      { category: 'legal', reason: 'no_consent' },
    ])
    t.same(composed.consentsByCategory, { identity: [c1.id, c2.id], health: [c1.id], travel: [c2.id] })
    t.same(composed.content, {
      profile,
      sections: {
        identity: { given_name: 'Olena' },
        health: { conditions: ['asthma'] },
        travel: { escort_required: true },
      },
    })
    t.same(Object.keys(composed.content.sections), ['identity', 'health', 'travel'], 'sections in canonical order')
    t.notOk('family' in composed.content.sections, 'an absent section is neither included nor withheld')
    t.equal(composed.contentHash, contentHash(composed.content), 'the hash is of the composed content')
    t.same(source, before, 'the source is not changed')
  })

  const table: [string, Consent[], Purpose, string[], string[]][] = [
    ['no consents: everything withheld', [], 'return_assistance', [], [...dataCategories]],
    [
      'consent for another recipient',
      [consent([provision([...dataCategories], [SHELTER], ['return_assistance'])])],
      'return_assistance',
      [],
      [...dataCategories],
    ],
    [
      'consent for another purpose',
      [consent([provision([...dataCategories], [UKRAINE], ['statistics'])])],
      'return_assistance',
      [],
      [...dataCategories],
    ],
    [
      'expired consent',
      [consent([provision([...dataCategories], [UKRAINE], ['return_assistance'])], { expires_at: NOW })],
      'return_assistance',
      [],
      [...dataCategories],
    ],
    [
      'withdrawn consent',
      [consent([provision([...dataCategories], [UKRAINE], ['return_assistance'])], { withdrawn_at: BEFORE })],
      'return_assistance',
      [],
      [...dataCategories],
    ],
    [
      'consent to everything',
      [consent([provision([...dataCategories], [UKRAINE], ['return_assistance'])])],
      'return_assistance',
      [...dataCategories],
      [],
    ],
    [
      'consent expiring later, and a withdrawal dated after now',
      [
        consent([provision(['identity'], [UKRAINE], ['reintegration'])], { expires_at: LATER }),
        consent([provision(['reintegration'], [UKRAINE], ['reintegration'])], { withdrawn_at: AFTER }),
      ],
      'reintegration',
      ['identity', 'reintegration'],
      ['contact', 'health', 'psychosocial', 'family', 'legal', 'travel'],
    ],
    [
      'category and purpose in different provisions do not combine',
      [
        consent([
          provision(['health'], [UKRAINE], ['statistics']),
          provision(['family'], [UKRAINE], ['return_assistance']),
        ]),
      ],
      'return_assistance',
      ['family'],
      ['identity', 'contact', 'health', 'psychosocial', 'legal', 'travel', 'reintegration'],
    ],
  ]
  for (const [name, consents, purpose, included, withheld] of table) {
    t.test(name, async (t) => {
      const composed = composePacket({ profile, sections: fullSections }, consents, UKRAINE, purpose, NOW)
      t.same(composed.included, included, 'included')
      t.same(
        composed.withheld,
        withheld.map((category) => ({ category, reason: 'no_consent' })),
        'withheld',
      )
      t.same(Object.keys(composed.content.sections), included, 'content holds exactly the included sections')
      t.same(composed.content.profile, profile, 'the profile always goes in')
      t.same(Object.keys(composed.consentsByCategory), included, 'a consent list for each included category')
    })
  }

  t.test('a case with no sections yields only the profile', async (t) => {
    const composed = composePacket(
      { profile, sections: {} },
      [consent([provision([...dataCategories], [UKRAINE], ['return_assistance'])])],
      UKRAINE,
      'return_assistance',
      NOW,
    )
    t.same(composed, {
      content: { profile, sections: {} },
      included: [],
      withheld: [],
      consentsByCategory: {},
      contentHash: contentHash({ profile, sections: {} }),
    })
  })
})

t.test('contentHash is SHA-256 (hex) of RFC 8785 canonical JSON', async (t) => {
  const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
  const table: [string, unknown, string][] = [
    ['keys sorted', { b: 1, a: 'x' }, '{"a":"x","b":1}'],
    [
      'nested keys sorted, arrays kept in order',
      { z: [3, 1, { y: true, x: null }], a: {} },
      '{"a":{},"z":[3,1,{"x":null,"y":true}]}',
    ],
    ['numbers in shortest form', { n: 1.0, m: 1e21, f: 0.5 }, '{"f":0.5,"m":1e+21,"n":1}'],
    ['non-ASCII kept as UTF-8', { name: 'Олена' }, '{"name":"Олена"}'],
    ['an empty object', {}, '{}'],
  ]
  for (const [name, value, canonical] of table) {
    const hash = contentHash(value)
    t.match(hash, /^[0-9a-f]{64}$/, `${name}: 64 hex digits`)
    t.equal(hash, sha256(canonical), `${name}: hash of ${canonical}`)
  }
  t.equal(
    contentHash({ a: 1, b: { c: 2, d: 3 } }),
    contentHash({ b: { d: 3, c: 2 }, a: 1 }),
    'key order does not matter',
  )
  t.not(contentHash({ a: [1, 2] }), contentHash({ a: [2, 1] }), 'array order matters')
  t.not(contentHash({ a: '1' }), contentHash({ a: 1 }), 'types matter')
})

t.test('withdrawnCategories', async (t) => {
  const active = consent([provision(['identity'], [UKRAINE], ['return_assistance'])])
  const alsoActive = consent([provision(['health'], [UKRAINE], ['return_assistance'])], { expires_at: LATER })
  const withdrawn = consent([provision(['health'], [UKRAINE], ['return_assistance'])], { withdrawn_at: BEFORE })
  const expired = consent([provision(['travel'], [UKRAINE], ['return_assistance'])], { expires_at: NOW })
  const futureWithdrawal = consent([provision(['legal'], [UKRAINE], ['return_assistance'])], { withdrawn_at: AFTER })
  const all = [active, alsoActive, withdrawn, expired, futureWithdrawal]
  const unknown = 'c0000000-0000-4000-8000-ffffffffffff'

  const table: [
    string,
    Parameters<typeof withdrawnCategories>[0],
    Parameters<typeof withdrawnCategories>[1],
    string[],
  ][] = [
    ['nothing included', [], {}, []],
    ['covered by an active consent', ['identity'], { identity: [active.id] }, []],
    ['its only consent was withdrawn', ['health'], { health: [withdrawn.id] }, ['health']],
    ['its only consent expired', ['travel'], { travel: [expired.id] }, ['travel']],
    ['a withdrawal dated after now does not count yet', ['legal'], { legal: [futureWithdrawal.id] }, []],
    ['one of two consents still active', ['health'], { health: [withdrawn.id, alsoActive.id] }, []],
    ['no consent recorded for the category', ['family'], {}, ['family']],
    ['an empty consent list', ['family'], { family: [] }, ['family']],
    ['a consent that is not among the case consents', ['contact'], { contact: [unknown] }, ['contact']],
    [
      'several categories, order of included kept',
      ['identity', 'health', 'legal', 'travel', 'family'],
      { identity: [active.id], health: [withdrawn.id], legal: [futureWithdrawal.id], travel: [expired.id] },
      ['health', 'travel', 'family'],
    ],
  ]
  for (const [name, included, byCategory, expected] of table) {
    t.same(withdrawnCategories(included, byCategory, all, NOW), expected, name)
  }
  t.same(
    withdrawnCategories(['identity'], { identity: [active.id] }, [], NOW),
    ['identity'],
    'with no consents left, everything is withdrawn',
  )
})

t.test('sectionsVisibleTo', async (t) => {
  const found = { sections: fullSections, sending_organisation_id: SENDER }
  const forUkraine = consent([provision(['identity', 'health'], [UKRAINE], ['statistics'])])
  const forShelterExpired = consent([provision(['contact'], [SHELTER], ['return_assistance'])], { expires_at: BEFORE })
  const forShelterWithdrawn = consent([provision(['family'], [SHELTER], ['return_assistance'])], {
    withdrawn_at: LONG_AGO,
  })
  const forBoth = consent([provision(['travel', 'reintegration'], [UKRAINE, SHELTER], ['reintegration'])])
  const all = [forUkraine, forShelterExpired, forShelterWithdrawn, forBoth]
  const pick = (...categories: (keyof CaseSections)[]): CaseSections =>
    Object.fromEntries(categories.map((category) => [category, fullSections[category]]))

  const table: [string, CaseSections, Consent[], string, CaseSections][] = [
    ['the sending organisation sees every section, with no consent at all', fullSections, [], SENDER, fullSections],
    ['the sending organisation sees every section', fullSections, all, SENDER, fullSections],
    ['another party with no consent sees nothing', fullSections, [], UKRAINE, {}],
    [
      'Ukraine sees what an active consent covers, for any purpose',
      fullSections,
      all,
      UKRAINE,
      pick('identity', 'health', 'travel', 'reintegration'),
    ],
    [
      'the shelter: expired and withdrawn consents do not count',
      fullSections,
      all,
      SHELTER,
      pick('travel', 'reintegration'),
    ],
    [
      'covered but empty sections are absent',
      { health: { conditions: ['asthma'] } },
      all,
      UKRAINE,
      { health: { conditions: ['asthma'] } },
    ],
    ['an organisation no consent names sees nothing', fullSections, all, demoOrganisationIds.iomAlbania, {}],
  ]
  for (const [name, sections, consents, organisationId, expected] of table) {
    const visible = sectionsVisibleTo({ ...found, sections }, consents, organisationId, NOW)
    t.same(visible, expected, name)
    t.same(Object.keys(visible), Object.keys(expected), `${name}: same sections, nothing more`)
  }
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
