import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { DB } from '../db/schema.js'

export type Grain = 'year' | 'quarter' | 'month'

/** What the indicators count: a half-open range of days, a period width, and optional filters. */
export interface IndicatorScope {
  /** The first day counted, `YYYY-MM-DD`. */
  from: string
  /** The day after the last day counted, `YYYY-MM-DD`. */
  until: string
  grain: Grain
  sendingCountry?: string | undefined
  receivingCountry?: string | undefined
  organisationId?: string | undefined
  /** A consent counts when it is active now: a withdrawal takes a case out of every figure at once. */
  now: Date
  /** Each dimension of a sustainability score at or above this makes a reintegration sustainable. */
  sustainableFrom: number
}

export interface CaseCountRow {
  indicator:
    | 'beneficiaries_served'
    | 'minors_supported'
    | 'retrafficked'
    | 'reintegrations_scored'
    | 'sustainable_reintegrations'
  corridor: string
  period: string
  cases: number
}

export interface DurationRow {
  measure: 'acknowledge' | 'deadline' | 'step'
  row_label: string
  column_label: string
  cases: number
  median_hours: number | null
  p90_hours: number | null
  within: number | null
}

export interface TrainingRow {
  organiser: string
  period: string
  staff: number
  initiatives: number
  centres: number
}

/**
 * The cases that count: an active consent covers the `statistics` purpose; the corridor is the
 * sending organisation's country and the country of return. Only non-personal columns are read:
 * the profile's routing facts, steps, transitions, timestamps and organisations.
 */
function eligibleCases(scope: IndicatorScope): RawBuilder<unknown> {
  return sql`eligible as (
    select c.id, o.country || '-' || (c.profile->>'country_of_return') as corridor, c.created_at, c.profile
    from cases c
    join organisations o on o.id = c.sending_organisation_id
    where exists (
        select 1 from consents k cross join lateral jsonb_array_elements(k.provisions) p
        where k.case_id = c.id and k.withdrawn_at is null and (k.expires_at is null or k.expires_at > ${scope.now})
          and p->'purposes' @> '["statistics"]'::jsonb)
      and (${scope.sendingCountry ?? null}::text is null or o.country = ${scope.sendingCountry ?? null}::text)
      and (${scope.receivingCountry ?? null}::text is null or c.profile->>'country_of_return' = ${scope.receivingCountry ?? null}::text)
      and (${scope.organisationId ?? null}::uuid is null or exists (
        select 1 from case_parties p where p.case_id = c.id and p.organisation_id = ${scope.organisationId ?? null}::uuid))
  )`
}

function period(scope: IndicatorScope, at: RawBuilder<unknown>): RawBuilder<string> {
  return sql<string>`to_char(date_trunc(${scope.grain}::text, ${at}), 'YYYY-MM-DD')`
}

/** Counts of cases per indicator, corridor and period, in one statement. */
export async function caseCounts(db: Kysely<DB>, scope: IndicatorScope): Promise<CaseCountRow[]> {
  const from = sql`${scope.from}::date::timestamp at time zone 'UTC'`
  const until = sql`${scope.until}::date::timestamp at time zone 'UTC'`
  const utc = (column: string) => sql`(${sql.ref(column)} at time zone 'UTC')`
  const result = await sql<CaseCountRow>`
    with ${eligibleCases(scope)},
    events as (
      select 'beneficiaries_served' as indicator, e.id, e.corridor, e.created_at as at from eligible e
      union all
      select 'minors_supported', e.id, e.corridor, e.created_at from eligible e
      where e.profile->>'age_band' in ('under_14', '14_17')
        or e.profile->'vulnerabilities' @> '["child"]'::jsonb
        or e.profile->'vulnerabilities' @> '["unaccompanied_or_separated_child"]'::jsonb
        or extract(year from e.created_at at time zone 'UTC') - (e.profile->>'year_of_birth')::int <= 18
      union all
      select 'retrafficked', e.id, e.corridor, min(x.at) from eligible e
      join (
        select t.case_id, t.at from case_transitions t where t.to_step = 'retrafficking_suspected'
        union all
        select r.case_id, r.recorded_at from case_records r
        where r.kind = 'closure_report' and r.figures->>'reason' = 'retrafficked'
      ) x on x.case_id = e.id
      group by e.id, e.corridor
      union all
      select s.indicator, e.id, e.corridor, s.recorded_at from eligible e
      join lateral (
        select r.recorded_at, r.figures from case_records r
        where r.case_id = e.id and r.kind = 'sustainability_score' and r.figures is not null
        order by r.recorded_at desc limit 1
      ) last on true
      cross join lateral (
        select 'reintegrations_scored' as indicator, last.recorded_at
        union all
        select 'sustainable_reintegrations', last.recorded_at
        where (last.figures->>'economic')::numeric >= ${scope.sustainableFrom}
          and (last.figures->>'social')::numeric >= ${scope.sustainableFrom}
          and (last.figures->>'psychosocial')::numeric >= ${scope.sustainableFrom}
      ) s
    )
    select indicator, corridor, ${period(scope, utc('at'))} as period, count(distinct id)::int as cases
    from events
    where at >= ${from} and at < ${until}
    group by indicator, corridor, 3
    order by indicator, corridor, 3`.execute(db)
  return result.rows
}

