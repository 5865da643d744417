#!/usr/bin/env bash
# Query times for five typical questions over EVENTS ~2 KB events (issue 3), in Sluice and in
# PostgreSQL 15 on the same rows, as ratios:
#  1. fill: `sluice serve --loader=false` takes EVENTS web-shop events from `sluice bench`
#     (batches of 100, FILL_RATE events/s: the seed rate by default, so the events span
#     EVENTS/FILL_RATE seconds of received_at and event_time, ~14 min for 10 M), timed to end
#     halfway through an export window (EXPORT_INTERVAL);
#  2. load: `sluice export --once` drains the buffer into the DuckDB hot store and exports the
#     windows that have ended to Parquet; the newest window (its first half-interval of events)
#     stays hot, so Sluice answers from the `events` view over Parquet history + hot rows, as on
#     a live server (the script prints the split; it needs the load to take under half an
#     interval);
#  3. copy: the same rows (the `events` view) are streamed by duck_exec as CSV into psql
#     `\copy` (no temporary file), into DESIGN.md's table layout (bench/queries/
#     postgres_events.sql: hourly partitions of received_at, jsonb with lz4), then VACUUM ANALYZE;
#  4. query: each question in bench/queries/q*.sql (the same SQL text is valid in both
#     dialects; {{NOW}} becomes the end of the fill, so "the last hour" and "today" mean the same
#     on both sides and on a rerun) runs once on each side and the answers must match, then
#     hyperfine times REPEAT runs after one warm-up: `sluice query --server` against a running
#     `sluice serve` (POST /v1/query) and `psql` against the PostgreSQL server, with jit on
#     (PostgreSQL's default) and again off (PGOPTIONS): the ratio is taken against the faster.
# Neither side has an index. Run on a quiet machine: both servers share its cores.
# Usage: bench/queries.sh [BUILD_DIR]   (targets: sluice duck_exec)
#   env: EVENTS (10000000), FILL_RATE (12000; 0 = closed loop, as fast as the server takes them),
#        REPEAT (5), TEMPLATES (100000), EXPORT_INTERVAL (10m), PG_SHARED_BUFFERS (6GB), PG_WORK_MEM (256MB),
#        OUT (BUILD_DIR/bench-queries).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
sluice="$build/sluice"
duck_exec="$build/src/bench/duck_exec"
events="${EVENTS:-10000000}"
fill_rate="${FILL_RATE:-12000}"
repeat="${REPEAT:-5}"
# 100,000 distinct event templates: with the load generator's default 1,024, Parquet
# dictionary-encodes the JSON columns and flatters DuckDB.
templates="${TEMPLATES:-100000}"
interval="${EXPORT_INTERVAL:-10m}"
out="${OUT:-$build/bench-queries}"
queries="$root/bench/queries"
export TZ=UTC
for tool in "$sluice" "$duck_exec"; do
  [[ -x "$tool" ]] || { echo "$tool missing: ninja -C $build sluice duck_exec" >&2; exit 1; }
done
command -v hyperfine >/dev/null || { echo "hyperfine missing: scripts/install-deps.sh test" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out/sql" "$out/answers"
source "$root/bench/lib.sh"
source "$root/scripts/pg.sh"
pgdir="$data/pg"
chmod 755 "$data"  # the PostgreSQL server runs as user postgres
trap 'pg_stop "$pgdir"; cleanup' EXIT

phase_start=0
phase() { phase_start=$(date +%s.%N); echo "== $1"; }
phase_end() {
  printf '   %s: %.1f s\n' "$1" "$(echo "$(date +%s.%N) - $phase_start" | bc)" | tee -a "$out/phases.txt"
}
sq() { "$sluice" query --data-dir "$data/d" --format csv "$1" | tail -n +2; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -sr);" \
  "commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src || echo '+changes')"
echo "command: EVENTS=$events FILL_RATE=$fill_rate REPEAT=$repeat TEMPLATES=$templates EXPORT_INTERVAL=$interval bench/queries.sh"

start_server --loader=false --log-level warn --export-interval "$interval"
rate_args=()
if ((fill_rate > 0)); then
  fill_s="$(echo "scale=3; $events / $fill_rate" | bc)"
  rate_args=(--rate "$fill_rate")
else
  fill_s="$((events / 150000 + 1))"
