-- Deadlines beside the step's own: obligations that a step schedules on entry (monitoring visits
-- at 1, 3, 6 and 12 months after arrival, a re-assessment within 30 days) and the hearings of
-- proceedings. Each is owed by one organisation, fulfilled by a record, and escalates when missed,
-- through the same deadline job and escalations as a step's deadline.

-- Proceedings (TRM-EU SOP 5): criminal, civil and compensation proceedings that continue after
-- return. Their data is a consent category of its own (`proceedings`).
create table proceedings (
  id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  case_id uuid not null references cases (id),
  kind text not null check (kind in ('criminal', 'civil', 'compensation')),
  country text not null,
  authority text not null,
  reference text,
  stage text not null,
  person_roles text[] not null,
  protection_measures text[] not null,
  remote_participation text not null,
  notes text,
  version integer not null default 1,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  created_by_principal_id uuid not null references principals (id),
  created_by_organisation_id uuid not null references organisations (id)
);
create index proceedings_case_id on proceedings (case_id, seq);
create index proceedings_created_by_principal_id on proceedings (created_by_principal_id);
create index proceedings_created_by_organisation_id on proceedings (created_by_organisation_id);

create table proceeding_hearings (
  id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  proceeding_id uuid not null references proceedings (id),
  case_id uuid not null references cases (id),
  scheduled_at timestamptz not null,
  purpose text not null,
  participation text not null,
  notes text,
  outcome text,
  outcome_recorded_at timestamptz,
  created_at timestamptz not null,
  created_by_principal_id uuid not null references principals (id),
  created_by_organisation_id uuid not null references organisations (id),
  check ((outcome is null) = (outcome_recorded_at is null))
);
create index proceeding_hearings_proceeding_id on proceeding_hearings (proceeding_id, scheduled_at);
create index proceeding_hearings_case_id on proceeding_hearings (case_id);
create index proceeding_hearings_created_by_principal_id on proceeding_hearings (created_by_principal_id);
create index proceeding_hearings_created_by_organisation_id on proceeding_hearings (created_by_organisation_id);

create table case_obligations (
  id uuid primary key default gen_random_uuid(),
  case_id uuid not null references cases (id),
  kind text not null check (kind in ('monitoring_visit', 'reassessment', 'hearing')),
  -- For a scheduled obligation, the step that scheduled it and its offset (`arrived:P1M`): a step
  -- entered again (after a hold) schedules nothing twice.
  schedule_key text,
  hearing_id uuid references proceeding_hearings (id),
  due_at timestamptz not null,
  responsible_organisation_id uuid not null references organisations (id),
  created_at timestamptz not null,
  fulfilled_at timestamptz,
  fulfilled_by_record_id uuid references case_records (id),
  -- A hearing's obligation is fulfilled by recording what happened at it, not by a record.
  check (fulfilled_by_record_id is null or fulfilled_at is not null),
  check ((kind = 'hearing') = (hearing_id is not null)),
  check ((schedule_key is null) = (hearing_id is not null)),
  unique (case_id, schedule_key)
);
create index case_obligations_case_id on case_obligations (case_id, due_at);
create index case_obligations_open_due_at on case_obligations (due_at) where fulfilled_at is null;
create index case_obligations_hearing_id on case_obligations (hearing_id);
create index case_obligations_responsible_organisation_id on case_obligations (responsible_organisation_id);
create index case_obligations_fulfilled_by_record_id on case_obligations (fulfilled_by_record_id);

-- A missed obligation escalates like a missed step: one escalation per obligation.
alter table escalations drop constraint escalations_kind_check;
alter table escalations add constraint escalations_kind_check
  check (kind in ('step_deadline', 'withdrawal_acknowledgement', 'exit_alert', 'notification_undelivered',
                  'monitoring_visit', 'reassessment', 'hearing'));
alter table escalations add column obligation_id uuid references case_obligations (id);
create unique index escalations_obligation_id on escalations (obligation_id);
