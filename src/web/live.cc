#include "web/live.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "common/json_writer.h"
#include "common/status.h"
#include "common/thread_priority.h"

namespace sluice::web {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double Seconds(int64_t us) { return static_cast<double>(us) / 1e6; }

// Unix seconds with millisecond precision: enough for a chart, and short.
double RoundMillis(double seconds) { return std::round(seconds * 1000) / 1000; }

// One decimal for rates and latencies; NaN stays NaN (written as null).
double Round1(double v) { return std::isfinite(v) ? std::round(v * 10) / 10 : v; }

// How many samples of `interval` cover `span` (at least 1).
size_t SamplesIn(std::chrono::milliseconds span, std::chrono::milliseconds interval) {
  return static_cast<size_t>(
      std::max<int64_t>(1, span.count() / std::max<int64_t>(1, interval.count())));
}

double QuantileMs(const metrics::Histogram::Snapshot& s, double q) {
  return s.count == 0 ? kNaN : s.Quantile(q) * 1000;
}

}  // namespace

LiveSampler::LiveSampler(LiveOptions options, LiveSources sources, Clock* clock)
    : options_(options),
      sources_(std::move(sources)),
      clock_(clock),
      max_samples_(SamplesIn(options.history, options.interval)),
      latency_samples_(SamplesIn(options.latency_window, options.interval)) {
  SLUICE_CHECK(sources_.registry != nullptr);
  SLUICE_CHECK(clock_ != nullptr);
  SLUICE_CHECK(options_.interval.count() > 0);
}

LiveSampler::~LiveSampler() { Stop(); }

metrics::Histogram::Snapshot LiveSampler::AckLatency() const {
  metrics::Histogram::Snapshot merged;
  for (const std::string& route : sources_.ack_routes) {
    merged.Add(sources_.registry->MergedHistogram("sluice_http_request_duration_seconds",
                                                  {{"route", route}}));
  }
  return merged;
}

void LiveSampler::SampleNow() {
  metrics::Registry& reg = *sources_.registry;
  // Read outside mu_: gauge callbacks may take their own locks (and the size ones may query).
  const int64_t now_us = clock_->NowMicros();
  const int64_t mono_us = clock_->MonotonicMicros();
  const double accepted = reg.Sum("sluice_events_accepted_total");
  const double rejected = reg.Sum("sluice_events_rejected_total");
  const double refused = reg.Sum("sluice_ingest_refused_events_total");
  const double quarantined = reg.Sum("sluice_events_quarantined_total");
  const double backlog = reg.Sum("sluice_buffer_depth_events");
  const double lag = reg.Max("sluice_loader_lag_seconds");
  metrics::Histogram::Snapshot ack = AckLatency();
  bool read_sizes;
  {
    std::lock_guard lock(mu_);
    read_sizes = options_.size_every <= 1 ||
                 samples_taken_ % static_cast<uint64_t>(options_.size_every) == 0;
  }
  double hot = 0, objects = 0, files = 0;
  if (read_sizes) {
    hot = reg.Sum("sluice_hot_store_bytes");
    objects = reg.Sum("sluice_object_store_bytes");
    files = reg.Sum("sluice_object_store_files");
  }

  std::lock_guard lock(mu_);
  ++samples_taken_;
  if (read_sizes) {
    hot_store_bytes_ = hot;
    object_store_bytes_ = objects;
    object_store_files_ = files;
  }
  if (have_baseline_ && mono_us > last_mono_us_) {
    const double dt = Seconds(mono_us - last_mono_us_);
    Sample s;
    s.t_us = now_us;
    s.accepted_per_s = std::max(0.0, accepted - last_accepted_) / dt;
    s.rejected_per_s = std::max(0.0, rejected - last_rejected_) / dt;
    s.refused_per_s = std::max(0.0, refused - last_refused_) / dt;
    const metrics::Histogram::Snapshot interval =
        ack_snapshots_.empty() ? ack : ack.Since(ack_snapshots_.back());
    s.p50_ms = QuantileMs(interval, 0.5);
    s.p99_ms = QuantileMs(interval, 0.99);
    s.backlog = backlog;
    s.lag_s = lag;
    samples_.push_back(s);
    while (samples_.size() > max_samples_) samples_.pop_front();
  }
  have_baseline_ = true;
  last_mono_us_ = mono_us;
  last_accepted_ = accepted;
  last_rejected_ = rejected;
  last_refused_ = refused;
  last_quarantined_ = quarantined;
  ack_snapshots_.push_back(std::move(ack));
  while (ack_snapshots_.size() > latency_samples_ + 1) ack_snapshots_.pop_front();
}

