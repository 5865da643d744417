#include "query/query_engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <future>
#include <set>

#include "common/json_writer.h"
#include "common/metrics.h"
#include "event/parser.h"
#include "query/result_json.h"

namespace sluice::query {
namespace {

using Steady = std::chrono::steady_clock;

constexpr int64_t kMicrosPerMinute = 60'000'000;
constexpr int64_t kMicrosPerHour = 60 * kMicrosPerMinute;
constexpr int64_t kMicrosPerDay = 24 * kMicrosPerHour;
constexpr int64_t kMaxStatsBuckets = 10'080;  // a week of minutes

struct QueryMetrics {
  static metrics::Counter& Outcome(QueryOutcome o) {
    return metrics::Default().GetCounter("sluice_queries_total",
                                         "SQL queries (POST /v1/query, sluice query) by outcome",
                                         {{"outcome", std::string(OutcomeName(o))}});
  }
  metrics::Histogram& seconds = metrics::Default().GetHistogram(
      "sluice_query_seconds", "Time to run a SQL query and render its result", {},
      {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300});
  metrics::Gauge& running = metrics::Default().GetGauge(
      "sluice_queries_running", "SQL queries and stats requests running now");
  metrics::Gauge& queued = metrics::Default().GetGauge(
      "sluice_queries_queued", "SQL queries and stats requests waiting for a query worker");
  std::array<metrics::Counter*, 7> outcomes = {
      &Outcome(QueryOutcome::kOk),          &Outcome(QueryOutcome::kInvalid),
      &Outcome(QueryOutcome::kTimeout),     &Outcome(QueryOutcome::kTooManyRows),
      &Outcome(QueryOutcome::kOutOfMemory), &Outcome(QueryOutcome::kBusy),
      &Outcome(QueryOutcome::kError)};
  void Count(QueryOutcome o) { outcomes[static_cast<size_t>(o)]->Inc(); }
};

QueryMetrics& Metrics() {
  static QueryMetrics* m = new QueryMetrics();
  return *m;
}

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

// The first keyword of `sql`, upper-cased, skipping blanks, comments and opening parentheses.
std::string FirstKeyword(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size()) {
    char c = sql[i];
    if (std::isspace(static_cast<unsigned char>(c)) || c == '(') {
      ++i;
    } else if (sql.substr(i, 2) == "--") {
      size_t nl = sql.find('\n', i);
      i = nl == std::string_view::npos ? sql.size() : nl + 1;
    } else if (sql.substr(i, 2) == "/*") {
      size_t end = sql.find("*/", i + 2);
      i = end == std::string_view::npos ? sql.size() : end + 2;
    } else {
      break;
    }
  }
  std::string word;
  while (i < sql.size() && (std::isalpha(static_cast<unsigned char>(sql[i])) || sql[i] == '_')) {
    word += static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i])));
    ++i;
  }
  return word;
}

// Keywords that start a statement other than a read. Used to name what was refused, and to
// refuse such a statement even when DuckDB could not prepare it (COPY to a forbidden file).
bool IsWriteOrAdminKeyword(const std::string& word) {
  static const std::set<std::string> kWords = {
      "INSERT",     "UPDATE", "DELETE",   "CREATE",     "DROP",    "ALTER",   "COPY",
      "ATTACH",     "DETACH", "INSTALL",  "LOAD",       "FORCE",   "SET",     "RESET",
      "CALL",       "EXPORT", "IMPORT",   "CHECKPOINT", "VACUUM",  "ANALYZE", "BEGIN",
      "START",      "COMMIT", "END",      "ROLLBACK",   "ABORT",   "PREPARE", "EXECUTE",
      "DEALLOCATE", "USE",    "TRUNCATE", "MERGE",      "COMMENT", "UPSERT"};
  return kWords.count(word) != 0;
}

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

Status NotReadOnly(const std::string& what) {
  return Status::InvalidArgument("only a single read-only SELECT is allowed; got " + what);
}

std::string NameOfRefused(std::string_view sql, duckdb_statement_type type) {
  std::string word = FirstKeyword(sql);
  if (word == "FORCE") return "INSTALL";
  if (IsWriteOrAdminKeyword(word)) return word;
  return StatementTypeName(type);
}

