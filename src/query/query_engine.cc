#include "query/query_engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/json_writer.h"
#include "event/parser.h"
#include "query/engine_common.h"
#include "query/result_json.h"
#include "query/time_range.h"

namespace sluice::query {
namespace {

using Steady = std::chrono::steady_clock;

// ---- RAII for DuckDB's C handles ------------------------------------------------------------

struct Extracted {
  duckdb_extracted_statements h = nullptr;
  ~Extracted() { duckdb_destroy_extracted(&h); }
};

struct Prepared {
  duckdb_prepared_statement h = nullptr;
  ~Prepared() { duckdb_destroy_prepare(&h); }
};

struct OwnedResult {
  duckdb_result r{};
  bool valid = false;
  ~OwnedResult() {
    if (valid) duckdb_destroy_result(&r);
  }
};

struct Chunk {
  duckdb_data_chunk h;
  ~Chunk() { duckdb_destroy_data_chunk(&h); }
};

// ---- statement checks ----------------------------------------------------------------------

const char* StatementTypeName(duckdb_statement_type t) {
  switch (t) {
    case DUCKDB_STATEMENT_TYPE_SELECT:
      return "SELECT";
    case DUCKDB_STATEMENT_TYPE_INSERT:
      return "INSERT";
    case DUCKDB_STATEMENT_TYPE_UPDATE:
      return "UPDATE";
    case DUCKDB_STATEMENT_TYPE_EXPLAIN:
      return "EXPLAIN";
    case DUCKDB_STATEMENT_TYPE_DELETE:
      return "DELETE";
    case DUCKDB_STATEMENT_TYPE_PREPARE:
      return "PREPARE";
    case DUCKDB_STATEMENT_TYPE_CREATE:
      return "CREATE";
    case DUCKDB_STATEMENT_TYPE_EXECUTE:
      return "EXECUTE";
    case DUCKDB_STATEMENT_TYPE_ALTER:
      return "ALTER";
    case DUCKDB_STATEMENT_TYPE_TRANSACTION:
      return "a transaction statement";
    case DUCKDB_STATEMENT_TYPE_COPY:
      return "COPY";
    case DUCKDB_STATEMENT_TYPE_ANALYZE:
      return "ANALYZE";
    case DUCKDB_STATEMENT_TYPE_VARIABLE_SET:
      return "SET";
    case DUCKDB_STATEMENT_TYPE_CREATE_FUNC:
      return "CREATE FUNCTION";
    case DUCKDB_STATEMENT_TYPE_DROP:
      return "DROP";
    case DUCKDB_STATEMENT_TYPE_EXPORT:
      return "EXPORT";
    case DUCKDB_STATEMENT_TYPE_PRAGMA:
      return "PRAGMA";
    case DUCKDB_STATEMENT_TYPE_VACUUM:
      return "VACUUM";
    case DUCKDB_STATEMENT_TYPE_CALL:
      return "CALL";
    case DUCKDB_STATEMENT_TYPE_SET:
      return "SET";
    case DUCKDB_STATEMENT_TYPE_LOAD:
      return "LOAD";
    case DUCKDB_STATEMENT_TYPE_ATTACH:
      return "ATTACH";
    case DUCKDB_STATEMENT_TYPE_DETACH:
      return "DETACH";
    case DUCKDB_STATEMENT_TYPE_MULTI:
      return "several statements";
    default:
      return "a statement that is not a SELECT";
  }
}

std::string NameOfRefused(std::string_view sql, duckdb_statement_type type) {
  std::string word = FirstKeyword(sql);
  if (word == "FORCE") return "INSTALL";
  if (IsWriteOrAdminKeyword(word)) return word;
  return StatementTypeName(type);
}

// Errors DuckDB reports with a type (execution).
QueryReply FromDuckError(duckdb_error_type type, const char* message) {
  std::string m = message ? message : "unknown DuckDB error";
  switch (type) {
    case DUCKDB_ERROR_OUT_OF_MEMORY:
      return Reply(QueryOutcome::kOutOfMemory, Status::ResourceExhausted(std::move(m)));
    case DUCKDB_ERROR_INTERRUPT:
      return Reply(QueryOutcome::kError, Status::Unavailable(std::move(m)));
    case DUCKDB_ERROR_INVALID:
    case DUCKDB_ERROR_SERIALIZATION:
    case DUCKDB_ERROR_SCHEDULER:
    case DUCKDB_ERROR_INDEX:
    case DUCKDB_ERROR_STAT:
    case DUCKDB_ERROR_CONNECTION:
    case DUCKDB_ERROR_NETWORK:
    case DUCKDB_ERROR_NULL_POINTER:
    case DUCKDB_ERROR_IO:
    case DUCKDB_ERROR_FATAL:
    case DUCKDB_ERROR_INTERNAL:
    case DUCKDB_ERROR_HTTP:
      return Reply(QueryOutcome::kError, Status::IOError(std::move(m)));
    default:  // parser, binder, catalog, conversion, permission, read-only transaction, …
      return Reply(QueryOutcome::kInvalid, Status::InvalidArgument(std::move(m)));
  }
}

// Errors of duckdb_prepare, which come as text only ("Catalog Error: …"). Binding reads no
// data, so an IO Error here is about the query's own file arguments (no such file): invalid.
QueryReply FromPrepareError(const char* message) {
  std::string m = message ? message : "unknown DuckDB error";
  auto starts = [&](std::string_view p) { return m.compare(0, p.size(), p) == 0; };
  if (starts("Out of Memory Error")) {
    return Reply(QueryOutcome::kOutOfMemory, Status::ResourceExhausted(std::move(m)));
  }
  if (starts("INTERRUPT Error")) return Reply(QueryOutcome::kError, Status::Unavailable(m));
  if (starts("INTERNAL Error") || starts("FATAL Error") || starts("Connection Error")) {
    return Reply(QueryOutcome::kError, Status::Internal(std::move(m)));
  }
  return Reply(QueryOutcome::kInvalid, Status::InvalidArgument(std::move(m)));
}

}  // namespace

QueryEngine::QueryEngine(QueryOptions options, std::shared_ptr<duck::Database> db, Clock* clock)
    : options_(std::move(options)),
      db_(std::move(db)),
      clock_(clock),
      pool_(options_.connections, options_.max_queued) {}

QueryEngine::~QueryEngine() { Stop(); }

Status QueryEngine::Start() {
  if (!workers_.empty()) return Status::OK();
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < pool_.workers(); ++i) {
    auto conn = duck::Connection::Open(db_);
    if (!conn.ok()) return conn.status().WithContext("starting the query engine");
    auto w = std::make_unique<Worker>();
    w->conn = std::move(conn).value();
    workers.push_back(std::move(w));
  }
  workers_ = std::move(workers);
  watchdog_.Start();
  stopping_ = false;
  pool_.Start();
  return Status::OK();
}

