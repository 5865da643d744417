#!/usr/bin/env bash
# Ingest benchmarks of issue 2, each beside the same load against the no-op handler of the
# same binary (the HTTP ceiling on this machine), as a ratio. The load generator runs on the
# same machine as the server. The loader is off (--loader=false): this measures the ingest
# path into the durable buffer; bench/pipeline.sh measures it with the loader running.
#
# Usage: bench/ingest.sh [BUILD_DIR]     env: DURATION (s, default 60), REPEAT (default 1)
# Prints one line per run and a Markdown table of medians to stdout; raw JSON reports go to
# $OUT (default build/bench-ingest).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
sluice="$build/sluice"
duration="${DURATION:-60}"
repeat="${REPEAT:-1}"
out="${OUT:-$build/bench-ingest}"
mkdir -p "$out"
source "$root/bench/lib.sh"

# run NAME ENDPOINT ARGS… : one bench run on a fresh server and data dir; JSON to $out/NAME-i.json
run() {
  local name=$1 endpoint=$2; shift 2
  for i in $(seq "$repeat"); do
    rm -rf "$data/d"
    start_server --noop-route --loader=false --log-level warn
    "$sluice" bench --url "http://$addr" --endpoint "$endpoint" --duration "$duration" \
      --format json --out "$out/$name-$i.json" "$@" >/dev/null
    stop_server
    python3 - "$out/$name-$i.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<22} {r['events_per_s']:>10.0f} ev/s {r['requests_per_s']:>9.0f} req/s "
      f"p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} p99.9 {r['p999_ms']:.2f} ms  errors {r['errors']}")
PY
  done
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); duration ${duration}s x $repeat"
run batch100        batch --batch 100 --connections 16
run batch100-noop   noop  --batch 100 --connections 16
run single          track --connections 64 --threads 1
run single-noop     noop  --batch 1 --connections 64 --threads 1
run rate12k-b20     batch --batch 20 --rate 12000 --connections 16
run rate12k-b20-noop noop --batch 20 --rate 12000 --connections 16

python3 - "$out" "$repeat" <<'PY'
import json, statistics, sys
out, repeat = sys.argv[1], int(sys.argv[2])
def med(name, key):
    return statistics.median(json.load(open(f"{out}/{name}-{i}.json"))[key] for i in range(1, repeat + 1))
rows = [("batches of 100, closed loop", "batch100", "events_per_s", "events/s"),
        ("single events, closed loop", "single", "requests_per_s", "requests/s"),
        ("12,000 events/s offered, batches of 20", "rate12k-b20", "p99_ms", "p99 ms")]
print("\n| scenario | sluice (fsynced) | no-op handler | ratio |\n|---|---|---|---|")
for label, name, key, unit in rows:
    a, b = med(name, key), med(name + "-noop", key)
    print(f"| {label}: {unit} | {a:,.1f} | {b:,.1f} | {a / b:.2f} |")
print("\n| scenario | p50 ms | p99 ms | p99.9 ms | events/s |\n|---|---|---|---|---|")
for label, name, _, _ in rows:
    for n in (name, name + "-noop"):
        print(f"| {n} | {med(n,'p50_ms'):.2f} | {med(n,'p99_ms'):.2f} | {med(n,'p999_ms'):.2f} | {med(n,'events_per_s'):,.0f} |")
PY
