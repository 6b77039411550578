import { randomUUID } from 'node:crypto'
import { type ExpressionBuilder, type Kysely, type QueryCreator, sql, type Transaction } from 'kysely'
import { jsonArrayFrom } from 'kysely/helpers/postgres'
import type { AuditActor } from '../audit/records.js'
import {
  type CaseKeyColumns,
  caseKey,
  newCaseKey,
  openJson,
  openText,
  sealedText,
  sealJson,
  sealText,
} from '../crypto/case-keys.js'
import { isSealed, type Sealed } from '../crypto/keyring.js'
import { appendsOf } from '../db/appends.js'
import { compiledOnce, type Slot } from '../db/compiled.js'
import {
  type Case,
  type CaseObligation,
  type CaseParty,
  type CaseProfile,
  type CaseRow,
  type CaseSections,
  type Consent,
  type ConsentRow,
  type DB,
  json,
} from '../db/schema.js'
import { isAnyUuid } from '../db/statements.js'
import { claimKey, type KeyClaim } from '../http/mutation.js'

type Db = Kysely<DB> | Transaction<DB>

export interface NewCaseInput {
  profile: CaseProfile
  sections: CaseSections
  sendingOrganisationId: string
  sendingCountry: string
  principalId: string
  procedure: { id: string; version: number; step: string; dueAt: Date | null }
  at: Date
}

/**
 * Opens a case in one statement: the case, its reference numbered there, its sending party and the
 * opening entry of its timeline; when a request opens it (`opener`), also its `case.opened` event
 * for the sending organisation and the request's audit record, which take the reference from the
 * row the statement inserts. Built once (`compiledOnce`): opening a case builds no query.
 */
export async function insertCase(db: Db, input: NewCaseInput, opener?: AuditActor): Promise<Case> {
  const id = randomUUID()
  const key = newCaseKey(id)
  const { at, procedure } = input
  const values = {
    id,
    reference_prefix: `${input.sendingCountry}-${input.profile.country_of_return}-${at.getUTCFullYear()}-`,
    profile: json(input.profile),
    sections: json(sealJson(key.key, 'cases.sections', id, input.sections)),
    data_key_id: key.data_key_id,
    data_key: json(key.data_key),
    sending_organisation_id: input.sendingOrganisationId,
    principal_id: input.principalId,
    sop_id: procedure.id,
    sop_version: procedure.version,
    step: procedure.step,
    step_due_at: procedure.dueAt,
    at,
  }
  const [numbered] = opener
    ? await openingAnnounced(db, { ...values, ...openerValues(opener, Object.keys(input.sections)) })
    : await opening(db, values)
  if (!numbered) throw new Error(`the case ${id} was not opened`)
  // The rest of the row is what the statement was given: it is not read back.
  return {
    ...numbered,
    id,
    profile: input.profile,
    sections: input.sections,
    sending_organisation_id: input.sendingOrganisationId,
    receiving_organisation_id: null,
    lead_organisation_id: input.sendingOrganisationId,
    created_at: at,
    updated_at: at,
    sop_id: procedure.id,
    sop_version: procedure.version,
    step: procedure.step,
    previous_step: null,
    step_entered_at: at,
    step_due_at: procedure.dueAt,
    data_key_id: key.data_key_id,
    data_key: key.data_key,
    erased_at: null,
    erased_by_principal_id: null,
    erasure_reason: null,
  }
}

/** The slots of the opening's event and audit record. */
function openerValues(opener: AuditActor, sectionNames: string[]) {
  return {
    audit_action: opener.action,
    audit_principal_id: opener.principalId,
    audit_organisation_id: opener.organisationId,
    audit_request_id: opener.requestId,
    audit_section_names: json(sectionNames),
  }
}

