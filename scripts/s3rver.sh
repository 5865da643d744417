# s3rver test peer (a fake S3 on Node.js, from npm): a bash library to be `source`d (tests,
# benchmarks, make targets). s3rver is installed by scripts/test.sh into tests/peers/node_modules
# (`npm install --prefix tests/peers`).
#
#   s3rver_free_port                  print a TCP port free on 127.0.0.1
#   s3rver_start DIR PORT [BUCKET...] start s3rver in the background on 127.0.0.1:PORT with path-style
#                                     addressing, keeping its objects (DIR/data), pid file
#                                     (DIR/s3rver.pid) and log (DIR/s3rver.log) in DIR; creates each
#                                     BUCKET (kept when it exists). Returns once it answers HTTP.
#   s3rver_stop DIR                   SIGTERM the server started in DIR and wait until it is gone;
#                                     nothing when it is not running
#
# Credentials: access key S3RVER, secret S3RVER, any region (s3rver checks the access key but
# does not verify SigV4 signatures). Restarting on the same DIR keeps the objects. Every
# function returns non-zero with a sentence on stderr (and the log's tail) when something fails;
# none of them exits the shell.

# The same probe as pg.sh's (ports below Linux's ephemeral range).
source "$(dirname "${BASH_SOURCE[0]}")/pg.sh"
s3rver_free_port() { pg_free_port; }

_s3rver_bin() {
  local bin
  bin="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/peers/node_modules/s3rver/bin/s3rver.js"
  if [[ ! -f "$bin" ]] || ! command -v node >/dev/null 2>&1; then
    echo "s3rver.sh: $bin (or node) not found; install the test peers with" \
      "npm install --prefix tests/peers --no-save --omit=optional" >&2
    return 1
  fi
  echo "$bin"
}

_s3rver_log_tail() {
  if [[ -f "$1/s3rver.log" ]]; then
    echo "s3rver.sh: last lines of $1/s3rver.log:" >&2
    tail -n 30 "$1/s3rver.log" >&2
  fi
}

s3rver_start() {
  if (($# < 2)); then
    echo "usage: s3rver_start DIR PORT [BUCKET...]" >&2
    return 2
  fi
  local dir="$1" port="$2" bin bucket
  shift 2
  bin="$(_s3rver_bin)" || return 1
  mkdir -p "$dir/data" || return 1
  dir="$(cd "$dir" && pwd)"
  local args=(-d "$dir/data" -a 127.0.0.1 -p "$port" --no-vhost-buckets)
  for bucket in "$@"; do args+=(--configure-bucket "$bucket"); done
  # All descriptors redirected: a caller reading our output (a test's popen) gets EOF at once.
  # --openssl-legacy-provider: s3rver makes ListObjectsV2 continuation tokens with DES, which
  # OpenSSL 3 only has in its legacy provider (without it, every truncated list page is a 500).
  node --openssl-legacy-provider "$bin" "${args[@]}" </dev/null >>"$dir/s3rver.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/s3rver.pid"
  local i code
  for ((i = 0; i < 300; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "s3rver.sh: s3rver in $dir exited before answering on port $port" >&2
      _s3rver_log_tail "$dir"
      rm -f "$dir/s3rver.pid"
      return 1
    fi
    # Any HTTP answer (403 for an unsigned request) means it is up.
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/" 2>/dev/null)" || true
    if [[ -n "$code" && "$code" != 000 ]]; then return 0; fi
    sleep 0.1
  done
  echo "s3rver.sh: s3rver in $dir does not answer HTTP on port $port after 30 s" >&2
  _s3rver_log_tail "$dir"
  return 1
}

s3rver_stop() {
  if (($# != 1)); then
    echo "usage: s3rver_stop DIR" >&2
    return 2
  fi
  local dir="$1" pid
  [[ -f "$dir/s3rver.pid" ]] || return 0
  pid="$(cat "$dir/s3rver.pid" 2>/dev/null)" || return 0
  rm -f "$dir/s3rver.pid"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  pid_wait_exit "$pid" 10 && return 0
  kill -KILL "$pid" 2>/dev/null || true
  echo "s3rver.sh: s3rver $pid in $dir did not stop within 10 s of SIGTERM; killed it" >&2
  return 1
}