QueryReply Reply(QueryOutcome outcome, Result<QueryResultJson> result) {
  return {outcome, std::move(result)};
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

// "30 s", "300 ms".
std::string LimitText(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

// "256 MiB", "10000 bytes".
std::string BytesText(size_t n) {
  if (n >= (size_t{1} << 20) && n % (size_t{1} << 20) == 0) {
    return std::to_string(n >> 20) + " MiB";
  }
  return std::to_string(n) + " bytes";
}

double MillisSince(Steady::time_point t0) {
  return std::chrono::duration<double, std::milli>(Steady::now() - t0).count();
}

Result<int64_t> IntervalMicros(const std::string& interval) {
  if (interval == "1m") return kMicrosPerMinute;
  if (interval == "1h") return kMicrosPerHour;
  if (interval == "1d") return kMicrosPerDay;
  return Status::InvalidArgument("interval \"" + interval + "\" is not one of 1m, 1h, 1d");
}

}  // namespace

std::string_view OutcomeName(QueryOutcome outcome) {
  switch (outcome) {
    case QueryOutcome::kOk:
      return "ok";
    case QueryOutcome::kInvalid:
      return "invalid";
    case QueryOutcome::kTimeout:
      return "timeout";
    case QueryOutcome::kTooManyRows:
      return "too_many_rows";
    case QueryOutcome::kOutOfMemory:
      return "out_of_memory";
    case QueryOutcome::kBusy:
      return "busy";
    case QueryOutcome::kError:
      return "error";
  }
  return "error";
}

int HttpStatusFor(QueryOutcome outcome) {
  switch (outcome) {
    case QueryOutcome::kOk:
      return 200;
    case QueryOutcome::kInvalid:
      return 400;
    case QueryOutcome::kTimeout:
      return 504;
    case QueryOutcome::kTooManyRows:
    case QueryOutcome::kOutOfMemory:
      return 413;
    case QueryOutcome::kBusy:
      return 503;
    case QueryOutcome::kError:
      return 500;
  }
  return 500;
}

QueryEngine::QueryEngine(QueryOptions options, std::shared_ptr<duck::Database> db, Clock* clock)
    : options_(std::move(options)), db_(std::move(db)), clock_(clock) {
  Metrics();  // register the metric families, so /metrics shows them from the start
}

QueryEngine::~QueryEngine() { Stop(); }

Status QueryEngine::Start() {
  std::lock_guard lock(mu_);
  if (running_) return Status::OK();
  SLUICE_CHECK(options_.connections > 0);
  workers_.clear();
  for (int i = 0; i < options_.connections; ++i) {
    auto conn = duck::Connection::Open(db_);
    if (!conn.ok()) {
      workers_.clear();
      return conn.status().WithContext("starting the query engine");
    }
    auto w = std::make_unique<Worker>();
    w->conn = std::move(conn).value();
    workers_.push_back(std::move(w));
  }
  watchdog_.Start();
  stopping_ = false;
  running_ = true;
  for (auto& w : workers_) {
    Worker* worker = w.get();
    w->thread = std::jthread([this, worker](std::stop_token stop) { RunWorker(*worker, stop); });
  }
  return Status::OK();
}

void QueryEngine::Stop() {
  std::deque<Task> abandoned;
  {
    std::lock_guard lock(mu_);
    if (!running_) return;
    running_ = false;
    abandoned.swap(queue_);
    for (auto& w : workers_) w->thread.request_stop();
  }
  Metrics().queued.Add(-static_cast<int64_t>(abandoned.size()));
  stopping_ = true;
  watchdog_.InterruptAll();
  cv_.notify_all();
  for (auto& w : workers_) w->thread.join();
  watchdog_.Stop();
  for (auto& t : abandoned) t(nullptr);
  workers_.clear();
}

Status QueryEngine::Enqueue(Task task) {
  {
    std::lock_guard lock(mu_);
    if (!running_) return Status::Unavailable("the query engine is not running");
    if (queue_.size() >= static_cast<size_t>(std::max(0, options_.max_queued))) {
      return Status::Unavailable(
          "all " + std::to_string(options_.connections) + " query workers are busy and " +
          std::to_string(options_.max_queued) + " queries are waiting; retry shortly");
    }
    queue_.push_back(std::move(task));
  }
  Metrics().queued.Add(1);
  cv_.notify_one();
  return Status::OK();
}

void QueryEngine::RunWorker(Worker& worker, std::stop_token stop) {
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, stop, [&] { return !queue_.empty(); });
      if (queue_.empty()) return;  // stop requested
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    auto& m = Metrics();
    m.queued.Add(-1);
    m.running.Add(1);
    task(stop.stop_requested() ? nullptr : &worker);
    m.running.Add(-1);
  }
}

