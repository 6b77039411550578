-- Transfers out of the EU/EEA (GDPR Chapter V). A hub administrator registers the standing
-- agreements between two organisations that provide appropriate safeguards (Art. 46); each packet
-- records the legal basis it left on (null for a packet that stays inside the EU/EEA); a consent
-- says whether the person was informed of the risks of a transfer without safeguards, which an
-- explicit-consent derogation (Art. 49(1)(a)) needs.
create table transfer_agreements (
  id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  exporter_organisation_id uuid not null references organisations (id),
  importer_organisation_id uuid not null references organisations (id),
  safeguard text not null check (safeguard in (
    'standard_contractual_clauses', 'administrative_arrangement', 'legally_binding_instrument', 'binding_corporate_rules'
  )),
  reference text not null check (length(reference) between 1 and 200),
  valid_from date not null,
  valid_until date,
  registered_by_principal_id uuid not null references principals (id),
  created_at timestamptz not null default now(),
  check (exporter_organisation_id <> importer_organisation_id),
  check (valid_until is null or valid_until >= valid_from)
);
create index transfer_agreements_exporter on transfer_agreements (exporter_organisation_id, importer_organisation_id);
create index transfer_agreements_importer on transfer_agreements (importer_organisation_id);
create index transfer_agreements_registered_by on transfer_agreements (registered_by_principal_id);

alter table packets add column transfer jsonb;
create index packets_transfers_by_sender on packets (sender_organisation_id, seq) where transfer is not null;
create index packets_transfers_by_recipient on packets (recipient_organisation_id, seq) where transfer is not null;

alter table consents add column informed_of_transfer_risks boolean not null default false;
