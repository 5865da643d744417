#!/usr/bin/env bash
# PostgresStore write path against the physical limit, in one run (issue 4), with its own
# PostgreSQL 15 primary and streaming replica (scripts/pg.sh) in a temp dir on free ports:
#   1. the payload columns as json, jsonb and text, with PostgreSQL's default toast_tuple_target
#      and with 128 (compress every row's JSON): binary COPY of the same ~2 KB events, one
#      connection, EVENTS/BATCH transactions; events/s and table size;
#   2. `psql \copy … (FORMAT binary)` of the same rows into the store's own layout: the limit;
#   3. PostgresStore::CommitBatch (rows, rollups, offsets, window counts in one transaction)
#      from 1 and from 2 loader shards, each into a fresh database, then the export of the
#      window from the replica.
# The primary runs with PostgreSQL's defaults plus max_wal_size=4GB (fewer checkpoints during a
# run of a few GB) and fsync on. The machine is shared: run it when it is quiet, and read the
# numbers as of that run.
# Usage: bench/postgres_store.sh [BUILD_DIR]   env: EVENTS (default 400000), BATCH (20000)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
bin="$build/src/store/postgres_store_bench"
events="${EVENTS:-400000}"
batch="${BATCH:-20000}"
if [[ ! -x "$bin" ]]; then
  echo "no $bin: build it first (ninja -C $build postgres_store_bench)" >&2
  exit 1
fi
source "$root/scripts/pg.sh"
tmp="$(mktemp -d /tmp/sluice-bench-pg-XXXXXX)"
chmod 755 "$tmp"
cleanup() {
  pg_stop "$tmp/replica"
  pg_stop "$tmp/primary"
  rm -rf "$tmp"
}
trap cleanup EXIT
port="$(pg_free_port)"
pg_start_primary "$tmp/primary" "$port" "max_wal_size = 4GB"
replica_port="$(pg_free_port)"
pg_start_replica "$port" "$tmp/replica" "$replica_port"
url() { echo "postgresql://postgres@127.0.0.1:$1/$2"; }
psql_primary() { "$(pg_bindir)/psql" -qAtX -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }
fresh_db() {
  psql_primary -d postgres -c "CREATE DATABASE $1" >/dev/null
  # The replica has it once it has replayed the creation.
  for _ in $(seq 300); do
    "$(pg_bindir)/psql" -qAtX -h 127.0.0.1 -p "$replica_port" -U postgres -d "$1" -c "SELECT 1" \
      >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "database $1 did not reach the replica" >&2
  return 1
}
checkpoint() { psql_primary -d postgres -c "CHECKPOINT"; }

echo "== PostgreSQL $(psql_primary -d postgres -c 'SHOW server_version'), $events events, batches of $batch, $(nproc) cores (shared)"
fresh_db layouts
for type in json jsonb text; do
  for target in 0 128; do  # 0: PostgreSQL's default toast_tuple_target (2032 bytes)
    checkpoint
    "$bin" layout "$(url "$port" layouts)" "$type" "$events" "$batch" "$target"
  done
done

fresh_db copy_limit
"$bin" prepare "$(url "$port" copy_limit)"
"$bin" dump "$tmp/events.copy" "$events" >/dev/null
cat "$tmp/events.copy" >/dev/null  # in the page cache, as the store's rows are in memory
checkpoint
cols="event_id, type, event, user_id, anonymous_id, event_time, sent_at, received_at, properties, traits, context, source"
t0=$(date +%s.%N)
psql_primary -d copy_limit -c "\\copy events ($cols) FROM '$tmp/events.copy' WITH (FORMAT binary)"
t1=$(date +%s.%N)
copy_rate=$(python3 -c "print(round($events / ($t1 - $t0)))")
echo "psql \\copy (one COPY, the store's layout): $events events in $(python3 -c "print(round($t1 - $t0, 2))") s = $copy_rate events/s"

for shards in 1 2; do
  fresh_db "store_$shards"
  checkpoint
  line="$("$bin" commit "$(url "$port" "store_$shards")" "$(url "$replica_port" "store_$shards")" \
    "$events" "$batch" "$shards" "$tmp/export-$shards")"
  echo "$line"
  rate=$(sed -n 's/.* = \([0-9]*\) events\/s.*/\1/p' <<<"$line" | head -1)
  echo "   ratio to psql \\copy: $(python3 -c "print(round($rate / $copy_rate, 2))")"
done
