// HistoryCache: the local, bounded copy of the Parquet history kept in a remote object store
// (S3, Azure Blob), which the DuckDB `events` view reads (DESIGN.md "Files in the object
// store"; docs/ARCHITECTURE.md "History from a bucket"). DuckDB here has no httpfs, so a query
// reads history only from local files: before a statement runs, the query engine asks this
// cache (as its query::HistoryGate) for the received_at range the statement can read, and the
// cache fetches the files of the windows in that range.
//
// Layout: DIR/events/dt=…/hour=…/events-….parquet mirrors the object keys, so the view's glob
// DIR/events/**/*.parquet keeps the Hive columns; DIR/_manifest/*.json mirrors the manifest
// entries (so a restart does not read every entry again); DIR/tmp holds downloads in flight.
//
// Which files: those named by manifest entries (export/manifest.h) whose window overlaps the
// range. A fetched file must have the entry's size and SHA-256, else it is not used
// (Corruption). Files in DIR/events that no entry names are removed at Open.
//
// Bound: the Parquet files kept total at most max_bytes, least recently used first out. The
// files a query fetches are downloaded first and room is made after, so while they download
// the directory holds up to their size more.
// One statement that needs more than max_bytes is refused (ResourceExhausted, naming
// --history-cache-bytes). Files leased by running statements are never removed; when the
// leased files alone exceed the bound, the cache holds more until their statements end.
// Removing a file waits (up to evict_wait) until no statement is running, because DuckDB lists
// the view's files when it plans a statement and opens them later: a file removed in between
// would fail that statement. If statements keep running past evict_wait, the removal is left
// for the next Acquire (the cache stays over its bound meanwhile; the gauge shows it).
//
// Metrics (metrics::Default()): gauges sluice_history_cache_bytes, sluice_history_cache_files,
// sluice_history_cache_max_bytes; counters sluice_history_cache_hits_total,
// sluice_history_cache_misses_total (files), sluice_history_fetched_bytes_total,
// sluice_history_evictions_total, sluice_history_fetch_errors_total; histogram
// sluice_history_fetch_seconds (one per Acquire that fetched).
//
// Concurrency: thread-safe. Acquires that need the same missing file wait for one download.
// A lease must be released on the thread that acquired it (it holds a shared lock).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "export/manifest.h"
#include "objstore/object_store.h"
#include "query/history_gate.h"

namespace sluice::history {

struct HistoryCacheOptions {
  std::string dir;                   // created if missing; DATA_DIR/cache by default
  uint64_t max_bytes = 10ull << 30;  // --history-cache-bytes
  int parallel_fetches = 4;          // downloads at once for one Acquire
  // How long a removal waits for running statements (see above).
  std::chrono::milliseconds evict_wait{2000};
  // Called (outside the cache's locks, on the acquiring thread) when the cache goes from no
  // Parquet file to some, before Acquire/AddExported returns: the DuckDB view leaves out a
  // read_parquet() whose glob matches nothing, so its owner must rebuild it.
  std::function<void()> on_first_file;
};

struct HistoryCacheStats {
  uint64_t files = 0;
  uint64_t bytes = 0;
  uint64_t entries = 0;  // manifest entries known
  uint64_t hits = 0;     // files found in the cache by Acquire
  uint64_t misses = 0;   // files Acquire had to fetch
  uint64_t fetched_bytes = 0;
  uint64_t evictions = 0;
};

class HistoryCache final : public query::HistoryGate {
 public:
  // Creates DIR, removes DIR/tmp's leftovers, indexes the files present (least recently used
  // by modification time), and reads the remote manifest (entries not mirrored in
  // DIR/_manifest, or of another size, are fetched). `remote` is borrowed and must outlive
  // the cache. InvalidArgument for bad options; the store's error when the manifest cannot be
  // listed or read; IOError for the local directory.
  static Result<std::unique_ptr<HistoryCache>> Open(HistoryCacheOptions options,
                                                    objstore::ObjectStore* remote);
  ~HistoryCache() override;
  HistoryCache(const HistoryCache&) = delete;
  HistoryCache& operator=(const HistoryCache&) = delete;

  // DIR/events: the directory of the view's glob (DIR/events/**/*.parquet).
  std::string EventsDir() const;

  // After the exporter uploaded `entry`'s object and manifest entry: records the entry and
  // puts `local_file` (the file that was uploaded; its size and SHA-256 are the entry's) in
  // the cache under the entry's key, by a hard link or else a copy, so the newest window is
  // read without a download. Replaces an older file of that key. IOError when the file
  // cannot be placed.
  Status AddExported(const exporter::ManifestEntry& entry, const std::string& local_file);

  // query::HistoryGate.
  Result<std::unique_ptr<query::HistoryLease>> Acquire(
      int64_t from_us, int64_t to_us, std::chrono::steady_clock::time_point deadline) override;

  // Lists the remote manifest again and reads the entries not known yet (written by another
  // process): the store's error on failure.
  Status RefreshManifest();

  HistoryCacheStats Stats() const;

 private:
  struct File {
    uint64_t bytes = 0;
    uint64_t last_use = 0;  // a tick of use_clock_; higher = more recent
    int pins = 0;
    bool present = false;   // on disk under DIR/events
    bool fetching = false;  // a download is in flight
  };
  class Lease;

  HistoryCache(HistoryCacheOptions options, objstore::ObjectStore* remote);
  Status Init();
  Status LoadManifest();
  // Downloads `entry`'s object to DIR/tmp, checks its size and SHA-256, and renames it into
  // place. Runs without mu_.
  Status Fetch(const exporter::ManifestEntry& entry);
  // Removes unpinned files, least recently used first, until bytes_ <= max_bytes or none is
  // left to remove; the most recently used file stays (the view's glob must match a file).
  // Takes gate_ exclusively (waits up to evict_wait). Called without mu_.
  void MakeRoom();
  std::string PathOf(const std::string& key) const;
  void Unpin(const std::vector<std::string>& keys);
  void PublishGauges();  // mu_ held

  const HistoryCacheOptions options_;
  objstore::ObjectStore* const remote_;

  // Readers (statements) share it; removing files takes it exclusively.
  std::shared_timed_mutex gate_;

  mutable std::mutex mu_;
  std::condition_variable fetched_cv_;  // a download ended
  // State below is protected by mu_.
  // By (window start, object key): several shards may export the same window.
  std::map<std::pair<int64_t, std::string>, exporter::ManifestEntry> entries_;
  std::set<std::string> known_entries_;  // entry names ("events-….json") read
  std::map<std::string, File> files_;    // by object key
  uint64_t bytes_ = 0;                   // of present files
  uint64_t use_clock_ = 0;
  uint64_t present_files_ = 0;
  bool announced_files_ = false;  // on_first_file was called (or the files were there at Open)
  uint64_t stats_hits_ = 0, stats_misses_ = 0, stats_fetched_bytes_ = 0, stats_evictions_ = 0;

  metrics::Gauge& bytes_gauge_;
  metrics::Gauge& files_gauge_;
  metrics::Counter& hits_;
  metrics::Counter& misses_;
  metrics::Counter& fetched_bytes_;
  metrics::Counter& evictions_;
  metrics::Counter& fetch_errors_;
  metrics::Histogram& fetch_seconds_;
};

}  // namespace sluice::history
