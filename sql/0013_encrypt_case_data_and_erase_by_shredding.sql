-- Personal data at rest under a data key of each case (envelope encryption), and erasure by
-- destroying that key (crypto-shredding).
--
-- Sections, packet content, record data and webhook secrets keep their columns; the values become
-- sealed envelopes ({"alg","kid","iv","ct"}). SQL cannot encrypt with keys it must never see, so
-- rows written before this migration stay in the clear until the service's first start seals them
-- (`sealPlaintextRows`), before it answers any request.

alter table cases
  -- The case's data key, wrapped under a master key ({"alg","kid","iv","ct"}); null once erased.
  add column data_key_id uuid unique,
  add column data_key jsonb,
  add column erased_at timestamptz,
  add column erased_by_principal_id uuid references principals (id),
  add column erasure_reason text check (erasure_reason in ('data_subject_request', 'end_of_retention')),
  add constraint cases_erasure_complete check ((erased_at is null) = (erasure_reason is null)),
  add constraint cases_erased_without_key check (erased_at is null or data_key is null);
create index cases_erased_by_principal_id on cases (erased_by_principal_id);
-- The cases still in the clear, for the start that seals them; empty once it ran.
create index cases_without_data_key on cases (seq) where data_key is null and erased_at is null;

-- An erased case's recipients are told to delete their copies, as after a withdrawal: the same
-- notice, acknowledgement and escalation, with no consent to name.
alter table withdrawal_notices alter column consent_id drop not null;
alter table withdrawal_notices drop constraint withdrawal_notices_cause_check;
alter table withdrawal_notices add constraint withdrawal_notices_cause_check
  check (cause in ('withdrawn', 'expired', 'erased') and ((consent_id is null) = (cause = 'erased')));
create unique index withdrawal_notices_erasure on withdrawal_notices (case_id, organisation_id) where cause = 'erased';
