#include "common/metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>

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

TEST(Metrics, SumAndMaxReadMatchingSeries) {
  Registry r;
  r.GetCounter("rej_total", "Rejected", {{"reason", "no_user"}}).Inc(3);
  r.GetCounter("rej_total", "Rejected", {{"reason", "bad_body"}}).Inc(4);
  r.GetGauge("depth", "Depth", {{"shard", "disk"}}).Set(5);
  auto handle = r.AddGaugeCallback("depth", "Depth", {{"shard", "disk-1"}}, [] { return 7.5; });
  EXPECT_EQ(r.Sum("rej_total"), 7);
  EXPECT_EQ(r.Sum("rej_total", {{"reason", "bad_body"}}), 4);
  EXPECT_EQ(r.Sum("rej_total", {{"reason", "bad"}}), 0);  // a prefix is not a match
  EXPECT_EQ(r.Sum("depth"), 12.5);
  EXPECT_EQ(r.Max("depth"), 7.5);
  EXPECT_EQ(r.Sum("depth", {{"shard", "disk"}}), 5);
  EXPECT_EQ(r.Sum("missing"), 0);
  EXPECT_EQ(r.Max("missing"), 0);
}

TEST(Metrics, MergedHistogramAndSince) {
  Registry r;
  r.GetHistogram("lat", "Latency", {{"route", "/a"}}, {1, 2}).Observe(0.5);
  r.GetHistogram("lat", "Latency", {{"route", "/b"}}, {1, 2}).Observe(1.5);
  r.GetHistogram("lat", "Latency", {{"route", "/c"}}, {5}).Observe(1.5);  // other bounds
  Histogram::Snapshot before = r.MergedHistogram("lat", {{"route", "/a"}});
  EXPECT_EQ(before.count, 1u);
  Histogram::Snapshot all;
  for (const char* route : {"/a", "/b", "/c"}) {
    all.Add(r.MergedHistogram("lat", {{"route", route}}));
  }
  EXPECT_EQ(all.count, 2u);  // /c has other bounds and is left out
  EXPECT_EQ(all.counts[0], 1u);
  EXPECT_EQ(all.counts[1], 1u);

  r.GetHistogram("lat", "Latency", {{"route", "/a"}}, {1, 2}).Observe(3);
  Histogram::Snapshot delta = r.MergedHistogram("lat", {{"route", "/a"}}).Since(before);
  EXPECT_EQ(delta.count, 1u);
  EXPECT_EQ(delta.counts[2], 1u);  // +Inf bucket
  EXPECT_EQ(delta.counts[0], 0u);
  EXPECT_DOUBLE_EQ(delta.sum, 3.0);
  EXPECT_EQ(r.MergedHistogram("nothing").count, 0u);
}

// A slow gauge callback (the hot store's size asks PostgreSQL) must not hold up the ingest
// path, which creates counters (one per rejection reason, per status code) as it goes.
TEST(Metrics, ASlowCallbackDoesNotBlockCreatingCounters) {
  Registry reg;
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto handle = reg.AddGaugeCallback("slow_bytes", "h", {}, [&entered, released] {
    entered.set_value();
    released.wait();
    return 7.0;
  });
  auto sum = std::async(std::launch::async, [&reg] { return reg.Sum("slow_bytes"); });
  entered.get_future().wait();  // the callback is running, inside Sum
  auto counter = std::async(std::launch::async, [&reg] {
    reg.GetCounter("made_meanwhile_total", "h", {{"reason", "x"}}).Inc();
    return reg.Sum("made_meanwhile_total");  // counters only: no callback of this name to wait on
  });
  const bool done = counter.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  release.set_value();
  EXPECT_TRUE(done) << "GetCounter waited for a gauge callback";
  EXPECT_EQ(counter.get(), 1.0);
  EXPECT_EQ(sum.get(), 7.0);
}
}  // namespace
}  // namespace sluice::metrics
