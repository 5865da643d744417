#!/usr/bin/env bash
# `make run-postgres`: the PostgreSQL stack on this machine, for a person: a PostgreSQL 15
# primary and a streaming replica (scripts/pg.sh) under PG_DIR (default ./sluice-pg, kept
# between runs), and `sluice serve --store <primary> --store-read <replica>`. Ctrl+C stops
# sluice and both servers.
#
# Development only: the servers trust user `postgres` on 127.0.0.1, and engine=postgres
# queries run as that superuser (--query-allow-privileged-role). In production connect
# --store-read as a login role with only SELECT (README "PostgreSQL").
# Usage: scripts/run-postgres.sh BUILD_DIR LISTEN DATA_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}" listen="${2:-127.0.0.1:8080}" data="${3:-./sluice-data-pg}"
pg_root="$(realpath -m "${PG_DIR:-./sluice-pg}")"
source "$root/scripts/pg.sh"

mkdir -p "$pg_root"
chmod 755 "$pg_root"
if [[ -f "$pg_root/ports" ]]; then
  read -r primary_port replica_port <"$pg_root/ports"
  pg_start "$pg_root/primary" "$primary_port"
  pg_start "$pg_root/replica" "$replica_port"
else
  primary_port="$(pg_free_port)"
  pg_start_primary "$pg_root/primary" "$primary_port"
  replica_port="$(pg_free_port)"
  pg_start_replica "$primary_port" "$pg_root/replica" "$replica_port"
  echo "$primary_port $replica_port" >"$pg_root/ports"
fi
trap 'pg_stop "$pg_root/replica"; pg_stop "$pg_root/primary"' EXIT
primary="postgresql://postgres@127.0.0.1:$primary_port/sluice"
replica="postgresql://postgres@127.0.0.1:$replica_port/sluice"
echo "PostgreSQL primary $primary, replica $replica (data in $pg_root)"
"$root/$build/sluice" serve --listen "$listen" --data-dir "$data" --store "$primary" \
  --store-read "$replica" --query-allow-privileged-role=true
