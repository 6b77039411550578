/**
 * Disclosure as a property. Each run opens a case whose every section, and a record of every
 * category that records hold, carries a canary string of its own; records random consents
 * (categories × recipients among the demo partners × purposes; some withdrawn, some expiring);
 * invites random parties; and takes the case a random way through its procedure. Then every read of
 * the contract that returns case data is made as each organisation concerned, with one of its
 * reading roles, and no canary may reach an organisation other than the sender unless the rules
 * below allow it. They are written out here from the domain, not taken from the service:
 *
 * - a category reaches another organisation only while an ACTIVE consent (neither withdrawn nor
 *   expired) covers that organisation × category × one of the purposes of the case's current step
 *   (never `statistics`; none at a final step; on hold, those of the step before);
 * - identity and contact data only reach the receiving partner that accepted, or an invited party;
 * - what a consent records of the guardian, the child's views and the interpreter stays with the sender;
 * - the notes and reasons of the timeline stay with the two sides of the case (not an invited party).
 *
 * After every consent is withdrawn, no canary of the case reaches anyone but the sender, in this
 * run or any later one.
 */
import fc from 'fast-check'
import t from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp, type TestApp } from './fixtures/app.js'
import { acknowledgement, assessmentData, recordData } from './fixtures/referral.js'

// Runs of the property, and the seed that makes them the same each time. Each run takes a case
// through its procedure and makes some 150 reads.
const NUM_RUNS = 15
const SEED = 20261202

const ORG = demoOrganisationIds
const CATEGORIES = [
  'identity',
  'contact',
  'health',
  'psychosocial',
  'family',
  'legal',
  'travel',
  'reintegration',
] as const
type Category = (typeof CATEGORIES)[number]
const PURPOSES = ['return_assistance', 'reintegration', 'monitoring', 'statistics'] as const
type Purpose = (typeof PURPOSES)[number]
const IDENTIFYING: readonly Category[] = ['identity', 'contact']

/**
 * What the exchange serves at each step of the return procedures, as the procedures describe
 * it: return assistance until arrival, reintegration from arrival, monitoring with reintegration;
 * nothing once the case is over.
 */
const STEP_PURPOSES: Record<string, readonly Purpose[]> = {
  identified: ['return_assistance'],
  return_decided: ['return_assistance'],
  referral_sent: ['return_assistance'],
  acknowledged: ['return_assistance'],
  information_requested: ['return_assistance'],
  accepted: ['return_assistance'],
  ready_to_travel: ['return_assistance'],
  departed: ['return_assistance'],
  arrived: ['return_assistance', 'reintegration'],
  reintegration: ['reintegration', 'monitoring'],
  declined: ['return_assistance'],
  closed: [],
  withdrawn: [],
  cancelled: [],
  not_returned: [],
  // A child not returned is handed back to child protection: nothing is shared under the return's consents.
  handback_to_child_protection: [],
}
const FINAL_STEPS = ['closed', 'withdrawn', 'cancelled', 'not_returned']

/** Partners that can receive a referral: the case's receiver is one of them. */
const RECEIVERS = [ORG.iomUkraine, ORG.kyivShelter, ORG.iomAlbania, ORG.iomMorocco]
/** Sending-side partners other than this case's sender (IOM Poland). */
const OTHER_SENDERS = [ORG.ngoWarsaw, ORG.borderGuardPoland]
const INVITABLE = [...RECEIVERS, ...OTHER_SENDERS]
/** Every organisation but the sender and the hub operator's admin (which reads no case data). */
const OBSERVABLE = [...INVITABLE, ORG.auditOffice]
const CONSENT_RECIPIENTS = OBSERVABLE

const NAMES: Record<string, string> = {
  [ORG.iomUkraine]: 'IOM Ukraine',
  [ORG.kyivShelter]: 'Kyiv shelter',
  [ORG.iomAlbania]: 'IOM Albania',
  [ORG.iomMorocco]: 'IOM Morocco',
  [ORG.ngoWarsaw]: 'NGO Warsaw',
  [ORG.borderGuardPoland]: 'Border Guard Poland',
  [ORG.auditOffice]: 'audit office',
}

