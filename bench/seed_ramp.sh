#!/usr/bin/env bash
# The highest rate each configuration sustains (issue 7): for each configuration, runs the
# seed workload (bench/seed.sh: a fresh stack per step, --mix seed, freshness probes, the
# exactly-once check) at each rate of its list in turn, HOLD seconds each, and stops at the
# first rate that fails. A rate passes when, over the whole hold:
#   - every offered event was acknowledged (no error answers, nothing missed by the schedule),
#   - the acknowledgement latency p99 is at most P99_MS (50),
#   - the buffer backlog is flat (seed_report.py: the last third's median is within twice the
#     first third's plus one second of load),
#   - and every acknowledged event is stored exactly once.
# The sustainable rate is the highest passing one. Windows are EXPORT_INTERVAL (2m) long so
# that each hold exports about HOLD / 2 minutes of windows: the share of time spent exporting
# is the same as with 10-minute windows (an export takes time in proportion to its rows), but a
# 5-minute hold cannot fall between two exports.
#
# Usage: bench/seed_ramp.sh [BUILD_DIR]
#   env: CONFIG          embedded | redis-pg | both (both)
#        RATES_EMBEDDED  events/s to try in order (20000 25000 28000 32000)
#        RATES_REDIS_PG  (12000 15000 18000 21000)
#        HOLD            seconds per rate (300)
#        P99_MS          latency bound (50)
#        EXPORT_INTERVAL (2m)
#        OUT             (BUILD_DIR/bench-ramp); OUT/ramp.md is the block for BENCHMARKS.md
# Exit status: 0 when every step ran (a failing rate is a finding, not an error); 1 when a
# step lost or duplicated events or could not run; 2 on bad usage.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
config="${CONFIG:-both}"
hold="${HOLD:-300}"
p99_ms="${P99_MS:-50}"
export_interval="${EXPORT_INTERVAL:-2m}"
out="${OUT:-$build/bench-ramp}"
read -r -a rates_embedded <<<"${RATES_EMBEDDED:-20000 25000 28000 32000}"
read -r -a rates_redis_pg <<<"${RATES_REDIS_PG:-12000 15000 18000 21000}"
case "$config" in
  both) configs=(embedded redis-pg) ;;
  embedded | redis-pg) configs=("$config") ;;
  *)
    echo "seed_ramp.sh: CONFIG must be embedded, redis-pg or both, not '$config'" >&2
    exit 2
    ;;
esac
if ! [[ "$hold" =~ ^[0-9]+$ && "$hold" -ge 30 ]]; then
  echo "seed_ramp.sh: HOLD must be a whole number of seconds, at least 30 (got '$hold')" >&2
  exit 2
fi
mkdir -p "$out"
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

failed=0
table=()
for c in "${configs[@]}"; do
  if [[ "$c" == embedded ]]; then rates=("${rates_embedded[@]}"); else rates=("${rates_redis_pg[@]}"); fi
  best=""
  for r in "${rates[@]}"; do
    step="$out/$c-$r"
    log "ramp: $c at $r events/s for $hold s"
    rc=0
    SMOKE=0 LIMITS=0 PLOT=1 CONFIG="$c" RATE="$r" DURATION="$hold" \
      EXPORT_INTERVAL="$export_interval" OUT="$step" "$root/bench/seed.sh" "$build" \
      >"$step.log" 2>&1 || rc=$?
    summary="$step/$c/summary.json"
    if [[ ! -f "$summary" ]]; then
      log "ramp: $c at $r: no summary (seed.sh exited $rc; see $step.log)"
      failed=1
      break
    fi
    verdict="$(python3 - "$summary" "$p99_ms" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
bound = float(sys.argv[2])
why = []
if not s.get("acked") or s.get("acked") < s.get("offered", 0) or s.get("errors"):
    why.append(f"acknowledged {s.get('acked')} of {s.get('offered')} offered, "
               f"{s.get('errors')} error answers")
if s.get("p99_ms") is None or s["p99_ms"] > bound:
    why.append(f"p99 {s.get('p99_ms')} ms > {bound:g} ms")
if s.get("backlog_growing") is not False:
    why.append("backlog growing")
if not s.get("check_ok"):
    why.append("LOSS OR DUPLICATES")
fig = (f"p50 {s.get('p50_ms')} ms, p99 {s.get('p99_ms')} ms, p99.9 {s.get('p999_ms')} ms, "
       f"backlog {'growing' if s.get('backlog_growing') else 'flat'} (last third median "
       f"{s.get('backlog_median_last_third')}), freshness p99 {s.get('fresh_p99_ms')} ms, "
       f"{s.get('exports')} exports, exactly once {'yes' if s.get('check_ok') else 'NO'}")
print(("pass" if not why else "fail: " + "; ".join(why)) + "\t" + fig)
EOF
)"
    result="${verdict%%$'\t'*}"
    figures="${verdict#*$'\t'}"
    log "ramp: $c at $r: $result ($figures)"
    table+=("| $c | $r | $result | $figures |")
    if [[ "$result" == *"LOSS OR DUPLICATES"* ]]; then failed=1; fi
    if [[ "$result" != pass ]]; then break; fi
    best="$r"
  done
  table+=("| **$c** | **sustained: ${best:-none of the rates tried}** | | |")
done

{
  echo "### Maximum sustainable rate — $(date -u +%Y-%m-%d)"
  echo
  echo "**Command:** \`CONFIG=$config HOLD=$hold P99_MS=$p99_ms EXPORT_INTERVAL=$export_interval" \
    "RATES_EMBEDDED=\"${rates_embedded[*]}\" RATES_REDIS_PG=\"${rates_redis_pg[*]}\"" \
    "${SERVE_ARGS:+SERVE_ARGS=\"$SERVE_ARGS\" }bench/seed_ramp.sh build\` at commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null)."
  echo
  echo "| config | events/s offered | verdict (p99 ≤ $p99_ms ms, flat backlog, all acked, exactly once) | figures over the $hold s hold |"
  echo "|---|---|---|---|"
  printf '%s\n' "${table[@]}"
} >"$out/ramp.md"
cat "$out/ramp.md"
exit "$failed"
