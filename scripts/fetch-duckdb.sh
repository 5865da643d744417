#!/usr/bin/env bash
# Fetches DuckDB 1.4.4 (libduckdb.so and duckdb.h) with `npm pack` into third_party/duckdb,
# pinned by version and verified by SHA-256. `npm install` is never used: it would try to
# compile the Node addon. Does nothing when the files are already there and verified.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/third_party/duckdb"
lib_pkg="@duckdb/node-bindings-linux-x64@1.4.4-r.4"
lib_tgz="duckdb-node-bindings-linux-x64-1.4.4-r.4.tgz"
lib_sha="732fac4dc6b8f198870b9c4bb6ddf13544466daca00ad28ba2f1d80de5d7aa4b"
hdr_pkg="duckdb@1.4.4"
hdr_tgz="duckdb-1.4.4.tgz"
hdr_sha="5bb967dcbcd517670ba5f169f238fb9d6787e53752c60ebe24386169d76941ed"

if [[ -f "$dest/lib/libduckdb.so" && -f "$dest/include/duckdb.h" && -f "$dest/.verified" ]]; then
  exit 0
fi
mkdir -p "$dest/dl" "$dest/lib" "$dest/include"
cd "$dest/dl"
verify() {  # file sha
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  if [[ "$got" != "$2" ]]; then
    echo "fetch-duckdb: checksum mismatch for $1: got $got, want $2" >&2
    rm -f "$1"
    return 1
  fi
}
[[ -f "$lib_tgz" ]] || npm pack --silent "$lib_pkg" >/dev/null
verify "$lib_tgz" "$lib_sha"
[[ -f "$hdr_tgz" ]] || npm pack --silent "$hdr_pkg" >/dev/null
verify "$hdr_tgz" "$hdr_sha"
tar xzf "$lib_tgz" -O package/libduckdb.so >"$dest/lib/libduckdb.so"
tar xzf "$hdr_tgz" -O package/src/duckdb/src/include/duckdb.h >"$dest/include/duckdb.h"
rm -f "$dest/dl/"*.tgz
touch "$dest/.verified"
echo "fetch-duckdb: DuckDB 1.4.4 in $dest"
