// DuckDbStore: the embedded HotStore — one DuckDB file in the data dir (DESIGN.md "hot store:
// duckdb"). The query engine reads the same database instance (database()), so the tables and
// views below are part of the contract with query/ and export/.
//
// What the database holds:
//   events            VIEW, the whole event history, columns exactly as DESIGN.md's Event
//                     table (event_id VARCHAR, type, event, user_id, anonymous_id VARCHAR,
//                     event_time, sent_at, received_at TIMESTAMPTZ, properties, traits,
//                     context JSON, source VARCHAR). It is
//                       SELECT … FROM <each hot window table that is not exported>
//                       UNION ALL
//                       SELECT CAST(…) FROM read_parquet(parquet_glob, hive_partitioning=true)
//                        WHERE received_at is outside every not-exported hot window
//                     so every event is counted exactly once whatever the exporter has done:
//                     a window is read from its hot table until MarkExported, from Parquet
//                     after (whether or not its hot rows are dropped yet), and a Parquet file
//                     of a window that is not marked exported (written, or re-written after
//                     late data, but not yet recorded) is ignored. The Parquet branch is left
//                     out while parquet_glob matches no file (read_parquet fails on an empty
//                     glob). Rebuilt, in the same transaction, whenever a window appears, is
//                     marked exported, gets late rows or is dropped.
//   events_w_<start>  one table per window of received_at ([start, start + window_us)), e.g.
//                     events_w_20240501T1200Z; same columns; created by the first commit that
//                     has a row for it; dropped whole (DROP TABLE) once exported.
//   events_1m         rollups (minute TIMESTAMPTZ, type VARCHAR, event VARCHAR, count BIGINT),
//                     one row per key (event NULL when there is none).
//   events_rejected   the quarantine (received_at TIMESTAMPTZ, source, error, body VARCHAR).
//   sluice_windows, sluice_offsets, sluice_metadata — the store's own catalog.
//
// Guarantees: CommitBatch is one DuckDB transaction (rows, rejections, rollups, window catalog,
// view, shard offset, max received_at); any error rolls all of it back. DuckDB makes a commit
// durable (WAL fsync) before COMMIT returns.
//
// Windows: a window's catalog entry is hot (rows in its table, read from there), exported (rows
// still in its table, read from Parquet), or dropped (rows only in Parquet; the entry stays, so
// the store knows the window's history is in Parquet). Late rows for an exported window turn it
// back to hot; late rows for a dropped window re-create its table and first copy the window's
// rows back from Parquet, so the exporter's next export of the window (which rewrites the same
// file) still holds every row. Windows that exist keep their bounds when window_us changes;
// new ones are cut so they never overlap old ones.
//
// Input assumptions: properties/traits/context are valid JSON text (event/parser.h makes them
// from a DOM). DuckDB's appender does not check JSON, and DuckDB refuses to read a Parquet file
// whose JSON column holds invalid JSON. Strings that are not valid UTF-8 (which DuckDB would
// refuse, failing the batch for ever) are stored with U+FFFD for each bad byte; rejection
// bodies, which are arbitrary client bytes, are the usual case. parquet_glob must match only
// this store's exports.
//
// Concurrency: thread-safe. Commits and catalog changes (MarkExported, DropWindow) serialise on
// one mutex and one connection; exports run on a connection of their own, beside commits;
// ForEachEventIdSince opens a connection per call. Query connections on database() may run at
// any time (DuckDB MVCC). One DuckDbStore per database file per process: DuckDB allows only one
// read-write opener of a file.
//
// Limits: window_us must be a positive multiple of one minute. A commit that crosses DuckDB's
// checkpoint_threshold of WAL checkpoints inline (seconds for 1 GB of WAL); DropWindow
// checkpoints so dropped tables' blocks are reused. events_rejected and events_1m are never
// pruned here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "duck/duck.h"
#include "duck/sandbox.h"
#include "store/commit_metrics.h"
#include "store/hot_store.h"
#include "store/parquet_writer.h"

