#include "store/postgres_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <thread>
#include <utility>

#include "common/utf8.h"
#include "event/parser.h"
#include "pg/copy.h"

namespace sluice::store {
namespace {

// The stored event columns, in DESIGN.md's order: `events`, the COPY into it, the export.
constexpr const char* kEventColumns =
    "event_id, type, event, user_id, anonymous_id, event_time, sent_at, received_at, "
    "properties, traits, context, source";
constexpr int16_t kEventColumnCount = 12;

// Schema migrations, applied in order, each once (sluice_schema_migrations). Never edit one
// that has shipped: add the next.
//
// properties/traits/context are `json` with lz4 TOAST compression. Measured with
// bench/postgres_store.sh (binary COPY of 300,000 ~2 KB web-shop events, 20,000 per
// transaction, one connection, PostgreSQL on the same shared 2-core machine; medians of 3
// interleaved rounds): json 54,700 events/s, jsonb 36,800 (-33%: the server parses every
// document into its binary form), text 78,600 (+44%: no validation at all); tables 612 MB
// (json, text) and 621 MB (jsonb) for 587 MB of events. json keeps the text exactly as sent,
// key order and duplicates included, which the Parquet export must reproduce (jsonb
// normalises both), and accepts \u0000, which jsonb refuses (the whole batch would fail).
// Over text it keeps the column's type, so engine=postgres queries use -> and ->> directly
// (reparsing the text each time: slower than jsonb's lookups, the price of the write path).
// lz4 hardly matters here: PostgreSQL compresses a row's values only once the row passes
// toast_tuple_target (2032 bytes), which most 2 KB events do not; forcing it (128) saved 4%
// of space and cost 0-28% of throughput, so the default stays.
struct Migration {
  int version;
  const char* name;
  const char* sql;
};
constexpr Migration kMigrations[] = {
    {1, "events (partitioned), rollups, quarantine, catalog",
     R"sql(
CREATE TABLE events (
  event_id text, type text, event text, user_id text, anonymous_id text,
  event_time timestamptz, sent_at timestamptz, received_at timestamptz NOT NULL,
  properties json COMPRESSION lz4, traits json COMPRESSION lz4, context json COMPRESSION lz4,
  source text
) PARTITION BY RANGE (received_at);
CREATE INDEX events_received_at_idx ON events (received_at);
CREATE TABLE events_rejected (
  received_at timestamptz NOT NULL, source text, error text, body text COMPRESSION lz4);
CREATE TABLE events_1m (
  minute timestamptz NOT NULL, type text, event text, count bigint NOT NULL,
  CONSTRAINT events_1m_key UNIQUE NULLS NOT DISTINCT (minute, type, event));
CREATE TABLE sluice_offsets (
  shard text PRIMARY KEY, end_offset bigint NOT NULL, max_received_us bigint NOT NULL);
CREATE TABLE sluice_windows (
  start_us bigint PRIMARY KEY, end_us bigint NOT NULL,
  exported boolean NOT NULL DEFAULT false,
  dropped boolean NOT NULL DEFAULT false,
  purged boolean NOT NULL DEFAULT false);
CREATE TABLE sluice_window_rows (
  start_us bigint NOT NULL, shard text NOT NULL, rows bigint NOT NULL,
  PRIMARY KEY (start_us, shard));
CREATE TABLE sluice_partitions (
  start_us bigint PRIMARY KEY, end_us bigint NOT NULL, name text NOT NULL UNIQUE);
)sql"},
};
// Any constant: the advisory lock that serialises concurrent migrators.
constexpr const char* kMigrationLock = "7406613855239410689";

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// '2024-05-01T12:00:00.123456Z'::timestamptz — exact, whatever the session's TimeZone.
std::string PgTime(int64_t us) { return "'" + event::FormatTimestamp(us) + "'::timestamptz"; }
// CAST('2024-05-01T12:00:00Z' AS TIMESTAMPTZ) for DuckDB.
std::string DuckTime(int64_t us) {
  return "CAST('" + event::FormatTimestamp(us) + "' AS TIMESTAMPTZ)";
}

std::string Int64Array(const std::vector<int64_t>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(v[i]);
  }
  return s + "}";
}

// Text PostgreSQL accepts: UTF-8 without NUL bytes (bad bytes become U+FFFD).
std::string_view Sanitized(std::string_view s, std::string* scratch) {
  if (IsValidUtf8(s) && std::memchr(s.data(), '\0', s.size()) == nullptr) return s;
  RepairUtf8(s, scratch, /*replace_nul=*/true);
  return *scratch;
}

// A text[] literal: {"a","b \"c\"",NULL}; "" is NULL (the stored rows' rule).
std::string TextArray(const std::vector<std::string_view>& v, std::string* scratch) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    if (v[i].empty()) {
      s += "NULL";
      continue;
    }
    s += '"';
    for (char c : Sanitized(v[i], scratch)) {
      if (c == '"' || c == '\\') s += '\\';
      s += c;
    }
    s += '"';
  }
  return s + "}";
}

void AddTextOrNull(pg::CopyEncoder& enc, std::string_view s, std::string* scratch) {
  if (s.empty()) {
    enc.AddNull();
  } else {
    enc.AddText(Sanitized(s, scratch));
  }
}

// A VARCHAR/JSON cell of a DuckDB vector ("" for NULL: the stored rows' rule).
std::string_view DuckString(duckdb_vector v, idx_t row) {
  uint64_t* validity = duckdb_vector_get_validity(v);
  if (validity != nullptr && !duckdb_validity_row_is_valid(validity, row)) return {};
  auto* data = static_cast<duckdb_string_t*>(duckdb_vector_get_data(v));
  return {duckdb_string_t_data(&data[row]), duckdb_string_t_length(data[row])};
}

// Rolls back the transaction `conn` is in (if it still can) and returns `st`.
Status Rollback(pg::Connection& conn, Status st) {
  if (conn.ok() && conn.InTransaction()) {
    if (Status rb = conn.Exec("ROLLBACK"); !rb.ok()) {
      spdlog::warn("hot store: ROLLBACK after a failed PostgreSQL command: {}", rb.ToString());
    }
  }
  return st;
}