/** The case, its sending party and the opening entry of its timeline, as parts of one `with`. */
function openingParts(db: Db, slot: Slot) {
  const at = slot<Date>('at')
  const sendingId = slot('sending_organisation_id')
  return db
    .with('opened', (db) =>
      db
        .insertInto('cases')
        .values({
          id: slot('id'),
          reference: sql<string>`${slot('reference_prefix')} || lpad(nextval('case_reference_numbers')::text, 6, '0')`,
          profile: slot('profile'),
          sections: slot('sections'),
          data_key_id: slot('data_key_id'),
          data_key: slot('data_key'),
          sending_organisation_id: sendingId,
          receiving_organisation_id: null,
          lead_organisation_id: sendingId,
          sop_id: slot('sop_id'),
          sop_version: slot<number>('sop_version'),
          step: slot('step'),
          step_due_at: slot<Date | null>('step_due_at'),
          step_entered_at: at,
          created_at: at,
          updated_at: at,
        })
        .returning(['id', 'step', 'sending_organisation_id', 'lead_organisation_id', ...numbered]),
    )
    .with('opening_party', (db) =>
      db
        .insertInto('case_parties')
        .values(openingParty({ id: slot('id'), sending_organisation_id: sendingId, created_at: at })),
    )
    .with('opening_entry', (db) =>
      db.insertInto('case_transitions').values({
        case_id: slot('id'),
        action: 'open',
        from_step: null,
        to_step: slot('step'),
        at,
        principal_id: slot('principal_id'),
        organisation_id: sendingId,
        lead_organisation_id: sendingId,
      }),
    )
}

/** What the database numbers or defaults in a new case. */
const numbered = ['seq', 'reference', 'version'] as const

const opening = compiledOnce((db, slot) => openingParts(db, slot).selectFrom('opened').select(numbered))

const openingAnnounced = compiledOnce((db, slot) =>
  openingParts(db, slot)
    .with('opening_event', (db) =>
      db
        .insertInto('events')
        .columns(['type', 'case_id', 'organisation_ids', 'data'])
        .expression((eb) =>
          eb.selectFrom('opened').select([
            sql.lit('case.opened').as('type'),
            'id',
            sql<string[]>`array[sending_organisation_id]`.as('organisation_ids'),
            sql`jsonb_build_object('case_reference', reference, 'version', version, 'step', step,
                'lead_organisation_id', lead_organisation_id)`.as('data'),
          ]),
        )
        .returning(['id', 'txid', 'seq', 'organisation_ids']),
    )
    .with('opening_audience', (db) =>
      db
        .insertInto('event_audiences')
        .columns(['organisation_id', 'txid', 'seq', 'event_id'])
        .expression((eb) =>
          eb.selectFrom('opening_event').select([sql`organisation_ids[1]`.as('organisation_id'), 'txid', 'seq', 'id']),
        ),
    )
    .with('opening_audit', (db) =>
      db
        .insertInto('audit_records')
        .columns([
          'action',
          'principal_id',
          'organisation_id',
          'request_id',
          'case_id',
          'resource_type',
          'resource_id',
          'details',
        ])
        .expression((eb) =>
          eb
            .selectFrom('opened')
            .select([
              sql<string>`${slot('audit_action')}`.as('action'),
              sql<string>`${slot('audit_principal_id')}::uuid`.as('principal_id'),
              sql<string>`${slot('audit_organisation_id')}::uuid`.as('organisation_id'),
              sql<string>`${slot('audit_request_id')}`.as('request_id'),
              'id',
              sql.lit('case').as('resource_type'),
              'id as resource_id',
              sql`jsonb_build_object('reference', reference, 'sections', ${slot('audit_section_names')}::jsonb)`.as(
                'details',
              ),
            ]),
        ),
    )
    .selectFrom('opened')
    .select(numbered),
)

/** The party a case is opened with: its sending organisation, since the case was opened. */
export function openingParty(opened: Pick<Case, 'id' | 'sending_organisation_id' | 'created_at'>): CaseParty {
  return {
    case_id: opened.id,
    organisation_id: opened.sending_organisation_id,
    role: 'sending',
    since: opened.created_at,
  }
}

/**
 * The case with its sections opened by its own data key, loaded in the same row. An erased case
 * has none: it holds no sections any more.
 */
export function openCase(row: CaseRow): Case {
  if (row.erased_at !== null) return { ...row, sections: {} }
  return { ...row, sections: openSealed(row, 'cases.sections', row.id, row.sections) }
}

