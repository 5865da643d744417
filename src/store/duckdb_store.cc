#include "store/duckdb_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <limits>
#include <utility>

#include "common/utf8.h"

namespace sluice::store {
namespace {

constexpr int64_t kMinuteUs = 60'000'000;
constexpr int kSchemaVersion = 1;

// The stored event columns, in DESIGN.md's order. Hot tables, Parquet files and the view all
// have exactly these.
constexpr const char* kEventColumns =
    "event_id, type, event, user_id, anonymous_id, event_time, sent_at, received_at, "
    "properties, traits, context, source";
// The JSON columns are forced to FSST: checkpoints then skip DuckDB's trial of the other
// string compressions (its dictionary analysis hashes every ~1 KB value), which made commits
// ~5% faster for 2 KB events. Values FSST cannot take are stored uncompressed.
constexpr const char* kEventSchema =
    "event_id VARCHAR, type VARCHAR, event VARCHAR, user_id VARCHAR, anonymous_id VARCHAR, "
    "event_time TIMESTAMPTZ, sent_at TIMESTAMPTZ, received_at TIMESTAMPTZ, "
    "properties JSON USING COMPRESSION fsst, traits JSON USING COMPRESSION fsst, "
    "context JSON USING COMPRESSION fsst, source VARCHAR";
// The same columns read from Parquet, cast to the schema (files written by someone else may
// say VARCHAR for JSON) and without the hive partition columns (dt, hour).
constexpr const char* kParquetColumns =
    "CAST(event_id AS VARCHAR) AS event_id, CAST(type AS VARCHAR) AS type, "
    "CAST(event AS VARCHAR) AS event, CAST(user_id AS VARCHAR) AS user_id, "
    "CAST(anonymous_id AS VARCHAR) AS anonymous_id, "
    "CAST(event_time AS TIMESTAMPTZ) AS event_time, CAST(sent_at AS TIMESTAMPTZ) AS sent_at, "
    "CAST(received_at AS TIMESTAMPTZ) AS received_at, CAST(properties AS JSON) AS properties, "
    "CAST(traits AS JSON) AS traits, CAST(context AS JSON) AS context, "
    "CAST(source AS VARCHAR) AS source";
constexpr const char* kEmptyEvents =
    "SELECT CAST(NULL AS VARCHAR) AS event_id, CAST(NULL AS VARCHAR) AS type, "
    "CAST(NULL AS VARCHAR) AS event, CAST(NULL AS VARCHAR) AS user_id, "
    "CAST(NULL AS VARCHAR) AS anonymous_id, CAST(NULL AS TIMESTAMPTZ) AS event_time, "
    "CAST(NULL AS TIMESTAMPTZ) AS sent_at, CAST(NULL AS TIMESTAMPTZ) AS received_at, "
    "CAST(NULL AS JSON) AS properties, CAST(NULL AS JSON) AS traits, "
    "CAST(NULL AS JSON) AS context, CAST(NULL AS VARCHAR) AS source WHERE false";

enum EventColumn : idx_t {
  kEventId,
  kType,
  kEvent,
  kUserId,
  kAnonymousId,
  kEventTime,
  kSentAt,
  kReceivedAt,
  kProperties,
  kTraits,
  kContext,
  kSource,
  kEventColumnCount
};

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

struct UtcParts {
  std::tm tm{};
  int64_t micros = 0;
};

UtcParts ToUtc(int64_t us) {
  UtcParts p;
  int64_t secs = FloorDiv(us, 1'000'000);
  p.micros = us - secs * 1'000'000;
  auto t = static_cast<std::time_t>(secs);
  gmtime_r(&t, &p.tm);
  return p;
}

// TIMESTAMPTZ '2024-05-01 12:00:00.000000+00': exact, and independent of the TimeZone setting.
std::string TimestampLiteral(int64_t us) {
  UtcParts p = ToUtc(us);
  char buf[80];
  std::snprintf(buf, sizeof buf, "TIMESTAMPTZ '%04d-%02d-%02d %02d:%02d:%02d.%06" PRId64 "+00'",
                p.tm.tm_year + 1900, p.tm.tm_mon + 1, p.tm.tm_mday, p.tm.tm_hour, p.tm.tm_min,
                p.tm.tm_sec, p.micros);
  return buf;
}

// Sets row `row` of a VARCHAR/JSON vector: NULL for "", else the text (repaired if it is not
// UTF-8; DuckDB refuses the whole append otherwise).
void SetString(duckdb_vector v, idx_t row, std::string_view s, std::string* scratch) {
  uint64_t* validity = duckdb_vector_get_validity(v);
  if (s.empty()) {
    duckdb_validity_set_row_invalid(validity, row);
    return;
  }
  duckdb_validity_set_row_valid(validity, row);
  if (!IsValidUtf8(s)) {
    RepairUtf8(s, scratch);
    s = *scratch;
  }
  duckdb_vector_assign_string_element_len(v, row, s.data(), s.size());
}

Status AppenderError(duckdb_appender app, std::string_view what) {
  duckdb_error_data err = duckdb_appender_error_data(app);
  std::string m = err ? duckdb_error_data_message(err) : "unknown appender error";
  duckdb_error_type type = err ? duckdb_error_data_error_type(err) : DUCKDB_ERROR_INVALID;
  if (err) duckdb_destroy_error_data(&err);
  return duck::Error(what, m, type);
}

// An appender on any catalog (the C++ adapter only takes a schema; the rollup delta is a TEMP
// table).
struct RawAppender {
  duckdb_appender app = nullptr;
  RawAppender() = default;
  RawAppender(const RawAppender&) = delete;
  RawAppender& operator=(const RawAppender&) = delete;
  ~RawAppender() {
    if (app) duckdb_appender_destroy(&app);
  }
  Status Open(duck::Connection& conn, const char* catalog, const std::string& table) {
    if (duckdb_appender_create_ext(conn.get(), catalog, "main", table.c_str(), &app) !=
        DuckDBSuccess) {
      return AppenderError(app, "creating an appender for " + table);
    }
    return Status::OK();
  }
  Status Close(std::string_view what) {
    if (duckdb_appender_close(app) != DuckDBSuccess) return AppenderError(app, what);
    return Status::OK();
  }
};

Status AppendString(duckdb_appender app, std::string_view s, std::string* scratch) {
  if (s.empty())
    return duckdb_append_null(app) == DuckDBSuccess ? Status::OK() : Status::Internal("append");
  if (!IsValidUtf8(s)) {
    RepairUtf8(s, scratch);
    s = *scratch;
  }
  if (duckdb_append_varchar_length(app, s.data(), s.size()) != DuckDBSuccess) {
    return Status::Internal("duckdb_append_varchar_length failed");
  }
  return Status::OK();
}

}  // namespace

std::string DuckDbStore::WindowTableName(int64_t start_us) {
  UtcParts p = ToUtc(start_us);
  char buf[64];
  std::snprintf(buf, sizeof buf, "events_w_%04d%02d%02dT%02d%02d", p.tm.tm_year + 1900,
                p.tm.tm_mon + 1, p.tm.tm_mday, p.tm.tm_hour, p.tm.tm_min);
  std::string name = buf;
  if (FloorDiv(start_us, kMinuteUs) * kMinuteUs != start_us) {
    std::snprintf(buf, sizeof buf, "%02d", p.tm.tm_sec);
    name += buf;
    if (p.micros != 0) name += std::to_string(p.micros);
  }
  return name + "Z";
}

DuckDbStore::DuckDbStore(const DuckDbStoreOptions& options)
    : options_(options) {}

DuckDbStore::~DuckDbStore() {
  if (chunk_) duckdb_destroy_data_chunk(&chunk_);
}

Result<std::unique_ptr<DuckDbStore>> DuckDbStore::Open(const DuckDbStoreOptions& options) {
  if (options.path.empty()) return Status::InvalidArgument("DuckDbStore: no database path");
  // Production windows are minutes (DESIGN.md: 10m); tests use seconds.
  if (options.window_us < 1'000'000 || options.window_us % 1'000'000 != 0) {
    return Status::InvalidArgument(
        "DuckDbStore: the window must be a whole number of seconds, got " +
        std::to_string(options.window_us) + " us");
  }
  std::vector<std::pair<std::string, std::string>> config;
  if (options.threads > 0) config.emplace_back("threads", std::to_string(options.threads));
  auto store = std::unique_ptr<DuckDbStore>(new DuckDbStore(options));
  SLUICE_ASSIGN_OR_RETURN(store->db_, duck::Database::Open(options.path, config));
  SLUICE_RETURN_IF_ERROR(store->Init().WithContext("opening the hot store " + options.path));
  return store;
}

Status DuckDbStore::Init() {
  std::lock_guard lock(mu_);
  SLUICE_ASSIGN_OR_RETURN(conn_, duck::Connection::Open(db_));
  // Global settings go before the sandbox, which locks the configuration. Every connection
  // made later (the query engine's too) inherits the time zone.
  SLUICE_RETURN_IF_ERROR(
      conn_->Exec("SET GLOBAL TimeZone = 'UTC'; SET GLOBAL checkpoint_threshold = " +
                  duck::QuoteLiteral(options_.checkpoint_threshold)));
  SLUICE_RETURN_IF_ERROR(duck::ApplySandbox(*conn_, options_.sandbox));

  SLUICE_RETURN_IF_ERROR(conn_->Exec(
      "CREATE TABLE IF NOT EXISTS sluice_metadata (key VARCHAR, value BIGINT);"
      "CREATE TABLE IF NOT EXISTS sluice_offsets (shard VARCHAR, end_offset UBIGINT);"
      "CREATE TABLE IF NOT EXISTS sluice_windows (start_us BIGINT, end_us BIGINT, "
      "  table_name VARCHAR, rows UBIGINT, exported BOOLEAN, dropped BOOLEAN, "
      "  in_order BOOLEAN, max_received_us BIGINT);"
      "CREATE TABLE IF NOT EXISTS events_1m (minute TIMESTAMPTZ, type VARCHAR, event VARCHAR, "
      "  count BIGINT);"
      "CREATE TABLE IF NOT EXISTS events_rejected (received_at TIMESTAMPTZ, source VARCHAR, "
      "  error VARCHAR, body VARCHAR);"
      "CREATE TEMP TABLE sluice_rollup_delta (minute TIMESTAMPTZ, type VARCHAR, "
      "  event VARCHAR, count BIGINT);"));

  SLUICE_ASSIGN_OR_RETURN(auto meta, conn_->Query("SELECT key, value FROM sluice_metadata"));
  bool have_version = false, have_max = false;
  for (uint64_t r = 0; r < meta.rows(); ++r) {
    std::string key = meta.String(0, r);
    if (key == "schema_version") {
      have_version = true;
      if (meta.Int64(1, r) > kSchemaVersion) {
        return Status::FailedPrecondition(
            "the hot store was written by a newer Sluice (schema version " +
            std::to_string(meta.Int64(1, r)) + ")");
      }
    } else if (key == "max_received_at_us") {
      have_max = true;
      max_received_at_us_ = meta.Int64(1, r);
    }
  }
  std::string init;
  if (!have_version) {
    init += "INSERT INTO sluice_metadata VALUES ('schema_version', " +
            std::to_string(kSchemaVersion) + ");";
  }
  if (!have_max) init += "INSERT INTO sluice_metadata VALUES ('max_received_at_us', 0);";
  if (!init.empty()) SLUICE_RETURN_IF_ERROR(conn_->Exec(init));

  SLUICE_ASSIGN_OR_RETURN(auto offs, conn_->Query("SELECT shard, end_offset FROM sluice_offsets"));
  for (uint64_t r = 0; r < offs.rows(); ++r) {
    offsets_[offs.String(0, r)] = static_cast<uint64_t>(offs.Int64(1, r));
  }
  SLUICE_ASSIGN_OR_RETURN(auto wins, conn_->Query("SELECT start_us, end_us, table_name, rows, "
                                                  "exported, dropped, in_order, "
                                                  "max_received_us FROM sluice_windows"));
  for (uint64_t r = 0; r < wins.rows(); ++r) {
    if (wins.String(5, r) == "true") {
      dropped_[wins.Int64(0, r)] = wins.Int64(1, r);
      continue;
    }
    Window w;
    w.end_us = wins.Int64(1, r);
    w.table = wins.String(2, r);
    w.rows = static_cast<uint64_t>(wins.Int64(3, r));
    w.in_order = wins.String(6, r) == "true";
    w.max_received_us = wins.Int64(7, r);
    w.exported = wins.String(4, r) == "true";
    windows_[wins.Int64(0, r)] = std::move(w);
  }

  // The view follows the catalog and the files there are now.
  SLUICE_RETURN_IF_ERROR(RefreshViewLocked());

  std::lock_guard export_lock(export_mu_);
  SLUICE_ASSIGN_OR_RETURN(export_conn_, duck::Connection::Open(db_));
  return Status::OK();
}

Status DuckDbStore::Fault(std::string_view step) {
  return options_.fault_injection ? options_.fault_injection(step) : Status::OK();
}

int64_t DuckDbStore::WindowFor(WindowMap& windows, int64_t t, std::vector<int64_t>* revived) const {
  int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  auto next = windows.upper_bound(t);  // first window starting after t
  if (next != windows.begin()) {
    auto prev = std::prev(next);
    if (t < prev->second.end_us) return prev->first;
    lo = prev->second.end_us;
  }
  if (next != windows.end()) hi = next->first;
  auto dnext = dropped_.upper_bound(t);
  if (dnext != dropped_.begin()) {
    auto dprev = std::prev(dnext);
    if (t < dprev->second && windows.find(dprev->first) == windows.end()) {
      Window w;
      w.end_us = dprev->second;
      w.table = WindowTableName(dprev->first);
      windows.emplace(dprev->first, std::move(w));
      revived->push_back(dprev->first);
      return dprev->first;
    }
    lo = std::max(lo, dprev->second);
  }
  if (dnext != dropped_.end()) hi = std::min(hi, dnext->first);
  // A new window. Existing ones keep their bounds (window_us may have changed since they were
  // made), so it is cut to fit between them.
  int64_t start = FloorDiv(t, options_.window_us) * options_.window_us;
  int64_t end = start + options_.window_us;
  start = std::max(start, lo);
  end = std::min(end, hi);
  Window w;
  w.end_us = end;
  w.table = WindowTableName(start);
  windows.emplace(start, std::move(w));
  return start;
}

Status DuckDbStore::CommitBatch(const Batch& batch) {
  auto t0 = std::chrono::steady_clock::now();
  Status st;
  {
    std::lock_guard lock(mu_);
    st = CommitLocked(batch);
  }
  commit_metrics_.Record(batch, t0, st);
  return st;
}

Status DuckDbStore::CommitLocked(const Batch& batch) {
  if (batch.start_offset) {
    auto at = offsets_.find(batch.shard);
    const uint64_t stored = at == offsets_.end() ? 0 : at->second;
    if (stored >= batch.end_offset && batch.end_offset > *batch.start_offset) {
      return Status::OK();  // stored whole already (as PostgresStore answers a retry)
    }
    if (stored != *batch.start_offset) {
      return Status::Aborted("shard " + batch.shard + " is committed up to offset " +
                             std::to_string(stored) + ", not " +
                             std::to_string(*batch.start_offset) +
                             " where this batch starts: another loader moved it");
    }
  }
  // Work on a copy of the catalog (hot windows only: a handful); it replaces windows_ only once
  // COMMIT succeeded.
  WindowMap windows = windows_;
  const WindowMap& before = windows_;
  std::vector<int64_t> revived;
  window_of_event_.resize(batch.events.size());
  std::vector<int64_t> touched;  // window starts in first-seen order
  int64_t cached_start = 0, cached_end = 0;
  bool have_cached = false;
  int64_t max_received = max_received_at_us_;
  for (size_t i = 0; i < batch.events.size(); ++i) {
    int64_t t = batch.events[i].received_at_us;
    max_received = std::max(max_received, t);
    if (!have_cached || t < cached_start || t >= cached_end) {
      cached_start = WindowFor(windows, t, &revived);
      cached_end = windows[cached_start].end_us;
      have_cached = true;
      if (std::find(touched.begin(), touched.end(), cached_start) == touched.end()) {
        touched.push_back(cached_start);
      }
    }
    window_of_event_[i] = cached_start;
  }
  for (const auto& r : batch.rejections) max_received = std::max(max_received, r.received_at_us);

  SLUICE_RETURN_IF_ERROR(conn_->Exec("BEGIN TRANSACTION"));
  auto fail = [&](Status st) {
    Status rb = conn_->Exec("ROLLBACK");
    if (!rb.ok()) spdlog::warn("hot store: ROLLBACK after a failed commit: {}", rb.ToString());
    return st;
  };

  bool view_changed = false;
  std::string catalog_sql;
  bool parquet_checked = false, parquet_exists = false;
  for (int64_t start : touched) {
    Window& w = windows[start];
    const bool was_dropped = std::find(revived.begin(), revived.end(), start) != revived.end();
    const bool is_new = !was_dropped && before.find(start) == before.end();
    if (is_new || was_dropped) {
      Status st =
          conn_->Exec("CREATE TABLE " + duck::QuoteIdent(w.table) + " (" + kEventSchema + ")");
      if (!st.ok()) return fail(st);
    }
    if (was_dropped) {
      // Late rows for a window whose rows now live only in Parquet: bring those back first,
      // so that the window's next export (which rewrites its file) still holds all of them.
      if (!parquet_checked) {
        auto exists = ParquetHistoryExists();
        if (!exists.ok()) return fail(exists.status());
        parquet_exists = *exists;
        parquet_checked = true;
      }
      w.rows = 0;
      w.in_order = false;  // Parquet rows, then late ones: not worth tracking
      if (parquet_exists) {
        auto copied = conn_->Query(
            "INSERT INTO " + duck::QuoteIdent(w.table) + " SELECT " + kParquetColumns +
            " FROM read_parquet(" + duck::QuoteLiteral(options_.parquet_glob) +
            ", hive_partitioning = true) WHERE received_at >= " + TimestampLiteral(start) +
            " AND received_at < " + TimestampLiteral(w.end_us));
        if (!copied.ok()) return fail(copied.status());
        w.rows = static_cast<uint64_t>(copied->Int64(0, 0));
      }
    }
    Status appended = AppendEvents(batch, start, &w);
    if (!appended.ok()) return fail(appended);
    if (is_new || was_dropped || w.exported) view_changed = true;
    w.exported = false;
    if (is_new) {
      catalog_sql += "INSERT INTO sluice_windows VALUES (" + std::to_string(start) + ", " +
                     std::to_string(w.end_us) + ", " + duck::QuoteLiteral(w.table) + ", " +
                     std::to_string(w.rows) + ", false, false, " + (w.in_order ? "true" : "false") +
                     ", " + std::to_string(w.max_received_us) + ");";
    } else {
      catalog_sql +=
          "UPDATE sluice_windows SET rows = " + std::to_string(w.rows) +
          ", exported = false, dropped = false, in_order = " + (w.in_order ? "true" : "false") +
          ", max_received_us = " + std::to_string(w.max_received_us) +
          " WHERE start_us = " + std::to_string(start) + ";";
    }
  }
  if (Status st = Fault("appended"); !st.ok()) return fail(st);

  if (!batch.rejections.empty()) {
    if (Status st = AppendRejections(batch.rejections); !st.ok()) return fail(st);
  }
  if (!batch.rollups.empty()) {
    if (Status st = MergeRollups(batch.rollups); !st.ok()) return fail(st);
  }

  auto off = offsets_.find(batch.shard);
  if (off == offsets_.end()) {
    catalog_sql += "INSERT INTO sluice_offsets VALUES (" + duck::QuoteLiteral(batch.shard) + ", " +
                   std::to_string(batch.end_offset) + ");";
  } else if (off->second != batch.end_offset) {
    catalog_sql += "UPDATE sluice_offsets SET end_offset = " + std::to_string(batch.end_offset) +
                   " WHERE shard = " + duck::QuoteLiteral(batch.shard) + ";";
  }
  if (max_received != max_received_at_us_) {
    catalog_sql += "UPDATE sluice_metadata SET value = " + std::to_string(max_received) +
                   " WHERE key = 'max_received_at_us';";
  }
  if (!catalog_sql.empty()) {
    if (Status st = conn_->Exec(catalog_sql); !st.ok()) return fail(st);
  }
  std::string view_sql;
  if (view_changed) {
    auto view = ReplaceView(windows);
    if (!view.ok()) return fail(view.status());
    view_sql = std::move(view).value();
  }
  if (Status st = Fault("before_commit"); !st.ok()) return fail(st);
  if (Status st = conn_->Exec("COMMIT"); !st.ok()) return fail(st);

  windows_ = std::move(windows);
  for (int64_t start : revived) dropped_.erase(start);
  if (view_changed) view_sql_ = std::move(view_sql);
  offsets_[batch.shard] = batch.end_offset;
  max_received_at_us_ = max_received;
  if (checkpoint_pending_ && conn_->Exec("CHECKPOINT").ok()) checkpoint_pending_ = false;
  return Status::OK();
}

Status DuckDbStore::AppendEvents(const Batch& batch, int64_t start_us, Window* w) {
  const std::string& table = w->table;
  RawAppender app;
  SLUICE_RETURN_IF_ERROR(app.Open(*conn_, nullptr, table));
  if (!chunk_) {
    // Typed from the table: JSON columns get DuckDB's JSON type, so the appender copies the
    // text without a cast (which would parse it).
    std::vector<duckdb_logical_type> types;
    for (idx_t c = 0; c < kEventColumnCount; ++c) {
      types.push_back(duckdb_appender_column_type(app.app, c));
    }
    chunk_ = duckdb_create_data_chunk(types.data(), types.size());
    for (auto& t : types) duckdb_destroy_logical_type(&t);
  }
  const idx_t capacity = duckdb_vector_size();
  duckdb_vector v[kEventColumnCount];
  int64_t* times[3] = {};
  auto start_chunk = [&] {
    duckdb_data_chunk_reset(chunk_);
    for (idx_t c = 0; c < kEventColumnCount; ++c) {
      v[c] = duckdb_data_chunk_get_vector(chunk_, c);
      duckdb_vector_ensure_validity_writable(v[c]);
    }
    times[0] = static_cast<int64_t*>(duckdb_vector_get_data(v[kEventTime]));
    times[1] = static_cast<int64_t*>(duckdb_vector_get_data(v[kSentAt]));
    times[2] = static_cast<int64_t*>(duckdb_vector_get_data(v[kReceivedAt]));
  };
  auto flush_chunk = [&](idx_t n) -> Status {
    duckdb_data_chunk_set_size(chunk_, n);
    if (duckdb_append_data_chunk(app.app, chunk_) != DuckDBSuccess) {
      return AppenderError(app.app, "appending to " + table);
    }
    return Status::OK();
  };
  start_chunk();
  idx_t row = 0;
  for (size_t i = 0; i < batch.events.size(); ++i) {
    if (window_of_event_[i] != start_us) continue;
    const event::Event& e = batch.events[i];
    SetString(v[kEventId], row, e.event_id, &scratch_);
    SetString(v[kType], row, e.type, &scratch_);
    SetString(v[kEvent], row, e.event, &scratch_);
    SetString(v[kUserId], row, e.user_id, &scratch_);
    SetString(v[kAnonymousId], row, e.anonymous_id, &scratch_);
    // TIMESTAMPTZ is microseconds since the epoch, UTC: stored as is, no time zone involved.
    times[0][row] = e.event_time_us;
    duckdb_validity_set_row_valid(duckdb_vector_get_validity(v[kEventTime]), row);
    if (e.sent_at_us) {
      times[1][row] = *e.sent_at_us;
      duckdb_validity_set_row_valid(duckdb_vector_get_validity(v[kSentAt]), row);
    } else {
      duckdb_validity_set_row_invalid(duckdb_vector_get_validity(v[kSentAt]), row);
    }
    times[2][row] = e.received_at_us;
    // Rows go into the table in this order: track whether it is received_at order.
    if (w->rows > 0 && e.received_at_us < w->max_received_us) w->in_order = false;
    if (w->rows == 0 || e.received_at_us > w->max_received_us) {
      w->max_received_us = e.received_at_us;
    }
    ++w->rows;
    duckdb_validity_set_row_valid(duckdb_vector_get_validity(v[kReceivedAt]), row);
    SetString(v[kProperties], row, e.properties, &scratch_);
    SetString(v[kTraits], row, e.traits, &scratch_);
    SetString(v[kContext], row, e.context, &scratch_);
    SetString(v[kSource], row, e.source, &scratch_);
    if (++row == capacity) {
      SLUICE_RETURN_IF_ERROR(flush_chunk(row));
      start_chunk();
      row = 0;
    }
  }
  if (row > 0) SLUICE_RETURN_IF_ERROR(flush_chunk(row));
  return app.Close("appending to " + table);
}

Status DuckDbStore::AppendRejections(const std::vector<event::Rejection>& rejections) {
  RawAppender app;
  SLUICE_RETURN_IF_ERROR(app.Open(*conn_, nullptr, "events_rejected"));
  for (const auto& r : rejections) {
    if (duckdb_append_timestamp(app.app, duckdb_timestamp{r.received_at_us}) != DuckDBSuccess) {
      return AppenderError(app.app, "appending to events_rejected");
    }
    SLUICE_RETURN_IF_ERROR(AppendString(app.app, r.source, &scratch_));
    SLUICE_RETURN_IF_ERROR(AppendString(app.app, r.error, &scratch_));
    SLUICE_RETURN_IF_ERROR(AppendString(app.app, r.body, &scratch_));
    if (duckdb_appender_end_row(app.app) != DuckDBSuccess) {
      return AppenderError(app.app, "appending to events_rejected");
    }
  }
  return app.Close("appending to events_rejected");
}

Status DuckDbStore::MergeRollups(const std::vector<RollupRow>& rollups) {
  SLUICE_RETURN_IF_ERROR(conn_->Exec("DELETE FROM temp.main.sluice_rollup_delta"));
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  {
    RawAppender app;
    SLUICE_RETURN_IF_ERROR(app.Open(*conn_, "temp", "sluice_rollup_delta"));
    for (const auto& r : rollups) {
      lo = std::min(lo, r.minute_us);
      hi = std::max(hi, r.minute_us);
      if (duckdb_append_timestamp(app.app, duckdb_timestamp{r.minute_us}) != DuckDBSuccess) {
        return AppenderError(app.app, "appending rollups");
      }
      SLUICE_RETURN_IF_ERROR(AppendString(app.app, r.type, &scratch_));
      SLUICE_RETURN_IF_ERROR(AppendString(app.app, r.event, &scratch_));
      if (duckdb_append_int64(app.app, r.count) != DuckDBSuccess ||
          duckdb_appender_end_row(app.app) != DuckDBSuccess) {
        return AppenderError(app.app, "appending rollups");
      }
    }
    SLUICE_RETURN_IF_ERROR(app.Close("appending rollups"));
  }
  // events_1m keeps one row per key: add to the keys that exist, insert the others. The
  // minute range lets DuckDB skip old row groups by their min/max.
  const std::string delta =
      "(SELECT minute, type, event, CAST(sum(count) AS BIGINT) AS count "
      "FROM temp.main.sluice_rollup_delta GROUP BY minute, type, event)";
  const std::string same_key =
      "r.minute = d.minute AND r.type = d.type AND r.event IS NOT DISTINCT FROM d.event "
      "AND r.minute >= " +
      TimestampLiteral(lo) + " AND r.minute <= " + TimestampLiteral(hi);
  return conn_->Exec(
      "UPDATE events_1m AS r SET count = r.count + d.count FROM " + delta + " AS d WHERE " +
      same_key + ";" + "INSERT INTO events_1m SELECT d.minute, d.type, d.event, d.count FROM " +
      delta + " AS d WHERE NOT EXISTS (SELECT 1 FROM events_1m AS r WHERE " + same_key + ")");
}

Result<bool> DuckDbStore::ParquetHistoryExists() {
  if (options_.parquet_glob.empty()) return false;
  SLUICE_ASSIGN_OR_RETURN(auto r,
                          conn_->Query("SELECT count(*) FROM (SELECT * FROM glob(" +
                                       duck::QuoteLiteral(options_.parquet_glob) + ") LIMIT 1)"));
  return r.Int64(0, 0) > 0;
}

std::string DuckDbStore::BuildViewSql(const WindowMap& windows, bool with_parquet) const {
  std::vector<std::string> branches;
  // Not-exported windows, merged into runs of adjacent ones: the ranges Parquet must not serve.
  std::vector<std::pair<int64_t, int64_t>> hot_ranges;
  for (const auto& [start, w] : windows) {
    if (w.exported) continue;
    branches.push_back(std::string("SELECT ") + kEventColumns + " FROM main." +
                       duck::QuoteIdent(w.table));
    if (!hot_ranges.empty() && hot_ranges.back().second == start) {
      hot_ranges.back().second = w.end_us;
    } else {
      hot_ranges.emplace_back(start, w.end_us);
    }
  }
  if (with_parquet) {
    std::string b = std::string("SELECT ") + kParquetColumns + " FROM read_parquet(" +
                    duck::QuoteLiteral(options_.parquet_glob) + ", hive_partitioning = true)";
    for (size_t i = 0; i < hot_ranges.size(); ++i) {
      b += i == 0 ? " WHERE " : " AND ";
      b += "(received_at < " + TimestampLiteral(hot_ranges[i].first) +
           " OR received_at >= " + TimestampLiteral(hot_ranges[i].second) + ")";
    }
    branches.push_back(std::move(b));
  }
  if (branches.empty()) branches.emplace_back(kEmptyEvents);
  std::string sql = "CREATE OR REPLACE VIEW main.events AS ";
  for (size_t i = 0; i < branches.size(); ++i) {
    if (i) sql += " UNION ALL ";
    sql += branches[i];
  }
  return sql;
}

Result<std::string> DuckDbStore::ReplaceView(const WindowMap& windows) {
  SLUICE_ASSIGN_OR_RETURN(bool with_parquet, ParquetHistoryExists());
  std::string sql = BuildViewSql(windows, with_parquet);
  SLUICE_RETURN_IF_ERROR(conn_->Exec(sql));
  return sql;
}

Status DuckDbStore::RefreshView() {
  std::lock_guard lock(mu_);
  return RefreshViewLocked();
}

Status DuckDbStore::RefreshViewLocked() {
  SLUICE_RETURN_IF_ERROR(conn_->Exec("BEGIN TRANSACTION"));
  auto view = ReplaceView(windows_);
  Status st = view.ok() ? conn_->Exec("COMMIT") : view.status();
  if (!st.ok()) {
    (void)conn_->Exec("ROLLBACK");
    return st;
  }
  view_sql_ = std::move(view).value();
  return Status::OK();
}

std::string DuckDbStore::ViewSql() {
  std::lock_guard lock(mu_);
  return view_sql_;
}

Result<uint64_t> DuckDbStore::CommittedOffset(const std::string& shard) {
  std::lock_guard lock(mu_);
  auto it = offsets_.find(shard);
  return it == offsets_.end() ? uint64_t{0} : it->second;
}

Result<int64_t> DuckDbStore::MaxReceivedAt() {
  std::lock_guard lock(mu_);
  return max_received_at_us_;
}

Result<std::vector<WindowInfo>> DuckDbStore::Windows() {
  std::lock_guard lock(mu_);
  std::vector<WindowInfo> out;
  for (const auto& [start, w] : windows_) {
    out.push_back(WindowInfo{start, w.end_us, w.rows, w.exported});
  }
  return out;
}

bool DuckDbStore::InSandbox(const std::string& path) const {
  std::error_code ec;
  const std::string p = std::filesystem::weakly_canonical(path, ec).string();
  if (ec) return false;
  for (const auto& dir : options_.sandbox.allowed_directories) {
    std::string d = std::filesystem::weakly_canonical(dir, ec).string();
    if (ec || d.empty()) continue;
    if (d.back() != '/') d += '/';
    if (p.compare(0, d.size(), d) == 0) return true;
  }
  return false;
}

Result<uint64_t> DuckDbStore::ExportWindowToParquet(int64_t start_us, const std::string& path,
                                                    const ParquetOptions& options) {
  // The file is written by the export's own DuckDB, which has no sandbox: the hot database's
  // rule on where files may go is applied here.
  if (!InSandbox(path)) {
    std::string dirs;
    for (const auto& d : options_.sandbox.allowed_directories) {
      dirs += (dirs.empty() ? "" : ", ") + d;
    }
    return Status::InvalidArgument("Permission Error: cannot export to " + path +
                                   ": the hot store writes only under " + dirs);
  }
  std::lock_guard lock(export_mu_);
  if (!writer_) {
    ParquetWriter::Options wo;
    wo.memory_limit = options_.export_memory_limit;
    wo.tmp_dir = options_.export_tmp_dir;
    SLUICE_ASSIGN_OR_RETURN(writer_, ParquetWriter::Open(wo));
  }
  // The window's rows are the first `rows` of its table: tables of windows are append-only,
  // commits append one at a time (mu_), and the catalog's row count and in_order flag are
  // updated in the commit that appends. So the rows with rowid < the count read here are the
  // snapshot of this moment, whatever is committed later and however many statements read
  // them.
  auto cat = export_conn_->Query(
      "SELECT table_name, in_order, rows FROM sluice_windows WHERE start_us = " +
      std::to_string(start_us) + " AND NOT dropped");
  if (!cat.ok()) return cat.status();
  if (cat->rows() == 0) {
    return Status::NotFound("no hot window starts at " + TimestampLiteral(start_us));
  }
  const std::string table = "main." + duck::QuoteIdent(cat->String(0, 0));
  const bool in_order = cat->String(1, 0) == "true";
  const auto total = static_cast<uint64_t>(cat->Int64(2, 0));
  // Rows appended in received_at order stay in that order through a plain scan (DuckDB
  // preserves insertion order), so they are read in slices of rowids, each its own short
  // statement: no snapshot stays open across a whole export (DuckDB does not checkpoint at a
  // commit that updated rows, as the loader's do, while another transaction is open), and the
  // pace's waits fall between slices. Only when commits arrived out of order is the window
  // read in one sorted statement (the sort costs 2-3x the plain export, runs on all of this
  // database's threads and holds the window in memory or spills it), paced only at its end.
  const uint64_t slice =
      in_order ? std::max<uint64_t>(options_.export_slice_rows, 1) : std::max<uint64_t>(total, 1);
  std::unique_ptr<duck::ResultStream> stream;
  uint64_t next = 0;  // the first rowid of the next slice
  uint64_t rows_so_far = 0;
  ParquetOptions unpaced = options;
  unpaced.pace = nullptr;
  // The chunks are handed over without a copy: the writer's vectors share their buffers.
  auto rows = writer_->Write(path, unpaced, [&](duckdb_data_chunk out) -> Status {
    while (true) {
      if (!stream) {
        if (next >= total) {
          duckdb_data_chunk_set_size(out, 0);
          return Status::OK();
        }
        const uint64_t end = std::min(total, next + slice);
        SLUICE_ASSIGN_OR_RETURN(
            stream, duck::ResultStream::Open(
                        *export_conn_, std::string("SELECT ") + kEventColumns + " FROM " +
                                           table + " WHERE rowid >= " + std::to_string(next) +
                                           " AND rowid < " + std::to_string(end) +
                                           (in_order ? "" : " ORDER BY received_at")));
        next = end;
      }
      SLUICE_ASSIGN_OR_RETURN(duckdb_data_chunk in, stream->Next());
      if (in != nullptr) {
        for (idx_t c = 0; c < static_cast<idx_t>(kParquetEventColumns); ++c) {
          duckdb_vector_reference_vector(duckdb_data_chunk_get_vector(out, c),
                                         duckdb_data_chunk_get_vector(in, c));
        }
        const idx_t n = duckdb_data_chunk_get_size(in);
        duckdb_data_chunk_set_size(out, n);
        rows_so_far += n;
        return Status::OK();
      }
      stream.reset();  // the slice's statement ends before the pace waits
      if (options.pace) options.pace(rows_so_far);
    }
  });
  stream.reset();
  if (!rows.ok()) return rows.status();
  if (*rows != total) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    return Status::Internal("window " + TimestampLiteral(start_us) + ": its catalog counts " +
                            std::to_string(total) + " rows but its table gave " +
                            std::to_string(*rows));
  }
  return *rows;
}