Status MigrateOn(pg::Connection& conn, int* applied) {
  *applied = 0;
  auto version = conn.Query("SHOW server_version_num");
  if (!version.ok()) return version.status();
  SLUICE_ASSIGN_OR_RETURN(int64_t num, version->Int64(0, 0));
  if (num < 150000) {
    return Status::FailedPrecondition(
        "the PostgreSQL hot store needs PostgreSQL 15 or later; the server is version " +
        std::string(version->Text(0, 0)));
  }
  for (const Migration& m : kMigrations) {
    SLUICE_RETURN_IF_ERROR(conn.Exec("BEGIN"));
    Status st = conn.Exec(std::string("SELECT pg_advisory_xact_lock(") + kMigrationLock +
                          "); CREATE TABLE IF NOT EXISTS sluice_schema_migrations ("
                          "version int PRIMARY KEY, name text NOT NULL, "
                          "applied_at timestamptz NOT NULL DEFAULT now())");
    if (!st.ok()) return Rollback(conn, st);
    auto done = conn.Query("SELECT max(version), bool_or(version = $1) FROM "
                           "sluice_schema_migrations",
                           {std::to_string(m.version)});
    if (!done.ok()) return Rollback(conn, done.status());
    auto newest = done->Int64(0, 0);
    if (!newest.ok()) return Rollback(conn, newest.status());
    const int known = std::end(kMigrations)[-1].version;
    if (*newest > known) {
      return Rollback(conn, Status::FailedPrecondition(
                                "the PostgreSQL hot store has schema version " +
                                std::to_string(*newest) + ", newer than this Sluice knows (" +
                                std::to_string(known) + "): run a newer Sluice"));
    }
    if (done->Bool(0, 1)) {
      SLUICE_RETURN_IF_ERROR(conn.Exec("COMMIT"));
      continue;
    }
    st = conn.Exec(m.sql);
    if (st.ok()) {
      auto ins = conn.Query("INSERT INTO sluice_schema_migrations (version, name) VALUES ($1, $2)",
                            {std::to_string(m.version), std::string(m.name)});
      st = ins.status();
    }
    if (st.ok()) st = conn.Exec("COMMIT");
    if (!st.ok()) {
      return Rollback(conn, st.WithContext("schema migration " + std::to_string(m.version)));
    }
    spdlog::info("hot store: applied PostgreSQL schema migration {} ({})", m.version, m.name);
    ++*applied;
  }
  return Status::OK();
}

}  // namespace

Result<int> MigratePostgres(const std::string& url) {
  SLUICE_ASSIGN_OR_RETURN(auto conn, pg::Connection::Open(url));
  int applied = 0;
  SLUICE_RETURN_IF_ERROR(MigrateOn(*conn, &applied));
  return applied;
}

// ---- the export's rows: the replica's COPY TO STDOUT, as DuckDB chunks ----

namespace {

bool IsTimeColumn(int16_t c) { return c == 5 || c == 6 || c == 7; }

static_assert(kEventColumnCount == kParquetEventColumns);

// Fills `output` with up to one vector of rows from the COPY stream (ParquetWriter::Fill).
Status FillFromCopy(pg::CopyOut& out, pg::CopyRow& row, duckdb_data_chunk output) {
  duckdb_vector vec[kEventColumnCount];
  for (int16_t c = 0; c < kEventColumnCount; ++c) {
    vec[c] = duckdb_data_chunk_get_vector(output, static_cast<idx_t>(c));
    duckdb_vector_ensure_validity_writable(vec[c]);
  }
  const idx_t capacity = duckdb_vector_size();
  idx_t n = 0;
  while (n < capacity) {
    SLUICE_ASSIGN_OR_RETURN(bool got, out.Next(&row));
    if (!got) break;
    if (row.fields.size() != static_cast<size_t>(kEventColumnCount)) {
      return Status::Corruption("export: a row of " + std::to_string(row.fields.size()) +
                                " columns");
    }
    for (int16_t c = 0; c < kEventColumnCount; ++c) {
      const auto& f = row.fields[static_cast<size_t>(c)];
      uint64_t* validity = duckdb_vector_get_validity(vec[c]);
      if (!f) {
        duckdb_validity_set_row_invalid(validity, n);
        continue;
      }
      duckdb_validity_set_row_valid(validity, n);
      if (IsTimeColumn(c)) {
        SLUICE_ASSIGN_OR_RETURN(int64_t t, pg::DecodeTimestamp(*f));
        static_cast<int64_t*>(duckdb_vector_get_data(vec[c]))[n] = t;
      } else {
        duckdb_vector_assign_string_element_len(vec[c], n, f->data(), f->size());
      }
    }
    ++n;
  }
  duckdb_data_chunk_set_size(output, n);
  return Status::OK();
}

}  // namespace

// ---- the store ----

void PostgresStore::CommitGate::LockShared() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !exclusive_; });
  ++shared_;
}
void PostgresStore::CommitGate::UnlockShared() {
  std::lock_guard lock(mu_);
  if (--shared_ == 0) cv_.notify_all();
}
void PostgresStore::CommitGate::Lock() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !exclusive_; });
  exclusive_ = true;
  cv_.wait(lock, [&] { return shared_ == 0; });
}
void PostgresStore::CommitGate::Unlock() {
  std::lock_guard lock(mu_);
  exclusive_ = false;
  cv_.notify_all();
}

std::string PostgresStore::PartitionName(int64_t start_us) {
  // 2024-05-01T12:00:00Z -> events_p_20240501_120000
  std::string t = event::FormatTimestamp(start_us).substr(0, 19);
  std::string name = "events_p_";
  for (char c : t) {
    if (c == 'T') {
      name += '_';
    } else if (c != '-' && c != ':') {
      name += c;
    }
  }
  return name;
}

PostgresStore::PostgresStore(const PostgresStoreOptions& options)
    : options_(options),
      pool_(options.url),
      replica_wait_seconds_(metrics::Default().GetHistogram(
          "sluice_store_replica_wait_seconds",
          "Time an export waited for the read replica to replay the primary's WAL position")) {}

PostgresStore::~PostgresStore() = default;

Result<std::unique_ptr<PostgresStore>> PostgresStore::Open(const PostgresStoreOptions& options) {
  if (options.url.empty()) {
    return Status::InvalidArgument("PostgresStore: no PostgreSQL URL (--store postgres://…)");
  }
  if (options.window_us < 1'000'000 || options.window_us % 1'000'000 != 0) {
    return Status::InvalidArgument(
        "PostgresStore: the window must be a whole number of seconds, got " +
        std::to_string(options.window_us) + " us");
  }
  if (options.partition_us < options.window_us || options.partition_us % options.window_us != 0) {
    return Status::InvalidArgument(
        "PostgresStore: the partition length (" + std::to_string(options.partition_us / 1'000'000) +
        " s) must be a whole multiple of the export window (" +
        std::to_string(options.window_us / 1'000'000) + " s)");
  }
  if (options.partitions_ahead < 0 || options.partitions_ahead > 1000) {
    return Status::InvalidArgument("PostgresStore: partitions_ahead must be 0..1000");
  }
  if (options.replica_wait_us <= 0) {
    return Status::InvalidArgument("PostgresStore: replica_wait_us must be positive");
  }
  if (options.clock == nullptr) return Status::InvalidArgument("PostgresStore: no clock");
  auto store = std::unique_ptr<PostgresStore>(new PostgresStore(options));
  SLUICE_RETURN_IF_ERROR(store->Init().WithContext("opening the PostgreSQL hot store"));
  return store;
}