/** A sealed value of a case; a case still in the clear (no data key yet) passes its values as they are. */
export function openSealed<T>(
  keyColumns: CaseKeyColumns,
  column: Parameters<typeof openJson>[1],
  rowId: string,
  stored: unknown,
): T {
  if (keyColumns.data_key === null) return stored as T
  return openJson<T>(caseKey(keyColumns), column, rowId, stored)
}

/** Whether the organisation is a party to the case in scope. */
function isPartyTo(organisationId: string) {
  return ({ exists, selectFrom }: ExpressionBuilder<DB, 'cases'>) =>
    exists(
      selectFrom('case_parties')
        .select('case_id')
        .whereRef('case_parties.case_id', '=', 'cases.id')
        .where('case_parties.organisation_id', '=', organisationId),
    )
}

/** The case by `caseId`, if `organisationId` is a party to it: the read each of the three below starts from. */
const caseOfPartyQuery = (db: QueryCreator<DB>, slot: Slot) =>
  db
    .selectFrom('cases')
    .selectAll('cases')
    .where('id', '=', slot('caseId'))
    .where(isPartyTo(slot('organisationId')))

const caseOfPartyRead = compiledOnce(caseOfPartyQuery)
const caseOfPartyLocked = compiledOnce((db, slot) => caseOfPartyQuery(db, slot).forUpdate())
const caseOfPartyLockedClaiming = compiledOnce((db, slot) =>
  // The claim is read only through `sql`: the read goes on as a query of the tables of DB.
  caseOfPartyQuery(db.with('key_claim', () => claimKey(db, slot)) as unknown as QueryCreator<DB>, slot)
    .select(sql<boolean>`exists (select from key_claim)`.as('key_claimed'))
    .forUpdate(),
)

/**
 * The case, if the organisation is a party to it; `lock` holds the row until the transaction ends,
 * and a locking read carries the request's `Idempotency-Key` claim, if it has one, in the same statement.
 */
export async function findCaseForParty(
  db: Db,
  caseId: string,
  organisationId: string,
  { lock = false, claim }: { lock?: boolean; claim?: KeyClaim } = {},
): Promise<Case | undefined> {
  const values = { caseId, organisationId }
  if (lock && claim) {
    const [found] = await caseOfPartyLockedClaiming(db, { ...values, ...claim.values })
    if (!found) return undefined
    const { key_claimed, ...row } = found
    claim.settle(key_claimed)
    return openCase(row)
  }
  const [row] = await (lock ? caseOfPartyLocked : caseOfPartyRead)(db, values)
  return row && openCase(row)
}

/** A case with what the disclosure policy and the answer need of it, read in one statement. */
export interface CaseView {
  found: Case
  parties: CaseParty[]
  consents: Consent[]
  obligations: (CaseObligation & { proceeding_id: string | null })[]
}

/**
 * The case, if the organisation is a party to it, with its parties, its consents (newest first)
 * and its obligations (by due date): one statement, so that a read costs one round trip.
 */
export async function findCaseViewForParty(
  db: Db,
  caseId: string,
  organisationId: string,
): Promise<CaseView | undefined> {
  const [row] = await caseViewOfParty(db, { caseId, organisationId })
  if (!row) return undefined
  const { view_parties, view_consents, view_obligations, ...found } = row
  return {
    found: openCase(found),
    parties: partiesFromJson(view_parties),
    consents: consentsFromJson(view_consents, found),
    obligations: view_obligations.map((obligation) =>
      withDates<CaseView['obligations'][number]>(obligation, ['due_at', 'created_at', 'fulfilled_at']),
    ),
  }
}

const caseViewOfParty = compiledOnce((db, slot) =>
  caseOfPartyQuery(db, slot).select((eb) => [
    partiesJson(eb).as('view_parties'),
    consentsJson(eb).as('view_consents'),
    jsonArrayFrom(
      eb
        .selectFrom('case_obligations')
        .leftJoin('proceeding_hearings', 'proceeding_hearings.id', 'case_obligations.hearing_id')
        .selectAll('case_obligations')
        .select('proceeding_hearings.proceeding_id')
        .whereRef('case_obligations.case_id', '=', 'cases.id')
        .orderBy('case_obligations.due_at')
        .orderBy('case_obligations.id'),
    ).as('view_obligations'),
  ]),
)

