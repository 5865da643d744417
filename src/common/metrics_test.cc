#include "common/metrics.h"

#include <gtest/gtest.h>

namespace sluice::metrics {
namespace {

TEST(Metrics, RendersCountersGaugesHistogramsAndCallbacks) {
  Registry r;
  r.GetCounter("req_total", "Requests", {{"route", "/v1/track"}, {"status", "200"}}).Inc(3);
  r.GetCounter("req_total", "Requests", {{"route", "/v1/track"}, {"status", "200"}}).Inc();
  r.GetGauge("depth", "Depth").Set(42);
  auto& h = r.GetHistogram("lat_seconds", "Latency", {}, {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(5);
  std::string out;
  {
    auto handle = r.AddGaugeCallback("cb", "Callback", {{"k", "a\"b"}}, [] { return 1.5; });
    out = r.RenderPrometheus();
  }
  EXPECT_NE(out.find("# TYPE req_total counter"), std::string::npos) << out;
  EXPECT_NE(out.find("req_total{route=\"/v1/track\",status=\"200\"} 4"), std::string::npos) << out;
  EXPECT_NE(out.find("depth 42"), std::string::npos) << out;
  EXPECT_NE(out.find("lat_seconds_bucket{le=\"0.1\"} 1"), std::string::npos) << out;
  EXPECT_NE(out.find("lat_seconds_bucket{le=\"1\"} 2"), std::string::npos) << out;
  EXPECT_NE(out.find("lat_seconds_bucket{le=\"+Inf\"} 3"), std::string::npos) << out;
  EXPECT_NE(out.find("lat_seconds_count 3"), std::string::npos) << out;
  EXPECT_NE(out.find("cb{k=\"a\\\"b\"} 1.5"), std::string::npos) << out;
  // The handle is gone, so is the callback.
  EXPECT_EQ(r.RenderPrometheus().find("cb{"), std::string::npos);
}

TEST(Metrics, QuantileInterpolatesWithinBucket) {
  Histogram h({1, 2, 3});
  for (int i = 0; i < 100; ++i) h.Observe(1.5);  // all in (1,2]
  auto s = h.Snap();
  EXPECT_GT(s.Quantile(0.5), 1.0);
  EXPECT_LE(s.Quantile(0.99), 2.0);
  EXPECT_EQ(Histogram({1}).Snap().Quantile(0.5), 0);
}

}  // namespace
}  // namespace sluice::metrics