Status PostgresStore::Init() {
  {
    SLUICE_ASSIGN_OR_RETURN(auto conn, pool_.Acquire());
    int applied = 0;
    SLUICE_RETURN_IF_ERROR(MigrateOn(*conn, &applied));
    SLUICE_RETURN_IF_ERROR(LoadCatalog(*conn));
    SLUICE_RETURN_IF_ERROR(FinishInterruptedDrops(*conn));
    SLUICE_RETURN_IF_ERROR(EnsurePartitions(*conn, {options_.clock->NowMicros()}));
  }

  ParquetWriter::Options wo;
  wo.memory_limit = options_.duckdb_memory_limit;
  wo.tmp_dir = options_.tmp_dir;
  SLUICE_ASSIGN_OR_RETURN(writer_, ParquetWriter::Open(wo));
  return Status::OK();
}

Status PostgresStore::LoadCatalog(pg::Connection& conn) {
  SLUICE_ASSIGN_OR_RETURN(auto wins, conn.Query("SELECT start_us, end_us, dropped, purged "
                                                "FROM sluice_windows"));
  SLUICE_ASSIGN_OR_RETURN(auto parts,
                          conn.Query("SELECT start_us, end_us FROM sluice_partitions"));
  SLUICE_ASSIGN_OR_RETURN(
      auto max, conn.Query("SELECT COALESCE(max(max_received_us), 0) FROM sluice_offsets"));
  std::lock_guard lock(mu_);
  windows_.clear();
  for (int r = 0; r < wins.rows(); ++r) {
    WindowState w;
    SLUICE_ASSIGN_OR_RETURN(w.end_us, wins.Int64(r, 1));
    w.dropped = wins.Bool(r, 2);
    w.purged = wins.Bool(r, 3);
    SLUICE_ASSIGN_OR_RETURN(int64_t start, wins.Int64(r, 0));
    windows_[start] = w;
  }
  partitions_.clear();
  for (int r = 0; r < parts.rows(); ++r) {
    SLUICE_ASSIGN_OR_RETURN(int64_t start, parts.Int64(r, 0));
    SLUICE_ASSIGN_OR_RETURN(partitions_[start].end_us, parts.Int64(r, 1));
  }
  SLUICE_ASSIGN_OR_RETURN(max_received_at_us_, max.Int64(0, 0));
  return Status::OK();
}

Status PostgresStore::FinishInterruptedDrops(pg::Connection& conn) {
  // A partition whose detach was interrupted (pending, or detached but not dropped) or whose
  // table is gone: DropPartition finishes each step that is left.
  SLUICE_ASSIGN_OR_RETURN(
      auto left,
      conn.Query("SELECT p.start_us, p.end_us, p.name FROM sluice_partitions p "
                 "LEFT JOIN pg_inherits i ON i.inhrelid = to_regclass(p.name) "
                 "  AND i.inhparent = 'events'::regclass "
                 "WHERE i.inhrelid IS NULL OR i.inhdetachpending ORDER BY p.start_us"));
  for (int r = 0; r < left.rows(); ++r) {
    SLUICE_ASSIGN_OR_RETURN(int64_t start, left.Int64(r, 0));
    SLUICE_ASSIGN_OR_RETURN(int64_t end, left.Int64(r, 1));
    spdlog::info("hot store: finishing the interrupted drop of partition {}", left.Text(r, 2));
    SLUICE_RETURN_IF_ERROR(DropPartition(conn, start, end, std::string(left.Text(r, 2))));
  }
  return Status::OK();
}

Status PostgresStore::Fault(std::string_view step) {
  return options_.fault_injection ? options_.fault_injection(step) : Status::OK();
}

int64_t PostgresStore::PartitionForLocked(int64_t t, int64_t* end) const {
  int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  auto next = partitions_.upper_bound(t);
  if (next != partitions_.begin()) {
    auto prev = std::prev(next);
    if (t < prev->second.end_us) {
      *end = prev->second.end_us;
      return prev->first;
    }
    lo = prev->second.end_us;
  }
  if (next != partitions_.end()) hi = next->first;
  // A new partition: aligned, but cut to fit between existing ones (partition_us may have
  // changed since they were made).
  const int64_t start = FloorDiv(t, options_.partition_us) * options_.partition_us;
  *end = std::min(start + options_.partition_us, hi);
  return std::max(start, lo);
}

int64_t PostgresStore::WindowForLocked(int64_t t, std::vector<int64_t>* created) {
  int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  auto next = windows_.upper_bound(t);
  if (next != windows_.begin()) {
    auto prev = std::prev(next);
    if (t < prev->second.end_us) return prev->first;
    lo = prev->second.end_us;
  }
  if (next != windows_.end()) hi = next->first;
  // A new window: aligned to window_us, cut to fit between existing windows (made with
  // another window length) and inside its partition.
  int64_t part_end = 0;
  const int64_t part_start = PartitionForLocked(t, &part_end);
  int64_t start = FloorDiv(t, options_.window_us) * options_.window_us;
  int64_t end = start + options_.window_us;
  start = std::max({start, lo, part_start});
  end = std::min({end, hi, part_end});
  windows_[start].end_us = end;
  created->push_back(start);
  return start;
}

