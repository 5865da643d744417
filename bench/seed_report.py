#!/usr/bin/env python3
"""Summary of a bench/seed.sh run: prints the figures issue 7 asks for per configuration,
writes OUT/report.md (a block to append to BENCHMARKS.md) and OUT/CONFIG/plot.gp (gnuplot:
throughput, p99 latency and buffer backlog over time, drawn by seed.sh into plot.png).

Usage: seed_report.py OUT CONFIG...   (reads what seed.sh left in OUT and OUT/CONFIG)
Exits 1 when a configuration lost or duplicated events (or a step failed); load generator
errors are reported, not failed on."""
import csv
import json
import os
import re
import statistics
import sys


def facts(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            k, _, v = line.rstrip("\n").partition(" ")
            d[k] = v
    return d


def times_s(s):
    """`times` line `0m1.234s 0m0.567s` -> user + system seconds."""
    total = 0.0
    for m, sec in re.findall(r"(\d+)m([\d.]+)s", s or ""):
        total += int(m) * 60 + float(sec)
    return total


def num(x, default=None):
    try:
        return float(x)
    except (TypeError, ValueError):
        return default


def fmt(x, digits=0):
    if x is None:
        return "n/a"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def bench_figures(r):
    lat = r.get("latency_ms") or {}
    offered = r.get("events_offered", r.get("events_sent"))
    acked = r.get("events_acked")
    errors = r.get("errors_by_status")
    if errors is None:
        errors = {}
        for k, v in (r.get("statuses") or {}).items():
            if k != "200":
                errors[k] = v
        for k, v in list((r.get("errors") or {}).items()) + list(
                (r.get("connection_errors") or {}).items()):
            errors[k] = errors.get(k, 0) + v
    errors = {k: v for k, v in errors.items() if k != "200" and v}
    return {
        "offered": offered,
        "acked": acked,
        "elapsed": r.get("elapsed_s") or r.get("duration_s"),
        "p50": lat.get("p50", r.get("p50_ms")),
        "p99": lat.get("p99", r.get("p99_ms")),
        "p999": lat.get("p999", r.get("p999_ms")),
        "errors": errors,
        "fresh_p50": r.get("freshness_p50_ms"),
        "fresh_p99": r.get("freshness_p99_ms"),
        "probes": r.get("probes"),
        "probes_visible": r.get("probes_visible"),
        "probes_timed_out": r.get("probes_timed_out"),
        "rate_target_met": r.get("rate_target_met"),
    }


def request_shape(path):
    """How a limit run's requests looked, from its sluice bench JSON report."""
    try:
        r = json.load(open(path))
    except (OSError, ValueError):
        return "batches of 50"
    if r.get("mix") == "seed":
        return "the seed mix's requests"
    return f"batches of {r.get('batch', 50)}"


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def check_figures(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            m = re.match(r"\s+(\w+)\s+(-?\d+)$", line)
            if m:
                d[m.group(1)] = int(m.group(2))
    return d


def exports_from_log(path):
    """`exporter: window W exported: N rows, B bytes in S s to …` lines of the server log."""
    out = []
    if os.path.exists(path):
        for line in open(path, errors="replace"):
            m = re.search(r"window (\S+) exported: (\d+) rows, (\d+) bytes in ([\d.]+) s to (\S+)",
                          line)
            if m:
                out.append((m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4)),
                            os.path.basename(m.group(5))))
    return out


def exports_from_once(path):
    out = []
    if os.path.exists(path):
        for line in open(path, errors="replace"):
            m = re.match(r"\s+(\S+)\s+(\d+) rows\s+(\d+) bytes\s+([\d.]+) s\s+(\S+)", line)
            if m:
                out.append((m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4)),
                            os.path.basename(m.group(5))))
    return out


