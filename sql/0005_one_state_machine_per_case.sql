-- One state machine per case: the step of its procedure is the case's only status. The packet
-- operations are transitions of version 2 of both procedures, which keeps every step of version 1
-- and adds `information_requested`; the cases move to it.
alter table cases drop column state;
update cases set sop_version = 2 where sop_id in ('adult-return', 'child-return') and sop_version = 1;
create index cases_step on cases (step);

-- A referral starts as an enquiry (no identity or contact data); the full referral follows its
-- acceptance; information answers a request for it; an update amends an accepted referral.
alter table packets add column kind text not null default 'referral'
  check (kind in ('enquiry', 'referral', 'information', 'update'));
alter table packets alter column kind drop default;

-- Every record of a case is personal data of one category, disclosed like a section of that category.
alter table case_records add column category text;
update case_records set category = case
  when kind in ('return_decision', 'guardian_appointment') then 'legal'
  when kind in ('travel_documents', 'escort', 'reception', 'handover_protocol') then 'travel'
  when kind in ('reintegration_plan_draft', 'reintegration_plan_final', 'monitoring_visit', 'closure_report') then 'reintegration'
  when assessment in ('vulnerability', 'risk_and_needs') then 'psychosocial'
  when assessment in ('family', 'best_interests_assessment', 'best_interests_determination') then 'family'
  when assessment = 'fit_to_travel' then 'health'
  else 'reintegration'
end;
alter table case_records alter column category set not null;
alter table case_records add constraint case_records_category
  check (category in ('identity', 'contact', 'health', 'psychosocial', 'family', 'legal', 'travel', 'reintegration'));

-- A consent that expires tells the holders of its data to delete it, as a withdrawal does.
alter table consents add column expiry_noticed_at timestamptz;
create index consents_expires_at on consents (expires_at) where expires_at is not null and expiry_noticed_at is null;
alter table withdrawal_notices add column cause text not null default 'withdrawn' check (cause in ('withdrawn', 'expired'));
alter table withdrawal_notices alter column cause drop default;