/** The parties of the case of the row in scope (`cases.id`), in the order they joined, as JSON. */
export function partiesJson(eb: ExpressionBuilder<DB, 'cases'>) {
  return jsonArrayFrom(
    eb
      .selectFrom('case_parties')
      .selectAll('case_parties')
      .whereRef('case_parties.case_id', '=', 'cases.id')
      .orderBy('since')
      .orderBy('organisation_id'),
  )
}

export function partiesFromJson(rows: readonly object[]): CaseParty[] {
  return rows.map((party) => withDates<CaseParty>(party, ['since']))
}

/** The consents of the case of the row in scope (`cases.id`), newest first, as JSON: to read them in the same statement. */
export function consentsJson(eb: ExpressionBuilder<DB, 'cases'>) {
  return jsonArrayFrom(
    eb
      .selectFrom('consents')
      .selectAll('consents')
      .whereRef('consents.case_id', '=', 'cases.id')
      .orderBy('recorded_at', 'desc')
      .orderBy('id', 'desc'),
  )
}

/**
 * Consents read as JSON beside their case. With the case's key columns their free text is opened;
 * without them it is withheld, as for an erased case (a list needs only what the disclosure policy
 * reads: scope, dates and status).
 */
export function consentsFromJson(rows: readonly object[], keyColumns: CaseKeyColumns = withoutKey): Consent[] {
  return rows.map((consent) =>
    openConsent(
      keyColumns,
      withDates<ConsentRow>(consent, ['given_at', 'expires_at', 'recorded_at', 'withdrawn_at', 'expiry_noticed_at']),
    ),
  )
}

const withoutKey: CaseKeyColumns = { id: '', data_key_id: null, data_key: null }

/** A row read as JSON, its timestamps (JSON strings) made dates again, as a row read directly has them. */
function withDates<T extends object>(row: object, columns: readonly (keyof T & string)[]): T {
  const revived: Record<string, unknown> = { ...row }
  for (const column of columns) {
    const value = revived[column]
    if (typeof value === 'string') revived[column] = new Date(value)
  }
  return revived as T
}

export async function findCase(db: Db, caseId: string, { lock = false } = {}): Promise<Case | undefined> {
  let query = db.selectFrom('cases').selectAll().where('id', '=', caseId)
  if (lock) query = query.forUpdate()
  const row = await query.executeTakeFirst()
  return row && openCase(row)
}

export interface CaseFilter {
  organisationId: string
  step?: string | undefined
  counterpart?: string | undefined
  updatedSince?: string | undefined
  /** Only cases whose step was due before this moment. */
  overdueAt?: Date | undefined
  /** Only cases whose step is not due yet at this moment, or has no deadline. */
  withinDeadlineAt?: Date | undefined
  after?: string | undefined
  limit: number
}

/** Every column of a case but its sections: what a list shows, without reading personal data it does not return. */
const summaryColumns = [
  'cases.id',
  'cases.seq',
  'cases.reference',
  'cases.profile',
  'cases.sending_organisation_id',
  'cases.receiving_organisation_id',
  'cases.lead_organisation_id',
  'cases.version',
  'cases.created_at',
  'cases.updated_at',
  'cases.sop_id',
  'cases.sop_version',
  'cases.step',
  'cases.previous_step',
  'cases.step_entered_at',
  'cases.step_due_at',
  'cases.erased_at',
  'cases.erased_by_principal_id',
  'cases.erasure_reason',
] as const satisfies readonly `cases.${Exclude<keyof Case, 'sections'>}`[]

/** What a list shows of a case: never its sections, nor its key. */
export type CaseSummaryRow = Omit<Case, 'sections' | 'data_key' | 'data_key_id'>

