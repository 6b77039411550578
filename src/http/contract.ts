import { readFileSync } from 'node:fs'
import type { ErrorObject, SchemaValidateFunction, ValidateFunction } from 'ajv'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods, RouteHandlerMethod } from 'fastify'
import type { operations } from '../../openapi/dist/types.js'
import { ProblemError } from './problem.js'

/** The bundled contract: the single source of routes, validation and documentation. */
export const contract = JSON.parse(
  readFileSync(new URL('../../openapi/dist/openapi.json', import.meta.url), 'utf8'),
) as OpenApiDocument

const CONTRACT_ID = 'openapi.json'
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const

export type OperationId = keyof operations
type Operation<K extends OperationId> = operations[K]
type JsonContent<R> = R extends { content: { 'application/json': infer B } } ? B : never
type Absent<T> = [T] extends [undefined] ? unknown : NonNullable<T>

export interface OperationTypes<K extends OperationId> {
  Params: Absent<Operation<K>['parameters']['path']>
  Querystring: Absent<Operation<K>['parameters']['query']>
  Body: JsonContent<NonNullable<Operation<K>['requestBody']>>
}

/** A response's body: its JSON, or the bytes or text of a document (HTML, PDF) where it has no JSON. */
type Content<R> = R extends { content: infer C }
  ? 'application/json' extends keyof C
    ? JsonContent<R>
    : string | Buffer
  : never

/** What a handler answers with: the body of the operation's 200, 201 or 202 response. */
export type SuccessBody<K extends OperationId> = Content<
  Operation<K>['responses'][Extract<keyof Operation<K>['responses'], 200 | 201 | 202>]
>

export type Handler<K extends OperationId> = (
  request: FastifyRequest<OperationTypes<K>>,
  reply: FastifyReply,
) => Promise<SuccessBody<K>>

export type Handlers = { [K in OperationId]: Handler<K> }

declare module 'fastify' {
  interface FastifyContextConfig {
    operationId?: string
    /** The operation declares `security: []`: no API key needed. */
    public?: boolean
  }
}

/** How deeply any request input may nest objects and arrays; the contract's own shapes need fewer than ten. */
export const MAX_INPUT_DEPTH = 32
/** What a free-form object of the contract (`additionalProperties: true`) may hold at most. */
export const FREE_FORM_LIMITS = { depth: 8, bytes: 65_536 }

/** Validators compiled from the contract: bodies strictly, parameters with type coercion from strings. */
export function createValidators() {
  const options = { allErrors: true, strict: true, allowUnionTypes: true, useDefaults: true } as const
  const body = withContract(new Ajv2020({ ...options, coerceTypes: false }))
  const parameters = withContract(new Ajv2020({ ...options, coerceTypes: 'array' }))
  return { body, parameters }
}

function withContract(ajv: Ajv2020): Ajv2020 {
  addFormats.default(ajv)
  ajv.addKeyword('example')
  ajv.addKeyword({ keyword: 'freeForm', schemaType: 'boolean', errors: true, validate: validateFreeForm })
  ajv.addSchema({ $id: CONTRACT_ID, $defs: pointIntoContract(contract.components.schemas ?? {}) })
  return ajv
}

/**
 * The request validators of the contract's routes, compiled once per process: they depend on the
 * contract alone, and compiling them takes longer than anything else in building the app.
 */
let requestValidators:
  | { ajv: ReturnType<typeof createValidators>; byRoute: Map<string, ReturnType<typeof storableAndValid>> }
  | undefined

function requestValidator(method: string, url: string, httpPart: string | undefined, schema: object) {
  requestValidators ??= { ajv: createValidators(), byRoute: new Map() }
  const key = `${method} ${url} ${httpPart}`
  let validate = requestValidators.byRoute.get(key)
  if (!validate) {
    const ajv = httpPart === 'body' ? requestValidators.ajv.body : requestValidators.ajv.parameters
    validate = storableAndValid(ajv.compile(schema))
    requestValidators.byRoute.set(key, validate)
  }
  return validate
}