type Role = 'caseworker' | 'supervisor' | 'dpo' | 'auditor'
const READING_ROLES: readonly Role[] = ['caseworker', 'supervisor', 'dpo', 'auditor']
/** The roles each organisation reads with: the audit office has only its auditor. */
const rolesOf = (organisationId: string): readonly Role[] =>
  organisationId === ORG.auditOffice ? ['auditor'] : READING_ROLES

const sender = demoKeys.demoiomplcw1 as string
const admin = demoKeys.demohubadmin as string

// ─── What a run does ─────────────────────────────────────────────────────────────────────────

/** How far the case goes, in the order of the procedure. */
const STAGES = [
  'identified',
  'return_decided',
  'referral_sent',
  'acknowledged',
  'information_requested',
  'information_answered',
  'accepted',
  'update_sent',
  'arrived',
  'reintegration',
  'closed',
] as const
type Stage = (typeof STAGES)[number]

type Fate = 'open' | 'withdrawn' | 'expires' | 'lasting'
interface Provision {
  categories: Category[]
  recipients: string[]
  purposes: Purpose[]
}
/** A provision as generated: the case's receiver is not known yet, so `toReceiver` names it. */
type GeneratedProvision = Provision & { toReceiver: boolean }
interface Scenario {
  /** A child follows the child return procedure: a best-interests determination, a guardian, a handover. */
  child: boolean
  receiver: string
  /** The consent the enquiry needs (identity to the receiver for return assistance), and more. */
  referralConsent: { categories: Category[]; purposes: Purpose[]; fate: Fate }
  consents: { provisions: GeneratedProvision[]; fate: Fate }[]
  invited: string[]
  stage: Stage
  /** declined: the receiver declines instead of accepting; on_hold: the case ends the setup on hold. */
  branch: 'none' | 'declined' | 'on_hold'
  readEnquiry: boolean
  packetPurposes: { enquiry: Purpose; information: Purpose; update: Purpose }
  /** How every consent ends before the second look: one by one, or by the procedure's `withdraw`. */
  finalWithdrawal: 'each' | 'procedure'
  roles: Record<string, Role>
  bystander: string
}

const purposeArb = fc.oneof(
  { arbitrary: fc.constant<Purpose>('return_assistance'), weight: 3 },
  { arbitrary: fc.constantFrom<Purpose>('reintegration', 'monitoring', 'statistics'), weight: 1 },
)
const fateArb = fc.constantFrom<Fate>('open', 'withdrawn', 'expires', 'lasting')
const provisionArb = fc.record({
  categories: fc.subarray([...CATEGORIES], { minLength: 1 }),
  recipients: fc.subarray(CONSENT_RECIPIENTS, { minLength: 1, maxLength: 2 }),
  purposes: fc.subarray([...PURPOSES], { minLength: 1 }),
  toReceiver: fc.boolean(),
})
const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  child: fc.boolean(),
  receiver: fc.constantFrom(...RECEIVERS),
  referralConsent: fc.record({
    categories: fc.subarray([...CATEGORIES]),
    purposes: fc.subarray([...PURPOSES]),
    fate: fateArb,
  }),
  consents: fc.array(fc.record({ provisions: fc.array(provisionArb, { minLength: 1, maxLength: 2 }), fate: fateArb }), {
    maxLength: 3,
  }),
  invited: fc.subarray(INVITABLE, { maxLength: 2 }),
  stage: fc.constantFrom(...STAGES),
  branch: fc.constantFrom<Scenario['branch']>('none', 'declined', 'on_hold'),
  readEnquiry: fc.boolean(),
  packetPurposes: fc.record({ enquiry: purposeArb, information: purposeArb, update: purposeArb }),
  finalWithdrawal: fc.constantFrom<Scenario['finalWithdrawal']>('each', 'procedure'),
  roles: fc.record(Object.fromEntries(OBSERVABLE.map((id) => [id, fc.constantFrom(...rolesOf(id))]))),
  bystander: fc.constantFrom(...OBSERVABLE),
})

