import t from 'tap'
import { demoOrganisationIds } from '../src/demo/demo-data.js'
import { demoKeys, startTestApp } from './fixtures/app.js'
import { feedUntil } from './fixtures/feed.js'
import { consentForUkraine, newCase, sender } from './fixtures/referral.js'

// A risk to life is shared without consent only as the safety exception allows: a supervisor asks,
// a second supervisor approves, only the safety note moves, the DPO sees it, and it expires.

const supervisor = demoKeys.demoiomplsv1 as string
const secondSupervisor = demoKeys.demoiomplsv2 as string
const dpo = demoKeys.demoiompldpo as string
const shelter = demoKeys.demoshuacw01 as string
const SHELTER = demoOrganisationIds.kyivShelter
const NOTE = 'Canary-safety-7731: the trafficker knows the family address in Kharkiv.'

t.test(
  'a safety note reaches an organisation without consent only with a second supervisor, until it expires',
  async (t) => {
    let now = new Date()
    const app = await startTestApp(t, {}, { now: () => now })
    const { request } = app
    const caseId = (await request({ method: 'POST', url: '/v1/cases', key: sender, payload: newCase })).json().id
    await request({ method: 'POST', url: `/v1/cases/${caseId}/consents`, key: sender, payload: consentForUkraine() })
    const ask = (key: string) =>
      request({
        method: 'POST',
        url: `/v1/cases/${caseId}/safety-overrides`,
        key,
        payload: {
          recipient_organisation_id: SHELTER,
          reason: 'Threats against the family.',
          note: NOTE,
          expires_in_days: 7,
        },
      })

    t.equal((await ask(sender)).statusCode, 403, 'a caseworker cannot ask')
    t.equal((await ask(shelter)).statusCode, 404, 'an organisation with no part in the case learns nothing')
    const asked = await ask(supervisor)
    t.equal(asked.statusCode, 201, 'a supervisor of the lead organisation asks')
    const overrideId = asked.json().id as string
    t.equal(asked.json().status, 'pending')

    const pending = await request({ method: 'GET', url: `/v1/safety-overrides/${overrideId}`, key: shelter })
    t.equal(pending.statusCode, 200, 'the recipient can see that an override exists')
    t.equal(pending.json().note, null, 'but not its note before approval')

    const approve = (key: string) => request({ method: 'POST', url: `/v1/safety-overrides/${overrideId}/approve`, key })
    const self = await approve(supervisor)
    t.equal(self.statusCode, 403, 'the supervisor who asked cannot approve')
    t.equal(self.json().type, 'urn:trm:problem:second-supervisor-required')
    t.equal((await approve(shelter)).statusCode, 403, 'nor can the recipient')
    const approved = await approve(secondSupervisor)
    t.equal(approved.statusCode, 200, 'a second supervisor approves')
    t.equal(approved.json().status, 'approved')
    t.equal((await approve(secondSupervisor)).statusCode, 409, 'once')

    const read = await request({ method: 'GET', url: `/v1/safety-overrides/${overrideId}`, key: shelter })
    t.equal(read.json().note, NOTE, 'the recipient reads the safety note')
    const caseRead = await request({ method: 'GET', url: `/v1/cases/${caseId}`, key: shelter })
    t.equal(caseRead.statusCode, 404, 'and nothing else of the case')

    const listed = await request({ method: 'GET', url: '/v1/safety-overrides', key: dpo })
    t.same(
      listed.json().items.map((o: { id: string; status: string }) => [o.id, o.status]),
      [[overrideId, 'approved']],
      'the DPO lists the override',
    )
    const both = (events: { type: string }[]) =>
      ['safety_override.requested', 'safety_override.approved'].every((type) => events.some((e) => e.type === type))
    const events = await feedUntil(request, dpo, both)
    t.ok(both(events), 'and its events')
    t.notOk(JSON.stringify(events).includes('Canary-safety'), 'which carry no note')
    const audit = await request({ method: 'GET', url: `/v1/cases/${caseId}/audit?limit=200`, key: dpo })
    const marked = audit.json().items.filter((a: { resource_type: string }) => a.resource_type === 'safety_override')
    t.ok(
      marked.every((a: { details: { safety_override: boolean } }) => a.details.safety_override === true),
      'the audit marks every step of the override',
    )
    t.same(
      marked.map(
        (a: { action: string; organisation_id: string }) =>
          `${a.action} by ${a.organisation_id === SHELTER ? 'shelter' : 'IOM Poland'}`,
      ),
      [
        'requestSafetyOverride by IOM Poland',
        'getSafetyOverride by shelter',
        'approveSafetyOverride by IOM Poland',
        'getSafetyOverride by shelter',
      ],
      'who asked, who approved and every read of the recipient',
    )

    now = new Date(now.getTime() + 8 * 24 * 60 * 60 * 1000)
    const expired = await request({ method: 'GET', url: `/v1/safety-overrides/${overrideId}`, key: shelter })
    t.equal(expired.json().status, 'expired', 'after seven days it expires')
    t.equal(expired.json().note, null, 'and the note is gone for the recipient')
    const author = await request({ method: 'GET', url: `/v1/safety-overrides/${overrideId}`, key: supervisor })
    t.equal(author.json().note, NOTE, 'its author keeps it')
  },
)
