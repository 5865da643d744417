// The parts of a Sluice process that `serve` and `export --once` share: the locked data dir,
// the buffer shards with one loader each, the object store, the hot store and the exporter.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "buffer/buffer.h"
#include "buffer/shard_router.h"
#include "cli/serve.h"
#include "common/status.h"
#include "export/exporter.h"
#include "history/history_cache.h"
#include "loader/loader.h"
#include "objstore/object_store.h"
#include "store/duckdb_store.h"
#include "store/postgres_store.h"

namespace sluice::cli {

// A configuration error: prints "sluice serve: <message>" on stderr; returns exit code 2.
int ConfigError(const std::string& message);

// `url` with the password of its user info, if any, replaced by "***" (for logs).
std::string RedactUrl(const std::string& url);

// ServeConfig's sizes and durations, parsed and checked.
struct Parsed {
  uint64_t buffer_max_bytes, buffer_segment_bytes, max_body_bytes, max_event_bytes;
  std::chrono::milliseconds read_timeout, idle_timeout, shutdown_grace;
  std::chrono::milliseconds export_interval, export_grace, hot_retention, dedup_window;
  std::chrono::milliseconds loader_batch_delay, query_timeout;
  std::chrono::milliseconds pg_partition, replica_wait;
  std::chrono::milliseconds redis_claim_after, redis_wait_timeout;
  std::chrono::milliseconds history_manifest_refresh;
  std::chrono::milliseconds writeback_pace;  // 0: off
  std::vector<std::string> redis_urls;  // --buffer redis://…,redis://… (empty otherwise)
  int buffer_shards;  // resolved from --buffer-shards (0 = auto); with Redis, one per URL
  size_t loader_batch_events;  // resolved from --loader-batch-events (0 = auto)
  uint64_t object_store_multipart_threshold, object_store_part_size, history_cache_bytes;
  uint64_t duckdb_checkpoint_threshold;
  bool postgres;      // --store postgres://…
};

// InvalidArgument with a sentence naming the flag for any value the operator must fix.
Result<Parsed> ParseUnits(const ServeConfig& c);

// Holds an exclusive flock on DATA_DIR/LOCK so two servers never share a data dir.
class DataDirLock {
 public:
  DataDirLock() = default;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock();
  Status Acquire(const std::filesystem::path& dir);

 private:
  int fd_ = -1;
};

// One buffer shard: its Buffer and the Loader that drains it into the hot store.
struct Shard {
  // The store's offset key: "disk", "disk-1", …; "redis:HOST:PORT/DB/STREAM"; "spill:NODE".
  std::string name;
  std::unique_ptr<buffer::Buffer> buffer;
  std::unique_ptr<loader::Loader> loader;
};

// Destroyed in reverse order of the members: the exporter, then the loaders (in `shards`,
// before their buffers), then the stores.
struct Core {
  std::filesystem::path data_dir;
  DataDirLock lock;
  std::string node_id;  // DATA_DIR/node-id: HOSTNAME-<random hex>, made once
  std::unique_ptr<objstore::ObjectStore> objects;
  // With a remote object store: the local cache of its Parquet history, which the DuckDB
  // `events` view reads (DATA_DIR/cache) and the query engine fills (its HistoryGate).
  std::unique_ptr<history::HistoryCache> history;
  // The DuckDB database of DATA_DIR/hot.duckdb: the hot store itself, or with --store
  // postgres only the `events` view over the Parquet history (DATA_DIR/history.duckdb), which
  // the DuckDB query engine reads.
  std::unique_ptr<store::DuckDbStore> duck;
  std::unique_ptr<store::PostgresStore> postgres;  // with --store postgres://…
  store::HotStore* store = nullptr;                // duck or postgres: where the loaders write
  std::vector<Shard> shards;
  std::unique_ptr<buffer::ShardRouter> router;  // ingest's view of the shards
  buffer::Buffer* spill = nullptr;  // --spill disk: the last of `shards`, takes refused appends
  std::unique_ptr<exporter::Exporter> exporter;

  // The exporter's watermark: the lowest of the shards' loaders' (DESIGN.md: a window closes
  // once every buffer shard's loaded position has passed it).
  int64_t Watermark() const;

  // With a remote object store: fetches the history files the loaders' dedup reads when they
  // start (event_ids of the last `dedup_window` of windows already dropped from the hot
  // store) and holds them until the lease is destroyed. Null without a history cache.
  Result<std::unique_ptr<query::HistoryLease>> HoldDedupHistory(
      std::chrono::milliseconds dedup_window);
};

// Opens the core. Returns 0, or the exit code after saying what went wrong: 2 for what the
// operator must fix, 1 for a failure at run time.
//
// Shards: shard i > 0 lives in DATA_DIR/buffer-i. Shards found on disk beyond
// --buffer-shards are still opened and drained (never lost) but take no new appends.
// With --buffer redis://…: one shard per URL (routed per --redis-write-shard), plus with
// --spill disk (or when DATA_DIR/spill holds records from an earlier run) the spill log.
int OpenCore(const ServeConfig& config, const Parsed& parsed, Core* core);

}  // namespace sluice::cli
