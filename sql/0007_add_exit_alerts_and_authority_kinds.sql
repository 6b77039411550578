-- Exits of the procedure: a person missing alerts the supervisors of both sides at once, and a
-- transition that should tell an authority the directory does not hold escalates instead.
alter table escalations drop constraint escalations_kind_check;
alter table escalations add constraint escalations_kind_check
  check (kind in ('step_deadline', 'withdrawal_acknowledgement', 'exit_alert', 'notification_undelivered'));

-- The kinds of organisation, the authorities a procedure names among them; the contract's
-- OrganisationKind lists the same. Notifications look organisations up by kind and country.
alter table organisations add constraint organisations_kind_check
  check (kind in ('hub_operator', 'iom_mission', 'government_authority', 'ngo', 'shelter', 'social_services',
                  'international_organisation', 'embassy', 'child_protection_authority',
                  'national_referral_mechanism', 'law_enforcement', 'national_rapporteur'));
create index organisations_kind_country on organisations (kind, country);
