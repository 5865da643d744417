#include "web/live.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <thread>

namespace sluice::web {
namespace {

constexpr int64_t kSec = 1'000'000;
constexpr int64_t kT0 = 1'714'564'800 * kSec;  // 2024-05-01T12:00:00Z

class LiveSamplerTest : public ::testing::Test {
 protected:
  LiveSamplerTest() {
    sources_.registry = &registry_;
    sources_.ack_routes = {"/v1/batch", "/v1/track"};
  }

  metrics::Counter& Accepted() {
    return registry_.GetCounter("sluice_events_accepted_total", "accepted");
  }
  metrics::Histogram& Ack(const char* route) {
    return registry_.GetHistogram("sluice_http_request_duration_seconds", "latency",
                                  {{"route", route}});
  }

  simdjson::dom::element Parse(const std::string& json) {
    simdjson::dom::element doc;
    EXPECT_EQ(parser_.parse(json).get(doc), simdjson::SUCCESS) << json;
    return doc;
  }

  metrics::Registry registry_;
  LiveSources sources_;
  ManualClock clock_{kT0};
  simdjson::dom::parser parser_;
};

TEST_F(LiveSamplerTest, RatesAreDeltasPerSecondAndTheFirstSampleIsTheBaseline) {
  LiveSampler live({}, sources_, &clock_);
  Accepted().Inc(500);  // before the baseline: not a rate
  live.SampleNow();
  auto doc = Parse(live.Json());
  EXPECT_EQ(doc["series"]["t"].get_array().size(), 0u);

  clock_.Advance(kSec);
  Accepted().Inc(1200);
  registry_.GetCounter("sluice_events_rejected_total", "", {{"reason", "missing_user"}}).Inc(3);
  registry_.GetCounter("sluice_events_rejected_total", "", {{"reason", "bad_body"}}).Inc(1);
  registry_.GetGauge("sluice_buffer_depth_events", "", {{"shard", "disk"}}).Set(40);
  registry_.GetGauge("sluice_buffer_depth_events", "", {{"shard", "disk-1"}}).Set(2);
  live.SampleNow();
  clock_.Advance(2 * kSec);  // a late sample: rates divide by the real interval
  Accepted().Inc(600);
  live.SampleNow();

  doc = Parse(live.Json());
  auto series = doc["series"];
  ASSERT_EQ(series["t"].get_array().size(), 2u);
  EXPECT_DOUBLE_EQ(series["t"].at(0).get_double(), 1'714'564'801.0);
  EXPECT_DOUBLE_EQ(series["accepted"].at(0).get_double(), 1200.0);
  EXPECT_DOUBLE_EQ(series["accepted"].at(1).get_double(), 300.0);
  EXPECT_DOUBLE_EQ(series["rejected"].at(0).get_double(), 4.0);
  EXPECT_DOUBLE_EQ(series["rejected"].at(1).get_double(), 0.0);
  EXPECT_DOUBLE_EQ(series["backlog"].at(0).get_double(), 42.0);
  EXPECT_DOUBLE_EQ(doc["current"]["accepted_per_s"].get_double(), 300.0);
  EXPECT_DOUBLE_EQ(doc["current"]["accepted_total"].get_double(), 2300.0);
  EXPECT_DOUBLE_EQ(doc["current"]["rejected_total"].get_double(), 4.0);

  // since= returns only newer samples; the rest of the document stays whole.
  auto newer = Parse(live.Json(1'714'564'801.5));
  ASSERT_EQ(newer["series"]["t"].get_array().size(), 1u);
  EXPECT_DOUBLE_EQ(newer["series"]["t"].at(0).get_double(), 1'714'564'803.0);
  EXPECT_EQ(Parse(live.Json(1'714'564'803.0))["series"]["t"].get_array().size(), 0u);

  // A sample off the millisecond: the `t` the client got back excludes that sample.
  clock_.Advance(kSec + 1234);  // ...804.001234
  live.SampleNow();
  auto last = Parse(live.Json(1'714'564'803.0));
  ASSERT_EQ(last["series"]["t"].get_array().size(), 1u);
  const double t = last["series"]["t"].at(0).get_double();
  EXPECT_DOUBLE_EQ(t, 1'714'564'804.001);
  EXPECT_EQ(Parse(live.Json(t))["series"]["t"].get_array().size(), 0u);
}

TEST_F(LiveSamplerTest, AckLatencyIsOfTheIntervalAndOnlyOfTheAckRoutes) {
  LiveSampler live({}, sources_, &clock_);
  for (int i = 0; i < 100; ++i) Ack("/v1/batch").Observe(0.5);  // before: not in any interval
  live.SampleNow();
  clock_.Advance(kSec);
  for (int i = 0; i < 95; ++i) Ack("/v1/track").Observe(0.0009);  // (0.5 ms, 1 ms]
  // (8 ms, 10 ms]: the p99 lands here only if /v1/batch is merged with /v1/track.
  for (int i = 0; i < 5; ++i) Ack("/v1/batch").Observe(0.009);
  for (int i = 0; i < 50; ++i) Ack("/v1/query").Observe(5);       // not an ack route
  live.SampleNow();
  clock_.Advance(kSec);
  live.SampleNow();  // nothing answered in this interval

  auto doc = Parse(live.Json());
  auto p50 = doc["series"]["p50_ms"];
  auto p99 = doc["series"]["p99_ms"];
  const double first_p50 = p50.at(0).get_double();
  EXPECT_GT(first_p50, 0.5);
  EXPECT_LE(first_p50, 1.0);
  const double first_p99 = p99.at(0).get_double();
  EXPECT_GT(first_p99, 8.0);
  EXPECT_LE(first_p99, 10.0);
  EXPECT_TRUE(p50.at(1).is_null());
  // The headline covers the last 10 s: both samples' acknowledgements, not the older 500 ms.
  const double headline_p99 = doc["current"]["p99_ms"].get_double();
  EXPECT_GT(headline_p99, 8.0);
  EXPECT_LE(headline_p99, 10.0);
}

TEST_F(LiveSamplerTest, KeepsOnlyTheHistoryAndReadsSizesEveryNSamples) {
  LiveOptions options;
  options.history = std::chrono::seconds(5);
  options.size_every = 3;
  LiveSampler live(options, sources_, &clock_);
  metrics::Gauge& hot = registry_.GetGauge("sluice_hot_store_bytes", "");
  hot.Set(1000);
  registry_.GetGauge("sluice_object_store_bytes", "").Set(77);
  live.SampleNow();  // sample 0 reads sizes
  hot.Set(2000);
  for (int i = 0; i < 2; ++i) {
    clock_.Advance(kSec);
    live.SampleNow();
  }
  EXPECT_DOUBLE_EQ(Parse(live.Json())["current"]["hot_store_bytes"].get_double(), 1000.0);
  clock_.Advance(kSec);
  live.SampleNow();  // sample 3 reads them again
  auto doc = Parse(live.Json());
  EXPECT_DOUBLE_EQ(doc["current"]["hot_store_bytes"].get_double(), 2000.0);
  EXPECT_DOUBLE_EQ(doc["current"]["object_store_bytes"].get_double(), 77.0);
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(kSec);
    live.SampleNow();
  }
  EXPECT_EQ(Parse(live.Json())["series"]["t"].get_array().size(), 5u);
}

TEST_F(LiveSamplerTest, ListsExportsAndRejectionsFromTheSources) {
  sources_.recent_exports = [] {
    return std::vector<LiveExport>{{kT0, kT0 + 600 * kSec, 1234, 56789, 1.25, "events/x.parquet"}};
  };
  sources_.recent_rejections = [] {
    return std::vector<LiveRejection>{
        {kT0 + 5 * kSec, "web", "missing_user", "needs \"userId\" or \"anonymousId\""}};
  };
  LiveSampler live({}, sources_, &clock_);
  auto doc = Parse(live.Json());
  auto e = doc["exports"].at(0);
  EXPECT_DOUBLE_EQ(e["window_start"].get_double(), 1'714'564'800.0);
  EXPECT_DOUBLE_EQ(e["window_end"].get_double(), 1'714'565'400.0);
  EXPECT_EQ(e["rows"].get_uint64().value(), 1234u);
  EXPECT_EQ(e["bytes"].get_uint64().value(), 56789u);
  EXPECT_DOUBLE_EQ(e["seconds"].get_double(), 1.25);
  auto r = doc["rejections"].at(0);
  EXPECT_EQ(std::string(r["reason"].get_string().value()), "missing_user");
  EXPECT_EQ(std::string(r["source"].get_string().value()), "web");
  EXPECT_NE(std::string(r["error"].get_string().value()).find("userId"), std::string::npos);
}

TEST_F(LiveSamplerTest, StartSamplesOnItsThreadUntilStop) {
  LiveOptions options;
  options.interval = std::chrono::milliseconds(10);
  LiveSampler live(options, sources_, SystemClock());
  live.Start();
  simdjson::dom::parser parser;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  size_t samples = 0;
  while (samples < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(live.Json()).get(doc), simdjson::SUCCESS);
    samples = doc["series"]["t"].get_array().size();
  }
  EXPECT_GE(samples, 3u);
  live.Stop();
  live.Stop();  // idempotent
}

}  // namespace
}  // namespace sluice::web
