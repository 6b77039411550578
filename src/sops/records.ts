import { readFileSync } from 'node:fs'
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { DataCategory, RecordFigures } from '../db/schema.js'
import type { AssessmentKind, RecordKind } from './definition.js'

/** A kind of case record: what it holds (its JSON Schema) and the category of personal data it is. */
export interface RecordKindDefinition {
  category: DataCategory
  title: string
  schema: object
}

interface RecordKindsFile {
  records: Record<RecordKind, RecordKindDefinition>
  assessments: Record<AssessmentKind, RecordKindDefinition>
}

/** The record kinds, from `record-kinds.json`: data beside the procedures that read them. */
export const recordKinds = JSON.parse(
  readFileSync(new URL('./record-kinds.json', import.meta.url), 'utf8'),
) as RecordKindsFile

export type AnyRecordKind = keyof RecordKindsFile['records'] | 'assessment'

/** The definition of a record by its kind, and for an assessment by the assessment it is. */
export function recordKindOf(kind: AnyRecordKind, assessment: AssessmentKind | null): RecordKindDefinition {
  const definition =
    kind === 'assessment' ? recordKinds.assessments[assessment as AssessmentKind] : recordKinds.records[kind]
  if (!definition) throw new Error(`no record kind ${kind}${assessment ? `/${assessment}` : ''}`)
  return definition
}

const ajv = addFormats.default(new Ajv2020({ allErrors: true, strict: true }))
const validators = new Map<RecordKindDefinition, ValidateFunction>()

/** What in a record's data departs from its kind's schema, with JSON pointers into `data`; empty when it matches. */
export function recordDataErrors(definition: RecordKindDefinition, data: unknown): ErrorObject[] {
  let validate = validators.get(definition)
  if (!validate) {
    validate = ajv.compile(definition.schema)
    validators.set(definition, validate)
  }
  return validate(data) ? [] : (validate.errors ?? [])
}

/**
 * The non-identifying figures a record contributes to statistics, kept in clear beside its data:
 * the three dimensions of a sustainability score and the coded reason of a closure report.
 */
export function figuresOf(kind: string, data: Record<string, unknown>): RecordFigures | null {
  if (kind === 'sustainability_score') {
    const { economic, social, psychosocial } = data
    if (typeof economic === 'number' && typeof social === 'number' && typeof psychosocial === 'number') {
      return { economic, social, psychosocial }
    }
  }
  if (kind === 'closure_report' && typeof data.reason === 'string') return { reason: data.reason }
  return null
}
