// Reads seeded cases, packets and feed pages through the running service, as partners would: a
// seeded row that the service cannot serve, or serves wrongly, would make every number meaningless.
import { contentHash } from '../../src/disclosure/policy.js'
import { apiKeyOf, caseId, iomPolandKey, packetId, receiverOf, receiverSlots, senderOf, stepOf } from './dataset.js'

interface Check {
  what: string
  ok: boolean
  detail: string
}

const receiverKeys: Record<string, string> = {
  '00000000-0000-4000-8000-000000000201': apiKeyOf('demoiomuacw1'),
  '00000000-0000-4000-8000-000000000202': apiKeyOf('demoshuacw01'),
  '00000000-0000-4000-8000-000000000301': apiKeyOf('demoiomalcw1'),
  '00000000-0000-4000-8000-000000000401': apiKeyOf('demoiommacw1'),
}

async function get(base: string, path: string, key: string) {
  const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } })
  const text = await response.text()
  let body: Record<string, unknown> = {}
  try {
    body = JSON.parse(text) as Record<string, unknown>
  } catch {}
  return { status: response.status, body, text }
}

/** Checks a few seeded cases of IOM Poland (`cases`) end to end; answers one line per check. */
export async function verifySeededData(base: string, cases: number[]): Promise<Check[]> {
  const checks: Check[] = []
  const check = (what: string, ok: boolean, detail: string) => checks.push({ what, ok, detail })
  for (const n of cases) {
    const id = caseId(n)
    const sender = senderOf(n)
    const receiver = receiverOf(n)
    const receiverKey = receiverKeys[receiver.organisationId] ?? ''
    const own = await get(base, `/v1/cases/${id}`, iomPolandKey)
    const sections = Object.keys((own.body.sections as object | undefined) ?? {}).sort()
    const parties = (own.body.parties as unknown[] | undefined) ?? []
    check(
      `case ${n} as its sender`,
      own.status === 200 &&
        own.body.step === stepOf(n) &&
        own.body.overdue === false &&
        parties.length === 1 &&
        sections.join() === 'contact,health,identity' &&
        own.body.lead_organisation_id === sender.organisationId,
      `${own.status} ${own.body.reference} step ${own.body.step}, ${parties.length} parties, sections ${sections}`,
    )
    const theirs = await get(base, `/v1/cases/${id}`, receiverKey)
    check(
      `case ${n} as its receiver`,
      theirs.status === 404,
      `${theirs.status}: a receiver takes part in the case from its acknowledgement`,
    )
    if (stepOf(n) === 'referral_sent') {
      const packet = await get(base, `/v1/packets/${packetId(n)}`, receiverKey)
      const hashOk =
        typeof packet.body.content === 'object' && contentHash(packet.body.content) === packet.body.content_hash
      check(
        `enquiry of case ${n} as its recipient`,
        packet.status === 200 &&
          packet.body.status === 'received' &&
          packet.body.kind === 'enquiry' &&
          hashOk &&
          (packet.body.included_categories as unknown[] | undefined)?.join() === 'health',
        `${packet.status} ${packet.body.kind} ${packet.body.status}, content hash ${hashOk ? 'verifies' : 'does NOT verify'}`,
      )
    }
    const timeline = await get(base, `/v1/cases/${id}/timeline`, iomPolandKey)
    const steps = ((timeline.body.items as { to_step: string }[] | undefined) ?? []).map((item) => item.to_step)
    check(
      `timeline of case ${n}`,
      timeline.status === 200 && steps.at(-1) === stepOf(n),
      `${timeline.status} ${steps.join(' → ')}`,
    )
    const next = await get(base, `/v1/cases/${id}/next-actions`, iomPolandKey)
    check(`next actions of case ${n}`, next.status === 200, `${next.status}`)
    const consents = await get(base, `/v1/cases/${id}/consents`, iomPolandKey)
    const items = (consents.body.items as { status?: string }[] | undefined) ?? []
    check(
      `consents of case ${n}`,
      consents.status === 200 && items.length === 1 && items[0]?.status === 'active',
      `${consents.status}, ${items.length} consent(s), ${items[0]?.status}`,
    )
  }
  const list = await get(base, '/v1/cases?limit=50', iomPolandKey)
  const listed = (list.body.items as unknown[] | undefined) ?? []
  check(
    'list of cases',
    list.status === 200 && listed.length === 50 && typeof list.body.next_cursor === 'string',
    `${list.status}, ${listed.length} items`,
  )
  const feed = await get(base, '/v1/events?limit=50', apiKeyOf('demoiomuacw1'))
  const events = (feed.body.items as { type: string; organisation_ids?: string[] }[] | undefined) ?? []
  // Where events name their audience, each one the feed gives IOM Ukraine must name it.
  const addressed = events.every(
    (event) =>
      event.organisation_ids === undefined || event.organisation_ids.includes(receiverSlots[0]?.organisationId ?? ''),
  )
  check(
    'event feed',
    feed.status === 200 && events.length === 50 && feed.body.has_more === true && addressed,
    `${feed.status}, ${events.length} events (${[...new Set(events.map((event) => event.type))].join(', ')})`,
  )
  return checks
}
