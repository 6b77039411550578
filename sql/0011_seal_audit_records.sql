-- Tamper-evident audit: committed audit records are sealed in batches that form a hash chain, and
-- the chain's head is signed from time to time (a checkpoint) and published to every partner.
--
-- A record's place in the chain is (txid, id): the transaction that wrote it, then its id. The
-- sealer takes only records of transactions older than every transaction still running
-- (pg_snapshot_xmin), the event feed's rule, so a record that commits late can never belong before
-- one already sealed. Writers take no lock of the sealer's: they only insert, as before, one row or
-- many in one statement.
alter table audit_records add column txid xid8 not null default pg_current_xact_id();
create index audit_records_position on audit_records (txid, id);

-- One row, locked by the one sealer that works at a time.
create table audit_seal_lock (
  id boolean primary key default true check (id)
);
insert into audit_seal_lock default values;

-- A sealed batch: the records after the previous batch's last position up to (to_txid, to_record_id),
-- in order, each with the SHA-256 of its canonical content, and the hash over the previous batch's
-- hash, those record hashes and this batch's metadata.
create table audit_batches (
  seq bigint primary key check (seq > 0),
  previous_hash text not null,
  hash text not null unique,
  to_txid xid8 not null,
  to_record_id bigint not null,
  record_ids bigint[] not null,
  record_hashes text[] not null,
  sealed_at timestamptz not null,
  check (cardinality(record_ids) = cardinality(record_hashes) and cardinality(record_ids) > 0)
);

-- A signed statement of the chain's head: the batch and its hash, as a compact JWS (EdDSA, Ed25519).
create table audit_checkpoints (
  seq bigint primary key check (seq > 0),
  batch_seq bigint not null references audit_batches (seq),
  batch_hash text not null,
  key_id text not null,
  jws text not null,
  signed_at timestamptz not null
);
create index audit_checkpoints_batch_seq on audit_checkpoints (batch_seq);

-- A checkpoint concerns every partner and no case.
alter table events alter column case_id drop not null;
