// HistoryGate: what the DuckDB query engine asks before a statement that reads the `events`
// view, when the Parquet history lives in a remote object store (S3, Azure) and DuckDB can
// only read local files. The gate makes the files of the windows the statement may read
// (query/time_range.h finds the received_at range) present locally, and keeps them so while
// the statement runs. history/history_cache.h implements it.
//
// Concurrency: implementations are thread-safe; a lease is released on the thread that
// acquired it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "common/status.h"

namespace sluice::query {

// Held for as long as the statement runs; destroying it lets the files go.
class HistoryLease {
 public:
  virtual ~HistoryLease() = default;
};

class HistoryGate {
 public:
  virtual ~HistoryGate() = default;
  // Makes every history file of a window overlapping received_at [from_us, to_us) readable
  // through the `events` view until the returned lease is destroyed. Errors:
  // ResourceExhausted (with a sentence naming the setting) when those files are larger than
  // the local cache, DeadlineExceeded when fetching them would pass `deadline`, Unavailable
  // or IOError (with the object store's message) when a file cannot be fetched.
  virtual Result<std::unique_ptr<HistoryLease>> Acquire(
      int64_t from_us, int64_t to_us, std::chrono::steady_clock::time_point deadline) = 0;
};

}  // namespace sluice::query
