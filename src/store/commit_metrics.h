// The commit metrics every HotStore implementation reports, in metrics::Default():
// sluice_store_commit_seconds, sluice_store_committed_events_total,
// sluice_store_committed_rejections_total, sluice_store_commit_errors_total. One set per
// process, whichever store is configured.
//
// Concurrency: thread-safe (the metrics are).
#pragma once

#include <chrono>

#include "common/metrics.h"
#include "common/status.h"
#include "store/hot_store.h"

namespace sluice::store {

class CommitMetrics {
 public:
  CommitMetrics();
  // Records one CommitBatch call of `batch` that began at `start` and returned `st`.
  void Record(const Batch& batch, std::chrono::steady_clock::time_point start, const Status& st);

 private:
  metrics::Histogram& seconds_;
  metrics::Counter& events_;
  metrics::Counter& rejections_;
  metrics::Counter& errors_;
};

}  // namespace sluice::store
