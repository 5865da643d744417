// PostgresQueryEngine: `"engine":"postgres"` queries (POST /v1/query, `sluice query --engine
// postgres`) on the --store-read connection: a streaming replica, or the primary when there is
// none. It answers like the DuckDB engine (query/sql_engine.h): the same JSON document
// (query/postgres_result.h has the value rules), limits, outcomes and HTTP statuses.
// With --store postgres://… it also answers GET /v1/stats (query/stats.h) from PostgreSQL's
// events_1m, with the DuckDB engine's document, caps and errors, inside layers 1, 3 and 4 below
// (role check, read-only transaction, statement timeout); it fetches at most max_rows + 1 rows.
//
// Sandbox, in layers (each refusal is a sentence that names the limit):
//  1. The role. PostgreSQL lets a superuser out of any read-only transaction: pg_read_file()
//     reads server files, COPY (…) TO '/file' writes them, set_config('role', …) changes who
//     it is. So before every query the engine checks the connection's session user, and
//     refuses to run (Start() fails; later, each query fails with 500) when it is a
//     superuser, a member of a superuser role or of pg_read_server_files,
//     pg_write_server_files, pg_execute_server_program or pg_signal_backend, or may EXECUTE
//     pg_read_file, pg_read_binary_file, pg_ls_dir, pg_stat_file, lo_import or lo_export.
//     The sentence names the fix: a login role with only SELECT on the tables, e.g.
//       CREATE ROLE sluice_reader LOGIN PASSWORD '…';
//       GRANT SELECT ON ALL TABLES IN SCHEMA public TO sluice_reader;
//     and --store-read postgres://sluice_reader@…. `allow_privileged_role` (development only)
//     skips the check and logs a warning at Start(). Checking every query (in the same round
//     trip as BEGIN) also catches a role granted more after the engine started.
//  2. The text: longer than max_sql_bytes or with a NUL byte is refused unread; it must start
//     with SELECT, WITH, VALUES, TABLE, EXPLAIN or SHOW ("only a single read-only SELECT is
//     allowed; got INSERT"), and it is sent with the extended protocol (PQsendPrepare), which
//     refuses more than one statement ("… got several statements").
//  3. BEGIN TRANSACTION READ ONLY … ROLLBACK: a write hidden in a WITH, nextval() or SELECT …
//     FOR UPDATE fails ("… got a statement that writes (PostgreSQL: cannot execute nextval()
//     in a read-only transaction)"). Session advisory locks, the one state a SELECT can leave
//     that outlives a ROLLBACK, are released after every query.
//  4. SET LOCAL statement_timeout = the timeout: the server stops the statement (504). As a
//     backstop (a server or network that does not answer), the engine cancels the statement
//     itself 500 ms after the timeout, and gives up on the connection 5 s after a cancel.
//  5. Rows are streamed in single-row mode; past max_rows rows or max_result_bytes of JSON
//     the statement is cancelled at once (413) and the rest is never sent.
// A statement reads whatever its role may SELECT; grant it only Sluice's tables.
//
// Errors, by SQLSTATE: the query's own (syntax, unknown table, permission denied, division by
// zero: every class not below) → 400; out of memory or temp_file_limit (53200, 53400, 54) →
// 413; statement timeout → 504; connection lost or refused, too many connections, recovery
// conflict on the replica (08, 53300, 57P0x, 40001, 40P01, 55P03) → 503 (retry); internal
// or I/O errors (XX, 58) → 500.
//
// Connections: each worker owns one, opened at Start() (or on its first query when the server
// was down then) and replaced when broken or after a failed cleanup; TimeZone is UTC.
// PostgreSQL down: Start() still succeeds (with a warning) so the rest of Sluice starts, and
// queries answer 503 until it is back.
//
// Concurrency: thread-safe. `limits.connections` worker threads, at most limits.max_queued
// waiting queries, beyond that busy (503), as the DuckDB engine (query/worker_pool.h).
// Lifecycle: Start()/Stop() from one controlling thread; Stop() cancels running statements
// (they answer 503 "shutting down"), fails queued ones and joins. The destructor calls Stop().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "pg/pg.h"
#include "query/sql_engine.h"
#include "query/stats.h"
#include "query/worker_pool.h"

namespace sluice::query {

struct PostgresQueryOptions {
  std::string conninfo;  // --store-read, else --store: postgresql://user@host:port/db
  QueryOptions limits;   // connections, queue, timeout, max rows and bytes, as for DuckDB
  // Development only: run queries even as a superuser or file-reading role (see above).
  bool allow_privileged_role = false;
};

class PostgresQueryEngine : public SqlEngine, public StatsEngine {
 public:
  // `clock` (borrowed) is the "now" of a stats request without `to`.
  explicit PostgresQueryEngine(PostgresQueryOptions options, Clock* clock = SystemClock());
  ~PostgresQueryEngine() override;
  PostgresQueryEngine(const PostgresQueryEngine&) = delete;
  PostgresQueryEngine& operator=(const PostgresQueryEngine&) = delete;

  // Starts the workers. FailedPrecondition (the sentence names the fix) when the role breaks
  // the rule above; InvalidArgument when the conninfo cannot be parsed. An unreachable
  // server is logged, not an error.
  Status Start();
  void Stop();

  // SqlEngine. Execute(): InvalidArgument for refused or wrong SQL and for too many rows or
  // bytes, DeadlineExceeded after the timeout, ResourceExhausted over PostgreSQL's memory or
  // temp file limits, Unavailable when busy, stopped or PostgreSQL is unreachable,
  // FailedPrecondition for a privileged role, Internal/IOError when PostgreSQL failed.
  void ExecuteAsync(std::string sql, QueryCallback done) override;

  // StatsEngine, over PostgreSQL's events_1m (minute timestamptz, event text NULL for none).
  // Errors as Execute()'s, with the stats sentences for the timeout and Stop().
  void StatsAsync(StatsRequest request, StatsCallback done) override;

  const PostgresQueryOptions& options() const { return options_; }

 private:
  struct Worker {
    std::unique_ptr<pg::Connection> conn;
    std::unordered_map<uint32_t, std::string> type_names;  // format_type of other types
  };
  struct Flight;

  QueryReply RunQuery(Worker& worker, const std::string& sql);
  Result<std::string> RunStats(Worker& worker, const StatsRequest& request);
  QueryReply RunStatement(Worker& worker, const std::string& sql, Flight& flight);
  // Opens the worker's connection if it has none or it is broken.
  Status Connect(Worker& worker);
  // BEGIN READ ONLY, the SET LOCALs and the role check, in one round trip; reconnects once
  // when the connection turns out broken.
  QueryReply Begin(Worker& worker);
  // ROLLBACK and release advisory locks; drops the connection if that fails.
  void EndTransaction(Worker& worker);
  // The next result of the command in flight, or null at its end; cancels it at the deadline
  // or when the engine stops (recorded in `flight`).
  pg::PgResultPtr NextResult(Worker& worker, Flight& flight);
  // Cancels the command in flight and discards what it still sends.
  void CancelAndDrain(Worker& worker, Flight& flight);
  QueryReply FromError(const Status& st, const Flight& flight) const;

  const PostgresQueryOptions options_;
  Clock* const clock_;
  WorkerPool pool_;
  // One per pool worker, indexed by its number; changed only by Start() and Stop().
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stopping_{false};  // Stop() has begun: running statements are cancelled
};

}  // namespace sluice::query
