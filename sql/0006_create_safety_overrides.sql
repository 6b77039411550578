-- Information about a risk to the life of the person, their family, staff or others may be shared
-- with a receiving organisation without consent: a supervisor of the lead organisation asks, a
-- second supervisor approves, only the safety note moves, and it stops being readable when it
-- expires. The data protection officer sees every override.
create table safety_overrides (
  id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  case_id uuid not null references cases (id),
  organisation_id uuid not null references organisations (id),
  recipient_organisation_id uuid not null references organisations (id),
  reason text not null,
  note text not null,
  requested_by_principal_id uuid not null references principals (id),
  requested_at timestamptz not null,
  approved_by_principal_id uuid references principals (id),
  approved_at timestamptz,
  expires_at timestamptz not null,
  check ((approved_at is null) = (approved_by_principal_id is null)),
  check (approved_by_principal_id is distinct from requested_by_principal_id)
);
create index safety_overrides_case_id on safety_overrides (case_id);
create index safety_overrides_organisation_id on safety_overrides (organisation_id, seq);
create index safety_overrides_recipient_organisation_id on safety_overrides (recipient_organisation_id, seq);
create index safety_overrides_requested_by_principal_id on safety_overrides (requested_by_principal_id);
create index safety_overrides_approved_by_principal_id on safety_overrides (approved_by_principal_id);

