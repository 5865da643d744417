#!/usr/bin/env bash
# PostgresStore write path against the physical limit, in one run (issue 4), with its own
# PostgreSQL 15 primary and streaming replica (scripts/pg.sh) in a temp dir on free ports:
#   1. the payload columns as json, jsonb and text, with PostgreSQL's default toast_tuple_target
#      and with 128 (compress every row's JSON): binary COPY of the same ~2 KB events, one
#      connection, EVENTS/BATCH transactions; events/s and table size;
#   2. `psql \copy … (FORMAT binary)` of the same rows into the store's own layout: the limit;
#   3. PostgresStore::CommitBatch (rows, rollups, offsets, window counts in one transaction)
#      from 1 and from 2 loader shards, each into a fresh database, then the export of the
#      window from the replica;
#   4. the whole loader (when BUILD_DIR/sluice exists): `sluice serve --loader=false
#      --buffer-shards 2` filled by `sluice bench` with about EVENTS events, then
#      `sluice export --once --store … --store-read …` drains both shards into PostgreSQL
#      (decode, dedup, rollups, two loaders committing at once); its load rate against the
#      same round's \copy.
# Every measurement is repeated ROUNDS times, interleaved, each in a fresh database, and the
# medians are printed at the end. The primary runs with PostgreSQL's defaults plus
# max_wal_size=4GB (fewer checkpoints during a run of a few GB) and fsync on. The machine is
# shared: read the numbers as of that run.
# Usage: bench/postgres_store.sh [BUILD_DIR]
#   env: EVENTS (default 400000), BATCH (20000), ROUNDS (3)
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

rounds="${ROUNDS:-3}"
echo "== PostgreSQL $(psql_primary -d postgres -c 'SHOW server_version'), $events events, batches of $batch, $rounds rounds, $(nproc) cores (shared)"
"$bin" dump "$tmp/events.copy" "$events" >/dev/null
cols="event_id, type, event, user_id, anonymous_id, event_time, sent_at, received_at, properties, traits, context, source"
results="$tmp/results"
: >"$results"
rate_of() { sed -n 's/.* = \([0-9]*\) events\/s.*/\1/p' <<<"$1" | head -1; }
# Each measurement gets a fresh database, dropped right after it, so that no autovacuum of an
# earlier one runs beside the next. Rounds interleave the variants: the machine's other load
# varies over minutes, and the medians compare like with like.
for round in $(seq "$rounds"); do
  echo "-- round $round"
  targets="0"
  if [[ $round == 1 ]]; then targets="0 128"; fi  # 0: PostgreSQL's default toast_tuple_target
  for type in json jsonb text; do
    for target in $targets; do
      fresh_db layouts
      checkpoint
      line="$("$bin" layout "$(url "$port" layouts)" "$type" "$events" "$batch" "$target")"
      echo "$line"
      echo "layout-$type-$target $(rate_of "$line")" >>"$results"
      psql_primary -d postgres -c "DROP DATABASE layouts WITH (FORCE)"
    done
  done

  fresh_db copy_limit
  "$bin" prepare "$(url "$port" copy_limit)" 2>/dev/null
  cat "$tmp/events.copy" >/dev/null  # in the page cache, as the store's rows are in memory
  checkpoint
  t0=$(date +%s.%N)
  psql_primary -d copy_limit -c "\\copy events ($cols) FROM '$tmp/events.copy' WITH (FORMAT binary)"
  t1=$(date +%s.%N)
  copy_rate=$(python3 -c "print(round($events / ($t1 - $t0)))")
  echo "psql \\copy (one COPY, the store's layout): $events events in $(python3 -c "print(round($t1 - $t0, 2))") s = $copy_rate events/s"
  echo "copy $copy_rate" >>"$results"
  psql_primary -d postgres -c "DROP DATABASE copy_limit WITH (FORCE)"

  for shards in 1 2; do
    fresh_db "store_$shards"
    checkpoint
    out="$("$bin" commit "$(url "$port" "store_$shards")" "$(url "$replica_port" "store_$shards")" \
      "$events" "$batch" "$shards" "$tmp/export-$shards" 2>/dev/null)"
    echo "$out"
    rate=$(rate_of "$out")
    echo "store-$shards $rate" >>"$results"
    echo "store-$shards-ratio $(python3 -c "print(round($rate / $copy_rate, 2))")" >>"$results"
    echo "export-$shards $(sed -n 's/.* = \([0-9]*\) rows\/s.*/\1/p' <<<"$out")" >>"$results"
    echo "   ratio to this round's psql \\copy: $(python3 -c "print(round($rate / $copy_rate, 2))")"
    psql_primary -d postgres -c "DROP DATABASE store_$shards WITH (FORCE)"
  done

  if [[ -x "$build/sluice" ]]; then
    fresh_db loader
    d="$tmp/loader-data"
    rm -rf "$d"
    "$build/sluice" serve --listen 127.0.0.1:0 --data-dir "$d" --loader=false --buffer-shards 2 \
      --store "$(url "$port" loader)" --query-allow-privileged-role=true --log-level warn \
      >"$tmp/serve.log" 2>&1 &
    serve_pid=$!
    for _ in $(seq 300); do [[ -s "$d/serve.addr" ]] && break; sleep 0.1; done
    "$build/sluice" bench --url "http://$(cat "$d/serve.addr")" --endpoint batch --batch 100 \
      --connections 16 --duration "$(python3 -c "print(max(1, round($events / 150000, 1)))")" \
      >/dev/null
    kill -TERM "$serve_pid"
    wait "$serve_pid"
    checkpoint
    out="$("$build/sluice" export --once --data-dir "$d" --buffer-shards 2 \
      --store "$(url "$port" loader)" --store-read "$(url "$replica_port" loader)" \
      --log-level warn | head -1)"
    echo "sluice export --once (loader, 2 shards): $out"
    rate=$(sed -n 's/.*: \([0-9]*\) events\/s.*/\1/p' <<<"$out")
    echo "loader-2 $rate" >>"$results"
    echo "loader-2-ratio $(python3 -c "print(round($rate / $copy_rate, 2))")" >>"$results"
    echo "   ratio to this round's psql \\copy: $(python3 -c "print(round($rate / $copy_rate, 2))")"
    rm -rf "$d"
    psql_primary -d postgres -c "DROP DATABASE loader WITH (FORCE)"
  fi
done

echo "== medians over $rounds rounds (events/s; export rows/s; ratios to the same round's \\copy)"
python3 - "$results" <<'PY'
import statistics, sys
values = {}
for line in open(sys.argv[1]):
    key, value = line.split()
    values.setdefault(key, []).append(float(value))
for key, vs in values.items():
    print(f"{key:22} {statistics.median(vs):>10.2f}   ({', '.join(f'{v:g}' for v in vs)})")
PY
