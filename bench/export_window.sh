#!/usr/bin/env bash
# Time to export one 10-minute window at the seed rate (~7.2 M events of ~2 KB) while ingest
# continues at 12,000 events/s (issue 3). The window's events are put in the disk buffer
# quickly (closed loop, --loader=false), then the server restarts with the loader on and
# `sluice bench` offers 12,000 events/s until the exporter has closed and written the window;
# the exporter's own log line gives rows, bytes and seconds.
# Usage: bench/export_window.sh [BUILD_DIR]   env: FILL_SECONDS (default 30)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
sluice="$build/sluice"
fill="${FILL_SECONDS:-30}"
out="$build/bench-export"
mkdir -p "$out"
source "$root/bench/lib.sh"

# Start the fill early enough in a 10-minute window that it ends inside it.
while (( $(date +%s) % 600 > 600 - fill - 20 )); do sleep 1; done
start_server --loader=false --log-level warn
"$sluice" bench --url "http://$addr" --batch 100 --connections 16 --duration "$fill" \
  --format json --out "$out/fill.json" >/dev/null
stop_server
echo "filled: $(python3 -c "import json;print(json.load(open('$out/fill.json'))['events_acked'])") events"
start_server --log-level info
# Offer the seed rate until the filled window is exported (window end + grace + export).
"$sluice" bench --url "http://$addr" --batch 20 --rate 12000 --connections 16 \
  --duration 900 --format json --out "$out/during.json" >/dev/null &
bench_pid=$!
until grep -q "exporter: window .* exported" "$out/server.log"; do sleep 2; done
kill "$bench_pid" 2>/dev/null || true; wait "$bench_pid" 2>/dev/null || true
grep "exporter: window .* exported" "$out/server.log" | head -1
stop_server