/** Registers one route per contract operation, and a 405 for every other method on a contract path. */
export function registerOperations(app: FastifyInstance, handlers: Handlers): void {
  const operationIds = new Set<string>()
  app.setValidatorCompiler(({ schema, method, url, httpPart }) => requestValidator(method, url, httpPart, schema))

  for (const [path, pathItem] of Object.entries(contract.paths)) {
    const url = path.replaceAll(/\{(\w+)\}/g, ':$1')
    const allowed: string[] = []
    for (const method of METHODS) {
      const operation = pathItem[method]
      if (!operation) continue
      const handler = (handlers as Record<string, unknown>)[operation.operationId]
      if (typeof handler !== 'function') {
        throw new Error(`contract operation ${operation.operationId} (${method.toUpperCase()} ${path}) has no handler`)
      }
      operationIds.add(operation.operationId)
      allowed.push(method.toUpperCase())
      app.route({
        method: method.toUpperCase() as HTTPMethods,
        url,
        schema: routeSchema(pathItem, operation),
        config: { operationId: operation.operationId, public: operation.security?.length === 0 },
        handler: handler as RouteHandlerMethod,
      })
    }
    if (allowed.includes('GET')) allowed.push('HEAD')
    const others = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'].filter((m) => !allowed.includes(m))
    if (others.length > 0) {
      app.route({
        method: others as HTTPMethods[],
        url,
        config: { public: true },
        handler: async (request) => {
          throw new ProblemError(405, `${request.method} is not allowed on ${path}.`, {
            headers: { allow: allowed.join(', ') },
          })
        },
      })
    }
  }
  const orphans = Object.keys(handlers).filter((id) => !operationIds.has(id))
  if (orphans.length > 0) throw new Error(`handlers without a contract operation: ${orphans.join(', ')}`)
}

function routeSchema(pathItem: PathItem, operation: OperationObject) {
  const parameters = [...(pathItem.parameters ?? []), ...(operation.parameters ?? [])].map(resolveParameter)
  const schema: Record<string, unknown> = {}
  const path = parameterSchema(parameters, 'path')
  const query = parameterSchema(parameters, 'query')
  if (path) schema.params = path
  if (query) schema.querystring = query
  const body = operation.requestBody?.content?.['application/json']?.schema
  if (body) schema.body = pointIntoContract(body)
  return schema
}

function parameterSchema(parameters: ParameterObject[], location: 'path' | 'query') {
  const selected = parameters.filter((p) => p.in === location)
  if (selected.length === 0) return undefined
  return {
    type: 'object',
    additionalProperties: false,
    properties: Object.fromEntries(selected.map((p) => [p.name, pointIntoContract(p.schema)])),
    required: selected.filter((p) => p.required).map((p) => p.name),
  }
}

function resolveParameter(parameter: ParameterObject | { $ref: string }): ParameterObject {
  if (!('$ref' in parameter)) return parameter
  const name = parameter.$ref.replace('#/components/parameters/', '')
  const resolved = contract.components.parameters?.[name]
  if (!resolved) throw new Error(`unresolved parameter ${parameter.$ref}`)
  return resolved
}

/**
 * Wraps a contract validator with the checks every input needs whatever its schema says, so that
 * no handler sees a value the database or the canonical JSON of a hash cannot take: text with a
 * NUL character (PostgreSQL text and jsonb refuse it) or a lone UTF-16 surrogate (not Unicode),
 * a number that is not finite (`1e309` in JSON, `Infinity` in a query), and nesting deep enough
 * to exhaust the stack of a recursive reader. They run before the schema, which would otherwise
 * walk a 10,000-deep body, and again after it, on the numbers it coerced from query strings.
 */
function storableAndValid(validate: ValidateFunction) {
  const check = (data: unknown): boolean => {
    const faults = unstorable(data)
    if (faults.length === 0 && validate(data)) {
      const coerced = unstorable(data)
      check.errors = coerced.length > 0 ? coerced : null
    } else {
      check.errors = faults.length > 0 ? faults : (validate.errors ?? [])
    }
    return check.errors === null
  }
  check.errors = null as ErrorObject[] | null
  return check
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

function textFault(text: string): string | undefined {
  if (text.includes('\u0000')) return 'contains a NUL character (\\u0000), which cannot be stored'
  if (LONE_SURROGATE.test(text)) return 'contains a lone UTF-16 surrogate, which is not Unicode text'
  return undefined
}

/** Every unstorable value in an input (at most 20), as Ajv errors whose path is a JSON pointer. */
function unstorable(value: unknown, path = '', depth = 0, found: ErrorObject[] = []): ErrorObject[] {
  const fault = (instancePath: string, message: string) =>
    found.push({ instancePath, schemaPath: '#', keyword: 'storable', params: {}, message })
  if (found.length >= 20) return found
  if (typeof value === 'string') {
    const message = textFault(value)
    if (message) fault(path, message)
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value)) fault(path, 'must be a finite number')
  } else if (value !== null && typeof value === 'object') {
    if (depth >= MAX_INPUT_DEPTH) {
      fault(path, `nests objects and arrays deeper than ${MAX_INPUT_DEPTH} levels`)
      return found
    }
    for (const [key, item] of Object.entries(value)) {
      const at = `${path}/${escapePointer(key)}`
      const message = textFault(key)
      if (message) fault(at, `has a name that ${message}`)
      else unstorable(item, at, depth + 1, found)
    }
  }
  return found
}

