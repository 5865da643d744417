#!/usr/bin/env bash
# History in a bucket (issue 6), against a private s3rver (scripts/s3rver.sh) on this machine:
#
# a. Windows: `sluice serve --export-interval 1m --object-store s3://bench/h …` (--loader=false,
#    as bench/export_window.sh fills) is fed by `sluice bench` at its closed-loop maximum for
#    FILL_SECONDS inside each of WINDOWS consecutive minutes (realistic data: TEMPLATES distinct
#    event templates). After the last window's end the server is stopped and
#    `sluice export --once` (same flags) loads the buffer and exports every window; its
#    "window … exported: N rows, B bytes in S s" lines are kept.
# b. Upload of ONE window file (the largest): it is downloaded once (`objstore_bench get`), then
#    `objstore_bench put` uploads it RUNS times to another prefix with the defaults (multipart
#    above 64 MiB: 16 MiB parts, 4 in flight) and RUNS times as one PUT
#    (--multipart-threshold above its size). The limit, in the same run: a raw
#    `curl --aws-sigv4 … -T FILE` PUT of the same file to the same s3rver, RUNS times.
# c. Cold history queries: COLD_RUNS times, `sluice serve --loader=false` restarts on the same
#    data dir with DATA_DIR/cache removed (a start with an empty cache fetches the newest
#    window before it serves, so the view reads Parquet) and times over HTTP
#    `SELECT count(*) FROM events` (cold: it fetches every other window file) and the same
#    again (warm); then, after another restart without the cache, a count over the oldest
#    window's received_at range (cold: one file).
#    /metrics (sluice_history_*) is saved after each. The limit: raw curl GETs of the objects the
#    queries fetched to local files, one after another and up to 4 at once (the cache's
#    --history-fetch-parallel default), COLD_RUNS times each.
#
# Usage: bench/history_bucket.sh [BUILD_DIR]
#   env: FILL_SECONDS per window (default 12; 170–240k events/s on 2 cores: 2–2.9 M events,
#        0.55–0.8 GB of Parquet per window), WINDOWS (default 3), TEMPLATES (default 100000), RUNS upload
#        repetitions (default 5), COLD_RUNS query repetitions (default 3).
#   Needs build/sluice and build/src/bench/objstore_bench (`ninja -C build sluice
#   objstore_bench`), node and tests/peers' s3rver. Raw outputs in BUILD_DIR/bench-history/;
#   a summary at the end of BUILD_DIR/bench-history/summary.txt.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
sluice="$build/sluice"
objstore_bench="$build/src/bench/objstore_bench"
fill="${FILL_SECONDS:-12}"
windows="${WINDOWS:-3}"
templates="${TEMPLATES:-100000}"
runs="${RUNS:-5}"
cold_runs="${COLD_RUNS:-3}"
out="$build/bench-history"
for bin in "$sluice" "$objstore_bench"; do
  [[ -x "$bin" ]] || { echo "$bin missing: ninja -C $build sluice objstore_bench" >&2; exit 1; }
