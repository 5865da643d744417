#!/usr/bin/env bash
# Loss and duplicate check of a seed run (issue 7): every acknowledged event_id is stored
# exactly once, in the Parquet history plus the hot rows of windows not exported.
#
# Usage: bench/seed_check.sh [--pg URL] SLUICE DATA_DIR ACKED_CSV PREFIX
#   SLUICE     the sluice binary
#   DATA_DIR   a stopped server's data dir, after `sluice export --once`
#   ACKED_CSV  `sluice bench --acked-out` (lines `first_seq,count`, one per acknowledged
#              request: ids PREFIX-first_seq … PREFIX-(first_seq+count-1))
#   PREFIX     the run's `--id-prefix`
#   --pg URL   the hot store is this PostgreSQL (postgres://USER@HOST:PORT/DB): its rows of
#              windows not yet exported (sluice_windows.exported) are read with psql \copy and
#              counted with the Parquet files, in DuckDB run by SLUICE's sibling
#              src/bench/duck_exec (`sluice query --data-dir` needs a DuckDB hot store).
#              Without it the hot store is the data dir's DuckDB and the `events` view (hot
#              rows of unexported windows + Parquet) is counted.
#
# The sets are built and compared in DuckDB (`sluice query --data-dir`, whose sandbox reads
# files only inside the data dir: the CSVs are copied into DATA_DIR/seed-check/). Ids that are
# not PREFIX-<seq> (the probes' PREFIX-probe-<n>, other clients') count as other_ids. Prints one
# line per figure; exits 1 when an acknowledged id is missing or any id is stored twice,
# 2 on a usage or tool error.
set -euo pipefail
pg_url=""
if [[ "${1:-}" == --pg ]]; then
  pg_url="$2"
  shift 2
fi
if (($# != 4)); then
  sed -n '2,22p' "$0" >&2
  exit 2
fi
sluice="$1" data="$(cd "$2" && pwd)" acked="$3" prefix="$4"
if [[ ! "$prefix" =~ ^[A-Za-z0-9_.:-]+$ ]]; then
  echo "seed_check: prefix '$prefix' must be [A-Za-z0-9_.:-]+" >&2
  exit 2
fi
if [[ -e "$data/serve.addr" ]]; then
  echo "seed_check: $data/serve.addr exists: stop the server first" >&2
  exit 2
fi
work="$data/seed-check"
mkdir -p "$work"
# Only `N,N` lines: a header line, if the file has one, is dropped.
grep -E '^[0-9]+,[0-9]+$' "$acked" >"$work/acked.csv" || true
requests=$(wc -l <"$work/acked.csv")

parquet_glob="$data/objects/events/**/*.parquet"
files=$( (find "$data/objects/events" -name '*.parquet' 2>/dev/null || true) | wc -l)
if [[ -n "$pg_url" ]]; then
  psql_bin=psql
  if [[ -x /usr/lib/postgresql/15/bin/psql ]]; then psql_bin=/usr/lib/postgresql/15/bin/psql; fi
  # Rows of windows whose Parquet file exists are counted from the file, the rest from
  # PostgreSQL. Window bounds are microseconds since the epoch, compared exactly.
  "$psql_bin" -qAtX -v ON_ERROR_STOP=1 -d "$pg_url" -c "\\copy (SELECT event_id FROM events e
    WHERE NOT EXISTS (SELECT 1 FROM sluice_windows w WHERE w.exported
      AND e.received_at >= timestamptz 'epoch' + w.start_us * interval '1 microsecond'
      AND e.received_at <  timestamptz 'epoch' + w.end_us * interval '1 microsecond'))
    TO '$work/pg_hot.csv' WITH (FORMAT csv)"
  hot_rows=$(wc -l <"$work/pg_hot.csv")
  stored="SELECT event_id AS id, 'hot' AS src FROM read_csv('$work/pg_hot.csv', header = false,
            columns = {'event_id': 'VARCHAR'}, quote = '\"')"
  if ((files > 0)); then
    stored+=" UNION ALL SELECT event_id, 'parquet' FROM read_parquet('$parquet_glob')"
  fi
else
  stored="SELECT event_id AS id, 'events' AS src FROM events"
fi
if [[ -n "$pg_url" ]]; then
  parquet_rows_sql="(SELECT count(*) FROM stored WHERE src = 'parquet')"
  hot_rows_sql="(SELECT count(*) FROM stored WHERE src = 'hot')"
else
  # The view's hot part: rows of windows with no Parquet file yet.
  parquet_rows_sql="0"
  ((files > 0)) && parquet_rows_sql="(SELECT count(*) FROM read_parquet('$parquet_glob'))"
  hot_rows_sql="((SELECT count(*) FROM stored) - $parquet_rows_sql)"
