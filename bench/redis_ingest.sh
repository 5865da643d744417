#!/usr/bin/env bash
# Ingest into the Redis Streams buffer against the physical limit, in one run: batches of 100
# ~2 KB events through `sluice serve --buffer redis://…` (loader off: the ingest path into the
# buffer only), beside raw pipelined XADD of the same events to the same Redis
# (`sluice bench --raw-xadd`: per batch one round trip of 100 `XADD stream * r <event>`), as a
# ratio; then p50/p99 of the sluice path at 12,000 events/s offered (open loop).
#
# Redis: its own redis-server (scripts/redis.sh) in a temp dir on a free port, with
# appendonly yes + appendfsync everysec, maxmemory-policy noeviction and maxmemory 8gb, and no
# automatic AOF rewrite (auto-aof-rewrite-percentage 0): with it, Redis forks and rewrites
# the whole dataset several times per run (at 64 MB of AOF, then at every doubling), seconds of
# CPU and disk at moments that differ from run to run. Instead, before every run Redis is
# emptied (FLUSHALL) and its AOF rewritten (BGREWRITEAOF), so each run starts from the same
# empty state and the AOF (up to ~7 GB per 20 s run) does not pile up across runs. The raw and
# sluice runs are interleaved, REPEAT rounds of both, and the medians compared: the machine is
# shared and its other load varies over minutes. The load generator, sluice and Redis share
# the machine.
#
# Usage: bench/redis_ingest.sh [BUILD_DIR]
#   env: DURATION (s per run, default 20), REPEAT (rounds, default 3), CONNECTIONS (16),
#        RATE (events/s of the latency run, default 12000), OUT (default BUILD_DIR/bench-redis)
# Prints one line per run and Markdown tables of medians to stdout; raw JSON reports, the
# server's log and Redis's log go to $OUT.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
sluice="$build/sluice"
duration="${DURATION:-20}"
repeat="${REPEAT:-3}"
connections="${CONNECTIONS:-16}"
rate="${RATE:-12000}"
out="${OUT:-$build/bench-redis}"
if [[ ! -x "$sluice" ]]; then
  echo "no $sluice: build it first (ninja -C $build sluice)" >&2
  exit 1
fi
if [[ "$("$sluice" serve --help 2>&1 || true)" != *"redis://"* ]]; then
  echo "$sluice serve takes no --buffer redis://…: build one with the Redis buffer wired" >&2
  exit 1
fi
mkdir -p "$out"
source "$root/bench/lib.sh"
source "$root/scripts/redis.sh"
redis_dir="$data/redis"
# Redis stops after the server and the load generator, before lib.sh's cleanup removes the
# temp dir it lives in.
finish() {
  local left
  left="$(jobs -p)"
  # shellcheck disable=SC2086 # one pid per word
  [[ -n "$left" ]] && kill $left 2>/dev/null
  wait 2>/dev/null
  cp "$redis_dir/redis.log" "$out/redis.log" 2>/dev/null || true
  redis_stop "$redis_dir" || true
  cleanup
}
trap finish EXIT
port="$(redis_free_port)"
redis_start "$redis_dir" "$port" "maxmemory 8gb" "auto-aof-rewrite-percentage 0"
redis="redis://127.0.0.1:$port"
rcli() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }

# Waits until no AOF rewrite is running or scheduled.
aof_quiet() {
  local info
  for _ in $(seq 1200); do
    info="$(rcli INFO persistence | tr -d '\r')"
    if grep -qx 'aof_rewrite_in_progress:0' <<<"$info" &&
      grep -qx 'aof_rewrite_scheduled:0' <<<"$info"; then
      return 0
    fi
    sleep 0.1
  done
  echo "redis: an AOF rewrite did not finish in 120 s; see $out/redis.log" >&2
  return 1
}

# Empties Redis and rewrites its AOF (to almost nothing), then waits for the rewrite.
fresh_redis() {
  aof_quiet
  rcli FLUSHALL >/dev/null
  rcli BGREWRITEAOF >/dev/null
  aof_quiet
}