Status DuckDbStore::MarkExported(int64_t start_us, uint64_t rows) {
  std::lock_guard lock(mu_);
  auto it = windows_.find(start_us);
  if (it == windows_.end()) {
    return Status::NotFound("no hot window starts at " + TimestampLiteral(start_us));
  }
  if (it->second.exported) return Status::OK();
  if (it->second.rows != rows) {
    return Status::FailedPrecondition(
        "window " + it->second.table + " has " + std::to_string(it->second.rows) +
        " rows but its export has " + std::to_string(rows) + ": export it again");
  }
  SLUICE_ASSIGN_OR_RETURN(bool have_files, ParquetHistoryExists());
  if (!have_files) {
    return Status::FailedPrecondition("cannot mark window " + it->second.table +
                                      " exported: no Parquet file matches " +
                                      options_.parquet_glob);
  }
  WindowMap windows = windows_;
  windows[start_us].exported = true;
  SLUICE_RETURN_IF_ERROR(conn_->Exec("BEGIN TRANSACTION"));
  Status st = conn_->Exec("UPDATE sluice_windows SET exported = true WHERE start_us = " +
                          std::to_string(start_us));
  Result<std::string> view = st.ok() ? ReplaceView(windows) : Result<std::string>(st);
  st = view.ok() ? conn_->Exec("COMMIT") : view.status();
  if (!st.ok()) {
    (void)conn_->Exec("ROLLBACK");
    return st;
  }
  windows_ = std::move(windows);
  view_sql_ = std::move(view).value();
  return Status::OK();
}