void QueryEngine::Stop() {
  if (workers_.empty()) return;
  pool_.Stop([this] {
    stopping_ = true;
    watchdog_.InterruptAll();
  });
  watchdog_.Stop();
  workers_.clear();
}

void QueryEngine::ExecuteAsync(std::string sql, QueryCallback done) {
  pool_.SubmitQuery(
      [this, sql = std::move(sql)](int worker) { return RunQuery(*workers_[worker], sql); },
      std::move(done));
}

void QueryEngine::EndTransaction(Worker& worker) {
  if (worker.conn->Exec("ROLLBACK").ok()) return;
  // The connection is in a state we cannot reason about: replace it.
  auto fresh = duck::Connection::Open(db_);
  if (fresh.ok()) {
    worker.conn = std::move(fresh).value();
  } else {
    spdlog::warn("query worker could not reopen its DuckDB connection: {}",
                 fresh.status().ToString());
  }
}

QueryReply QueryEngine::RunQuery(Worker& worker, const std::string& sql) {
  const auto t0 = Steady::now();
  if (Status st = CheckSqlText(sql, options_.max_sql_bytes); !st.ok()) {
    return Reply(QueryOutcome::kInvalid, std::move(st));
  }
  // History from a bucket: the files of the received_at range the statement can read are made
  // local before it is planned (DuckDB lists the view's files when it plans), and kept until
  // it ends. Before BEGIN, so the transaction sees the view as rebuilt for a first file. The
  // watchdog covers the analysis (a statement on this connection); the fetch has the deadline.
  std::unique_ptr<HistoryLease> history;
  if (history_ != nullptr) {
    const uint64_t analysis = watchdog_.Arm(worker.conn.get(), t0 + options_.timeout);
    QueryReply refused = AcquireHistory(worker, sql, t0, &history);
    const bool timed_out = watchdog_.Disarm(analysis);
    if (refused.outcome != QueryOutcome::kOk) {
      (void)worker.conn->Exec("ROLLBACK");  // an interrupted analysis may leave one open
      if (stopping_) return Reply(QueryOutcome::kBusy, ShuttingDown());
      if (timed_out) return Reply(QueryOutcome::kTimeout, TimedOut(options_.timeout));
      return refused;
    }
  }
  // Layer 3: a read-only transaction around everything that follows.
  if (!worker.conn->Exec("BEGIN TRANSACTION READ ONLY").ok()) {
    EndTransaction(worker);  // a transaction left open: roll it back (or reconnect) and retry
    if (Status st = worker.conn->Exec("BEGIN TRANSACTION READ ONLY"); !st.ok()) {
      return Reply(QueryOutcome::kError, st);
    }
  }
  // Layer 4: the watchdog covers preparing, running, fetching and rendering (armed on the
  // connection EndTransaction may just have replaced).
  const uint64_t ticket = watchdog_.Arm(worker.conn.get(), t0 + options_.timeout);

  QueryReply reply = [&]() -> QueryReply {
    duckdb_connection conn = worker.conn->get();
    // Layer 2: exactly one statement, and a read.
    Extracted extracted;
    idx_t n = duckdb_extract_statements(conn, sql.c_str(), &extracted.h);
    if (n == 0) {
      const char* e = duckdb_extract_statements_error(extracted.h);
      return Reply(QueryOutcome::kInvalid,
                   Status::InvalidArgument(e ? e : "no SQL statement given"));
    }
    if (n > 1) {
      std::string word = FirstKeyword(sql);
      return Reply(QueryOutcome::kInvalid,
                   NotReadOnly(std::to_string(n) + " statements" +
                               (word == "PIVOT" || word == "UNPIVOT"
                                    ? " (a PIVOT without ON … IN (…) runs as two; list the "
                                      "values)"
                                    : "")));
    }
    Prepared prepared;
    if (duckdb_prepare_extracted_statement(conn, extracted.h, 0, &prepared.h) != DuckDBSuccess) {
      std::string word = FirstKeyword(sql);
      if (IsWriteOrAdminKeyword(word)) {
        return Reply(QueryOutcome::kInvalid,
                     NotReadOnly(NameOfRefused(sql, DUCKDB_STATEMENT_TYPE_INVALID)));
      }
      return FromPrepareError(duckdb_prepare_error(prepared.h));
    }
    duckdb_statement_type type = duckdb_prepared_statement_type(prepared.h);
    if (type != DUCKDB_STATEMENT_TYPE_SELECT && type != DUCKDB_STATEMENT_TYPE_EXPLAIN) {
      return Reply(QueryOutcome::kInvalid, NotReadOnly(NameOfRefused(sql, type)));
    }

    OwnedResult result;
    duckdb_state st = duckdb_execute_prepared_streaming(prepared.h, &result.r);
    result.valid = true;
    if (st != DuckDBSuccess) {
      return FromDuckError(duckdb_result_error_type(&result.r), duckdb_result_error(&result.r));
    }
    // Layer 6: stream, and stop at max_rows.
    ResultJsonWriter writer(&result.r);
    while (duckdb_data_chunk raw = duckdb_fetch_chunk(result.r)) {
      Chunk chunk{raw};
      idx_t size = duckdb_data_chunk_get_size(chunk.h);
      if (writer.rows() + size > options_.max_rows) {
        return Reply(QueryOutcome::kTooManyRows, TooManyRows(options_.max_rows));
      }
      if (!writer.AppendChunk(chunk.h, options_.max_result_bytes)) {
        return Reply(QueryOutcome::kTooManyRows, TooManyBytes(options_.max_result_bytes));
      }
    }
    // A streaming result reports an error raised while fetching here.
    if (const char* e = duckdb_result_error(&result.r)) {
      return FromDuckError(duckdb_result_error_type(&result.r), e);
    }
    QueryResultJson out;
    out.row_count = writer.rows();
    out.elapsed_ms = MillisSince(t0);
    out.json = writer.Finish(out.elapsed_ms);
    return Reply(QueryOutcome::kOk, std::move(out));
  }();

  const bool timed_out = watchdog_.Disarm(ticket);
  EndTransaction(worker);
  if (stopping_ && reply.outcome != QueryOutcome::kOk) {
    return Reply(QueryOutcome::kBusy, ShuttingDown());
  }
  if (timed_out && reply.outcome != QueryOutcome::kOk) {
    spdlog::info("query stopped after the {} limit: {:.200}", LimitText(options_.timeout), sql);
    return Reply(QueryOutcome::kTimeout, TimedOut(options_.timeout));
  }
  return reply;
}

