#!/usr/bin/env bash
# Embedded pipeline benchmarks (issue 3), on this machine, load generator included:
#  1. loader throughput from a full buffer: ingest EVENTS ~2 KB events with --loader=false,
#     stop, then time `sluice export --once`, which drains the buffer into DuckDB; the limit
#     beside it is the ingest rate of the same events into the disk buffer alone.
#  2. freshness at the seed rate: 12,000 events/s offered in batches of 20 for DURATION s with
#     a probe every 100 ms (ack → visible in /v1/query).
# Usage: bench/pipeline.sh [BUILD_DIR]   env: EVENTS (default 1000000), DURATION (default 60),
#        REPEAT (default 3), TEMPLATES (distinct event templates; default 0 = the load
#        generator's 1024, repetitive data; 100000 is closer to real events and slower to
#        compress). Raw reports in $OUT (default BUILD_DIR/bench-pipeline).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
sluice="$build/sluice"
events="${EVENTS:-1000000}"
duration="${DURATION:-60}"
repeat="${REPEAT:-3}"
templates="${TEMPLATES:-0}"
out="${OUT:-$build/bench-pipeline}"
mkdir -p "$out"
source "$root/bench/lib.sh"

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $events events; ${duration}s freshness runs; x$repeat; templates $templates"
for i in $(seq "$repeat"); do
  rm -rf "$data/d"
  start_server --loader=false --log-level warn
  # Closed loop until EVENTS are acknowledged: duration from the rate of the first run.
  "$sluice" bench --url "http://$addr" --endpoint batch --batch 100 --connections 16 \
    --templates "$templates" \
    --duration "$(( events / 150000 + 1 ))" --format json --out "$out/fill-$i.json" >/dev/null
  stop_server
  /usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KiB max RSS" \
    "$sluice" export --once --data-dir "$data/d" --log-level warn >"$out/drain-$i.txt" 2>&1
  python3 - "$out/fill-$i.json" "$out/drain-$i.txt" <<'PY'
import json, re, sys
fill = json.load(open(sys.argv[1]))
drain = open(sys.argv[2]).read()
m = re.search(r"loaded (\d+) events .* in ([\d.]+) s: (\d+) events/s", drain)
t = re.search(r"([\d.]+) s wall, ([\d.]+) s user, ([\d.]+) s sys, (\d+) KiB", drain)
print(f"load: {m.group(1)} events in {m.group(2)} s = {int(m.group(3)):,} events/s "
      f"(cpu {float(t.group(2)) + float(t.group(3)):.1f} s, rss {int(t.group(4)) // 1024} MiB); "
      f"ingest of the same into the buffer alone: {fill['events_per_s']:,.0f} events/s; "
      f"ratio {int(m.group(3)) / fill['events_per_s']:.2f}")
PY
done
for i in $(seq "$repeat"); do
  rm -rf "$data/d"
  start_server --log-level warn
  "$sluice" bench --url "http://$addr" --endpoint batch --batch 20 --rate 12000 \
    --templates "$templates" \
    --connections 16 --duration "$duration" --probe-interval 0.1 --format json \
    --out "$out/fresh-$i.json" >/dev/null
  stop_server
  python3 - "$out/fresh-$i.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"freshness: p50 {r['freshness_p50_ms']:.1f} ms p99 {r['freshness_p99_ms']:.1f} ms "
      f"max {r['freshness_max_ms']:.1f} ms ({r['probes_visible']}/{r['probes']} probes visible, "
      f"{r['probes_timed_out']} timed out); ingest {r['events_per_s']:,.0f} ev/s "
      f"p99 ack {r['p99_ms']:.2f} ms, errors {r['errors']}")
PY
done
