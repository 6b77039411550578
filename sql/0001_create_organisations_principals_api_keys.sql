-- Partner organisations, the principals acting for them, and the API keys those principals hold.

create table organisations (
  id uuid primary key default gen_random_uuid(),
  name text not null check (length(name) between 1 and 200),
  country char(2) not null check (country ~ '^[A-Z]{2}$'),
  kind text not null,
  can_send boolean not null,
  can_receive boolean not null,
  created_at timestamptz not null default now()
);
create index organisations_name_id on organisations (name, id);

create table principals (
  id uuid primary key default gen_random_uuid(),
  organisation_id uuid not null references organisations (id),
  name text not null check (length(name) between 1 and 200),
  kind text not null check (kind in ('staff', 'system')),
  roles text[] not null check (cardinality(roles) > 0),
  created_at timestamptz not null default now()
);
create index principals_organisation_id on principals (organisation_id, name, id);

create table api_keys (
  id uuid primary key default gen_random_uuid(),
  principal_id uuid not null references principals (id),
  prefix text not null unique,
  secret_hash text not null,
  label text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  revoked_at timestamptz
);
create index api_keys_principal_id on api_keys (principal_id, label, id);
