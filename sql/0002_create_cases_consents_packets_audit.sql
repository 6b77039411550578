-- Cases and their parties, consents, referral packets, idempotency keys and the audit trail.

create sequence case_reference_numbers;

create table cases (
  id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  reference text not null unique,
  state text not null,
  profile jsonb not null,
  sections jsonb not null default '{}',
  sending_organisation_id uuid not null references organisations (id),
  receiving_organisation_id uuid references organisations (id),
  lead_organisation_id uuid not null references organisations (id),
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index cases_sending_organisation_id on cases (sending_organisation_id);
create index cases_receiving_organisation_id on cases (receiving_organisation_id);
create index cases_lead_organisation_id on cases (lead_organisation_id);

create table case_parties (
  case_id uuid not null references cases (id),
  organisation_id uuid not null references organisations (id),
  role text not null check (role in ('sending', 'receiving', 'invited')),
  since timestamptz not null default now(),
  primary key (case_id, organisation_id)
);
create index case_parties_organisation_id on case_parties (organisation_id, case_id);

create table consents (
  id uuid primary key default gen_random_uuid(),
  case_id uuid not null references cases (id),
  given_at timestamptz not null,
  method text not null check (method in ('written', 'oral')),
  language text not null,
  interpreter jsonb not null,
  guardian jsonb,
  child_views text,
  provisions jsonb not null,
  expires_at timestamptz,
  recorded_at timestamptz not null default now(),
  recorded_by_principal_id uuid not null references principals (id),
  recorded_by_organisation_id uuid not null references organisations (id),
  withdrawn_at timestamptz,
  withdrawal_reason text,
  withdrawn_by_principal_id uuid references principals (id)
);
create index consents_case_id on consents (case_id, recorded_at);
create index consents_recorded_by_principal_id on consents (recorded_by_principal_id);
create index consents_recorded_by_organisation_id on consents (recorded_by_organisation_id);
create index consents_withdrawn_by_principal_id on consents (withdrawn_by_principal_id);

create table packets (
  id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  case_id uuid not null references cases (id),
  version integer not null,
  sender_organisation_id uuid not null references organisations (id),
  recipient_organisation_id uuid not null references organisations (id),
  purpose text not null,
  note text,
  status text not null,
  included_categories text[] not null,
  withheld jsonb not null,
  content jsonb not null,
  content_hash text not null,
  -- For each included category, the consents that covered it when the packet was sent.
  consents_by_category jsonb not null,
  supersedes uuid references packets (id),
  history jsonb not null,
  acknowledgement jsonb,
  decision jsonb,
  questions jsonb,
  revision integer not null default 1,
  sent_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (case_id, recipient_organisation_id, version)
);
create index packets_recipient on packets (recipient_organisation_id, seq);
create index packets_sender on packets (sender_organisation_id, seq);
create index packets_supersedes on packets (supersedes);

create table idempotency_keys (
  organisation_id uuid not null references organisations (id),
  key text not null,
  operation_id text not null,
  fingerprint text not null,
  -- Only the outcome is kept, never a response body: a replay renders the resource as it is now,
  -- as the caller may see it, so no personal data sits here and no withdrawn data is replayed.
  status_code integer,
  resource_id uuid,
  location text,
  created_at timestamptz not null default now(),
  primary key (organisation_id, key)
);
create index idempotency_keys_created_at on idempotency_keys (created_at);

create table audit_records (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  action text not null,
  principal_id uuid not null references principals (id),
  organisation_id uuid not null references organisations (id),
  request_id text not null,
  case_id uuid references cases (id),
  resource_type text not null,
  resource_id uuid not null,
  details jsonb not null default '{}'
);
create index audit_records_case_id on audit_records (case_id, id);
create index audit_records_principal_id on audit_records (principal_id);
create index audit_records_organisation_id on audit_records (organisation_id);

create function refuse_audit_change() returns trigger language plpgsql as $$
begin
  raise exception 'audit records are append-only';
end
$$;
create trigger audit_records_append_only before update or delete on audit_records
  for each statement execute function refuse_audit_change();