void QueryEngine::ExecuteAsync(std::string sql, QueryCallback done) {
  auto shared_done = std::make_shared<QueryCallback>(std::move(done));
  auto task = [this, sql = std::move(sql), shared_done](Worker* worker) {
    auto& m = Metrics();
    if (worker == nullptr) {
      m.Count(QueryOutcome::kBusy);
      return (*shared_done)(
          Reply(QueryOutcome::kBusy, Status::Unavailable("the query engine is shutting down")));
    }
    auto t0 = Steady::now();
    QueryReply reply = RunQuery(*worker, sql);
    m.seconds.Observe(std::chrono::duration<double>(Steady::now() - t0).count());
    m.Count(reply.outcome);
    (*shared_done)(std::move(reply));
  };
  if (Status st = Enqueue(std::move(task)); !st.ok()) {
    Metrics().Count(QueryOutcome::kBusy);
    (*shared_done)(Reply(QueryOutcome::kBusy, std::move(st)));
  }
}

Result<QueryResultJson> QueryEngine::Execute(const std::string& sql) {
  std::promise<QueryReply> promise;
  auto future = promise.get_future();
  ExecuteAsync(sql, [&promise](QueryReply r) { promise.set_value(std::move(r)); });
  return future.get().result;
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
  if (sql.size() > options_.max_sql_bytes) {
    return Reply(QueryOutcome::kInvalid,
                 Status::InvalidArgument("the SQL is " + std::to_string(sql.size()) +
                                         " bytes, more than the limit of " +
                                         std::to_string(options_.max_sql_bytes) + " bytes"));
  }
  if (sql.find('\0') != std::string::npos) {
    return Reply(QueryOutcome::kInvalid, Status::InvalidArgument("the SQL contains a NUL byte"));
  }
  // Layer 3: a read-only transaction around everything that follows.
  if (!worker.conn->Exec("BEGIN TRANSACTION READ ONLY").ok()) {
    EndTransaction(worker);  // a transaction left open: roll it back (or reconnect) and retry
    if (Status st = worker.conn->Exec("BEGIN TRANSACTION READ ONLY"); !st.ok()) {
      return Reply(QueryOutcome::kError, st);
    }
  }
  // Layer 4: the watchdog covers preparing, running, fetching and rendering.
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
        return Reply(QueryOutcome::kTooManyRows,
                     Status::InvalidArgument("the result has more than " +
                                             std::to_string(options_.max_rows) +
                                             " rows (--query-max-rows); add a LIMIT or "
                                             "aggregate"));
      }
      if (!writer.AppendChunk(chunk.h, options_.max_result_bytes)) {
        return Reply(
            QueryOutcome::kTooManyRows,
            Status::InvalidArgument("the result is larger than the limit of " +
                                    BytesText(options_.max_result_bytes) +
                                    " of JSON; select fewer rows or columns, or aggregate"));
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
    return Reply(QueryOutcome::kBusy, Status::Unavailable("the query was interrupted because "
                                                          "the query engine is shutting down"));
  }
  if (timed_out && reply.outcome != QueryOutcome::kOk) {
    spdlog::info("query stopped after the {} limit: {:.200}", LimitText(options_.timeout), sql);
    return Reply(
        QueryOutcome::kTimeout,
        Status::DeadlineExceeded("query ran longer than the " + LimitText(options_.timeout) +
                                 " limit (--query-timeout) and was stopped"));
  }
  return reply;
}

// ---- stats ---------------------------------------------------------------------------------

void QueryEngine::StatsAsync(StatsRequest request, StatsCallback done) {
  auto shared_done = std::make_shared<StatsCallback>(std::move(done));
  auto task = [this, request = std::move(request), shared_done](Worker* worker) {
    if (worker == nullptr) {
      return (*shared_done)(Status::Unavailable("the query engine is shutting down"));
    }
    (*shared_done)(RunStats(*worker, request));
  };
  if (Status st = Enqueue(std::move(task)); !st.ok()) (*shared_done)(std::move(st));
}

Result<std::string> QueryEngine::Stats(const StatsRequest& request) {
  std::promise<Result<std::string>> promise;
  auto future = promise.get_future();
  StatsAsync(request, [&promise](Result<std::string> r) { promise.set_value(std::move(r)); });
  return future.get();
}

