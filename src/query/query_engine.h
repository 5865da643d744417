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
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "duck/duck.h"
#include "query/history_gate.h"
#include "query/sql_engine.h"
#include "query/stats.h"
#include "query/watchdog.h"
#include "query/worker_pool.h"

namespace sluice::http {
class Server;
class KeyStore;
}  // namespace sluice::http

namespace sluice::query {

class QueryEngine : public SqlEngine, public StatsEngine {
 public:
  // `db` is shared with its owner (the hot store) and must already carry the sandbox.
  QueryEngine(QueryOptions options, std::shared_ptr<duck::Database> db,
              Clock* clock = SystemClock());
  ~QueryEngine() override;
  QueryEngine(const QueryEngine&) = delete;
  QueryEngine& operator=(const QueryEngine&) = delete;

  // IOError when a connection cannot be opened.
  Status Start();
  void Stop();

  // SqlEngine. Execute(): InvalidArgument for refused or wrong SQL and for too many rows or
  // bytes, DeadlineExceeded when stopped by the watchdog, ResourceExhausted over the memory
  // limit, Unavailable when busy or stopped, IOError/Internal when the engine failed.
  void ExecuteAsync(std::string sql, QueryCallback done) override;

  // StatsEngine, over this database's events_1m (query/stats.h has the document, the
  // bucketing and the caps): counts per bucket and event over [from, to), in a read-only
  // transaction within the timeout, at most max_rows points.
  void StatsAsync(StatsRequest request, StatsCallback done) override;

  // POST /v1/query and GET /v1/stats. `keys` (borrowed; may be null or empty = open) must
  // outlive the server. "engine":"postgres" queries go to `postgres` (borrowed; null: refused
  // as not configured). GET /v1/stats asks `stats` (borrowed), or this engine when it is null:
  // pass the PostgreSQL engine when the rollups live in PostgreSQL (--store postgres://…),
  // where this database's events_1m stays empty. This engine, `postgres` and `stats` must
  // outlive the server's Stop().
  void RegisterRoutes(http::Server* server, const http::KeyStore* keys,
                      SqlEngine* postgres = nullptr, StatsEngine* stats = nullptr);

  const QueryOptions& options() const { return options_; }

  // History from a bucket (history/history_cache.h): before each statement that reads
  // `events`, the gate (borrowed; must outlive Stop()) is asked for the files of the
  // received_at range the statement can read (query/time_range.h). Its refusals become
  // 413 (cache too small), 504 (timeout), 503 (object store unreachable) or 500. Set before
  // Start(). Without a gate, the view's files are all local already.
  void SetHistoryGate(HistoryGate* gate) { history_ = gate; }

 private:
  struct Worker {
    std::unique_ptr<duck::Connection> conn;
  };

  QueryReply RunQuery(Worker& worker, const std::string& sql);
  // Outcome kOk (with `lease` set when files were needed), or the refusal to answer with.
  QueryReply AcquireHistory(Worker& worker, const std::string& sql,
                            std::chrono::steady_clock::time_point t0,
                            std::unique_ptr<HistoryLease>* lease);
  Result<std::string> RunStats(Worker& worker, const StatsRequest& request);
  // Ends the worker's read-only transaction; replaces its connection if that fails.
  void EndTransaction(Worker& worker);

  const QueryOptions options_;
  const std::shared_ptr<duck::Database> db_;
  Clock* const clock_;
  Watchdog watchdog_;
  WorkerPool pool_;
  // One per pool worker, indexed by its number; changed only by Start() and Stop().
  std::vector<std::unique_ptr<Worker>> workers_;
  HistoryGate* history_ = nullptr;
  std::atomic<bool> stopping_{false};  // Stop() has begun: interrupted queries are "shutting down"
};

}  // namespace sluice::query
