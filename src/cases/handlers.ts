import type { Kysely, Transaction } from 'kysely'
import type { components } from '../../openapi/dist/types.js'
import type { ReadAudit } from '../audit/read-audit.js'
import { listCaseAudit, presentAuditRecord, recordAudit, requestActor } from '../audit/records.js'
import type { Clock } from '../clock.js'
import type { Case, CaseParty, CaseSections, Consent, DB } from '../db/schema.js'
import { recordEvent } from '../events/outbox.js'
import { actingRoles, type Caller, readingRoles, requireRole } from '../http/authentication.js'
import type { Handlers } from '../http/contract.js'
import { answerLanguage } from '../http/language.js'
import { etag, type Rendered, runStatementMutation } from '../http/mutation.js'
import { decodeCursor, toPage } from '../http/pagination.js'
import { ProblemError } from '../http/problem.js'
import type { Language } from '../i18n/catalogue.js'
import { findOrganisation } from '../organisations/queries.js'
import type { SopRegistry } from '../sops/registry.js'
import { caseOfParty, caseViewOfParty, presentCase, presentCaseSummary } from './access.js'
import { runCaseChange } from './case-change.js'
import { disclosureFor } from './disclosure.js'
import { stepDueAt } from './procedure.js'
import { definitionOf } from './procedure-definition.js'
import { isChild } from './profile.js'
import type { CaseView } from './queries.js'
import * as queries from './queries.js'
import { presentSchedule } from './schedule.js'

type Schemas = components['schemas']

export interface CaseDependencies {
  db: Kysely<DB>
  sops: SopRegistry
  clock: Clock
  readAudit: ReadAudit
}

