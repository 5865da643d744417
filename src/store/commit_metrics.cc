#include "store/commit_metrics.h"

namespace sluice::store {

CommitMetrics::CommitMetrics()
    : seconds_(metrics::Default().GetHistogram(
          "sluice_store_commit_seconds", "Time to commit one loader batch to the hot store")),
      events_(metrics::Default().GetCounter("sluice_store_committed_events_total",
                                            "Events committed to the hot store")),
      rejections_(metrics::Default().GetCounter("sluice_store_committed_rejections_total",
                                                "Rejections committed to the quarantine")),
      errors_(metrics::Default().GetCounter("sluice_store_commit_errors_total",
                                            "Hot store commits that failed")) {}

void CommitMetrics::Record(const Batch& batch, std::chrono::steady_clock::time_point start,
                           const Status& st) {
  seconds_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (st.ok()) {
    events_.Inc(batch.events.size());
    rejections_.Inc(batch.rejections.size());
  } else {
    errors_.Inc();
  }
}

}  // namespace sluice::store
