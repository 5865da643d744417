// LiveSampler: what the dashboard's live view shows (GET /v1/live), read from the metrics
// registry once a second and kept for the last 15 minutes, so a page opened at any moment
// draws its charts with history at once and then asks only for the samples it lacks.
//
// Each sample (every `interval`, on the sampler's own thread) holds, over the interval since
// the previous sample:
//   - events/s accepted (sluice_events_accepted_total), rejected by validation
//     (sluice_events_rejected_total, all reasons) and refused (sluice_ingest_refused_events_total:
//     429/503/401, valid events not acknowledged);
//   - acknowledgement latency p50 and p99 in ms: sluice_http_request_duration_seconds of the
//     ingest routes (`ack_routes`), the observations made in the interval, merged (null when
//     no request was answered), interpolated inside the histogram's buckets;
// and, as read at the sample: the buffer backlog (sum of sluice_buffer_depth_events), the
// loader lag (the largest sluice_loader_lag_seconds, i.e. how stale the freshest queryable
// data may be). Store sizes (sluice_hot_store_bytes, sluice_object_store_bytes/_files) are
// read every `size_every` samples only, since PostgreSQL's costs a query. The first sample
// only sets the baseline for the rates.
//
// The document (Json):
//   {"now":S,"interval_ms":N,"history_s":N,
//    "series":{"t":[S…],"accepted":[…],"rejected":[…],"refused":[…],"p50_ms":[…|null],
//              "p99_ms":[…],"backlog":[…],"lag_s":[…]},          oldest first, columnar
//    "current":{"accepted_per_s":X,"rejected_per_s":X,"refused_per_s":X,
//               "p50_ms":X|null,"p99_ms":X|null,        over the last `latency_window`
//               "backlog_events":N,"loader_lag_s":X,"hot_store_bytes":N,
//               "object_store_bytes":N,"object_store_files":N,
//               "accepted_total":N,"rejected_total":N,"quarantined_total":N},
//    "exports":[{"window_start":S,"window_end":S,"rows":N,"bytes":N,"seconds":X,"key":"…"}],
//    "rejections":[{"at":S,"source":"…","reason":"…","error":"…"}]}      newest first
// where S is Unix seconds (a number, milliseconds in the fraction). Totals count since this
// process started.
//
// Concurrency: thread-safe. Start() runs the sampling thread until Stop() (or destruction);
// no thread runs before Start(). The registry and the source callbacks must outlive the
// sampler; recent_exports and recent_rejections are called from Json(), on its caller's thread
// (an HTTP thread), and the registry is read on the sampler's thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"

namespace sluice::web {

struct LiveExport {
  int64_t start_us = 0;
  int64_t end_us = 0;
  uint64_t rows = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  std::string key;
};

struct LiveRejection {
  int64_t received_at_us = 0;
  std::string source;
  std::string reason;
  std::string error;
};

struct LiveSources {
  metrics::Registry* registry = &metrics::Default();
  // The route labels of sluice_http_request_duration_seconds that acknowledge events.
  std::vector<std::string> ack_routes;
  // The latest exported windows and quarantined rejections, newest first; null: none.
  std::function<std::vector<LiveExport>()> recent_exports;
  std::function<std::vector<LiveRejection>()> recent_rejections;
};

struct LiveOptions {
  std::chrono::milliseconds interval{1000};
  std::chrono::seconds history{900};  // samples kept: history / interval
  int size_every = 10;                // read the store sizes every this many samples
  std::chrono::seconds latency_window{10};
};

class LiveSampler {
 public:
  LiveSampler(LiveOptions options, LiveSources sources, Clock* clock = SystemClock());
  ~LiveSampler();  // Stop()
  LiveSampler(const LiveSampler&) = delete;
  LiveSampler& operator=(const LiveSampler&) = delete;

  // Takes a sample now, then one every interval on a background thread. Twice is a
  // programmer error.
  void Start();
  // Joins the thread. Idempotent.
  void Stop();

  // Takes one sample, by the injected clock (what the thread runs; tests call it directly).
  void SampleNow();

  // The document above, with the series samples taken after `since_s` (Unix seconds; 0: all
  // kept). The rest of the document is always whole.
  std::string Json(double since_s = 0) const;

 private:
  struct Sample {
    int64_t t_us = 0;
    double accepted_per_s = 0, rejected_per_s = 0, refused_per_s = 0;
    double p50_ms = 0, p99_ms = 0;  // NaN when no acknowledgement in the interval
    double backlog = 0, lag_s = 0;
  };
  metrics::Histogram::Snapshot AckLatency() const;
  void Loop(const std::stop_token& stop);

  const LiveOptions options_;
  const LiveSources sources_;
  Clock* const clock_;
  const size_t max_samples_;
  const size_t latency_samples_;  // cumulative snapshots kept for the headline quantiles

  mutable std::mutex mu_;
  // State below is protected by mu_.
  std::deque<Sample> samples_;  // oldest first
  bool have_baseline_ = false;
  int64_t last_mono_us_ = 0;
  double last_accepted_ = 0, last_rejected_ = 0, last_refused_ = 0, last_quarantined_ = 0;
  double hot_store_bytes_ = 0, object_store_bytes_ = 0, object_store_files_ = 0;
  uint64_t samples_taken_ = 0;
  std::deque<metrics::Histogram::Snapshot> ack_snapshots_;  // cumulative, oldest first

  std::mutex wake_mu_;  // pairs with wake_cv_ for the thread's sleep
  std::condition_variable_any wake_cv_;
  std::jthread thread_;  // only Start and Stop touch it
};

}  // namespace sluice::web
