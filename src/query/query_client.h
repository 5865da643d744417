// QueryClient: `sluice query --server URL` — sends one POST /v1/query over HTTP/1.1 (Beast,
// blocking) and returns the result document.
//
// Concurrency: a function; each call makes its own connection.
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace sluice::query {

struct ServerQuery {
  std::string server;  // "http://127.0.0.1:8080" (a path prefix is kept) or "127.0.0.1:8080"
  std::string sql;
  std::string engine = "duckdb";               // "duckdb" or "postgres" (the server's replica)
  std::string read_key;                        // sent as Authorization: Bearer; empty = none
  std::chrono::milliseconds timeout{120'000};  // connect + answer
};

// The 200 body. Otherwise: InvalidArgument for a malformed URL (https is not supported) and
// for a 4xx answer, Unauthenticated for 401, PermissionDenied for 403, Unavailable when the
// server cannot be reached, times out or answers 5xx; the message carries the server's
// {"error":…} sentence and the HTTP status.
Result<std::string> PostQuery(const ServerQuery& query);

}  // namespace sluice::query