const quietRoles = Object.fromEntries(OBSERVABLE.map((id) => [id, rolesOf(id).at(-1) as Role]))
const returnAssistance = {
  enquiry: 'return_assistance',
  information: 'return_assistance',
  update: 'return_assistance',
} as const

/** Scenarios that always run first, besides the generated ones. */
const EXAMPLES: Scenario[] = [
  // The enquiry names reintegration while the case is before arrival (refused: the step serves return assistance),
  // and only a consent for reintegration covers health.
  {
    child: false,
    receiver: ORG.iomUkraine,
    referralConsent: { categories: [], purposes: [], fate: 'open' },
    consents: [
      {
        provisions: [{ categories: ['health'], recipients: [], purposes: ['reintegration'], toReceiver: true }],
        fate: 'open',
      },
    ],
    invited: [],
    stage: 'referral_sent',
    branch: 'none',
    readEnquiry: true,
    packetPurposes: { ...returnAssistance, enquiry: 'reintegration' },
    finalWithdrawal: 'each',
    roles: quietRoles,
    bystander: ORG.iomMorocco,
  },
  // The case is closed: no purpose is served any more, and consent for return assistance still stands.
  {
    child: false,
    receiver: ORG.iomUkraine,
    referralConsent: { categories: ['health'], purposes: [], fate: 'open' },
    consents: [],
    invited: [ORG.kyivShelter],
    stage: 'closed',
    branch: 'none',
    readEnquiry: true,
    packetPurposes: returnAssistance,
    finalWithdrawal: 'procedure',
    roles: quietRoles,
    bystander: ORG.iomAlbania,
  },
]

/** The case as the test knows it from what it did: the oracle reads only this. */
interface Model {
  caseId: string
  step: string
  previousStep: string | null
  lead: string
  parties: Set<string>
  invited: Set<string>
  /** The receiving partner that accepted, if one did. */
  accepted: string | null
  consents: { id: string; provisions: Provision[]; withdrawn: boolean; expiresAt: Date | null }[]
  packets: { id: string; kind: string; recipient: string }[]
}

function purposesNow(model: Model): readonly Purpose[] {
  const step = model.step === 'on_hold' ? (model.previousStep ?? '') : model.step
  const purposes = STEP_PURPOSES[step]
  if (!purposes) throw new Error(`the test knows no purposes for the step ${step}`)
  return purposes
}

/** The oracle: whether `organisationId` may see data of `category` now. */
function mayRead(model: Model, organisationId: string, category: Category, now: Date): boolean {
  const purposes = purposesNow(model)
  const covered = model.consents.some(
    (consent) =>
      !consent.withdrawn &&
      (consent.expiresAt === null || consent.expiresAt > now) &&
      consent.provisions.some(
        (p) =>
          p.categories.includes(category) &&
          p.recipients.includes(organisationId) &&
          p.purposes.some((purpose) => purposes.includes(purpose)),
      ),
  )
  if (!covered) return false
  return !IDENTIFYING.includes(category) || organisationId === model.accepted || model.invited.has(organisationId)
}

/** One canary per category and place; a canary never contains another. */
function canaries(run: number) {
  const of = (place: string) =>
    Object.fromEntries(CATEGORIES.map((c) => [c, `canary:${run}:${c}:${place};`])) as Record<Category, string>
  return {
    section: of('section'),
    record: of('record'),
    /** What a consent records of the interpreter, the guardian and the child's views: for the sender alone. */
    consent: [`canary:${run}:interpreter;`, `canary:${run}:guardian;`, `canary:${run}:child-views;`],
    /** A note and a reason of the timeline: for the two sides of the case, never for an invited party. */
    note: `canary:${run}:timeline-note;`,
  }
}
type Canaries = ReturnType<typeof canaries>

function sectionsWith(canary: Record<Category, string>) {
  return {
    identity: { given_name: canary.identity, family_name: 'Kovalenko' },
    contact: { notes: canary.contact },
    health: { notes: canary.health },
    psychosocial: { notes: canary.psychosocial },
    family: { household: [{ relationship: 'sister', name: canary.family }] },
    legal: { residence_status: canary.legal },
    travel: { notes: canary.travel },
    reintegration: { notes: canary.reintegration },
  }
}

