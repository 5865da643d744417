#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace sluice::bench {
namespace {

constexpr int64_t kLinearLimit = int64_t{1} << LatencyHistogram::kSubBucketBits;  // exact below
constexpr int64_t kHalf = kLinearLimit / 2;  // buckets per power of two above the linear range

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(IndexOf(kMaxMicros) + 1, 0) {}

size_t LatencyHistogram::IndexOf(int64_t v) {
  if (v < kLinearLimit) return static_cast<size_t>(v);
  const int exponent =
      static_cast<int>(std::bit_width(static_cast<uint64_t>(v))) - 1;  // >= kSubBucketBits
  const int shift = exponent - (kSubBucketBits - 1);
  const int64_t sub = v >> shift;  // in [kHalf, kLinearLimit)
  return static_cast<size_t>(kLinearLimit + (exponent - kSubBucketBits) * kHalf + (sub - kHalf));
}

int64_t LatencyHistogram::LowestOf(size_t index) {
  const auto i = static_cast<int64_t>(index);
  if (i < kLinearLimit) return i;
  const int64_t octave = (i - kLinearLimit) / kHalf;  // 0 for [2^kSubBucketBits, 2^(k+1))
  const int64_t sub = kHalf + (i - kLinearLimit) % kHalf;
  return sub << (octave + 1);
}

int64_t LatencyHistogram::HighestOf(size_t index) {
  const auto i = static_cast<int64_t>(index);
  if (i < kLinearLimit) return i;
  const int64_t octave = (i - kLinearLimit) / kHalf;
  return LowestOf(index) + (int64_t{1} << (octave + 1)) - 1;
}

void LatencyHistogram::Record(int64_t micros) {
  const int64_t v = std::max<int64_t>(micros, 0);
  ++counts_[IndexOf(std::min(v, kMaxMicros))];
  if (count_ == 0 || v < min_) min_ = v;
  if (v > max_) max_ = v;
  ++count_;
  sum_ += static_cast<double>(v);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

double LatencyHistogram::Mean() const {
  return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_);
}

double LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const auto rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const double mid =
          (static_cast<double>(LowestOf(i)) + static_cast<double>(HighestOf(i))) / 2.0;
      return std::clamp(mid, static_cast<double>(min_), static_cast<double>(max_));
    }
  }
  return static_cast<double>(max_);
}

}  // namespace sluice::bench
