// Loader: drains the Buffer into the HotStore, exactly once.
//
// Loop: read records from the buffer offset the store has committed; close a batch when it
// holds max_batch_records / max_batch_bytes or max_batch_delay has passed since its first
// record (freshness); decode; drop client retries (an event_id already stored within the
// dedup window, or twice in the batch); count the 1-minute rollups; commit rows, rollups,
// quarantine records and the end offset through HotStore::CommitBatch in one transaction;
// only then Buffer::Commit, so the buffer may free its segments.
//
// Pipelining: while batch N commits, a second thread reads and decodes batch N+1 (decode,
// dedup and rollups are the loader's own CPU work; the commit is mostly DuckDB's or
// PostgreSQL's), so the two overlap on two cores. The dedup set learns a batch's ids when the
// batch is prepared, which is safe because a prepared batch is never dropped: it is committed
// (retried until it is) or the loader stops, and every (re)start rebuilds the set from the
// store.
//
// Failures: a failed commit is retried with exponential backoff (up to max_backoff) with the
// same records, so nothing is skipped. A record that does not decode is stored in
// events_rejected with its bytes rather than blocking the loader.
//
// Restart: the store's committed offset says where to resume; the dedup set is rebuilt from
// the ids stored in the last dedup window.
//
// Concurrency: Start() runs the loop on its own thread; Stop() ends it after the batch in
// hand is committed (or given up on, on shutdown). Watermark()/Stats() may be called from any
// thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "buffer/buffer.h"
#include "common/clock.h"
#include "common/status.h"
#include "loader/dedup.h"
#include "store/hot_store.h"

namespace sluice::loader {

struct LoaderOptions {
  std::string shard = "disk";
  size_t max_batch_records = 20'000;
  size_t max_batch_bytes = 512ull << 20;
  std::chrono::milliseconds max_batch_delay{200};
  std::chrono::milliseconds dedup_window{std::chrono::minutes(10)};
  size_t dedup_max_ids = 5'000'000;
  std::chrono::milliseconds max_backoff{5'000};
};

struct LoaderStats {
  uint64_t committed_offset = 0;
  uint64_t batches = 0;
  uint64_t events = 0;
  uint64_t duplicates = 0;
  uint64_t rejections = 0;
  uint64_t commit_errors = 0;
  int64_t max_received_at_us = 0;  // highest received_at loaded so far
  bool drained = false;            // the last read found the buffer empty
  std::string last_error;
};

class Loader {
 public:
  // `buffer` and `store` are borrowed and must outlive the loader.
  Loader(LoaderOptions options, buffer::Buffer* buffer, store::HotStore* store,
         Clock* clock = SystemClock());
  ~Loader();  // calls Stop()

  // Reads the committed offset and the recent ids from the store, then starts the thread.
  Status Start();
  void Stop();

  // Loads until the buffer is empty, on the calling thread (Start() must not be running).
  // For `sluice export --once` and tests. Returns the first commit error, if any.
  Status DrainOnce();

  // The exporter's watermark: every record with received_at below it is loaded. That is the
  // highest received_at loaded, or the clock's now when the buffer was found empty.
  int64_t Watermark() const;
  LoaderStats Stats() const;

 private:
  // A batch read and decoded, ready to commit. Empty when the buffer had nothing.
  struct Prepared {
    store::Batch batch;
    uint64_t duplicates = 0;
    int64_t max_received_at_us = 0;
    bool empty() const { return batch.end_offset == 0; }
  };

  Status Init();
  // Reads the records from offset `from` into one batch (see the batch rules above), decodes
  // them, drops duplicates (and remembers the batch's ids in the dedup set), counts rollups.
  // `wait` bounds the wait for the first record. Touches no state but dedup_.
  Status Prepare(uint64_t from, std::chrono::milliseconds wait, Prepared* out);
  // Commits `p` through the store (retrying while `retry_forever` and not stopping), then
  // tells the buffer and updates the stats.
  Status Commit(Prepared& p, bool retry_forever);
  // The pipelined loop behind Run() and DrainOnce(): prepares the next batch while the current
  // one commits. `drain`: stop (OK) at the first empty read and return the first error;
  // otherwise run until `stop`, retrying errors with backoff.
  Status Pump(std::stop_token stop, bool drain);
  void Run(std::stop_token stop);
  void NoteError(const Status& st);

  const LoaderOptions options_;
  buffer::Buffer* const buffer_;
  store::HotStore* const store_;
  Clock* const clock_;
  DedupSet dedup_;  // used by one thread at a time: whichever runs Prepare()
  uint64_t next_offset_ = 0;
  std::atomic<bool> stopping_{false};
  std::jthread thread_;

  mutable std::mutex mu_;
  // State below is protected by mu_.
  LoaderStats stats_;
};

}  // namespace sluice::loader