QueryReply QueryEngine::AcquireHistory(Worker& worker, const std::string& sql,
                                       Steady::time_point t0,
                                       std::unique_ptr<HistoryLease>* lease) {
  Result<EventsRange> range = EventsRangeOf(*worker.conn, sql);
  if (!range.ok()) return Reply(QueryOutcome::kError, range.status());
  // Also for an empty range: the lease then pins nothing, but keeps files from being removed
  // while the statement plans the view (DuckDB lists every cached file).
  if (!range->reads_events) return Reply(QueryOutcome::kOk, QueryResultJson{});
  auto acquired = history_->Acquire(range->from_us, range->to_us, t0 + options_.timeout);
  if (acquired.ok()) {
    *lease = std::move(acquired).value();
    return Reply(QueryOutcome::kOk, QueryResultJson{});
  }
  Status st = acquired.status();
  switch (st.code()) {
    case StatusCode::kResourceExhausted:
      return Reply(QueryOutcome::kOutOfMemory, std::move(st));
    case StatusCode::kDeadlineExceeded:
      return Reply(QueryOutcome::kTimeout, TimedOut(options_.timeout));
    case StatusCode::kCorruption:
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:  // an entry whose object is gone: not fixed by a retry
    case StatusCode::kPermissionDenied:
      return Reply(QueryOutcome::kError, std::move(st));
    default:  // the object store is unreachable or failing: worth a retry
      return Reply(QueryOutcome::kBusy,
                   st.WithContext("the history this query reads could not be fetched"));
  }
}

