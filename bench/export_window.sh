#!/usr/bin/env bash
# Time to export one 10-minute window at the seed rate (~7.2 M events of ~2 KB) while ingest
# continues at 12,000 events/s (issue 3), and the ingest acknowledgement latency meanwhile.
#
# 1. Fill: the window's events are put in the disk buffer quickly (closed loop, --loader=false),
#    starting early enough in a window that the fill ends inside it.
# 2. The server restarts with the loader on, and `sluice bench` offers RATE events/s (batches of
#    20) while the loader drains the backlog, until the window closes (its end + the 30 s grace:
#    the watermark rule). That run is stopped with SIGINT and reports ingest before the export.
# 3. A second `sluice bench` at the same rate starts at once and runs until the exporter logs
#    the window as exported (after its manifest entry is written); it is stopped with SIGINT,
#    so its report is the ingest latency during the export. It starts at the close, so it also
#    covers the exporter's wait for its next poll (at most 5 s) and any loader lag left then.
#    Two runs rather than one, so that the latency of the export is not diluted by the minutes
#    of backlog draining before it.
# The exporter's own log line gives rows, bytes and seconds of the export.
#
# Usage: bench/export_window.sh [BUILD_DIR]
#   env: FILL_SECONDS (default 30), EXPORT_INTERVAL seconds (default 600; 60 for a quick check),
#        RATE events/s offered during the export (default 12000), TEMPLATES (default 100000
#        distinct event templates: the load generator's default 1024 makes data that zstd
#        packs into ~4 bytes an event, far from real). Reports in BUILD_DIR/bench-export.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
sluice="$build/sluice"
fill="${FILL_SECONDS:-30}"
interval="${EXPORT_INTERVAL:-600}"
rate="${RATE:-12000}"
templates="${TEMPLATES:-100000}"
grace=30
out="$build/bench-export"
mkdir -p "$out"
if (( fill + 20 >= interval )); then
  echo "FILL_SECONDS ($fill) must be at least 20 s shorter than EXPORT_INTERVAL ($interval)" >&2
  exit 2
fi
source "$root/bench/lib.sh"

json() {  # json FILE KEY: one value of a bench JSON report
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"
}
# Offers RATE events/s until stopped; sets $bench_pid.
start_load() {
  "$sluice" bench --url "http://$addr" --batch 20 --rate "$rate" --connections 16 \
    --templates "$templates" --duration 86400 --format json --out "$1" >/dev/null 2>>"$out/bench.log" &
  bench_pid=$!
}
# SIGINT: the run ends, answers in flight are waited for, the report is written.
stop_load() {
  kill -INT "$bench_pid"
  wait "$bench_pid"
}

# Start the fill early enough in a window that it ends inside it.
while (( $(date +%s) % interval > interval - fill - 20 )); do sleep 1; done
fill_start=$(date +%s)
window_end=$(( fill_start - fill_start % interval + interval ))
close_at=$(( window_end + grace ))
start_server --loader=false --log-level warn
"$sluice" bench --url "http://$addr" --batch 100 --connections 16 --duration "$fill" \
  --templates "$templates" --format json --out "$out/fill.json" >/dev/null
stop_server
echo "filled: $(json "$out/fill.json" events_acked) events in ${fill} s;" \
  "window ends $(date -u -d "@$window_end" +%H:%M:%SZ), closes $(date -u -d "@$close_at" +%H:%M:%SZ)"

start_server --log-level info --export-interval "${interval}s" --export-grace "${grace}s"
start_load "$out/before.json"
while (( $(date +%s) < close_at )); do sleep 0.2; done
stop_load
export_start=$(date +%s.%N)
start_load "$out/during.json"
deadline=$(( close_at + 1800 ))
until grep -q "exporter: window .* exported" "$out/server.log"; do
  if (( $(date +%s) > deadline )); then
    echo "the window was not exported within 30 min of its close; see $out/server.log" >&2
    exit 1
  fi
  sleep 0.2
done
stop_load
export_end=$(date +%s.%N)
stop_server

grep "exporter: window .* exported" "$out/server.log" | head -1
python3 - "$out/before.json" "$out/during.json" "$export_start" "$export_end" <<'PY'
import json, sys
before, during = (json.load(open(p)) for p in sys.argv[1:3])
span = float(sys.argv[4]) - float(sys.argv[3])
def line(name, r):
    return (f"{name}: ack latency p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms "
            f"max {r['max_ms']:.2f} ms; {r['events_per_s']:,.0f} events/s acked of "
            f"{r['target_events_per_s']:,.0f} offered (target {'met' if r['rate_target_met'] else 'NOT met'}), "
            f"{r['events_acked']:,} events in {r['duration_s']:.1f} s, errors {r['errors']}, "
            f"connection errors {r['connection_errors']}")
print(line("ingest while the backlog loads (restart to window close)", before))
print(line(f"ingest during the export (window close to manifest entry, {span:.1f} s)", during))
PY