// ─── The test ────────────────────────────────────────────────────────────────────────────────

t.test('no canary of a category reaches an organisation that no active consent lets read it', async (t) => {
  let now = new Date()
  const app = await startTestApp(t, { rateLimitPerMinute: 1_000_000 }, { now: () => now })
  const { request } = app

  /** A setup call that must succeed: a failure is a broken run, never a disclosure result. */
  const call = async (options: Parameters<TestApp['request']>[0], status: number, what: string) => {
    const response = await request(options)
    if (response.statusCode !== status) {
      throw new Error(`setup: ${what} answered ${response.statusCode}, not ${status}: ${response.body.slice(0, 600)}`)
    }
    return response
  }

  // A key for every reading role of every organisation that may look.
  const keys = new Map<string, string>()
  const existing: Record<string, Partial<Record<Role, string | undefined>>> = {
    [ORG.iomUkraine]: {
      caseworker: demoKeys.demoiomuacw1,
      supervisor: demoKeys.demoiomuasv1,
      dpo: demoKeys.demoiomuadpo,
    },
    [ORG.kyivShelter]: { caseworker: demoKeys.demoshuacw01 },
    [ORG.iomAlbania]: { caseworker: demoKeys.demoiomalcw1 },
    [ORG.iomMorocco]: { caseworker: demoKeys.demoiommacw1 },
    [ORG.ngoWarsaw]: { caseworker: demoKeys.demongoplcw1 },
    [ORG.borderGuardPoland]: { caseworker: demoKeys.demobgplcw01 },
    [ORG.auditOffice]: { auditor: demoKeys.demoauditor1 },
  }
  for (const organisationId of OBSERVABLE) {
    for (const role of rolesOf(organisationId)) {
      let key = existing[organisationId]?.[role]
      if (!key) {
        const principal = await call(
          {
            method: 'POST',
            url: `/v1/organisations/${organisationId}/principals`,
            key: admin,
            payload: { name: `${role} of ${NAMES[organisationId]}`, kind: 'staff', roles: [role] },
          },
          201,
          'create a principal',
        )
        const issued = await call(
          {
            method: 'POST',
            url: `/v1/principals/${principal.json().id}/api-keys`,
            key: admin,
            payload: { label: `${role} key` },
          },
          201,
          'issue a key',
        )
        key = issued.json().key as string
      }
      keys.set(`${organisationId} ${role}`, key)
    }
  }
  const keyOf = (organisationId: string, role: Role): string => {
    const key = keys.get(`${organisationId} ${role}`)
    if (!key) throw new Error(`no ${role} key for ${NAMES[organisationId]}`)
    return key
  }
  const actor = (organisationId: string) =>
    organisationId === ORG.iomPoland ? sender : keyOf(organisationId, 'caseworker')

  const leaks: { run: number; scenario: Scenario; violations: string[] }[] = []
  /** Canaries of finished runs: every consent of their cases is withdrawn, so none may show again. */
  const retired: string[] = []
  let run = 0
  let reads = 0

  const property = fc.asyncProperty(scenarioArb, async (scenario) => {
    run += 1
    now = new Date(now.getTime() + 60_000)
    const canary = canaries(run)
    const { receiver } = scenario
    const stageReached = (stage: Stage) => STAGES.indexOf(scenario.stage) >= STAGES.indexOf(stage)

    // The case, its parties and its consents.
    const opened = await call(
      {
        method: 'POST',
        url: '/v1/cases',
        key: sender,
        payload: {
          profile: {
            age_band: scenario.child ? '14_17' : '25_34',
            sex: 'female',
            country_of_return: 'UA',
            vulnerabilities: [],
          },
          sections: sectionsWith(canary.section),
        },
      },
      201,
      'open the case',
    )
    const caseId = opened.json().id as string
    const model: Model = {
      caseId,
      step: 'identified',
      previousStep: null,
      lead: ORG.iomPoland,
      parties: new Set([ORG.iomPoland]),
      invited: new Set(),
      accepted: null,
      consents: [],
      packets: [],
    }
    for (const organisationId of scenario.invited) {
      await call(
        {
          method: 'POST',
          url: `/v1/cases/${caseId}/parties`,
          key: sender,
          payload: { organisation_id: organisationId },
        },
        201,
        'invite a party',
      )
      model.parties.add(organisationId)
      model.invited.add(organisationId)
    }
    const consents: { provisions: Provision[]; fate: Fate }[] = scenario.consents.map(({ provisions, fate }) => ({
      provisions: provisions.map(({ toReceiver, ...provision }) => ({
        ...provision,
        recipients: toReceiver ? [...new Set([receiver, ...provision.recipients])] : provision.recipients,
      })),
      fate,
    }))
    if (stageReached('referral_sent')) {
      const { categories, purposes, fate } = scenario.referralConsent
      consents.unshift({
        provisions: [
          {
            categories: [...new Set<Category>(['identity', ...categories])],
            recipients: [receiver],
            purposes: [...new Set<Purpose>(['return_assistance', ...purposes])],
          },
        ],
        fate,
      })
    }
    const fates: Fate[] = []
    for (const { provisions, fate } of consents) {
      const expiresAt =
        fate === 'expires'
          ? new Date(now.getTime() + 3_600_000)
          : fate === 'lasting'
            ? new Date(now.getTime() + 30 * 86_400_000)
            : null
      const recorded = await call(
        {
          method: 'POST',
          url: `/v1/cases/${caseId}/consents`,
          key: sender,
          payload: {
            given_at: new Date(now.getTime() - 3_600_000).toISOString(),
            method: 'written',
            language: 'uk',
            interpreter: { used: true, name: canary.consent[0] },
            guardian: { name: canary.consent[1], relationship: 'legal_representative' },
            child_views: canary.consent[2],
            provisions,
            expires_at: expiresAt?.toISOString() ?? null,
          },
        },
        201,
        'record a consent',
      )
      model.consents.push({ id: recorded.json().id, provisions, withdrawn: false, expiresAt })
      fates.push(fate)
    }

    // A record of each category records hold, by the sender, each with its canary.
    const record = (key: string, kind: string, data: object, assessment?: string) =>
      call(
        {
          method: 'POST',
          url: `/v1/cases/${caseId}/records`,
          key,
          payload: { kind, ...(assessment ? { assessment } : {}), data },
        },
        201,
        `record ${assessment ?? kind}`,
      )
    const summary = (category: Category) => ({ summary: canary.record[category] })
    await record(sender, 'return_decision', { ...recordData.return_decision, ...summary('legal') })
    await record(sender, 'travel_documents', { ...recordData.travel_documents, ...summary('travel') })
    await record(sender, 'reintegration_plan_draft', {
      ...recordData.reintegration_plan_draft,
      ...summary('reintegration'),
    })
    await record(sender, 'assessment', { ...assessmentData.vulnerability, ...summary('psychosocial') }, 'vulnerability')
    await record(sender, 'assessment', { ...assessmentData.family, ...summary('family') }, 'family')
    await record(sender, 'assessment', { ...assessmentData.fit_to_travel, ...summary('health') }, 'fit_to_travel')
    if (scenario.child) {
      await record(
        sender,
        'assessment',
        { ...assessmentData.best_interests_determination, ...summary('family') },
        'best_interests_determination',
      )
      await record(sender, 'guardian_appointment', { ...recordData.guardian_appointment, ...summary('legal') })
    }

    // The procedure, as far as the scenario goes.
    const transition = async (
      organisationId: string,
      action: string,
      extra: object = {},
      key = actor(organisationId),
    ) => {
      const current = await call({ method: 'GET', url: `/v1/cases/${caseId}`, key }, 200, 'read the case')
      const moved = await call(
        {
          method: 'POST',
          url: `/v1/cases/${caseId}/transitions`,
          key,
          headers: { 'if-match': String(current.headers.etag) },
          payload: { action, ...extra },
        },
        200,
        action,
      )
      model.step = moved.json().step as string
    }
    const answer = async (packetId: string, action: string, payload: object) => {
      const key = actor(receiver)
      const current = await call({ method: 'GET', url: `/v1/packets/${packetId}`, key }, 200, 'read the packet')
      await call(
        {
          method: 'POST',
          url: `/v1/packets/${packetId}/${action}`,
          key,
          headers: { 'if-match': String(current.headers.etag) },
          payload,
        },
        200,
        action,
      )
    }
    /**
     * Sends a packet to the receiver. A purpose the case's step does not serve is refused (422), and the
     * packet goes for the step's first purpose instead; a packet with nothing consented for it is refused,
     * and the step stays.
     */
    const send = async (kind: string, wanted: Purpose, step: string) => {
      const served = purposesNow(model)
      let purpose = wanted
      if (!served.includes(wanted)) {
        const refused = await request({
          method: 'POST',
          url: `/v1/cases/${caseId}/packets`,
          key: sender,
          payload: { recipient_organisation_id: receiver, purpose: wanted },
        })
        t.equal(refused.statusCode, 422, `run ${run}: a ${kind} for ${wanted} is refused at ${model.step}`)
        t.equal(refused.json().type, 'urn:trm:problem:purpose-not-served')
        purpose = served[0] as Purpose
      }
      const sent = await request({
        method: 'POST',
        url: `/v1/cases/${caseId}/packets`,
        key: sender,
        payload: { recipient_organisation_id: receiver, purpose },
      })
      if (sent.statusCode === 422 && sent.json().type === 'urn:trm:problem:nothing-consented' && kind !== 'enquiry') {
        return undefined
      }
      if (sent.statusCode !== 201) throw new Error(`setup: send ${kind} answered ${sent.statusCode}: ${sent.body}`)
      t.equal(sent.json().kind, kind, `run ${run}: the packet sent is ${kind === 'enquiry' ? 'an' : 'a'} ${kind}`)
      model.packets.push({ id: sent.json().id, kind, recipient: receiver })
      model.step = step
      return sent.json().id as string
    }
    const declining =
      scenario.branch === 'declined' &&
      ['acknowledged', 'information_requested', 'information_answered'].includes(scenario.stage)

    if (stageReached('return_decided')) await transition(ORG.iomPoland, 'decide_return', { note: canary.note })
    const enquiry = stageReached('referral_sent')
      ? await send('enquiry', scenario.packetPurposes.enquiry, 'referral_sent')
      : undefined
    if (enquiry && (scenario.readEnquiry || stageReached('acknowledged'))) {
      await call({ method: 'GET', url: `/v1/packets/${enquiry}`, key: actor(receiver) }, 200, 'the receiver reads')
    }
    if (enquiry && stageReached('acknowledged')) {
      await answer(enquiry, 'acknowledge', acknowledgement)
      model.step = 'acknowledged'
      model.parties.add(receiver)
    }
    if (enquiry && stageReached('information_requested')) {
      await answer(enquiry, 'request-information', { questions: ['Does she need a medical escort?'] })
      model.step = 'information_requested'
    }
    if (stageReached('information_answered')) {
      await send('information', scenario.packetPurposes.information, 'acknowledged')
    }
    if (enquiry && declining) {
      await answer(enquiry, 'decline', { reason_code: 'no_capacity', reason_text: 'No place this month.' })
      model.step = scenario.child ? 'handback_to_child_protection' : 'declined'
      if (!model.invited.has(receiver)) model.parties.delete(receiver)
    }
    if (enquiry && !declining && stageReached('accepted')) {
      await record(
        sender,
        'assessment',
        { ...assessmentData.risk_and_needs, ...summary('psychosocial') },
        'risk_and_needs',
      )
      await record(actor(receiver), 'assessment', assessmentData.risk_and_needs, 'risk_and_needs')
      await answer(enquiry, 'accept', {})
      model.step = 'accepted'
      model.accepted = receiver
      const outbox = await call(
        { method: 'GET', url: '/v1/packets?direction=outbound&limit=20', key: sender },
        200,
        'list the outbox',
      )
      const full = (outbox.json().items as { id: string; case_id: string; kind: string }[]).find(
        (packet) => packet.case_id === caseId && packet.kind === 'referral',
      )
      if (!full) throw new Error('setup: no full referral followed the acceptance')
      model.packets.push({ id: full.id, kind: 'referral', recipient: receiver })
    }
    if (model.accepted && stageReached('update_sent')) {
      await send('update', scenario.packetPurposes.update, 'accepted')
    }
    if (model.accepted && stageReached('arrived')) {
      await record(sender, 'escort', recordData.escort)
      await record(sender, 'reception', recordData.reception)
      await transition(ORG.iomPoland, 'confirm_ready')
      if (scenario.child) await record(sender, 'handover_protocol', recordData.handover_protocol)
      await transition(ORG.iomPoland, 'confirm_departure')
      await transition(receiver, 'confirm_arrival')
      model.lead = receiver
    }
    if (model.accepted && stageReached('reintegration')) {
      await record(actor(receiver), 'reintegration_plan_final', recordData.reintegration_plan_final)
      await transition(receiver, 'finalise_plan')
    }
    if (model.accepted && stageReached('closed')) {
      await record(actor(receiver), 'closure_report', recordData.closure_report)
      await record(actor(receiver), 'sustainability_score', recordData.sustainability_score)
      await transition(receiver, 'close', { reason: 'Reintegration completed.' }, keyOf(receiver, 'supervisor'))
    }
    // A child's hand-back to child protection is not put on hold: the handover is due within days.
    if (
      scenario.branch === 'on_hold' &&
      !FINAL_STEPS.includes(model.step) &&
      model.step !== 'handback_to_child_protection'
    ) {
      const before = model.step
      await transition(model.lead, 'put_on_hold', {
        reason: `Criminal proceedings in which she testifies. ${canary.note}`,
        review_date: new Date(now.getTime() + 30 * 86_400_000).toISOString().slice(0, 10),
      })
      model.previousStep = before
    }

    // Consents end as the scenario says: withdrawn by the lead, or expired an hour and more ago.
    const withdraw = async (consent: Model['consents'][number]) => {
      if (consent.withdrawn) return
      await call(
        {
          method: 'POST',
          url: `/v1/cases/${caseId}/consents/${consent.id}/withdraw`,
          key: actor(model.lead),
          payload: { reason: 'She changed her mind.' },
        },
        200,
        'withdraw a consent',
      )
      consent.withdrawn = true
    }
    for (const [index, consent] of model.consents.entries()) {
      if (fates[index] === 'withdrawn') await withdraw(consent)
    }
    now = new Date(now.getTime() + 2 * 3_600_000)

    const violations: string[] = []
    await look('while the consents stand as the scenario left them', scenario, model, canary, violations)

    // Every consent withdrawn: nothing of the case reaches anyone but the sender any more.
    if (scenario.finalWithdrawal === 'procedure' && !FINAL_STEPS.includes(model.step)) {
      await transition(model.lead, 'withdraw', { reason: 'She no longer wants to return.' })
      for (const consent of model.consents) consent.withdrawn = true
    } else {
      for (const consent of model.consents) await withdraw(consent)
    }
    await look('after every consent was withdrawn', scenario, model, canary, violations)
    retired.push(...Object.values(canary.section), ...Object.values(canary.record), ...canary.consent, canary.note)

    // Every run goes on to the end: one run's leak does not hide another's.
    if (violations.length > 0) leaks.push({ run, scenario, violations: [...new Set(violations)] })
  })

  /** Every read of the contract that returns case data, as each organisation concerned, checked against the oracle. */
  async function look(when: string, scenario: Scenario, model: Model, canary: Canaries, violations: string[]) {
    const sendersView = await call({ method: 'GET', url: `/v1/cases/${model.caseId}`, key: sender }, 200, 'read')
    if (sendersView.json().step !== model.step) {
      violations.push(`${when}: the case is at ${sendersView.json().step}, the test thought ${model.step}`)
    }
    const observers = new Set<string>([
      ...[...model.parties].filter((id) => id !== ORG.iomPoland),
      ...model.consents.flatMap((consent) => consent.provisions.flatMap((p) => p.recipients)),
      ...model.packets.map((packet) => packet.recipient),
      scenario.bystander,
    ])
    for (const organisationId of observers) {
      const role = scenario.roles[organisationId] as Role
      const name = `${NAMES[organisationId]} (${role})`
      const party = model.parties.has(organisationId)
      const allowed = new Set(CATEGORIES.filter((category) => mayRead(model, organisationId, category, now)))
      const forbidden = [
        ...CATEGORIES.filter((c) => !allowed.has(c)).flatMap((c) => [
          [canary.section[c], `${c} (section)`],
          [canary.record[c], `${c} (record)`],
        ]),
        ...canary.consent.map((text) => [text, 'what the consent says of the interpreter, the guardian or the child']),
        ...(party && !model.invited.has(organisationId) ? [] : [[canary.note, 'a note of the timeline']]),
        ...retired.map((text) => [text, `${text} of an earlier run, all of whose consents are withdrawn`]),
      ] as [string, string][]

      const read = async (operation: string, url: string, expected: number, key = keyOf(organisationId, role)) => {
        const response = await request({ method: 'GET', url, key })
        reads += 1
        if (response.statusCode !== expected) {
          violations.push(`${when}: ${operation} as ${name} answered ${response.statusCode}, not ${expected}`)
        }
        for (const [text, what] of forbidden) {
          if (response.body.includes(text)) {
            violations.push(`${when}: ${operation} as ${name} at ${model.step} shows ${what}`)
          }
        }
        return response
      }
      const caseUrl = `/v1/cases/${model.caseId}`
      const ifParty = party ? 200 : 404
      const found = await read('getCase', caseUrl, ifParty)
      if (found.statusCode === 200) {
        for (const category of allowed) {
          if (!found.body.includes(canary.section[category])) {
            violations.push(`${when}: getCase as ${name} at ${model.step} lacks ${category}, which consent opens`)
          }
        }
      }
      await read('listCases', '/v1/cases?limit=200', 200)
      await read('listCaseRecords', `${caseUrl}/records`, ifParty)
      await read('getTimeline', `${caseUrl}/timeline`, ifParty)
      await read('listConsents', `${caseUrl}/consents`, ifParty)
      for (const consent of model.consents) await read('getConsent', `${caseUrl}/consents/${consent.id}`, ifParty)
      for (const packet of model.packets) {
        await read(
          `getPacket (${packet.kind})`,
          `/v1/packets/${packet.id}`,
          packet.recipient === organisationId ? 200 : 404,
        )
      }
      await read('listPackets', '/v1/packets?direction=inbound&limit=200', 200)
      await read('getNextActions', `${caseUrl}/next-actions`, ifParty)
      const auditor = role === 'dpo' || role === 'auditor' ? role : 'auditor'
      await read('listCaseAudit', `${caseUrl}/audit?limit=200`, ifParty, keyOf(organisationId, auditor))
      await read('listEvents', '/v1/events?limit=500', 200)
      await read('listWithdrawalNotices', '/v1/withdrawal-notices?limit=200', 200)
      if (rolesOf(organisationId).includes('supervisor')) {
        await read('listEscalations', '/v1/escalations?limit=200', 200, keyOf(organisationId, 'supervisor'))
      }
    }
  }

  const details = await fc.check(property, {
    numRuns: NUM_RUNS,
    seed: SEED,
    endOnFailure: true,
    examples: EXAMPLES.map((example) => [example]),
  })
  t.notOk(details.failed, details.failed ? String(details.errorInstance) : `${run} runs went through`, {
    diagnostic: details.failed,
    ...(details.failed ? { counterexample: details.counterexample, seed: details.seed } : {}),
  })
  t.same(
    leaks.flatMap(({ run, violations }) => violations.map((violation) => `run ${run}: ${violation}`)),
    [],
    `in ${run} runs and ${reads} reads, no canary reached an organisation that the rules keep it from`,
    { scenarios: leaks.map(({ run, scenario }) => ({ run, scenario })) },
  )
})