done
if (( fill > 40 )); then echo "FILL_SECONDS must be at most 40 (one 1-minute window)" >&2; exit 2; fi
mkdir -p "$out"
rm -f "$out"/*.txt "$out"/*.json "$out"/*.log
source "$root/bench/lib.sh"   # $data (removed at exit), start_server, stop_server
source "$root/scripts/s3rver.sh"

s3dir="$data/s3rver"
finish() {
  s3rver_stop "$s3dir" || true
  cleanup
}
trap finish EXIT

export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
port="$(s3rver_free_port)"
s3rver_start "$s3dir" "$port" bench
endpoint="http://127.0.0.1:$port"
bucket_url="$endpoint/bench"
store=(--object-store s3://bench/h --object-store-endpoint "$endpoint" --export-interval 1m)
summary="$out/summary.txt"
say() { echo "$*" | tee -a "$summary"; }
json() {  # json FILE KEY: one value of a bench JSON report
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
now() { date +%s.%N; }
# Raw S3 requests as the limit: curl signs with SigV4 itself; s3rver wants the payload header.
s3curl() {
  curl -sS --fail --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
say "history_bucket.sh: commit $(git -C "$root" rev-parse --short HEAD), $(nproc) cores," \
  "$(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(date -u +%FT%TZ); s3rver on $endpoint"

# --- a. windows -------------------------------------------------------------------------
start_server --loader=false --log-level warn "${store[@]}"
for ((w = 1; w <= windows; w++)); do
  # The fill must end inside one minute (8 s of margin).
  while (( $(date +%s) % 60 > 60 - fill - 8 )); do sleep 0.2; done
  t=$(date +%s)
  window_end=$(( t - t % 60 + 60 ))
  "$sluice" bench --url "http://$addr" --batch 100 --connections 16 --duration "$fill" \
    --templates "$templates" --format json --out "$out/fill-$w.json" >/dev/null
  say "fill $w: $(json "$out/fill-$w.json" events_acked) events in ${fill} s into the window" \
    "$(date -u -d "@$(( window_end - 60 ))" +%H:%MZ)"
  # The next fill goes into the next minute.
  while (( w < windows && $(date +%s) < window_end )); do sleep 0.2; done
done
stop_server
while (( $(date +%s) <= window_end )); do sleep 0.2; done
t0=$(now)
"$sluice" export --once --data-dir "$data/d" --log-level info "${store[@]}" \
  >"$out/export.log" 2>&1
say "sluice export --once: $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}') s"
grep -E '^loaded ' "$out/export.log" | tee -a "$summary"
grep -o 'window .* exported: .*' "$out/export.log" | tee -a "$summary"
# Keys and sizes of the exported files; the largest first.
grep -o 'exported: [0-9]* rows, [0-9]* bytes in .* to s3://bench/h/.*' "$out/export.log" |
  sed -E 's|exported: ([0-9]+) rows, ([0-9]+) bytes in .* to s3://bench/h/(.*)$|\2 \3 \1|' |
  sort -rn >"$out/files.txt"
nfiles=$(wc -l <"$out/files.txt")
(( nfiles > 0 )) || { echo "no window exported; see $out/export.log" >&2; exit 1; }
read -r big_bytes big_key _ < <(head -1 "$out/files.txt")
# A start with an empty cache fetches the newest window before serving (so the view reads
# Parquet): the cold queries fetch the others. The one-window query reads the oldest.
newest_key=$(awk '{print $2}' "$out/files.txt" | sort | tail -1)
oldest_key=$(awk '{print $2}' "$out/files.txt" | sort | head -1)
read -r oldest_bytes _ < <(awk -v k="$oldest_key" '$2 == k' "$out/files.txt")
awk -v k="$newest_key" '$2 != k' "$out/files.txt" >"$out/files-cold.txt"
cold_files=$(wc -l <"$out/files-cold.txt")
cold_bytes=$(awk '{s += $1} END {print s + 0}' "$out/files-cold.txt")
total_bytes=$(awk '{s += $1} END {print s}' "$out/files.txt")

# --- b. upload of one window file -------------------------------------------------------
file="$data/window.parquet"
"$objstore_bench" --endpoint "$endpoint" get s3://bench/h "$big_key" "$file" 1 \
  >"$out/get-window.txt"
say "upload: $big_key, $big_bytes bytes"
"$objstore_bench" --endpoint "$endpoint" put s3://bench/up-multipart "$file" "$runs" \
  | tee "$out/put-multipart.txt"
"$objstore_bench" --endpoint "$endpoint" --multipart-threshold $(( big_bytes + 1 )) \
  put s3://bench/up-single "$file" "$runs" | tee "$out/put-single.txt"
: >"$out/put-curl.txt"
for ((i = 1; i <= runs; i++)); do
  s3curl -T "$file" -o /dev/null -w '%{time_total}\n' "$bucket_url/raw/window.parquet" \
    >>"$out/put-curl.txt"
done
curl_put_s=$(median <"$out/put-curl.txt")
mp_s=$(awk '/^put median/ {print $3}' "$out/put-multipart.txt")
single_s=$(awk '/^put median/ {print $3}' "$out/put-single.txt")
mbps() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.1f", b / 1e6 / s}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
say "put, curl -T (limit): runs $(tr '\n' ' ' <"$out/put-curl.txt")s;" \
  "median $curl_put_s s = $(mbps "$big_bytes" "$curl_put_s") MB/s"
say "put, PutFile multipart 16MiB x4: median $mp_s s = $(mbps "$big_bytes" "$mp_s") MB/s," \
  "ratio to curl $(ratio "$curl_put_s" "$mp_s")"
say "put, PutFile single PUT: median $single_s s = $(mbps "$big_bytes" "$single_s") MB/s," \
  "ratio to curl $(ratio "$curl_put_s" "$single_s")"
rm -f "$file"

# --- c. cold history queries ------------------------------------------------------------
one_start="$(sed -n "s|.*events-\([0-9]\{8\}T[0-9]\{4\}\)Z.*|\1|p" <<<"$oldest_key")"
one_from="$(date -u -d "${one_start:0:4}-${one_start:4:2}-${one_start:6:2} ${one_start:9:2}:${one_start:11:2}:00" '+%F %T')"
one_to="$(date -u -d "$one_from UTC + 60 seconds" '+%F %T')"
sql_all="SELECT count(*) FROM events"
sql_one="SELECT count(*) FROM events WHERE received_at >= TIMESTAMPTZ '$one_from+00' AND received_at < TIMESTAMPTZ '$one_to+00'"
query() {  # query NAME SQL: appends "NAME seconds answer" to queries.txt
  local t answer body
  body="$(python3 -c 'import json,sys; print(json.dumps({"sql": sys.argv[1]}))' "$2")"
  t0=$(now)
  answer="$(curl -sS --fail-with-body -d "$body" "http://$addr/v1/query")"
  t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')
  echo "$1 $t $(tr -d ' \n' <<<"$answer")" | tee -a "$out/queries.txt"
}
metrics() { curl -sS "http://$addr/metrics" | grep -E '^sluice_history_' >"$out/metrics-$1.txt"; }
serve_cold() {
  rm -rf "$data/d/cache"
  start_server --loader=false --log-level info --query-timeout 1h "${store[@]}"
}
: >"$out/queries.txt"
for ((r = 1; r <= cold_runs; r++)); do
  serve_cold
  query "all-cold" "$sql_all"
  metrics "all-cold-$r"
  query "all-warm" "$sql_all"
  stop_server
  serve_cold
  query "one-cold" "$sql_one"
  metrics "one-cold-$r"
  stop_server
done
m_of() { awk -v n="$1" '$1 == n {print $2}' "$out/queries.txt" | median; }
metric() { awk -v n="$2" '$1 == n {print $2}' "$out/metrics-$1.txt"; }
all_cold=$(m_of all-cold); all_warm=$(m_of all-warm); one_cold=$(m_of one-cold)

# The limit: the same objects straight from s3rver to local files.
rawdir="$data/raw"
: >"$out/get-curl.txt"
for ((r = 1; r <= cold_runs; r++)); do
  rm -rf "$rawdir"; mkdir -p "$rawdir"
  t0=$(now)
  while read -r _ key _; do s3curl -o "$rawdir/$(basename "$key")" "$bucket_url/h/$key"; done \
    <"$out/files-cold.txt"
  echo "all-seq $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')" >>"$out/get-curl.txt"
  rm -rf "$rawdir"; mkdir -p "$rawdir"
  args=()
  while read -r _ key _; do args+=(-o "$rawdir/$(basename "$key")" "$bucket_url/h/$key"); done \
    <"$out/files-cold.txt"
  t0=$(now)
  s3curl -Z --parallel-max 4 "${args[@]}" 2>>"$out/curl-parallel.log"  # its progress meter
  echo "all-par4 $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')" >>"$out/get-curl.txt"
  rm -rf "$rawdir"; mkdir -p "$rawdir"
  t0=$(now)
  s3curl -o "$rawdir/one.parquet" "$bucket_url/h/$oldest_key"
  echo "one $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')" >>"$out/get-curl.txt"
done
rm -rf "$rawdir"
g_of() { awk -v n="$1" '$1 == n {print $2}' "$out/get-curl.txt" | median; }
seq_s=$(g_of all-seq); par_s=$(g_of all-par4); one_s=$(g_of one)

say "cold queries ($cold_runs runs each; $nfiles files, $total_bytes bytes in the bucket; the" \
  "newest, $newest_key, is fetched at start; the queries fetch $cold_files files," \
  "$cold_bytes bytes; the one-window query reads $oldest_key, $oldest_bytes bytes):"
say "  $sql_all: cold median $all_cold s (runs $(awk '$1 == "all-cold" {printf "%s ", $2}' "$out/queries.txt")), warm median $all_warm s"
say "    fetched $(metric all-cold-1 sluice_history_fetched_bytes_total) bytes," \
  "misses $(metric all-cold-1 sluice_history_cache_misses_total)," \
  "fetch seconds (sum) $(metric all-cold-1 sluice_history_fetch_seconds_sum)"
say "  one window ($one_from .. $one_to): cold median $one_cold s (runs $(awk '$1 == "one-cold" {printf "%s ", $2}' "$out/queries.txt"))"
say "    fetched $(metric one-cold-1 sluice_history_fetched_bytes_total) bytes," \
  "misses $(metric one-cold-1 sluice_history_cache_misses_total)," \
  "fetch seconds (sum) $(metric one-cold-1 sluice_history_fetch_seconds_sum)"
say "  fetch seconds (sum of sluice_history_fetch_seconds) per cold run: all" \
  "$(for ((r = 1; r <= cold_runs; r++)); do printf '%s ' "$(metric "all-cold-$r" sluice_history_fetch_seconds_sum)"; done)," \
  "one window $(for ((r = 1; r <= cold_runs; r++)); do printf '%s ' "$(metric "one-cold-$r" sluice_history_fetch_seconds_sum)"; done)"
say "  raw curl GET (limit): all files one after another median $seq_s s" \
  "($(mbps "$total_bytes" "$seq_s") MB/s), up to 4 at once median $par_s s" \
  "($(mbps "$total_bytes" "$par_s") MB/s); the one window's file median $one_s s" \
  "($(mbps "$big_bytes" "$one_s") MB/s)"
say "  ratios: all cold / raw parallel $(ratio "$all_cold" "$par_s"), all cold / raw sequential" \
  "$(ratio "$all_cold" "$seq_s"); one window cold / raw $(ratio "$one_cold" "$one_s")"
