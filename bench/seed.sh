#!/usr/bin/env bash
# The seed workload end to end on this machine (issue 7), for each configuration:
#   embedded  sluice serve with its defaults: disk buffer, embedded DuckDB hot store;
#   redis-pg  sluice serve --buffer redis://… (its own redis-server) --store postgres://…
#             (its own PostgreSQL 15 primary) --store-read …(a streaming replica);
# both exporting closed windows to a local object store (file://DATA_DIR/objects).
# `sluice bench --mix seed` offers RATE events/s (open loop) of ~2 KB events — 60 % single
# /v1/track events, 25 % batches of 5–20, 15 % batches of 100–500 — for DURATION seconds,
# with a freshness probe every 0.5 s, every messageId PREFIX-<seq>, and writes each
# acknowledged request's ids (--acked-out) and a per-second series (--series-out). With
# PostgreSQL the probes ask engine=postgres (--probe-engine): the DuckDB engine reads only the
# exported Parquet there.
# Meanwhile /metrics is sampled every 5 s (buffer backlog, loader events, exports). Then the
# loader is let drain, CPU seconds are read from /proc for sluice, the load generator,
# redis-server and PostgreSQL (primary + replica, every process), the server is stopped,
# `sluice export --once` flushes every loaded window to Parquet, and bench/seed_check.sh
# proves every acknowledged id is stored exactly once (Parquet + hot rows not exported).
#
# Full mode (the default) also measures the limits in the same run, after the seed load:
# a no-op HTTP handler (`serve --noop-route`, `bench --mix seed --endpoint noop`: the same
# requests, closed loop), raw pipelined XADD of the same generator's events to the same Redis
# (`bench --raw-xadd --mix seed`: each round trip one seed-mix request's events, closed loop),
# `psql \copy` of the stored rows into a scratch table, and DuckDB writing an exported
# window's rows to Parquet (build/src/bench/duck_exec, outside the query sandbox); and draws
# a PNG (gnuplot) of throughput, p99 latency and backlog over time.
#
# Usage: bench/seed.sh [BUILD_DIR]
#   env: SMOKE=1     2-minute run, --export-interval 1m, no limits (CI: make bench-smoke)
#        DURATION    seconds of load (900; 120 with SMOKE=1)
#        RATE        offered events/s (12000)
#        CONFIG      embedded | redis-pg | both (both)
#        EXPORT_INTERVAL  window length (10m; 1m with SMOKE=1)
#        CONNECTIONS load generator connections (32)
#        TEMPLATES   distinct event templates (100000: JSON that does not repeat, as real
#                    data; 1024 compresses far better than real data)
#        LIMITS      1/0: measure the limits (1; 0 with SMOKE=1)
#        LIMIT_DURATION   seconds per limit run (30)
#        PLOT        1/0: draw the PNG (1 when gnuplot is installed)
#        SERVE_ARGS  extra flags for sluice serve (e.g. "--background-nice 10" for an A/B run)
#        DISK_CHECK  1/0: refuse to start without the disk the largest configuration needs (1)
#        OUT         where reports go (BUILD_DIR/bench-seed[-smoke]); OUT/report.md is the
#                    block to append to BENCHMARKS.md
# Exit status: 0 when every configuration stored every acknowledged event exactly once; 1 on
# loss, duplicates or a failed step (load generator errors are reported, not failed on: an
# unacknowledged event is not checked). 2 on bad usage.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
sluice="$build/sluice"
smoke="${SMOKE:-0}"
if [[ "$smoke" == 1 ]]; then
  duration="${DURATION:-120}"
  export_interval="${EXPORT_INTERVAL:-1m}"
  limits="${LIMITS:-0}"
  out="${OUT:-$build/bench-seed-smoke}"
else
  duration="${DURATION:-900}"
  export_interval="${EXPORT_INTERVAL:-10m}"
  limits="${LIMITS:-1}"
  out="${OUT:-$build/bench-seed}"
