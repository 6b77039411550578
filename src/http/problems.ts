/**
 * Every problem type the service answers with: its name (the last part of
 * `urn:trm:problem:{name}`, described at `/problems/{name}`), its HTTP status, a title that is the
 * same for every occurrence (RFC 9457), what happened and what to do.
 *
 * The contract lists the same names in `components.schemas.ProblemType`; a test keeps the two equal.
 */
export interface ProblemEntry {
  status: number
  title: string
  happened: string
  todo: string
}

export const problemCatalogue = {
  // The request as HTTP
  'bad-request': {
    status: 400,
    title: 'Invalid request',
    happened: 'The request could not be read: malformed HTTP, an empty or unparsable JSON body, or a similar fault.',
    todo: 'Fix the request as `detail` says and send it again.',
  },
  validation: {
    status: 400,
    title: 'The request does not match the contract',
    happened:
      'A body field, query, path or header parameter does not match the contract (or a cursor or Idempotency-Key is not valid). `errors` names each: a JSON pointer into the body, or the name of the parameter.',
    todo: 'Correct each field listed in `errors`; the contract at /openapi.json gives every shape.',
  },
  'bad-url': {
    status: 400,
    title: 'The path is not valid',
    happened: 'The path is not valid percent-encoded UTF-8.',
    todo: 'Percent-encode the path as UTF-8.',
  },
  unauthenticated: {
    status: 401,
    title: 'Authentication required',
    happened: 'The request carries no API key, or one that is unknown, revoked or expired.',
    todo: 'Send `Authorization: Bearer <api key>`. Keys are issued by your organisation’s administrator (POST /v1/organisations/{organisationId}/principals/{principalId}/api-keys).',
  },
  forbidden: {
    status: 403,
    title: 'Not allowed',
    happened:
      'The key is valid, but its principal lacks the role this operation needs, or its organisation may not do this.',
    todo: 'Use a key of a principal with the role named in `detail`, or ask your administrator to grant it.',
  },
  'not-found': {
    status: 404,
    title: 'Not found',
    happened:
      'There is no such resource, or your organisation may not know of it (the service does not tell them apart).',
    todo: 'Check the identifier; a resource of a case you are not a party to is never shown.',
  },
  'method-not-allowed': {
    status: 405,
    title: 'Method not allowed',
    happened: 'The path exists, but not with this method.',
    todo: 'Use one of the methods in the `Allow` header.',
  },
  'not-acceptable': {
    status: 406,
    title: 'Not acceptable',
    happened: 'The operation cannot answer in any media type the `Accept` header allows.',
    todo: 'Accept one of the media types the operation lists in the contract (or send `Accept: */*`).',
  },
  'request-timeout': {
    status: 408,
    title: 'Request timeout',
    happened: 'The request was not received in full in time.',
    todo: 'Send the request again, faster; check the network between you and the service.',
  },
  'payload-too-large': {
    status: 413,
    title: 'Request body too large',
    happened: 'The request body is larger than the service accepts.',
    todo: 'Send a smaller body; documents go in as separate records.',
  },
  'uri-too-long': {
    status: 414,
    title: 'URI too long',
    happened: 'A segment of the path is longer than any identifier of this service.',
    todo: 'Check the path: identifiers are UUIDs or short names.',
  },
  'unsupported-media-type': {
    status: 415,
    title: 'Unsupported media type',
    happened: 'The body is not sent as `application/json`.',
    todo: 'Send `Content-Type: application/json` with a JSON body.',
  },
  'rate-limited': {
    status: 429,
    title: 'Too many requests',
    happened:
      'The key (or, without a valid key, the client address) sent more requests a minute than allowed, or failed to authenticate too often.',
    todo: 'Wait the `Retry-After` seconds, then retry; watch `X-RateLimit-Remaining` to pace requests.',
  },
  'headers-too-large': {
    status: 431,
    title: 'Request headers too large',
    happened: 'The request line and headers are larger than the service accepts.',
    todo: 'Send fewer or shorter headers.',
  },
  internal: {
    status: 500,
    title: 'Internal error',
    happened: 'The service failed to handle the request. Nothing about the cause is shown to the caller.',
    todo: 'Retry later; if it persists, report it quoting the `request_id`.',
  },
  'database-unavailable': {
    status: 503,
    title: 'Database unavailable',
    happened: 'The database cannot be reached for a moment (a restart or a failover). No change was made.',
    todo: 'Retry after the `Retry-After` seconds, with the same `Idempotency-Key`.',
  },
  'not-ready': {
    status: 503,
    title: 'Service not ready',
    happened: 'The service cannot serve requests yet: the database is not reachable or its migrations are not applied.',
    todo: 'Operators: apply the migrations (`npm run migrate`) and check the database. Clients: retry after `Retry-After`.',
  },
  // Preconditions and retries
  'stale-version': {
    status: 412,
    title: 'Precondition failed',
    happened:
      'The `If-Match` header does not name the current version of the resource: it changed since you read it, or the value is not an ETag this service issued.',
    todo: 'Read the resource again (its `ETag` header or the `etag` field of list items; `current_etag` gives it too), re-apply your change and send `If-Match` with that ETag, quotes included: `If-Match: "3"`.',
  },
  'if-match-required': {
    status: 428,
    title: 'Precondition required',
    happened: 'This change needs an `If-Match` header, so that it does not overwrite a change you have not seen.',
    todo: 'Send `If-Match` with the ETag you last read, quotes included: `If-Match: "3"`.',
  },
  'idempotency-key-reused': {
    status: 422,
    title: 'Idempotency-Key reused',
    happened: 'This `Idempotency-Key` was used, within 24 hours, for a different request.',
    todo: 'Use a new key (a fresh UUID) for every intended change; reuse a key only to retry the very same request.',
  },
  // The procedure
  'action-not-open': {
    status: 409,
    title: 'Action not open at this step',
    happened:
      'The action is not open at the step the case is in. `open_at` lists the steps where it is, `path` the actions that lead there.',
    todo: 'Take the actions in `path` first, or read the case’s `actions` for what is open now.',
  },
  'preconditions-unmet': {
    status: 409,
    title: 'Preconditions unmet',
    happened:
      'The action is open at this step, but a precondition does not hold. `unmet` lists every one, with a code and a message.',
    todo: 'Record what each entry of `unmet` asks for (a consent, an assessment, a record), then take the action again.',
  },
  'packet-operation': {
    status: 409,
    title: 'Take this action through its packet operation',
    happened:
      'The action exchanges a packet (sending, acknowledging, accepting, declining a referral, or a request for information).',
    todo: 'Use the packet operation named in `detail`.',
  },
  'input-required': {
    status: 422,
    title: 'Input required',
    happened: 'The action needs input the request did not give (a reason, a note, a date).',
    todo: 'Send the fields named in `detail`.',
  },
  'no-receiving-partner': {
    status: 409,
    title: 'No receiving partner',
    happened: 'The action hands the case over to the receiving partner, but none has accepted the referral.',
    todo: 'Have a receiving partner accept a referral of the case first.',
  },
  'unknown-action': {
    status: 422,
    title: 'Unknown action',
    happened: 'The action is not one of the case’s procedure. `valid_actions` lists them.',
    todo: 'Use one of `valid_actions`.',
  },
  'unknown-procedure': {
    status: 422,
    title: 'Unknown procedure',
    happened: 'There is no procedure with this id and version.',
    todo: 'Pick one of GET /v1/sops.',
  },
  'same-procedure': {
    status: 422,
    title: 'Same procedure',
    happened: 'The case already follows this procedure.',
    todo: 'Nothing to do; name another procedure to migrate to.',
  },
  'case-finished': {
    status: 409,
    title: 'Case finished',
    happened: 'The case has reached a final step; its procedure no longer changes.',
    todo: 'Open a new case if the person needs a new referral.',
  },
  'procedure-does-not-apply': {
    status: 422,
    title: 'Procedure does not apply to this case',
    happened: 'The procedure is for another age group or corridor than the case’s.',
    todo: 'Pick a procedure that applies (GET /v1/sops shows each one’s `applies_to` and corridors).',
  },
  'step-not-in-procedure': {
    status: 422,
    title: 'Step not in the procedure',
    happened: 'The target procedure has no step of the name the case is at, so the case cannot move to it.',
    todo: 'Move the case to a step both procedures share first, or pick another procedure.',
  },
  'invalid-record': {
    status: 422,
    title: 'Invalid record',
    happened:
      'The record’s `data` does not match its kind’s schema, or it names an assessment it should not (or not one it should).',
    todo: 'Read the kind’s schema at GET /v1/record-kinds and send data that matches it.',
  },
  // Who may do what
  'cannot-send': {
    status: 403,
    title: 'Cannot open a case',
    happened: 'Only a sending-side organisation (in an EU member state) opens a case.',
    todo: 'Have the sending partner open the case; it invites you.',
  },
  'cannot-invite': {
    status: 403,
    title: 'Cannot invite',
    happened:
      'Only the sending partner, or the receiving partner that accepted the referral, invites other organisations to a case.',
    todo: 'Ask one of them to invite the organisation.',
  },
  'not-lead': {
    status: 403,
    title: 'Not the lead organisation',
    happened: 'Only the organisation that leads the case (is responsible for the person now) may do this.',
    todo: 'Ask the lead organisation (`lead_organisation_id` of the case).',
  },
  'not-controller': {
    status: 403,
    title: 'Not the controller of the case',
    happened:
      'Only the data protection officer of the organisation that opened the case (the controller) may erase it.',
    todo: 'Ask the data protection officer of the sending partner (`sending_organisation_id` of the case).',
  },
  'case-erased': {
    status: 410,
    title: 'Case erased',
    happened:
      'The case was erased (crypto-shredding): its data key was destroyed, so its data no longer exists. Only its tombstone remains (`erased_at`).',
    todo: 'Delete your own copies of the case’s data and acknowledge the erasure notice (GET /v1/withdrawal-notices).',
  },
  'not-organiser': {
    status: 403,
    title: 'Not the organiser of the training',
    happened: 'Only a supervisor of the organisation that organised a training changes it.',
    todo: 'Ask a supervisor of the organiser (`organiser_organisation_id` of the training).',
  },
  'unknown-organisation': {
    status: 422,
    title: 'Unknown organisation',
    happened: 'The request names an organisation that is not in the directory; `errors` lists each.',
    todo: 'Use the ids of GET /v1/organisations, or ask the hub to register the organisation first.',
  },
  'not-a-side': {
    status: 403,
    title: 'Not a side of the case',
    happened: 'Only the sending or the receiving partner keeps the records and proceedings of a case.',
    todo: 'Ask the sending or receiving partner to record it.',
  },
  'not-recipient': {
    status: 403,
    title: 'Not the recipient',
    happened: 'Only the recipient of a packet answers it.',
    todo: 'Answer with a key of the recipient organisation.',
  },
  'not-consent-holder': {
    status: 403,
    title: 'Not the consent holder',
    happened: 'Only the organisation that holds (recorded) the consent gives the person its receipt.',
    todo: 'Ask the organisation that recorded the consent.',
  },
  'second-supervisor-required': {
    status: 403,
    title: 'Second supervisor required',
    happened: 'A safety override is approved by a second supervisor, not by the one who asked for it.',
    todo: 'Have another supervisor of your organisation approve it.',
  },
  // Parties, packets and consent
  'unknown-partner': {
    status: 422,
    title: 'Unknown partner',
    happened: 'The organisation named is not a partner that can take part here.',
    todo: 'Name an organisation of GET /v1/organisations.',
  },
  'already-party': {
    status: 422,
    title: 'Already a party',
    happened: 'The organisation is already a party to this case.',
    todo: 'Nothing to do.',
  },
  'recipient-cannot-receive': {
    status: 422,
    title: 'Recipient cannot receive referrals',
    happened: 'The recipient is not a partner that can receive referrals.',
    todo: 'Send to a receiving partner in the country of return (GET /v1/organisations).',
  },
  'purpose-not-served': {
    status: 422,
    title: 'Purpose not served at this step',
    happened: 'At the case’s step a packet serves other purposes than the one given; `detail` names them.',
    todo: 'Send the packet for a purpose the step serves, or move the case on first.',
  },
  'not-the-receiving-partner': {
    status: 422,
    title: 'Not the receiving partner',
    happened: 'At this step a packet goes to the case’s receiving partner only.',
    todo: 'Address the packet to the receiving partner of the case.',
  },
  'nothing-consented': {
    status: 422,
    title: 'Nothing consented',
    happened:
      'No active consent covers any category of the case for this recipient and purpose. `withheld` lists each category and why.',
    todo: 'Record the person’s consent for the recipient and purpose (POST /v1/cases/{caseId}/consents), then send again.',
  },
  'invalid-state': {
    status: 409,
    title: 'Invalid state',
    happened:
      'The resource is not in a state that allows this (an enquiry already answered, an override already approved or expired).',
    todo: 'Read the resource again; its status says what it allows.',
  },
  'guardian-required': {
    status: 422,
    title: 'Guardian consent required',
    happened: 'The person is a child: their guardian or legal representative must consent too.',
    todo: 'Record the consent with the guardian’s details (`guardian`) as the contract describes.',
  },
  'invalid-consent': {
    status: 422,
    title: 'Invalid consent',
    happened: 'The consent’s dates do not hold: `given_at` lies in the future, or `expires_at` is not after it.',
    todo: 'Correct the dates.',
  },
  'unknown-recipient': {
    status: 422,
    title: 'Unknown recipient',
    happened: 'The consent names an organisation that is not registered.',
    todo: 'Name organisations of GET /v1/organisations.',
  },
  'transfer-basis-required': {
    status: 422,
    title: 'Transfer basis required',
    happened:
      'The recipient is outside the EU/EEA with no adequacy decision and no transfer agreement in force with you.',
    todo: 'Name the legal basis of the transfer in `transfer_basis` (GDPR Art. 46 safeguards, or an Art. 49 derogation).',
  },
  'transfer-basis-invalid': {
    status: 422,
    title: 'Transfer basis invalid',
    happened: 'The legal basis named for the transfer does not hold; `detail` says which field and why.',
    todo: 'Correct `transfer_basis` as `detail` says.',
  },
  'invalid-transfer-agreement': {
    status: 422,
    title: 'Invalid transfer agreement',
    happened: 'The transfer agreement does not hold; `detail` names the field and why.',
    todo: 'Correct the field named in `detail`.',
  },
  // Organisations, keys, webhooks, proceedings
  'invalid-time-zone': {
    status: 422,
    title: 'Invalid time zone',
    happened: 'The time zone is not one of the IANA database.',
    todo: 'Name an IANA time zone such as Europe/Warsaw.',
  },
  'time-zone-required': {
    status: 422,
    title: 'Time zone required',
    happened: 'The organisation’s country has several time zones, or none is known for it.',
    todo: 'Name the organisation’s `time_zone`.',
  },
  expired: {
    status: 422,
    title: 'Already expired',
    happened: '`expires_at` is not in the future: the key could never be used.',
    todo: 'Give an `expires_at` in the future, or none.',
  },
  'unsafe-target': {
    status: 422,
    title: 'Unsafe webhook target',
    happened: 'The webhook URL cannot be parsed, is not https, or points into a private or loopback network.',
    todo: 'Register a public https URL.',
  },
  'endpoint-disabled': {
    status: 409,
    title: 'Endpoint disabled',
    happened: 'The webhook endpoint is disabled, so nothing is delivered to it.',
    todo: 'Enable it (PATCH with `enabled: true`) first.',
  },
  'delivery-in-progress': {
    status: 409,
    title: 'Delivery in progress',
    happened: 'The delivery is already pending or being attempted.',
    todo: 'Wait for it to end; retry it only once it failed.',
  },
  'invalid-hearing': {
    status: 422,
    title: 'Invalid hearing',
    happened: 'The hearing’s date is not plausible (more than fifty years from today).',
    todo: 'Correct the date.',
  },
  'outcome-recorded': {
    status: 409,
    title: 'Outcome already recorded',
    happened: 'The outcome of this hearing was recorded and does not change.',
    todo: 'Add a new hearing for what follows.',
  },
  // Attachments
  'attachment-too-large': {
    status: 413,
    title: 'Attachment too large',
    happened: 'The uploaded file is larger than the service accepts (`max_bytes`, set by `ATTACHMENT_MAX_BYTES`).',
    todo: 'Send a smaller file: scan at a lower resolution, or split the document.',
  },
  'attachment-type-refused': {
    status: 415,
    title: 'Attachment type not accepted',
    happened:
      'The upload is not `multipart/form-data`, or the file’s own bytes are not a PDF, JPEG or PNG (`accepted`), whatever its name or declared type says.',
    todo: 'Upload the document as a PDF, JPEG or PNG, in a `multipart/form-data` body with the parts `file` and `category`.',
  },
  'attachment-type-mismatch': {
    status: 422,
    title: 'Declared type disagrees with the content',
    happened:
      'The `Content-Type` of the file part names one type and the file’s bytes are another (`declared`, `detected`).',
    todo: 'Declare the type the file really is, or send the file you meant to.',
  },
  'attachment-not-consented': {
    status: 422,
    title: 'Attachment not consented',
    happened:
      'An attachment named in `attachment_ids` is of a category the packet does not carry to this recipient: no active consent covers it for the recipient and purpose, or the kind of packet does not carry it (`attachments` names each, with the reason).',
    todo: 'Record the person’s consent for that category first, or send the packet without the attachment.',
  },
  'unknown-attachment': {
    status: 422,
    title: 'Unknown attachment',
    happened: 'An id in `attachment_ids` is not an attachment of this case.',
    todo: 'List the case’s attachments and name one of them.',
  },
} as const satisfies Record<string, ProblemEntry>

/** The name of a problem type: only these can be raised. */
export type ProblemName = keyof typeof problemCatalogue

export const problemNames = Object.keys(problemCatalogue) as ProblemName[]

export function isProblemName(name: string): name is ProblemName {
  return Object.hasOwn(problemCatalogue, name)
}

/** The `type` of a problem document; the compiler checks it against the contract's `ProblemType`. */
export function problemType<Name extends ProblemName>(name: Name): `urn:trm:problem:${Name}` {
  return `urn:trm:problem:${name}`
}

/** Where a person reads what a problem type means. */
export function problemPage(name: ProblemName): string {
  return `/problems/${name}`
}
