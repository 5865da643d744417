// QueryEngine: read-only SQL over Sluice's DuckDB database — POST /v1/query, GET /v1/stats and
// `sluice query` (DESIGN.md "HTTP" and "Guarantees").
//
// Sandbox, in layers (each refusal is a sentence that names the limit):
//  1. The database's own sandbox (duck/sandbox.h), applied by whoever opened it: no file
//     access outside the allowed directories, no ATTACH/INSTALL/LOAD, a memory limit, and the
//     configuration locked so no statement can undo it.
//  2. SQL text longer than max_sql_bytes is refused unread. The text must parse into exactly
//     one statement, and it must prepare as SELECT or EXPLAIN (DuckDB rewrites PRAGMA
//     show_tables, SHOW, DESCRIBE and SUMMARIZE into SELECTs, so they pass); anything else is
//     refused before it runs: "only a single read-only SELECT is allowed; got CREATE".
//  3. The statement runs inside BEGIN TRANSACTION READ ONLY … ROLLBACK, so a SELECT with a side
//     effect (nextval) or EXPLAIN ANALYZE of a write fails instead of changing data.
//  4. A watchdog interrupts a statement after `timeout`: DeadlineExceeded.
//  5. The database memory limit: DuckDB's out-of-memory error becomes ResourceExhausted.
//  6. Rows are streamed, and a result with more than max_rows rows (or more than
//     max_result_bytes of JSON) is refused as soon as that is known; the rest is never computed.
// Internal `sluice_` tables are readable like any other: they hold offsets and window
// bookkeeping, nothing secret, and nothing can write to them through this engine.
//
// Limitations: every file inside the allowed directories is readable (read_text, read_blob,
// read_parquet…), so nothing secret (a config file with keys) may live in them. A statement
// is interrupted only where DuckDB checks for interrupts (between tasks and chunks); the
// watchdog repeats the interrupt until the statement ends. `SELECT * FROM checkpoint()` is a
// SELECT and is allowed (it changes no data).
// After any refused, failed or stopped query the worker's connection is reusable (its
// transaction is rolled back; a connection that cannot roll back is replaced).
//
// Concurrency: thread-safe. `connections` worker threads, each with its own DuckDB
// connection, run queries and stats; at most max_queued more wait in a queue; beyond that a
// request is refused at once as busy. The *Async methods only enqueue, so HTTP I/O threads
// never block on a query; their callbacks run on a worker thread (or inline when refused).
//
// Lifecycle: Start() opens the connections and starts the threads; Stop() interrupts running
// statements, fails queued ones with Unavailable and joins. Both from one controlling thread;
// the destructor calls Stop().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "duck/duck.h"
#include "query/watchdog.h"

namespace sluice::http {
class Server;
class KeyStore;
}  // namespace sluice::http

namespace sluice::query {

struct QueryOptions {
  int connections = 2;  // concurrent queries (worker threads, one DuckDB connection each)
  int max_queued = 8;   // queries waiting for a worker; beyond that: busy (HTTP 503)
  std::chrono::milliseconds timeout{30'000};
  uint64_t max_rows = 100'000;
  size_t max_sql_bytes = 100'000;
  // Cap on one result's JSON: DuckDB's memory limit does not cover the rendered text, and 100k
  // rows of wide strings could otherwise take the server's memory.
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
  kTimeout,      // 504: stopped by the watchdog
  kTooManyRows,  // 413: more than max_rows rows or max_result_bytes of JSON
  kOutOfMemory,  // 413: over the database memory limit
  kBusy,         // 503 + Retry-After: every worker busy and the queue full, or stopping
  kError,        // 500: the engine failed (I/O error, internal error)
};
std::string_view OutcomeName(QueryOutcome outcome);
int HttpStatusFor(QueryOutcome outcome);

struct QueryReply {
  QueryOutcome outcome = QueryOutcome::kError;
  Result<QueryResultJson> result = Status::Internal("query not run");
};

// GET /v1/stats: event counts over time from the rollup table events_1m.
struct StatsRequest {
  std::optional<int64_t> from_us;    // default: to - 1 h
  std::optional<int64_t> to_us;      // default: now
  std::string interval;              // "1m", "1h", "1d"; empty: chosen from the range
  std::optional<std::string> event;  // only this event name
};

class QueryEngine {
 public:
  using QueryCallback = std::function<void(QueryReply)>;
  using StatsCallback = std::function<void(Result<std::string>)>;

  // `db` is shared with its owner (the hot store) and must already carry the sandbox.
  QueryEngine(QueryOptions options, std::shared_ptr<duck::Database> db,
              Clock* clock = SystemClock());
  ~QueryEngine();
  QueryEngine(const QueryEngine&) = delete;
  QueryEngine& operator=(const QueryEngine&) = delete;

  // IOError when a connection cannot be opened.
  Status Start();
  void Stop();

  // Runs `sql` on a worker and waits for it (so never call it from a callback of this
  // engine). InvalidArgument for refused or wrong SQL and for too many rows or bytes,
  // DeadlineExceeded when stopped by the watchdog, ResourceExhausted over the memory
  // limit, Unavailable when busy or stopped, IOError/Internal when the engine failed.
  Result<QueryResultJson> Execute(const std::string& sql);
  // The same, with the outcome, without blocking: `done` is called exactly once.
  void ExecuteAsync(std::string sql, QueryCallback done);

  // Counts per bucket and event over [from, to):
  // {"interval":"1m","from":"…Z","to":"…Z","series":[{"t":"…Z","event":"…","count":N},…],
  //  "total":N}. Buckets are aligned to multiples of the interval since the Unix epoch (UTC
  // days for 1d); events without a name have event "". InvalidArgument for a bad range or
  // interval, more than 10080 buckets or more than max_rows points; the query's own limits
  // (timeout, read-only transaction) apply.
  Result<std::string> Stats(const StatsRequest& request);
  void StatsAsync(StatsRequest request, StatsCallback done);

  // POST /v1/query and GET /v1/stats. `keys` (borrowed; may be null or empty = open) must
  // outlive the server; this engine must outlive the server's Stop().
  void RegisterRoutes(http::Server* server, const http::KeyStore* keys);

  const QueryOptions& options() const { return options_; }

 private:
  struct Worker {
    std::unique_ptr<duck::Connection> conn;
    std::jthread thread;
  };
  // Runs on a worker; called with nullptr instead when the engine stops before running it.
  using Task = std::function<void(Worker*)>;

  // Enqueues `task`; Unavailable with a sentence when busy or not running.
  Status Enqueue(Task task);
  void RunWorker(Worker& worker, std::stop_token stop);
  QueryReply RunQuery(Worker& worker, const std::string& sql);
  Result<std::string> RunStats(Worker& worker, const StatsRequest& request);
  // Ends the worker's read-only transaction; replaces its connection if that fails.
  void EndTransaction(Worker& worker);

  const QueryOptions options_;
  const std::shared_ptr<duck::Database> db_;
  Clock* const clock_;
  Watchdog watchdog_;
  std::vector<std::unique_ptr<Worker>> workers_;  // changed only by Start() and Stop()
  std::atomic<bool> stopping_{false};  // Stop() has begun: interrupted queries are "shutting down"

  std::mutex mu_;
  std::condition_variable_any cv_;
  // State below is protected by mu_.
  std::deque<Task> queue_;
  bool running_ = false;
};

}  // namespace sluice::query