Status DuckDbStore::DropWindow(int64_t start_us) {
  std::lock_guard lock(mu_);
  auto it = windows_.find(start_us);
  if (it == windows_.end()) {
    return Status::NotFound("no hot window starts at " + TimestampLiteral(start_us));
  }
  if (!it->second.exported) {
    return Status::FailedPrecondition("window " + it->second.table +
                                      " is not exported; its rows cannot be dropped");
  }
  WindowMap windows = windows_;
  const Window w = windows[start_us];
  windows.erase(start_us);
  SLUICE_RETURN_IF_ERROR(conn_->Exec("BEGIN TRANSACTION"));
  // The view does not read exported tables, but is rebuilt anyway so that it names only tables
  // that exist.
  Status st = conn_->Exec("UPDATE sluice_windows SET dropped = true WHERE start_us = " +
                          std::to_string(start_us));
  Result<std::string> view = st.ok() ? ReplaceView(windows) : Result<std::string>(st);
  st = view.ok() ? conn_->Exec("DROP TABLE main." + duck::QuoteIdent(w.table)) : view.status();
  if (st.ok()) st = conn_->Exec("COMMIT");
  if (!st.ok()) {
    (void)conn_->Exec("ROLLBACK");
    return st;
  }
  windows_ = std::move(windows);
  dropped_[start_us] = w.end_us;
  view_sql_ = std::move(view).value();
  // The dropped table's blocks are free for reuse only after a checkpoint. DuckDB refuses one
  // while another connection has a transaction open (a query, an export); then the next
  // commits retry.
  if (Status ck = conn_->Exec("CHECKPOINT"); !ck.ok()) {
    if (!checkpoint_pending_) {
      spdlog::info(
          "hot store: no CHECKPOINT after dropping {} yet (retried after the next "
          "commits): {}",
          w.table, ck.message());
    }
    checkpoint_pending_ = true;
  } else {
    checkpoint_pending_ = false;
  }
  return Status::OK();
}