fi
if ((requests == 0)); then
  acked_sql="SELECT NULL::VARCHAR AS id WHERE false"
else
  acked_sql="SELECT '$prefix-' || s AS id
    FROM read_csv('$work/acked.csv', header = false,
                  columns = {'first_seq': 'BIGINT', 'n': 'BIGINT'}) r,
         LATERAL generate_series(r.first_seq, r.first_seq + r.n - 1) t(s)"
fi

sql="WITH acked AS ($acked_sql),
  stored AS ($stored),
  counts AS (SELECT id, count(*) AS n FROM stored GROUP BY id),
  mine AS (SELECT * FROM counts
           WHERE starts_with(id, '$prefix-') AND NOT starts_with(id, '$prefix-probe-'))
SELECT
  (SELECT count(*) FROM acked) AS acked_events,
  (SELECT count(DISTINCT id) FROM acked) AS acked_distinct,
  (SELECT count(*) FROM stored) AS stored_rows,
  $parquet_rows_sql AS parquet_rows,
  $hot_rows_sql AS hot_rows,
  (SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 FROM counts c WHERE c.id = a.id))
    AS missing,
  (SELECT count(*) FROM counts WHERE n > 1) AS duplicated_ids,
  (SELECT coalesce(sum(n - 1), 0) FROM counts WHERE n > 1) AS extra_copies,
  (SELECT count(*) FROM mine m WHERE NOT EXISTS (SELECT 1 FROM acked a WHERE a.id = m.id))
    AS stored_unacknowledged,
  (SELECT count(*) FROM counts WHERE id NOT IN (SELECT id FROM mine)) AS other_ids"
# The DuckDB store: `sluice query` on the data dir (its sandbox). With PostgreSQL the data dir
# has no DuckDB file for `sluice query` to open: duck_exec (the bench tool beside sluice, no
# sandbox) runs the same SQL in an in-memory DuckDB.
duck="$(dirname "$sluice")/src/bench/duck_exec"
q() {
  if [[ -z "$pg_url" ]]; then
    "$sluice" query --data-dir "$data" --format csv --query-timeout 600s "$1"
  else
    rm -f "$work/q.csv"
    "$duck" :memory: "COPY ($1) TO '$work/q.csv' (FORMAT csv, HEADER)" && cat "$work/q.csv"
  fi
}
if [[ -n "$pg_url" && ! -x "$duck" ]]; then
  echo "seed_check: no $duck: build it (ninja -C $(dirname "$sluice") duck_exec)" >&2
  exit 2
fi
if ! out="$(q "$sql")"; then
  echo "seed_check: the query failed" >&2
  exit 2
fi
header="$(head -1 <<<"$out")"
values="$(sed -n 2p <<<"$out")"
IFS=, read -r -a names <<<"$header"
IFS=, read -r -a nums <<<"$values"
declare -A r
for i in "${!names[@]}"; do r[${names[$i]}]=${nums[$i]}; done
echo "seed_check: prefix $prefix, $requests acknowledged requests, $files Parquet files$([[ -n "$pg_url" ]] && echo ", PostgreSQL hot rows not exported: ${hot_rows}")"
for k in acked_events acked_distinct stored_rows parquet_rows hot_rows missing duplicated_ids \
  extra_copies stored_unacknowledged other_ids; do
  printf '  %-22s %s\n' "$k" "${r[$k]}"
done
bad=0
if ((r[acked_events] == 0)); then
  echo "seed_check: no acknowledged event in $acked: nothing is proven" >&2
  bad=1
fi
if ((r[acked_events] != r[acked_distinct])); then
  echo "seed_check: the acknowledged ranges overlap (the load generator's report is wrong)" >&2
  bad=1
fi
if ((r[missing] > 0)); then
  echo "seed_check: LOSS: ${r[missing]} acknowledged events are not stored; a few:" >&2
  q "WITH acked AS ($acked_sql), stored AS ($stored)
     SELECT id FROM acked a WHERE NOT EXISTS (SELECT 1 FROM stored s WHERE s.id = a.id)
     ORDER BY id LIMIT 5" >&2 || true
  bad=1
fi
if ((r[duplicated_ids] > 0)); then
  echo "seed_check: DUPLICATES: ${r[duplicated_ids]} ids stored more than once; a few:" >&2
  q "WITH stored AS ($stored) SELECT id, count(*) AS n, string_agg(src, ' ') AS sources
     FROM stored GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 5" >&2 || true
  bad=1
fi
if ((bad)); then
  echo "seed_check: FAILED" >&2
  exit 1
fi
echo "seed_check: OK: every acknowledged event stored exactly once"
