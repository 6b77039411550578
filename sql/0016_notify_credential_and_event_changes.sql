-- Processes keep what authenticates a caller (key, principal, organisation) in memory for a short
-- while; any change to those tables tells every process to forget what it holds, at commit.
create function notify_credentials_changed() returns trigger language plpgsql as $$
begin
  perform pg_notify('trm_credentials', '');
  return null;
end
$$;
create trigger api_keys_changed after update or delete on api_keys
  for each statement execute function notify_credentials_changed();
create trigger principals_changed after update or delete on principals
  for each statement execute function notify_credentials_changed();
create trigger organisations_changed after update or delete on organisations
  for each statement execute function notify_credentials_changed();

-- The embedded database's webhook relay sleeps while nothing happens: a new event, or a delivery
-- handed back to be queued again, wakes it at commit. Only a session that listens itself is told,
-- which is the embedded database's one session. On PostgreSQL the relay polls instead: a NOTIFY
-- makes the commits of all transactions that send one wait for each other, and every change
-- writes an event.
create function notify_relay_work() returns trigger language plpgsql as $$
begin
  if 'trm_relay' = any (array(select pg_listening_channels())) then
    perform pg_notify('trm_relay', '');
  end if;
  return null;
end
$$;
create trigger events_inserted after insert on events
  for each statement execute function notify_relay_work();
create trigger webhook_deliveries_requeued after update of queued_at on webhook_deliveries
  for each row when (new.queued_at is null) execute function notify_relay_work();