std::string LiveSampler::Json(double since_s) const {
  // The callbacks take their owners' locks: call them before taking mu_.
  std::vector<LiveExport> exports;
  if (sources_.recent_exports) exports = sources_.recent_exports();
  std::vector<LiveRejection> rejections;
  if (sources_.recent_rejections) rejections = sources_.recent_rejections();

  JsonWriter w;
  std::lock_guard lock(mu_);
  w.BeginObject();
  w.Key("now").Double(RoundMillis(Seconds(clock_->NowMicros())));
  w.Key("interval_ms").Int(options_.interval.count());
  w.Key("history_s").Int(options_.history.count());

  size_t first = 0;
  // Compared as sent (rounded to the millisecond), so the client's last `t` excludes itself.
  while (first < samples_.size() && RoundMillis(Seconds(samples_[first].t_us)) <= since_s) {
    ++first;
  }
  auto column = [&](const char* name, auto value) {
    w.Key(name).BeginArray();
    for (size_t i = first; i < samples_.size(); ++i) w.Double(value(samples_[i]));
    w.EndArray();
  };
  w.Key("series").BeginObject();
  column("t", [](const Sample& s) { return RoundMillis(Seconds(s.t_us)); });
  column("accepted", [](const Sample& s) { return Round1(s.accepted_per_s); });
  column("rejected", [](const Sample& s) { return Round1(s.rejected_per_s); });
  column("refused", [](const Sample& s) { return Round1(s.refused_per_s); });
  column("p50_ms", [](const Sample& s) { return Round1(s.p50_ms); });
  column("p99_ms", [](const Sample& s) { return Round1(s.p99_ms); });
  column("backlog", [](const Sample& s) { return s.backlog; });
  column("lag_s", [](const Sample& s) { return Round1(s.lag_s); });
  w.EndObject();

  // Headline figures: the newest sample's rates, latency over the last latency_window.
  const Sample latest = samples_.empty() ? Sample{} : samples_.back();
  metrics::Histogram::Snapshot window;
  if (ack_snapshots_.size() >= 2) {
    window = ack_snapshots_.back().Since(ack_snapshots_.front());
  }
  w.Key("current").BeginObject();
  w.Key("accepted_per_s").Double(Round1(latest.accepted_per_s));
  w.Key("rejected_per_s").Double(Round1(latest.rejected_per_s));
  w.Key("refused_per_s").Double(Round1(latest.refused_per_s));
  w.Key("p50_ms").Double(Round1(QuantileMs(window, 0.5)));
  w.Key("p99_ms").Double(Round1(QuantileMs(window, 0.99)));
  w.Key("backlog_events").Double(latest.backlog);
  w.Key("loader_lag_s").Double(Round1(latest.lag_s));
  w.Key("hot_store_bytes").Double(hot_store_bytes_);
  w.Key("object_store_bytes").Double(object_store_bytes_);
  w.Key("object_store_files").Double(object_store_files_);
  w.Key("accepted_total").Double(last_accepted_);
  w.Key("rejected_total").Double(last_rejected_);
  w.Key("quarantined_total").Double(last_quarantined_);
  w.EndObject();

  w.Key("exports").BeginArray();
  for (const LiveExport& e : exports) {
    w.BeginObject();
    w.Key("window_start").Double(Seconds(e.start_us)).Key("window_end").Double(Seconds(e.end_us));
    w.Key("rows").Uint(e.rows).Key("bytes").Uint(e.bytes);
    w.Key("seconds").Double(std::round(e.seconds * 1000) / 1000).Key("key").String(e.key);
    w.EndObject();
  }
  w.EndArray();
  w.Key("rejections").BeginArray();
  for (const LiveRejection& r : rejections) {
    w.BeginObject().Key("at").Double(RoundMillis(Seconds(r.received_at_us)));
    w.Key("source").String(r.source).Key("reason").String(r.reason);
    w.Key("error").String(r.error).EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

void LiveSampler::Start() {
  SLUICE_CHECK_MSG(!thread_.joinable(), "LiveSampler::Start called twice");
  SampleNow();
  thread_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
}

void LiveSampler::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();  // wakes the wait in Loop (condition_variable_any with the token)
  thread_.join();
}

void LiveSampler::Loop(const std::stop_token& stop) {
  // Not the ingest path: sample at the background priority (--background-nice). A failure
  // only leaves this light thread at the caller's priority.
  (void)EnterBackground();
  // Sample on a fixed cadence (next += interval), not interval after each sample, so the
  // samples do not drift; after a stall, skip to the next tick rather than catch up.
  auto next = std::chrono::steady_clock::now() + options_.interval;
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(wake_mu_);
      // Returns at `next`, or at once when Stop() asks (the predicate is only for the stop).
      (void)wake_cv_.wait_until(lock, stop, next, [] { return false; });
    }
    if (stop.stop_requested()) break;
    SampleNow();
    next += options_.interval;
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now + options_.interval;
  }
}

}  // namespace sluice::web
