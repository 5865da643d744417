#include "duck/duck.h"

#include "common/thread_priority.h"

namespace sluice::duck {

Status Error(std::string_view what, std::string_view message, duckdb_error_type type) {
  std::string m = "DuckDB error in " + std::string(what) + ": " + std::string(message);
  switch (type) {
    case DUCKDB_ERROR_PARSER:
    case DUCKDB_ERROR_BINDER:
    case DUCKDB_ERROR_CATALOG:
    case DUCKDB_ERROR_CONVERSION:
    case DUCKDB_ERROR_INVALID_INPUT:
    case DUCKDB_ERROR_NOT_IMPLEMENTED:
    case DUCKDB_ERROR_PERMISSION:
    case DUCKDB_ERROR_INVALID_TYPE:
    case DUCKDB_ERROR_SYNTAX:
    case DUCKDB_ERROR_OUT_OF_RANGE:
    case DUCKDB_ERROR_DIVIDE_BY_ZERO:
    case DUCKDB_ERROR_MISMATCH_TYPE:
    case DUCKDB_ERROR_CONSTRAINT:
      return Status::InvalidArgument(std::move(m));
    case DUCKDB_ERROR_INTERRUPT:
      return Status::Unavailable(std::move(m));
    case DUCKDB_ERROR_OUT_OF_MEMORY:
      return Status::ResourceExhausted(std::move(m));
    default:
      return Status::IOError(std::move(m));
  }
}

Result<std::shared_ptr<Database>> Database::Open(
    const std::string& path, const std::vector<std::pair<std::string, std::string>>& config) {
  duckdb_config cfg = nullptr;
  if (duckdb_create_config(&cfg) != DuckDBSuccess) {
    return Status::Internal("duckdb_create_config failed");
  }
  std::unique_ptr<std::remove_pointer_t<duckdb_config>, void (*)(duckdb_config)> guard(
      cfg, [](duckdb_config c) { duckdb_destroy_config(&c); });
  for (const auto& [k, v] : config) {
    if (duckdb_set_config(cfg, k.c_str(), v.c_str()) != DuckDBSuccess) {
      return Status::InvalidArgument("DuckDB rejected setting " + k + " = " + v);
    }
  }
  auto db = std::shared_ptr<Database>(new Database());
  db->path_ = path;
  char* err = nullptr;
  duckdb_state opened = DuckDBError;
  // DuckDB starts its worker threads here: they inherit the background priority.
  RunWithBackgroundPriority([&] {
    opened = duckdb_open_ext(path.empty() ? nullptr : path.c_str(), &db->db_, cfg, &err);
  });
  if (opened != DuckDBSuccess) {
    std::string m = err ? err : "unknown error";
    if (err) duckdb_free(err);
    db->db_ = nullptr;
    return Status::IOError("cannot open DuckDB database " + (path.empty() ? ":memory:" : path) +
                           ": " + m);
  }
  return db;
}

Database::~Database() {
  if (db_) duckdb_close(&db_);
}

QueryResult::QueryResult(QueryResult&& o) noexcept { *this = std::move(o); }

QueryResult& QueryResult::operator=(QueryResult&& o) noexcept {
  if (this != &o) {
    if (valid_) duckdb_destroy_result(&result_);
    result_ = o.result_;
    valid_ = o.valid_;
    o.result_ = {};
    o.valid_ = false;
  }
  return *this;
}

QueryResult::~QueryResult() {
  if (valid_) duckdb_destroy_result(&result_);
}

std::string QueryResult::String(uint64_t col, uint64_t row) {
  if (duckdb_value_is_null(&result_, col, row)) return "";
  char* v = duckdb_value_varchar(&result_, col, row);
  std::string out = v ? v : "";
  if (v) duckdb_free(v);
  return out;
}

Result<std::unique_ptr<Connection>> Connection::Open(std::shared_ptr<Database> db) {
  auto c = std::unique_ptr<Connection>(new Connection());
  if (duckdb_connect(db->get(), &c->conn_) != DuckDBSuccess) {
    return Status::IOError("cannot connect to DuckDB database " + db->path());
  }
  c->db_ = std::move(db);
  return c;
}

Connection::~Connection() {
  if (conn_) duckdb_disconnect(&conn_);
}

Status Connection::Exec(const std::string& sql) {
  auto r = Query(sql);
  return r.status();
}

Result<QueryResult> Connection::Query(const std::string& sql) {
  QueryResult r;
  duckdb_state st = duckdb_query(conn_, sql.c_str(), &r.result_);
  r.valid_ = true;
  if (st != DuckDBSuccess) {
    const char* e = duckdb_result_error(&r.result_);
    return Error(sql.size() > 200 ? sql.substr(0, 200) + "…" : sql, e ? e : "unknown error",
                 duckdb_result_error_type(&r.result_));
  }
  return r;
}

Result<std::unique_ptr<Appender>> Appender::Open(Connection& conn, const std::string& table,
                                                 const std::string& schema) {
  auto a = std::unique_ptr<Appender>(new Appender());
  if (duckdb_appender_create(conn.get(), schema.c_str(), table.c_str(), &a->app_) !=
      DuckDBSuccess) {
    Status st = a->LastError("creating appender for " + table);
    return st;
  }
  return a;
}

Appender::~Appender() {
  if (app_) duckdb_appender_destroy(&app_);
}

Status Appender::Flush() {
  if (duckdb_appender_flush(app_) != DuckDBSuccess) return LastError("appender flush");
  return Status::OK();
}

Status Appender::LastError(std::string_view what) const {
  const char* e = app_ ? duckdb_appender_error(app_) : nullptr;
  return Status::IOError("DuckDB error in " + std::string(what) + ": " +
                         (e ? e : "unknown appender error"));
}

Result<std::unique_ptr<ResultStream>> ResultStream::Open(Connection& conn, const std::string& sql) {
  auto rs = std::unique_ptr<ResultStream>(new ResultStream());
  rs->what_ = sql.size() > 200 ? sql.substr(0, 200) + "…" : sql;
  duckdb_prepared_statement prepared = nullptr;
  if (duckdb_prepare(conn.get(), sql.c_str(), &prepared) != DuckDBSuccess) {
    // The C API has no type for a prepare error; they are the statement's (parser, binder,
    // catalog), so InvalidArgument.
    const char* e = prepared ? duckdb_prepare_error(prepared) : nullptr;
    Status st = Error(rs->what_, e ? e : "prepare failed", DUCKDB_ERROR_INVALID_INPUT);
    duckdb_destroy_prepare(&prepared);
    return st;
  }
  duckdb_pending_result pending = nullptr;
  duckdb_state ps = duckdb_pending_prepared_streaming(prepared, &pending);
  duckdb_destroy_prepare(&prepared);
  if (ps != DuckDBSuccess) {
    const char* e = pending ? duckdb_pending_error(pending) : nullptr;
    Status st = Error(rs->what_, e ? e : "execution failed", DUCKDB_ERROR_INVALID);
    duckdb_destroy_pending(&pending);
    return st;
  }
  duckdb_state es = duckdb_execute_pending(pending, &rs->result_);
  duckdb_destroy_pending(&pending);
  rs->valid_ = true;
  if (es != DuckDBSuccess) {
    const char* e = duckdb_result_error(&rs->result_);
    return Error(rs->what_, e ? e : "unknown error", duckdb_result_error_type(&rs->result_));
  }
  return rs;
}

ResultStream::~ResultStream() {
  if (chunk_) duckdb_destroy_data_chunk(&chunk_);
  if (valid_) duckdb_destroy_result(&result_);
}

Result<duckdb_data_chunk> ResultStream::Next() {
  if (chunk_) duckdb_destroy_data_chunk(&chunk_);
  chunk_ = duckdb_fetch_chunk(result_);
  if (!chunk_) {
    const char* e = duckdb_result_error(&result_);
    if (e) return Error(what_, e, duckdb_result_error_type(&result_));
    return nullptr;
  }
  // An empty chunk also ends the result (DuckDB's own end marker for some results).
  if (duckdb_data_chunk_get_size(chunk_) == 0) {
    duckdb_destroy_data_chunk(&chunk_);
    return nullptr;
  }
  return chunk_;
}

Status StreamQuery(Connection& conn, const std::string& sql,
                   const std::function<Status(duckdb_data_chunk)>& on_chunk) {
  SLUICE_ASSIGN_OR_RETURN(auto stream, ResultStream::Open(conn, sql));
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(duckdb_data_chunk chunk, stream->Next());
    if (!chunk) return Status::OK();
    SLUICE_RETURN_IF_ERROR(on_chunk(chunk));
  }
}

std::string QuoteLiteral(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

std::string QuoteIdent(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace sluice::duck
