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
// (Corruption). Files in DIR/events that no entry names, or of another size than their
// entry's, are removed at Open. The manifest is listed again every manifest_refresh (at the
// next Acquire), so windows another process exported are seen and deleted ones forgotten.
// When the cache holds no file at Open but the manifest has entries, the newest window is
// fetched at once: the DuckDB view leaves out a read_parquet() whose glob matches nothing, so
// its owner needs a file before it builds the view (and the most recently used file is never
// removed, so the glob keeps matching).
//
// Bound: the Parquet files kept total at most max_bytes, least recently used first out. The
// files a query fetches are downloaded first and room is made after, so while they download
// the directory holds up to their size more.
// One statement that needs more than max_bytes is refused (ResourceExhausted, naming
// --history-cache-bytes). Files leased by running statements are never removed; when the
// leased files alone exceed the bound, the cache holds more until their statements end.
// Removing a file waits (up to evict_wait) until no statement is running, because DuckDB lists
// the view's files when it plans a statement and opens them later: a file removed in between
// would fail that statement. While a removal waits, new statements wait too (so removals are
// not starved); if the running ones last past evict_wait, the removal is given up, and tried
// again by the next Acquire or AddExported, and whenever the last running statement ends (the
// cache stays over its bound meanwhile; the gauge shows it).
//
// Only one process may use DIR at a time (DIR/LOCK, an exclusive flock): Open refuses with
// FailedPrecondition otherwise.
//
// Metrics (metrics::Default()): gauges sluice_history_cache_bytes, sluice_history_cache_files,
// sluice_history_cache_max_bytes; counters sluice_history_cache_hits_total,
// sluice_history_cache_misses_total (files), sluice_history_fetched_bytes_total,
// sluice_history_evictions_total, sluice_history_fetch_errors_total; histogram
// sluice_history_fetch_seconds (one per Acquire that fetched).
//
// Concurrency: thread-safe. Acquires that need the same missing file wait for one download.
// A download in progress is not cut short by a deadline (the store's stall timeout bounds it).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
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
  // At Open, when no file is cached but the manifest has entries: fetch the newest window (see
  // the header). Tests of the LRU order turn it off.
  bool fetch_newest_at_open = true;
  // How often the remote manifest is listed again (--history-manifest-refresh).
  std::chrono::milliseconds manifest_refresh{60'000};
  // Called (outside the cache's locks, on the acquiring thread) when the cache goes from no
  // Parquet file to some after Open, before Acquire/AddExported returns: the DuckDB view
  // leaves out a read_parquet() whose glob matches nothing, so its owner must rebuild it. A
  // failure is logged and the call is repeated at the next Acquire.
  std::function<Status()> on_first_file;
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

  // Lists the remote manifest again, reads the entries not known yet (written by another
  // process) and forgets those gone from the bucket: the store's error on failure. Acquire
  // calls it every manifest_refresh.
  Status RefreshManifest();

  HistoryCacheStats Stats() const;

 private:
  struct File {
    uint64_t bytes = 0;
    std::string sha256;     // of the file on disk
    uint64_t last_use = 0;  // a tick of use_clock_; higher = more recent
    int pins = 0;
    bool present = false;   // on disk under DIR/events
    bool fetching = false;  // a download is in flight
  };
  class Lease;

  // Statements share it; removing files takes it alone. A remover waiting keeps new
  // statements out (for at most its wait), so removals are not starved by overlapping
  // statements. Not tied to threads: a thread holding it shared that asks for it alone just
  // waits its timeout out.
  class ReadGate {
   public:
    bool LockShared(std::chrono::steady_clock::time_point deadline);
    // True when no statement holds it any more.
    bool UnlockShared();
    bool LockExclusive(std::chrono::milliseconds wait);
    void UnlockExclusive();

   private:
    std::mutex m_;
    std::condition_variable cv_;
    int readers_ = 0;
    int waiting_writers_ = 0;
    bool writer_ = false;
  };

  HistoryCache(HistoryCacheOptions options, objstore::ObjectStore* remote);
  Status Init();
  Status LockDir();
  // Reads the entries listed under _manifest/ that are not known yet (mirror first, then the
  // bucket); with `forget`, drops known entries that are no longer listed.
  Status LoadManifest(bool forget);
  void MaybeRefreshManifest();
  // Calls on_first_file if the cache went from no file to some and has not announced it.
  void Announce();
  // Downloads `entry`'s object to DIR/tmp, checks its size and SHA-256, and renames it into
  // place. Runs without mu_.
  Status Fetch(const exporter::ManifestEntry& entry);
  // Removes unpinned files, least recently used first, until bytes_ <= max_bytes or none is
  // left to remove; the most recently used file stays (the view's glob must match a file).
  // Takes gate_ alone, waiting up to `wait`. Called without mu_.
  void MakeRoom(std::chrono::milliseconds wait);
  std::string PathOf(const std::string& key) const;
  void Unpin(const std::vector<std::string>& keys);
  void PublishGauges();  // mu_ held

  const HistoryCacheOptions options_;
  objstore::ObjectStore* const remote_;

  ReadGate gate_;
  int lock_fd_ = -1;                         // DIR/LOCK, flocked while the cache is open
  std::mutex refresh_mu_;                    // one manifest refresh at a time
  std::atomic<int64_t> last_refresh_ns_{0};  // steady clock

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
  bool announced_files_ = false;  // on_first_file succeeded (or the files were there at Open)
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
