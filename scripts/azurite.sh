# shellcheck shell=bash
# Azurite test peer (the Azure Storage emulator, blob service only): a bash library to be
# `source`d (tests, benchmarks, make targets).
#
#   azurite_free_port        print a TCP port free on 127.0.0.1
#   azurite_start DIR PORT   start azurite-blob in the background on 127.0.0.1:PORT keeping its
#                            data (--location), pidfile (azurite.pid) and log (azurite.log) in DIR;
#                            returns once it listens. Restarting on the same DIR keeps the
#                            containers and blobs of the last run.
#   azurite_stop DIR         stop the server started in DIR: SIGTERM, and SIGKILL once it has
#                            saved its data (open client connections keep it running) or after
#                            10 s; nothing when not running
#
# The binary is tests/peers/node_modules/.bin/azurite-blob (scripts/test.sh installs it from
# tests/peers/package.json), else $AZURITE_BIN. The account is azurite's well-known development
# account: AZURITE_CONNECTION_STRING PORT prints its connection string for a server on PORT.
# Every function returns non-zero with a sentence on stderr (and the log's tail) when something
# fails; none of them exits the shell.

# The same probe as pg.sh's (ports below Linux's ephemeral range).
source "$(dirname "${BASH_SOURCE[0]}")/pg.sh"
azurite_free_port() { pg_free_port; }

# Azurite's published development account (not a secret: it is in Microsoft's documentation).
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

azurite_connection_string() {
  echo "DefaultEndpointsProtocol=http;AccountName=$AZURITE_ACCOUNT;AccountKey=$AZURITE_KEY;BlobEndpoint=http://127.0.0.1:$1/$AZURITE_ACCOUNT;"
}

_azurite_bin() {
  local local_bin
  local_bin="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/peers/node_modules/.bin/azurite-blob"
  if [[ -x "$local_bin" ]]; then
    echo "$local_bin"
  elif [[ -n "${AZURITE_BIN:-}" && -x "$AZURITE_BIN" ]]; then
    echo "$AZURITE_BIN"
  else
    echo "azurite.sh: azurite-blob not found in tests/peers/node_modules/.bin (scripts/test.sh" \
      "installs it with npm) and \$AZURITE_BIN is not an executable" >&2
    return 1
  fi
}

_azurite_log_tail() {
  if [[ -f "$1/azurite.log" ]]; then
    echo "azurite.sh: last lines of $1/azurite.log:" >&2
    tail -n 30 "$1/azurite.log" >&2
  fi
}

# How many lines of DIR's log contain TEXT (0 without a log).
_azurite_log_count() {
  local n
  n="$(grep -c "$2" "$1/azurite.log" 2>/dev/null)" || true
  echo "${n:-0}"
}

# Running, and not a zombie (a killed server started from this shell stays one until reaped).
_azurite_alive() {
  [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

azurite_start() {
  if (($# != 2)); then
    echo "usage: azurite_start DIR PORT" >&2
    return 2
  fi
  local dir="$1" port="$2" bin pid i listening_before
  bin="$(_azurite_bin)" || return 1
  mkdir -p "$dir" || return 1
  dir="$(cd "$dir" && pwd)"
  if [[ -f "$dir/azurite.pid" ]] && _azurite_alive "$(cat "$dir/azurite.pid" 2>/dev/null)"; then
    echo "azurite.sh: an azurite-blob started in $dir is still running (azurite_stop it first)" >&2
    return 1
  fi
  listening_before="$(_azurite_log_count "$dir" "successfully listens")"
  # Every descriptor goes to the log or /dev/null: a caller reading our output through a pipe
  # must not wait for the server to exit.
  "$bin" --blobHost 127.0.0.1 --blobPort "$port" --location "$dir" --silent \
    --skipApiVersionCheck --disableTelemetry </dev/null >>"$dir/azurite.log" 2>&1 &
  pid=$!
  disown "$pid" 2>/dev/null || true
  echo "$pid" >"$dir/azurite.pid"
  for ((i = 0; i < 300; i++)); do
    if ! _azurite_alive "$pid"; then
      echo "azurite.sh: azurite-blob in $dir exited before listening on port $port" >&2
      _azurite_log_tail "$dir"
      rm -f "$dir/azurite.pid"
      return 1
    fi
    # Our process says it listens (an answer on the port could come from another server).
    if (($(_azurite_log_count "$dir" "successfully listens") > listening_before)); then
      return 0
    fi
    sleep 0.1
  done
  echo "azurite.sh: azurite-blob in $dir does not listen on port $port after 30 s" >&2
  _azurite_log_tail "$dir"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/azurite.pid"
  return 1
}

azurite_stop() {
  if (($# != 1)); then
    echo "usage: azurite_stop DIR" >&2
    return 2
  fi
  local dir="$1" pid i
  [[ -f "$dir/azurite.pid" ]] || return 0
  pid="$(cat "$dir/azurite.pid" 2>/dev/null)" || return 0
  rm -f "$dir/azurite.pid"
  _azurite_alive "$pid" || return 0
  # SIGTERM: azurite closes its server and saves its metadata database, and logs "successfully
  # closed". A client's idle keep-alive connection keeps the process alive after that, so once
  # it has said so (or after 10 s) it gets SIGKILL.
  local closed_before
  closed_before="$(_azurite_log_count "$dir" "successfully closed")"
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    _azurite_alive "$pid" || return 0
    if (($(_azurite_log_count "$dir" "successfully closed") > closed_before)); then
      sleep 0.2
      break
    fi
    sleep 0.1
  done
  _azurite_alive "$pid" || return 0
  if ((i == 100)); then
    echo "azurite.sh: azurite-blob $pid in $dir did not close within 10 s of SIGTERM;" \
      "killing it" >&2
  fi
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    _azurite_alive "$pid" || return 0
    sleep 0.1
  done
  echo "azurite.sh: azurite-blob $pid in $dir survived SIGKILL" >&2
  return 1
}