export function caseHandlers({ db, sops, clock, readAudit }: CaseDependencies) {
  return {
    async listCases(request, reply) {
      const caller = requireRole(request, ...readingRoles)
      const language = answerLanguage(request, reply)
      const { limit = 50, cursor, step, counterpart, updated_since, overdue } = request.query
      const after = cursor ? decodeCursor(cursor, ['integer'])[0] : undefined
      const now = clock.now()
      const rows = await queries.listCases(db, {
        organisationId: caller.organisation.id,
        step,
        counterpart,
        updatedSince: updated_since,
        overdueAt: overdue === true ? now : undefined,
        withinDeadlineAt: overdue === false ? now : undefined,
        after,
        limit,
      })
      return toPage(
        rows,
        limit,
        ({ parties, consents, ...row }) => {
          const disclosure = disclosureFor(sops, row, parties, consents, caller.organisation.id, now)
          return presentCaseSummary(row, parties, disclosure, now, language)
        },
        (row) => [String(row.seq)],
      )
    },

    async createCase(request, reply) {
      const caller = requireRole(request, ...actingRoles)
      const language = answerLanguage(request, reply)
      if (!caller.organisation.can_send) {
        throw new ProblemError(403, 'Only a sending-side organisation can open a case.', { code: 'cannot-send' })
      }
      let opened: CaseView | undefined
      return runStatementMutation(
        db,
        request,
        reply,
        async (db) => {
          const now = clock.now()
          const procedure = sops.select(isChild(request.body.profile, now) ? 'child' : 'adult', {
            sending: caller.organisation.country,
            receiving: request.body.profile.country_of_return,
          })
          const parties = { sendingId: caller.organisation.id, counterpartId: null, leadId: caller.organisation.id }
          const dueAt = await stepDueAt(db, procedure.steps[procedure.initial_step], parties, now, caller.organisation)
          // The case, its party, timeline entry, event and audit record: one statement, which needs no transaction.
          const created = await queries.insertCase(
            db,
            {
              profile: request.body.profile,
              sections: request.body.sections ?? {},
              sendingOrganisationId: caller.organisation.id,
              sendingCountry: caller.organisation.country,
              principalId: caller.principal.id,
              procedure: {
                id: procedure.id,
                version: procedure.version,
                step: procedure.initial_step,
                dueAt,
              },
              at: now,
            },
            requestActor(request),
          )
          // A new case has its sending party and nothing else: it is rendered from what its statement was given.
          opened = {
            found: created,
            parties: [queries.openingParty(created)],
            consents: [],
            obligations: [],
          }
          return { status: 201, resourceId: created.id, location: `/v1/cases/${created.id}` }
        },
        (db, caseId) =>
          opened?.found.id === caseId
            ? Promise.resolve(presentedCase(sops, caller, opened, clock.now(), language))
            : renderCase(db, sops, caller, caseId, clock.now(), language),
      )
    },

    async getCase(request, reply) {
      const caller = requireRole(request, ...readingRoles)
      const language = answerLanguage(request, reply)
      const rendered = await renderCase(db, sops, caller, request.params.caseId, clock.now(), language)
      await readAudit.record(request, {
        caseId: rendered.body.id,
        resourceType: 'case',
        resourceId: rendered.body.id,
        details: { sections: Object.keys(rendered.body.sections) },
      })
      reply.header('etag', rendered.etag)
      return rendered.body
    },

    async updateCase(request, reply) {
      return runCaseChange(
        db,
        request,
        reply,
        { ifMatch: true, lead: true },
        async (trx, found) => {
          const sections: CaseSections = { ...found.sections }
          for (const [category, section] of Object.entries(request.body.sections ?? {})) {
            if (section === null) delete sections[category as keyof CaseSections]
            else Object.assign(sections, { [category]: section })
          }
          const changed = await queries.changeCase(trx, found, {
            ...(request.body.profile ? { profile: request.body.profile } : {}),
            sections,
            at: clock.now(),
          })
          await recordEvent(
            trx,
            {
              type: 'case.updated',
              caseId: found.id,
              data: { case_reference: found.reference, version: changed.version },
            },
            await queries.partyIds(trx, found.id),
          )
          await recordAudit(trx, request, {
            caseId: found.id,
            resourceType: 'case',
            resourceId: found.id,
            details: {
              profile_changed: request.body.profile !== undefined,
              sections_changed: Object.keys(request.body.sections ?? {}),
            },
          })
          return { status: 200, resourceId: found.id }
        },
        (trx, caseId, caller) => renderCase(trx, sops, caller, caseId, clock.now(), answerLanguage(request, reply)),
      )
    },

    async inviteParty(request, reply) {
      const invitedId = request.body.organisation_id
      return runCaseChange(
        db,
        request,
        reply,
        {},
        async (trx, found, caller) => {
          const parties = (await queries.partiesOf(trx, [found.id])).get(found.id) ?? []
          const inviter = caller.organisation.id
          if (inviter !== found.sending_organisation_id && inviter !== found.receiving_organisation_id) {
            throw new ProblemError(
              403,
              'Only the sending partner or the receiving partner that accepted can invite others.',
              {
                code: 'cannot-invite',
              },
            )
          }
          const invited = await findOrganisation(trx, invitedId)
          if (!invited || invited.kind === 'hub_operator') {
            throw new ProblemError(422, `Organisation ${invitedId} is not a partner that can take part in a case.`, {
              code: 'unknown-partner',
            })
          }
          if (parties.some((party) => party.organisation_id === invitedId)) {
            throw new ProblemError(422, `${invited.name} is already a party to this case.`, { code: 'already-party' })
          }
          await queries.addParty(trx, found.id, invitedId, 'invited')
          const changed = await queries.changeCase(trx, found, { at: clock.now() })
          await recordEvent(
            trx,
            {
              type: 'case.party_invited',
              caseId: found.id,
              data: { case_reference: found.reference, version: changed.version, organisation_id: invitedId },
            },
            await queries.partyIds(trx, found.id),
          )
          await recordAudit(trx, request, {
            caseId: found.id,
            resourceType: 'case',
            resourceId: found.id,
            details: { invited_organisation_id: invitedId },
          })
          return { status: 201, resourceId: found.id }
        },
        async (trx, caseId, caller) => {
          const { body, etag } = await renderCase(
            trx,
            sops,
            caller,
            caseId,
            clock.now(),
            answerLanguage(request, reply),
          )
          const { sections: _, schedule: __, ...summary } = body
          return { body: summary, etag }
        },
      )
    },

    async listCaseAudit(request) {
      const caller = requireRole(request, 'dpo', 'auditor')
      const found = await caseOfParty(db, caller, request.params.caseId)
      const { limit = 50, cursor } = request.query
      const after = cursor ? decodeCursor(cursor, ['integer'])[0] : undefined
      const parties = (await queries.partiesOf(db, [found.id])).get(found.id) ?? []
      const disclosure = disclosureFor(sops, found, parties, [], caller.organisation.id, clock.now())
      const onlyOf = disclosure.allAudit ? undefined : caller.organisation.id
      const rows = await listCaseAudit(db, found.id, after, limit, onlyOf)
      return toPage(rows, limit, presentAuditRecord, (row) => [String(row.id)])
    },
  } satisfies Partial<Handlers>
}

/** The summary of a case in hand, with its parties and consents, as the caller may see it, through the disclosure policy. */
export function presentedCaseSummary(
  sops: SopRegistry,
  caller: Caller,
  { found, parties, consents }: { found: Case; parties: CaseParty[]; consents: Consent[] },
  now: Date,
  language: Language,
): Rendered<Schemas['CaseSummary']> {
  const disclosure = disclosureFor(sops, found, parties, consents, caller.organisation.id, now)
  return { body: presentCaseSummary(found, parties, disclosure, now, language), etag: etag(found.version) }
}

/** The case as the caller may see it now, through the disclosure policy; read in one statement. */
export async function renderCase(
  db: Kysely<DB> | Transaction<DB>,
  sops: SopRegistry,
  caller: Caller,
  caseId: string,
  now: Date,
  language: Language,
): Promise<Rendered<Schemas['Case']>> {
  return presentedCase(sops, caller, await caseViewOfParty(db, caller, caseId), now, language)
}

/** A case in hand, with its parties, consents and obligations, as the caller may see it. */
function presentedCase(
  sops: SopRegistry,
  caller: Caller,
  { found, parties, consents, obligations }: CaseView,
  now: Date,
  language: Language,
): Rendered<Schemas['Case']> {
  const disclosure = disclosureFor(sops, found, parties, consents, caller.organisation.id, now)
  const open = !definitionOf(sops, found).steps[found.step]?.terminal
  const schedule = presentSchedule(obligations, disclosure, caller.organisation.id, open, now)
  return { body: presentCase(found, parties, disclosure, schedule, now, language), etag: etag(found.version) }
}