Result<std::string> QueryEngine::RunStats(Worker& worker, const StatsRequest& request) {
  const auto t0 = Steady::now();
  const int64_t to = request.to_us.value_or(clock_->NowMicros());
  const int64_t from = request.from_us.value_or(to - kMicrosPerHour);
  if (from >= to) {
    return Status::InvalidArgument("from (" + event::FormatTimestamp(from) +
                                   ") must be before to (" + event::FormatTimestamp(to) + ")");
  }
  std::string interval = request.interval;
  if (interval.empty()) {
    int64_t span = to - from;
    interval = span <= 6 * kMicrosPerHour ? "1m" : span <= 14 * kMicrosPerDay ? "1h" : "1d";
  }
  SLUICE_ASSIGN_OR_RETURN(int64_t step, IntervalMicros(interval));
  // Work in floor-aligned buckets: the first holds `from`, the last holds `to - 1`.
  auto floor_to = [step](int64_t t) { return t - (((t % step) + step) % step); };
  int64_t buckets = (floor_to(to - 1) - floor_to(from)) / step + 1;
  if (buckets > kMaxStatsBuckets) {
    return Status::InvalidArgument("from..to spans " + std::to_string(buckets) + " buckets of " +
                                   interval + ", more than " + std::to_string(kMaxStatsBuckets) +
                                   "; use a larger interval or a shorter range");
  }

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
    std::string event_filter = request.event.value_or("");
    bool bound = duckdb_bind_int64(prepared.h, 1, step) == DuckDBSuccess &&
                 duckdb_bind_timestamp_tz(prepared.h, 2, duckdb_timestamp{from}) == DuckDBSuccess &&
                 duckdb_bind_timestamp_tz(prepared.h, 3, duckdb_timestamp{to}) == DuckDBSuccess &&
                 (request.event ? duckdb_bind_varchar(prepared.h, 4, event_filter.c_str())
                                : duckdb_bind_null(prepared.h, 4)) == DuckDBSuccess;
    if (!bound) return Status::Internal("binding the stats query's parameters failed");
    OwnedResult result;
    duckdb_state st = duckdb_execute_prepared_streaming(prepared.h, &result.r);
    result.valid = true;
    if (st != DuckDBSuccess) {
      return FromDuckError(duckdb_result_error_type(&result.r), duckdb_result_error(&result.r))
          .result.status();
    }
    JsonWriter w;
    w.BeginObject().Key("interval").String(interval);
    w.Key("from").String(event::FormatTimestamp(from));
    w.Key("to").String(event::FormatTimestamp(to));
    w.Key("series").BeginArray();
    int64_t total = 0;
    uint64_t rows = 0;
    while (duckdb_data_chunk raw = duckdb_fetch_chunk(result.r)) {
      Chunk chunk{raw};
      idx_t size = duckdb_data_chunk_get_size(chunk.h);
      rows += size;
      if (rows > options_.max_rows) {
        return Status::InvalidArgument("the stats have more than " +
                                       std::to_string(options_.max_rows) +
                                       " points; filter by event or use a larger interval");
      }
      auto* bucket =
          static_cast<int64_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk.h, 0)));
      duckdb_vector events = duckdb_data_chunk_get_vector(chunk.h, 1);
      auto* names = static_cast<duckdb_string_t*>(duckdb_vector_get_data(events));
      auto* counts =
          static_cast<int64_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk.h, 2)));
      for (idx_t r = 0; r < size; ++r) {
        w.BeginObject().Key("t").String(event::FormatTimestamp(bucket[r]));
        w.Key("event").String(
            std::string_view(duckdb_string_t_data(&names[r]), duckdb_string_t_length(names[r])));
        w.Key("count").Int(counts[r]).EndObject();
        total += counts[r];
      }
    }
    if (const char* e = duckdb_result_error(&result.r)) {
      return FromDuckError(duckdb_result_error_type(&result.r), e).result.status();
    }
    w.EndArray().Key("total").Int(total).EndObject();
    return w.Take();
  }();
  const bool timed_out = watchdog_.Disarm(ticket);
  EndTransaction(worker);
  if (stopping_ && !out.ok()) return Status::Unavailable("the query engine is shutting down");
  if (timed_out && !out.ok()) {
    return Status::DeadlineExceeded("the stats query ran longer than the " +
                                    LimitText(options_.timeout) +
                                    " limit (--query-timeout) and was stopped");
  }
  return out;
}

}  // namespace sluice::query