def summarise(out, c, run):
    res = os.path.join(out, c)
    f = facts(os.path.join(res, "facts"))
    try:
        r = json.load(open(os.path.join(res, "bench.json")))
    except (OSError, ValueError):
        r = {}
    b = bench_figures(r)
    chk = check_figures(os.path.join(res, "seed_check.out"))
    series = read_csv(os.path.join(res, "series.csv"))
    samples = read_csv(os.path.join(res, "metrics.csv"))
    hz = num(f.get("hz"), 100.0)
    t0 = num(f.get("bench_t0"), 0.0)
    t1 = num(f.get("bench_t1"), 0.0)
    duration = num(f.get("duration"), 0.0)
    elapsed = num(b["elapsed"]) or duration
    acked = num(b["acked"])
    offered = num(b["offered"])
    lines = []
    p = lines.append
    p(f"== {c}: {fmt(duration)} s at {fmt(num(f.get('rate')))} events/s offered (--mix seed)")
    if acked is None:
        p("  no load generator report (see bench.err)")
    else:
        p(f"  throughput: offered {fmt(offered / elapsed)} events/s, acknowledged "
          f"{fmt(acked / elapsed)} events/s ({fmt(acked)} of {fmt(offered)} events)")
        p(f"  ack latency: p50 {fmt(num(b['p50']), 2)} ms, p99 {fmt(num(b['p99']), 2)} ms, "
          f"p99.9 {fmt(num(b['p999']), 2)} ms")
        p("  errors by status: " + (", ".join(f"{k}: {v}" for k, v in sorted(b["errors"].items()))
                                    or "none"))
        p(f"  freshness (ack -> visible in a query): p50 {fmt(num(b['fresh_p50']), 1)} ms, "
          f"p99 {fmt(num(b['fresh_p99']), 1)} ms ({b['probes_visible']} of {b['probes']} probes "
          f"visible, {b['probes_timed_out']} timed out"
          + (", engine=postgres" if c == "redis-pg" else "") + ")")
    # Backlog and loader rate from the 5 s samples taken while the load ran.
    during = [s for s in samples if t0 <= float(s["epoch"]) <= t1]
    if during:
        backlog = [int(s["backlog_events"]) for s in during]
        thirds = max(1, len(backlog) // 3)
        p(f"  buffer backlog (events, every 5 s): median {fmt(statistics.median(backlog))}, "
          f"max {fmt(max(backlog))}; first third median {fmt(statistics.median(backlog[:thirds]))},"
          f" last third median {fmt(statistics.median(backlog[-thirds:]))}")
        # Flat: the last third's median within twice the first's plus one second of load.
        growing = statistics.median(backlog[-thirds:]) > (
            2 * statistics.median(backlog[:thirds]) + num(f.get("rate"), 0))
        p("  backlog verdict: " + ("GROWING (the loader does not keep up)" if growing
                                   else "flat"))
        rates = []
        for a, z in zip(during, during[1:]):
            dt = float(z["epoch"]) - float(a["epoch"])
            if dt > 0:
                rates.append((int(z["loader_events"]) - int(a["loader_events"])) / dt)
        if rates:
            p(f"  loader rate: median {fmt(statistics.median(rates))} events/s, "
              f"max {fmt(max(rates))} (5 s intervals)")
        bpe = [int(s["backlog_bytes"]) / int(s["backlog_events"]) for s in during
               if int(s["backlog_events"]) > 0]
    else:
        bpe = []
    drained = num(f.get("drained_at"))
    p("  drained after the load stopped: " +
      (f"{drained - t1:.1f} s" if drained else "NOT within 120 s"))
    exports = exports_from_log(os.path.join(res, "server.log"))
    once = exports_from_once(os.path.join(res, "export-once.out"))
    p(f"  exports during the run: {len(exports)}" + "".join(
        f"\n    {w}: {rows:,} rows, {byt / 1e6:.1f} MB in {s:.2f} s" for w, rows, byt, s, _ in exports))
    p(f"  export --once after the stop: {len(once)} windows" + "".join(
        f"\n    {w}: {rows:,} rows, {byt / 1e6:.1f} MB in {s:.2f} s" for w, rows, byt, s, _ in once))
    # CPU seconds per 1,000 acknowledged events.
    cpu = {
        "sluice": num(f.get("cpu_sluice_ticks"), 0) / hz,
        "load generator": times_s(f.get("bench_times")),
    }
    if c == "redis-pg":
        cpu["redis-server"] = num(f.get("cpu_redis_ticks"), 0) / hz
        cpu["PostgreSQL (primary + replica)"] = num(f.get("cpu_postgres_ticks"), 0) / hz
    if acked:
        p("  CPU s per 1,000 events (load start to drained): " + ", ".join(
            f"{k} {v / (acked / 1000):.4f} ({v:.1f} s)" for k, v in cpu.items()))
    p(f"  export --once (after the stop): {times_s(f.get('export_once_times')):.1f} CPU s")
    stored = chk.get("stored_rows")
    parquet_rows = chk.get("parquet_rows") or None
    disk = []
    if bpe:
        disk.append(f"buffer {statistics.median(bpe):,.0f} B/event (depth bytes / depth events)")
    if c == "redis-pg":
        if acked:
            disk.append(f"Redis dir (AOF) once drained {num(f.get('redis_disk_bytes'), 0) / 1e6:.1f} MB")
        pg_rows = num(f.get("pg_rows"), 0)
        if pg_rows:
            disk.append(f"PostgreSQL {num(f.get('pg_bytes')) / pg_rows:,.0f} B/event "
                        f"(pg_database_size / {pg_rows:,.0f} rows)")
    else:
        if stored:
            disk.append(f"DuckDB hot store {num(f.get('hot_bytes')) / stored:,.0f} B/event")
    pq_rows = parquet_rows
    if pq_rows:
        disk.append(f"Parquet {num(f.get('parquet_bytes')) / pq_rows:,.0f} B/event")
    p("  bytes on disk: " + ("; ".join(disk) or "n/a"))
    # Loss and duplicates.
    ok = int(f.get("check_rc", "1")) == 0
    # The figures bench/seed_ramp.sh judges a rate by.
    with open(os.path.join(res, "summary.json"), "w") as sj:
        json.dump({"rate": num(f.get("rate")), "duration_s": duration,
                   "offered": offered, "acked": acked,
                   "errors": sum(int(v) for v in b["errors"].values()) if b["errors"] else 0,
                   "p50_ms": num(b["p50"]), "p99_ms": num(b["p99"]), "p999_ms": num(b["p999"]),
                   "backlog_growing": growing if during else None,
                   "backlog_median_last_third": (statistics.median(backlog[-thirds:])
                                                 if during else None),
                   "fresh_p99_ms": num(b["fresh_p99"]),
                   "exports": len(exports), "check_ok": ok}, sj)
    if chk:
        p(f"  loss/duplicates: acknowledged {chk.get('acked_events', 0):,}, missing "
          f"{chk.get('missing', 0):,}, duplicated ids {chk.get('duplicated_ids', 0):,}, stored "
          f"but not acknowledged {chk.get('stored_unacknowledged', 0):,}, other ids (probes) "
          f"{chk.get('other_ids', 0):,} -> {'OK' if ok else 'FAILED'}")
    else:
        p("  loss/duplicates: the check did not run or failed (see seed_check.out)")
    # Limits (full mode).
    limit_rows = []
    sluice_rate = acked / elapsed if acked else None
    raw = num(f.get("raw_xadd_rate"))
    if raw and sluice_rate:
        limit_rows.append(("raw pipelined XADD, same Redis, "
                           f"{request_shape(os.path.join(res, 'limit-xadd.json'))}, closed loop",
                           f"{raw:,.0f} events/s", "acknowledged rate / limit", sluice_rate / raw))
    copy_rate = num(f.get("copy_rate"))
    if copy_rate and rows_rate(samples, t0, t1):
        lr = rows_rate(samples, t0, t1)
        limit_rows.append((f"psql \\copy of {fmt(num(f.get('copy_rows')))} stored rows into "
                           "a scratch table", f"{copy_rate:,.0f} rows/s", "loader rate / limit",
                           lr / copy_rate))
    duck_s = num(f.get("duck_seconds"))
    if duck_s:
        rows = num(f.get("duck_rows"), 0)
        mine = [x for x in exports + once if x[4] == f.get("duck_file")]
        sluice_s = mine[0][3] if mine else None
        limit_rows.append((f"DuckDB COPY of {f.get('duck_file')}'s {rows:,.0f} rows to Parquet",
                           f"{rows / duck_s:,.0f} rows/s ({duck_s:.2f} s; sluice's export "
                           f"{fmt(sluice_s, 2)} s)", "sluice's export rate / limit",
                           (duck_s / sluice_s) if sluice_s else None))
    noop = os.path.join(out, "limit-noop.json")
    if os.path.exists(noop) and sluice_rate:
        n = json.load(open(noop)).get("events_per_s")
        if n:
            limit_rows.append((f"no-op HTTP handler, {request_shape(noop)}, closed loop",
                               f"{n:,.0f} events/s", "acknowledged rate / limit",
                               sluice_rate / n))
    for name, value, what, ratio in limit_rows:
        p(f"  limit: {name}: {value}; {what} {fmt(ratio, 3)}")
    if b["errors"]:
        p("  WARNING: the load generator saw errors (not a loss: unacknowledged events are not "
          "checked)")
    plot(res, c, series, samples, t0, export_spans(os.path.join(res, "server.log"), t0))
    return ok, lines


def rows_rate(samples, t0, t1):
    """Mean loader rate while the load ran (events/s)."""
    during = [s for s in samples if t0 <= float(s["epoch"]) <= t1]
    if len(during) < 2:
        return None
    dt = float(during[-1]["epoch"]) - float(during[0]["epoch"])
    return (int(during[-1]["loader_events"]) - int(during[0]["loader_events"])) / dt if dt else None


def export_spans(path, t0):
    """(start, end) seconds since the load started of each export the server logged."""
    import datetime
    spans = []
    if os.path.exists(path):
        for line in open(path, errors="replace"):
            m = re.match(r"(\S+Z) info exporter: window \S+ exported: .* in ([\d.]+) s", line)
            if m:
                end = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
                e = end.timestamp() - t0
                spans.append((e - float(m.group(2)), e))
    return spans


def plot(res, c, series, samples, t0, spans):
    """gnuplot script: acknowledged/offered events/s, p99 ms and backlog over time; exports
    shaded."""
    if not series and not samples:
        return
    with open(os.path.join(res, "backlog.dat"), "w") as f:
        for s in samples:
            f.write(f"{float(s['epoch']) - t0:.1f} {s['backlog_events']}\n")
    with open(os.path.join(res, "series.dat"), "w") as f:
        for s in series:
            f.write(f"{s.get('second')} {s.get('offered_events')} {s.get('acked_events')} "
                    f"{s.get('p99_ms') or 'NaN'}\n")
    # One x range for every panel (the backlog's first sample may precede the load by a
    # moment), so the grey export bands line up from panel to panel.
    xmax = max([float(s.get("second") or 0) for s in series] +
               [float(s["epoch"]) - t0 for s in samples] + [b for _, b in spans] + [1.0])
    panels = []
    if series:
        panels.append(f"""set ylabel "events/s"
plot '{res}/series.dat' using 1:2 with lines title 'offered', '' using 1:3 with lines title 'acknowledged'
""")
        panels.append(f"""set ylabel "p99 ack latency (ms)"
set logscale y
plot '{res}/series.dat' using 1:4 with lines title 'p99 per second'
unset logscale y
""")
    if samples:
        panels.append(f"""set ylabel "buffer backlog (events)"
plot '{res}/backlog.dat' using 1:2 with linespoints title 'backlog (every 5 s)'
""")
    with open(os.path.join(res, "plot.gp"), "w") as f:
        f.write(f"""set terminal pngcairo size 1000,{300 * len(panels)} font ",10"
set output '{res}/plot.png'
set multiplot layout {len(panels)},1 title "sluice seed run: {c}"
set xlabel "seconds since the load started (grey: a window being exported)"
set grid
set xrange [0:{xmax:.1f}]
set lmargin 12
""" + "".join(f"set object rect from {a:.1f}, graph 0 to {b:.1f}, graph 1 fc rgb '#dddddd' "
              "fs solid noborder behind\n" for a, b in spans) + "".join(panels) + "unset multiplot\n")


def main():
    out, configs = sys.argv[1], sys.argv[2:]
    run = facts(os.path.join(out, "run.facts"))
    ok_all = True
    report = [f"## Seed workload (issue 7) — {run.get('date')}", "",
              f"**Machine:** {run.get('machine')}; load generator, sluice, Redis and "
              "PostgreSQL share it.", f"**Build:** commit {run.get('commit')}.",
              f"**Command:** `{run.get('command')} build` (wall time {run.get('wall_s')} s)", ""]
    for c in configs:
        ok, lines = summarise(out, c, run)
        ok_all &= ok
        print("\n".join(lines))
        report += ["```"] + lines + ["```", ""]
        if os.path.exists(os.path.join(out, c, "plot.gp")):
            report.append(f"Plot: `{os.path.join(out, c, 'plot.png')}` (copy it next to "
                          "BENCHMARKS.md)")
            report.append("")
    print(f"== wall time {run.get('wall_s')} s; report block: {out}/report.md")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(report) + "\n")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