fi
interval_s=$(python3 -c "import sys; v = sys.argv[1]; m = {'s': 1, 'm': 60, 'h': 3600}
print(int(v[:-1]) * m[v[-1]] if v[-1] in m else int(v))" "$interval")
wait_s=$(python3 -c "import time; i, d = $interval_s, $fill_s; print(f'{(i / 2 - d - time.time()) % i:.3f}')")
echo "   waiting ${wait_s} s so that the fill ends halfway through a ${interval} window"
sleep "$wait_s"
phase "fill: $events events into the disk buffer at ${fill_rate} events/s (0 = closed loop)"
"$sluice" bench --url "http://$addr" --endpoint batch --batch 100 --connections 16 \
  --duration "$fill_s" "${rate_args[@]}" --templates "$templates" --format json \
  --out "$out/fill.json" >/dev/null
stop_server
phase_end fill

phase "load: sluice export --once (buffer -> DuckDB hot store, closed windows -> Parquet)"
"$sluice" export --once --data-dir "$data/d" --export-interval "$interval" --log-level warn \
  | tee "$out/load.txt"
phase_end load
read -r rows first last < <(sq "SELECT count(*), min(received_at), max(received_at) FROM events" | tr , ' ')
files=$(find "$data/d/objects" -name '*.parquet' 2>/dev/null | wc -l)
parquet_rows=0
if ((files > 0)); then
  parquet_rows=$(sq "SELECT count(*) FROM read_parquet('$data/d/objects/events/**/*.parquet')")
fi
echo "   events view: $rows rows received $first .. $last: $parquet_rows from $files Parquet" \
  "files, $((rows - parquet_rows)) from hot tables"
if ((parquet_rows == 0 || parquet_rows == rows)); then
  echo "   (not the usual split: the load took longer than half an export interval, or the" \
    "fill is shorter than one)"
fi
now=$(sq "SELECT strftime(date_trunc('second', max(received_at)) + INTERVAL 1 SECOND,
                          '%Y-%m-%d %H:%M:%S+00') FROM events")
from_hour=$(sq "SELECT strftime(date_trunc('hour', min(received_at)), '%Y-%m-%d %H:00:00+00') FROM events")
echo "   data dir after the load: $(du -sh "$data/d"/* | awk '{printf "%s %s  ", $2, $1}' | sed "s|$data/d/||g")"
echo "   NOW = $now (end of the fill: 'the last hour' and 'today' end here)"

phase "copy: the same rows into PostgreSQL 15"
pg_port="$(pg_free_port)"
pg_settings=(
  "shared_buffers = ${PG_SHARED_BUFFERS:-6GB}"
  "effective_cache_size = 16GB"
  "work_mem = ${PG_WORK_MEM:-256MB}"
  "maintenance_work_mem = 1GB"
  "max_parallel_workers_per_gather = 2"
  "max_parallel_workers = 2"
  "jit = on"
  "timezone = 'UTC'"
  "max_wal_size = 4GB"
  "checkpoint_timeout = 30min"
)
printf '%s\n' "${pg_settings[@]}" >"$out/postgresql.conf.extra"
pg_start_primary "$pgdir" "$pg_port" "${pg_settings[@]}"
psql=("$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres -d sluice)
sed -e "s/{{FROM_HOUR}}/$from_hour/g" -e "s/{{TO_HOUR}}/$now/g" "$queries/postgres_events.sql" \
  | "${psql[@]}" -f -
columns="event_id, type, event, user_id, anonymous_id, event_time, sent_at, received_at,
         properties, traits, context, source"
"$duck_exec" --read-only "$data/d/hot.duckdb" \
  "COPY (SELECT $columns FROM events) TO '/dev/stdout' (FORMAT csv, HEADER false, USE_TMP_FILE false)" \
  | "${psql[@]}" -c "\\copy events ($columns) FROM STDIN (FORMAT csv)"
phase_end copy
phase "vacuum: VACUUM ANALYZE events"
"${psql[@]}" -c "VACUUM ANALYZE events"
phase_end vacuum
pg_rows=$("${psql[@]}" -At -c "SELECT count(*) FROM events")
echo "   PostgreSQL: $pg_rows rows in $("${psql[@]}" -At -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass") partitions," \
  "$("${psql[@]}" -At -c "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits WHERE inhparent = 'events'::regclass")" \
  "with TOAST; lz4: $("${psql[@]}" -At -c "SELECT count(*) FROM (SELECT 1 FROM events WHERE pg_column_compression(context) = 'lz4' LIMIT 1000) x")/1000 sampled contexts"
if [[ "$pg_rows" != "$rows" ]]; then
  echo "PostgreSQL has $pg_rows rows, Sluice's events view $rows" >&2
  exit 1
fi

phase "query: $repeat timed runs of each question on each side after one warm-up"
start_server --log-level warn --export-interval "$interval" --query-timeout 3600s
names=()
for file in "$queries"/q*.sql; do
  name="$(basename "$file" .sql)"
  names+=("$name")
  sed "s/{{NOW}}/$now/g" "$file" >"$out/sql/$name.sql"
  "$sluice" query --server "http://$addr" --query-timeout 3600s --format csv - \
    <"$out/sql/$name.sql" >"$out/answers/$name-sluice.csv"
  "${psql[@]}" --csv -f "$out/sql/$name.sql" >"$out/answers/$name-postgres.csv"
  python3 "$queries/results.py" compare "$name" "$out/answers/$name-sluice.csv" \
    "$out/answers/$name-postgres.csv"
done
time_it() {  # NAME COMMAND: hyperfine's JSON in $out/NAME.json, its log in $out/hyperfine.log
  hyperfine --style basic --warmup 1 --runs "$repeat" --export-json "$out/$1.json" -n "$1" "$2" \
    >>"$out/hyperfine.log"
  python3 "$queries/results.py" median "$out/$1.json"
}
for name in "${names[@]}"; do
  time_it "$name-sluice" "'$sluice' query --server 'http://$addr' --query-timeout 3600s \
    --format csv - <'$out/sql/$name.sql' >/dev/null"
  time_it "$name-postgres" "${psql[*]} --csv -f '$out/sql/$name.sql' >/dev/null"
  time_it "$name-postgres-nojit" \
    "PGOPTIONS='-c jit=off' ${psql[*]} --csv -f '$out/sql/$name.sql' >/dev/null"
done
stop_server
phase_end query

echo
echo "PostgreSQL settings (besides scripts/pg.sh's): $(paste -sd ';' "$out/postgresql.conf.extra")"
echo "Sluice: sluice serve defaults (--duckdb-memory-limit 4GB, DuckDB threads = cores)"
python3 "$queries/results.py" table "$out" "${names[@]}" | tee "$out/table.md"