# summary FILE NAME: one line from a JSON report.
summary() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<14} {r['events_per_s']:>10.0f} ev/s {r['mb_per_s']:>6.1f} MB/s  "
      f"p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} p99.9 {r['p999_ms']:.2f} ms  "
      f"errors {r['errors']} {r['connection_errors']}"
      + ("" if not r['open_loop'] else f"  target {'met' if r['rate_target_met'] else 'NOT met'}"))
PY
}

events=(--batch 100 --event-bytes 2048 --connections "$connections")

# raw I: raw XADD of the events (the stream is deleted after the run).
raw() {
  fresh_redis
  "$sluice" bench --raw-xadd "$redis" "${events[@]}" --duration "$duration" \
    --format json --out "$out/raw-$1.json" >/dev/null
  summary "$out/raw-$1.json" "raw-$1"
}

# through_sluice NAME ARGS…: sluice serve with the Redis buffer on a fresh data dir, loaded by
# sluice bench over HTTP with the same events.
through_sluice() {
  local name=$1; shift
  fresh_redis
  rm -rf "$data/d"
  start_server --buffer "$redis" --loader=false --log-level warn
  "$sluice" bench --url "http://$addr" --endpoint batch "${events[@]}" --duration "$duration" \
    --format json --out "$out/$name.json" "$@" >/dev/null
  stop_server
  summary "$out/$name.json" "$name"
}

echo "command: DURATION=$duration REPEAT=$repeat CONNECTIONS=$connections RATE=$rate $0 $build"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r);" \
  "$(redis-server --version | awk '{print $1, $2, $3}'): appendfsync everysec, noeviction," \
  "maxmemory 8gb, no automatic AOF rewrite; batches of 100 ~2 KB events," \
  "$connections connections, ${duration}s x $repeat"
for i in $(seq "$repeat"); do
  raw "$i"
  through_sluice "sluice-$i"
done
through_sluice "sluice-rate" --rate "$rate"

python3 - "$out" "$repeat" "$rate" <<'PY'
import json, statistics, sys
out, repeat, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def load(name): return json.load(open(f"{out}/{name}.json"))
def med(prefix, key):
    return statistics.median(load(f"{prefix}-{i}")[key] for i in range(1, repeat + 1))
s, r = med("sluice", "events_per_s"), med("raw", "events_per_s")
print("\n| batches of 100 ~2 KB events, closed loop | sluice → Redis buffer | raw pipelined XADD "
      "| ratio sluice/raw |\n|---|---|---|---|")
print(f"| events/s (median of {repeat}) | {s:,.0f} | {r:,.0f} | {s / r:.2f} |")
print(f"| MB/s of event JSON | {med('sluice', 'mb_per_s'):,.1f} | {med('raw', 'mb_per_s'):,.1f} "
      f"| {med('sluice', 'mb_per_s') / med('raw', 'mb_per_s'):.2f} |")
print(f"\ntarget >= 40,000 events/s through sluice: {'met' if s >= 40000 else 'NOT met'} "
      f"({s:,.0f})")
print("\n| run | p50 ms | p99 ms | p99.9 ms | events/s |\n|---|---|---|---|---|")
for prefix, label in (("raw", "raw XADD, closed loop (per batch round trip)"),
                      ("sluice", "sluice, closed loop (per HTTP request)")):
    print(f"| {label} | {med(prefix, 'p50_ms'):.2f} | {med(prefix, 'p99_ms'):.2f} "
          f"| {med(prefix, 'p999_ms'):.2f} | {med(prefix, 'events_per_s'):,.0f} |")
l = load("sluice-rate")
print(f"| sluice at {rate:,.0f} events/s offered (open loop, one run) | {l['p50_ms']:.2f} "
      f"| {l['p99_ms']:.2f} | {l['p999_ms']:.2f} | {l['events_per_s']:,.0f} |")
if not l["rate_target_met"]:
    scheduled = (l["requests_sent"] + l["requests_missed"]) * l["batch"]
    print(f"\nthe {rate:,.0f} events/s target was NOT met: {l['events_acked']:,} of {scheduled:,} "
          f"scheduled events acked, {l['requests_missed']} scheduled requests not sent "
          f"({out}/sluice-rate.json)")
PY
