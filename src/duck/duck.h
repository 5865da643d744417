// Adapters for DuckDB's C API (1.4): RAII owners for the database, connections, query results
// and appenders, and translation of DuckDB errors into Status with DuckDB's own message.
// Every component that talks to DuckDB (store/, export/, query/) goes through these.
//
// Concurrency: a Database may be shared by any number of threads and connections. A
// Connection is used by one thread at a time, except Interrupt(), which any thread may call
// to cancel the statement running on it.
#pragma once

#include <duckdb.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sluice::duck {

// "DuckDB error in <what>: <message>", as InvalidArgument for errors in a query the caller
// wrote (parser, binder, catalog), Unavailable when interrupted, IOError otherwise.
Status Error(std::string_view what, std::string_view message, duckdb_error_type type);

class Database {
 public:
  // Opens (creating it if needed) the database file at `path` (":memory:" or "" for an
  // in-memory one) with `config` options (duckdb_set_config names, e.g. {"memory_limit",
  // "4GB"}, {"access_mode", "READ_ONLY"}). IOError with DuckDB's message when it cannot,
  // e.g. when another process holds the file.
  static Result<std::shared_ptr<Database>> Open(
      const std::string& path, const std::vector<std::pair<std::string, std::string>>& config = {});
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  duckdb_database get() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  Database() = default;
  duckdb_database db_ = nullptr;
  std::string path_;
};

// An owned duckdb_result. Cell accessors use DuckDB's per-value API: fine for small results
// (catalog lookups, offsets); large results should read chunks from get().
class QueryResult {
 public:
  QueryResult() = default;
  QueryResult(QueryResult&& o) noexcept;
  QueryResult& operator=(QueryResult&& o) noexcept;
  ~QueryResult();
  duckdb_result* get() { return &result_; }
  uint64_t rows() { return duckdb_row_count(&result_); }
  uint64_t columns() { return duckdb_column_count(&result_); }
  std::string ColumnName(uint64_t col) { return duckdb_column_name(&result_, col); }
  bool IsNull(uint64_t col, uint64_t row) { return duckdb_value_is_null(&result_, col, row); }
  int64_t Int64(uint64_t col, uint64_t row) { return duckdb_value_int64(&result_, col, row); }
  // The value cast to VARCHAR ("" for NULL).
  std::string String(uint64_t col, uint64_t row);

 private:
  friend class Connection;
  duckdb_result result_{};
  bool valid_ = false;
};

class Connection {
 public:
  // A new connection to `db`, which it keeps alive.
  static Result<std::unique_ptr<Connection>> Open(std::shared_ptr<Database> db);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs `sql` (one or more statements) and discards the result.
  Status Exec(const std::string& sql);
  // Runs `sql` and returns its result.
  Result<QueryResult> Query(const std::string& sql);
  // Cancels the statement running on this connection (from any thread); it fails with
  // Unavailable ("INTERRUPT Error: Interrupted!").
  void Interrupt() { duckdb_interrupt(conn_); }
  duckdb_connection get() const { return conn_; }
  const std::shared_ptr<Database>& database() const { return db_; }

 private:
  Connection() = default;
  std::shared_ptr<Database> db_;
  duckdb_connection conn_ = nullptr;
};

// An owned appender on a table of a connection. Appends go into the connection's current
// transaction when one is open.
class Appender {
 public:
  static Result<std::unique_ptr<Appender>> Open(Connection& conn, const std::string& table,
                                                const std::string& schema = "main");
  ~Appender();
  Appender(const Appender&) = delete;
  Appender& operator=(const Appender&) = delete;
  duckdb_appender get() const { return app_; }
  // Flushes buffered rows into the table; IOError with DuckDB's message on failure.
  Status Flush();
  // The appender's last error, as a Status (for a failed duckdb_append_* call).
  Status LastError(std::string_view what) const;

 private:
  Appender() = default;
  duckdb_appender app_ = nullptr;
};

// A streaming query result read chunk by chunk (pull): the whole result is never in memory.
// While it is open its connection runs no other statement, and the statement's snapshot
// (its transaction, or the connection's open one) stays open.
class ResultStream {
 public:
  // Starts `sql` on `conn`. DuckDB's message (Error()) when it does not parse, bind or start.
  static Result<std::unique_ptr<ResultStream>> Open(Connection& conn, const std::string& sql);
  ~ResultStream();
  ResultStream(const ResultStream&) = delete;
  ResultStream& operator=(const ResultStream&) = delete;
  // The next chunk (never empty), owned by the stream and valid until the next call or the
  // stream's destruction; nullptr at the end. DuckDB's error when the query fails meanwhile.
  Result<duckdb_data_chunk> Next();

 private:
  ResultStream() = default;
  std::string what_;  // the SQL, for errors
  duckdb_result result_{};
  bool valid_ = false;
  duckdb_data_chunk chunk_ = nullptr;
};

// Runs `sql` on `conn` and hands each result chunk to `on_chunk` as DuckDB produces it
// (streaming: the whole result is never in memory; the chunk is valid during the call only).
// Stops at the first error, DuckDB's or on_chunk's, and returns it.
Status StreamQuery(Connection& conn, const std::string& sql,
                   const std::function<Status(duckdb_data_chunk)>& on_chunk);

// 'it''s' — a SQL string literal.
std::string QuoteLiteral(std::string_view s);
// "my ""table""" — a SQL identifier.
std::string QuoteIdent(std::string_view s);

}  // namespace sluice::duck