/** A page of the organisation's cases, newest first, each with its parties and consents: one statement. */
export async function listCases(
  db: Db,
  filter: CaseFilter,
): Promise<(CaseSummaryRow & { parties: CaseParty[]; consents: Consent[] })[]> {
  let query = db
    .selectFrom('cases')
    .innerJoin('case_parties as own', 'own.case_id', 'cases.id')
    .select(summaryColumns)
    .select((eb) => [partiesJson(eb).as('parties'), consentsJson(eb).as('consents')])
    .where('own.organisation_id', '=', filter.organisationId)
  if (filter.step) query = query.where('cases.step', '=', filter.step)
  if (filter.updatedSince) query = query.where('cases.updated_at', '>=', new Date(filter.updatedSince))
  if (filter.after) query = query.where('cases.seq', '<', filter.after)
  if (filter.overdueAt) query = query.where('cases.step_due_at', '<', filter.overdueAt)
  if (filter.withinDeadlineAt) {
    const at = filter.withinDeadlineAt
    query = query.where((eb) => eb.or([eb('cases.step_due_at', 'is', null), eb('cases.step_due_at', '>=', at)]))
  }
  const { counterpart } = filter
  if (counterpart) {
    query = query.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('case_parties as other')
          .select('other.case_id')
          .whereRef('other.case_id', '=', 'cases.id')
          .where('other.organisation_id', '=', counterpart),
      ),
    )
  }
  const rows = await query
    .orderBy('cases.seq', 'desc')
    .limit(filter.limit + 1)
    .execute()
  return rows.map((row) => ({
    ...row,
    parties: partiesFromJson(row.parties),
    consents: consentsFromJson(row.consents),
  }))
}

export async function partiesOf(db: Db, caseIds: string[]): Promise<Map<string, CaseParty[]>> {
  const byCase = new Map<string, CaseParty[]>(caseIds.map((id) => [id, []]))
  if (caseIds.length === 0) return byCase
  const rows = await db
    .selectFrom('case_parties')
    .selectAll()
    .where(isAnyUuid('case_id', caseIds))
    .orderBy('since')
    .orderBy('organisation_id')
    .execute()
  for (const row of rows) byCase.get(row.case_id)?.push(row)
  return byCase
}

/** The organisations that are parties to the case now. */
export async function partyIds(db: Db, caseId: string): Promise<string[]> {
  const rows = await db.selectFrom('case_parties').select('organisation_id').where('case_id', '=', caseId).execute()
  return rows.map((row) => row.organisation_id)
}

export async function addParty(trx: Transaction<DB>, caseId: string, organisationId: string, role: CaseParty['role']) {
  await trx
    .insertInto('case_parties')
    .values({ case_id: caseId, organisation_id: organisationId, role })
    .onConflict((conflict) => conflict.columns(['case_id', 'organisation_id']).doNothing())
    .execute()
}

/** A receiving partner that declined takes no further part; its earlier steps stay in the audit trail. */
export async function removeReceivingParty(trx: Transaction<DB>, caseId: string, organisationId: string) {
  await trx
    .deleteFrom('case_parties')
    .where('case_id', '=', caseId)
    .where('organisation_id', '=', organisationId)
    .where('role', '=', 'receiving')
    .execute()
}

export interface CaseChange {
  profile?: CaseProfile
  sections?: CaseSections
  receiving_organisation_id?: string
  lead_organisation_id?: string
  step?: { step: string; previous: string; enteredAt: Date; dueAt: Date | null }
  /** Another version of the procedure; the case stays at its step, due anew. */
  procedure?: { id: string; version: number; dueAt: Date | null }
  at: Date
}

/**
 * Applies a change to a locked case and moves it to its next version. `putOff` writes it with the
 * rows the transaction appends, at its end, when it buffers them: the change is then the last of
 * the case in the transaction, and nothing in it reads the case again.
 */