Status DuckDbStore::ForEachEventIdSince(int64_t since_us,
                                        const std::function<void(std::string_view)>& fn) {
  SLUICE_ASSIGN_OR_RETURN(auto conn, duck::Connection::Open(db_));
  // One transaction, so the catalog read and the tables it names are one snapshot (a window
  // dropped meanwhile is still there for us).
  SLUICE_RETURN_IF_ERROR(conn->Exec("BEGIN TRANSACTION"));
  auto finish = [&](Status st) {
    (void)conn->Exec(st.ok() ? "COMMIT" : "ROLLBACK");
    return st;
  };
  auto wins = conn->Query(
      "SELECT start_us, end_us, table_name, dropped FROM sluice_windows "
      "WHERE end_us > " +
      std::to_string(since_us) + " ORDER BY start_us");
  if (!wins.ok()) return finish(wins.status());
  const std::string since = TimestampLiteral(since_us);
  std::vector<std::string> branches;
  std::string dropped_ranges;
  for (uint64_t r = 0; r < wins->rows(); ++r) {
    if (wins->String(3, r) == "true") {
      if (!dropped_ranges.empty()) dropped_ranges += " OR ";
      dropped_ranges += "(received_at >= " + TimestampLiteral(wins->Int64(0, r)) +
                        " AND received_at < " + TimestampLiteral(wins->Int64(1, r)) + ")";
    } else {
      branches.push_back("SELECT event_id FROM main." + duck::QuoteIdent(wins->String(2, r)) +
                         " WHERE received_at >= " + since);
    }
  }
  if (!dropped_ranges.empty() && !options_.parquet_glob.empty()) {
    auto files = conn->Query("SELECT count(*) FROM (SELECT * FROM glob(" +
                             duck::QuoteLiteral(options_.parquet_glob) + ") LIMIT 1)");
    if (!files.ok()) return finish(files.status());
    if (files->Int64(0, 0) > 0) {
      branches.push_back("SELECT CAST(event_id AS VARCHAR) FROM read_parquet(" +
                         duck::QuoteLiteral(options_.parquet_glob) +
                         ", hive_partitioning = true) WHERE received_at >= " + since + " AND (" +
                         dropped_ranges + ")");
    }
  }
  if (branches.empty()) return finish(Status::OK());
  std::string sql;
  for (size_t i = 0; i < branches.size(); ++i) sql += (i ? " UNION ALL " : "") + branches[i];

  // Streamed: chunk by chunk, never the whole result in memory.
  Status st = duck::StreamQuery(*conn, sql, [&fn](duckdb_data_chunk chunk) {
    const idx_t n = duckdb_data_chunk_get_size(chunk);
    duckdb_vector v = duckdb_data_chunk_get_vector(chunk, 0);
    auto* data = static_cast<duckdb_string_t*>(duckdb_vector_get_data(v));
    uint64_t* validity = duckdb_vector_get_validity(v);
    for (idx_t i = 0; i < n; ++i) {
      if (validity && !duckdb_validity_row_is_valid(validity, i)) continue;
      fn(std::string_view(duckdb_string_t_data(&data[i]), duckdb_string_t_length(data[i])));
    }
    return Status::OK();
  });
  return finish(st);
}

Result<uint64_t> DuckDbStore::DiskBytes() {
  uint64_t total = 0;
  for (const std::string& p : {options_.path, options_.path + ".wal"}) {
    std::error_code ec;
    auto size = std::filesystem::file_size(p, ec);
    if (ec) {
      if (ec == std::errc::no_such_file_or_directory) continue;
      return Status::IOError("stat " + p + ": " + ec.message());
    }
    total += size;
  }
  return total;
}

}  // namespace sluice::store
