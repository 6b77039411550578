/**
 * Compares the contract (openapi/dist/openapi.json) with the last released one
 * (openapi/released/v1.json) and fails on a breaking change that CHANGELOG.md does not declare.
 *
 * A breaking change is one an existing client could trip over: an operation, a schema, a
 * property or an enum value removed; a parameter or property that becomes required, or stops
 * being required; a parameter added as required; a type changed. Adding anything optional is not.
 * Each change is named by a line such as `removed operation GET /v1/me`; the change is declared
 * when that line appears, in backticks, under "## Unreleased" in CHANGELOG.md.
 *
 * No maintained npm package diffs OpenAPI 3.1 offline (openapi-diff stops at 3.0; Optic's CLI
 * needs the network), so this checks the rules above and nothing more.
 *
 * Usage: tsx scripts/contract-diff.ts [released.json] [current.json] [CHANGELOG.md]
 */
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

type Json = Record<string, unknown>
type Schema = {
  $ref?: string
  type?: string | string[]
  enum?: unknown[]
  required?: string[]
  properties?: Record<string, Schema>
  items?: Schema
  allOf?: Schema[]
}
interface Document {
  info?: { version?: string }
  paths: Record<string, Record<string, Json>>
  components?: { schemas?: Record<string, Schema>; parameters?: Record<string, Json> }
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch']

/** Every breaking change from `released` to `current`, each as one line. */
export function breakingChanges(released: Document, current: Document): string[] {
  const changes: string[] = []
  for (const [path, item] of Object.entries(released.paths)) {
    for (const method of METHODS) {
      const before = item[method]
      if (!before) continue
      const name = `${method.toUpperCase()} ${path}`
      const after = current.paths[path]?.[method]
      if (!after) {
        changes.push(`removed operation ${name}`)
        continue
      }
      const oldParams = parameters(released, item, before)
      const newParams = parameters(current, current.paths[path] ?? {}, after)
      for (const [key, parameter] of oldParams) {
        const now = newParams.get(key)
        if (!now) changes.push(`removed parameter ${key} of ${name}`)
        else if (!parameter.required && now.required) changes.push(`parameter ${key} of ${name} became required`)
        else {
          changes.push(
            ...schemaChanges(
              released,
              current,
              parameter.schema ?? {},
              now.schema ?? {},
              `parameter ${key} of ${name}`,
            ),
          )
        }
      }
      for (const [key, parameter] of newParams) {
        if (!oldParams.has(key) && parameter.required) changes.push(`added required parameter ${key} to ${name}`)
      }
      const oldStatuses = Object.keys((before.responses as Json | undefined) ?? {}).filter((s) => s.startsWith('2'))
      const newStatuses = Object.keys((after.responses as Json | undefined) ?? {})
      for (const status of oldStatuses) {
        if (!newStatuses.includes(status)) changes.push(`removed response ${status} of ${name}`)
      }
    }
  }
  const oldSchemas = released.components?.schemas ?? {}
  const newSchemas = current.components?.schemas ?? {}
  for (const [name, schema] of Object.entries(oldSchemas)) {
    const now = newSchemas[name]
    if (!now) changes.push(`removed schema ${name}`)
    else changes.push(...schemaChanges(released, current, schema, now, `schema ${name}`))
  }
  return [...new Set(changes)]
}

type Parameter = { required?: boolean; schema?: Schema }

function parameters(document: Document, item: Json, operation: Json): Map<string, Parameter> {
  const all = [...((item.parameters as Json[]) ?? []), ...((operation.parameters as Json[]) ?? [])]
  const map = new Map<string, Parameter>()
  for (const raw of all) {
    const parameter = (raw.$ref ? resolve(document, raw.$ref as string) : raw) as Json
    map.set(`${parameter.in}:${parameter.name}`, parameter as Parameter)
  }
  return map
}

function resolve(document: Document, ref: string): unknown {
  return ref
    .replace(/^#\//, '')
    .split('/')
    .reduce<unknown>(
      (node, part) => (node as Json | undefined)?.[part.replaceAll('~1', '/').replaceAll('~0', '~')],
      document,
    )
}

/** A schema with its `$ref` followed and its `allOf` parts merged: enough to compare properties. */
function flatten(document: Document, schema: Schema, seen = new Set<string>()): Schema {
  if (schema.$ref) {
    if (seen.has(schema.$ref)) return {}
    seen.add(schema.$ref)
    return flatten(document, (resolve(document, schema.$ref) as Schema) ?? {}, seen)
  }
  if (!schema.allOf) return schema
  const parts = schema.allOf.map((part) => flatten(document, part, seen))
  return {
    ...schema,
    allOf: undefined,
    properties: Object.assign({}, schema.properties, ...parts.map((part) => part.properties ?? {})),
    required: [...(schema.required ?? []), ...parts.flatMap((part) => part.required ?? [])],
  }
}

function schemaChanges(
  released: Document,
  current: Document,
  oldRaw: Schema,
  newRaw: Schema,
  where: string,
  depth = 0,
): string[] {
  const before = flatten(released, oldRaw)
  const after = flatten(current, newRaw)
  const changes: string[] = []
  const types = (schema: Schema) => [schema.type ?? []].flat().sort().join(',')
  if (before.type !== undefined && after.type !== undefined && types(before) !== types(after)) {
    changes.push(`${where} changed type from ${types(before)} to ${types(after)}`)
  }
  if (before.enum) {
    for (const value of before.enum) {
      if (!after.enum?.includes(value)) changes.push(`removed enum value ${JSON.stringify(value)} of ${where}`)
    }
  }
  const oldRequired = new Set(before.required ?? [])
  const newRequired = new Set(after.required ?? [])
  for (const name of oldRequired) {
    if (!newRequired.has(name) && after.properties?.[name]) changes.push(`${where}: ${name} is no longer required`)
  }
  for (const name of newRequired) {
    if (!oldRequired.has(name) && before.properties?.[name]) changes.push(`${where}: ${name} became required`)
  }
  // Only inline sub-schemas are compared here: a $ref'd one is compared as a schema of its own.
  if (depth < 6) {
    for (const [name, property] of Object.entries(before.properties ?? {})) {
      const now = after.properties?.[name]
      if (!now) changes.push(`removed property ${name} of ${where}`)
      else if (!property.$ref && !now.$ref) {
        changes.push(...schemaChanges(released, current, property, now, `${where}.${name}`, depth + 1))
      }
    }
    if (before.items && after.items && !before.items.$ref && !after.items.$ref) {
      changes.push(...schemaChanges(released, current, before.items, after.items, `${where}[]`, depth + 1))
    }
  }
  return changes
}

/** The lines in backticks under "## Unreleased" of the changelog. */
export function declaredChanges(changelog: string): Set<string> {
  const unreleased = /^## Unreleased\b[^\n]*\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(changelog)?.[1] ?? ''
  return new Set([...unreleased.matchAll(/`([^`]+)`/g)].map((match) => match[1] as string))
}

export function undeclaredBreakingChanges(released: Document, current: Document, changelog: string): string[] {
  const declared = declaredChanges(changelog)
  return breakingChanges(released, current).filter((change) => !declared.has(change))
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [
    releasedFile = 'openapi/released/v1.json',
    currentFile = 'openapi/dist/openapi.json',
    changelogFile = 'CHANGELOG.md',
  ] = process.argv.slice(2)
  const released = JSON.parse(readFileSync(releasedFile, 'utf8')) as Document
  const current = JSON.parse(readFileSync(currentFile, 'utf8')) as Document
  const undeclared = undeclaredBreakingChanges(released, current, readFileSync(changelogFile, 'utf8'))
  const all = breakingChanges(released, current)
  if (undeclared.length > 0) {
    console.error(
      `The contract has breaking changes since the released ${released.info?.version ?? 'contract'} (${releasedFile}) that ${changelogFile} does not declare.\n` +
        'Make the change additive instead (see "Versioning" in README.md), or, if it must break, list each line below,\n' +
        `in backticks, under "## Unreleased" → "### Breaking" in ${changelogFile}:\n` +
        undeclared.map((change) => `- \`${change}\``).join('\n'),
    )
    process.exit(1)
  }
  console.log(
    `contract: compared with the released ${released.info?.version}; ${all.length} breaking change(s), all declared in ${changelogFile}`,
  )
}
