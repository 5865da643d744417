# PostgreSQL 15 test peers: a bash library to be `source`d (tests, benchmarks, make targets).
#
#   pg_bindir                              print PostgreSQL 15's bin dir
#   pg_free_port                           print a TCP port free on 127.0.0.1
#   pg_start_primary DIR PORT [LINE...]    initdb into DIR, start a primary on 127.0.0.1:PORT with
#                                          database `sluice`; LINEs are extra postgresql.conf lines
#   pg_start_replica PRIMARY_PORT DIR PORT pg_basebackup -R from the primary, start a hot standby
#   pg_start DIR PORT                      start the existing server in DIR again (after pg_stop)
#   pg_stop DIR                            fast shutdown; nothing to do when it is not running
#
# Both servers trust user `postgres` on 127.0.0.1 (also for replication) and keep their unix
# socket inside DIR: connect with postgresql://postgres@127.0.0.1:PORT/sluice. Run as root, the
# servers run as the `postgres` user (runuser), so DIR's parent must be searchable by it
# (mktemp -d makes 0700 dirs: chmod 755 them). Every function returns non-zero with a sentence
# on stderr (and the server log's tail) when something fails; none of them exits the shell.

pg_bindir() {
  if [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]]; then
    echo /usr/lib/postgresql/15/bin
  elif command -v pg_config >/dev/null 2>&1 && [[ -x "$(pg_config --bindir)/pg_ctl" ]]; then
    pg_config --bindir
  else
    echo "pg.sh: PostgreSQL 15 server binaries not found; install postgresql-15" \
      "(scripts/install-deps.sh test)" >&2
    return 1
  fi
}

# Probes random ports below Linux's ephemeral range (32768+) so that a client socket cannot
# take the port between this check and the server's bind.
pg_free_port() {
  local port i
  for ((i = 0; i < 200; i++)); do
    port=$((15000 + RANDOM % 17000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "pg.sh: found no free TCP port on 127.0.0.1 in 200 tries" >&2
  return 1
}

# pid_wait_exit PID SECONDS: 0 once process PID is gone, 1 if it is still there after SECONDS
# (polled every 0.1 s). Shared with redis.sh and s3rver.sh, which source this file.
pid_wait_exit() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# Runs a command as the owner of the server files: `postgres` when we are root (PostgreSQL
# refuses to run as root), else ourselves. From / so that the postgres user may chdir.
_pg_as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# Creates DIR (empty) owned by the server's user.
_pg_make_dir() {
  local dir="$1"
  if [[ -e "$dir" && -n "$(ls -A "$dir" 2>/dev/null)" ]]; then
    echo "pg.sh: $dir exists and is not empty; give an empty or new directory" >&2
    return 1
  fi
  mkdir -p "$dir" || return 1
  chmod 700 "$dir" || return 1
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$dir" || return 1
    if ! runuser -u postgres -- test -x "$(dirname "$dir")"; then
      echo "pg.sh: user postgres cannot enter $(dirname "$dir"); chmod 755 it" \
        "(mktemp -d makes 0700 directories)" >&2
      return 1
    fi
  fi
}

_pg_log_tail() {
  local log="$1"
  if [[ -f "$log" ]]; then
    echo "pg.sh: last lines of $log:" >&2
    tail -n 30 "$log" >&2
  fi
}

# pg_ctl start -w, then wait until the server accepts connections on 127.0.0.1:PORT.
_pg_ctl_start() {
  local dir="$1" port="$2" bin
  bin="$(pg_bindir)" || return 1
  if ! _pg_as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null; then
    echo "pg.sh: PostgreSQL in $dir did not start on port $port" >&2
    _pg_log_tail "$dir/server.log"
    return 1
  fi
  local i
  for ((i = 0; i < 300; i++)); do
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then return 0; fi
    sleep 0.1
  done
  echo "pg.sh: PostgreSQL in $dir started but does not accept connections on port $port" >&2
  _pg_log_tail "$dir/server.log"
  return 1
}

pg_start_primary() {
  if (($# < 2)); then
    echo "usage: pg_start_primary DIR PORT [postgresql.conf line...]" >&2
    return 2
  fi
  local dir="$1" port="$2" bin
  shift 2
  bin="$(pg_bindir)" || return 1
  _pg_make_dir "$dir" || return 1
  local initdb_log
  initdb_log="$(mktemp)" || return 1
  if ! _pg_as_owner "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
    --no-instructions >"$initdb_log" 2>&1; then
    echo "pg.sh: initdb into $dir failed:" >&2
    tail -n 20 "$initdb_log" >&2
    rm -f "$initdb_log"
    return 1
  fi
  rm -f "$initdb_log"
  {
    echo "local all all trust"
    echo "host all postgres 127.0.0.1/32 trust"
    echo "host replication postgres 127.0.0.1/32 trust"
  } >"$dir/pg_hba.conf"
  {
    echo ""
    echo "# scripts/pg.sh"
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $port"
    echo "unix_socket_directories = '$dir'"
    echo "wal_level = replica"
    echo "max_wal_senders = 10"
    echo "max_replication_slots = 10"
    echo "hot_standby = on"
    echo "default_toast_compression = lz4"
    echo "fsync = on"
    local line
    for line in "$@"; do echo "$line"; done
  } >>"$dir/postgresql.conf"
  _pg_ctl_start "$dir" "$port" || return 1
  if ! "$bin/psql" -qX -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -c "CREATE DATABASE sluice" >/dev/null; then
    echo "pg.sh: could not create database sluice on port $port" >&2
    _pg_log_tail "$dir/server.log"
    return 1
  fi
}

# The replica streams through a physical replication slot on the primary
# (sluice_replica_PORT), so the primary keeps the WAL a lagging or paused replica still needs.
pg_start_replica() {
  if (($# != 3)); then
    echo "usage: pg_start_replica PRIMARY_PORT DIR PORT" >&2
    return 2
  fi
  local primary_port="$1" dir="$2" port="$3" bin
  bin="$(pg_bindir)" || return 1
  _pg_make_dir "$dir" || return 1
  local out
  if ! out="$(_pg_as_owner "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres \
    -D "$dir" -R -X stream -C -S "sluice_replica_$port" -c fast 2>&1)"; then
    echo "pg.sh: pg_basebackup from port $primary_port into $dir failed: $out" >&2
    return 1
  fi
  # The copy carries the primary's settings (and its log): these later lines win.
  rm -f "$dir/server.log"
  {
    echo ""
    echo "# scripts/pg.sh: replica"
    echo "port = $port"
    echo "unix_socket_directories = '$dir'"
    echo "hot_standby = on"
    # Sluice's export reads a whole window on the replica (a minute or more at the seed rate);
    # without feedback, the primary's vacuum of the busy catalog tables (events_1m,
    # sluice_offsets) cancels it after max_standby_streaming_delay (conflict with recovery).
    echo "hot_standby_feedback = on"
  } >>"$dir/postgresql.conf"
  _pg_ctl_start "$dir" "$port" || return 1
}

# Starts the existing server in DIR again (after pg_stop) on PORT.
pg_start() {
  if (($# != 2)); then
    echo "usage: pg_start DIR PORT" >&2
    return 2
  fi
  _pg_ctl_start "$1" "$2"
}

pg_stop() {
  if (($# != 1)); then
    echo "usage: pg_stop DIR" >&2
    return 2
  fi
  local dir="$1" bin
  [[ -f "$dir/postmaster.pid" ]] || return 0
  bin="$(pg_bindir)" || return 1
  _pg_as_owner "$bin/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}