Status PostgresStore::EnsurePartitions(pg::Connection& conn, const std::vector<int64_t>& times) {
  if (times.empty()) return Status::OK();
  struct Missing {
    int64_t start, end;
  };
  auto find_missing = [&](std::vector<Missing>* missing) -> Status {
    missing->clear();
    std::lock_guard lock(mu_);
    auto need = [&](int64_t t, int64_t* end) -> Status {
      const int64_t start = PartitionForLocked(t, end);
      auto it = partitions_.find(start);
      if (it == partitions_.end()) {
        if (std::none_of(missing->begin(), missing->end(),
                         [&](const Missing& m) { return m.start == start; })) {
          missing->push_back({start, *end});
        }
      } else if (it->second.dropping) {
        return Status::Unavailable("partition " + PartitionName(start) +
                                   " is being dropped; retry once it is gone");
      }
      return Status::OK();
    };
    int64_t end = 0;
    for (int64_t t : times) SLUICE_RETURN_IF_ERROR(need(t, &end));
    int64_t t = *std::max_element(times.begin(), times.end());
    SLUICE_RETURN_IF_ERROR(need(t, &end));
    for (int i = 0; i < options_.partitions_ahead; ++i) {
      t = end;
      SLUICE_RETURN_IF_ERROR(need(t, &end));
    }
    return Status::OK();
  };
  std::vector<Missing> missing;
  SLUICE_RETURN_IF_ERROR(find_missing(&missing));
  if (missing.empty()) return Status::OK();

  std::lock_guard ddl(ddl_mu_);
  SLUICE_RETURN_IF_ERROR(find_missing(&missing));  // another commit may have made them
  for (const Missing& m : missing) {
    const std::string name = PartitionName(m.start);
    // CREATE + ATTACH rather than CREATE … PARTITION OF: ATTACH takes only SHARE UPDATE
    // EXCLUSIVE on `events`, so commits and queries go on meanwhile.
    const std::string sql =
        "BEGIN; CREATE TABLE " + name +
        " (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMPRESSION "
        "INCLUDING STORAGE); ALTER TABLE events ATTACH PARTITION " + name + " FOR VALUES FROM (" +
        PgTime(m.start) + ") TO (" + PgTime(m.end) +
        "); INSERT INTO sluice_partitions (start_us, end_us, name) VALUES (" +
        std::to_string(m.start) + ", " + std::to_string(m.end) + ", '" + name + "'); COMMIT";
    if (Status st = conn.Exec(sql); !st.ok()) {
      return Rollback(conn, st.WithContext("creating partition " + name));
    }
    std::lock_guard lock(mu_);
    partitions_[m.start].end_us = m.end;
  }
  return Status::OK();
}

Status PostgresStore::CommitBatch(const Batch& batch) {
  auto t0 = std::chrono::steady_clock::now();
  bool needs_revive = false;
  Status st = CommitOnce(batch, &needs_revive);
  if (st.ok() && needs_revive) {
    // The batch brings dropped windows back: one such commit at a time, so that two shards
    // never both copy a window's history back.
    std::lock_guard revive(revive_mu_);
    st = CommitOnce(batch, &needs_revive);
  }
  commit_metrics_.Record(batch, t0, st);
  return st;
}

// *needs_revive on entry: whether the caller holds revive_mu_. Returns OK with *needs_revive
// set (and nothing done) when the batch touches a dropped window and it does not.
Status PostgresStore::CommitOnce(const Batch& batch, bool* needs_revive) {
  const bool revive_locked = *needs_revive;
  CommitGate::Shared shared(gate_);

  // Plan: each event's window; the windows' row counts; which windows come back.
  std::map<int64_t, int64_t> rows_per_window;  // start -> rows of this batch
  std::map<int64_t, int64_t> window_end;
  std::vector<int64_t> revived, purged;
  int64_t batch_max = 0;
  {
    std::lock_guard lock(mu_);
    std::vector<int64_t> created;
    int64_t cached_start = 0, cached_end = 0;
    bool have_cached = false;
    for (const auto& e : batch.events) {
      const int64_t t = e.received_at_us;
      batch_max = std::max(batch_max, t);
      if (!have_cached || t < cached_start || t >= cached_end) {
        cached_start = WindowForLocked(t, &created);
        cached_end = windows_[cached_start].end_us;
        have_cached = true;
      }
      ++rows_per_window[cached_start];
    }
    for (const auto& [start, n] : rows_per_window) {
      const WindowState& w = windows_[start];
      window_end[start] = w.end_us;
      if (w.dropped) revived.push_back(start);
      if (w.purged) purged.push_back(start);
    }
  }
  for (const auto& r : batch.rejections) batch_max = std::max(batch_max, r.received_at_us);
  if (!revived.empty() && !revive_locked) {
    *needs_revive = true;
    return Status::OK();
  }
  *needs_revive = false;

  SLUICE_ASSIGN_OR_RETURN(auto conn, pool_.Acquire());
  std::vector<int64_t> starts;
  for (const auto& [start, n] : rows_per_window) starts.push_back(start);
  SLUICE_RETURN_IF_ERROR(EnsurePartitions(*conn, starts));

  SLUICE_RETURN_IF_ERROR(conn->Exec("BEGIN"));
  auto fail = [&](Status st) { return Rollback(*conn, st); };

  // Exactly once across an ambiguous failure: a batch that does not move the shard's offset
  // forward was committed by an earlier call whose answer was lost.
  // FOR UPDATE: concurrent commits of one shard take turns, and the second sees the first's.
  auto stored = conn->Query(
      "SELECT end_offset FROM sluice_offsets WHERE shard = $1 FOR UPDATE", {batch.shard});
  if (!stored.ok()) return fail(stored.status());
  uint64_t stored_offset = 0;
  if (stored->rows() == 1) {
    auto at = stored->Int64(0, 0);
    if (!at.ok()) return fail(at.status());
    stored_offset = static_cast<uint64_t>(*at);
    if (stored_offset >= batch.end_offset) {
      spdlog::info("hot store: shard {} is already committed up to offset {} (>= {}): the batch "
                   "is stored already",
                   batch.shard, *at, batch.end_offset);
      return fail(Status::OK());
    }
  }
  if (batch.start_offset && stored_offset != *batch.start_offset) {
    return fail(Status::Aborted("shard " + batch.shard + " is committed up to offset " +
                                std::to_string(stored_offset) + ", not " +
                                std::to_string(*batch.start_offset) +
                                " where this batch starts: another loader moved it"));
  }

  // Windows whose partition was dropped get their history back first.
  std::map<int64_t, uint64_t> restored;
  for (int64_t start : purged) {
    auto n = RestoreFromParquet(*conn, start, window_end[start]);
    if (!n.ok()) return fail(n.status());
    restored[start] = *n;
  }
  if (!batch.events.empty()) {
    if (Status st = CopyEvents(*conn, batch); !st.ok()) return fail(st);
  }
  if (Status st = Fault("appended"); !st.ok()) return fail(st);
  if (!batch.rejections.empty()) {
    if (Status st = CopyRejections(*conn, batch); !st.ok()) return fail(st);
  }

  std::string scratch;
  if (!starts.empty()) {
    std::vector<int64_t> ends, counts;
    for (int64_t s : starts) {
      ends.push_back(window_end[s]);
      counts.push_back(rows_per_window[s] + static_cast<int64_t>(restored[s]));
    }
    const std::string starts_arr = Int64Array(starts);
    // In start order, as every commit does: concurrent commits lock rows in the same order.
    std::vector<std::string> stmts = {
        "INSERT INTO sluice_windows (start_us, end_us) SELECT * FROM unnest($1::int8[], "
        "$2::int8[]) ON CONFLICT (start_us) DO NOTHING",
        "UPDATE sluice_windows SET exported = false, dropped = false, purged = false "
        "WHERE start_us = ANY($1::int8[]) AND (exported OR dropped OR purged)",
    };
    auto ins = conn->Query(stmts[0], {starts_arr, Int64Array(ends)});
    if (!ins.ok()) return fail(ins.status());
    auto upd = conn->Query(stmts[1], {starts_arr});
    if (!upd.ok()) return fail(upd.status());
    if (!purged.empty()) {
      // The restored rows replace the counts the window had before its partition went.
      auto del = conn->Query("DELETE FROM sluice_window_rows WHERE start_us = ANY($1::int8[])",
                             {Int64Array(purged)});
      if (!del.ok()) return fail(del.status());
    }
    auto rows = conn->Query(
        "INSERT INTO sluice_window_rows (start_us, shard, rows) "
        "SELECT s, $2, n FROM unnest($1::int8[], $3::int8[]) AS u(s, n) ORDER BY s "
        "ON CONFLICT (start_us, shard) DO UPDATE SET rows = sluice_window_rows.rows + "
        "excluded.rows",
        {starts_arr, batch.shard, Int64Array(counts)});
    if (!rows.ok()) return fail(rows.status());
  }

  if (!batch.rollups.empty()) {
    std::vector<int64_t> minutes, counts;
    std::vector<std::string_view> types, names;
    for (const auto& r : batch.rollups) {
      minutes.push_back(r.minute_us);
      counts.push_back(r.count);
      types.push_back(r.type);
      names.push_back(r.event);
    }
    // Summed per key (ON CONFLICT may touch a row once per statement) and sorted by key, so
    // concurrent commits lock shared keys in one order.
    auto merged = conn->Query(
        "INSERT INTO events_1m (minute, type, event, count) "
        "SELECT 'epoch'::timestamptz + m * interval '1 microsecond', t, e, sum(c) "
        "FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[]) AS u(m, t, e, c) "
        "GROUP BY m, t, e ORDER BY m, t, e "
        "ON CONFLICT (minute, type, event) DO UPDATE SET count = events_1m.count + "
        "excluded.count",
        {Int64Array(minutes), TextArray(types, &scratch), TextArray(names, &scratch),
         Int64Array(counts)});
    if (!merged.ok()) return fail(merged.status());
  }

  auto off = conn->Query(
      "INSERT INTO sluice_offsets (shard, end_offset, max_received_us) VALUES ($1, $2, $3) "
      "ON CONFLICT (shard) DO UPDATE SET end_offset = excluded.end_offset, "
      "max_received_us = GREATEST(sluice_offsets.max_received_us, excluded.max_received_us)",
      {batch.shard, std::to_string(batch.end_offset), std::to_string(batch_max)});
  if (!off.ok()) return fail(off.status());
  if (Status st = Fault("before_commit"); !st.ok()) return fail(st);
  if (Status st = conn->Exec("COMMIT"); !st.ok()) return fail(st);

  std::vector<int64_t> to_analyze;
  {
    std::lock_guard lock(mu_);
    for (int64_t start : revived) {
      windows_[start].dropped = false;
      windows_[start].purged = false;
    }
    max_received_at_us_ = std::max(max_received_at_us_, batch_max);
    if (options_.analyze_after_rows > 0) {
      for (const auto& [start, n] : rows_per_window) {
        int64_t part_end = 0;
        auto it = partitions_.find(PartitionForLocked(start, &part_end));
        if (it == partitions_.end() || it->second.analyzed) continue;
        it->second.rows += n;
        if (it->second.rows >= options_.analyze_after_rows) {
          it->second.analyzed = true;
          to_analyze.push_back(it->first);
        }
      }
    }
  }
  // Statistics for a fresh partition now rather than at autovacuum's next round: the batch is
  // committed, so a failure here is only logged (autovacuum analyzes it later anyway).
  for (int64_t start : to_analyze) {
    const std::string name = PartitionName(start);
    if (Status st = conn->Exec("ANALYZE " + name); !st.ok()) {
      spdlog::warn("hot store: ANALYZE {} failed (autovacuum will do it): {}", name,
                   st.ToString());
    } else {
      spdlog::debug("hot store: analyzed partition {}", name);
    }
  }
  return Status::OK();
}