namespace sluice::store {

struct DuckDbStoreOptions {
  std::string path;                 // DATA_DIR/hot.duckdb
  int64_t window_us = 600'000'000;  // the export interval
  // The exported history, read with hive_partitioning, e.g. "/data/objects/events/**/*.parquet".
  // Empty: no history (the view is the hot windows only).
  std::string parquet_glob;
  duck::SandboxOptions sandbox;  // applied to the whole database right after opening
  int threads = 0;               // DuckDB threads; 0 = DuckDB's default (the core count)
  // DuckDB's WAL size that triggers a checkpoint (inline, in the commit that crosses it).
  // Checkpointing compresses and writes the row groups that commits appended, and rewrites the
  // last, partly filled one, so a small threshold rewrites the same data again and again: with
  // 2 KB events in batches of 10,000 on 2 cores, 16MB (DuckDB's default) sustained ~40,000
  // events/s, 256MB ~78,000, 1GB ~110,000 (that commit then takes ~1.5 s). Up to this much of
  // committed rows waits in memory and in the WAL; a restart replays it.
  std::string checkpoint_threshold = "1GB";
  // The export's own DuckDB (ParquetWriter: one thread, no sandbox; made at the first export).
  std::string export_memory_limit = "1GB";
  std::string export_tmp_dir;  // where it may spill; empty: DuckDB's default
  // Rows an export reads per statement (ExportWindowToParquet): 50 vectors, ~200 MB of 2 KB
  // events, a second or two of the exporting thread.
  uint64_t export_slice_rows = 50 * 2048;
  // Tests: called at fixed points of CommitBatch ("appended", "before_commit"); an error
  // fails the commit there, as a DuckDB error would.
  std::function<Status(std::string_view step)> fault_injection;
};

class DuckDbStore final : public HotStore {
 public:
  // Opens (creating it if needed) the database at options.path: applies the UTC time zone and
  // the checkpoint threshold, then the sandbox (which locks the configuration), creates the
  // tables that are missing, loads the catalog and rebuilds the `events` view. InvalidArgument
  // for bad options; IOError when DuckDB cannot open the file (e.g. another process has it).
  static Result<std::unique_ptr<DuckDbStore>> Open(const DuckDbStoreOptions& options);
  ~DuckDbStore() override;
  DuckDbStore(const DuckDbStore&) = delete;
  DuckDbStore& operator=(const DuckDbStore&) = delete;

  // The database, for the query engine's connections (sandboxed, TimeZone UTC, locked).
  // NOLINTNEXTLINE(readability-identifier-naming): an accessor, named as the field it returns
  std::shared_ptr<duck::Database> database() const { return db_; }

  Status CommitBatch(const Batch& batch) override;
  Result<uint64_t> CommittedOffset(const std::string& shard) override;
  Result<int64_t> MaxReceivedAt() override;
  Result<std::vector<WindowInfo>> Windows() override;
  // Streams the window's rows as of the call (later commits are not in the file) into a
  // ParquetWriter on the calling thread, so the Parquet encoding runs on this one thread. The
  // rows are read in slices of rowids, one short statement each, and options.pace is called
  // between slices. Sorts only when the window's rows were not committed in received_at order
  // (then one statement; the sort costs 2-3x the plain export, runs on all of DuckDB's threads
  // and holds the window in memory or spills it). Row groups are whole multiples of 2048 rows.
  // Also InvalidArgument ("Permission Error") when `path` is outside the sandbox's allowed
  // directories.
  Result<uint64_t> ExportWindowToParquet(int64_t start_us, const std::string& path,
                                         const ParquetOptions& options) override;
  // Also FailedPrecondition when `rows` is not the window's row count now (rows committed
  // after the export's snapshot, which the file lacks): export again. Marking an exported
  // window again is OK. Fails (and marks nothing) if parquet_glob matches no file.
  Status MarkExported(int64_t start_us, uint64_t rows) override;
  // Drops the table and CHECKPOINTs so its blocks are reused. DuckDB refuses to checkpoint
  // while any other transaction is open (a query, an export): then OK is still returned (the
  // drop is committed) and the commits that follow retry the checkpoint until one succeeds.
  Status DropWindow(int64_t start_us) override;
  // Streams from the hot tables, and from Parquet for dropped windows, in chunks of 2048.
  Status ForEachEventIdSince(int64_t since_us,
                             const std::function<void(std::string_view)>& fn) override;
  // The database file plus its WAL.
  Result<uint64_t> DiskBytes() override;

