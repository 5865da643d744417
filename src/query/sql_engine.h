// SqlEngine: the contract the engines behind POST /v1/query keep — DuckDB's QueryEngine
// (query_engine.h) and PostgresQueryEngine (postgres_query.h). They take the same limits,
// answer with the same JSON document (query/result_json.h has the value rules) and end every
// query with one of the same outcomes, so the route and `sluice query` treat them alike.
//
// Concurrency: implementations are thread-safe; ExecuteAsync never blocks its caller.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::query {

struct QueryOptions {
  int connections = 2;  // concurrent queries (worker threads, one connection each)
  int max_queued = 8;   // queries waiting for a worker; beyond that: busy (HTTP 503)
  std::chrono::milliseconds timeout{30'000};
  uint64_t max_rows = 100'000;
  size_t max_sql_bytes = 100'000;
  // Cap on one result's JSON: the database's memory limit does not cover the rendered text,
  // and 100k rows of wide strings could otherwise take the server's memory.
  size_t max_result_bytes = size_t{256} << 20;
};

// A query's result, rendered (query/result_json.h has the value rules):
// {"columns":[…],"types":[…],"rows":[[…]],"row_count":N,"elapsed_ms":x}
struct QueryResultJson {
  std::string json;
  uint64_t row_count = 0;
  double elapsed_ms = 0;
};

// How a query ended; the label of sluice_queries_total{outcome=…} and the HTTP status.
enum class QueryOutcome {
  kOk,           // 200
  kInvalid,      // 400: refused statement, SQL error, file outside the sandbox, SQL too long
  kTimeout,      // 504: stopped after the timeout
  kTooManyRows,  // 413: more than max_rows rows or max_result_bytes of JSON
  kOutOfMemory,  // 413: over the database memory limit
  kBusy,         // 503 + Retry-After: every worker busy and the queue full, stopping, or the
                 // database unreachable for now
  kError,        // 500: the engine failed (I/O error, internal error, misconfiguration)
};
std::string_view OutcomeName(QueryOutcome outcome);
int HttpStatusFor(QueryOutcome outcome);

struct QueryReply {
  QueryOutcome outcome = QueryOutcome::kError;
  Result<QueryResultJson> result = Status::Internal("query not run");
};

class SqlEngine {
 public:
  using QueryCallback = std::function<void(QueryReply)>;

  virtual ~SqlEngine() = default;

  // Runs one read-only statement `sql` within the limits, without blocking: `done` is called
  // exactly once, on a worker thread (or inline when the query is refused at once).
  virtual void ExecuteAsync(std::string sql, QueryCallback done) = 0;

  // The same, waiting for the result (so never call it from a callback of this engine).
  // InvalidArgument for refused or wrong SQL and for too many rows or bytes,
  // DeadlineExceeded after the timeout, ResourceExhausted over the memory limit, Unavailable
  // when busy, stopped or unreachable, IOError/Internal/FailedPrecondition when the engine
  // failed.
  Result<QueryResultJson> Execute(const std::string& sql);
};

}  // namespace sluice::query
