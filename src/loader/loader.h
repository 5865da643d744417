// Loader: drains the Buffer into the HotStore, exactly once.
//
// Loop: read records from the buffer offset the store has committed; close a batch when it
// holds max_batch_records / max_batch_bytes or max_batch_delay has passed since its first
// record (freshness); decode; drop client retries (an event_id already stored within the
// dedup window, or twice in the batch); count the 1-minute rollups; commit rows, rollups,
// quarantine records and the end offset through HotStore::CommitBatch in one transaction;
// only then Buffer::Commit, so the buffer may free its segments.
//
// Failures: a failed commit is retried with exponential backoff (up to max_backoff) with the
// same records, so nothing is skipped; the dedup set learns a batch's ids only after its
// commit, so a retried batch is not mistaken for duplicates. A record that does not decode is
// stored in events_rejected with its bytes rather than blocking the loader.
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
  Status Init();
  // Reads and commits one batch. Sets *empty when the buffer had nothing. `wait` bounds the
  // wait for the first record.
  Status Step(std::chrono::milliseconds wait, bool* empty);
  Status CommitWithRetry(store::Batch& batch, const std::vector<Fingerprint>& fps,
                         const std::vector<int64_t>& received, bool retry_forever);
  void Run(std::stop_token stop);

  const LoaderOptions options_;
  buffer::Buffer* const buffer_;
  store::HotStore* const store_;
  Clock* const clock_;
  DedupSet dedup_;  // owned by the loading thread
  uint64_t next_offset_ = 0;
  bool background_ = false;  // set by Start(): commits are retried until they succeed
  std::atomic<bool> stopping_{false};
  std::jthread thread_;

  mutable std::mutex mu_;
  // State below is protected by mu_.
  LoaderStats stats_;
};

}  // namespace sluice::loader
