-- Events (the transactional outbox behind the feed and the webhooks), webhook endpoints and their
-- deliveries, and the notices that tell recipients of withdrawn data to delete their copies.

-- An event is ordered by the transaction that wrote it (txid) and its place in it (seq). A reader
-- sees only events of transactions older than every transaction still running
-- (pg_snapshot_xmin), so a later commit of an earlier transaction can never slip behind a cursor.
create table events (
  id uuid primary key default gen_random_uuid(),
  txid xid8 not null default pg_current_xact_id(),
  seq bigint generated always as identity,
  type text not null,
  occurred_at timestamptz not null default now(),
  case_id uuid not null references cases (id),
  -- The organisations it concerns, as the event says; event_audiences indexes them for the feed.
  organisation_ids uuid[] not null default '{}',
  data jsonb not null,
  unique (txid, seq)
);
create index events_case_id on events (case_id);

-- Which organisations an event concerns, in the event's order: the feed of one organisation is one
-- index range.
create table event_audiences (
  organisation_id uuid not null references organisations (id),
  txid xid8 not null,
  seq bigint not null,
  event_id uuid not null references events (id),
  primary key (organisation_id, txid, seq)
);
create index event_audiences_event_id on event_audiences (event_id);

-- How far the relay has turned events into webhook deliveries: one row, locked by the one relay
-- that works at a time.
create table event_relay_position (
  id boolean primary key default true check (id),
  txid xid8 not null,
  seq bigint not null
);
insert into event_relay_position (txid, seq) values ('0', 0);

create table webhook_endpoints (
  id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  organisation_id uuid not null references organisations (id),
  url text not null,
  description text,
  event_types text[] not null default '{}',
  enabled boolean not null default true,
  disabled_reason text check (disabled_reason in ('by_request', 'gone', 'persistent_failure')),
  failed_deliveries integer not null default 0,
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (enabled = (disabled_reason is null))
);
create index webhook_endpoints_organisation_id on webhook_endpoints (organisation_id, seq);

create table webhook_secrets (
  id uuid primary key default gen_random_uuid(),
  endpoint_id uuid not null references webhook_endpoints (id),
  secret text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz
);
create index webhook_secrets_endpoint_id on webhook_secrets (endpoint_id, created_at);

create table webhook_deliveries (
  id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  endpoint_id uuid not null references webhook_endpoints (id),
  event_id uuid not null references events (id),
  status text not null check (status in ('pending', 'retrying', 'succeeded', 'failed', 'cancelled')),
  -- Set while a job of the queue is to carry the delivery; null when one must be queued.
  queued_at timestamptz,
  next_attempt_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (endpoint_id, event_id)
);
create index webhook_deliveries_endpoint_id on webhook_deliveries (endpoint_id, seq);
create index webhook_deliveries_event_id on webhook_deliveries (event_id);
create index webhook_deliveries_to_queue on webhook_deliveries (seq) where queued_at is null and status in ('pending', 'retrying');

create table webhook_attempts (
  id bigint generated always as identity primary key,
  delivery_id uuid not null references webhook_deliveries (id),
  at timestamptz not null default now(),
  status_code integer,
  error text,
  duration_ms integer not null
);
create index webhook_attempts_delivery_id on webhook_attempts (delivery_id, id);

create table withdrawal_notices (
  id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  consent_id uuid not null references consents (id),
  case_id uuid not null references cases (id),
  organisation_id uuid not null references organisations (id),
  categories text[] not null,
  withdrawn_at timestamptz not null,
  acknowledge_by timestamptz not null,
  acknowledged_at timestamptz,
  acknowledged_by_principal_id uuid references principals (id),
  acknowledgement_action text check (acknowledgement_action in ('deleted', 'restricted')),
  acknowledgement_note text,
  unique (consent_id, organisation_id)
);
create index withdrawal_notices_organisation_id on withdrawal_notices (organisation_id, seq);
create index withdrawal_notices_case_id on withdrawal_notices (case_id);
create index withdrawal_notices_acknowledged_by_principal_id on withdrawal_notices (acknowledged_by_principal_id);
create index withdrawal_notices_overdue on withdrawal_notices (acknowledge_by) where acknowledged_at is null;

-- A missed acknowledgement escalates like a missed step: one escalation per notice.
alter table escalations
  add column kind text not null default 'step_deadline' check (kind in ('step_deadline', 'withdrawal_acknowledgement')),
  add column withdrawal_notice_id uuid references withdrawal_notices (id);
alter table escalations alter column kind drop default;
alter table escalations drop constraint escalations_case_id_step_due_at_key;
create unique index escalations_step_deadline on escalations (case_id, step, due_at) where kind = 'step_deadline';
create unique index escalations_withdrawal_notice_id on escalations (withdrawal_notice_id);
create index escalations_case_id on escalations (case_id);
