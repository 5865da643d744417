#!/usr/bin/env python3
"""Freshness probe for bench/seed.sh when the hot store is PostgreSQL: `sluice bench
--probe-interval` asks POST /v1/query with the default engine (DuckDB), which with a
PostgreSQL store reads only the exported Parquet history, so its probes never see a fresh
event. This does what it does, with {"engine":"postgres"} (the replica behind --store-read):
every INTERVAL s one POST /v1/track with a unique messageId; once acknowledged, POST /v1/query
for that event_id every 10 ms until it is found (or TIMEOUT s). The time from the
acknowledgement to the first answer that finds it is one sample. One probe in flight at a
time, one keep-alive connection for each of the two kinds of request.

Usage: seed_probe.py HOST:PORT DURATION_S INTERVAL_S OUT_JSON [TIMEOUT_S]
Writes {"probes", "probes_visible", "probes_timed_out", "probe_errors", "freshness_p50_ms",
"freshness_p99_ms", "freshness_max_ms", "engine"}; stops early on SIGTERM."""
import http.client
import json
import signal
import sys
import time
import uuid

addr, duration, interval, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 10.0
host, port = addr.rsplit(":", 1)
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)


def connect():
    return http.client.HTTPConnection(host, int(port), timeout=5)


def post(conn, path, body):
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read()


send, query = connect(), connect()
samples, probes, timed_out, errors = [], 0, 0, 0
run = uuid.uuid4().hex[:12]
start = time.monotonic()
n = 0
while not stop and time.monotonic() - start < duration:
    due = start + n * interval
    n += 1
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    pid = f"probe-{run}-{n}"
    try:
        status, _ = post(send, "/v1/track", json.dumps(
            {"messageId": pid, "userId": "sluice-probe", "event": "Sluice Probe"}))
    except (OSError, http.client.HTTPException):
        send, status = connect(), 0
    if status != 200:
        errors += 1
        continue
    acked = time.monotonic()
    probes += 1
    body = json.dumps({"sql": f"SELECT count(*) FROM events WHERE event_id = '{pid}'",
                       "engine": "postgres"})
    seen = False
    while not seen and time.monotonic() - acked < timeout and not stop:
        try:
            status, answer = post(query, "/v1/query", body)
        except (OSError, http.client.HTTPException):
            query, status, answer = connect(), 0, b""
        if status != 200:
            errors += 1
        elif b'"rows":[[1]]' in answer:
            samples.append((time.monotonic() - acked) * 1000)
            seen = True
            break
        time.sleep(0.01)
    if not seen and not stop:
        timed_out += 1


def pct(q):
    if not samples:
        return None
    s = sorted(samples)
    return round(s[min(len(s) - 1, int(q * len(s)))], 3)


json.dump({"engine": "postgres", "probes": probes, "probes_visible": len(samples),
           "probes_timed_out": timed_out, "probe_errors": errors,
           "freshness_p50_ms": pct(0.5), "freshness_p99_ms": pct(0.99),
           "freshness_max_ms": round(max(samples), 3) if samples else None},
          open(out, "w"))