fi
rate="${RATE:-12000}"
config="${CONFIG:-both}"
connections="${CONNECTIONS:-32}"
templates="${TEMPLATES:-100000}"
limit_duration="${LIMIT_DURATION:-30}"
plot="${PLOT:-auto}"
read -r -a extra_serve_args <<<"${SERVE_ARGS:-}"
if [[ "$plot" == auto ]]; then
  if command -v gnuplot >/dev/null 2>&1; then plot=1; else plot=0; fi
fi
case "$config" in
  both) configs=(embedded redis-pg) ;;
  embedded | redis-pg) configs=("$config") ;;
  *)
    echo "seed.sh: CONFIG must be embedded, redis-pg or both, not '$config'" >&2
    exit 2
    ;;
esac
if [[ ! -x "$sluice" ]]; then
  echo "seed.sh: no $sluice: build it first (ninja -C $build sluice)" >&2
  exit 2
fi
bench_help="$("$sluice" bench --help 2>&1 || true)"
for flag in --mix --id-prefix --acked-out --series-out; do
  if [[ "$bench_help" != *"$flag"* ]]; then
    echo "seed.sh: $sluice bench has no $flag: rebuild sluice (ninja -C $build sluice)" >&2
    exit 2
  fi
done
source "$root/scripts/pg.sh"
source "$root/scripts/redis.sh"
psql_bin="$(pg_bindir 2>/dev/null || true)/psql"
[[ -x "$psql_bin" ]] || psql_bin=psql
hz="$(getconf CLK_TCK)"

mkdir -p "$out"
# Disk: everything stays until the run ends. Per acknowledged event the embedded stack keeps
# ~0.7 KB of DuckDB + 0.3 KB of Parquet; Redis + PostgreSQL keeps the events twice (primary
# and replica, ~2.1 KB each) + Parquet, plus WAL and the limits' scratch (~16 GB). Measured:
# BENCHMARKS.md. A full disk mid-run fails the run late and for the wrong reason, so check now.
if [[ "${DISK_CHECK:-1}" == 1 ]]; then
  need_gb=0
  for c in "${configs[@]}"; do
    if [[ "$c" == redis-pg ]]; then g=$(( rate * duration * 4500 / 1000000000 + 16 ));
    else g=$(( rate * duration * 1000 / 1000000000 + 8 )); fi
    (( g > need_gb )) && need_gb=$g
  done
  free_gb=$(( $(df -Pk /tmp | awk 'NR == 2 {print $4}') / 1000000 ))
  if (( free_gb < need_gb )); then
    echo "seed.sh: /tmp has $free_gb GB free; $duration s at $rate events/s needs about $need_gb GB (${configs[*]}). Free disk space, shorten DURATION, or set DISK_CHECK=0" >&2
    exit 2
  fi