  // The table that holds (or held) the window starting at `start_us`: events_w_20240501T1200Z
  // (seconds appended when start_us is not on a minute).
  static std::string WindowTableName(int64_t start_us);
  // The `events` view's SQL as it is now (for tests and `sluice query` debugging).
  std::string ViewSql();
  // Rebuilds the `events` view from the catalog and the Parquet files there are now. Needed
  // only when files appear without this store's MarkExported: with --store postgres this
  // store holds no rows and its view is the Parquet history that PostgresStore exports.
  Status RefreshView();

 private:
  // A window with hot rows. (Dropped windows are only bounds, in dropped_.)
  struct Window {
    int64_t end_us = 0;
    std::string table;
    uint64_t rows = 0;
    bool exported = false;
    bool in_order = true;         // the table's rows are in received_at order
    int64_t max_received_us = 0;  // of its rows
  };
  using WindowMap = std::map<int64_t, Window>;  // by start

  explicit DuckDbStore(const DuckDbStoreOptions& options);
  Status Init();
  Status CommitLocked(const Batch& batch);
  // Appends the batch's events of window `start_us` (window_of_event_) to w->table and
  // updates w's rows, in_order and max_received_us (w is the commit's copy).
  Status AppendEvents(const Batch& batch, int64_t start_us, Window* w);
  Status MergeRollups(const std::vector<RollupRow>& rollups);
  Status AppendRejections(const std::vector<event::Rejection>& rejections);
  Status RefreshViewLocked();  // mu_ held
  // CREATE OR REPLACE VIEW events for `windows` (in the caller's transaction); returns the SQL.
  Result<std::string> ReplaceView(const WindowMap& windows);
  Result<bool> ParquetHistoryExists();
  std::string BuildViewSql(const WindowMap& windows, bool with_parquet) const;
  // The window for received_at in `windows` (a commit's copy of windows_): an existing one, a
  // dropped one brought back (its start added to *revived), or a new one cut to fit between
  // its neighbours.
  int64_t WindowFor(WindowMap& windows, int64_t received_at_us,
                    std::vector<int64_t>* revived) const;
  Status Fault(std::string_view step);
  // Whether `path` is inside one of options_.sandbox.allowed_directories.
  bool InSandbox(const std::string& path) const;

  const DuckDbStoreOptions options_;
  std::shared_ptr<duck::Database> db_;

  CommitMetrics commit_metrics_;

  std::mutex mu_;
  // State below is protected by mu_.
  std::unique_ptr<duck::Connection> conn_;  // commits and catalog changes
  WindowMap windows_;                       // hot and exported windows: small
  std::map<int64_t, int64_t> dropped_;  // start -> end of windows whose rows are only in Parquet
  std::map<std::string, uint64_t, std::less<>> offsets_;
  int64_t max_received_at_us_ = 0;
  std::string view_sql_;
  bool checkpoint_pending_ = false;    // DropWindow could not CHECKPOINT
  duckdb_data_chunk chunk_ = nullptr;  // reused for appends, typed from the first appender
  std::vector<int64_t> window_of_event_;
  std::string scratch_;  // UTF-8 repair

  std::mutex export_mu_;
  // State below is protected by export_mu_.
  std::unique_ptr<duck::Connection> export_conn_;
  std::unique_ptr<ParquetWriter> writer_;
};

}  // namespace sluice::store
