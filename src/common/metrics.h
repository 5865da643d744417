// A small Prometheus metrics registry: counters, gauges, histograms and gauge callbacks,
// rendered in the Prometheus text exposition format for GET /metrics.
//
// Written here because Debian 12 has no prometheus-cpp package; this is the subset we use.
//
// Concurrency: the registry is thread-safe. Get*() returns a reference that stays valid for
// the registry's lifetime; callers look a metric up once and keep the reference, so the hot
// path is one relaxed atomic operation. Rendering takes the registry mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void Add(int64_t d) { v_.fetch_add(d, std::memory_order_relaxed); }
  int64_t Value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Cumulative histogram with fixed upper bounds (seconds for latencies).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // per bucket (not cumulative); last is +Inf
    uint64_t count = 0;
    double sum = 0;
    // Linear interpolation inside the bucket holding quantile q (0..1); 0 when empty.
    double Quantile(double q) const;
    // Adds `other`'s observations bucket by bucket. False (nothing added) when the bounds
    // differ; an empty snapshot (no bounds yet) takes other's bounds.
    bool Add(const Snapshot& other);
    // The observations made after `earlier` (an older snapshot of the same histogram), per
    // bucket; counts that went down (a different histogram) count as 0.
    Snapshot Since(const Snapshot& earlier) const;
  };
  Snapshot Snap() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micro_{0};  // sum in millionths, to stay lock-free
};

// Latency buckets from 50 µs to 10 s.
std::vector<double> LatencyBounds();

// Unregisters a gauge callback when destroyed.
class CallbackHandle {
 public:
  CallbackHandle() = default;
  CallbackHandle(class Registry* r, uint64_t id) : registry_(r), id_(id) {}
  CallbackHandle(CallbackHandle&& o) noexcept { *this = std::move(o); }
  CallbackHandle& operator=(CallbackHandle&& o) noexcept;
  ~CallbackHandle();

 private:
  class Registry* registry_ = nullptr;
  uint64_t id_ = 0;
};

class Registry {
 public:
  Counter& GetCounter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& GetGauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& GetHistogram(std::string_view name, std::string_view help,
                          const Labels& labels = {}, std::vector<double> bounds = LatencyBounds());
  // `fn` is called at render time (and by Sum/Max), on the caller's thread; it must stay
  // callable until the returned handle is destroyed (destroying the handle waits for a call in
  // progress). Callbacks run under their own mutex, never under the one GetCounter & co. take,
  // so a slow callback (the hot store's size asks PostgreSQL) holds up other callbacks and
  // renders, never the ingest path that creates counters.
  [[nodiscard]] CallbackHandle AddGaugeCallback(std::string_view name, std::string_view help,
                                                const Labels& labels, std::function<double()> fn);
  std::string RenderPrometheus() const;

  // Reading values back, for in-process consumers (the dashboard's live sampler) that must not
  // parse the text format. A label set is read as FormatLabels renders it; `match` selects the
  // series whose labels include every given pair (empty: all series of the family).
  //
  // The sum of the family's counters, gauges and gauge callbacks whose labels match; 0 for an
  // unknown family or a histogram. Callbacks run on the caller's thread, as when rendering.
  double Sum(std::string_view name, const Labels& match = {}) const;
  // The largest such value; 0 when none matches.
  double Max(std::string_view name, const Labels& match = {}) const;
  // The histograms of `name` whose labels match, merged bucket by bucket (they must share
  // their bounds; one with other bounds is skipped). Empty snapshot when none matches.
  Histogram::Snapshot MergedHistogram(std::string_view name, const Labels& match = {}) const;

 private:
  friend class CallbackHandle;
  void RemoveCallback(uint64_t id);

  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
    // Set when a callback of this family is first registered, never cleared: while false,
    // Sum/Max of the family skip callbacks_mu_ (and so never wait for a slow callback).
    bool has_callbacks = false;
  };
  struct Callback {
    std::string name;
    std::string labels;  // rendered
    std::function<double()> fn;
  };
  Family& FamilyFor(std::string_view name, std::string_view help, Type type);
  // Calls fn(value) for each matching counter, gauge and callback of `name`; takes mu_, then
  // (after releasing it) callbacks_mu_.
  void ForEachValue(std::string_view name, const Labels& match,
                    const std::function<void(double)>& fn) const;

  // Lock order: callbacks_mu_ may be held while taking mu_ (a callback may create a counter),
  // never the other way round.
  mutable std::mutex mu_;
  // State below is protected by mu_.
  std::map<std::string, Family, std::less<>> families_;
  uint64_t next_callback_id_ = 1;

  mutable std::mutex callbacks_mu_;
  std::map<uint64_t, Callback> callbacks_;  // protected by callbacks_mu_
};

// The process-wide registry that /metrics renders.
Registry& Default();

// Renders labels as `{a="x",b="y"}` (empty string for none), escaping values.
std::string FormatLabels(const Labels& labels);

}  // namespace sluice::metrics
