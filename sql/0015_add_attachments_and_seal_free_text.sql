-- Attachments: documents a partner uploads to a case (the signed consent sheet, copies of travel
-- documents, medical certificates). Each is personal data of one category and is sealed with the
-- case's data key, like its sections, so that erasing the case (destroying the key) erases them too.

create table case_attachments (
  id uuid primary key,
  seq bigint generated always as identity,
  case_id uuid not null references cases (id),
  category text not null check (
    category in ('identity', 'contact', 'health', 'psychosocial', 'family', 'legal', 'travel', 'reintegration', 'proceedings')
  ),
  -- The type the file's own bytes show (its magic number), not the one its uploader declared.
  media_type text not null check (media_type in ('application/pdf', 'image/jpeg', 'image/png')),
  size_bytes integer not null check (size_bytes > 0),
  -- The file name and the SHA-256 of the plaintext, sealed ({"alg","kid","iv","ct"}): a file name
  -- often names the person, and a hash of a known document confirms that it is held.
  description jsonb not null,
  -- The file's bytes sealed with AES-256-GCM under the case's data key: the 12-byte nonce, the
  -- ciphertext and the 16-byte tag. The algorithm and the data key's id are stored beside them.
  -- Null once the case is erased: without its key the ciphertext is noise, and takes room.
  content bytea,
  content_alg text not null check (content_alg = 'A256GCM'),
  content_kid uuid not null,
  uploaded_at timestamptz not null default now(),
  uploaded_by_principal_id uuid not null references principals (id),
  uploaded_by_organisation_id uuid not null references organisations (id)
);
create index case_attachments_case_id on case_attachments (case_id, seq);
create index case_attachments_uploaded_by_principal_id on case_attachments (uploaded_by_principal_id);
create index case_attachments_uploaded_by_organisation_id on case_attachments (uploaded_by_organisation_id);

-- The attachments a packet carried, in the clear (ids only): what the disclosure policy needs to
-- let the recipient read them, without opening the packet's sealed content.
alter table packets add column attachment_ids uuid[] not null default '{}';

-- The retention job erases a case as the system principal "Retention schedule" of the case's
-- sending organisation (made on first use; no API key), so that its audit record names who erased.
-- One per organisation, however many workers erase at once.
create unique index principals_retention_schedule on principals (organisation_id)
  where kind = 'system' and name = 'Retention schedule';

-- The free text of consents (guardian, interpreter, child's views, withdrawal reason) and of
-- packets (note, questions, decision) is sealed with the case's data key from now on. The columns
-- keep their types: a jsonb column holds the envelope itself, a text column its JSON text. SQL
-- cannot seal with keys it must never see, so rows written before stay in the clear until the
-- service's next start seals them (`sealPlaintextFreeText`), before it answers any request; reads
-- take both meanwhile.
