#!/usr/bin/env python3
"""Splits a seed run's seconds into "export running" and "no export", with the ack p99 and
the CPU of each process in each (means per second).

Usage: bench/cpu_by_export.py SAMPLES.csv RUN_DIR [all]
  SAMPLES.csv  what bench/cpu_sampler.py wrote during the run
  RUN_DIR      the run's result dir (bench/seed.sh's OUT/<config>: series.csv, server.log)
  all          also print every second
The load generator's first busy second is taken as second 0 of series.csv; an export runs
from its log line's time minus its duration to that time.
"""
import collections
import datetime
import re
import sys

CATS = ['serve-nice0', 'serve-nice10', 'redis', 'pgP:backend', 'pgR:backend', 'pgR:startup',
        'loadgen', 'sys:system', 'sys:iowait', 'sys:idle']


def main():
    if len(sys.argv) < 3:
        sys.exit('usage: bench/cpu_by_export.py SAMPLES.csv RUN_DIR [all]')
    samples, run = sys.argv[1], sys.argv[2]
    cpu = collections.defaultdict(dict)
    for line in open(samples):
        t, c, v = line.strip().split(',')
        cpu[int(t)][c] = float(v)
    busy = sorted(t for t in cpu if 'loadgen' in cpu[t])
    if not busy:
        sys.exit(f'{samples}: no load generator seconds')
    t0 = busy[0] - 1
    exports = []
    for line in open(run + '/server.log'):
        m = re.search(r'^(\S+)Z .* exported: (\d+) rows.* in ([\d.]+) s', line)
        if m:
            end = datetime.datetime.fromisoformat(m.group(1)).replace(
                tzinfo=datetime.timezone.utc).timestamp()
            exports.append((end - float(m.group(3)), end))
    rows = []
    for line in list(open(run + '/series.csv'))[1:]:
        f = line.strip().split(',')
        if not f[5]:
            continue
        t = t0 + int(f[0])
        c = cpu.get(t, {})
        rows.append((int(f[0]), any(a <= t <= b for a, b in exports), float(f[5]),
                     [c.get(k, 0) for k in CATS]))
    if len(sys.argv) > 3 and sys.argv[3] == 'all':
        print('second export p99_ms ' + ' '.join(CATS))
        for s, ex, p, v in rows:
            print(f'{s} {int(ex)} {p:.1f} ' + ' '.join(f'{x:.2f}' for x in v))
    for flag, name in ((False, 'no export'), (True, 'export')):
        sel = [r for r in rows if r[1] == flag]
        if not sel:
            continue
        n = len(sel)
        p99s = sorted(r[2] for r in sel)
        means = ' '.join(f'{k}={sum(r[3][i] for r in sel) / n:.2f}' for i, k in enumerate(CATS))
        print(f'{name}: {n} s, per-second p99 median {p99s[n // 2]:.1f} ms, max {p99s[-1]:.1f} ms | {means}')


if __name__ == '__main__':
    main()
