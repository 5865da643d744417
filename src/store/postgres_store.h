// PostgresStore: the HotStore in PostgreSQL 15+ (DESIGN.md "hot store: postgres://…"). Writes
// go to the primary (`--store`); exports read a streaming replica (`--store-read`), or the
// primary when there is none (then exports and the loader share the primary's CPU and I/O).
//
// Schema (versioned migrations, table sluice_schema_migrations; applied at Open and by
// MigratePostgres for `sluice migrate`):
//   events           partitioned by RANGE (received_at); columns exactly as DESIGN.md's Event
//                    table: event_id, type, event, user_id, anonymous_id text, event_time,
//                    sent_at, received_at timestamptz, properties, traits, context json
//                    (lz4 TOAST compression), source text. One partition per partition_us
//                    (events_p_YYYYMMDD_HHMMSS, by start), each holding whole export windows.
//                    One index, on received_at: the export reads one window of a partition in
//                    received_at order, ForEachEventIdSince a recent range. No key on
//                    event_id: the loader dedups (store/hot_store.h).
//   events_1m        minute timestamptz, type text, event text (NULL for none), count bigint;
//                    unique (NULLS NOT DISTINCT) per key, merged with INSERT … ON CONFLICT.
//   events_rejected  the quarantine (received_at, source, error, body).
//   sluice_offsets, sluice_windows, sluice_window_rows, sluice_partitions — the catalog.
//
// Why json and not jsonb: see the comment at kPayloadType in postgres_store.cc (measured).
//
// Windows and partitions: a window is [start, start + window_us) of received_at, cut to fit
// between windows made with another window length, and never crossing a partition boundary;
// partition_us must be a whole multiple of window_us, so with aligned defaults (10 min in 1 h)
// a partition holds exactly 6 windows. Partitions are created by the store: at Open for the
// current time and partitions_ahead more, at each commit for the batch's received_at and
// partitions_ahead more, in their own short transactions (CREATE TABLE, then ATTACH PARTITION,
// which does not block commits or queries on `events`). DropWindow marks a window dropped
// (its rows stay until its partition goes); once every window of a partition that lies wholly
// before MaxReceivedAt() is dropped, the partition is detached (DETACH … CONCURRENTLY: waits
// for queries using `events`, blocks neither commits nor them) and dropped: no DELETE, no
// vacuum debt. Late rows for a dropped window bring it back: if its partition is gone, its
// rows are first copied back from the Parquet history (parquet_glob), so its next export
// still holds all of them.
//
// Exactly once: CommitBatch is one transaction (binary COPY of the rows into `events`, which
// routes them to partitions; rejections; rollups; per-window row counts; the shard's offset
// and max received_at). A batch whose end_offset is not past the shard's committed offset is
// already stored: CommitBatch returns OK and stores nothing. So a retry after an ambiguous
// failure (the connection lost while COMMIT's answer was on its way) stores the batch once.
//
// Exports: ExportWindowToParquet first reads the primary's current WAL position, then waits
// until the replica has replayed past it (pg_last_wal_replay_lsn), at most replica_wait_us:
// every commit the exporter saw before deciding the window was closed is then in the
// replica's snapshot. Rows stream from `COPY (SELECT … ORDER BY received_at) TO STDOUT
// (FORMAT binary)` straight into DuckDB's Parquet writer (a table function, no staging
// table): memory is one Parquet row group, whatever the window's size.
//
// Errors: PostgreSQL down or restarting gives Unavailable carrying the server's (or libpq's)
// message; the next call reconnects. The store never blocks waiting for the server to come
// back: the loader's retry loop does.
//
// Concurrency: thread-safe. CommitBatch may run concurrently for DIFFERENT shards (one loader
// per shard): each call takes its own connection from a pool, and the commits overlap in
// PostgreSQL (rollup and window rows are locked in key order: no deadlock). MarkExported and
// DropWindow wait for commits in flight and hold new ones back while they run (milliseconds).
// Exports run on their own connection beside commits. One PostgresStore writes a database at
// a time (the window and partition caches assume it).
//
// Limits: PostgreSQL 15 or later (UNIQUE NULLS NOT DISTINCT) with lz4. Text that is not UTF-8,
// or holds NUL bytes, is stored with U+FFFD for each bad byte (PostgreSQL refuses both).
// events_1m and events_rejected are never pruned here.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/status.h"
#include "duck/duck.h"
#include "pg/pool.h"
#include "store/commit_metrics.h"
#include "store/hot_store.h"
#include "store/parquet_writer.h"

