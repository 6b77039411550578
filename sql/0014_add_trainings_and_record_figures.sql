-- The training registry: trainings, trainings of trainers and centre improvements. No personal
-- data: participants are counted by institution type. They feed the indicators "staff trained",
-- "initiatives with NGOs" and "centres improved".
create table trainings (
  id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  kind text not null check (kind in ('training', 'training_of_trainers', 'centre_improvement')),
  held_on date not null,
  place text not null,
  country text not null,
  topic text not null,
  organiser_organisation_id uuid not null references organisations (id),
  -- [{"institution_type": "border_guard", "count": 42}, …]
  participants jsonb not null default '[]',
  participants_total integer not null default 0 check (participants_total >= 0),
  participant_organisation_ids uuid[] not null default '{}',
  ngo_partner_ids uuid[] not null default '{}',
  improved_centre_ids uuid[] not null default '{}',
  version integer not null default 1,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  created_by_principal_id uuid not null references principals (id)
);
create index trainings_organiser_organisation_id on trainings (organiser_organisation_id, held_on);
create index trainings_created_by_principal_id on trainings (created_by_principal_id);
create index trainings_held_on on trainings (held_on);

-- The non-identifying figures a record contributes to statistics (the three scores of a
-- sustainability score, the coded reason of a closure report), kept beside the record's data so
-- that the indicators are computed in SQL whatever form the data itself is stored in.
alter table case_records add column figures jsonb;
create index case_records_figures_kind on case_records (kind, recorded_at) where figures is not null;
