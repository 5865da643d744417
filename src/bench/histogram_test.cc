#include "bench/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace sluice::bench {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.Count(), 0u);
  EXPECT_EQ(h.Percentile(0.5), 0);
  EXPECT_EQ(h.Max(), 0);
  EXPECT_EQ(h.Mean(), 0);
}

TEST(LatencyHistogramTest, UniformOneToHundredThousandMicros) {
  LatencyHistogram h;
  for (int64_t v = 1; v <= 100000; ++v) h.Record(v);
  EXPECT_EQ(h.Count(), 100000u);
  EXPECT_NEAR(h.Percentile(0.50), 50000, 500);  // 50 ms within 1%
  EXPECT_NEAR(h.Percentile(0.90), 90000, 900);
  EXPECT_NEAR(h.Percentile(0.99), 99000, 990);
  EXPECT_NEAR(h.Percentile(0.999), 99900, 999);
  EXPECT_EQ(h.Max(), 100000);
  EXPECT_EQ(h.Min(), 1);
  EXPECT_NEAR(h.Mean(), 50000.5, 1e-6);
  EXPECT_EQ(h.Percentile(1.0), 100000);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (int64_t v = 0; v < 256; ++v) h.Record(v);
  // rank ceil(0.5 * 256) = 128 -> the 128th smallest value, 127.
  EXPECT_EQ(h.Percentile(0.5), 127);
  EXPECT_EQ(h.Percentile(1.0 / 256), 0);
}

// Against the exact order statistic of random log-normal latencies, over many quantiles.
TEST(LatencyHistogramTest, WithinHalfPercentOfExactQuantiles) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(7.0, 2.0);  // median ~1 ms, long tail
  std::vector<int64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 200000; ++i) {
    const auto v = std::clamp<int64_t>(static_cast<int64_t>(dist(rng)), 1, 50'000'000);
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999}) {
    const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
    const double exact = static_cast<double>(values[rank - 1]);
    EXPECT_NEAR(h.Percentile(q), exact, std::max(0.5, exact * 0.005)) << "q=" << q;
  }
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverythingInOne) {
  LatencyHistogram a, b, all;
  for (int64_t v = 1; v <= 5000; ++v) {
    (v % 3 == 0 ? a : b).Record(v * 7);
    all.Record(v * 7);
  }
  a.Merge(b);
  EXPECT_EQ(a.Count(), all.Count());
  EXPECT_EQ(a.Min(), all.Min());
  EXPECT_EQ(a.Max(), all.Max());
  for (double q : {0.5, 0.9, 0.99}) EXPECT_EQ(a.Percentile(q), all.Percentile(q));
}

TEST(LatencyHistogramTest, ValuesBeyondRangeKeepExactMaxAndClampPercentiles) {
  LatencyHistogram h;
  h.Record(-5);           // counts as 0
  h.Record(120'000'000);  // two minutes
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Max(), 120'000'000);
  EXPECT_NEAR(h.Percentile(1.0), 60'000'000, 60'000'000 * 0.005);
  EXPECT_EQ(h.Percentile(0.5), 0);
}

}  // namespace
}  // namespace sluice::bench
