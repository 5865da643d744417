// HotStore: where loaded events live until their window is in the object store — the raw rows
// (DESIGN.md "Event, as stored"), the 1-minute rollups `events_1m`, the quarantine
// `events_rejected`, and each buffer shard's committed offset.
//
// Partitioning: rows are kept per window of `received_at` ([start, start + window)), the
// export unit, so an exported window's rows can be dropped whole (no DELETE, no vacuum debt).
//
// Exactly once: CommitBatch stores a batch's rows, rejections, rollup increments and the
// buffer offset just past it in ONE transaction. After a crash the loader asks
// CommittedOffset() and resumes there: nothing is lost and nothing stored twice.
//
// Concurrency: implementations are thread-safe. One loader commits at a time per shard; the
// exporter and queries run beside it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "event/event.h"

namespace sluice::store {

// Events counted per minute of event_time (UTC, microseconds since the epoch, a multiple of
// 60 s), type and event name ("" for none).
struct RollupRow {
  int64_t minute_us = 0;
  std::string type;
  std::string event;
  int64_t count = 0;
  bool operator==(const RollupRow&) const = default;
};

// What the loader commits at once.
struct Batch {
  std::string shard = "disk";   // the buffer shard the records came from
  uint64_t end_offset = 0;      // buffer offset just past the batch's last record
  // When set, the shard's committed offset this batch continues from (a fence): CommitBatch
  // stores nothing and answers Aborted when the store's offset is another — a second loader
  // moved the shard (a Redis stream's lease changed hands mid-commit). A batch the store
  // already holds whole (its offset >= end_offset) is still answered OK.
  std::optional<uint64_t> start_offset;
  std::vector<event::Event> events;          // after dedup, in buffer order
  std::vector<event::Rejection> rejections;  // quarantine records, in buffer order
  std::vector<RollupRow> rollups;            // the counts of `events`, one row per key
};

struct WindowInfo {
  int64_t start_us = 0;  // multiple of the window length
  int64_t end_us = 0;
  uint64_t rows = 0;
  bool exported = false;  // in the object store and the manifest; queries read it from there
  bool operator==(const WindowInfo&) const = default;
};

struct ParquetOptions {
  int zstd_level = 1;  // DESIGN.md: level 1 wrote 1.6x faster than the default for 15% more bytes
  uint64_t row_group_rows = 100'000;
  // When set, the store calls it on the exporting thread as it streams the window's rows
  // (PostgreSQL after each chunk, DuckDB after each slice) with the number written so far,
  // and the call may block to hold the export to a rate (the exporter's --export-spread).
  std::function<void(uint64_t rows_so_far)> pace;
};

class HotStore {
 public:
  virtual ~HotStore() = default;

  // Commits `batch` as described above. On any error nothing of the batch is visible and the
  // shard's committed offset is unchanged. Events go to the window of their received_at,
  // whatever window that is (a window that was already exported gets them too and is
  // exported again by the exporter's next pass).
  virtual Status CommitBatch(const Batch& batch) = 0;
  // The committed offset of `shard` (0 when it never committed).
  virtual Result<uint64_t> CommittedOffset(const std::string& shard) = 0;
  // The highest received_at ever committed (0 when none); survives restarts. The exporter's
  // watermark starts from it.
  virtual Result<int64_t> MaxReceivedAt() = 0;

  // The windows that have hot rows, by start.
  virtual Result<std::vector<WindowInfo>> Windows() = 0;
  // Writes window `start_us`'s rows to a new local Parquet file at `path` (zstd, row groups
  // of options.row_group_rows), columns exactly as DESIGN.md's Event table, ordered by
  // received_at. Returns the number of rows written. NotFound for an unknown window.
  virtual Result<uint64_t> ExportWindowToParquet(int64_t start_us, const std::string& path,
                                                 const ParquetOptions& options) = 0;
  // Records that window `start_us` (with `rows` rows) is in the object store and the manifest.
  // From this commit on, queries of `events` read that window from the Parquet history, not
  // from the hot rows (no gap, no double count). NotFound for an unknown window.
  virtual Status MarkExported(int64_t start_us, uint64_t rows) = 0;
  // Drops an exported window's hot rows (the whole partition). FailedPrecondition when the
  // window is not marked exported.
  virtual Status DropWindow(int64_t start_us) = 0;

  // Calls `fn` with the event_id of every stored event whose received_at >= since_us (the
  // loader rebuilds its dedup set from this after a restart).
  virtual Status ForEachEventIdSince(int64_t since_us,
                                     const std::function<void(std::string_view)>& fn) = 0;
  // Bytes the store occupies on disk.
  virtual Result<uint64_t> DiskBytes() = 0;
};

}  // namespace sluice::store
