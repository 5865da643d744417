-- DESIGN.md's Event table in PostgreSQL 15: partitioned by range of received_at, one partition
-- per hour from {{FROM_HOUR}} to {{TO_HOUR}} (bench/queries.sh fills these in from the data);
-- the JSON columns are jsonb, TOASTed with lz4. No index: neither side has one.
CREATE TABLE events (
  event_id     text        NOT NULL,
  type         text        NOT NULL,
  event        text,
  user_id      text,
  anonymous_id text,
  event_time   timestamptz NOT NULL,
  sent_at      timestamptz,
  received_at  timestamptz NOT NULL,
  properties   jsonb COMPRESSION lz4,
  traits       jsonb COMPRESSION lz4,
  context      jsonb COMPRESSION lz4,
  source       text
) PARTITION BY RANGE (received_at);

DO $$
DECLARE
  h timestamptz;
BEGIN
  FOR h IN SELECT generate_series(TIMESTAMPTZ '{{FROM_HOUR}}', TIMESTAMPTZ '{{TO_HOUR}}',
                                  INTERVAL '1 hour') LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                   'events_' || to_char(h AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24'),
                   h, h + INTERVAL '1 hour');
  END LOOP;
END
$$;