const validateFreeForm: SchemaValidateFunction = (enabled: boolean, data: unknown) => {
  const message = enabled ? freeFormFault(data) : undefined
  validateFreeForm.errors = message ? [{ keyword: 'freeForm', params: {}, message }] : []
  return message === undefined
}

/** Why a free-form object is too deep or too large, if it is; its depth is checked before it is measured. */
function freeFormFault(data: unknown): string | undefined {
  if (depthExceeds(data, FREE_FORM_LIMITS.depth)) {
    return `nests objects and arrays deeper than ${FREE_FORM_LIMITS.depth} levels`
  }
  if (Buffer.byteLength(JSON.stringify(data) ?? '') > FREE_FORM_LIMITS.bytes) {
    return `holds more than ${FREE_FORM_LIMITS.bytes} bytes of JSON`
  }
  return undefined
}

function depthExceeds(value: unknown, limit: number): boolean {
  if (value === null || typeof value !== 'object') return false
  if (limit === 0) return true
  return Object.values(value).some((item) => depthExceeds(item, limit - 1))
}

function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1')
}

/** Rewrites `#/components/schemas/X` references to the copy of the contract's schemas that Ajv holds. */
function pointIntoContract(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(pointIntoContract)
  if (schema === null || typeof schema !== 'object') return schema
  const rewritten = Object.fromEntries(
    Object.entries(schema).map(([key, value]) =>
      key === '$ref' && typeof value === 'string'
        ? [key, value.replace(/^#\/components\/schemas\//, `${CONTRACT_ID}#/$defs/`)]
        : [key, pointIntoContract(value)],
    ),
  )
  // Free-form objects get the limits the contract cannot state in JSON Schema.
  return 'additionalProperties' in schema && schema.additionalProperties === true
    ? { ...rewritten, freeForm: true }
    : rewritten
}

/** Validates a response body against the schema the contract gives for that operation and status. */
export function responseValidator(validators: ReturnType<typeof createValidators>) {
  const cache = new Map<string, ValidateFunction | null>()
  return (operationId: string, status: number, contentType: string, body: unknown): ErrorObject[] | null => {
    const key = `${operationId} ${status} ${contentType}`
    if (!cache.has(key)) {
      const operation = findOperation(operationId)
      const response = operation.responses[String(status)]
      const resolved = response && '$ref' in response ? resolveResponse(response.$ref) : response
      const schema = resolved?.content?.[contentType]?.schema
      cache.set(key, schema ? validators.body.compile(pointIntoContract(schema) as object) : null)
    }
    const validate = cache.get(key)
    if (validate === null || validate === undefined) {
      return [{ message: `the contract has no ${status} ${contentType} response for ${operationId}` } as ErrorObject]
    }
    return validate(body) ? null : (validate.errors ?? [])
  }
}

function findOperation(operationId: string): OperationObject {
  for (const pathItem of Object.values(contract.paths)) {
    for (const method of METHODS) {
      if (pathItem[method]?.operationId === operationId) return pathItem[method]
    }
  }
  throw new Error(`no operation ${operationId} in the contract`)
}

function resolveResponse(ref: string): ResponseObject | undefined {
  return contract.components.responses?.[ref.replace('#/components/responses/', '')]
}

interface ParameterObject {
  name: string
  in: 'path' | 'query' | 'header' | 'cookie'
  required?: boolean
  schema: unknown
}
interface ResponseObject {
  content?: Record<string, { schema?: unknown }>
}
interface OperationObject {
  operationId: string
  security?: unknown[]
  parameters?: (ParameterObject | { $ref: string })[]
  requestBody?: { content?: Record<string, { schema?: unknown }> }
  responses: Record<string, ResponseObject | { $ref: string }>
}
type PathItem = { parameters?: (ParameterObject | { $ref: string })[] } & {
  [M in (typeof METHODS)[number]]?: OperationObject
}
export interface OpenApiDocument {
  openapi: string
  paths: Record<string, PathItem>
  components: {
    parameters?: Record<string, ParameterObject>
    responses?: Record<string, ResponseObject>
    schemas?: Record<string, unknown>
  }
  [key: string]: unknown
}
