#!/usr/bin/env python3
"""Per-second CPU of everything on the machine that a seed run involves, from /proc.

Usage: bench/cpu_sampler.py OUT.csv   (runs until killed; start it before bench/seed.sh)

Writes lines "unix_second,category,value": CPU seconds used in that second by
  serve-niceN       `sluice serve` threads at nice N (0: HTTP and buffer writer; 10: loader,
                    exporter, query and DuckDB threads, see --background-nice)
  tid:T:nN          each `sluice serve` thread
  loadgen           `sluice bench`
  redis             redis-server
  pgP:ROLE, pgR:ROLE  PostgreSQL primary / replica processes by role (backend, startup,
                    walreceiver, checkpointer, ...)
  k:NAME            kernel threads (kworker, kswapd, ...)
  sys:FIELD         the machine's /proc/stat (user, nice, system, idle, iowait, ...)
and vm:FIELD, the change in a few /proc/vmstat counters (allocstall_*, compact_stall,
pgscan_direct, pgpgout), multiplied by the clock tick rate. bench/cpu_by_export.py reads it.
Threads that live less than a second are missed (their time shows in sys:).
"""
import os
import sys
import time

HZ = os.sysconf('SC_CLK_TCK')
PG_ROLES = ('checkpointer', 'background', 'walwriter', 'autovacuum', 'logical', 'walsender',
            'walreceiver', 'startup', 'archiver', 'stats')
VM = ('allocstall_normal', 'allocstall_movable', 'compact_stall', 'pgscan_direct', 'pgpgout')


def stat(path):
    """(ppid, utime + stime in ticks, nice) of /proc/.../stat, or None when gone."""
    try:
        s = open(path).read()
    except OSError:
        return None
    f = s[s.rfind(')') + 2:].split()
    return int(f[1]), int(f[11]) + int(f[12]), int(f[16])


def cmdline(pid):
    try:
        return open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\0', b' ').decode(errors='replace')
    except OSError:
        return ''


def sample():
    cur = {}
    procs = {}
    for pid in os.listdir('/proc'):
        if pid.isdigit():
            procs[pid] = cmdline(pid)
    for pid, c in procs.items():
        if not c:  # a kernel thread
            try:
                comm = open(f'/proc/{pid}/comm').read().strip()
            except OSError:
                continue
            st = stat(f'/proc/{pid}/stat')
            if st:
                cur[('k:' + comm.split('/')[0].split(':')[0].split('-')[0], pid)] = st[1]
            continue
        if 'sluice serve' in c:
            try:
                tids = os.listdir(f'/proc/{pid}/task')
            except OSError:
                continue
            for tid in tids:
                st = stat(f'/proc/{pid}/task/{tid}/stat')
                if st:
                    cur[('serve-nice%d' % st[2], tid)] = st[1]
                    cur[('tid:%s:n%d' % (tid, st[2]), tid)] = st[1]
            continue
        st = stat(f'/proc/{pid}/stat')
        if not st:
            continue
        if 'sluice bench' in c:
            cat = 'loadgen'
        elif 'redis-server' in c:
            cat = 'redis'
        elif c.startswith('postgres:') or ('/postgres' in c and ' -D ' in c):
            master = c if ' -D ' in c else procs.get(str(st[0]), '')
            side = 'pgR' if 'replica' in master else 'pgP'
            if ' -D ' in c:
                role = 'postmaster'
            else:
                w = c.split()
                role = w[1] if len(w) > 1 and w[1] in PG_ROLES else 'backend'
            cat = side + ':' + role
        else:
            continue
        cur[(cat, pid)] = st[1]
    fields = open('/proc/stat').readline().split()[1:9]
    for name, v in zip(('user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'),
                       fields):
        cur[('sys:' + name, 0)] = int(v)
    for line in open('/proc/vmstat'):
        k, v = line.split()
        if k in VM:
            cur[('vm:' + k, 0)] = int(v) * HZ
    return cur


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: bench/cpu_sampler.py OUT.csv')
    out = open(sys.argv[1], 'w')
    prev = {}
    while True:
        now = time.time()
        cur = sample()
        agg = {}
        for k, v in cur.items():
            if k in prev:
                agg[k[0]] = agg.get(k[0], 0) + (v - prev[k])
        prev = cur
        for cat, ticks in sorted(agg.items()):
            if ticks:
                out.write('%.0f,%s,%.2f\n' % (now, cat, ticks / HZ))
        out.flush()
        time.sleep(max(0.0, 1 - (time.time() - now)))


if __name__ == '__main__':
    main()
