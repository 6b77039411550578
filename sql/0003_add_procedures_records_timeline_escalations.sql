-- Every case follows a standard operating procedure (SOP): the version it started on, its current
-- step and the step's deadline; the records its guards read; its timeline; and escalations of
-- missed deadlines.

alter table cases
  add column sop_id text not null default 'adult-return',
  add column sop_version integer not null default 1,
  add column step text not null default 'identified',
  add column previous_step text,
  add column step_entered_at timestamptz not null default now(),
  add column step_due_at timestamptz;
alter table cases alter column sop_id drop default, alter column sop_version drop default, alter column step drop default;
create index cases_step_due_at on cases (step_due_at) where step_due_at is not null;

create table case_records (
  id uuid primary key default gen_random_uuid(),
  case_id uuid not null references cases (id),
  kind text not null,
  assessment text,
  side text not null check (side in ('sending', 'receiving')),
  data jsonb not null default '{}',
  recorded_at timestamptz not null default now(),
  recorded_by_principal_id uuid not null references principals (id),
  recorded_by_organisation_id uuid not null references organisations (id),
  check ((kind = 'assessment') = (assessment is not null))
);
create index case_records_case_id on case_records (case_id, recorded_at);
create index case_records_recorded_by_principal_id on case_records (recorded_by_principal_id);
create index case_records_recorded_by_organisation_id on case_records (recorded_by_organisation_id);

create table case_transitions (
  id bigint generated always as identity primary key,
  case_id uuid not null references cases (id),
  action text not null,
  from_step text,
  to_step text not null,
  at timestamptz not null default now(),
  principal_id uuid not null references principals (id),
  organisation_id uuid not null references organisations (id),
  lead_organisation_id uuid not null references organisations (id),
  note text,
  reason text,
  review_date date
);
create index case_transitions_case_id on case_transitions (case_id, id);
create index case_transitions_principal_id on case_transitions (principal_id);
create index case_transitions_organisation_id on case_transitions (organisation_id);
create index case_transitions_lead_organisation_id on case_transitions (lead_organisation_id);

create table escalations (
  id uuid primary key default gen_random_uuid(),
  case_id uuid not null references cases (id),
  step text not null,
  due_at timestamptz not null,
  responsible_organisation_id uuid not null references organisations (id),
  raised_at timestamptz not null default now(),
  unique (case_id, step, due_at)
);
create index escalations_responsible_organisation_id on escalations (responsible_organisation_id);