Status PostgresStore::CopyEvents(pg::Connection& conn, const Batch& batch) {
  SLUICE_ASSIGN_OR_RETURN(
      auto in, pg::CopyIn::Start(conn, std::string("COPY events (") + kEventColumns +
                                           ") FROM STDIN (FORMAT binary)"));
  pg::CopyEncoder& enc = in->encoder();
  std::string scratch;
  for (const auto& e : batch.events) {
    enc.BeginRow(kEventColumnCount);
    AddTextOrNull(enc, e.event_id, &scratch);
    AddTextOrNull(enc, e.type, &scratch);
    AddTextOrNull(enc, e.event, &scratch);
    AddTextOrNull(enc, e.user_id, &scratch);
    AddTextOrNull(enc, e.anonymous_id, &scratch);
    enc.AddTimestamp(e.event_time_us);
    if (e.sent_at_us) {
      enc.AddTimestamp(*e.sent_at_us);
    } else {
      enc.AddNull();
    }
    enc.AddTimestamp(e.received_at_us);
    AddTextOrNull(enc, e.properties, &scratch);
    AddTextOrNull(enc, e.traits, &scratch);
    AddTextOrNull(enc, e.context, &scratch);
    AddTextOrNull(enc, e.source, &scratch);
    SLUICE_RETURN_IF_ERROR(in->MaybeFlush());
  }
  SLUICE_ASSIGN_OR_RETURN(uint64_t rows, in->Finish());
  if (rows != batch.events.size()) {
    return Status::Internal("COPY into events stored " + std::to_string(rows) + " of " +
                            std::to_string(batch.events.size()) + " rows");
  }
  return Status::OK();
}

Status PostgresStore::CopyRejections(pg::Connection& conn, const Batch& batch) {
  SLUICE_ASSIGN_OR_RETURN(
      auto in, pg::CopyIn::Start(conn, "COPY events_rejected (received_at, source, error, body) "
                                       "FROM STDIN (FORMAT binary)"));
  pg::CopyEncoder& enc = in->encoder();
  std::string scratch;
  for (const auto& r : batch.rejections) {
    enc.BeginRow(4);
    enc.AddTimestamp(r.received_at_us);
    AddTextOrNull(enc, r.source, &scratch);
    AddTextOrNull(enc, r.error, &scratch);
    AddTextOrNull(enc, r.body, &scratch);
    SLUICE_RETURN_IF_ERROR(in->MaybeFlush());
  }
  return in->Finish().status();
}

