// LatencyHistogram: an HDR-style log-linear histogram of latencies in microseconds, for the
// percentiles a load test reports (p50 … p99.9, max).
//
// Buckets: values below 2^kSubBucketBits µs are exact; above, each power of two is split into
// 2^(kSubBucketBits-1) equal buckets, so a bucket is at most 1/128 of its values wide and a
// reported percentile (the bucket midpoint) is within 0.4% of the true value. The range is
// 1 µs .. kMaxMicros (60 s); larger values land in the top bucket, but Max() stays exact.
// About 2,700 buckets (21 KB).
//
// Concurrency: not thread-safe. Keep one per thread and Merge() them after the threads stop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 8;
  static constexpr int64_t kMaxMicros = 60'000'000;

  LatencyHistogram();

  // Records one value; negatives count as 0, values above kMaxMicros as kMaxMicros for the
  // percentiles (Max() and Mean() keep the true value).
  void Record(int64_t micros);
  // Adds every value recorded in `other`.
  void Merge(const LatencyHistogram& other);

  uint64_t Count() const { return count_; }
  int64_t Min() const { return count_ == 0 ? 0 : min_; }
  int64_t Max() const { return max_; }
  double Mean() const;
  // The value at quantile q (0..1]: the smallest recorded value v such that at least q of the
  // values are <= v, to the bucket's precision, clamped to [Min(), Max()]. 0 when empty.
  double Percentile(double q) const;

 private:
  static size_t IndexOf(int64_t v);
  // The lowest and highest value bucket `index` holds.
  static int64_t LowestOf(size_t index);
  static int64_t HighestOf(size_t index);

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  double sum_ = 0;
};

}  // namespace sluice::bench