// ---- stats ---------------------------------------------------------------------------------

void QueryEngine::StatsAsync(StatsRequest request, StatsCallback done) {
  SubmitStats(
      pool_,
      [this, request = std::move(request)](int worker) {
        return RunStats(*workers_[worker], request);
      },
      std::move(done));
}

Result<std::string> QueryEngine::RunStats(Worker& worker, const StatsRequest& request) {
  const auto t0 = Steady::now();
  SLUICE_ASSIGN_OR_RETURN(const StatsPlan plan, PlanStats(request, clock_->NowMicros()));

  // Integer bucketing in SQL: independent of the session time zone.
  static constexpr const char* kSql =
      "SELECT epoch_us(minute) - ((epoch_us(minute) % $1) + $1) % $1 AS bucket, "
      "coalesce(event, '') AS event, sum(count)::BIGINT AS n FROM events_1m "
      "WHERE minute >= $2 AND minute < $3 AND ($4::VARCHAR IS NULL OR event = $4) "
      "GROUP BY ALL ORDER BY bucket, event";
  if (Status st = worker.conn->Exec("BEGIN TRANSACTION READ ONLY"); !st.ok()) {
    EndTransaction(worker);
    SLUICE_RETURN_IF_ERROR(worker.conn->Exec("BEGIN TRANSACTION READ ONLY"));
  }
  const uint64_t ticket = watchdog_.Arm(worker.conn.get(), t0 + options_.timeout);
  Result<std::string> out = [&]() -> Result<std::string> {
    duckdb_connection conn = worker.conn->get();
    Prepared prepared;
    if (duckdb_prepare(conn, kSql, &prepared.h) != DuckDBSuccess) {
      return Status::Internal(std::string("preparing the stats query: ") +
                              duckdb_prepare_error(prepared.h));
    }
    std::string event_filter = plan.event.value_or("");
    bool bound =
        duckdb_bind_int64(prepared.h, 1, plan.step_us) == DuckDBSuccess &&
        duckdb_bind_timestamp_tz(prepared.h, 2, duckdb_timestamp{plan.from_us}) == DuckDBSuccess &&
        duckdb_bind_timestamp_tz(prepared.h, 3, duckdb_timestamp{plan.to_us}) == DuckDBSuccess &&
        (plan.event ? duckdb_bind_varchar(prepared.h, 4, event_filter.c_str())
                    : duckdb_bind_null(prepared.h, 4)) == DuckDBSuccess;
    if (!bound) return Status::Internal("binding the stats query's parameters failed");
    OwnedResult result;
    duckdb_state st = duckdb_execute_prepared_streaming(prepared.h, &result.r);
    result.valid = true;
    if (st != DuckDBSuccess) {
      return FromDuckError(duckdb_result_error_type(&result.r), duckdb_result_error(&result.r))
          .result.status();
    }
    StatsJson json(plan, options_.max_rows);
    while (duckdb_data_chunk raw = duckdb_fetch_chunk(result.r)) {
      Chunk chunk{raw};
      idx_t size = duckdb_data_chunk_get_size(chunk.h);
      auto* bucket =
          static_cast<int64_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk.h, 0)));
      duckdb_vector events = duckdb_data_chunk_get_vector(chunk.h, 1);
      auto* names = static_cast<duckdb_string_t*>(duckdb_vector_get_data(events));
      auto* counts =
          static_cast<int64_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk.h, 2)));
      for (idx_t r = 0; r < size; ++r) {
        SLUICE_RETURN_IF_ERROR(json.Add(
            bucket[r],
            std::string_view(duckdb_string_t_data(&names[r]), duckdb_string_t_length(names[r])),
            counts[r]));
      }
    }
    if (const char* e = duckdb_result_error(&result.r)) {
      return FromDuckError(duckdb_result_error_type(&result.r), e).result.status();
    }
    return json.Finish();
  }();
  const bool timed_out = watchdog_.Disarm(ticket);
  EndTransaction(worker);
  if (stopping_ && !out.ok()) return StatsShuttingDown();
  if (timed_out && !out.ok()) return StatsTimedOut(options_.timeout);
  return out;
}

}  // namespace sluice::query