namespace sluice::store {

struct PostgresStoreOptions {
  std::string url;       // --store: the primary, postgresql://user@host:port/db
  std::string read_url;  // --store-read: a streaming replica of it; "" = read the primary
  int64_t window_us = 600'000'000;  // the export interval, whole seconds
  // One `events` partition: a whole multiple of window_us (1 h = 6 windows of 10 min). Longer
  // partitions mean fewer tables but a partition is dropped only when all its windows are.
  int64_t partition_us = 3'600'000'000;
  int partitions_ahead = 2;  // created ahead of the newest received_at (and of now at Open)
  // A partition is ANALYZEd once, right after the commit that brings the rows this process
  // wrote into it to at least this many (0 = never; autovacuum's first ANALYZE comes up to
  // autovacuum_naptime later). Until then the planner has no statistics for it and plans a
  // query on recent events as a (parallel, JIT-compiled) scan of the whole partition.
  int64_t analyze_after_rows = 10'000;
  // The exported history, read with hive_partitioning, e.g. "/data/objects/events/**/*.parquet":
  // the rows of dropped windows (late rows for them, ForEachEventIdSince). Empty: none.
  std::string parquet_glob;
  // Local scratch for the export's DuckDB (spills); created if missing. Empty: DuckDB's default.
  std::string tmp_dir;
  std::string duckdb_memory_limit = "1GB";  // of the export's DuckDB
  int64_t replica_wait_us = 60'000'000;     // how long an export waits for replica replay
  Clock* clock = SystemClock();             // "now", for the partitions made at Open
  // Tests: called at fixed points of CommitBatch ("appended", "before_commit"); an error
  // fails the commit there, as a PostgreSQL error would.
  std::function<Status(std::string_view step)> fault_injection;
};

// Applies the schema migrations that `url`'s database lacks, each once, in its own
// transaction (concurrent callers wait on an advisory lock). Returns how many it applied.
// FailedPrecondition when the database has a migration this Sluice does not know (a newer
// Sluice migrated it); Unavailable when PostgreSQL cannot be reached.
Result<int> MigratePostgres(const std::string& url);

class PostgresStore final : public HotStore {
 public:
  // Connects to options.url, applies migrations, loads the catalog, finishes partition drops
  // a crash interrupted, creates the partitions ahead of now. InvalidArgument for bad options,
  // Unavailable when the primary cannot be reached, FailedPrecondition for a server older than
  // 15. The replica is first contacted by the first export.
  static Result<std::unique_ptr<PostgresStore>> Open(const PostgresStoreOptions& options);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  Status CommitBatch(const Batch& batch) override;
  Result<uint64_t> CommittedOffset(const std::string& shard) override;
  Result<int64_t> MaxReceivedAt() override;
  Result<std::vector<WindowInfo>> Windows() override;
  // Also DeadlineExceeded when the replica has not replayed the primary's WAL position of
  // the export's start within replica_wait_us (replay paused, or far behind).
  Result<uint64_t> ExportWindowToParquet(int64_t start_us, const std::string& path,
                                         const ParquetOptions& options) override;
  // Also FailedPrecondition when `rows` is not the window's row count (rows committed after
  // the export's snapshot, which the file lacks): export again. Marking again is OK.
  Status MarkExported(int64_t start_us, uint64_t rows) override;
  Status DropWindow(int64_t start_us) override;
  // Rows in PostgreSQL (a COPY, streamed), plus the Parquet history for windows whose
  // partition is gone.
  Status ForEachEventIdSince(int64_t since_us,
                             const std::function<void(std::string_view)>& fn) override;
  // pg_database_size of the store's database (the primary's files; WAL not included).
  Result<uint64_t> DiskBytes() override;

  // The name of the partition starting at `start_us`: events_p_20240501_120000.
  static std::string PartitionName(int64_t start_us);
  const PostgresStoreOptions& options() const { return options_; }

