# Shared by the bench scripts (source it after setting $sluice and $out): a sluice server on
# a free port, in a temporary data dir that is removed on exit, after every background job
# still running (a server, a load generator) is stopped with SIGTERM.
# start_server ARGS… sets $pid and $addr; the server's log is appended to $out/server.log.

data="$(mktemp -d /tmp/sluice-bench-XXXXXX)"
pid=""
: >"$out/server.log"

cleanup() {
  local left
  left="$(jobs -p)"
  # shellcheck disable=SC2086 # one pid per word
  [[ -n "$left" ]] && kill $left 2>/dev/null
  wait 2>/dev/null
  rm -rf "$data"
}
trap cleanup EXIT

start_server() {
  "$sluice" serve --listen 127.0.0.1:0 --data-dir "$data/d" --buffer-max-bytes 60GiB "$@" \
    >>"$out/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do [[ -s "$data/d/serve.addr" ]] && break; sleep 0.05; done
  if [[ ! -s "$data/d/serve.addr" ]]; then
    echo "sluice serve did not start in 30 s; see $out/server.log" >&2
    exit 1
  fi
  addr="$(cat "$data/d/serve.addr")"
}

# SIGTERM and wait: the server finishes requests in flight and removes serve.addr.
stop_server() {
  kill "$pid"
  wait "$pid" || true
  pid=""
}
