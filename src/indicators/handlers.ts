import type { FastifyRequest } from 'fastify'
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import type { DB } from '../db/schema.js'
import { callerOf, requireRole } from '../http/authentication.js'
import type { Handlers, OperationTypes } from '../http/contract.js'
import { notFound, ProblemError } from '../http/problem.js'
import { indicatorChart } from './chart.js'
import type { DisclosureRules } from './disclosure-control.js'
import { type IndicatorReport, indicatorCsv, indicatorReport } from './report.js'

type ReportQuery = OperationTypes<'getIndicatorChart'>['Querystring']

export interface IndicatorDependencies {
  db: Kysely<DB>
  clock: Clock
  rules: DisclosureRules
}

/**
 * The indicators: aggregates with disclosure control, no personal data, so no audit record. For
 * those who coordinate or oversee (a supervisor, the data protection officer, an auditor) and the
 * hub's admin, who reports to the donor.
 */
export function indicatorHandlers({ db, clock, rules }: IndicatorDependencies) {
  /** The report a caller asks for, by the same roles and the same parameters for the tables and their charts. */
  async function reportFor(request: FastifyRequest<{ Querystring: ReportQuery }>): Promise<IndicatorReport> {
    const caller = callerOf(request)
    const hubAdmin = caller.organisation.kind === 'hub_operator' && caller.principal.roles.includes('admin')
    if (!hubAdmin) requireRole(request, 'supervisor', 'dpo', 'auditor')
    const now = clock.now()
    const to = request.query.to ?? now.toISOString().slice(0, 10)
    const from = request.query.from ?? `${Number(to.slice(0, 4)) - 1}-01-01`
    if (from > to) {
      throw new ProblemError(400, '`from` comes after `to`.', {
        code: 'validation',
        extras: { errors: [{ parameter: 'from', detail: 'is after to' }] },
      })
    }
    if (Number(to.slice(0, 4)) - Number(from.slice(0, 4)) > 20) {
      throw new ProblemError(400, 'The indicators cover at most twenty years at once.', {
        code: 'validation',
        extras: { errors: [{ parameter: 'from', detail: 'is more than twenty years before to' }] },
      })
    }
    return indicatorReport(
      db,
      {
        from,
        to,
        grain: request.query.period ?? 'year',
        corridor: request.query.corridor,
        organisationId: request.query.organisation,
      },
      rules,
      now,
    )
  }

  return {
    async getIndicators(request, reply) {
      const report = await reportFor(request)
      if (request.query.format === 'csv') {
        reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="indicators-${report.from}-${report.to}.csv"`)
        return reply.send(indicatorCsv(report)) as never
      }
      return report
    },

    async getIndicatorChart(request, reply) {
      const report = await reportFor(request)
      const table = report.tables.find((candidate) => candidate.name === request.params.indicator)
      if (!table) throw notFound('indicator', request.params.indicator)
      reply
        .type('image/svg+xml; charset=utf-8')
        .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
      return indicatorChart(report, table)
    },
  } satisfies Partial<Handlers>
}
