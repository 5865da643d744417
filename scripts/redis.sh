# Redis test peer: a bash library to be `source`d (tests, benchmarks, make targets).
#
#   redis_free_port                 print a TCP port free on 127.0.0.1
#   redis_start DIR PORT [LINE...]  start a daemonized redis-server on 127.0.0.1:PORT keeping its
#                                   data, pidfile (redis.pid) and log (redis.log) in DIR;
#                                   LINEs are extra redis.conf lines (e.g. "requirepass s3cret")
#   redis_stop DIR                  SHUTDOWN the server started in DIR; nothing when not running
#
# The server runs with appendonly yes, appendfsync everysec and maxmemory-policy noeviction
# (what the Redis Streams buffer needs: an acknowledged entry is never evicted). Every function
# returns non-zero with a sentence on stderr (and the log's tail) when something fails; none of
# them exits the shell.

# The same probe as pg.sh's (ports below Linux's ephemeral range).
source "$(dirname "${BASH_SOURCE[0]}")/pg.sh"
redis_free_port() { pg_free_port; }

_redis_log_tail() {
  if [[ -f "$1/redis.log" ]]; then
    echo "redis.sh: last lines of $1/redis.log:" >&2
    tail -n 30 "$1/redis.log" >&2
  fi
}

redis_start() {
  if (($# < 2)); then
    echo "usage: redis_start DIR PORT [redis.conf line...]" >&2
    return 2
  fi
  local dir="$1" port="$2" line
  shift 2
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    echo "redis.sh: redis-server/redis-cli not found; install redis-server and redis-tools" \
      "(scripts/install-deps.sh test)" >&2
    return 1
  fi
  mkdir -p "$dir" || return 1
  dir="$(cd "$dir" && pwd)"
  {
    echo "# scripts/redis.sh"
    echo "bind 127.0.0.1"
    echo "port $port"
    echo "daemonize yes"
    echo "dir $dir"
    echo "pidfile $dir/redis.pid"
    echo "logfile $dir/redis.log"
    echo "appendonly yes"
    echo "appendfsync everysec"
    echo "maxmemory-policy noeviction"
    echo "save \"\""
    for line in "$@"; do echo "$line"; done
  } >"$dir/redis.conf"
  local out
  if ! out="$(redis-server "$dir/redis.conf" 2>&1)"; then
    echo "redis.sh: redis-server in $dir did not start on port $port: $out" >&2
    _redis_log_tail "$dir"
    return 1
  fi
  local i
  for ((i = 0; i < 100; i++)); do
    # A server with requirepass answers NOAUTH (still: it is up and serving).
    out="$(redis-cli -h 127.0.0.1 -p "$port" ping 2>&1)" || true
    if [[ "$out" == PONG || "$out" == NOAUTH* ]]; then return 0; fi
    sleep 0.1
  done
  echo "redis.sh: redis-server in $dir does not answer PING on port $port: $out" >&2
  _redis_log_tail "$dir"
  return 1
}

redis_stop() {
  if (($# != 1)); then
    echo "usage: redis_stop DIR" >&2
    return 2
  fi
  local dir="$1" pid
  [[ -f "$dir/redis.pid" ]] || return 0
  pid="$(cat "$dir/redis.pid" 2>/dev/null)" || return 0
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  # SIGTERM makes redis-server shut down as SHUTDOWN does (works with requirepass too).
  kill -TERM "$pid" 2>/dev/null || return 0
  pid_wait_exit "$pid" 10 && return 0
  echo "redis.sh: redis-server $pid in $dir did not stop within 10 s" >&2
  return 1
}