Result<bool> PostgresStore::HaveParquetHistory(duck::Connection& conn) {
  if (options_.parquet_glob.empty()) return false;
  SLUICE_ASSIGN_OR_RETURN(auto r,
                          conn.Query("SELECT count(*) FROM (SELECT * FROM glob(" +
                                     duck::QuoteLiteral(options_.parquet_glob) + ") LIMIT 1)"));
  return r.Int64(0, 0) > 0;
}

Result<uint64_t> PostgresStore::RestoreFromParquet(pg::Connection& conn, int64_t start_us,
                                                   int64_t end_us) {
  SLUICE_ASSIGN_OR_RETURN(auto duck, duck::Connection::Open(writer_->database()));
  SLUICE_ASSIGN_OR_RETURN(bool have, HaveParquetHistory(*duck));
  if (!have) {
    spdlog::warn("hot store: window {} gets late rows after its partition was dropped, and no "
                 "Parquet history is configured to bring its rows back from",
                 event::FormatTimestamp(start_us));
    return uint64_t{0};
  }
  SLUICE_ASSIGN_OR_RETURN(
      auto in, pg::CopyIn::Start(conn, std::string("COPY events (") + kEventColumns +
                                           ") FROM STDIN (FORMAT binary)"));
  pg::CopyEncoder& enc = in->encoder();
  std::string scratch;
  const std::string sql =
      "SELECT CAST(event_id AS VARCHAR), CAST(type AS VARCHAR), CAST(event AS VARCHAR), "
      "CAST(user_id AS VARCHAR), CAST(anonymous_id AS VARCHAR), epoch_us(event_time), "
      "epoch_us(sent_at), epoch_us(received_at), CAST(properties AS VARCHAR), "
      "CAST(traits AS VARCHAR), CAST(context AS VARCHAR), CAST(source AS VARCHAR) "
      "FROM read_parquet(" +
      duck::QuoteLiteral(options_.parquet_glob) +
      ", hive_partitioning = true) WHERE received_at >= " + DuckTime(start_us) +
      " AND received_at < " + DuckTime(end_us) + " ORDER BY received_at";
  Status streamed = duck::StreamQuery(*duck, sql, [&](duckdb_data_chunk chunk) {
    const idx_t n = duckdb_data_chunk_get_size(chunk);
    duckdb_vector v[kEventColumnCount];
    for (int16_t c = 0; c < kEventColumnCount; ++c) {
      v[c] = duckdb_data_chunk_get_vector(chunk, static_cast<idx_t>(c));
    }
    for (idx_t row = 0; row < n; ++row) {
      enc.BeginRow(kEventColumnCount);
      for (int16_t c = 0; c < kEventColumnCount; ++c) {
        if (IsTimeColumn(c)) {
          uint64_t* validity = duckdb_vector_get_validity(v[c]);
          if (validity != nullptr && !duckdb_validity_row_is_valid(validity, row)) {
            enc.AddNull();
          } else {
            enc.AddTimestamp(static_cast<int64_t*>(duckdb_vector_get_data(v[c]))[row]);
          }
        } else {
          AddTextOrNull(enc, DuckString(v[c], row), &scratch);
        }
      }
      SLUICE_RETURN_IF_ERROR(in->MaybeFlush());
    }
    return Status::OK();
  });
  SLUICE_RETURN_IF_ERROR(streamed);
  SLUICE_ASSIGN_OR_RETURN(uint64_t rows, in->Finish());
  spdlog::info("hot store: window {} got late rows after its partition was dropped; copied its "
               "{} rows back from Parquet",
               event::FormatTimestamp(start_us), rows);
  return rows;
}

Result<uint64_t> PostgresStore::CommittedOffset(const std::string& shard) {
  SLUICE_ASSIGN_OR_RETURN(auto conn, pool_.Acquire());
  SLUICE_ASSIGN_OR_RETURN(
      auto r, conn->Query("SELECT end_offset FROM sluice_offsets WHERE shard = $1", {shard}));
  if (r.rows() == 0) return uint64_t{0};
  SLUICE_ASSIGN_OR_RETURN(int64_t v, r.Int64(0, 0));
  return static_cast<uint64_t>(v);
}

Result<int64_t> PostgresStore::MaxReceivedAt() {
  std::lock_guard lock(mu_);
  return max_received_at_us_;
}

Result<std::vector<WindowInfo>> PostgresStore::Windows() {
  SLUICE_ASSIGN_OR_RETURN(auto conn, pool_.Acquire());
  SLUICE_ASSIGN_OR_RETURN(
      auto r, conn->Query("SELECT w.start_us, w.end_us, COALESCE(sum(r.rows), 0), w.exported "
                          "FROM sluice_windows w LEFT JOIN sluice_window_rows r USING (start_us) "
                          "WHERE NOT w.dropped GROUP BY w.start_us ORDER BY w.start_us"));
  std::vector<WindowInfo> out;
  for (int i = 0; i < r.rows(); ++i) {
    WindowInfo w;
    SLUICE_ASSIGN_OR_RETURN(w.start_us, r.Int64(i, 0));
    SLUICE_ASSIGN_OR_RETURN(w.end_us, r.Int64(i, 1));
    SLUICE_ASSIGN_OR_RETURN(int64_t rows, r.Int64(i, 2));
    w.rows = static_cast<uint64_t>(rows);
    w.exported = r.Bool(i, 3);
    out.push_back(w);
  }
  return out;
}

Result<pg::Connection*> PostgresStore::ReadConnection() {
  if (!read_conn_ || !read_conn_->Alive()) {
    read_conn_.reset();
    const std::string& url = options_.read_url.empty() ? options_.url : options_.read_url;
    SLUICE_ASSIGN_OR_RETURN(auto conn, pg::Connection::Open(url));
    // The export reads one window of a partition in received_at order. Without statistics
    // (a fresh partition, before autovacuum's ANALYZE) the planner picks a bitmap scan and a
    // sort, which for a full window (GBs) spills to disk; the received_at index already
    // yields the order, over a heap written in nearly that order.
    SLUICE_RETURN_IF_ERROR(
        conn->Exec("SET enable_sort = off; SET enable_bitmapscan = off; SET enable_seqscan = off"));
    // A window's export is one long statement (a minute or more at the seed's rate). On a
    // standby without hot_standby_feedback, the primary's vacuum of the busy tables (events_1m,
    // sluice_offsets) removes rows its snapshot may need, and replay cancels it after
    // max_standby_streaming_delay: every retry of a long export then fails the same way.
    auto standby = conn->Query(
        "SELECT pg_is_in_recovery(), current_setting('hot_standby_feedback'), "
        "current_setting('max_standby_streaming_delay')");
    if (standby.ok() && standby->rows() == 1 && standby->Bool(0, 0) &&
        standby->Text(0, 1) != "on" && standby->Text(0, 2) != "-1") {
      spdlog::warn(
          "hot store: the read replica ({}) has hot_standby_feedback off: an export running "
          "longer than its max_standby_streaming_delay ({}) can be canceled by the primary's "
          "vacuum (\"conflict with recovery\") and fail on every retry. Set "
          "hot_standby_feedback = on on the replica",
          url, standby->Text(0, 2));
    }
    read_conn_ = std::move(conn);
  }
  return read_conn_.get();
}