export async function changeCase(
  trx: Transaction<DB>,
  current: Case,
  change: CaseChange,
  { putOff = false } = {},
): Promise<Case> {
  const sections = change.sections
  const values = {
    ...(change.receiving_organisation_id ? { receiving_organisation_id: change.receiving_organisation_id } : {}),
    ...(change.lead_organisation_id ? { lead_organisation_id: change.lead_organisation_id } : {}),
    ...(change.step
      ? {
          step: change.step.step,
          previous_step: change.step.previous,
          step_entered_at: change.step.enteredAt,
          step_due_at: change.step.dueAt,
        }
      : {}),
    ...(change.procedure
      ? { sop_id: change.procedure.id, sop_version: change.procedure.version, step_due_at: change.procedure.dueAt }
      : {}),
    updated_at: change.at,
  }
  const update = trx
    .updateTable('cases')
    .set({
      ...values,
      ...(change.profile ? { profile: json(change.profile) } : {}),
      ...(sections
        ? {
            sections: json(
              current.data_key === null ? sections : sealJson(caseKey(current), 'cases.sections', current.id, sections),
            ),
          }
        : {}),
      version: sql`version + 1`,
    })
    .where('id', '=', current.id)
  const appends = appendsOf(trx)
  if (appends?.caseChanges.has(current.id)) {
    throw new Error(`case ${current.id} changed again after a change put off to the end of its transaction`)
  }
  if (putOff && appends) {
    appends.caseChanges.set(current.id, update)
    return {
      ...current,
      ...values,
      ...(change.profile ? { profile: change.profile } : {}),
      version: current.version + 1,
      sections: sections ?? current.sections,
    }
  }
  const updated = await update.returningAll().executeTakeFirstOrThrow()
  return { ...updated, sections: sections ?? current.sections }
}

export async function consentsOfCase(db: Db, caseId: string): Promise<Consent[]> {
  const rows = await consentsWithKeys(db)
    .where('consents.case_id', '=', caseId)
    .orderBy('consents.recorded_at', 'desc')
    .orderBy('consents.id', 'desc')
    .execute()
  return rows.map(openConsentRow)
}

/** Consents with their case's data key, loaded in the same row, to open their free text. */
export function consentsWithKeys(db: Db) {
  return db
    .selectFrom('consents')
    .innerJoin('cases', 'cases.id', 'consents.case_id')
    .selectAll('consents')
    .select(['cases.data_key_id as case_data_key_id', 'cases.data_key as case_data_key'])
}

export function openConsentRow({
  case_data_key_id,
  case_data_key,
  ...row
}: ConsentRow & { case_data_key_id: string | null; case_data_key: Sealed | null }): Consent {
  return openConsent({ id: row.case_id, data_key_id: case_data_key_id, data_key: case_data_key }, row)
}

/**
 * A consent with its free text opened by its case's key: the guardian, the interpreter, the
 * child's views, the reason of a withdrawal. An erased case's consents keep none of it.
 */
export function openConsent(keyColumns: CaseKeyColumns, row: ConsentRow): Consent {
  if (keyColumns.data_key === null) {
    // No key: a case still in the clear (its values pass as they are), or an erased one (nothing opens).
    const text = (value: string | null) => (value === null || sealedText(value) ? null : value)
    return {
      ...row,
      guardian: isSealed(row.guardian) ? null : row.guardian,
      interpreter: isSealed(row.interpreter) ? { used: false } : row.interpreter,
      child_views: text(row.child_views),
      withdrawal_reason: text(row.withdrawal_reason),
    }
  }
  const key = caseKey(keyColumns)
  return {
    ...row,
    guardian: row.guardian === null ? null : openJson(key, 'consents.guardian', row.id, row.guardian),
    interpreter: openJson(key, 'consents.interpreter', row.id, row.interpreter),
    child_views: row.child_views === null ? null : openText(key, 'consents.child_views', row.id, row.child_views),
    withdrawal_reason:
      row.withdrawal_reason === null
        ? null
        : openText(key, 'consents.withdrawal_reason', row.id, row.withdrawal_reason),
  }
}

/** The free text of a new consent, sealed with its case's key for its row. */
export function sealConsentText(
  keyColumns: CaseKeyColumns,
  consentId: string,
  text: { guardian: Consent['guardian']; interpreter: Consent['interpreter']; child_views: string | null },
) {
  const key = caseKey(keyColumns)
  return {
    guardian: text.guardian === null ? null : json(sealJson(key, 'consents.guardian', consentId, text.guardian)),
    interpreter: json(sealJson(key, 'consents.interpreter', consentId, text.interpreter)),
    child_views: text.child_views === null ? null : sealText(key, 'consents.child_views', consentId, text.child_views),
  }
}

/** The reason of a withdrawal, sealed with its case's key for the consent's row. */
export function sealWithdrawalReason(keyColumns: CaseKeyColumns, consentId: string, reason: string): string {
  return sealText(caseKey(keyColumns), 'consents.withdrawal_reason', consentId, reason)
}
