#!/usr/bin/env python3
"""Helpers of bench/queries.sh.

  results.py compare NAME SLUICE_CSV POSTGRES_CSV
      Exits 1 (printing both answers) unless the two CSV answers are the same, cell by cell,
      after writing values the same way (timestamps as UTC instants, numbers as decimals: the
      engines print 10711.1 / 10711.10 and 2026-11-24T02:44:00Z / 2026-11-24 02:44:00+00).
      Also exits 1 when the answer is empty or a count in it is 0: equal empty answers prove
      nothing.
  results.py median HYPERFINE_JSON
      One line: the command's median and range in ms.
  results.py table OUT_DIR QUESTION...
      The markdown table of medians from hyperfine's JSON (OUT_DIR/QUESTION-{sluice,postgres}.json).
"""
import csv
import datetime
import decimal
import json
import re
import statistics
import sys

TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}(?::?\d{2})?)?$")


def canonical(cell):
    m = TIMESTAMP.match(cell)
    if m:
        zone = m.group(3) or "+00"
        zone = "+00:00" if zone == "Z" else zone
        if len(zone) == 3:
            zone += ":00"
        elif ":" not in zone:
            zone = zone[:3] + ":" + zone[3:]
        t = datetime.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{zone}")
        return "ts:" + t.astimezone(datetime.timezone.utc).isoformat()
    try:
        d = decimal.Decimal(cell)
        return "num:" + format(d.normalize(), "f") if d.is_finite() else cell
    except decimal.InvalidOperation:
        return cell


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        sys.exit(f"{path}: no output (not even a header)")
    return [c.lower() for c in rows[0]], [[canonical(c) for c in r] for r in rows[1:]]


def compare(name, sluice_csv, pg_csv):
    s_head, s_rows = read(sluice_csv)
    p_head, p_rows = read(pg_csv)
    problems = []
    if s_head != p_head:
        problems.append(f"columns differ: {s_head} vs {p_head}")
    if s_rows != p_rows:
        problems.append(f"rows differ ({len(s_rows)} vs {len(p_rows)} rows)")
    if not s_rows:
        problems.append("the answer is empty")
    if any(c == "num:0" for r in s_rows for c in r):
        problems.append("a count in the answer is 0")
    if problems:
        print(f"{name}: ANSWERS DO NOT MATCH or say nothing: {'; '.join(problems)}",
              file=sys.stderr)
        for label, path in (("sluice", sluice_csv), ("postgres", pg_csv)):
            print(f"--- {label} ({path}):", file=sys.stderr)
            print(open(path).read()[:3000], file=sys.stderr)
        sys.exit(1)
    first = ", ".join(c.split(":", 1)[-1] for c in s_rows[0])
    print(f"{name}: same answer on both sides, {len(s_rows)} rows; first: {first}")


def median_ms(path):
    runs = json.load(open(path))["results"][0]["times"]
    return statistics.median(runs) * 1000, len(runs)


def table(out, questions):
    print("| question | Sluice (DuckDB, /v1/query) | PostgreSQL 15 (psql), jit on "
          "| PostgreSQL, jit off | PostgreSQL (faster) / Sluice |")
    print("|---|---|---|---|---|")
    for q in questions:
        s, n = median_ms(f"{out}/{q}-sluice.json")
        p, _ = median_ms(f"{out}/{q}-postgres.json")
        p_nojit, _ = median_ms(f"{out}/{q}-postgres-nojit.json")
        print(f"| {q} | {s:,.0f} ms | {p:,.0f} ms | {p_nojit:,.0f} ms "
              f"| **{min(p, p_nojit) / s:,.1f}×** |")
    print(f"\nMedians of {n} runs after one warm-up run: wall time of the client command "
          "(`sluice query --server`, `psql`), process start and connection included.")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "compare":
        compare(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "median":
        r = json.load(open(sys.argv[2]))["results"][0]
        print(f"   {r['command']}: "
              f"median {statistics.median(r['times']) * 1000:,.1f} ms "
              f"(range {min(r['times']) * 1000:,.1f} .. {max(r['times']) * 1000:,.1f} ms, "
              f"{len(r['times'])} runs)")
    elif len(sys.argv) >= 4 and sys.argv[1] == "table":
        table(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