/**
 * Durations in one statement: the time from a referral to its acknowledgement, whether each step
 * was left before its deadline (no deadline escalation fell due while the case was in it), and the
 * time spent in each step. A step's time runs from the move into it to the move out of it; the
 * step counts in the period it was left.
 */
export async function durations(db: Kysely<DB>, scope: IndicatorScope): Promise<DurationRow[]> {
  const from = sql`${scope.from}::date::timestamp at time zone 'UTC'`
  const until = sql`${scope.until}::date::timestamp at time zone 'UTC'`
  const result = await sql<DurationRow>`
    with ${eligibleCases(scope)},
    moves as (
      select t.case_id, e.corridor, t.from_step, t.to_step, t.at as left_at,
        lag(t.at) over (partition by t.case_id order by t.id) as entered_at
      from case_transitions t join eligible e on e.id = t.case_id
      where t.from_step is distinct from t.to_step
    ),
    exits as (
      select m.*, extract(epoch from (m.left_at - m.entered_at)) / 3600.0 as hours,
        ${period(scope, sql`(m.left_at at time zone 'UTC')`)} as period,
        not exists (
          select 1 from escalations x
          where x.kind = 'step_deadline' and x.case_id = m.case_id and x.step = m.from_step
            and x.due_at >= m.entered_at and x.due_at < m.left_at
        ) as in_time
      from moves m
      where m.from_step is not null and m.entered_at is not null and m.left_at >= ${from} and m.left_at < ${until}
    )
    select 'acknowledge' as measure, corridor as row_label, period as column_label, count(*)::int as cases,
      percentile_cont(0.5) within group (order by hours) as median_hours,
      percentile_cont(0.9) within group (order by hours) as p90_hours,
      null::int as within
    from exits where from_step = 'referral_sent' and to_step = 'acknowledged'
    group by corridor, period
    union all
    select 'deadline', corridor, period, count(*)::int, null, null, (count(*) filter (where in_time))::int
    from exits group by corridor, period
    union all
    select 'step', from_step, corridor, count(*)::int, percentile_cont(0.5) within group (order by hours), null, null
    from exits group by from_step, corridor
    order by 1, 2, 3`.execute(db)
  return result.rows.map((row) => ({
    ...row,
    median_hours: row.median_hours === null ? null : Number(row.median_hours),
    p90_hours: row.p90_hours === null ? null : Number(row.p90_hours),
  }))
}

/** The training registry's figures per organiser and period, in one statement. */
export async function trainingFigures(db: Kysely<DB>, scope: IndicatorScope): Promise<TrainingRow[]> {
  const organisation = scope.organisationId ?? null
  const result = await sql<TrainingRow>`
    select o.name as organiser, ${period(scope, sql`t.held_on::timestamp`)} as period,
      coalesce(sum(t.participants_total) filter (where t.kind in ('training', 'training_of_trainers')), 0)::int as staff,
      (count(*) filter (where cardinality(t.ngo_partner_ids) > 0))::int as initiatives,
      coalesce(sum(cardinality(t.improved_centre_ids)) filter (where t.kind = 'centre_improvement'), 0)::int as centres
    from trainings t join organisations o on o.id = t.organiser_organisation_id
    where t.held_on >= ${scope.from}::date and t.held_on < ${scope.until}::date
      and (${organisation}::uuid is null
        or t.organiser_organisation_id = ${organisation}::uuid
        or ${organisation}::uuid = any(t.participant_organisation_ids)
        or ${organisation}::uuid = any(t.ngo_partner_ids)
        or ${organisation}::uuid = any(t.improved_centre_ids))
    group by o.name, 2
    order by o.name, 2`.execute(db)
  return result.rows
}