fi
tmp="$(mktemp -d /tmp/sluice-seed-XXXXXX)"
chmod 755 "$tmp"  # PostgreSQL runs as `postgres` and must enter it
serve_pid=""
sampler_pid=""
cleanup() {
  [[ -n "$sampler_pid" ]] && kill "$sampler_pid" 2>/dev/null
  [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null
  local left
  left="$(jobs -p)"
  # shellcheck disable=SC2086 # one pid per word
  [[ -n "$left" ]] && kill $left 2>/dev/null
  wait 2>/dev/null
  local c
  for c in "${configs[@]}"; do
    redis_stop "$tmp/$c/redis" >/dev/null 2>&1 || true
    pg_stop "$tmp/$c/pg-replica" || true
    pg_stop "$tmp/$c/pg-primary" || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
now() { date +%s.%N; }

# CPU ticks (user + system, plus reaped children's) of the given pids; gone pids count 0.
cpu_ticks() {
  local pid total=0 t
  for pid in "$@"; do
    t="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13 + $14 + $15}')" ||
      true
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
# A process and its live children (PostgreSQL's backends, a forked redis-server).
with_children() {
  local p
  for p in "$@"; do
    echo "$p"
    ps -o pid= --ppid "$p" 2>/dev/null || true
  done
}
pg_pids() {
  local d
  for d in "$@"; do
    [[ -f "$d/postmaster.pid" ]] && with_children "$(head -1 "$d/postmaster.pid")"
  done
}
redis_pids() { [[ -f "$1/redis.pid" ]] && with_children "$(cat "$1/redis.pid")"; }
# A snapshot line: sluice redis postgres (ticks).
cpu_snapshot() {
  local c="$1" d="$tmp/$1"
  local s r=0 p=0
  s="$(cpu_ticks "$serve_pid")"
  if [[ "$c" == redis-pg ]]; then
    # shellcheck disable=SC2046 # one pid per word
    r="$(cpu_ticks $(redis_pids "$d/redis"))"
    # shellcheck disable=SC2046
    p="$(cpu_ticks $(pg_pids "$d/pg-primary" "$d/pg-replica"))"
  fi
  echo "$s $r $p"
}

# Samples /metrics every 5 s: epoch,backlog_events,backlog_bytes,loader_events,export_windows
sample_metrics() {
  local addr="$1" file="$2" m
  echo "epoch,backlog_events,backlog_bytes,loader_events,export_windows" >"$file"
  while true; do
    if m="$(curl -sf --max-time 4 "http://$addr/metrics")"; then
      awk -v t="$(now)" '
        /^sluice_buffer_depth_events\{/ { be += $2 }
        /^sluice_buffer_depth_bytes\{/ { bb += $2 }
        /^sluice_loader_events_total / { le = $2 }
        /^sluice_export_windows_total / { ew = $2 }
        END { printf "%s,%d,%d,%d,%d\n", t, be, bb, le, ew }' <<<"$m" >>"$file"
    fi
    sleep 5
  done
}

backlog() {
  curl -sf --max-time 5 "http://$1/metrics" |
    awk '/^sluice_buffer_depth_events\{/ { s += $2 } END { print s + 0 }'
}

machine() {
  local cpu
  cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "$(nproc) cores ($cpu), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, Linux $(uname -r)"
}

failed=0
prefix_base="seed$(date +%s)"

run_config() {
  local c="$1"
  local d="$tmp/$c" res="$out/$c"
  local data="$d/d"
  local prefix="$prefix_base-$c"
  rm -rf "$res"
  mkdir -p "$d" "$res"
  chmod 755 "$d"
  local serve_args=(--listen 127.0.0.1:0 --data-dir "$data" --object-store "file://$data/objects"
    --export-interval "$export_interval" --buffer-max-bytes 60GiB)
  local store_args=()
  local pg_url="" rport="" pport="" rep_port=""
  if [[ "$c" == redis-pg ]]; then
    rport="$(redis_free_port)"
    redis_start "$d/redis" "$rport" "maxmemory 8gb" || return 1
    pport="$(pg_free_port)"
    pg_start_primary "$d/pg-primary" "$pport" "max_wal_size = 4GB" || return 1
    rep_port="$(pg_free_port)"
    pg_start_replica "$pport" "$d/pg-replica" "$rep_port" || return 1
    pg_url="postgres://postgres@127.0.0.1:$pport/sluice"
    store_args=(--buffer "redis://127.0.0.1:$rport" --store "$pg_url"
      --store-read "postgres://postgres@127.0.0.1:$rep_port/sluice"
      --query-allow-privileged-role=true)
    log "$c: redis-server on $rport, PostgreSQL primary on $pport, replica on $rep_port"
  fi

  "$sluice" serve "${serve_args[@]}" "${store_args[@]}" "${extra_serve_args[@]}" \
    >"$res/server.log" 2>&1 &
  serve_pid=$!
  local i
  for i in $(seq 600); do [[ -s "$data/serve.addr" ]] && break; sleep 0.05; done
  if [[ ! -s "$data/serve.addr" ]]; then
    log "$c: sluice serve did not start in 30 s; see $res/server.log"
    tail -20 "$res/server.log" >&2
    return 1
  fi
  local addr
  addr="$(cat "$data/serve.addr")"
  log "$c: sluice serve on $addr (pid $serve_pid); $duration s at $rate events/s (--mix seed)"

  sample_metrics "$addr" "$res/metrics.csv" &
  sampler_pid=$!
  # With a PostgreSQL store the probes must ask engine=postgres: the DuckDB engine sees only
  # the Parquet history there.
  local probe_engine=duckdb
  [[ "$c" == redis-pg ]] && probe_engine=postgres
  local cpu0 t0 t1 bench_rc=0
  cpu0="$(cpu_snapshot "$c")"
  t0="$(now)"
  # In a subshell, so that `times` reports the load generator's CPU alone.
  (
    rc=0
    "$sluice" bench --url "http://$addr" --mix seed --rate "$rate" --duration "$duration" \
      --connections "$connections" --templates "$templates" \
      --probe-interval 0.5 --probe-engine "$probe_engine" --id-prefix "$prefix" \
      --acked-out "$res/acked.csv" --series-out "$res/series.csv" \
      --format json --out "$res/bench.json" >"$res/bench.out" 2>"$res/bench.err" || rc=$?
    times >"$res/bench.times"
    exit $rc
  ) || bench_rc=$?
  t1="$(now)"
  if ((bench_rc != 0)); then
    log "$c: sluice bench exited $bench_rc: $(tail -3 "$res/bench.err")"
  fi
  # The loader drains what is left (at most 120 s), then the CPU is read.
  local drained_at="" b
  for i in $(seq 1200); do
    b="$(backlog "$addr" || echo -1)"
    if [[ "$b" == 0 ]]; then drained_at="$(now)"; break; fi
    sleep 0.1
  done
  local cpu1
  cpu1="$(cpu_snapshot "$c")"
  kill "$sampler_pid" 2>/dev/null || true
  wait "$sampler_pid" 2>/dev/null || true
  sampler_pid=""
  curl -sf "http://$addr/metrics" >"$res/metrics.end" || true

  # Redis's files before the raw XADD limit adds its own.
  local redis_disk=0
  [[ "$c" == redis-pg ]] && redis_disk="$(du -sb "$d/redis" | cut -f1)"

  # Limits against the same services, while they run (full mode).
  local raw_rate="" copy_rate="" copy_rows=""
  if [[ "$limits" == 1 && "$c" == redis-pg ]]; then
    # The AOF holds every XADD and XTRIM of the run until Redis rewrites it: compact it first
    # (and again after), so that the limit's 30 s of XADDs fit on the disk.
    redis-cli -p "$rport" BGREWRITEAOF >/dev/null 2>&1 || true
    log "$c: limit: raw pipelined XADD to the same Redis, $limit_duration s"
    "$sluice" bench --raw-xadd "redis://127.0.0.1:$rport" --mix seed \
      --connections 16 --duration "$limit_duration" --format json \
      --out "$res/limit-xadd.json" >/dev/null 2>"$res/limit-xadd.err" || true
    raw_rate="$(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['events_per_s']))" \
      "$res/limit-xadd.json" 2>/dev/null || true)"
    redis-cli -p "$rport" BGREWRITEAOF >/dev/null 2>&1 || true
  fi

  # Stop the server (SIGTERM: requests in flight finish, serve.addr is removed).
  kill "$serve_pid"
  wait "$serve_pid" || true
  serve_pid=""

  log "$c: sluice export --once"
  local export_rc=0
  (
    rc=0
    "$sluice" export --once --data-dir "$data" --object-store "file://$data/objects" \
      --export-interval "$export_interval" "${store_args[@]}" --log-level warn \
      >"$res/export-once.out" 2>&1 || rc=$?
    times >"$res/export-once.times"
    exit $rc
  ) || export_rc=$?
  if ((export_rc != 0)); then
    log "$c: sluice export --once failed: $(tail -3 "$res/export-once.out")"
  fi

  local check_rc=0
  local check_args=()
  [[ -n "$pg_url" ]] && check_args=(--pg "$pg_url")
  "$root/bench/seed_check.sh" "${check_args[@]}" "$sluice" "$data" "$res/acked.csv" "$prefix" \
    >"$res/seed_check.out" 2>&1 || check_rc=$?

  # Bytes on disk.
  local parquet_bytes hot_bytes=0 pg_bytes=0 pg_rows=0 buffer_disk_bytes
  parquet_bytes="$(du -sb "$data/objects/events" 2>/dev/null | cut -f1 || echo 0)"
  buffer_disk_bytes="$(du -scb "$data"/buffer* 2>/dev/null | tail -1 | cut -f1 || echo 0)"
  if [[ -n "$pg_url" ]]; then
    pg_bytes="$("$psql_bin" -qAtX -d "$pg_url" -c "SELECT pg_database_size('sluice')")"
    pg_rows="$("$psql_bin" -qAtX -d "$pg_url" -c "SELECT count(*) FROM events")"
  else
    hot_bytes="$(du -cb "$data"/hot.duckdb* 2>/dev/null | tail -1 | cut -f1 || echo 0)"
  fi

  if [[ "$limits" == 1 && -n "$pg_url" ]]; then
    # psql \copy of the same rows: out of the store into a file (untimed), then into a
    # scratch table of the same columns (timed).
    copy_rows="$(( pg_rows < 500000 ? pg_rows : 500000 ))"
    log "$c: limit: psql \\copy of $copy_rows stored rows"
    "$psql_bin" -qAtX -v ON_ERROR_STOP=1 -d "$pg_url" \
      -c "\\copy (SELECT * FROM events LIMIT $copy_rows) TO '$d/rows.copy' WITH (FORMAT binary)" \
      -c "CREATE TABLE copy_limit (LIKE events INCLUDING COMPRESSION)" -c "CHECKPOINT"
    cat "$d/rows.copy" >/dev/null
    local c0 c1
    c0="$(now)"
    "$psql_bin" -qAtX -v ON_ERROR_STOP=1 -d "$pg_url" \
      -c "\\copy copy_limit FROM '$d/rows.copy' WITH (FORMAT binary)"
    c1="$(now)"
    copy_rate="$(python3 -c "print(round($copy_rows / ($c1 - $c0)))")"
    "$psql_bin" -qAtX -d "$pg_url" -c "DROP TABLE copy_limit"
    rm -f "$d/rows.copy"
  fi

  # Facts for the summary.
  {
    echo "config $c"
    echo "prefix $prefix"
    echo "duration $duration"
    echo "rate $rate"
    echo "bench_t0 $t0"
    echo "bench_t1 $t1"
    echo "drained_at ${drained_at:-}"
    echo "bench_rc $bench_rc"
    echo "export_rc $export_rc"
    echo "check_rc $check_rc"
    echo "hz $hz"
    read -r s0 r0 p0 <<<"$cpu0"
    read -r s1 r1 p1 <<<"$cpu1"
    echo "cpu_sluice_ticks $((s1 - s0))"
    echo "cpu_redis_ticks $((r1 - r0))"
    echo "cpu_postgres_ticks $((p1 - p0))"
    echo "bench_times $(sed -n 2p "$res/bench.times" 2>/dev/null)"
    echo "export_once_times $(sed -n 2p "$res/export-once.times" 2>/dev/null)"
    echo "parquet_bytes ${parquet_bytes:-0}"
    echo "buffer_disk_bytes ${buffer_disk_bytes:-0}"
    echo "hot_bytes ${hot_bytes:-0}"
    echo "pg_bytes $pg_bytes"
    echo "pg_rows $pg_rows"
    echo "redis_disk_bytes $redis_disk"
    echo "raw_xadd_rate ${raw_rate:-}"
    echo "copy_rate ${copy_rate:-}"
    echo "copy_rows ${copy_rows:-}"
  } >"$res/facts"

  if [[ "$limits" == 1 ]]; then duckdb_limit "$c" "$res" "$data"; fi

  if [[ "$c" == redis-pg ]]; then
    redis_stop "$d/redis" || true
    pg_stop "$d/pg-replica" || true
    pg_stop "$d/pg-primary" || true
  fi
  # Keep the check's inputs small: the acked CSV stays in $res; the data dir goes.
  rm -rf "$data"
  ((bench_rc == 0 && export_rc == 0 && check_rc == 0))
}

# DuckDB writing the rows of the largest exported window to Parquet with the exporter's
# settings (zstd level 1, row groups of 100k): the rows go into a DuckDB table first
# (untimed), then COPY … TO (timed). duck_exec runs outside the query sandbox.
duckdb_limit() {
  local c="$1" res="$2" data="$3" duck="$build/src/bench/duck_exec" f rows
  if [[ ! -x "$duck" ]]; then
    log "$c: no $duck (ninja -C $build duck_exec): DuckDB limit skipped"
    return 0
  fi
  f="$(find "$data/objects/events" -name '*.parquet' -printf '%s %p\n' 2>/dev/null |
    sort -n | tail -1 | cut -d' ' -f2-)"
  [[ -n "$f" ]] || return 0
  log "$c: limit: DuckDB COPY of $(basename "$f")'s rows to Parquet"
  local db="$tmp/$c/duck-limit.db"
  rm -f "$db"
  "$duck" "$db" "CREATE TABLE t AS SELECT * FROM read_parquet('$f')" "CHECKPOINT"
  "$duck" "$db" "COPY (SELECT count(*) FROM t) TO '$tmp/$c/duck-rows.csv' (FORMAT csv, HEADER false)"
  rows="$(cat "$tmp/$c/duck-rows.csv")"
  # duck_exec's own start (process, opening the database) is timed alone and subtracted.
  local c0 c1 b0 b1
  b0="$(now)"
  "$duck" "$db" "SELECT count(*) FROM t"
  b1="$(now)"
  c0="$(now)"
  "$duck" "$db" "COPY t TO '$tmp/$c/duck-limit.parquet' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE 100000)"
  c1="$(now)"
  rm -f "$db" "$tmp/$c/duck-limit.parquet"
  {
    echo "duck_file $(basename "$f")"
    echo "duck_rows $rows"
    echo "duck_seconds $(python3 -c "print(max(0.001, ($c1 - $c0) - ($b1 - $b0)))")"
  } >>"$res/facts"
}

# The no-op handler: the same binary's HTTP stack with no parsing and no storage, closed loop,
# the seed mix's requests.
noop_limit() {
  local d="$tmp/noop" addr
  mkdir -p "$d"
  "$sluice" serve --listen 127.0.0.1:0 --data-dir "$d/d" --noop-route --loader=false \
    --log-level warn >"$out/noop-server.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 600); do [[ -s "$d/d/serve.addr" ]] && break; sleep 0.05; done
  addr="$(cat "$d/d/serve.addr")"
  log "limit: no-op handler, closed loop, $limit_duration s"
  "$sluice" bench --url "http://$addr" --mix seed --endpoint noop --connections 16 \
    --duration "$limit_duration" --format json --out "$out/limit-noop.json" >/dev/null 2>&1 || true
  kill "$serve_pid"
  wait "$serve_pid" || true
  serve_pid=""
  rm -rf "$d"
}

started="$(now)"
log "seed run: configs ${configs[*]}, $duration s at $rate events/s, windows of $export_interval, limits=$limits, output in $out"
for c in "${configs[@]}"; do
  if ! run_config "$c"; then failed=1; fi
done
if [[ "$limits" == 1 ]]; then noop_limit; fi
finished="$(now)"

{
  echo "date $(date -u +%Y-%m-%d)"
  echo "command SMOKE=$smoke DURATION=$duration RATE=$rate CONFIG=$config EXPORT_INTERVAL=$export_interval${SERVE_ARGS:+ SERVE_ARGS=\"$SERVE_ARGS\"} bench/seed.sh"
  echo "machine $(machine)"
  echo "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo ' (plus uncommitted changes)')"
  echo "wall_s $(python3 -c "print(round($finished - $started))")"
} >"$out/run.facts"

python3 "$root/bench/seed_report.py" "$out" "${configs[@]}" || failed=1
if [[ "$plot" == 1 ]]; then
  for c in "${configs[@]}"; do
    [[ -f "$out/$c/plot.gp" ]] || continue
    if gnuplot "$out/$c/plot.gp" 2>"$out/$c/gnuplot.err"; then
      log "$c: plot in $out/$c/plot.png"
    else
      log "$c: gnuplot failed: $(head -3 "$out/$c/gnuplot.err")"
    fi
  done
fi
if ((failed)); then
  log "seed run FAILED (see the lines above and $out)"
  exit 1
fi
log "seed run passed: every acknowledged event stored exactly once"