Status PostgresStore::WaitForReplica(const std::string& primary_lsn) {
  SLUICE_ASSIGN_OR_RETURN(pg::Connection * conn, ReadConnection());
  const auto t0 = std::chrono::steady_clock::now();
  const auto deadline = t0 + std::chrono::microseconds(options_.replica_wait_us);
  bool warned = false;
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(
        auto r, conn->Query("SELECT pg_is_in_recovery(), "
                            "COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, false), "
                            "COALESCE(pg_last_wal_replay_lsn()::text, 'nothing'), "
                            "CASE WHEN pg_is_in_recovery() THEN "
                            "pg_get_wal_replay_pause_state() ELSE '' END",
                            {primary_lsn}));
    // Not a standby (promoted, or --store-read names the primary): it has everything.
    if (!r.Bool(0, 0) || r.Bool(0, 1)) break;
    if (!warned && std::chrono::steady_clock::now() - t0 >= std::chrono::seconds(1)) {
      warned = true;
      spdlog::warn("export: waiting for the read replica to replay up to {} (it is at {}, "
                   "replay {}) before exporting, at most {} s",
                   primary_lsn, r.Text(0, 2), r.Text(0, 3),
                   options_.replica_wait_us / 1'000'000);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::DeadlineExceeded(
          "the read replica (" + options_.read_url + ") has replayed WAL up to " +
          std::string(r.Text(0, 2)) + " but the export needs " + primary_lsn +
          " (the primary's position when it started); waited " +
          std::to_string(options_.replica_wait_us / 1'000'000) + " s; replay is " +
          std::string(r.Text(0, 3)) + " (pg_wal_replay_resume() resumes a paused replay)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  replica_wait_seconds_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return Status::OK();
}

Result<uint64_t> PostgresStore::ExportWindowToParquet(int64_t start_us, const std::string& path,
                                                      const ParquetOptions& options) {
  std::lock_guard lock(export_mu_);
  int64_t end_us = 0;
  std::string lsn;
  {
    SLUICE_ASSIGN_OR_RETURN(auto conn, pool_.Acquire());
    SLUICE_ASSIGN_OR_RETURN(
        auto w, conn->Query("SELECT end_us, pg_current_wal_lsn()::text FROM sluice_windows "
                            "WHERE start_us = $1 AND NOT dropped",
                            {std::to_string(start_us)}));
    if (w.rows() == 0) {
      return Status::NotFound("no hot window starts at " + event::FormatTimestamp(start_us));
    }
    SLUICE_ASSIGN_OR_RETURN(end_us, w.Int64(0, 0));
    lsn = std::string(w.Text(0, 1));
  }
  if (!options_.read_url.empty()) SLUICE_RETURN_IF_ERROR(WaitForReplica(lsn));
  SLUICE_ASSIGN_OR_RETURN(pg::Connection * conn, ReadConnection());
  SLUICE_ASSIGN_OR_RETURN(
      auto out,
      pg::CopyOut::Start(*conn, std::string("COPY (SELECT ") + kEventColumns +
                                    " FROM events WHERE received_at >= " + PgTime(start_us) +
                                    " AND received_at < " + PgTime(end_us) +
                                    " ORDER BY received_at) TO STDOUT (FORMAT binary)"));
  // Waiting in options.pace leaves the replica's COPY blocked on its socket: the whole export
  // slows. An unfinished COPY is cancelled and drained when `out` goes.
  pg::CopyRow row;
  auto rows = writer_->Write(path, options, [&](duckdb_data_chunk chunk) {
    return FillFromCopy(*out, row, chunk);
  });
  if (!rows.ok()) {
    return rows.status().WithContext("exporting window " + event::FormatTimestamp(start_us));
  }
  return *rows;
}

Status PostgresStore::MarkExported(int64_t start_us, uint64_t rows) {
  CommitGate::Exclusive exclusive(gate_);
  SLUICE_ASSIGN_OR_RETURN(auto conn, pool_.Acquire());
  SLUICE_RETURN_IF_ERROR(conn->Exec("BEGIN"));
  auto fail = [&](Status st) { return Rollback(*conn, st); };
  auto w = conn->Query(
      "SELECT w.exported, (SELECT COALESCE(sum(rows), 0) FROM sluice_window_rows r "
      "WHERE r.start_us = w.start_us) FROM sluice_windows w WHERE start_us = $1 AND NOT dropped "
      "FOR UPDATE",
      {std::to_string(start_us)});
  if (!w.ok()) return fail(w.status());
  if (w->rows() == 0) {
    return fail(Status::NotFound("no hot window starts at " + event::FormatTimestamp(start_us)));
  }
  auto have = w->Int64(0, 1);
  if (!have.ok()) return fail(have.status());
  if (w->Bool(0, 0)) return fail(Status::OK());
  if (static_cast<uint64_t>(*have) != rows) {
    return fail(Status::FailedPrecondition(
        "window " + event::FormatTimestamp(start_us) + " has " + std::to_string(*have) +
        " rows but its export has " + std::to_string(rows) + ": export it again"));
  }
  auto upd = conn->Query("UPDATE sluice_windows SET exported = true WHERE start_us = $1",
                         {std::to_string(start_us)});
  if (!upd.ok()) return fail(upd.status());
  return fail(conn->Exec("COMMIT"));
}

Status PostgresStore::DropWindow(int64_t start_us) {
  {
    CommitGate::Exclusive exclusive(gate_);
    SLUICE_ASSIGN_OR_RETURN(auto conn, pool_.Acquire());
    SLUICE_RETURN_IF_ERROR(conn->Exec("BEGIN"));
    auto fail = [&](Status st) { return Rollback(*conn, st); };
    auto w = conn->Query("SELECT exported FROM sluice_windows WHERE start_us = $1 "
                         "AND NOT dropped FOR UPDATE",
                         {std::to_string(start_us)});
    if (!w.ok()) return fail(w.status());
    if (w->rows() == 0) {
      return fail(
          Status::NotFound("no hot window starts at " + event::FormatTimestamp(start_us)));
    }
    if (!w->Bool(0, 0)) {
      return fail(Status::FailedPrecondition("window " + event::FormatTimestamp(start_us) +
                                             " is not exported; its rows cannot be dropped"));
    }
    auto upd = conn->Query("UPDATE sluice_windows SET dropped = true WHERE start_us = $1",
                           {std::to_string(start_us)});
    if (!upd.ok()) return fail(upd.status());
    SLUICE_RETURN_IF_ERROR(fail(conn->Exec("COMMIT")));
    std::lock_guard lock(mu_);
    windows_[start_us].dropped = true;
  }
  // The window is dropped (committed); its rows go with its partition. A failure there is
  // logged and retried by the next DropWindow.
  if (Status st = DropFinishedPartitions(); !st.ok()) {
    spdlog::warn("hot store: dropping finished partitions: {}", st.ToString());
  }
  return Status::OK();
}

Status PostgresStore::DropFinishedPartitions() {
  struct Candidate {
    int64_t start, end;
  };
  std::vector<Candidate> candidates;
  {
    // With the gate held no commit is in flight, and none starts: a partition chosen here
    // gets no rows before it is marked dropping, and commits that would need it afterwards
    // are refused (EnsurePartitions) until it is gone.
    CommitGate::Exclusive exclusive(gate_);
    std::lock_guard lock(mu_);
    for (auto& [start, p] : partitions_) {
      if (p.dropping || p.end_us > max_received_at_us_) continue;
      bool all_dropped = true;
      for (auto it = windows_.lower_bound(start); it != windows_.end() && it->first < p.end_us;
           ++it) {
        all_dropped = all_dropped && it->second.dropped;
      }
      if (!all_dropped) continue;
      p.dropping = true;
      candidates.push_back({start, p.end_us});
    }
  }
  if (candidates.empty()) return Status::OK();
  SLUICE_ASSIGN_OR_RETURN(auto conn, pool_.Acquire());
  Status first;
  for (const Candidate& c : candidates) {
    Status st = DropPartition(*conn, c.start, c.end, PartitionName(c.start));
    if (!st.ok()) {
      std::lock_guard lock(mu_);
      auto it = partitions_.find(c.start);
      if (it != partitions_.end()) it->second.dropping = false;
      if (first.ok()) first = st;
    }
  }
  return first;
}

Status PostgresStore::DropPartition(pg::Connection& conn, int64_t start_us, int64_t end_us,
                                    const std::string& name) {
  SLUICE_ASSIGN_OR_RETURN(
      auto state, conn.Query("SELECT i.inhdetachpending FROM pg_inherits i "
                             "WHERE i.inhrelid = to_regclass($1) "
                             "AND i.inhparent = 'events'::regclass",
                             {name}));
  if (state.rows() == 1) {
    // CONCURRENTLY: waits for the transactions using `events` instead of locking them out, so
    // commits and queries go on. It cannot run in a transaction block; if it is interrupted,
    // the partition stays "detach pending" and FINALIZE completes it.
    SLUICE_RETURN_IF_ERROR(conn.Exec("ALTER TABLE events DETACH PARTITION " + name +
                                     (state.Bool(0, 0) ? " FINALIZE" : " CONCURRENTLY")));
  }
  Status st = conn.Exec(
      "BEGIN; DROP TABLE IF EXISTS " + name + "; DELETE FROM sluice_partitions WHERE start_us = " +
      std::to_string(start_us) + "; UPDATE sluice_windows SET purged = true WHERE start_us >= " +
      std::to_string(start_us) + " AND start_us < " + std::to_string(end_us) + "; COMMIT");
  if (!st.ok()) return Rollback(conn, st.WithContext("dropping partition " + name));
  spdlog::info("hot store: dropped partition {} (every window in it is exported and dropped)",
               name);
  std::lock_guard lock(mu_);
  partitions_.erase(start_us);
  for (auto it = windows_.lower_bound(start_us); it != windows_.end() && it->first < end_us; ++it) {
    it->second.purged = true;
  }
  return Status::OK();
}

Status PostgresStore::ForEachEventIdSince(int64_t since_us,
                                          const std::function<void(std::string_view)>& fn) {
  {
    SLUICE_ASSIGN_OR_RETURN(auto conn, pool_.Acquire());
    SLUICE_ASSIGN_OR_RETURN(
        auto out, pg::CopyOut::Start(*conn, "COPY (SELECT event_id FROM events WHERE "
                                            "received_at >= " +
                                                PgTime(since_us) + ") TO STDOUT (FORMAT binary)"));
    pg::CopyRow row;
    while (true) {
      SLUICE_ASSIGN_OR_RETURN(bool got, out->Next(&row));
      if (!got) break;
      if (!row.fields.empty() && row.fields[0]) fn(*row.fields[0]);
    }
  }
  // Windows whose partition is gone: their rows are only in Parquet.
  std::string ranges;
  {
    std::lock_guard lock(mu_);
    for (const auto& [start, w] : windows_) {
      if (!w.purged || w.end_us <= since_us) continue;
      if (!ranges.empty()) ranges += " OR ";
      ranges += "(received_at >= " + DuckTime(start) + " AND received_at < " +
                DuckTime(w.end_us) + ")";
    }
  }
  if (ranges.empty()) return Status::OK();
  SLUICE_ASSIGN_OR_RETURN(auto duck, duck::Connection::Open(writer_->database()));
  SLUICE_ASSIGN_OR_RETURN(bool have, HaveParquetHistory(*duck));
  if (!have) return Status::OK();
  return duck::StreamQuery(
      *duck,
      "SELECT CAST(event_id AS VARCHAR) FROM read_parquet(" +
          duck::QuoteLiteral(options_.parquet_glob) +
          ", hive_partitioning = true) WHERE received_at >= " + DuckTime(since_us) + " AND (" +
          ranges + ")",
      [&fn](duckdb_data_chunk chunk) {
        const idx_t n = duckdb_data_chunk_get_size(chunk);
        duckdb_vector v = duckdb_data_chunk_get_vector(chunk, 0);
        for (idx_t i = 0; i < n; ++i) {
          std::string_view id = DuckString(v, i);
          if (!id.empty()) fn(id);
        }
        return Status::OK();
      });
}

Result<uint64_t> PostgresStore::DiskBytes() {
  SLUICE_ASSIGN_OR_RETURN(auto conn, pool_.Acquire());
  SLUICE_ASSIGN_OR_RETURN(auto r, conn->Query("SELECT pg_database_size(current_database())"));
  SLUICE_ASSIGN_OR_RETURN(int64_t v, r.Int64(0, 0));
  return static_cast<uint64_t>(v);
}

}  // namespace sluice::store