 private:
  struct WindowState {
    int64_t end_us = 0;
    bool dropped = false;
    bool purged = false;  // its partition was dropped: its rows are only in Parquet
  };
  struct PartitionState {
    int64_t end_us = 0;
    bool dropping = false;  // being detached: commits into it are refused until it is gone
    int64_t rows = 0;       // rows this process committed into it
    bool analyzed = false;  // ANALYZEd after reaching options_.analyze_after_rows
  };
  // Commits share the gate; MarkExported and DropWindow take it alone, after the commits in
  // flight, and hold new ones back (unlike std::shared_mutex, a waiting exclusive caller is
  // never starved by overlapping commits).
  class CommitGate {
   public:
    void LockShared();
    void UnlockShared();
    void Lock();
    void Unlock();
    struct Shared {
      explicit Shared(CommitGate& g) : gate(g) { gate.LockShared(); }
      ~Shared() { gate.UnlockShared(); }
      CommitGate& gate;
    };
    struct Exclusive {
      explicit Exclusive(CommitGate& g) : gate(g) { gate.Lock(); }
      ~Exclusive() { gate.Unlock(); }
      CommitGate& gate;
    };

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    int shared_ = 0;         // protected by mu_
    bool exclusive_ = false;  // held or waited for; protected by mu_
  };
  struct CommitPlan;

  explicit PostgresStore(const PostgresStoreOptions& options);
  Status Init();
  Status LoadCatalog(pg::Connection& conn);
  Status FinishInterruptedDrops(pg::Connection& conn);
  Status CommitOnce(const Batch& batch, bool* revived_any);
  // Window for received_at `t` in windows_ (mu_ held): an existing one, or a new one cut to
  // fit (added to windows_ and *created).
  int64_t WindowForLocked(int64_t t, std::vector<int64_t>* created);
  // The partition start for `t` (mu_ held): an existing partition's, or where a new one would
  // start (cut to fit between existing ones); *end gets its end.
  int64_t PartitionForLocked(int64_t t, int64_t* end) const;
  // Creates the partitions holding `times`, and partitions_ahead after the last, that do not
  // exist yet. Unavailable when one of them is being dropped.
  Status EnsurePartitions(pg::Connection& conn, const std::vector<int64_t>& times);
  Status CopyEvents(pg::Connection& conn, const Batch& batch);
  Status CopyRejections(pg::Connection& conn, const Batch& batch);
  // Copies window [start, end)'s rows from the Parquet history into `events` (in the caller's
  // transaction); returns how many.
  Result<uint64_t> RestoreFromParquet(pg::Connection& conn, int64_t start_us, int64_t end_us);
  // Detaches and drops the partitions whose windows are all dropped (after DropWindow).
  Status DropFinishedPartitions();
  Status DropPartition(pg::Connection& conn, int64_t start_us, int64_t end_us,
                       const std::string& name);
  Status WaitForReplica(const std::string& primary_lsn);
  Result<pg::Connection*> ReadConnection();  // export_mu_ held
  Status Fault(std::string_view step);
  // Parquet files exist under parquet_glob.
  Result<bool> HaveParquetHistory(duck::Connection& conn);

  const PostgresStoreOptions options_;
  pg::ConnectionPool pool_;  // the primary: commits, catalog, ForEachEventIdSince

  CommitMetrics commit_metrics_;
  metrics::Histogram& replica_wait_seconds_;

  CommitGate gate_;
  std::mutex revive_mu_;  // one commit at a time brings dropped windows back
  std::mutex ddl_mu_;     // partition DDL, one at a time

  std::mutex mu_;
  // State below is protected by mu_.
  std::map<int64_t, WindowState> windows_;        // by start, all windows ever made
  std::map<int64_t, PartitionState> partitions_;  // by start, the partitions that exist
  int64_t max_received_at_us_ = 0;

  // The export's Parquet writer. Its DuckDB also reads the Parquet history back, on
  // connections of their own (writer_ is set once, in Init).
  std::unique_ptr<ParquetWriter> writer_;
  std::mutex export_mu_;
  // State below is protected by export_mu_.
  std::unique_ptr<pg::Connection> read_conn_;
};

}  // namespace sluice::store
